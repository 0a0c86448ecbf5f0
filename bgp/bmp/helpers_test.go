package bmp

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	gobmp "github.com/osrg/gobgp/v3/pkg/packet/bmp"
	"github.com/rs/zerolog"

	"github.com/cutover/cutover/internal/logcheck"
	"github.com/cutover/cutover/internal/testenv"
)

var (
	pfx = netip.MustParsePrefix
	ip  = netip.MustParseAddr
)

// Addresses of the tests' scenario: an edge (AS 65000) whose session with
// the controller (AS 65001) has local address edgeAddr.
const (
	edgeAddr = "10.255.0.1"
	ctlAddr  = "10.255.0.2"
	edgeAS   = 65000
	ctlAS    = 65001
)

func testStation(t *testing.T, o Options) *Station {
	t.Helper()
	return New(zerolog.New(logcheck.Writer(t)).Level(zerolog.DebugLevel), o)
}

// pipeSession is one BMP session fed through net.Pipe.
type pipeSession struct {
	t    *testing.T
	c    net.Conn
	done chan struct{}
}

func dial(t *testing.T, s *Station, src string) *pipeSession {
	t.Helper()
	a, b := net.Pipe()
	ps := &pipeSession{t: t, c: a, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer close(ps.done)
		s.serveConn(ctx, b, netip.MustParseAddrPort(src))
	}()
	t.Cleanup(func() {
		cancel()
		a.Close()
		<-ps.done
	})
	return ps
}

// send writes messages, then a message of an unknown type: net.Pipe's
// Write returns once the station read it, so every message before it has
// been applied when send returns.
func (ps *pipeSession) send(msgs ...*gobmp.BMPMessage) {
	ps.t.Helper()
	var raw [][]byte
	for _, m := range msgs {
		b, err := m.Serialize()
		if err != nil {
			ps.t.Fatal(err)
		}
		raw = append(raw, b)
	}
	ps.sendRaw(raw...)
}

var barrier = []byte{3, 0, 0, 0, 6, 42}

func (ps *pipeSession) sendRaw(raw ...[]byte) {
	ps.t.Helper()
	for _, b := range append(raw, barrier) {
		if _, err := ps.c.Write(b); err != nil {
			ps.t.Fatalf("write to station: %v", err)
		}
	}
}

// writeErr writes raw and returns the error, for sessions the station is
// expected to close.
func (ps *pipeSession) writeRaw(raw ...[]byte) {
	for _, b := range raw {
		if _, err := ps.c.Write(b); err != nil {
			return
		}
	}
}

func (ps *pipeSession) wait() {
	ps.t.Helper()
	select {
	case <-ps.done:
	case <-time.After(20 * time.Second):
		ps.t.Fatal("station did not end the session")
	}
}

func initiation(name string) *gobmp.BMPMessage {
	return gobmp.NewBMPInitiation([]gobmp.BMPInfoTLVInterface{
		gobmp.NewBMPInfoTLVString(gobmp.BMP_INIT_TLV_TYPE_SYS_NAME, name),
		gobmp.NewBMPInfoTLVString(gobmp.BMP_INIT_TLV_TYPE_SYS_DESCR, "test router"),
	})
}

func peerHeader(typ, flags uint8, addr string, as uint32) gobmp.BMPPeerHeader {
	return *gobmp.NewBMPPeerHeader(typ, flags, 0, addr, as, "10.0.0.9", 0)
}

func post(addr string, as uint32) gobmp.BMPPeerHeader {
	return peerHeader(gobmp.BMP_PEER_TYPE_GLOBAL, gobmp.BMP_PEER_FLAG_POST_POLICY, addr, as)
}

func pre(addr string, as uint32) gobmp.BMPPeerHeader {
	return peerHeader(gobmp.BMP_PEER_TYPE_GLOBAL, 0, addr, as)
}

func locRIBHeader() gobmp.BMPPeerHeader {
	return peerHeader(gobmp.BMP_PEER_TYPE_LOCAL_RIB, 0, "0.0.0.0", edgeAS)
}

func open(as uint32, id string) *bgp.BGPMessage {
	return bgp.NewBGPOpenMessage(uint16(as), 90, id, []bgp.OptionParameterInterface{
		bgp.NewOptionParameterCapability([]bgp.ParameterCapabilityInterface{bgp.NewCapFourOctetASNumber(as)}),
	})
}

// peerUp reports the edge's session with peer, the edge's end at local.
func peerUp(peer string, peerAS uint32, local string) *gobmp.BMPMessage {
	return gobmp.NewBMPPeerUpNotification(pre(peer, peerAS), local, 179, 40000, open(edgeAS, "10.0.0.9"), open(peerAS, "10.0.0.8"))
}

func peerDown(h gobmp.BMPPeerHeader, reason uint8) *gobmp.BMPMessage {
	return gobmp.NewBMPPeerDownNotification(h, reason, nil, nil)
}

// announce builds a Route Monitoring message announcing prefixes (one
// family) via nh with AS_PATH as.
func announce(h gobmp.BMPPeerHeader, nh string, as []uint32, prefixes ...string) *gobmp.BMPMessage {
	attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0)}
	var segs []bgp.AsPathParamInterface
	if len(as) > 0 {
		segs = append(segs, bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, as))
	}
	attrs = append(attrs, bgp.NewPathAttributeAsPath(segs))
	var nlri []*bgp.IPAddrPrefix
	if ip(nh).Is4() {
		attrs = append(attrs, bgp.NewPathAttributeNextHop(nh))
		for _, p := range prefixes {
			pp := pfx(p)
			nlri = append(nlri, bgp.NewIPAddrPrefix(uint8(pp.Bits()), pp.Addr().String()))
		}
	} else {
		var mp []bgp.AddrPrefixInterface
		for _, p := range prefixes {
			pp := pfx(p)
			mp = append(mp, bgp.NewIPv6AddrPrefix(uint8(pp.Bits()), pp.Addr().String()))
		}
		attrs = append(attrs, bgp.NewPathAttributeMpReachNLRI(nh, mp))
	}
	return gobmp.NewBMPRouteMonitoring(h, bgp.NewBGPUpdateMessage(nil, attrs, nlri))
}

// withdraw builds a Route Monitoring message withdrawing IPv4 prefixes in
// the UPDATE's withdrawn routes and IPv6 ones in MP_UNREACH_NLRI.
func withdraw(h gobmp.BMPPeerHeader, prefixes ...string) *gobmp.BMPMessage {
	var w4 []*bgp.IPAddrPrefix
	var w6 []bgp.AddrPrefixInterface
	for _, p := range prefixes {
		pp := pfx(p)
		if pp.Addr().Is4() {
			w4 = append(w4, bgp.NewIPAddrPrefix(uint8(pp.Bits()), pp.Addr().String()))
		} else {
			w6 = append(w6, bgp.NewIPv6AddrPrefix(uint8(pp.Bits()), pp.Addr().String()))
		}
	}
	var attrs []bgp.PathAttributeInterface
	if len(w6) > 0 {
		attrs = append(attrs, bgp.NewPathAttributeMpUnreachNLRI(w6))
	}
	return gobmp.NewBMPRouteMonitoring(h, bgp.NewBGPUpdateMessage(w4, attrs, nil))
}

func eor(h gobmp.BMPPeerHeader, rf bgp.RouteFamily) *gobmp.BMPMessage {
	return gobmp.NewBMPRouteMonitoring(h, bgp.NewEndOfRib(rf))
}

func termination(reason uint16, text string) *gobmp.BMPMessage {
	return gobmp.NewBMPTermination([]gobmp.BMPTermTLVInterface{
		gobmp.NewBMPTermTLV16(gobmp.BMP_TERM_TLV_TYPE_REASON, reason),
		gobmp.NewBMPTermTLVString(gobmp.BMP_TERM_TLV_TYPE_STRING, text),
	})
}

func serialize(t testing.TB, m *gobmp.BMPMessage) []byte {
	t.Helper()
	b, err := m.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fakeClock is a settable Station.now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// eventually polls cond every 100 ms until it returns "" or d passes.
func eventually(t *testing.T, d time.Duration, cond func() string) {
	t.Helper()
	testenv.Eventually(t, d, 100*time.Millisecond, cond)
}
