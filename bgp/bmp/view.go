package bmp

import (
	"context"
	"net/netip"

	"github.com/cutover/cutover/bgp"
)

// Edge names a router for Holds: its end of the session with the
// controller, and the controller's address there (zero when Router alone
// picks the session).
type Edge struct {
	Router, Controller netip.Addr
}

// View answers bgp.Speaker's Accepted from the station, so the gate can
// judge convergence by what the edges report over BMP.
type View struct {
	Station *Station
	Edges   []Edge
}

// Accepted returns one PeerConvergence per edge. An edge the station
// cannot judge (no session, down, no usable table) matches nothing and
// lists the first wanted prefixes as missing, so waiting goes on until the
// deadline; Holds tells why.
func (v View) Accepted(_ context.Context, want []bgp.Route) (bgp.Convergence, error) {
	c := bgp.Convergence{Want: len(want)}
	for _, e := range v.Edges {
		h := v.Station.Holds(e.Router, e.Controller, want)
		pc := h.PeerConvergence()
		if h.Reason != "" {
			for _, r := range want[:min(len(want), bgp.MaxMissing)] {
				pc.Missing = append(pc.Missing, r.Prefix)
			}
		}
		c.Peers = append(c.Peers, pc)
	}
	return c, nil
}
