package runbook

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cutover/cutover/cutover/health"
	"github.com/cutover/cutover/internal/redact"
)

// GatePrometheus runs a PromQL instant query in rounds and compares its
// value with a number.
const GatePrometheus = "prometheus"

func init() {
	registerGate(GatePrometheus, gateKind{
		fields: []string{"url", "query", "op", "value", "rise", "fall", "interval", "timeout", "within"},
		many:   true,
		// rise 1: one poll decides, as before rise existed here; a rate
		// over a window lags the move, so a runbook raises it to watch a
		// while (rise 3 at 5s: 15 s of clean signal after the move).
		defaults: map[string]any{"rise": 1, "fall": 1, "interval": 5 * time.Second, "timeout": 5 * time.Second, "within": 60 * time.Second},
		check: func(rb *Runbook, g GateConfig, at string, bad badFunc) {
			positive(bad, at, "interval", g.Interval)
			positive(bad, at, "timeout", g.Timeout)
			positive(bad, at, "within", g.Within)
			if g.Rise < 1 {
				bad(at+".rise", strconv.Itoa(g.Rise), "must be at least 1")
			}
			if g.Fall < 1 {
				bad(at+".fall", strconv.Itoa(g.Fall), "must be at least 1")
			}
			if g.Rise >= 1 && g.Interval > 0 && g.Within > 0 && g.Within < time.Duration(g.Rise)*g.Interval {
				bad(at+".within", g.Within.String(), "shorter than rise × interval (%s): the gate could never pass", time.Duration(g.Rise)*g.Interval)
			}
			if u, err := url.Parse(g.URL); g.URL == "" {
				bad(at+".url", "", "required: the Prometheus server, such as http://127.0.0.1:9090")
			} else if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				bad(at+".url", redact.URL(g.URL), "want an http:// or https:// URL of the Prometheus server")
			}
			if strings.TrimSpace(g.Query) == "" {
				bad(at+".query", "", "required: a PromQL instant query")
			}
			switch g.Op {
			case "<", "<=", ">", ">=", "==", "!=":
			case "":
				bad(at+".op", "", "required: <, <=, >, >=, == or !=")
			default:
				bad(at+".op", g.Op, "want <, <=, >, >=, == or !=")
			}
			if !rb.pos.Has(at + ".value") {
				bad(at+".value", "", "required: the number the query's value is compared with")
			}
			if g.Within > 0 && g.Interval > 0 && g.Within < g.Interval {
				bad(at+".within", g.Within.String(), "shorter than interval %s", g.Interval)
			}
		},
		describe: func(g GateConfig) string {
			rise := ""
			if g.Rise > 1 || g.Fall > 1 {
				rise = fmt.Sprintf(" (rise %d, fall %d)", g.Rise, g.Fall)
			}
			return fmt.Sprintf("prometheus: %s %s %s at %s, every %s%s, within %s",
				g.Query, g.Op, strconv.FormatFloat(g.Value, 'g', -1, 64), redact.URL(g.URL), g.Interval, rise, g.Within)
		},
		live: func(g GateConfig, _ health.Prober) health.Gate {
			return health.PromGate{URL: g.URL, Query: g.Query, Op: g.Op, Value: g.Value,
				Within: g.Within, Interval: g.Interval, Timeout: g.Timeout, Rise: g.Rise, Fall: g.Fall}
		},
		least: risen,
	})
}
