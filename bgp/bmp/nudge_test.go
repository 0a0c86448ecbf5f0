package bmp

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

func TestNudger(t *testing.T) {
	clock := time.Date(2026, 12, 1, 23, 0, 0, 0, time.UTC)
	var asked []netip.Addr
	n := &Nudger{After: 3 * time.Second, now: func() time.Time { return clock }, Refresh: func(_ context.Context, p netip.Addr) error {
		asked = append(asked, p)
		return nil
	}}
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
		n.note(context.Background(), peer, s.h)
		if len(asked) != s.asked {
			t.Fatalf("step %d: asked %d times, want %d", i, len(asked), s.asked)
		}
	}
	var none *Nudger
	none.note(context.Background(), peer, missing) // a nil Nudger does nothing
}
