// Package bmp is a BGP Monitoring Protocol station (RFC 7854, with RFC 9069
// Loc-RIB). Edge routers connect to it and stream the routes they hold;
// the station keeps, per router, the post-policy Adj-RIB-In of every
// monitored peer and the Loc-RIB, and answers the cutover gate's question
// "does router R hold each of these prefixes with this next-hop?" (Holds).
//
// It replaces the trick of having an edge mirror its best paths back to the
// controller over BGP, which only FRR with attribute-unchanged next-hop can
// do and which iBGP cannot do at all.
package bmp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	gobmp "github.com/osrg/gobgp/v3/pkg/packet/bmp"
	"github.com/rs/zerolog"
)

// Defaults of Options.
const (
	DefaultMaxRouters  = 64
	DefaultMaxPrefixes = 1_000_000
	DefaultSyncDelay   = 5 * time.Second
)

// Options bound what the station accepts. Zero values take the defaults.
type Options struct {
	// MaxRouters caps the routers the station keeps state for. A session
	// from a new router beyond it is refused, unless a router that is down
	// can be forgotten to make room.
	MaxRouters int
	// MaxPrefixes caps the prefixes stored for one router, over all its
	// tables; a router that exceeds it has its session closed.
	MaxPrefixes int
	// MaxMessage caps one BMP message in bytes (DefaultMaxMessage).
	MaxMessage int
	// ReadTimeout closes a session that sends nothing for this long. BMP
	// has no keepalive, so leave it 0 (TCP keepalives still detect a dead
	// peer) unless routers send periodic Statistics Reports (FRR: bmp stats
	// interval) more often than this.
	ReadTimeout time.Duration
	// SyncDelay is how long a freshly started table (new session, Peer Up)
	// that has not sent End-of-RIB for a family is taken to still be in its
	// initial dump: until then the absence of a prefix proves nothing, so
	// wanted withdrawals do not match. FRR sends End-of-RIB; GoBGP does not.
	SyncDelay time.Duration
}

func (o Options) withDefaults() Options {
	if o.MaxRouters <= 0 {
		o.MaxRouters = DefaultMaxRouters
	}
	if o.MaxPrefixes <= 0 {
		o.MaxPrefixes = DefaultMaxPrefixes
	}
	if o.MaxMessage <= 0 {
		o.MaxMessage = DefaultMaxMessage
	}
	if o.SyncDelay <= 0 {
		o.SyncDelay = DefaultSyncDelay
	}
	return o
}

// Station receives BMP sessions and keeps the routers' routes. Its methods
// are safe for concurrent use.
type Station struct {
	log  zerolog.Logger
	opts Options
	now  func() time.Time

	mu sync.RWMutex
	// routers by the source address of their BMP session: a router that
	// reconnects comes from the same address and replaces its old state.
	routers map[netip.Addr]*router
}

// New returns a station; call Serve to accept sessions.
func New(log zerolog.Logger, opts Options) *Station {
	return &Station{
		log:     log.With().Str("component", "bmp").Logger(),
		opts:    opts.withDefaults(),
		now:     time.Now,
		routers: map[netip.Addr]*router{},
	}
}

// router is one BMP session's state. Only its session's goroutine writes
// it, always under Station.mu; readers take Station.mu.
type router struct {
	src      netip.AddrPort
	conn     io.Closer
	sysName  string
	sysDescr string
	since    time.Time
	up       bool
	down     string
	downAt   time.Time
	peers    map[peerKey]*peer
	prefixes int // stored over all tables, for MaxPrefixes
}

// peerKey identifies a monitored peer (RFC 7854 per-peer header) or, with
// type Loc-RIB, an RFC 9069 Loc-RIB instance (its address is not set).
type peerKey struct {
	typ  uint8
	dist uint64
	addr netip.Addr
}

type peer struct {
	key   peerKey
	as    uint32
	bgpID netip.Addr
	// From Peer Up: the router's end of the session, and the AS it sent in
	// its OPEN.
	peerUp     bool
	local      netip.Addr
	localPort  uint16
	remotePort uint16
	localAS    uint32
	addPath    map[bgp.RouteFamily]bgp.BGPAddPathMode

	up    bool
	since time.Time
	down  string
	// rib is the post-policy Adj-RIB-In of a peer, or the Loc-RIB of a
	// Loc-RIB instance; pre-policy and Adj-RIB-Out are not kept.
	rib       *table
	postSeen  bool // post-policy Route Monitoring received
	prePolicy bool // pre-policy Route Monitoring received
}

type table struct {
	routes     map[netip.Prefix]entry
	start      time.Time
	eor4, eor6 bool
}

// entry is what a table holds for a prefix: 32 bytes plus the key, so
// 50,000 prefixes take a few MB per table.
type entry struct {
	nextHop netip.Addr
	// firstAS is the neighbouring AS of the path (0: empty AS_PATH), to
	// tell in the Loc-RIB whether the best path came from the controller.
	firstAS uint32
}

func newTable(now time.Time) *table {
	return &table{routes: map[netip.Prefix]entry{}, start: now}
}

// Serve accepts BMP sessions on ln until ctx ends, then closes ln and every
// session and returns nil. Each session runs until the router closes it,
// sends Termination, or breaks the protocol.
func (s *Station) Serve(ctx context.Context, ln net.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // before wg.Wait: ends the sessions if Accept fails
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("bmp station: accept on %s: %w", ln.Addr(), err)
		}
		if tc, ok := c.(*net.TCPConn); ok {
			// BMP itself never sends keepalives; let TCP find a router
			// that vanished without closing.
			_ = tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: 10 * time.Second, Count: 3})
		}
		src, _ := netip.ParseAddrPort(c.RemoteAddr().String())
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveConn(ctx, c, src)
		}()
	}
}

// errTerminated ends a session on the router's Termination message.
type errTerminated struct{ reason string }

func (e errTerminated) Error() string { return "terminated by router: " + e.reason }

// serveConn runs one BMP session from src until it ends, and marks the
// router down with the reason.
func (s *Station) serveConn(ctx context.Context, conn net.Conn, src netip.AddrPort) {
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	ss := &session{s: s, conn: conn, src: src}
	err := ss.run()
	reason := sessionEndReason(err)
	if ctx.Err() != nil {
		reason = "station stopped"
	}
	s.mu.Lock()
	current := ss.r != nil && s.routers[src.Addr()] == ss.r
	if current {
		r := ss.r
		r.up, r.down, r.downAt, r.conn = false, reason, s.now(), nil
		// The tables are stale from now on; a reconnect sends them again.
		for _, p := range r.peers {
			p.rib = nil
		}
		r.prefixes = 0
	}
	s.mu.Unlock()
	ev := s.log.Warn()
	var term errTerminated
	if ctx.Err() != nil || errors.As(err, &term) || errors.Is(err, io.EOF) {
		ev = s.log.Info()
	}
	if !current && ss.r != nil {
		reason += " (already replaced by a newer session)"
	}
	ev.Str("router", src.String()).Str("sys_name", ss.sysName()).Str("reason", reason).Msg("BMP session ended")
}

// sessionEndReason is the text Holds and Routers show for a router down.
func sessionEndReason(err error) string {
	var term errTerminated
	switch {
	case errors.As(err, &term):
		return term.Error()
	case errors.Is(err, io.EOF):
		return "connection closed by router"
	case errors.Is(err, net.ErrClosed):
		return "connection closed"
	case err == nil:
		return "session ended"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "read timeout: " + err.Error()
	}
	return err.Error()
}

type session struct {
	s    *Station
	conn net.Conn
	src  netip.AddrPort
	r    *router // set by the Initiation message
}

func (ss *session) sysName() string {
	if ss.r == nil {
		return ""
	}
	ss.s.mu.RLock()
	defer ss.s.mu.RUnlock()
	return ss.r.sysName
}

// run reads and applies messages until the session must end.
func (ss *session) run() error {
	opts := ss.s.opts
	for {
		if opts.ReadTimeout > 0 {
			if err := ss.conn.SetReadDeadline(time.Now().Add(opts.ReadTimeout)); err != nil {
				return fmt.Errorf("set read deadline: %w", err)
			}
		}
		raw, err := readMessage(ss.conn, opts.MaxMessage)
		if err != nil {
			return err
		}
		if err := ss.handle(raw); err != nil {
			return err
		}
	}
}

// handle decodes and applies one whole message.
func (ss *session) handle(raw []byte) error {
	m, err := decode(raw, ss.options)
	var rfc7606 *bgp.MessageError
	if err != nil && !errors.As(err, &rfc7606) {
		return err
	}
	if ss.r == nil {
		if m == nil || m.Header.Type != msgInitiation {
			return fmt.Errorf("first message is %s, want Initiation", typeName(raw[5]))
		}
		return ss.start(m.Body.(*gobmp.BMPInitiation))
	}
	if m == nil {
		return nil // unknown type, skipped by its length
	}
	switch b := m.Body.(type) {
	case *gobmp.BMPInitiation:
		// Only one is expected; take the newer names.
		ss.s.mu.Lock()
		ss.r.sysName, ss.r.sysDescr = initiationInfo(b)
		ss.s.mu.Unlock()
	case *gobmp.BMPTermination:
		return errTerminated{terminationReason(b)}
	case *gobmp.BMPPeerUpNotification:
		ss.peerUp(m.PeerHeader, b)
	case *gobmp.BMPPeerDownNotification:
		ss.peerDown(m.PeerHeader, peerDownReason(b))
	case *gobmp.BMPRouteMonitoring:
		treat := rfc7606 != nil && rfc7606.ErrorHandling == bgp.ERROR_HANDLING_TREAT_AS_WITHDRAW
		if rfc7606 != nil {
			ss.s.log.Debug().Str("router", ss.src.String()).Err(rfc7606).Bool("treat_as_withdraw", treat).Msg("UPDATE with attribute error")
		}
		return ss.routeMonitoring(m.PeerHeader, b, treat)
	case *gobmp.BMPStatisticsReport, *gobmp.BMPRouteMirroring:
		// Accepted and not needed to answer Holds.
	}
	return nil
}

// options gives the decoder the ADD-PATH families the peer's Peer Up
// negotiated. Called from the session's own goroutine, the only writer of
// ss.r, so reading without the lock is race-free.
func (ss *session) options(h gobmp.BMPPeerHeader) []*bgp.MarshallingOption {
	if ss.r == nil {
		return nil
	}
	p := ss.r.peers[keyOf(h)]
	if p == nil || p.addPath == nil {
		return nil
	}
	return []*bgp.MarshallingOption{{AddPath: p.addPath}}
}

func initiationInfo(b *gobmp.BMPInitiation) (name, descr string) {
	for _, tlv := range b.Info {
		if v, ok := tlv.(*gobmp.BMPInfoTLVString); ok {
			switch v.Type {
			case gobmp.BMP_INIT_TLV_TYPE_SYS_NAME:
				name = v.Value
			case gobmp.BMP_INIT_TLV_TYPE_SYS_DESCR:
				descr = v.Value
			}
		}
	}
	return name, descr
}

// start registers the router on its Initiation, replacing the state of an
// earlier session from the same address: that session is closed, as the
// router evidently reconnected.
func (ss *session) start(b *gobmp.BMPInitiation) error {
	s := ss.s
	name, descr := initiationInfo(b)
	r := &router{
		src: ss.src, conn: ss.conn, sysName: name, sysDescr: descr,
		since: s.now(), up: true, peers: map[peerKey]*peer{},
	}
	s.mu.Lock()
	old := s.routers[ss.src.Addr()]
	if old == nil && len(s.routers) >= s.opts.MaxRouters && !s.evictLocked() {
		s.mu.Unlock()
		return fmt.Errorf("router limit of %d reached, all of them up", s.opts.MaxRouters)
	}
	var oldConn io.Closer
	if old != nil && old.up {
		oldConn = old.conn
	}
	s.routers[ss.src.Addr()] = r
	ss.r = r
	s.mu.Unlock()
	if oldConn != nil {
		oldConn.Close()
		s.log.Info().Str("router", ss.src.String()).Str("sys_name", name).Msg("BMP session replaces the router's previous one")
	}
	s.log.Info().Str("router", ss.src.String()).Str("sys_name", name).Str("sys_descr", descr).Msg("BMP session up")
	return nil
}

// evictLocked forgets the router that has been down longest.
func (s *Station) evictLocked() bool {
	var victim netip.Addr
	var at time.Time
	for a, r := range s.routers {
		if !r.up && (!victim.IsValid() || r.downAt.Before(at)) {
			victim, at = a, r.downAt
		}
	}
	if !victim.IsValid() {
		return false
	}
	delete(s.routers, victim)
	return true
}

func keyOf(h gobmp.BMPPeerHeader) peerKey {
	k := peerKey{typ: h.PeerType, dist: h.PeerDistinguisher}
	if h.PeerType != peerTypeLocRIB {
		k.addr = peerAddr(h.PeerAddress)
	}
	return k
}

// peerLocked returns the peer of h, created (and brought up) when a
// message arrives without a Peer Up first: routers must send one, but the
// routes are worth keeping anyway.
func (ss *session) peerLocked(h gobmp.BMPPeerHeader) *peer {
	k := keyOf(h)
	p := ss.r.peers[k]
	if p == nil {
		p = &peer{key: k}
		ss.r.peers[k] = p
	}
	p.as = h.PeerAS
	if id, ok := netip.AddrFromSlice(h.PeerBGPID); ok {
		p.bgpID = id.Unmap()
	}
	if !p.up || p.rib == nil {
		p.up, p.since, p.down = true, ss.s.now(), ""
		p.rib = newTable(p.since)
	}
	return p
}

func (ss *session) clearLocked(p *peer) {
	if p.rib != nil {
		ss.r.prefixes -= len(p.rib.routes)
		p.rib = nil
	}
}

func (ss *session) peerUp(h gobmp.BMPPeerHeader, b *gobmp.BMPPeerUpNotification) {
	s := ss.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := ss.r.peers[keyOf(h)]; p != nil {
		// A Peer Up for a peer already up is a new BGP session: its old
		// routes will be sent again.
		ss.clearLocked(p)
		p.up = false
	}
	p := ss.peerLocked(h)
	p.peerUp = true
	p.local = peerAddr(b.LocalAddress)
	p.localPort, p.remotePort = b.LocalPort, b.RemotePort
	p.localAS = openAS(b.SentOpenMsg)
	p.addPath = addPathFamilies(b.SentOpenMsg, b.ReceivedOpenMsg)
	p.postSeen, p.prePolicy = false, false
	s.log.Debug().Str("router", ss.src.String()).Str("peer", p.key.addr.String()).Str("local", p.local.String()).Uint8("type", h.PeerType).Msg("peer up")
}

func (ss *session) peerDown(h gobmp.BMPPeerHeader, reason string) {
	s := ss.s
	s.mu.Lock()
	defer s.mu.Unlock()
	p := ss.r.peers[keyOf(h)]
	if p == nil {
		return
	}
	ss.clearLocked(p)
	p.up, p.down = false, reason
	s.log.Info().Str("router", ss.src.String()).Str("peer", p.key.addr.String()).Str("reason", reason).Msg("peer down")
}

func (ss *session) routeMonitoring(h gobmp.BMPPeerHeader, b *gobmp.BMPRouteMonitoring, treatAsWithdraw bool) error {
	switch {
	case h.PeerType > peerTypeLocRIB:
		return nil // a peer type this station does not know
	case h.PeerType != peerTypeLocRIB && h.IsAdjRIBOut():
		return nil // RFC 8671 Adj-RIB-Out: what the router sends, not holds
	}
	c, err := updateChange(b.BGPUpdate, treatAsWithdraw)
	ss.s.log.Trace().Str("router", ss.src.String()).Uint8("peer_type", h.PeerType).Uint8("flags", h.Flags).
		Int("add", len(c.add)+len(c.mpAdd)).Int("withdraw", len(c.withdraw)).Bool("eor", c.isEOR).AnErr("error", err).Msg("route monitoring")
	if err != nil {
		return fmt.Errorf("route monitoring for peer %s: %w", peerAddr(h.PeerAddress), err)
	}
	s := ss.s
	s.mu.Lock()
	defer s.mu.Unlock()
	p := ss.peerLocked(h)
	if h.PeerType != peerTypeLocRIB {
		if !h.IsPostPolicy() {
			p.prePolicy = true
			return nil
		}
		p.postSeen = true
	}
	t := p.rib
	if c.isEOR {
		switch c.eor {
		case bgp.RF_IPv4_UC:
			t.eor4 = true
		case bgp.RF_IPv6_UC:
			t.eor6 = true
		}
		return nil
	}
	for _, pfx := range c.withdraw {
		if _, ok := t.routes[pfx]; ok {
			delete(t.routes, pfx)
			ss.r.prefixes--
		}
	}
	add := func(pfxs []netip.Prefix, nh netip.Addr) error {
		for _, pfx := range pfxs {
			if _, ok := t.routes[pfx]; !ok {
				if ss.r.prefixes >= s.opts.MaxPrefixes {
					return fmt.Errorf("router exceeds the limit of %d prefixes", s.opts.MaxPrefixes)
				}
				ss.r.prefixes++
			}
			t.routes[pfx] = entry{nextHop: nh, firstAS: c.firstAS}
		}
		return nil
	}
	if err := add(c.add, c.nextHop4); err != nil {
		return err
	}
	return add(c.mpAdd, c.mpNH)
}
