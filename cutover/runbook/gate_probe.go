package runbook

import (
	"fmt"
	"strconv"
	"time"

	"github.com/cutover/cutover/cutover/health"
)

// GateProbe probes every VM of the batch, per the inventory's probe
// column, against the pre-cutover baseline, in rounds with rise and fall.
const GateProbe = "probe"

func init() {
	registerGate(GateProbe, gateKind{
		fields: []string{"min_healthy", "max_failures", "rise", "fall", "interval", "timeout", "concurrency", "within"},
		defaults: map[string]any{"min_healthy": Ratio(1), "rise": 2, "fall": 2, "interval": time.Second,
			"timeout": time.Second, "concurrency": 256, "within": 60 * time.Second},
		check: func(_ *Runbook, g GateConfig, at string, bad badFunc) {
			positive(bad, at, "interval", g.Interval)
			positive(bad, at, "timeout", g.Timeout)
			positive(bad, at, "within", g.Within)
			if g.Rise < 1 {
				bad(at+".rise", strconv.Itoa(g.Rise), "must be at least 1")
			}
			if g.Fall < 1 {
				bad(at+".fall", strconv.Itoa(g.Fall), "must be at least 1")
			}
			if g.Concurrency < 1 || g.Concurrency > 65535 {
				bad(at+".concurrency", strconv.Itoa(g.Concurrency), "want 1 to 65535")
			}
			if g.MaxFailures < -1 {
				bad(at+".max_failures", strconv.Itoa(g.MaxFailures), "want -1 (no limit) or more")
			}
			if g.Timeout > g.Interval && g.Interval > 0 {
				bad(at+".timeout", g.Timeout.String(), "longer than interval %s: rounds would overlap", g.Interval)
			}
			if g.Rise >= 1 && g.Interval > 0 && g.Within > 0 && g.Within < time.Duration(g.Rise)*g.Interval {
				bad(at+".within", g.Within.String(), "shorter than rise × interval (%s): the gate could never pass", time.Duration(g.Rise)*g.Interval)
			}
		},
		describe: func(g GateConfig) string {
			fails := strconv.Itoa(g.MaxFailures)
			if g.MaxFailures < 0 {
				fails = "any"
			}
			return fmt.Sprintf("probe: ≥%s of baseline-healthy VMs healthy and ≤%s failures, rise %d fall %d, every %s (timeout %s, %d at once), within %s",
				g.MinHealthy, fails, g.Rise, g.Fall, g.Interval, g.Timeout, g.Concurrency, g.Within)
		},
		live: func(g GateConfig, p health.Prober) health.Gate {
			return health.ProbeGate{Prober: p, MinHealthy: float64(g.MinHealthy),
				MaxFailures: g.MaxFailures, Rise: g.Rise, Fall: g.Fall, Interval: g.Interval,
				Timeout: g.Timeout, Within: g.Within, Concurrency: g.Concurrency}
		},
		least: risen,
	})
}

// risen is the shortest time a gate polled in rounds takes to pass: rise
// rounds, the first at once.
func risen(g GateConfig) time.Duration {
	return time.Duration(max(g.Rise, 1)-1) * g.Interval
}
