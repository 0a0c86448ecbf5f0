package runbook

import (
	"fmt"
	"time"

	"github.com/cutover/cutover/bgp"
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
			checkSentTiming(rb, g, at, bad)
		},
		describe: func(g GateConfig) string {
			return fmt.Sprintf("bgp: observed peers hold the batch's routes within %s", g.Timeout)
		},
	})
}

// checkSentTiming refuses a bgp gate that a peer judged by the weak proof
// (observe: sent, or observe_fallback: sent) could never pass: the proof
// waits for the peer's next KEEPALIVE after the UPDATEs, which may come a
// whole keepalive interval later, so the gate needs twice that.
func checkSentTiming(rb *Runbook, g GateConfig, at string, bad badFunc) {
	for _, pr := range rb.BGP.Peers {
		if pr.Observe != bgp.ProofSent && pr.ObserveFallback != bgp.ProofSent {
			continue
		}
		switch {
		case pr.HoldTime == 0:
			bad(at+".timeout", g.Timeout.String(), "peer %s is proven by the weak proof (sent), which waits for a KEEPALIVE, and its hold_time 0 turns keepalives off", pr.Address)
			return
		case g.Timeout > 0 && g.Timeout < 2*pr.Keepalive:
			bad(at+".timeout", g.Timeout.String(), "peer %s is proven by the weak proof (sent), which waits for its next KEEPALIVE (every %s): give the gate at least %s, or the peer a shorter keepalive", pr.Address, pr.Keepalive, 2*pr.Keepalive)
			return
		}
	}
}
