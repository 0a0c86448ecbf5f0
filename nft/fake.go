package nft

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/cutover/cutover/nft/internal/iprange"
	"github.com/cutover/cutover/nft/internal/layout"
)

// Fake is an in-memory Dataplane for the engine's tests. It validates like
// the kernel implementation, keeps the sets as address ranges in a fake
// kernel, reports and corrects drift the same way (the test injects it with
// AddElement, RemoveElement and BreakObject), starts drains whose deadlines
// follow Now, and counts the traffic the test adds with AddTraffic.
type Fake struct {
	// Now is the fake's clock for drains; nil means time.Now.
	Now func() time.Time

	cfg Config

	mu       sync.Mutex
	closed   bool
	applied  bool                       // the table exists
	kernel   map[string][]iprange.Range // the fake kernel's sets
	broken   []string                   // injected object drift
	last     *layout.Compiled
	failNext error
	traffic  map[string]Counter
	drains   []*Drain // unfinished
	finished []*Drain
	nextID   uint64
	applies  int
}

var _ Dataplane = (*Fake)(nil)

// NewFake returns an empty Fake that behaves like the kernel dataplane with
// cfg (defaults applied; NetNS is ignored).
func NewFake(cfg Config) *Fake {
	return &Fake{cfg: cfg.WithDefaults(), kernel: make(map[string][]iprange.Range), traffic: make(map[string]Counter)}
}

func (f *Fake) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

// Apply implements Dataplane.
func (f *Fake) Apply(ctx context.Context, desired State) (Result, error) {
	start := time.Now()
	var res Result
	want, err := compile(desired)
	if err != nil {
		return res, fmt.Errorf("apply: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return res, fmt.Errorf("apply: %w", errFakeClosed)
	}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("apply: %w", err)
	}
	f.expireLocked()
	var drift Drift
	switch {
	case f.last != nil:
		drift = f.driftLocked(f.last, true)
	case f.applied:
		drift = f.driftLocked(want, false)
	}
	if !drift.Empty() {
		if !f.cfg.Correct {
			return res, fmt.Errorf("apply: %w", &DriftError{Drift: drift})
		}
		res.Corrected = drift.Items()
	}
	if f.failNext != nil {
		err := f.failNext
		f.failNext = nil
		return res, fmt.Errorf("apply: flush nftables transaction (nothing changed): %w", err)
	}
	setChanges, changed := layout.SetChanges(f.kernel, want)
	res.Changes = changesOf(setChanges)
	f.kernel = make(map[string][]iprange.Range, len(want.Sets))
	for name, rs := range want.Sets {
		f.kernel[name] = slices.Clone(rs)
	}
	f.broken = nil
	f.applied = len(want.Sites) > 0
	f.last = want
	f.applies++
	if len(changed) > 0 {
		res.Drain = f.startDrainLocked(changed, setChanges)
	}
	res.Took = time.Since(start)
	return res, nil
}

// Drift implements Dataplane.
func (f *Fake) Drift(ctx context.Context, desired State) (Drift, error) {
	want, err := compile(desired)
	if err != nil {
		return Drift{}, fmt.Errorf("drift: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return Drift{}, fmt.Errorf("drift: %w", errFakeClosed)
	}
	if err := ctx.Err(); err != nil {
		return Drift{}, fmt.Errorf("drift: %w", err)
	}
	return f.driftLocked(want, true), nil
}

func (f *Fake) driftLocked(want *layout.Compiled, elements bool) Drift {
	var d Drift
	switch {
	case !f.applied && len(want.Sites) > 0:
		d.Objects = append(d.Objects, "table inet "+f.cfg.Table+": missing")
	case f.applied && len(want.Sites) == 0:
		d.Objects = append(d.Objects, "table inet "+f.cfg.Table+": unexpected (no sites)")
	}
	d.Objects = append(d.Objects, f.broken...)
	if elements {
		d.Missing, d.Extra = driftOf(layout.SetDrift(f.kernel, want))
	}
	return d
}

// Counters implements Dataplane.
func (f *Fake) Counters(ctx context.Context) (map[string]Counter, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, fmt.Errorf("counters: %w", errFakeClosed)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("counters: %w", err)
	}
	f.expireLocked()
	out := make(map[string]Counter)
	if f.last != nil {
		for _, s := range f.last.Sites {
			out[s.Name] = f.traffic[s.Name]
		}
	}
	CountDrains(out, f.drains, f.finished)
	return out, nil
}

// Close implements Dataplane.
func (f *Fake) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	f.drains = nil
	return nil
}

// Closed reports whether Close was called.
func (f *Fake) Closed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

var errFakeClosed = errors.New("dataplane closed")

func (f *Fake) startDrainLocked(changed []iprange.Range, changes []layout.SetChange) *DrainStatus {
	now := f.now()
	kept := f.drains[:0]
	for _, old := range f.drains {
		old.Ranges = iprange.Subtract(old.Ranges, changed)
		if len(old.Ranges) == 0 {
			f.finishLocked(old, now, "superseded")
			continue
		}
		old.Status.Prefixes = iprange.Prefixes(old.Ranges)
		kept = append(kept, old)
	}
	f.drains = kept
	sites := layout.ChangedSites(changes)
	f.nextID++
	dr := &Drain{
		Status: DrainStatus{ID: f.nextID, Prefixes: iprange.Prefixes(changed), Started: now, Deadline: now.Add(f.cfg.DrainTimeout)},
		Ranges: changed,
		Sites:  sites,
	}
	f.drains = append(f.drains, dr)
	st := dr.Status
	return &st
}

// expireLocked finishes the drains whose deadline passed.
func (f *Fake) expireLocked() {
	now := f.now()
	f.drains = slices.DeleteFunc(f.drains, func(dr *Drain) bool {
		if now.Before(dr.Status.Deadline) {
			return false
		}
		f.finishLocked(dr, dr.Status.Deadline, "timeout")
		return true
	})
}

func (f *Fake) finishLocked(dr *Drain, now time.Time, reason string) {
	dr.Status.Done, dr.Status.Finished, dr.Status.Reason = true, now, reason
	f.finished = RetireDrain(f.finished, dr)
}

// State returns what the fake kernel holds: the sites last applied and the
// addresses of their sets (as the fewest prefixes).
func (f *Fake) State() State {
	f.mu.Lock()
	defer f.mu.Unlock()
	var s State
	if f.last != nil {
		for _, site := range f.last.Sites {
			s.Sites = append(s.Sites, Site(site))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(f.kernel)) {
		site := layout.SiteOfSet(name)
		ps := iprange.Prefixes(f.kernel[name])
		if len(ps) == 0 {
			continue
		}
		if s.Moved == nil {
			s.Moved = make(map[string][]netip.Prefix)
		}
		s.Moved[site] = append(s.Moved[site], ps...)
	}
	return s
}

// Applies returns how many Applies changed the fake kernel.
func (f *Fake) Applies() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applies
}

// AddElement adds p to set by hand, like `nft add element`.
func (f *Fake) AddElement(set string, p netip.Prefix) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.kernel[set] = iprange.Merge(append(slices.Clone(f.kernel[set]), iprange.FromPrefix(p)))
}

// RemoveElement removes p from set by hand, like `nft delete element`.
func (f *Fake) RemoveElement(set string, p netip.Prefix) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.kernel[set] = iprange.Subtract(f.kernel[set], []iprange.Range{iprange.FromPrefix(p)})
}

// BreakObject injects object drift, reported as item (for example `chain
// steer: rule "cutover:new:skm2:v4" missing`) until an Apply corrects it.
func (f *Fake) BreakObject(item string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.broken = append(f.broken, item)
}

// FailNextApply makes the next Apply that gets past validation and drift
// fail with err, changing nothing, like a failed flush.
func (f *Fake) FailNextApply(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext = err
}

// AddTraffic adds c's packets and bytes to site's counters.
func (f *Fake) AddTraffic(site string, c Counter) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.traffic[site]
	t.Packets += c.Packets
	t.Bytes += c.Bytes
	t.OldPathPackets += c.OldPathPackets
	t.OldPathBytes += c.OldPathBytes
	f.traffic[site] = t
}

// EndOldFlows finishes every drain as if the flows open before the moves
// had ended.
func (f *Fake) EndOldFlows() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, dr := range f.drains {
		f.finishLocked(dr, f.now(), "no-old-flows")
	}
	f.drains = nil
}

// changesOf returns set changes as elements: the fewest prefixes per set,
// sorted by set and prefix.
func changesOf(changes []layout.SetChange) Changes {
	var c Changes
	for _, sc := range changes {
		c.Add = appendElements(c.Add, sc.Set, sc.Add)
		c.Remove = appendElements(c.Remove, sc.Set, sc.Remove)
	}
	return c
}

// driftOf returns set drift (layout.SetDrift) as the elements missing from
// and extra in the kernel's sets.
func driftOf(drift []layout.SetChange) (missing, extra []Element) {
	for _, sc := range drift {
		missing = appendElements(missing, sc.Set, sc.Add)
		extra = appendElements(extra, sc.Set, sc.Remove)
	}
	return missing, extra
}

// appendElements appends to dst the prefixes that cover rs, as elements of
// set.
func appendElements(dst []Element, set string, rs []iprange.Range) []Element {
	dst = slices.Grow(dst, len(rs))
	var ps []netip.Prefix
	for _, r := range rs {
		ps = r.AppendPrefixes(ps[:0])
		for _, p := range ps {
			dst = append(dst, Element{Set: set, Prefix: p})
		}
	}
	return dst
}
