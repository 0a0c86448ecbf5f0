//go:debug multipathtcp=0

package gobgp

// The go:debug line above: test peers listen with MD5 keys, which Go's
// default MPTCP listeners refuse (see checkMD5).

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	gobgp "github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/server"
	"github.com/rs/zerolog"

	"github.com/cutover/cutover/bgp"
	"github.com/cutover/cutover/internal/logcheck"
	"github.com/cutover/cutover/internal/testenv"
)

// This file holds the test harness: plain GoBGP servers on loopback that
// play the speaker's peers.

var (
	pfx = netip.MustParsePrefix
	ip  = netip.MustParseAddr
)

// loopback returns a 127.x.y.z address no other test of this process uses,
// so tests (and other packages' tests) can listen on the same ports.
var loopback = func() func() netip.Addr {
	var mu sync.Mutex
	n := uint32(os.Getpid()%200+20)<<16 | uint32(rand.IntN(200))<<8
	return func() netip.Addr {
		mu.Lock()
		defer mu.Unlock()
		n++
		return netip.AddrFrom4([4]byte{127, byte(n >> 16), byte(n >> 8), byte(n)})
	}
}()

// freePort returns a TCP port free on addr.
func freePort(t testing.TB, addr netip.Addr) uint16 {
	t.Helper()
	l, err := net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

// testPeer is a GoBGP server listening on its own loopback address.
type testPeer struct {
	t    testing.TB
	srv  *server.BgpServer
	addr netip.Addr
	port uint16
	as   uint32
}

type neighborOpts struct {
	password   string
	gr         bool // graceful restart helper
	grNotify   bool // RFC 8538 N bit
	restartSec uint32
}

// newTestPeer starts a GoBGP server with AS as on a fresh loopback address.
func newTestPeer(t testing.TB, as uint32) *testPeer {
	t.Helper()
	addr := loopback()
	port := freePort(t, addr)
	// Not "peer": GoBGP's field Key becomes peer (see fieldKey).
	log := zerolog.New(logcheck.Writer(t)).Level(zerolog.WarnLevel).With().Str("test_peer", addr.String()).Logger()
	srv := server.NewBgpServer(server.LoggerOption(logger{log}))
	go srv.Serve()
	err := srv.StartBgp(context.Background(), &api.StartBgpRequest{Global: &api.Global{
		Asn: as, RouterId: addr.String(), ListenPort: int32(port), ListenAddresses: []string{addr.String()},
	}})
	if err != nil {
		t.Fatal(err)
	}
	p := &testPeer{t: t, srv: srv, addr: addr, port: port, as: as}
	t.Cleanup(srv.Stop)
	return p
}

// addNeighbor makes the test peer accept a passive session from addr.
func (p *testPeer) addNeighbor(addr netip.Addr, as uint32, o neighborOpts) {
	p.t.Helper()
	afi := func(f *api.Family) *api.AfiSafi {
		return &api.AfiSafi{
			Config:            &api.AfiSafiConfig{Family: f, Enabled: true},
			MpGracefulRestart: &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: o.gr}},
		}
	}
	n := &api.Peer{
		// AllowAspathLoopLocal: inject sends paths with the speaker's AS.
		Conf:      &api.PeerConf{NeighborAddress: addr.String(), PeerAsn: as, AuthPassword: o.password, AllowAspathLoopLocal: true},
		Transport: &api.Transport{PassiveMode: true},
		Timers:    &api.Timers{Config: &api.TimersConfig{HoldTime: 9, KeepaliveInterval: 3}},
		AfiSafis:  []*api.AfiSafi{afi(familyV4), afi(familyV6)},
	}
	if o.gr {
		rt := o.restartSec
		if rt == 0 {
			rt = 120
		}
		n.GracefulRestart = &api.GracefulRestart{Enabled: true, HelperOnly: true, RestartTime: rt, NotificationEnabled: o.grNotify}
	}
	if err := p.srv.AddPeer(context.Background(), &api.AddPeerRequest{Peer: n}); err != nil {
		p.t.Fatal(err)
	}
}

// config returns the PeerConfig with which a speaker dials this test peer.
func (p *testPeer) config(observe bgp.Proof) bgp.PeerConfig {
	return bgp.PeerConfig{Address: p.addr, AS: p.as, Port: p.port, HoldTime: 9 * time.Second, Keepalive: 3 * time.Second, Observe: observe}
}

// gotPath is a received path with its attributes decoded for comparison.
type gotPath struct {
	Prefix      netip.Prefix
	NextHop     netip.Addr
	Origin      uint8
	ASPath      []uint32
	MED         *uint32
	LocalPref   *uint32
	Communities []uint32
	Large       []string
	Stale       bool
}

func (g gotPath) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s via %s origin %d as-path %v", g.Prefix, g.NextHop, g.Origin, g.ASPath)
	if g.MED != nil {
		fmt.Fprintf(&b, " med %d", *g.MED)
	}
	if g.LocalPref != nil {
		fmt.Fprintf(&b, " local-pref %d", *g.LocalPref)
	}
	if len(g.Communities) > 0 {
		fmt.Fprintf(&b, " communities %v", g.Communities)
	}
	if len(g.Large) > 0 {
		fmt.Fprintf(&b, " large %v", g.Large)
	}
	if g.Stale {
		b.WriteString(" stale")
	}
	return b.String()
}

func decodePath(t testing.TB, prefix string, p *api.Path) gotPath {
	t.Helper()
	g := gotPath{Prefix: pfx(prefix), Stale: p.Stale}
	attrs, err := apiutil.GetNativePathAttributes(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range attrs {
		switch a := a.(type) {
		case *gobgp.PathAttributeOrigin:
			g.Origin = a.Value
		case *gobgp.PathAttributeAsPath:
			for _, s := range a.Value {
				g.ASPath = append(g.ASPath, s.GetAS()...)
			}
		case *gobgp.PathAttributeNextHop:
			g.NextHop, _ = netip.AddrFromSlice(a.Value)
			g.NextHop = g.NextHop.Unmap()
		case *gobgp.PathAttributeMpReachNLRI:
			g.NextHop, _ = netip.AddrFromSlice(a.Nexthop)
		case *gobgp.PathAttributeMultiExitDisc:
			v := a.Value
			g.MED = &v
		case *gobgp.PathAttributeLocalPref:
			v := a.Value
			g.LocalPref = &v
		case *gobgp.PathAttributeCommunities:
			g.Communities = a.Value
		case *gobgp.PathAttributeLargeCommunities:
			for _, c := range a.Values {
				g.Large = append(g.Large, c.String())
			}
		}
	}
	return g
}

// rib returns the test peer's view: its Adj-RIB-In from neighbor (or its
// Loc-RIB when neighbor is invalid), sorted by prefix.
func (p *testPeer) rib(neighbor netip.Addr) []gotPath {
	p.t.Helper()
	var out []gotPath
	for _, fam := range []*api.Family{familyV4, familyV6} {
		req := &api.ListPathRequest{TableType: api.TableType_GLOBAL, Family: fam}
		if neighbor.IsValid() {
			req = &api.ListPathRequest{TableType: api.TableType_ADJ_IN, Name: neighbor.String(), Family: fam}
		}
		err := p.srv.ListPath(context.Background(), req, func(d *api.Destination) {
			for _, path := range d.Paths {
				out = append(out, decodePath(p.t, d.Prefix, path))
			}
		})
		if err != nil {
			p.t.Fatal(err)
		}
	}
	slices.SortFunc(out, func(a, b gotPath) int { return bgp.ComparePrefix(a.Prefix, b.Prefix) })
	return out
}

// state returns the session state of neighbor at the test peer, and how
// many UPDATE messages it received on it.
func (p *testPeer) state(neighbor netip.Addr) (api.PeerState_SessionState, uint64) {
	p.t.Helper()
	var st api.PeerState_SessionState
	var updates uint64
	err := p.srv.ListPeer(context.Background(), &api.ListPeerRequest{Address: neighbor.String()}, func(ap *api.Peer) {
		st = ap.GetState().GetSessionState()
		updates = ap.GetState().GetMessages().GetReceived().GetUpdate()
	})
	if err != nil {
		p.t.Fatal(err)
	}
	return st, updates
}

// inject originates paths at the test peer with the given AS_PATH, as an
// edge mirroring its best paths back would send them.
func (p *testPeer) inject(asPath []uint32, rs ...bgp.Route) {
	p.t.Helper()
	for _, r := range rs {
		attrs := []gobgp.PathAttributeInterface{
			gobgp.NewPathAttributeOrigin(0),
			gobgp.NewPathAttributeAsPath([]gobgp.AsPathParamInterface{gobgp.NewAs4PathParam(gobgp.BGP_ASPATH_ATTR_TYPE_SEQ, asPath)}),
		}
		if r.Prefix.Addr().Is4() {
			attrs = append(attrs, gobgp.NewPathAttributeNextHop(r.NextHop.String()))
		} else {
			attrs = append(attrs, gobgp.NewPathAttributeMpReachNLRI(r.NextHop.String(), []gobgp.AddrPrefixInterface{
				gobgp.NewIPv6AddrPrefix(uint8(r.Prefix.Bits()), r.Prefix.Addr().String()),
			}))
		}
		var nlri gobgp.AddrPrefixInterface = gobgp.NewIPAddrPrefix(uint8(r.Prefix.Bits()), r.Prefix.Addr().String())
		if !r.Prefix.Addr().Is4() {
			nlri = gobgp.NewIPv6AddrPrefix(uint8(r.Prefix.Bits()), r.Prefix.Addr().String())
		}
		path, err := apiutil.NewPath(nlri, false, attrs, time.Now())
		if err != nil {
			p.t.Fatal(err)
		}
		if _, err := p.srv.AddPath(context.Background(), &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: path}); err != nil {
			p.t.Fatal(err)
		}
	}
}

// eventually polls cond every 20 ms until it returns "" or d passes.
func eventually(t testing.TB, d time.Duration, cond func() string) {
	t.Helper()
	testenv.Eventually(t, d, 20*time.Millisecond, cond)
}

// newSpeaker starts a speaker (AS 65100, not listening) that dials peers
// from local, closing it at the end of the test.
func newSpeaker(t testing.TB, local netip.Addr, limits bgp.Limits, peers ...bgp.PeerConfig) *speaker {
	t.Helper()
	return newSpeakerLog(t, zerolog.New(logcheck.Writer(t)).Level(zerolog.InfoLevel), local, limits, peers...)
}

// newSpeakerLog is newSpeaker logging to log.
func newSpeakerLog(t testing.TB, log zerolog.Logger, local netip.Addr, limits bgp.Limits, peers ...bgp.PeerConfig) *speaker {
	t.Helper()
	for i := range peers {
		peers[i].LocalAddress = local
	}
	cfg := bgp.Config{
		LocalAS: 65100, RouterID: local, ListenPort: -1, Peers: peers,
		GracefulRestart: bgp.GracefulRestart{Enabled: true, RestartTime: 120 * time.Second},
		Limits:          limits,
	}
	sp, err := New(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	return sp.(*speaker)
}

// waitEstablished waits until the test peer sees the speaker's session up.
func (p *testPeer) waitEstablished(neighbor netip.Addr) {
	p.t.Helper()
	eventually(p.t, 15*time.Second, func() string {
		if st, _ := p.state(neighbor); st != api.PeerState_ESTABLISHED {
			return fmt.Sprintf("session from %s at %s is %s", neighbor, p.addr, st)
		}
		return ""
	})
}
