package bmp

import (
	"encoding/binary"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	gobgp "github.com/osrg/gobgp/v3/pkg/packet/bgp"
	gobmp "github.com/osrg/gobgp/v3/pkg/packet/bmp"

	"github.com/cutover/cutover/bgp"
)

func route(p, nh string) bgp.Route { return bgp.Route{Prefix: pfx(p), NextHop: ip(nh)} }

func gone(p string) bgp.Route { return bgp.Route{Prefix: pfx(p)} }

func newClockStation(t *testing.T, o Options) (*Station, *fakeClock) {
	s := testStation(t, o)
	c := &fakeClock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	s.now = c.now
	return s, c
}

func TestAdjRIBInPostPolicy(t *testing.T) {
	s, clock := newClockStation(t, Options{})
	ps := dial(t, s, "10.0.0.9:40000")
	h := post(ctlAddr, ctlAS)
	ps.send(
		initiation("edge1"),
		peerUp(ctlAddr, ctlAS, edgeAddr),
		announce(h, "192.0.2.1", []uint32{ctlAS}, "10.64.0.1/32", "10.64.0.2/32", "10.64.0.3/32"),
		announce(h, "2001:db8::1", []uint32{ctlAS}, "2001:db8:64::1/128"),
		// Pre-policy paths are not kept: this one must not show.
		announce(pre(ctlAddr, ctlAS), "192.0.2.99", []uint32{ctlAS}, "10.64.0.9/32"),
	)
	want := []bgp.Route{
		route("10.64.0.1/32", "192.0.2.1"), route("10.64.0.2/32", "192.0.2.1"),
		route("10.64.0.3/32", "192.0.2.1"), route("2001:db8:64::1/128", "2001:db8::1"),
	}
	r := ip(edgeAddr)
	got := s.Holds(r, netip.Addr{}, want)
	if !got.Done() || got.Source != SourceAdjRIBIn || got.Controller != ip(ctlAddr) || got.BMP.String() != "10.0.0.9:40000" {
		t.Fatalf("Holds = %+v, want done from %s of %s", got, SourceAdjRIBIn, ctlAddr)
	}
	if got := s.Holds(ip("10.0.0.9"), ip(ctlAddr), want); !got.Done() {
		t.Errorf("Holds by BMP source address with controller = %v, want done", got)
	}
	if got := s.Holds(ip("10.0.0.9"), netip.Addr{}, want); got.Reason != "no Loc-RIB, and router reports no session with local address 10.0.0.9: give the controller address" {
		t.Errorf("Holds by BMP source without controller: reason %q", got.Reason)
	}
	wrong := []bgp.Route{route("10.64.0.1/32", "192.0.2.7"), route("10.64.0.9/32", "192.0.2.99")}
	if got := s.Holds(r, netip.Addr{}, wrong); got.Matched != 0 || !slices.Equal(got.Missing, []netip.Prefix{pfx("10.64.0.1/32"), pfx("10.64.0.9/32")}) {
		t.Errorf("Holds(wrong next-hop, pre-policy only) = %v, want both missing", got)
	}

	// Withdrawals: IPv4 in withdrawn routes, IPv6 in MP_UNREACH_NLRI.
	ps.send(withdraw(h, "10.64.0.2/32", "2001:db8:64::1/128"))
	got = s.Holds(r, netip.Addr{}, want)
	if got.Matched != 2 || !slices.Equal(got.Missing, []netip.Prefix{pfx("10.64.0.2/32"), pfx("2001:db8:64::1/128")}) {
		t.Errorf("after withdraw: %v", got)
	}
	if s := got.String(); s != "10.255.0.1 adj-rib-in post-policy 2/4 (missing 10.64.0.2/32, 2001:db8:64::1/128)" {
		t.Errorf("String() = %q", s)
	}

	// A wanted withdrawal needs the initial dump over: End-of-RIB for the
	// family, or SyncDelay.
	gw := []bgp.Route{gone("10.64.0.2/32"), gone("2001:db8:64::1/128")}
	if got := s.Holds(r, netip.Addr{}, gw); got.Matched != 0 {
		t.Errorf("withdrawals before End-of-RIB: matched %d, want 0", got.Matched)
	}
	ps.send(eor(h, gobgp.RF_IPv4_UC))
	if got := s.Holds(r, netip.Addr{}, gw); got.Matched != 1 || got.Missing[0] != pfx("2001:db8:64::1/128") {
		t.Errorf("withdrawals after IPv4 End-of-RIB: %v, want the IPv4 one only", got)
	}
	clock.add(DefaultSyncDelay)
	if got := s.Holds(r, netip.Addr{}, gw); !got.Done() {
		t.Errorf("withdrawals after SyncDelay: %v", got)
	}
	if got := s.Holds(r, netip.Addr{}, []bgp.Route{gone("10.64.0.1/32")}); got.Done() {
		t.Errorf("withdrawal of a held prefix: %v, want not done", got)
	}

	infos := s.Routers()
	if len(infos) != 1 || infos[0].SysName != "edge1" || infos[0].SysDescr != "test router" || !infos[0].Up || infos[0].Prefixes != 2 {
		t.Fatalf("Routers() = %+v", infos)
	}
	p := infos[0].Peers[0]
	if p.Address != ip(ctlAddr) || p.LocalAddress != ip(edgeAddr) || p.AS != ctlAS || p.Routes != 2 || !p.Up || p.Type != "global" {
		t.Errorf("peer = %+v", p)
	}

	// Peer Down clears the table.
	ps.send(peerDown(h, gobmp.BMP_PEER_DOWN_REASON_REMOTE_NO_NOTIFICATION))
	got = s.Holds(r, netip.Addr{}, want)
	if got.Reason != "no Loc-RIB, and the session with 10.255.0.2 is down: remote system closed the session without a NOTIFICATION" {
		t.Errorf("after Peer Down: reason %q", got.Reason)
	}
	if infos := s.Routers(); infos[0].Prefixes != 0 || infos[0].Peers[0].Routes != 0 || infos[0].Peers[0].Up {
		t.Errorf("after Peer Down: %+v", infos[0])
	}
	// The session comes back: a Peer Up starts an empty table.
	ps.send(peerUp(ctlAddr, ctlAS, edgeAddr), announce(h, "192.0.2.1", nil, "10.64.0.1/32"))
	if got := s.Holds(r, netip.Addr{}, want[:1]); !got.Done() {
		t.Errorf("after Peer Up again: %v", got)
	}
}

func TestLocRIBPreferred(t *testing.T) {
	s, clock := newClockStation(t, Options{})
	ps := dial(t, s, "10.0.0.9:40000")
	loc := locRIBHeader()
	ps.send(
		initiation("edge1"),
		peerUp(ctlAddr, ctlAS, edgeAddr),
		announce(post(ctlAddr, ctlAS), "192.0.2.1", []uint32{ctlAS}, "10.64.0.1/32", "10.64.0.2/32"),
		// The Loc-RIB's best path for .2 came from elsewhere.
		announce(loc, "192.0.2.1", []uint32{ctlAS}, "10.64.0.1/32"),
		announce(loc, "198.51.100.1", []uint32{65099}, "10.64.0.2/32"),
		announce(loc, "2001:db8::1", []uint32{ctlAS}, "2001:db8:64::1/128"),
	)
	r := ip(edgeAddr)
	got := s.Holds(r, netip.Addr{}, []bgp.Route{route("10.64.0.1/32", "192.0.2.1"), route("10.64.0.2/32", "192.0.2.1"), route("2001:db8:64::1/128", "2001:db8::1")})
	if got.Source != SourceLocRIB || got.Matched != 2 || !slices.Equal(got.Missing, []netip.Prefix{pfx("10.64.0.2/32")}) {
		t.Errorf("Holds = %v, want loc-rib 2/3 missing 10.64.0.2/32", got)
	}
	// eBGP controller: a Loc-RIB path whose first AS is not the
	// controller's is not ours, so its withdrawal is done.
	clock.add(DefaultSyncDelay)
	got = s.Holds(r, netip.Addr{}, []bgp.Route{gone("10.64.0.1/32"), gone("10.64.0.2/32"), gone("10.64.0.3/32")})
	if got.Matched != 2 || !slices.Equal(got.Missing, []netip.Prefix{pfx("10.64.0.1/32")}) {
		t.Errorf("withdrawals = %v, want 2/3 missing 10.64.0.1/32", got)
	}
	ps.send(withdraw(loc, "10.64.0.1/32"))
	if got := s.Holds(r, netip.Addr{}, []bgp.Route{gone("10.64.0.1/32")}); !got.Done() {
		t.Errorf("after Loc-RIB withdraw: %v", got)
	}
	ps.send(peerDown(loc, gobmp.BMP_PEER_DOWN_REASON_PEER_DE_CONFIGURED))
	if got := s.Holds(r, netip.Addr{}, nil); got.Reason != "Loc-RIB instance down: peer de-configured" {
		t.Errorf("after Loc-RIB Peer Down: reason %q", got.Reason)
	}
}

func TestLocRIBIBGP(t *testing.T) {
	s, clock := newClockStation(t, Options{})
	ps := dial(t, s, "10.0.0.9:40000")
	loc := locRIBHeader()
	ps.send(
		initiation("edge1"),
		peerUp(ctlAddr, edgeAS, edgeAddr), // iBGP: the controller has the edge's AS
		announce(loc, "192.0.2.1", nil, "10.64.0.1/32"),
		announce(loc, "198.51.100.1", []uint32{65099}, "10.64.0.2/32"),
	)
	clock.add(DefaultSyncDelay)
	got := s.Holds(ip(edgeAddr), netip.Addr{}, []bgp.Route{gone("10.64.0.1/32"), gone("10.64.0.2/32")})
	if got.Matched != 1 || got.Missing[0] != pfx("10.64.0.1/32") {
		t.Errorf("iBGP withdrawals = %v, want the empty-AS_PATH path counted as ours", got)
	}
}

func TestReconnectReplaces(t *testing.T) {
	s := testStation(t, Options{})
	h := post(ctlAddr, ctlAS)
	ps1 := dial(t, s, "10.0.0.9:40000")
	ps1.send(initiation("edge1"), peerUp(ctlAddr, ctlAS, edgeAddr), announce(h, "192.0.2.1", nil, "10.64.0.1/32"))
	want := []bgp.Route{route("10.64.0.1/32", "192.0.2.1")}
	if got := s.Holds(ip(edgeAddr), netip.Addr{}, want); !got.Done() {
		t.Fatalf("first session: %v", got)
	}
	ps2 := dial(t, s, "10.0.0.9:40001")
	ps2.send(initiation("edge1-again"))
	ps1.wait() // the station closed the old session
	infos := s.Routers()
	if len(infos) != 1 || infos[0].SysName != "edge1-again" || !infos[0].Up || len(infos[0].Peers) != 0 {
		t.Fatalf("Routers() after reconnect = %+v", infos)
	}
	got := s.Holds(ip("10.0.0.9"), ip(ctlAddr), want)
	if got.Reason != "no Loc-RIB, and router reports no session with 10.255.0.2" {
		t.Errorf("after reconnect: reason %q", got.Reason)
	}
	ps2.send(peerUp(ctlAddr, ctlAS, edgeAddr), announce(h, "192.0.2.1", nil, "10.64.0.1/32"))
	if got := s.Holds(ip(edgeAddr), netip.Addr{}, want); !got.Done() || got.BMP.Port() != 40001 {
		t.Errorf("second session: %v", got)
	}
}

// TestSessionEnd checks why the station ends a session, as Routers and
// Holds report it.
func TestSessionEnd(t *testing.T) {
	h := post(ctlAddr, ctlAS)
	huge := make([]byte, 6)
	huge[0] = 3
	binary.BigEndian.PutUint32(huge[1:5], 2<<20)
	keepalive := gobmp.NewBMPRouteMonitoring(h, gobgp.NewBGPKeepAliveMessage())
	short := []byte{3, 0, 0, 0, 10, 0, 0, 0, 0, 0}
	cases := []struct {
		name   string
		opts   Options
		msgs   func(t *testing.T) [][]byte
		reason string // Routers()[0].Down; "" when no router is registered
		holds  string // Holds(edge).Reason
	}{
		{
			name: "termination",
			msgs: func(t *testing.T) [][]byte {
				return [][]byte{serialize(t, termination(gobmp.BMP_TERM_REASON_ADMIN, "bye"))}
			},
			reason: "terminated by router: administratively closed: bye",
		},
		{name: "close", msgs: func(*testing.T) [][]byte { return nil }, reason: "connection closed by router"},
		{
			name:   "oversize",
			msgs:   func(*testing.T) [][]byte { return [][]byte{huge} },
			reason: "Route Monitoring message of 2097152 bytes exceeds the limit of 1048576 bytes",
		},
		{
			name:   "version",
			msgs:   func(*testing.T) [][]byte { return [][]byte{{2, 0, 0, 0, 6, 0}} },
			reason: "BMP version 2, want 3",
		},
		{
			name:   "length below header",
			msgs:   func(*testing.T) [][]byte { return [][]byte{{3, 0, 0, 0, 3, 0}} },
			reason: "message length 3 shorter than the 6-byte header",
		},
		{
			name:   "per-peer header missing",
			msgs:   func(*testing.T) [][]byte { return [][]byte{short} },
			reason: "Route Monitoring message of 10 bytes shorter than its 48 bytes of headers",
		},
		{
			name:   "not an UPDATE",
			msgs:   func(t *testing.T) [][]byte { return [][]byte{serialize(t, keepalive)} },
			reason: "route monitoring for peer 10.255.0.2: route monitoring carries a BGP message of type 4, want UPDATE (2)",
		},
		{
			name: "prefix limit",
			opts: Options{MaxPrefixes: 2},
			msgs: func(t *testing.T) [][]byte {
				return [][]byte{serialize(t, announce(h, "192.0.2.1", nil, "10.64.0.1/32", "10.64.0.2/32", "10.64.0.3/32"))}
			},
			reason: "router exceeds the limit of 2 prefixes",
		},
		{
			name: "truncated body",
			msgs: func(t *testing.T) [][]byte {
				b := serialize(t, announce(h, "192.0.2.1", nil, "10.64.0.1/32"))
				return [][]byte{b[:len(b)-3]}
			},
			reason: "read Route Monitoring body: unexpected EOF",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := testStation(t, tc.opts)
			ps := dial(t, s, "10.0.0.9:40000")
			ps.send(initiation("edge1"), peerUp(ctlAddr, ctlAS, edgeAddr))
			ps.writeRaw(tc.msgs(t)...)
			ps.c.Close()
			ps.wait()
			infos := s.Routers()
			if len(infos) != 1 || infos[0].Up || infos[0].Down != tc.reason {
				t.Fatalf("Routers() = %+v, want down with %q", infos, tc.reason)
			}
			got := s.Holds(ip(edgeAddr), netip.Addr{}, []bgp.Route{route("10.64.0.1/32", "192.0.2.1")})
			if got.Done() || !strings.HasPrefix(got.Reason, "BMP session down since ") || !strings.HasSuffix(got.Reason, ": "+tc.reason) {
				t.Errorf("Holds = %v, want the session down with the reason", got)
			}
		})
	}

	// Before Initiation nothing is registered.
	for _, tc := range []struct {
		name string
		msg  func(t *testing.T) []byte
	}{
		{"peer up first", func(t *testing.T) []byte { return serialize(t, peerUp(ctlAddr, ctlAS, edgeAddr)) }},
		{"unknown type first", func(*testing.T) []byte { return barrier }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testStation(t, Options{})
			ps := dial(t, s, "10.0.0.9:40000")
			ps.writeRaw(tc.msg(t))
			ps.c.Close()
			ps.wait()
			if infos := s.Routers(); len(infos) != 0 {
				t.Errorf("Routers() = %+v, want none", infos)
			}
			if got := s.Holds(ip(edgeAddr), netip.Addr{}, nil); got.Reason != "no BMP session from this router" {
				t.Errorf("Holds reason %q", got.Reason)
			}
		})
	}
}

func TestFirstMessageReason(t *testing.T) {
	ss := &session{s: testStation(t, Options{})}
	for _, tc := range []struct {
		raw  []byte
		want string
	}{
		{serialize(t, peerUp(ctlAddr, ctlAS, edgeAddr)), "first message is Peer Up, want Initiation"},
		{barrier, "first message is type 42, want Initiation"},
		{serialize(t, termination(1, "")), "first message is Termination, want Initiation"},
	} {
		if err := ss.handle(tc.raw); err == nil || err.Error() != tc.want {
			t.Errorf("handle = %v, want %q", err, tc.want)
		}
	}
}

func TestMaxRouters(t *testing.T) {
	s := testStation(t, Options{MaxRouters: 1})
	ps1 := dial(t, s, "10.0.0.9:40000")
	ps1.send(initiation("edge1"))
	ps2 := dial(t, s, "10.0.0.10:40000")
	ps2.writeRaw(serialize(t, initiation("edge2")))
	ps2.wait()
	if infos := s.Routers(); len(infos) != 1 || infos[0].SysName != "edge1" {
		t.Fatalf("Routers() = %+v, want edge1 only", infos)
	}
	// Once edge1 is down it makes room.
	ps1.c.Close()
	ps1.wait()
	ps3 := dial(t, s, "10.0.0.10:40001")
	ps3.send(initiation("edge2"))
	if infos := s.Routers(); len(infos) != 1 || infos[0].SysName != "edge2" || !infos[0].Up {
		t.Fatalf("Routers() = %+v, want edge2 up", infos)
	}
}

// TestFiftyThousand feeds 50,000 prefixes into two tables of a router and
// bounds memory and the time Holds takes.
func TestFiftyThousand(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	const n = 50_000
	s := testStation(t, Options{})
	ps := dial(t, s, "10.0.0.9:40000")
	ps.send(initiation("edge1"), peerUp(ctlAddr, ctlAS, edgeAddr))
	want := make([]bgp.Route, n)
	batches := make([][]string, 0, n/500)
	for i := range n {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 64 + byte(i>>16), byte(i >> 8), byte(i)}), 32)
		want[i] = bgp.Route{Prefix: p, NextHop: ip("192.0.2.1")}
		if i%500 == 0 {
			batches = append(batches, nil)
		}
		batches[len(batches)-1] = append(batches[len(batches)-1], p.String())
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, h := range []gobmp.BMPPeerHeader{post(ctlAddr, ctlAS), locRIBHeader()} {
		for _, b := range batches {
			ps.send(announce(h, "192.0.2.1", []uint32{ctlAS}, b...))
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap grew by %.1f MB for 2 × %d prefixes", float64(grown)/1e6, n)
	if grown > 40<<20 {
		t.Errorf("heap grew by %d bytes for 2 × %d prefixes, want < 40 MiB", grown, n)
	}
	start := time.Now()
	got := s.Holds(ip(edgeAddr), netip.Addr{}, want)
	if !got.Done() || got.Source != SourceLocRIB {
		t.Errorf("Holds = %v", got)
	}
	t.Logf("Holds of %d routes took %s", n, time.Since(start))
}
