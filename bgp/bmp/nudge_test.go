package bmp

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/cutover/cutover/bgp"
)

// refresher is a speaker that judges no peer itself and sends a peer its
// routes again by calling its func.
type refresher func(ctx context.Context, peer netip.Addr) error

func (refresher) Accepted(_ context.Context, want []bgp.Route) (bgp.Convergence, error) {
	return bgp.Convergence{Want: len(want)}, nil
}

func (r refresher) Refresh(ctx context.Context, peer netip.Addr) error { return r(ctx, peer) }

func TestNudger(t *testing.T) {
	clock := time.Date(2026, 12, 1, 23, 0, 0, 0, time.UTC)
	var asked []netip.Addr
	n := &Nudger{After: 3 * time.Second, now: func() time.Time { return clock }}
	sp := refresher(func(_ context.Context, p netip.Addr) error {
		asked = append(asked, p)
		return nil
	})
	peer := ip(edgeAddr)
	missing := Holding{Router: peer, Source: SourceAdjRIBIn, Want: 2, Matched: 1}
	done := Holding{Router: peer, Source: SourceAdjRIBIn, Want: 2, Matched: 2}
	down := Holding{Router: peer, Want: 2, Reason: "BMP session down"}
	closer := Holding{Router: peer, Source: SourceAdjRIBIn, Want: 3, Matched: 2}
	missing.Want, done.Want = 3, 3
	done.Matched = 3
	steps := []struct {
		advance time.Duration
		h       Holding
		asked   int
	}{
		{0, missing, 0},               // first seen missing
		{2 * time.Second, missing, 0}, // not for long enough
		{time.Second, missing, 1},     // 3 s without progress: nudge
		{time.Second, missing, 1},     // not again within 3 s
		{2 * time.Second, missing, 2}, // 3 s after the last nudge
		{0, done, 2},                  // held: forgotten
		{time.Second, missing, 2},     // missing anew
		{2 * time.Second, down, 2},    // a view that cannot be judged: no nudge, forgotten
		{5 * time.Second, missing, 2}, // missing anew
		{2 * time.Second, closer, 2},  // coming closer: the clock starts again
		{2 * time.Second, closer, 2},
		{time.Second, closer, 3}, // 3 s without progress
	}
	for i, s := range steps {
		clock = clock.Add(s.advance)
		n.note(context.Background(), peer, s.h, sp)
		if len(asked) != s.asked {
			t.Fatalf("step %d: asked %d times, want %d", i, len(asked), s.asked)
		}
	}
	var none *Nudger
	none.note(context.Background(), peer, missing, sp) // a nil Nudger does nothing
	clock = clock.Add(time.Hour)
	n.note(context.Background(), peer, missing, &speakerStub{}) // a speaker that cannot refresh is not asked
	if len(asked) != 3 {
		t.Errorf("asked %d times, want 3", len(asked))
	}
}
