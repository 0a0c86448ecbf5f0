// Package gobgp is the bgp.Speaker backed by an embedded GoBGP v3 server
// (github.com/osrg/gobgp/v3/pkg/server): no gobgpd process; GoBGP's gRPC
// API is served only on a private socket, for its bulk AddPathStream.
//
// How it keeps its promises:
//   - Set diffs the desired routes against what it announced and calls
//     GoBGP with paths in wire format, new and changed routes first (a
//     changed route is an implicit replace, so its prefix never disappears),
//     withdrawals last.
//   - Peering starts with the first complete Set, and every session opens
//     with the graceful-restart Restart and Forwarding bits set: a restarted
//     speaker's peers keep the old routes as stale, receive the re-announced
//     routes, then End-of-RIB, and drop only what was not re-announced
//     (RFC 4724). Nothing flaps across a restart.
//   - The whole table and End-of-RIB go out the moment a session is
//     established (see sync), not after the peer's own End-of-RIB as
//     GoBGP would have it: a peer still holds our routes as stale until
//     they are re-announced, and FRR deletes every path that is still
//     stale when the session is lost again (bgp_clear_route_node), so
//     a crash loop must find them refreshed at once.
//   - Long-lived graceful restart (RFC 9494) is offered as well: a peer
//     that supports it keeps the routes, least preferred, for
//     LongLivedStaleTime after the restart time has run out.
//   - Routes learned from peers never enter the Loc-RIB (a global import
//     policy rejects them), so the speaker is never transit. What observe
//     peers send (the mirror of their best paths for our prefixes) is kept
//     from GoBGP's Adj-RIB-In events, and Accepted compares against it.
//   - A session lost while the speaker runs is re-armed the same way, so
//     the next one also opens as a graceful restart.
//   - Close stops without withdrawing: sessions end with a Cease that is not
//     a Hard Reset where RFC 8538 was negotiated, or with a plain TCP close
//     otherwise, so graceful-restart helpers keep the routes.
//   - Bulk: paths reach GoBGP through AddPathStream, thousands per call
//     (see stream.go for why and the measurements).
//
// GoBGP keeps its route-selection options in package variables, so run one
// speaker per process (tests start several in sequence).
package gobgp

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"
	"github.com/rs/zerolog"

	"github.com/cutover/cutover/bgp"
)

// eorDeferral is how long GoBGP holds back updates on a (re)starting
// session while it waits for the peer's End-of-RIB (RFC 4724 4.1 deferral,
// meant for a speaker that selects among its peers' routes). The speaker
// needs nothing from its peers, and sync sends the whole table at once
// anyway; the deferral only delays later changes, so it is the shortest
// GoBGP takes (whole seconds; 0 means its default of 360 s).
const eorDeferral = time.Second

// closeTimeout bounds how long Close waits for the sessions to end.
const closeTimeout = 20 * time.Second

// connectRetry is how often an unestablished session is retried.
const connectRetry = 3 * time.Second

// Policy names the speaker installs in GoBGP.
const (
	anyPeerSet      = "cutover-any-peer"
	noTransitPolicy = "cutover-no-transit"
)

// speaker implements bgp.Speaker.
type speaker struct {
	cfg    bgp.Config
	log    zerolog.Logger
	srv    *server.BgpServer
	api    *apiSocket         // GoBGP's gRPC API, for AddPathStream
	cancel context.CancelFunc // stops the peer watcher

	mu        sync.Mutex // serialises Set and Close; guards enc, announced and epoch
	enc       *encoder
	announced map[netip.Prefix]entry // what GoBGP holds, updated per batch
	epoch     uint32                 // counts Sets, to mark what a Set still wants
	peering   atomic.Bool            // peers added (by the first Set)
	closed    atomic.Bool

	// peersMu serialises re-arming peers (rearm) with Close.
	peersMu sync.Mutex

	// gen counts the Sets that changed what GoBGP holds; sent marks, per
	// peer with the weak proof, where its proof stands (see sentReason).
	// Both are guarded by mu.
	gen  uint64
	sent map[netip.Addr]sentMark
	// updatesBefore counts, per peer, the UPDATEs written before the
	// current generation's Set (see sentBeforeLocked); guarded by mu.
	updatesBefore map[netip.Addr]uint64
	hasSentPeers  bool

	// syncing lists the sessions still in their graceful-restart sync
	// (syncingPeers; tests replace it).
	syncing func(context.Context) ([]string, error)

	mirrorMu sync.Mutex
	// mirror holds, per mirror peer, what it sent us: its best paths for
	// our prefixes.
	mirror map[netip.Addr]map[netip.Prefix]bgp.Held
}

func (s *speaker) isPeering() bool { return s.peering.Load() }
func (s *speaker) isClosed() bool  { return s.closed.Load() }

var (
	_ bgp.Speaker   = (*speaker)(nil)
	_ bgp.Refresher = (*speaker)(nil)
)

// New starts an embedded GoBGP server for cfg. Sessions are opened by the
// first Set (call Set(ctx, nil) to peer without announcing anything), so
// that a restarted speaker has its routes in place before End-of-RIB.
//
// New adds the key component ("bgp") to log, so log must not have one:
// zerolog would write the key twice in every line.
func New(ctx context.Context, cfg bgp.Config, log zerolog.Logger) (bgp.Speaker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bgp config: %w", err)
	}
	cfg = cfg.WithDefaults()
	for _, p := range cfg.Peers {
		if p.Password != "" {
			if err := checkMD5(p.Address, cfg.ListenPort > 0); err != nil {
				return nil, fmt.Errorf("bgp config: peer %s: password: %w", p.Address, err)
			}
		}
	}
	log = log.With().Str("component", "bgp").Logger()
	sock, opts, err := newAPISocket()
	if err != nil {
		return nil, err
	}
	srv := server.NewBgpServer(append(opts, server.LoggerOption(logger{log}))...)
	go srv.Serve()
	s := &speaker{
		cfg: cfg, log: log, srv: srv, api: sock, enc: newEncoder(cfg.LocalAS),
		announced: map[netip.Prefix]entry{}, mirror: map[netip.Addr]map[netip.Prefix]bgp.Held{},
		sent: map[netip.Addr]sentMark{}, updatesBefore: map[netip.Addr]uint64{},
	}
	s.syncing = s.syncingPeers
	for _, p := range cfg.Peers {
		s.hasSentPeers = s.hasSentPeers || judges(p) == bgp.ProofSent
		if judges(p) == bgp.ProofMirror {
			s.mirror[p.Address] = map[netip.Prefix]bgp.Held{}
		}
	}
	fail := func(err error) (bgp.Speaker, error) {
		srv.Stop()
		sock.close()
		return nil, err
	}
	if err := s.start(ctx); err != nil {
		return fail(err)
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = sock.dial(dctx)
	cancel()
	if err != nil {
		return fail(err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	// One watch for all kinds of events keeps them in order. It starts
	// before any session, so it sees every update. End-of-RIB markers
	// tell when GoBGP may have ended its restart state (see rearm).
	watch := &api.WatchEventRequest{
		Peer: &api.WatchEventRequest_Peer{},
		Table: &api.WatchEventRequest_Table{Filters: []*api.WatchEventRequest_Table_Filter{
			{Type: api.WatchEventRequest_Table_Filter_ADJIN}, {Type: api.WatchEventRequest_Table_Filter_EOR},
		}},
	}
	if err := srv.WatchEvent(wctx, watch, s.event); err != nil {
		cancel()
		return fail(fmt.Errorf("watch peers and adj-rib-in: %w", err))
	}
	return s, nil
}

func (s *speaker) start(ctx context.Context) error {
	g := &api.Global{
		Asn:        s.cfg.LocalAS,
		RouterId:   s.cfg.RouterID.String(),
		ListenPort: s.cfg.ListenPort,
	}
	for _, a := range s.cfg.ListenAddresses {
		g.ListenAddresses = append(g.ListenAddresses, a.String())
	}
	if err := s.srv.StartBgp(ctx, &api.StartBgpRequest{Global: g}); err != nil {
		return fmt.Errorf("start bgp: %w", err)
	}
	// Never transit: reject every path learned from any peer before it
	// reaches the Loc-RIB. Locally originated paths have no neighbor
	// address and do not match.
	if err := s.srv.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: &api.DefinedSet{
		DefinedType: api.DefinedType_NEIGHBOR, Name: anyPeerSet, List: []string{"0.0.0.0/0", "::/0"},
	}}); err != nil {
		return fmt.Errorf("add neighbor set: %w", err)
	}
	if err := s.srv.AddPolicy(ctx, &api.AddPolicyRequest{Policy: &api.Policy{
		Name: noTransitPolicy,
		Statements: []*api.Statement{{
			Name:       noTransitPolicy + "-reject",
			Conditions: &api.Conditions{NeighborSet: &api.MatchSet{Type: api.MatchSet_ANY, Name: anyPeerSet}},
			Actions:    &api.Actions{RouteAction: api.RouteAction_REJECT},
		}},
	}}); err != nil {
		return fmt.Errorf("add policy: %w", err)
	}
	if err := s.srv.AddPolicyAssignment(ctx, &api.AddPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name: "global", Direction: api.PolicyDirection_IMPORT,
		Policies: []*api.Policy{{Name: noTransitPolicy}}, DefaultAction: api.RouteAction_ACCEPT,
	}}); err != nil {
		return fmt.Errorf("assign import policy: %w", err)
	}
	return nil
}

// Set implements bgp.Speaker.
func (s *speaker) Set(ctx context.Context, desired []bgp.Route) error {
	if err := bgp.CheckRoutes(desired, s.cfg.Limits); err != nil {
		return err
	}
	if err := s.checkPrepend(desired); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isClosed() {
		return bgp.ErrClosed
	}
	start := time.Now()
	// Mark every announced prefix that is still wanted with this Set's
	// epoch; what is left unmarked is withdrawn. CheckRoutes refused
	// duplicate prefixes.
	s.epoch++
	var add []change
	changed := 0
	for _, r := range desired {
		id, err := s.enc.intern(r)
		if err != nil {
			return fmt.Errorf("set routes: %w", err)
		}
		old, ok := s.announced[r.Prefix]
		if ok {
			old.epoch = s.epoch
			s.announced[r.Prefix] = old
			if old.id == id {
				continue
			}
			changed++
		}
		add = append(add, change{r.Prefix, id})
	}
	// A family none of whose routes is still wanted (rollback --all) is
	// withdrawn in one call: GoBGP drops its own paths of the family
	// without 50,000 paths crossing its API.
	var kept, held [2]int
	for _, r := range desired {
		kept[famIndex(r.Prefix)]++
	}
	var del []change
	for p, e := range s.announced {
		f := famIndex(p)
		held[f]++
		if e.epoch != s.epoch && kept[f] > 0 {
			del = append(del, change{p, e.id})
		}
	}
	var whole []int
	for f := range held {
		if held[f] > 0 && kept[f] == 0 {
			whole = append(whole, f)
		}
	}
	withdrawn := len(del)
	for _, f := range whole {
		withdrawn += held[f]
	}
	if len(add)+withdrawn > 0 {
		s.sentBeforeLocked(ctx)
		s.gen++
	}
	if err := s.announceLocked(ctx, add); err != nil {
		return fmt.Errorf("set routes: %w", err)
	}
	if withdrawn > 0 {
		s.awaitSyncedLocked(ctx)
	}
	for _, f := range whole {
		if err := s.withdrawFamilyLocked(ctx, f); err != nil {
			return fmt.Errorf("set routes: %w", err)
		}
	}
	if err := s.withdrawLocked(ctx, del); err != nil {
		return fmt.Errorf("set routes: %w", err)
	}
	if !s.isPeering() {
		if err := s.addPeersLocked(ctx); err != nil {
			return fmt.Errorf("set routes: %w", err)
		}
		s.peering.Store(true)
	}
	s.log.Debug().Str("op", "set").Int("prefixes", len(desired)).Int("new", len(add)-changed).
		Int("changed", changed).Int("withdrawn", withdrawn).Dur("took", time.Since(start)).Msg("routes set")
	return nil
}

// checkPrepend refuses AS-path prepending when an iBGP peer is configured:
// the prepends are our own AS, and an iBGP peer (same AS) drops a path with
// its own AS on the AS_PATH as a loop. GoBGP sends one AS_PATH to all peers.
func (s *speaker) checkPrepend(rs []bgp.Route) error {
	var ibgp *bgp.PeerConfig
	for i, p := range s.cfg.Peers {
		if p.AS == s.cfg.LocalAS {
			ibgp = &s.cfg.Peers[i]
			break
		}
	}
	if ibgp == nil {
		return nil
	}
	e := &bgp.RefusedError{Routes: len(rs), MaxPrefixes: s.cfg.Limits.MaxPrefixes}
	for _, r := range rs {
		if r.Prepend > 0 {
			e.Offending++
			if len(e.Offenses) < bgp.MaxMissing {
				e.Offenses = append(e.Offenses, bgp.Offense{Route: r, Reason: fmt.Sprintf(
					"prepend needs eBGP peers only: iBGP peer %s would drop the path as an AS loop", ibgp.Address)})
			}
		}
	}
	if e.Offending > 0 {
		return e
	}
	return nil
}

// entry is an announced prefix: its attributes, and the last Set that
// wanted it.
type entry struct {
	id    attrID
	epoch uint32
}

// change is a prefix to announce with attributes id, or to withdraw.
type change struct {
	prefix netip.Prefix
	id     attrID
}

// announceLocked hands new and changed routes to GoBGP, recording each one
// it accepted in s.announced.
func (s *speaker) announceLocked(ctx context.Context, cs []change) error {
	return s.sendLocked(ctx, cs, false)
}

// syncWait bounds how long a withdrawal waits for a session's
// graceful-restart sync to end: GoBGP ends it at the peer's End-of-RIB or
// when the deferral (eorDeferral) runs out.
const syncWait = eorDeferral + 2*time.Second

// awaitSyncedLocked waits until no established session is still in its
// graceful-restart sync (GoBGP's LocalRestarting, from the session's start
// until the peer's End-of-RIB or the deferral). In that state GoBGP drops
// every update it would send the peer, and when the state ends it sends
// the whole table again: what was announced meanwhile arrives then, but a
// withdrawal is lost, and the peer keeps a route the speaker no longer
// announces (a rollback right after a session came up would leave VMs at
// the target). A session that comes up after the check is safe: sync,
// which needs s.mu, sends it the table after this Set, and the End-of-RIB
// makes the peer drop what it held from before.
func (s *speaker) awaitSyncedLocked(ctx context.Context) {
	if !s.isPeering() || !s.cfg.GracefulRestart.Enabled {
		return
	}
	start := time.Now()
	for {
		syncing, err := s.syncing(ctx)
		if err != nil {
			s.log.Warn().Err(err).Str("op", "set").Msg("cannot tell whether a session is still in its graceful-restart sync; withdrawing now")
			return
		}
		switch {
		case len(syncing) == 0:
			if waited := time.Since(start); waited > 50*time.Millisecond {
				s.log.Info().Str("op", "set").Dur("waited", waited).
					Msg("withdrawals held until the sessions' graceful-restart sync ended (GoBGP would have dropped them)")
			}
			return
		case time.Since(start) > syncWait:
			s.log.Warn().Str("op", "set").Strs("peers", syncing).Dur("waited", time.Since(start)).
				Msg("sessions still in their graceful-restart sync: withdrawing anyway; those peers may keep the routes until the session restarts")
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// syncingPeers lists the established sessions still in their
// graceful-restart sync.
func (s *speaker) syncingPeers(ctx context.Context) ([]string, error) {
	peers, err := s.listPeers(ctx, false)
	if err != nil {
		return nil, err
	}
	var out []string
	for a, p := range peers {
		if p.GetState().GetSessionState() == api.PeerState_ESTABLISHED && p.GetGracefulRestart().GetLocalRestarting() {
			out = append(out, a.String())
		}
	}
	return out, nil
}

// withdrawFamilyLocked withdraws every announced route of family f
// (famIndex) in one GoBGP operation, and forgets them.
func (s *speaker) withdrawFamilyLocked(ctx context.Context, f int) error {
	fam := familyV4
	if f == 1 {
		fam = familyV6
	}
	if err := s.srv.DeletePath(ctx, &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Family: fam}); err != nil {
		return fmt.Errorf("withdraw every %s route: %w", fam.Afi, err)
	}
	for p := range s.announced {
		if famIndex(p) == f {
			delete(s.announced, p)
		}
	}
	return nil
}

// withdrawLocked withdraws cs, removing each from s.announced.
func (s *speaker) withdrawLocked(ctx context.Context, cs []change) error {
	return s.sendLocked(ctx, cs, true)
}

// Close implements bgp.Speaker.
func (s *speaker) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.peersMu.Lock()
	defer s.peersMu.Unlock()
	if s.closed.Swap(true) {
		return nil
	}
	// Generous: stopping GoBGP with a session still established sends a
	// NOTIFICATION that makes the peer flush our routes, and on a loaded
	// machine GoBGP's FSM can take seconds to let a reset session go.
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	err := s.endSessionsLocked(ctx)
	s.cancel()
	s.srv.Stop()
	s.api.close()
	if err != nil {
		return fmt.Errorf("close speaker: %w", err)
	}
	return nil
}
