package gobgp

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	api "github.com/osrg/gobgp/v3/api"

	"github.com/cutover/cutover/bgp"
)

// sentMark is where a sent peer's weak proof (bgp.ProofSent) stands, on
// the session that came up at uptime, for the routes of generation gen:
// the UPDATEs GoBGP had written to the peer and the KEEPALIVEs received
// from it when the last of the generation's UPDATEs was seen gone out.
// A KEEPALIVE counted after it, with no UPDATE written since, proves the
// session outlived the UPDATEs.
type sentMark struct {
	gen        uint64
	uptime     time.Time
	updates    uint64
	keepalives uint64
}

// sentBefore records, before a Set that changes routes sends anything, how
// many UPDATEs each sent peer has been written: the generation's UPDATEs
// are those written after. The caller holds s.mu.
func (s *speaker) sentBeforeLocked(ctx context.Context) {
	if !s.hasSentPeers || !s.isPeering() {
		return
	}
	peers, err := s.listPeers(ctx, false)
	if err != nil {
		// Without the count, every UPDATE counts: the proof may come a
		// KEEPALIVE early, never late.
		s.log.Warn().Err(err).Str("op", "set").Msg("cannot count the UPDATEs sent so far for the weak proof")
		clear(s.updatesBefore)
		return
	}
	for a, p := range peers {
		s.updatesBefore[a] = p.GetState().GetMessages().GetSent().GetUpdate()
	}
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
		if got, err = s.listPeers(ctx, false); err != nil {
			return nil, err
		}
	}
	// The announced routes as a peer's view, built once, and only when a
	// peer's proof stands: at 50,000 routes a copy per poll costs.
	var have map[netip.Prefix]bgp.Held
	out := make([]bgp.PeerConvergence, 0, len(peers))
	for _, c := range peers {
		pc := bgp.PeerConvergence{Peer: c.Address, Proof: judgedAs(c)}
		pc.Reason = s.sentReasonLocked(c.Address, got[c.Address])
		if pc.Reason == "" {
			if have == nil {
				have = make(map[netip.Prefix]bgp.Held, len(s.announced))
				for p, e := range s.announced {
					have[p] = bgp.Held{NextHop: s.enc.sets[e.id].route.NextHop, Ours: true}
				}
			}
			cmp := bgp.Compare(c.Address, want, have)
			pc.Matched, pc.Missing = cmp.Matched, cmp.Missing
		}
		out = append(out, pc)
	}
	return out, nil
}

const awaitKeepalive = "waiting for a KEEPALIVE after the UPDATEs"

// sentReasonLocked returns "" when the routes GoBGP holds have been
// written to peer p and a KEEPALIVE arrived after the last UPDATE, or what
// is still awaited. It moves the peer's mark along.
func (s *speaker) sentReasonLocked(addr netip.Addr, p *api.Peer) string {
	if p == nil {
		return "session not configured yet"
	}
	if p.State.SessionState != api.PeerState_ESTABLISHED {
		return "session " + sessionState(p.State.SessionState)
	}
	if p.GetGracefulRestart().GetLocalRestarting() {
		return "session restarting: the table is not sent yet"
	}
	var uptime time.Time
	if t := p.GetTimers().GetState().GetUptime(); t != nil {
		uptime = t.AsTime()
	}
	msgs := p.GetState().GetMessages()
	updates, ka := msgs.GetSent().GetUpdate(), msgs.GetReceived().GetKeepalive()
	m, ok := s.sent[addr]
	switch {
	case ok && m.gen == s.gen && m.uptime.Equal(uptime) && m.updates == updates:
		if ka > m.keepalives {
			return ""
		}
		return awaitKeepalive
	case !ok || !m.uptime.Equal(uptime):
		// A new session: it was sent the whole table when it came up
		// (see sync), before or after now; take the UPDATEs written so
		// far as all of them.
	case m.gen != s.gen:
		if before, ok := s.updatesBefore[addr]; ok && updates <= before {
			return "UPDATEs not sent yet"
		}
	}
	// Another UPDATE went out since the mark (or a new generation, or a
	// new session): a KEEPALIVE must follow this one.
	s.sent[addr] = sentMark{gen: s.gen, uptime: uptime, updates: updates, keepalives: ka}
	return awaitKeepalive
}

// Refresh implements bgp.Refresher: GoBGP sends peer every route again
// (a soft reset out), between Sets.
func (s *speaker) Refresh(ctx context.Context, peer netip.Addr) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isClosed() {
		return bgp.ErrClosed
	}
	if err := s.srv.ResetPeer(ctx, &api.ResetPeerRequest{Address: peer.String(), Soft: true, Direction: api.ResetPeerRequest_OUT}); err != nil {
		return fmt.Errorf("send the routes to %s again: %w", peer, err)
	}
	return nil
}
