package health

import (
	"context"
	"sync"
	"time"
)

// Fake is a Prober for tests. Its answers come from Func, or are all OK
// when Func is nil; it counts the probes per target and the most probes
// that were in flight at once.
type Fake struct {
	// Func returns the result of t's probe number n (0 for the first).
	Func func(t Target, n int) Result
	// Delay makes every probe take this long, or until its ctx ends (then
	// the probe fails with a timeout).
	Delay time.Duration

	mu          sync.Mutex
	calls       map[string]int
	inFlight    int
	maxInFlight int
}

// Probe answers from Func.
func (f *Fake) Probe(ctx context.Context, t Target) Result {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	n := f.calls[t.Name]
	f.calls[t.Name]++
	f.inFlight++
	f.maxInFlight = max(f.maxInFlight, f.inFlight)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.mu.Unlock()
	}()
	if f.Delay > 0 {
		start := time.Now()
		tm := time.NewTimer(f.Delay)
		defer tm.Stop()
		select {
		case <-tm.C:
		case <-ctx.Done():
			return Result{Err: t.Probe.String() + ": " + errText(ctx.Err(), time.Since(start))}
		}
	}
	if f.Func == nil {
		return Result{OK: true, RTT: f.Delay}
	}
	return f.Func(t, n)
}

// Calls returns how often target name was probed.
func (f *Fake) Calls(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[name]
}

// MaxInFlight returns the most probes that were running at once.
func (f *Fake) MaxInFlight() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxInFlight
}
