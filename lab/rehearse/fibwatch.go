package rehearse

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/cutover/cutover/cutover/engine"
)

// fibEvery is how often a fibWatch samples the edge's FIB.
const fibEvery = 75 * time.Millisecond

// fibWatch samples the edge's FIB while a target-down fault keeps some of
// a batch's VMs down at the target: from before the run until the run ends
// (readiness skip: the batch is held, never announced) or until the
// operator starts the VMs again (readiness pause). No prefix of the batch
// may be in the edge's FIB via the target then: the readiness check must
// keep the batch from moving. With the check off the batch moves and its
// gates decide; the watch then only reports what it saw.
type fibWatch struct {
	p        *placed
	prefixes map[netip.Prefix]bool
	assert   bool // a prefix seen via the target is a problem
	stop     chan struct{}
	done     chan struct{}
	ended    bool

	mu        sync.Mutex
	start     time.Time
	last      time.Time
	samples   int
	errs      int
	lastErr   error
	seen      map[netip.Prefix]bool // the batch's prefixes seen via the target
	firstSeen time.Time
	most      int // most of the batch's prefixes via the target in one sample
	others    int // most other VM prefixes via the target in one sample
}

// watchFIB starts watching the edge's FIB for the prefixes of the batch of
// target-down fault p.
func (r *rehearsal) watchFIB(ctx context.Context, p *placed) *fibWatch {
	w := &fibWatch{p: p, prefixes: map[netip.Prefix]bool{}, assert: r.readiness() != engine.ReadyOff,
		stop: make(chan struct{}), done: make(chan struct{}), seen: map[netip.Prefix]bool{}, start: time.Now()}
	for _, vm := range r.pl.Batches[p.batch].VMs {
		for _, pfx := range vm.Prefixes {
			w.prefixes[pfx] = true
		}
	}
	nh := r.l.Topology().SiteNextHop[r.target]
	go func() {
		defer close(w.done)
		for {
			set, err := hostRoutesSet(ctx, r.l, nh)
			w.mu.Lock()
			if err != nil {
				w.errs++
				w.lastErr = err
			} else {
				w.samples++
				w.last = time.Now()
				in, out := 0, 0
				for pfx := range set {
					if !w.prefixes[pfx] {
						out++
						continue
					}
					in++
					if len(w.seen) == 0 {
						w.firstSeen = time.Now()
					}
					w.seen[pfx] = true
				}
				w.most, w.others = max(w.most, in), max(w.others, out)
			}
			w.mu.Unlock()
			select {
			case <-w.stop:
				return
			case <-ctx.Done():
				return
			case <-time.After(fibEvery):
			}
		}
	}()
	return w
}

// endWatch stops w (once), adds what it saw to its fault's evidence and,
// when the edge held a prefix of the batch via the target although the
// batch was not ready, a problem.
func (r *rehearsal) endWatch(w *fibWatch) {
	if w.ended {
		return
	}
	w.ended = true
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	f, b := w.p.f, w.p.batch
	until := "to the run's end"
	if r.readiness() == engine.ReadyPause {
		until = "until the operator started the VMs again"
	}
	vms := len(w.p.in.VMs)
	if w.p.rec >= 0 && w.p.rec < len(r.res.Injected) {
		vms = len(r.res.Injected[w.p.rec].VMs)
	}
	var over time.Duration
	if w.samples > 0 {
		over = w.last.Sub(w.start).Round(time.Millisecond)
	}
	line := fmt.Sprintf("edge FIB sampled %d times over %s (every %s, from before the run %s) while %d VMs of batch %d were down at %s: ",
		w.samples, over, fibEvery, until, vms, b, r.target)
	if len(w.seen) == 0 {
		line += fmt.Sprintf("none of its %d prefixes via %s", len(w.prefixes), r.target)
	} else {
		line += fmt.Sprintf("%d of its %d prefixes via %s, up to %d in one sample, the first %s after the watch began",
			len(w.seen), len(w.prefixes), r.target, w.most, w.firstSeen.Sub(w.start).Round(time.Millisecond))
	}
	line += fmt.Sprintf("; up to %d other VM prefixes via %s in one sample", w.others, r.target)
	if !w.assert {
		line += " (readiness off: the batch moves without the check and its gates decide)"
	}
	if w.errs > 0 {
		line += fmt.Sprintf("; %d samples failed: %v", w.errs, w.lastErr)
	}
	if w.p.rec >= 0 && w.p.rec < len(r.res.Injected) {
		r.res.Injected[w.p.rec].Evidence = append(r.res.Injected[w.p.rec].Evidence, line)
	}
	r.printf("fault %s: %s", f, line)
	switch {
	case w.assert && len(w.seen) > 0:
		r.res.Problems = append(r.res.Problems, fmt.Sprintf("%s: the edge held %d prefixes of batch %d via %s although the batch was not ready (such as %s)",
			f.Kind, len(w.seen), b, r.target, firstPrefix(w.seen)))
	case w.assert && w.samples == 0:
		r.res.Problems = append(r.res.Problems, fmt.Sprintf("%s: the edge FIB could not be sampled while batch %d was not ready: %v", f.Kind, b, w.lastErr))
	}
}

// stopWatches ends every watch still running.
func (r *rehearsal) stopWatches() {
	for _, w := range r.watches {
		r.endWatch(w)
	}
}
