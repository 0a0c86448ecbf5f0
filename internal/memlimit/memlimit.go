// Package memlimit keeps a long-running process's memory close to what it
// holds. Go's collector lets the heap grow to twice the live heap before it
// runs (GOGC=100), and returns freed pages to the kernel lazily, so a daemon
// whose live heap is 100 MB can sit at 300 MB of RSS after a burst of
// allocation. Follow sets a soft memory limit (runtime/debug.SetMemoryLimit)
// that trails the live heap: the collector runs a little earlier and the
// scavenger gives pages back, only when the heap is large; a small heap
// never reaches the floor and runs exactly as before.
package memlimit

import (
	"context"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Floor is the lowest limit Follow sets: below it the collector's own pace
// (GOGC) decides alone.
const Floor = 128 << 20

// For returns the soft limit for a live heap of live bytes: the live heap,
// a quarter as much again for the garbage between two collections, and
// 32 MiB for what is not heap (stacks, the runtime's own), never below
// Floor.
func For(live uint64) int64 {
	l := live + live/4 + 32<<20
	if l < Floor {
		return Floor
	}
	if l > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(l)
}

// Follow adjusts the soft memory limit to the live heap every interval
// until ctx ends. It does nothing when GOMEMLIMIT is set: that is the
// operator's own limit.
func Follow(ctx context.Context, interval time.Duration) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	set := int64(-1)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			if l := For(sample[0].Value.Uint64()); l != set {
				debug.SetMemoryLimit(l)
				set = l
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
