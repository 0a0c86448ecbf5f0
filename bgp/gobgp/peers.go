package gobgp

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	api "github.com/osrg/gobgp/v3/api"

	"github.com/cutover/cutover/bgp"
)

func secs(d time.Duration) uint64 { return uint64(d / time.Second) }

// apiPeer is the GoBGP configuration of p.
func (s *speaker) apiPeer(p bgp.PeerConfig) *api.Peer {
	gr := s.cfg.GracefulRestart
	afi := func(f *api.Family) *api.AfiSafi {
		return &api.AfiSafi{
			Config:            &api.AfiSafiConfig{Family: f, Enabled: true},
			MpGracefulRestart: &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: gr.Enabled}},
		}
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
	if p.Observe {
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
			// eorDeferral) and sends all routes followed by End-of-RIB.
			LocalRestarting: true,
			DeferralTime:    uint32(eorDeferral / time.Second),
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
	out := make([]bgp.PeerStatus, 0, len(s.cfg.Peers))
	for _, c := range s.cfg.Peers {
		ps := bgp.PeerStatus{Address: c.Address, AS: c.AS, State: "waiting for the first Set"}
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

// Accepted implements bgp.Speaker. It compares want with the mirrors of
// the observe peers, which the speaker keeps up to date from GoBGP's
// Adj-RIB-In events (see event), so it costs map lookups, not a copy of
// GoBGP's tables.
func (s *speaker) Accepted(ctx context.Context, want []bgp.Route) (bgp.Convergence, error) {
	if s.isClosed() {
		return bgp.Convergence{}, bgp.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return bgp.Convergence{}, err
	}
	c := bgp.Convergence{Want: len(want)}
	s.mirrorMu.Lock()
	defer s.mirrorMu.Unlock()
	for _, p := range s.cfg.Peers {
		if p.Observe {
			c.Peers = append(c.Peers, bgp.Compare(p.Address, want, s.mirror[p.Address]))
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
			s.up[a] = true
			return
		}
		s.mirrorMu.Lock()
		if _, ok := s.mirror[a]; ok {
			s.mirror[a] = map[netip.Prefix]bgp.Held{}
		}
		s.mirrorMu.Unlock()
		if s.up[a] {
			s.up[a] = false
			if s.cfg.GracefulRestart.Enabled {
				go s.rearm(a)
			}
		}
		return
	}
	paths := r.GetTable().GetPaths()
	if len(paths) == 0 {
		return
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

// rearm prepares the next session with a peer whose session was lost while
// the speaker runs (a link or the peer failing). GoBGP opens it without
// the graceful-restart Restart and Forwarding bits, as it only sets them on
// a speaker's first sessions, and a peer that kept our routes as stale then
// flushes them on that OPEN (RFC 4724 4.2) and learns them again a moment
// later: every route flaps. Configuring the peer anew makes the next OPEN
// carry both bits, so the peer keeps the routes until our End-of-RIB.
// GoBGP waits 5 s in idle before it reconnects, which leaves the time.
func (s *speaker) rearm(addr netip.Addr) {
	s.peersMu.Lock()
	defer s.peersMu.Unlock()
	if s.isClosed() {
		return
	}
	var pc *bgp.PeerConfig
	for i := range s.cfg.Peers {
		if s.cfg.Peers[i].Address == addr {
			pc = &s.cfg.Peers[i]
		}
	}
	if pc == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	log := s.log.With().Str("op", "rearm").Str("peer", addr.String()).Logger()
	peers, err := s.listPeers(ctx, false)
	if err != nil {
		log.Warn().Err(err).Msg("cannot re-arm graceful restart for the next session")
		return
	}
	if p, ok := peers[addr]; !ok || p.State.SessionState >= api.PeerState_OPENSENT {
		// Already reconnecting (or gone): deleting it now could end a new
		// session with a NOTIFICATION.
		log.Warn().Str("reason", "reconnected before it could be re-armed").
			Msg("the next session opens without the Forwarding bit; the peer may flush and relearn our routes")
		return
	}
	if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr.String()}); err != nil {
		log.Warn().Err(err).Msg("cannot re-arm graceful restart for the next session")
		return
	}
	if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: s.apiPeer(*pc)}); err != nil {
		log.Error().Err(err).Msg("lost the peer while re-arming graceful restart: restart the speaker")
		return
	}
	log.Info().Msg("session lost: the next one opens as a graceful restart, so the peer keeps our routes")
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
