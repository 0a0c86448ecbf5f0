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
		fields:   []string{"url", "query", "op", "value", "interval", "timeout", "within"},
		many:     true,
		defaults: map[string]any{"interval": 5 * time.Second, "timeout": 5 * time.Second, "within": 60 * time.Second},
		check: func(rb *Runbook, g GateConfig, at string, bad badFunc) {
			positive(bad, at, "interval", g.Interval)
			positive(bad, at, "timeout", g.Timeout)
			positive(bad, at, "within", g.Within)
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
			return fmt.Sprintf("prometheus: %s %s %s at %s, every %s, within %s",
				g.Query, g.Op, strconv.FormatFloat(g.Value, 'g', -1, 64), redact.URL(g.URL), g.Interval, g.Within)
		},
		live: func(g GateConfig, _ health.Prober) health.Gate {
			return health.PromGate{URL: g.URL, Query: g.Query, Op: g.Op, Value: g.Value,
				Within: g.Within, Interval: g.Interval, Timeout: g.Timeout}
		},
		least: risen,
	})
}
