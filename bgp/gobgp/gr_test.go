package gobgp

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/rs/zerolog"

	"github.com/cutover/cutover/bgp"
	"github.com/cutover/cutover/internal/logcheck"
)

// TestLatePeerOpensAsRestart brings one peer's session up, synchronised,
// before the other peer accepts one: GoBGP then ends its restart state for
// every peer, and without the speaker re-arming it, the late peer's first
// OPEN would lack the Restart and Forwarding bits, so an edge that kept
// our routes as stale from before the restart would flush them.
func TestLatePeerOpensAsRestart(t *testing.T) {
	local := loopback()
	early := newTestPeer(t, 65000)
	late := newTestPeer(t, 65001)
	early.addNeighbor(local, 65100, neighborOpts{gr: true, grNotify: true})
	sp := newSpeaker(t, local, testLimits, early.config(bgp.ProofMirror), late.config(bgp.ProofNone))
	ctx := context.Background()
	routes := vmRoutes(100, "10.255.2.2")
	if err := sp.Set(ctx, routes); err != nil {
		t.Fatal(err)
	}
	early.waitEstablished(local)
	eventually(t, 15*time.Second, func() string {
		if n := len(early.rib(local)); n != 100 {
			return fmt.Sprintf("early peer holds %d of 100", n)
		}
		return ""
	})
	// The early session has synchronised: GoBGP is out of its restart
	// state for it, and left it for the late peer too.
	eventually(t, 15*time.Second, func() string {
		peers, err := sp.listPeers(ctx, false)
		if err != nil {
			return err.Error()
		}
		if p := peers[early.addr]; p.GetGracefulRestart().GetLocalRestarting() {
			return "the early session is still in GoBGP's restart state"
		}
		if p := peers[late.addr]; !p.GetGracefulRestart().GetLocalRestarting() {
			return fmt.Sprintf("the late peer (%s) is not re-armed", p.GetState().GetSessionState())
		}
		return ""
	})
	late.addNeighbor(local, 65100, neighborOpts{gr: true})
	late.waitEstablished(local)
	flags, fams := late.grFlags(local)
	if flags&0x08 == 0 || len(fams) != 2 || fams[0]&0x80 == 0 || fams[1]&0x80 == 0 {
		t.Errorf("late peer's OPEN: graceful restart flags %#x, families %#x; want the Restart bit and the Forwarding bit on both", flags, fams)
	}
	eventually(t, 15*time.Second, func() string {
		if n := len(late.rib(local)); n != 100 {
			return fmt.Sprintf("late peer holds %d of 100", n)
		}
		return ""
	})
	if st, _ := early.state(local); st != api.PeerState_ESTABLISHED {
		t.Errorf("the early session is %s, want it untouched", st)
	}
}

// llgrCap returns the long-lived graceful restart capability of the
// speaker's last OPEN as the test peer received it, each family's flags
// (Forwarding bit 0x80) and stale time; ok is false without one.
func (p *testPeer) llgrCap(neighbor netip.Addr) (tuples []*api.LongLivedGracefulRestartCapabilityTuple, ok bool) {
	p.t.Helper()
	err := p.srv.ListPeer(context.Background(), &api.ListPeerRequest{Address: neighbor.String()}, func(ap *api.Peer) {
		for _, a := range ap.GetState().GetRemoteCap() {
			var c api.LongLivedGracefulRestartCapability
			if a.MessageIs(&c) && a.UnmarshalTo(&c) == nil {
				tuples, ok = c.Tuples, true
			}
		}
	})
	if err != nil {
		p.t.Fatal(err)
	}
	return tuples, ok
}

// TestLongLivedGracefulRestartOffered checks the OPEN's RFC 9494
// capability: both families, the Forwarding bit, the default stale time;
// and none when it is turned off.
func TestLongLivedGracefulRestartOffered(t *testing.T) {
	local := loopback()
	peer := newTestPeer(t, 65000)
	peer.addNeighbor(local, 65100, neighborOpts{gr: true, grNotify: true})
	sp := newSpeaker(t, local, testLimits, peer.config(bgp.ProofNone))
	if err := sp.Set(context.Background(), vmRoutes(10, "10.255.2.2")); err != nil {
		t.Fatal(err)
	}
	peer.waitEstablished(local)
	tuples, ok := peer.llgrCap(local)
	want := uint32(bgp.DefaultLongLivedStaleTime / time.Second)
	if !ok || len(tuples) != 2 {
		t.Fatalf("long-lived graceful restart capability %v (%v), want one with both families", tuples, ok)
	}
	for _, tp := range tuples {
		if tp.Flags&0x80 == 0 || tp.Time != want {
			t.Errorf("%v: flags %#x stale time %d s; want the Forwarding bit and %d s", tp.Family, tp.Flags, tp.Time, want)
		}
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}

	local2 := loopback()
	peer.addNeighbor(local2, 65100, neighborOpts{gr: true})
	pc := peer.config(bgp.ProofNone)
	pc.LocalAddress = local2
	cfg := bgp.Config{
		LocalAS: 65100, RouterID: local2, ListenPort: -1, Peers: []bgp.PeerConfig{pc},
		GracefulRestart: bgp.GracefulRestart{Enabled: true, LongLivedStaleTime: -1},
		Limits:          testLimits,
	}
	off, err := New(context.Background(), cfg, zerolog.New(logcheck.Writer(t)).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { off.Close() })
	if err := off.Set(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	peer.waitEstablished(local2)
	if tuples, ok := peer.llgrCap(local2); ok {
		t.Errorf("long-lived graceful restart offered (%v) with LongLivedStaleTime -1", tuples)
	}
}

// TestWithdrawWaitsForSync: GoBGP drops every update to a session still in
// its graceful-restart sync (from its start to the peer's End-of-RIB) and
// then re-sends only the table, so a withdrawal made then would never
// reach the peer. A Set that withdraws waits until no session syncs; one
// that only announces does not wait (what it sends arrives with the
// table). The in-process peer ends the sync at once, so the sessions'
// state is played here; FRR, busy after a large change, sends its
// End-of-RIB late enough to hit it (cutover bench bgp did).
func TestWithdrawWaitsForSync(t *testing.T) {
	local := loopback()
	peer := newTestPeer(t, 65000)
	peer.addNeighbor(local, 65100, neighborOpts{gr: true, grNotify: true})
	sp := newSpeaker(t, local, testLimits, peer.config(bgp.ProofNone))
	ctx := context.Background()
	routes := vmRoutes(10, "10.255.2.2")
	var mu sync.Mutex
	asked, syncingFor := 0, 0
	sp.syncing = func(context.Context) ([]string, error) {
		mu.Lock()
		defer mu.Unlock()
		asked++
		if syncingFor > 0 {
			syncingFor--
			return []string{peer.addr.String()}, nil
		}
		return nil, nil
	}
	if err := sp.Set(ctx, routes); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if asked != 0 {
		t.Errorf("announcing asked %d times whether a session syncs, want 0", asked)
	}
	syncingFor = 3
	mu.Unlock()
	eventually(t, 15*time.Second, func() string {
		if got := len(peer.rib(local)); got != len(routes) {
			return fmt.Sprintf("peer holds %d paths, want %d", got, len(routes))
		}
		return ""
	})
	if err := sp.Set(ctx, routes[5:]); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if asked != 4 || syncingFor != 0 {
		t.Errorf("withdrawing asked %d times (want 4: three while syncing, then done)", asked)
	}
	mu.Unlock()
	eventually(t, 15*time.Second, func() string {
		if got := len(peer.rib(local)); got != 5 {
			return fmt.Sprintf("peer holds %d paths after the withdrawal, want 5", got)
		}
		return ""
	})

	// A session that never ends its sync does not hold the brake for
	// longer than syncWait.
	mu.Lock()
	syncingFor, asked = 1<<30, 0
	mu.Unlock()
	start := time.Now()
	if err := sp.Set(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < syncWait || took > syncWait+10*time.Second {
		t.Errorf("withdrawing with a session stuck in its sync took %s, want about %s", took, syncWait)
	}
}
