//go:build linux

package kernel

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"time"

	vnl "github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/cutover/cutover/nft"
	"github.com/cutover/cutover/nft/internal/iprange"
	"github.com/cutover/cutover/nft/internal/layout"
)

// A drain lets the flows to addresses whose site changed keep their old path:
// the steering rules restore a flow's connection mark, so a flow that began
// before the move (mark 0, or an earlier site's) is not steered, and one that
// began on a site before a rollback stays there. When the drain's deadline
// passes, the conntrack entries of the flows still on an old path are
// deleted: the next packet of such a flow is a new flow and is steered (a TCP
// connection that lands on a site that does not know it is reset). A drain
// also finishes early when no such flow is left, and when later Applies
// moved all its addresses again ("superseded", the later drain takes over).
//
// Drains live in memory: after a restart the flows keep their marks (and so
// their paths) until they end; no drain cuts them over.

// pollInterval is how often the drain loop lists the conntrack table to
// look for old flows that are left: a tenth of the drain timeout, at least
// 200 ms and at most 10 s.
func (d *dataplane) pollInterval() time.Duration {
	return min(max(d.cfg.DrainTimeout/10, 200*time.Millisecond), 10*time.Second)
}

func (d *dataplane) startDrainLocked(changed []iprange.Range, changes []layout.SetChange) *nft.DrainStatus {
	now := time.Now()
	kept := d.drains[:0]
	for _, old := range d.drains {
		old.Ranges = iprange.Subtract(old.Ranges, changed)
		if len(old.Ranges) == 0 {
			d.finishLocked(old, now, "superseded", 0, nil)
			continue
		}
		old.Status.Prefixes = iprange.Prefixes(old.Ranges)
		kept = append(kept, old)
	}
	d.drains = kept
	sites := layout.ChangedSites(changes)
	d.nextID++
	dr := &nft.Drain{
		Status: nft.DrainStatus{
			ID:       d.nextID,
			Prefixes: iprange.Prefixes(changed),
			Started:  now,
			Deadline: now.Add(d.cfg.DrainTimeout),
		},
		Ranges: changed,
		Sites:  sites,
	}
	d.drains = append(d.drains, dr)
	d.log.Info().Str("op", "drain").Uint64("drain", dr.Status.ID).Int("prefixes", len(dr.Status.Prefixes)).
		Strs("sites", sites).Time("deadline", dr.Status.Deadline).Msg("drain started")
	select {
	case d.wake <- struct{}{}:
	default:
	}
	st := dr.Status
	return &st
}

// finishLocked marks dr finished and keeps it for Counters; the caller
// takes it out of d.drains.
func (d *dataplane) finishLocked(dr *nft.Drain, now time.Time, reason string, flushed int, err error) {
	dr.Status.Done, dr.Status.Finished, dr.Status.Reason, dr.Status.Flushed = true, now, reason, flushed
	d.finished = nft.RetireDrain(d.finished, dr)
	ev := d.log.Info()
	if err != nil {
		dr.Status.Err = err.Error()
		ev = d.log.Error().Err(err)
	}
	ev.Str("op", "drain").Uint64("drain", dr.Status.ID).Str("reason", reason).Int("flushed", flushed).
		Dur("took", now.Sub(dr.Status.Started)).Msg("drain finished")
}

func (d *dataplane) drainLoop(ctx context.Context) {
	defer close(d.done)
	var lastPoll time.Time
	for {
		d.mu.Lock()
		var next time.Time
		for _, dr := range d.drains {
			if next.IsZero() || dr.Status.Deadline.Before(next) {
				next = dr.Status.Deadline
			}
		}
		if poll := lastPoll.Add(d.pollInterval()); len(d.drains) > 0 && poll.Before(next) {
			next = poll
		}
		d.mu.Unlock()
		var tick <-chan time.Time
		var timer *time.Timer
		if !next.IsZero() {
			timer = time.NewTimer(max(time.Until(next), 0))
			tick = timer.C
		}
		woken := false
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
			woken = true // a new drain: look for its old flows at once
		case <-tick:
		}
		if timer != nil {
			timer.Stop()
		}
		d.finishExpired()
		if woken || time.Since(lastPoll) >= d.pollInterval() {
			lastPoll = time.Now()
			d.pollOldFlows()
		}
	}
}

// oldFlows matches the conntrack entries of flows to the drains' addresses
// that are not on the path the current state gives them.
type oldFlows struct {
	drains []*nft.Drain
	marked []markedRange
	marks  map[uint32]bool
	counts map[*nft.Drain]int
}

// find returns the drain whose addresses hold the flow's original
// destination, if the flow is on an old path.
func (o *oldFlows) find(dst netip.Addr, mark uint32) *nft.Drain {
	for _, dr := range o.drains {
		if !iprange.Contains(dr.Ranges, dst) {
			continue
		}
		if !o.marks[mark] {
			mark = 0 // not the tool's: the flow was never steered
		}
		if mark == markOf(o.marked, dst) {
			return nil
		}
		return dr
	}
	return nil
}

// MatchConntrackFlow implements netlink.CustomConntrackFilter.
func (o *oldFlows) MatchConntrackFlow(flow *vnl.ConntrackFlow) bool {
	dst, ok := netip.AddrFromSlice(flow.Forward.DstIP)
	if !ok {
		return false
	}
	dr := o.find(dst.Unmap(), flow.Mark)
	if dr != nil {
		o.counts[dr]++
	}
	return dr != nil
}

var ctFamilies = []vnl.InetFamily{unix.AF_INET, unix.AF_INET6}

// finishExpired cuts the old flows of the drains whose deadline passed over
// to their new path and finishes those drains.
func (d *dataplane) finishExpired() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	now := time.Now()
	var expired, kept []*nft.Drain
	for _, dr := range d.drains {
		if now.Before(dr.Status.Deadline) {
			kept = append(kept, dr)
		} else {
			expired = append(expired, dr)
		}
	}
	if len(expired) == 0 {
		return
	}
	o := &oldFlows{drains: expired, marked: d.markedLocked(), marks: d.marks, counts: make(map[*nft.Drain]int)}
	var errs []error
	for _, fam := range ctFamilies {
		if _, err := d.ct.ConntrackDeleteFilters(vnl.ConntrackTable, fam, o); err != nil {
			errs = append(errs, err)
		}
	}
	err := errors.Join(errs...)
	for _, dr := range expired {
		d.finishLocked(dr, now, "timeout", o.counts[dr], err)
	}
	d.drains = kept
}

// pollOldFlows finishes the drains that have no old flow left. Flows whose TCP
// connection is closing (TIME_WAIT, CLOSE) count as ended. It lists the
// conntrack table without holding the lock, and drops its findings when an
// Apply ran meanwhile.
func (d *dataplane) pollOldFlows() {
	d.mu.Lock()
	if d.closed || len(d.drains) == 0 {
		d.mu.Unlock()
		return
	}
	o := &oldFlows{drains: slices.Clone(d.drains), marked: d.markedLocked(), marks: d.marks, counts: make(map[*nft.Drain]int)}
	for i, dr := range o.drains {
		// A copy: Apply may shrink the ranges of the drains meanwhile.
		o.drains[i] = &nft.Drain{Ranges: dr.Ranges, Status: nft.DrainStatus{ID: dr.Status.ID}}
	}
	gen := d.gen
	d.mu.Unlock()

	for _, fam := range ctFamilies {
		err := d.ctl.list(uint8(fam), func(f ctFlow) {
			if f.ended() {
				return
			}
			if dr := o.find(f.dst, f.mark); dr != nil {
				o.counts[dr]++
			}
		})
		if err != nil {
			d.log.Warn().Err(err).Str("op", "drain").Msg("list conntrack table")
			return
		}
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || d.gen != gen {
		return
	}
	now := time.Now()
	kept := d.drains[:0]
	for _, dr := range d.drains {
		i := slices.IndexFunc(o.drains, func(c *nft.Drain) bool { return c.Status.ID == dr.Status.ID })
		if i >= 0 && o.counts[o.drains[i]] == 0 {
			d.finishLocked(dr, now, "no-old-flows", 0, nil)
			continue
		}
		kept = append(kept, dr)
	}
	d.drains = kept
}

// TCP states of nf_conntrack_tcp (enum tcp_conntrack).
const (
	tcpTimeWait = 7
	tcpClose    = 8
)

// markedRange is a range of addresses steered with mark.
type markedRange struct {
	iprange.Range
	mark uint32
}

// markedLocked returns the moved addresses of every site of the state last
// applied with the site's mark, sorted; it computes them on first use after
// an Apply.
func (d *dataplane) markedLocked() []markedRange {
	if d.marked != nil || d.last == nil {
		return d.marked
	}
	n := 0
	for _, rs := range d.last.Sets {
		n += len(rs)
	}
	d.marked = make([]markedRange, 0, n)
	for _, s := range d.last.Sites {
		for _, v6 := range []bool{false, true} {
			for _, r := range d.last.Sets[layout.SetName(s.Name, v6)] {
				d.marked = append(d.marked, markedRange{r, s.Mark})
			}
		}
	}
	slices.SortFunc(d.marked, func(a, b markedRange) int { return iprange.Compare(a.Range, b.Range) })
	return d.marked
}

// markOf returns the mark of the range in ms (sorted) that holds a, or 0.
func markOf(ms []markedRange, a netip.Addr) uint32 {
	i, found := slices.BinarySearchFunc(ms, a, func(m markedRange, a netip.Addr) int { return m.Locate(a) })
	if !found {
		return 0
	}
	return ms[i].mark
}
