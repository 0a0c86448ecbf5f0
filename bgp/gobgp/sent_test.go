package gobgp

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"

	"github.com/cutover/cutover/bgp"
)

// TestAcceptedSent: the weak proof passes only once the peer holds the
// session across a KEEPALIVE after the UPDATEs, for every Set anew, and
// fails while the session is down. A bmp peer with the sent fallback is
// judged the same way and says so; a bmp peer without a fallback is left
// to the BMP station.
func TestAcceptedSent(t *testing.T) {
	local := loopback()
	edge := newTestPeer(t, 65000)
	edge.addNeighbor(local, 65100, neighborOpts{gr: true, grNotify: true})
	fb := newTestPeer(t, 65001)
	fb.addNeighbor(local, 65100, neighborOpts{})
	bmpOnly := newTestPeer(t, 65002)
	bmpOnly.addNeighbor(local, 65100, neighborOpts{})
	fbConf := fb.config(bgp.ProofBMP)
	fbConf.ObserveFallback = bgp.ProofSent
	sp := newSpeaker(t, local, testLimits, edge.config(bgp.ProofSent), fbConf, bmpOnly.config(bgp.ProofBMP))
	ctx := context.Background()

	want := vmRoutes(5, "10.255.2.2")
	c, err := sp.Accepted(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	wantStr := fmt.Sprintf("%s by sent 0/5: session not configured yet; %s by sent, no BMP session 0/5: session not configured yet", edge.addr, fb.addr)
	if got := c.String(); got != wantStr {
		t.Fatalf("before the first Set: %s, want %s", got, wantStr)
	}

	proven := func(want []bgp.Route) time.Time {
		t.Helper()
		var at time.Time
		eventually(t, 30*time.Second, func() string {
			c, err := sp.Accepted(ctx, want)
			if err != nil {
				return err.Error()
			}
			if !c.Done() {
				return "Accepted: " + c.String()
			}
			at = time.Now()
			return ""
		})
		return at
	}
	setAt := time.Now()
	if err := sp.Set(ctx, want); err != nil {
		t.Fatal(err)
	}
	c, err = sp.Accepted(ctx, want)
	if err != nil || c.Done() {
		t.Fatalf("right after Set: %s, %v; want not yet proven", c, err)
	}
	at := proven(want)
	t.Logf("first Set proven after %s", at.Sub(setAt).Round(time.Millisecond))

	// A new Set needs a new KEEPALIVE: right after it, not proven.
	moved := vmRoutes(5, "10.255.1.2")
	if err := sp.Set(ctx, moved); err != nil {
		t.Fatal(err)
	}
	c, err = sp.Accepted(ctx, moved)
	if err != nil || c.Done() {
		t.Fatalf("right after the second Set: %s, %v; want not yet proven", c, err)
	}
	for _, p := range c.Peers {
		if p.Reason == "" {
			t.Errorf("right after the second Set, %s has no reason: %+v", p.Peer, p)
		}
	}
	setAt = time.Now()
	at = proven(moved)
	t.Logf("second Set proven after %s", at.Sub(setAt).Round(time.Millisecond))
	// What was not announced is not proven by any KEEPALIVE.
	other := vmRoutes(5, "10.255.3.2")
	if c, _ := sp.Accepted(ctx, other); c.Done() || c.Peers[0].Matched != 0 {
		t.Errorf("routes never announced: %s, want 0/5", c)
	}

	// The session goes down: nothing is proven.
	if err := edge.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: local.String()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() string {
		c, err := sp.Accepted(ctx, moved)
		if err != nil {
			return err.Error()
		}
		if c.Peers[0].Matched != 0 || !strings.HasPrefix(c.Peers[0].Reason, "session ") {
			return fmt.Sprintf("after the peer went away: %s", c)
		}
		return ""
	})
}
