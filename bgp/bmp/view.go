package bmp

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/cutover/cutover/bgp"
)

// Observer answers the bgp gate for every observed peer by its proof
// (bgp.PeerConfig.Observe): a bmp peer by what its router reports to the
// station, every other one by the speaker. While a bmp peer's router has
// never opened a BMP session, its ObserveFallback (when set) answers
// through the speaker instead; a router whose BMP session went down waits
// for it to come back.
type Observer struct {
	Station *Station
	// Speaker judges mirror and sent, and the fallbacks.
	Speaker bgp.Observer
	// Peers are the speaker's peers, in the order Accepted lists them.
	Peers []bgp.PeerConfig
	// Nudge, when set and Speaker is a bgp.Refresher, has the speaker
	// send a bmp peer its routes again when its router's view keeps
	// missing some (see Nudger).
	Nudge *Nudger
}

// Accepted implements bgp.Observer: one PeerConvergence per observed peer,
// each saying which proof answered.
func (o Observer) Accepted(ctx context.Context, want []bgp.Route) (bgp.Convergence, error) {
	c := bgp.Convergence{Want: len(want)}
	var bySpeaker map[netip.Addr]bgp.PeerConvergence
	speaker := func(addr netip.Addr) (bgp.PeerConvergence, error) {
		if bySpeaker == nil {
			sc, err := o.Speaker.Accepted(ctx, want)
			if err != nil {
				return bgp.PeerConvergence{}, err
			}
			bySpeaker = make(map[netip.Addr]bgp.PeerConvergence, len(sc.Peers))
			for _, pc := range sc.Peers {
				bySpeaker[pc.Peer] = pc
			}
		}
		pc, ok := bySpeaker[addr]
		if !ok {
			return bgp.PeerConvergence{}, fmt.Errorf("peer %s: the speaker does not judge it", addr)
		}
		return pc, nil
	}
	for _, p := range o.Peers {
		if !p.Observe.Observed() {
			continue
		}
		if p.Observe == bgp.ProofBMP {
			h := o.Station.Holds(p.Address, p.LocalAddress, want)
			o.Nudge.note(ctx, p.Address, h, o.Speaker)
			if !h.NoSession || !p.ObserveFallback.Observed() {
				c.Peers = append(c.Peers, h.PeerConvergence())
				continue
			}
		}
		pc, err := speaker(p.Address)
		if err != nil {
			return bgp.Convergence{}, err
		}
		c.Peers = append(c.Peers, pc)
	}
	return c, nil
}
