package bgp

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func routes(nh string, prefixes ...string) []Route {
	var rs []Route
	for _, p := range prefixes {
		rs = append(rs, Route{Prefix: pfx(p), NextHop: ip(nh)})
	}
	return rs
}

func TestFakeSetAndAccepted(t *testing.T) {
	ctx := context.Background()
	f := NewFake(labLimits())
	a := routes("10.255.2.2", "10.64.0.10/32", "10.64.0.11/32")
	if err := f.Set(ctx, a); err != nil {
		t.Fatal(err)
	}
	c, err := f.Accepted(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Done() || c.Want != 2 || len(c.Peers) != 1 || c.Peers[0].Peer != FakeObserver || c.Peers[0].Matched != 2 {
		t.Errorf("after Set: %+v, want done with 2/2 at %s", c, FakeObserver)
	}

	// Next-hop change: the same prefixes via skm1 do not match until Set.
	b := routes("10.255.1.2", "10.64.0.10/32", "10.64.0.11/32")
	c, _ = f.Accepted(ctx, b)
	if c.Done() || c.Peers[0].Matched != 0 || !reflect.DeepEqual(c.Peers[0].Missing, []netip.Prefix{pfx("10.64.0.10/32"), pfx("10.64.0.11/32")}) {
		t.Errorf("before switch: %+v, want 0 matched and both missing", c)
	}
	if err := f.Set(ctx, b[:1]); err != nil {
		t.Fatal(err)
	}
	c, _ = f.Accepted(ctx, b)
	if c.Peers[0].Matched != 1 || !reflect.DeepEqual(c.Peers[0].Missing, []netip.Prefix{pfx("10.64.0.11/32")}) {
		t.Errorf("after partial switch: %+v, want 1 matched, 10.64.0.11/32 missing", c)
	}
	// Withdrawal: 10.64.0.11/32 is gone, 10.64.0.10/32 is still held.
	c, _ = f.Accepted(ctx, Withdrawals([]netip.Prefix{pfx("10.64.0.11/32"), pfx("10.64.0.10/32")}))
	if c.Peers[0].Matched != 1 || !reflect.DeepEqual(c.Peers[0].Missing, []netip.Prefix{pfx("10.64.0.10/32")}) {
		t.Errorf("withdrawal check: %+v, want 1 matched, 10.64.0.10/32 missing", c)
	}
	if got := f.Announced(); !reflect.DeepEqual(got, b[:1]) {
		t.Errorf("Announced() = %v, want %v", got, b[:1])
	}
	if calls := f.Calls(); len(calls) != 2 || len(calls[0]) != 2 || len(calls[1]) != 1 {
		t.Errorf("Calls() = %v, want 2 calls of 2 and 1 routes", calls)
	}
}

func TestFakeRefusesLikeTheSpeaker(t *testing.T) {
	ctx := context.Background()
	f := NewFake(labLimits())
	good := routes("10.255.2.2", "10.64.0.10/32")
	if err := f.Set(ctx, good); err != nil {
		t.Fatal(err)
	}
	bad := append(good, routes("10.255.2.2", "0.0.0.0/0")...)
	err := f.Set(ctx, bad)
	var re *RefusedError
	if !errors.As(err, &re) || err.Error() != "refuse routes: 1 of 2 break the limits: 0.0.0.0/0 via 10.255.2.2: default route" {
		t.Fatalf("Set(default route) = %v, want a RefusedError", err)
	}
	if got := f.Announced(); !reflect.DeepEqual(got, good) {
		t.Errorf("refused Set changed the announcement: %v", got)
	}
	if n := len(f.Calls()); n != 1 {
		t.Errorf("refused Set was recorded: %d calls", n)
	}
}

func TestFakeLagWithholdAndFailures(t *testing.T) {
	ctx := context.Background()
	f := NewFake(labLimits())
	f.SetLag(2)
	a := routes("10.255.2.2", "10.64.0.10/32", "10.64.0.11/32")
	if err := f.Set(ctx, a); err != nil {
		t.Fatal(err)
	}
	var matched []int
	for range 4 {
		c, err := f.Accepted(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		matched = append(matched, c.Peers[0].Matched)
	}
	if !reflect.DeepEqual(matched, []int{0, 0, 2, 2}) {
		t.Errorf("matched over 4 calls with lag 2: %v, want [0 0 2 2]", matched)
	}

	other := ip("192.0.2.2")
	f.SetObservers(FakeObserver, other)
	f.Withhold(other, pfx("10.64.0.11/32"))
	c, _ := f.Accepted(ctx, a)
	if c.Done() || c.Peers[0].Matched != 2 || c.Peers[1].Matched != 1 {
		t.Errorf("with a withholding peer: %+v, want 2 and 1 matched, not done", c)
	}
	if got := c.String(); got != "192.0.2.1 by mirror 2/2; 192.0.2.2 by mirror 1/2 (missing 10.64.0.11/32)" {
		t.Errorf("String() = %q", got)
	}
	f.Withhold(other)
	if c, _ := f.Accepted(ctx, a); !c.Done() {
		t.Errorf("after clearing withhold: %+v, want done", c)
	}

	boom := errors.New("boom")
	f.FailSet(boom)
	if err := f.Set(ctx, nil); !errors.Is(err, boom) {
		t.Errorf("Set with FailSet = %v, want boom", err)
	}
	if len(f.Announced()) != 2 {
		t.Error("failed Set changed the announcement")
	}
	f.FailSet(nil)
	f.FailAccepted(boom)
	if _, err := f.Accepted(ctx, a); !errors.Is(err, boom) {
		t.Errorf("Accepted with FailAccepted = %v, want boom", err)
	}
	f.FailAccepted(nil)

	f.SetObservers()
	if c, _ := f.Accepted(ctx, a); c.Done() || len(c.Peers) != 0 {
		t.Errorf("no observers: %+v, want no peers and not done", c)
	}
}

func TestFakePeersAndClose(t *testing.T) {
	ctx := context.Background()
	f := NewFake(labLimits())
	if err := f.Set(ctx, routes("10.255.2.2", "10.64.0.10/32")); err != nil {
		t.Fatal(err)
	}
	ps, err := f.Peers(ctx)
	if err != nil || len(ps) != 1 || !ps[0].Established || ps[0].Advertised != 1 {
		t.Errorf("Peers() = %+v, %v; want one established peer advertising 1", ps, err)
	}
	fixed := []PeerStatus{{Address: ip("10.255.0.1"), AS: 65000, State: "active"}}
	f.SetPeers(fixed)
	if ps, _ := f.Peers(ctx); !reflect.DeepEqual(ps, fixed) {
		t.Errorf("Peers() after SetPeers = %+v", ps)
	}
	if err := f.Close(); err != nil || !f.Closed() {
		t.Fatalf("Close() = %v, closed %v", err, f.Closed())
	}
	if len(f.Announced()) != 1 {
		t.Error("Close withdrew routes; it must keep them")
	}
	for name, err := range map[string]error{
		"Set":   f.Set(ctx, nil),
		"Peers": func() error { _, err := f.Peers(ctx); return err }(),
		"Accepted": func() error {
			_, err := f.Accepted(ctx, nil)
			return err
		}(),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}

func TestWaitConverged(t *testing.T) {
	ctx := context.Background()
	f := NewFake(labLimits())
	f.SetLag(3)
	a := routes("10.255.2.2", "10.64.0.10/32", "10.64.0.11/32")
	if err := f.Set(ctx, a); err != nil {
		t.Fatal(err)
	}
	c, err := WaitConverged(ctx, f, a, time.Millisecond)
	if err != nil || !c.Done() {
		t.Fatalf("WaitConverged = %+v, %v; want done", c, err)
	}

	// A peer that never takes one prefix: the deadline ends the wait with
	// what is missing.
	f.Withhold(FakeObserver, pfx("10.64.0.11/32"))
	tctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	_, err = WaitConverged(tctx, f, a, time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "wait for convergence: 192.0.2.1 by mirror 1/2 (missing 10.64.0.11/32)") {
		t.Errorf("WaitConverged with a withheld prefix = %v", err)
	}

	f.SetObservers()
	if _, err := WaitConverged(ctx, f, a, time.Millisecond); !errors.Is(err, ErrNoObserver) {
		t.Errorf("WaitConverged without observers = %v, want ErrNoObserver", err)
	}

	boom := errors.New("boom")
	f.SetObservers(FakeObserver)
	f.FailAccepted(boom)
	if _, err := WaitConverged(ctx, f, a, time.Millisecond); !errors.Is(err, boom) || err.Error() != "wait for convergence: boom" {
		t.Errorf("WaitConverged with failing Accepted = %v", err)
	}
}

func TestCompare(t *testing.T) {
	peer := ip("10.255.0.1")
	have := map[netip.Prefix]Held{
		pfx("10.64.0.10/32"): {NextHop: ip("10.255.2.2"), Ours: true},
		pfx("10.64.0.11/32"): {NextHop: ip("10.255.1.2"), Ours: true},
		pfx("10.64.0.12/32"): {NextHop: ip("10.255.1.2"), Ours: false}, // someone else's path
	}
	want := []Route{
		{Prefix: pfx("10.64.0.10/32"), NextHop: ip("10.255.2.2")}, // held: match
		{Prefix: pfx("10.64.0.11/32"), NextHop: ip("10.255.2.2")}, // other next-hop
		{Prefix: pfx("10.64.0.13/32"), NextHop: ip("10.255.2.2")}, // absent
		{Prefix: pfx("10.64.0.12/32")},                            // withdrawn: not ours, match
		{Prefix: pfx("10.64.0.14/32")},                            // withdrawn: absent, match
		{Prefix: pfx("10.64.0.10/32")},                            // withdrawal wanted but still ours
	}
	got := Compare(peer, want, have)
	wantPC := PeerConvergence{Peer: peer, Matched: 3, Missing: []netip.Prefix{pfx("10.64.0.11/32"), pfx("10.64.0.13/32"), pfx("10.64.0.10/32")}}
	if !reflect.DeepEqual(got, wantPC) {
		t.Errorf("Compare = %+v, want %+v", got, wantPC)
	}
}
