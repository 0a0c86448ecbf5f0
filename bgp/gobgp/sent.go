package gobgp

import (
	"context"
	"net/netip"
	"time"

	api "github.com/osrg/gobgp/v3/api"

	"github.com/cutover/cutover/bgp"
)

// sentMark is where a sent peer's weak proof (bgp.ProofSent) stands: the
// KEEPALIVEs received from the peer when GoBGP was first seen to hold the
// routes of generation gen in the peer's Adj-RIB-Out, on the session that
// came up at uptime. A KEEPALIVE counted after it proves the session
// outlived the UPDATEs.
type sentMark struct {
	gen        uint64
	uptime     time.Time
	keepalives uint64
}

// sentView judges the sent peers: one ListPeer for all of them, and the
// announced routes as what they were sent. It holds s.mu (Set's lock):
// the routes and their generation must not change under it.
func (s *speaker) sentView(ctx context.Context, want []bgp.Route, peers []bgp.PeerConfig) ([]bgp.PeerConvergence, error) {
	if len(peers) == 0 {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var got map[netip.Addr]*api.Peer
	if s.isPeering() {
		var err error
		if got, err = s.listPeers(ctx, true); err != nil {
			return nil, err
		}
	}
	have := make(map[netip.Prefix]bgp.Held, len(s.announced))
	for p, r := range s.announced {
		have[p] = bgp.Held{NextHop: r.NextHop, Ours: true}
	}
	out := make([]bgp.PeerConvergence, 0, len(peers))
	for _, c := range peers {
		pc := bgp.PeerConvergence{Peer: c.Address, Proof: string(bgp.ProofSent)}
		if c.Observe == bgp.ProofBMP {
			pc.Proof += ", no BMP session"
		}
		pc.Reason = s.sentReason(got[c.Address], len(have))
		if pc.Reason == "" {
			cmp := bgp.Compare(c.Address, want, have)
			pc.Matched, pc.Missing = cmp.Matched, cmp.Missing
		}
		out = append(out, pc)
	}
	return out, nil
}

// sentReason returns "" when peer p has been sent the whole table and a
// KEEPALIVE arrived after, or what is still awaited. It moves the peer's
// mark along.
func (s *speaker) sentReason(p *api.Peer, announced int) string {
	if p == nil {
		return "session not configured yet"
	}
	if p.State.SessionState != api.PeerState_ESTABLISHED {
		return "session " + sessionState(p.State.SessionState)
	}
	if p.GetGracefulRestart().GetLocalRestarting() {
		return "session restarting: the table is not sent yet"
	}
	advertised := 0
	for _, a := range p.AfiSafis {
		advertised += int(a.GetState().GetAdvertised())
	}
	if advertised != announced {
		return "UPDATEs still going out"
	}
	addr, _ := netip.ParseAddr(p.State.NeighborAddress)
	var uptime time.Time
	if t := p.GetTimers().GetState().GetUptime(); t != nil {
		uptime = t.AsTime()
	}
	ka := p.GetState().GetMessages().GetReceived().GetKeepalive()
	m, ok := s.sent[addr]
	if !ok || m.gen != s.gen || !m.uptime.Equal(uptime) || ka < m.keepalives {
		s.sent[addr] = sentMark{gen: s.gen, uptime: uptime, keepalives: ka}
		return "waiting for a KEEPALIVE after the UPDATEs"
	}
	if ka == m.keepalives {
		return "waiting for a KEEPALIVE after the UPDATEs"
	}
	return ""
}
