package memlimit

import (
	"context"
	"runtime/debug"
	"testing"
	"time"
)

func TestFor(t *testing.T) {
	for _, tc := range []struct {
		live uint64
		want int64
	}{
		{0, Floor},
		{20 << 20, Floor},
		{76 << 20, Floor},      // 76 + 19 + 32 = 127 MiB
		{80 << 20, 132 << 20},  // 80 + 20 + 32
		{100 << 20, 157 << 20}, // the daemon holding 50,000 routes
		{400 << 20, 532 << 20}, // 200,000
		{1 << 62, 1<<62 + 1<<60 + 32<<20},
	} {
		if got := For(tc.live); got != tc.want {
			t.Errorf("For(%d MiB) = %d MiB, want %d MiB", tc.live>>20, got>>20, tc.want>>20)
		}
	}
}

func TestFollowSetsTheLimitAndLeavesGOMEMLIMIT(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	t.Setenv("GOMEMLIMIT", "")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); Follow(ctx, time.Hour) }()
	deadline := time.Now().Add(10 * time.Second)
	for debug.SetMemoryLimit(-1) == int64(^uint64(0)>>1) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if got := debug.SetMemoryLimit(-1); got < Floor {
		t.Errorf("limit %d after Follow, want at least the floor %d", got, int64(Floor))
	}

	t.Setenv("GOMEMLIMIT", "1GiB")
	debug.SetMemoryLimit(1 << 30)
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	Follow(ctx, time.Hour)
	if got := debug.SetMemoryLimit(-1); got != 1<<30 {
		t.Errorf("limit %d with GOMEMLIMIT set, want it untouched (1 GiB)", got)
	}
}
