package runbook

import (
	"fmt"
	"time"
)

// GateBGP waits after each announce until every observed peer holds the
// batch's routes with the target's next-hop.
const GateBGP = "bgp"

func init() {
	registerGate(GateBGP, gateKind{
		fields:   []string{"timeout"},
		defaults: map[string]any{"timeout": 30 * time.Second},
		check: func(rb *Runbook, g GateConfig, at string, bad badFunc) {
			positive(bad, at, "timeout", g.Timeout)
			observed := false
			for _, pr := range rb.BGP.Peers {
				observed = observed || pr.Observe.Observed()
			}
			if !observed && len(rb.BGP.Peers) > 0 {
				bad(at+".kind", g.Kind, "a bgp gate needs at least one observed peer (observe: bmp, mirror or sent)")
			}
		},
		describe: func(g GateConfig) string {
			return fmt.Sprintf("bgp: observed peers hold the batch's routes within %s", g.Timeout)
		},
	})
}
