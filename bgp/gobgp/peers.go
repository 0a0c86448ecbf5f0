package gobgp

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	api "github.com/osrg/gobgp/v3/api"

	"github.com/cutover/cutover/bgp"
)

func secs(d time.Duration) uint64 { return uint64(d / time.Second) }

// apiPeer is the GoBGP configuration of p.
func (s *speaker) apiPeer(p bgp.PeerConfig) *api.Peer {
	gr := s.cfg.GracefulRestart
	llgr := gr.Enabled && gr.LongLivedStaleTime > 0
	afi := func(f *api.Family) *api.AfiSafi {
		a := &api.AfiSafi{
			Config:            &api.AfiSafiConfig{Family: f, Enabled: true},
			MpGracefulRestart: &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: gr.Enabled}},
		}
		if llgr {
			// RFC 9494: the family's long-lived stale time in the LLGR
			// capability, its F bit set like the GR one (on every OPEN, as
			// LocalRestarting below).
			a.LongLivedGracefulRestart = &api.LongLivedGracefulRestart{Config: &api.LongLivedGracefulRestartConfig{
				Enabled: true, RestartTime: uint32(secs(gr.LongLivedStaleTime)),
			}}
		}
		return a
	}
	ap := &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: p.Address.String(),
			PeerAsn:         p.AS,
			AuthPassword:    p.Password,
		},
		Timers: &api.Timers{Config: &api.TimersConfig{
			HoldTime:               secs(p.HoldTime),
			KeepaliveInterval:      secs(p.Keepalive),
			ConnectRetry:           secs(connectRetry),
			IdleHoldTimeAfterReset: secs(connectRetry),
		}},
		Transport: &api.Transport{PassiveMode: p.Passive, RemotePort: uint32(p.Port)},
		AfiSafis:  []*api.AfiSafi{afi(familyV4), afi(familyV6)},
	}
	if p.LocalAddress.IsValid() {
		ap.Transport.LocalAddress = p.LocalAddress.String()
	}
	if judges(p) == bgp.ProofMirror {
		// The mirror of our own routes carries our AS. Let it pass GoBGP's
		// AS-loop check, which would drop it before the Adj-RIB-In events
		// that Accepted is built on; the import policy keeps it out of the
		// Loc-RIB all the same.
		ap.Conf.AllowOwnAsn = 255
	}
	if gr.Enabled {
		ap.GracefulRestart = &api.GracefulRestart{
			Enabled:     true,
			RestartTime: uint32(gr.RestartTime / time.Second),
			// RFC 8538: a Cease that is not a Hard Reset keeps the routes;
			// Close relies on it.
			NotificationEnabled: true,
			// Open every session as a restarting speaker: the Restart bit,
			// and the Forwarding bit per family so the peer keeps our stale
			// routes instead of flushing them (RFC 4724 4.2). GoBGP then
			// holds its updates until the peer's End-of-RIB (or
			// eorDeferral); sync sends all routes and End-of-RIB first.
			LocalRestarting:  true,
			DeferralTime:     uint32(eorDeferral / time.Second),
			LonglivedEnabled: llgr,
		}
	}
	return ap
}

// addPeersLocked configures every peer; GoBGP then connects.
func (s *speaker) addPeersLocked(ctx context.Context) error {
	for _, p := range s.cfg.Peers {
		if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: s.apiPeer(p)}); err != nil {
			return fmt.Errorf("add peer %s: %w", p.Address, err)
		}
	}
	return nil
}

func sessionState(st api.PeerState_SessionState) string {
	return strings.ToLower(st.String())
}

// listPeers returns GoBGP's view of every peer by address.
func (s *speaker) listPeers(ctx context.Context, advertised bool) (map[netip.Addr]*api.Peer, error) {
	out := map[netip.Addr]*api.Peer{}
	err := s.srv.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: advertised}, func(p *api.Peer) {
		if p.State == nil {
			return
		}
		if a, err := netip.ParseAddr(p.State.NeighborAddress); err == nil {
			out[a] = p
		}
	})
	if err != nil {
		return nil, fmt.Errorf("list peers: %w", err)
	}
	return out, nil
}

// Peers implements bgp.Speaker.
func (s *speaker) Peers(ctx context.Context) ([]bgp.PeerStatus, error) {
	if s.isClosed() {
		return nil, bgp.ErrClosed
	}
	var got map[netip.Addr]*api.Peer
	if s.isPeering() {
		var err error
		if got, err = s.listPeers(ctx, true); err != nil {
			return nil, err
		}
	}
	accepted := s.acceptedCounts()
	out := make([]bgp.PeerStatus, 0, len(s.cfg.Peers))
	for _, c := range s.cfg.Peers {
		ps := bgp.PeerStatus{Address: c.Address, AS: c.AS, State: "waiting for the first Set",
			Observe: c.Observe, Accepted: accepted[c.Address]}
		if p, ok := got[c.Address]; ok {
			ps.State = sessionState(p.State.SessionState)
			ps.Established = p.State.SessionState == api.PeerState_ESTABLISHED
			if t := p.GetTimers().GetState().GetUptime(); ps.Established && t != nil {
				ps.Uptime = time.Since(t.AsTime()).Truncate(time.Second)
			}
			for _, a := range p.AfiSafis {
				if st := a.GetState(); st != nil {
					ps.Received += int(st.Received)
					ps.Advertised += int(st.Advertised)
				}
			}
		}
		out = append(out, ps)
	}
	return out, nil
}

// acceptedCounts counts, per observe peer, the prefixes its mirror holds
// with our AS on the path.
func (s *speaker) acceptedCounts() map[netip.Addr]int {
	s.mirrorMu.Lock()
	defer s.mirrorMu.Unlock()
	out := make(map[netip.Addr]int, len(s.mirror))
	for a, view := range s.mirror {
		for _, h := range view {
			if h.Ours {
				out[a]++
			}
		}
	}
	return out
}

// judges returns the proof the speaker judges for peer p: its Observe,
// or with bmp its fallback (the BMP station judges bmp itself); ""
// when none.
func judges(p bgp.PeerConfig) bgp.Proof {
	pr := p.Observe
	if pr == bgp.ProofBMP {
		pr = p.ObserveFallback
	}
	if pr == bgp.ProofMirror || pr == bgp.ProofSent {
		return pr
	}
	return bgp.ProofNone
}

// judgedAs names the proof the speaker judges p by, for
// PeerConvergence.Proof: "mirror", "sent", or for a bmp peer judged by
// its fallback "sent, no BMP session".
func judgedAs(p bgp.PeerConfig) string {
	s := string(judges(p))
	if p.Observe == bgp.ProofBMP {
		s += bgp.NoBMPSession
	}
	return s
}

// Accepted implements bgp.Speaker for the peers it judges (see judges),
// in configuration order. Mirror peers are compared with the mirrors the
// speaker keeps up to date from GoBGP's Adj-RIB-In events (see event), so
// they cost map lookups, not a copy of GoBGP's tables; sent peers with
// the announced routes and GoBGP's session counters (see sentView).
func (s *speaker) Accepted(ctx context.Context, want []bgp.Route) (bgp.Convergence, error) {
	if s.isClosed() {
		return bgp.Convergence{}, bgp.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return bgp.Convergence{}, err
	}
	var sentPeers []bgp.PeerConfig
	for _, p := range s.cfg.Peers {
		if judges(p) == bgp.ProofSent {
			sentPeers = append(sentPeers, p)
		}
	}
	sent, err := s.sentView(ctx, want, sentPeers)
	if err != nil {
		return bgp.Convergence{}, err
	}
	c := bgp.Convergence{Want: len(want)}
	s.mirrorMu.Lock()
	defer s.mirrorMu.Unlock()
	for _, p := range s.cfg.Peers {
		switch judges(p) {
		case bgp.ProofMirror:
			pc := bgp.Compare(p.Address, want, s.mirror[p.Address])
			pc.Proof = judgedAs(p)
			c.Peers = append(c.Peers, pc)
		case bgp.ProofSent:
			c.Peers = append(c.Peers, sent[0])
			sent = sent[1:]
		}
	}
	return c, nil
}

// event handles GoBGP's peer and Adj-RIB-In events, in order (one watch):
// it logs session changes, keeps each observe peer's mirror, and forgets a
// mirror when its session goes down (the peer resends it all when it comes
// back).
func (s *speaker) event(r *api.WatchEventResponse) {
	if ev := r.GetPeer(); ev != nil {
		if ev.Type != api.WatchEventResponse_PeerEvent_STATE || ev.Peer.GetState() == nil {
			return
		}
		st := ev.Peer.State
		s.log.Info().Str("op", "peer").Str("peer", st.NeighborAddress).Uint32("as", st.PeerAsn).
			Str("state", sessionState(st.SessionState)).Msg("peer state")
		a, err := netip.ParseAddr(st.NeighborAddress)
		if err != nil {
			return
		}
		if st.SessionState == api.PeerState_ESTABLISHED {
			if s.cfg.GracefulRestart.Enabled {
				go s.sync(a)
				// Another peer's session coming up can end GoBGP's
				// restart state for every peer (see rearm).
				go s.rearm()
			}
			return
		}
		s.mirrorMu.Lock()
		if _, ok := s.mirror[a]; ok {
			s.mirror[a] = map[netip.Prefix]bgp.Held{}
		}
		s.mirrorMu.Unlock()
		if s.cfg.GracefulRestart.Enabled {
			// A session lost, or an attempt that failed while GoBGP
			// ended its restart state (see rearm).
			go s.rearm()
		}
		return
	}
	paths := r.GetTable().GetPaths()
	if len(paths) == 0 {
		return
	}
	if s.cfg.GracefulRestart.Enabled && slices.ContainsFunc(paths, isEOR) {
		// A peer's End-of-RIB can end GoBGP's restart state for every
		// peer (see rearm).
		go s.rearm()
	}
	s.mirrorMu.Lock()
	defer s.mirrorMu.Unlock()
	for _, p := range paths {
		from, err := netip.ParseAddr(p.NeighborIp)
		if err != nil {
			continue
		}
		view, ok := s.mirror[from]
		if !ok {
			continue // not an observe peer
		}
		prefix, h, ok := heldFrom(p, s.cfg.LocalAS)
		if !ok {
			continue
		}
		if p.IsWithdraw {
			delete(view, prefix)
		} else {
			view[prefix] = h
		}
	}
}

// isEOR reports whether a watched path is an End-of-RIB marker: the only
// kind without an NLRI.
func isEOR(p *api.Path) bool { return p.Nlri == nil && len(p.NlriBinary) == 0 }

// sync sends a newly established session the whole table and End-of-RIB
// at once. GoBGP opens it as a restarting speaker (LocalRestarting) and then
// holds every update back until the peer's End-of-RIB has arrived, or the
// deferral timer has run out, unless the peer's own OPEN had the Restart
// bit. A peer sends its End-of-RIB when it pleases (FRR: after its first
// update run, about a second), and until then it holds our routes only as
// stale: lost again in that time (the speaker crashing in a restart loop),
// FRR deletes every path that is still stale instead of keeping it
// (bgp_clear_route_node), and the routes are gone until the next speaker
// re-announces them. A soft reset out sends the Loc-RIB and End-of-RIB now;
// holding s.mu, it never sends End-of-RIB in the middle of a Set.
func (s *speaker) sync(addr netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isClosed() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	log := s.log.With().Str("op", "sync").Str("peer", addr.String()).Logger()
	peers, err := s.listPeers(ctx, false)
	if err != nil {
		log.Warn().Err(err).Msg("cannot send the table to the new session at once; GoBGP sends it after the peer's End-of-RIB")
		return
	}
	p, ok := peers[addr]
	if !ok || p.State.SessionState != api.PeerState_ESTABLISHED || !p.GetGracefulRestart().GetLocalRestarting() {
		return // gone again, or GoBGP has sent the table already
	}
	if err := s.srv.ResetPeer(ctx, &api.ResetPeerRequest{Address: addr.String(), Soft: true, Direction: api.ResetPeerRequest_OUT}); err != nil {
		log.Warn().Err(err).Msg("cannot send the table to the new session at once; GoBGP sends it after the peer's End-of-RIB")
		return
	}
	log.Debug().Int("prefixes", len(s.announced)).Msg("session up: whole table and End-of-RIB sent")
}

// rearm keeps the Restart and Forwarding bits in the next OPEN to every
// peer that is not in a session. GoBGP sets them only while a peer is
// "restarting" (LocalRestarting), which only adding the peer sets, and it
// ends that state when the session has synchronised, and for every other
// peer too once the End-of-RIBs of all established ones are in (its
// RFC 4724 4.1 loop over all neighbours, at a session coming up or an
// End-of-RIB arriving). A peer that kept our routes as stale and then gets
// an OPEN without the Forwarding bit flushes them (RFC 4724 4.2) and
// learns them again a moment later: every route flaps. So after each of
// those events, a peer that lost its session while the speaker runs, or
// that has not yet reached its session while another one came up, is
// configured anew; GoBGP waits in idle (or between connection attempts)
// long enough before it connects.
func (s *speaker) rearm() {
	s.peersMu.Lock()
	defer s.peersMu.Unlock()
	if s.isClosed() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	peers, err := s.listPeers(ctx, false)
	if err != nil {
		s.log.Warn().Str("op", "rearm").Err(err).Msg("cannot re-arm graceful restart for the next sessions")
		return
	}
	for i := range s.cfg.Peers {
		pc := s.cfg.Peers[i]
		p, ok := peers[pc.Address]
		if !ok || p.GetGracefulRestart().GetLocalRestarting() {
			continue
		}
		log := s.log.With().Str("op", "rearm").Str("peer", pc.Address.String()).Logger()
		switch st := p.State.SessionState; {
		case st == api.PeerState_ESTABLISHED:
			continue // synchronised; re-armed when it is lost
		case st >= api.PeerState_OPENSENT:
			// Deleting it now could end a new session with a
			// NOTIFICATION.
			log.Warn().Str("reason", "reconnected before it could be re-armed").
				Msg("the next session opens without the Forwarding bit; the peer may flush and relearn our routes")
			continue
		}
		if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: pc.Address.String()}); err != nil {
			log.Warn().Err(err).Msg("cannot re-arm graceful restart for the next session")
			continue
		}
		if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: s.apiPeer(pc)}); err != nil {
			log.Error().Err(err).Msg("lost the peer while re-arming graceful restart: restart the speaker")
			continue
		}
		log.Info().Msg("no session: the next one opens as a graceful restart, so the peer keeps our routes")
	}
}

// grNotificationFlag is the N bit of the graceful restart capability
// (RFC 8538) as GoBGP reports the flags.
const grNotificationFlag = 0x04

// endSessionsLocked ends every established session without making the
// peers withdraw our routes, and waits until they are down.
func (s *speaker) endSessionsLocked(ctx context.Context) error {
	if !s.isPeering() {
		return nil
	}
	peers, err := s.listPeers(ctx, false)
	if err != nil {
		return err
	}
	var plain []netip.Addr
	for addr, p := range peers {
		if p.State.SessionState != api.PeerState_ESTABLISHED {
			continue
		}
		gr, notif := remoteGR(p)
		log := s.log.Info().Str("op", "close").Str("peer", addr.String())
		switch {
		case !s.cfg.GracefulRestart.Enabled || !gr:
			s.log.Warn().Str("op", "close").Str("peer", addr.String()).
				Str("reason", "graceful restart not negotiated").Msg("peer will withdraw our routes now")
			plain = append(plain, addr)
		case notif:
			log.Str("reason", "Cease/Administrative Reset, RFC 8538 keeps routes").Msg("ending session")
			if err := s.srv.ResetPeer(ctx, &api.ResetPeerRequest{
				Address: addr.String(), Communication: "cutover speaker stopping; keep routes (graceful restart)",
			}); err != nil {
				return fmt.Errorf("reset peer %s: %w", addr, err)
			}
		default:
			log.Str("reason", "TCP close without NOTIFICATION, graceful restart keeps routes").Msg("ending session")
			plain = append(plain, addr)
		}
	}
	if err := shutdownSessions(plain); err != nil {
		return err
	}
	// Wait until GoBGP has let go of every session, so that stopping it
	// afterwards sends no NOTIFICATION (GoBGP sends one only on an
	// established session).
	for {
		peers, err := s.listPeers(ctx, false)
		if err != nil {
			return err
		}
		up := 0
		for _, p := range peers {
			if p.State.SessionState == api.PeerState_ESTABLISHED {
				up++
			}
		}
		if up == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("end sessions: %d still established: %w", up, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// remoteGR reports whether the peer sent the graceful restart capability,
// and whether with the N bit.
func remoteGR(p *api.Peer) (gr, notification bool) {
	for _, a := range p.GetState().GetRemoteCap() {
		var c api.GracefulRestartCapability
		if a.MessageIs(&c) && a.UnmarshalTo(&c) == nil {
			return true, c.Flags&grNotificationFlag != 0
		}
	}
	return false, false
}
