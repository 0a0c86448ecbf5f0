// Package schedule tells each tenant when its VMs move: per tenant, the
// batches that hold its VMs and each batch's expected window from the
// run's start, measured by green lab rehearsals of exactly the plan's
// bytes (their spread) or, without one, estimated from the runbook's
// gates and hold. It renders the schedules as text, CSV, JSON and one
// iCalendar file per tenant.
//
//	plan.Load → ReadEvidence → New → *Schedule → WriteText / WriteCSV / WriteJSON / WriteICal
//
// It is a child of plan, not part of it, because it reads rehearsal
// records (cutover/evidence, cutover/report), and the report imports the
// plan. Building and rendering a Schedule touches nothing; ReadEvidence
// reads the record store and WriteICalDir writes the calendars.
package schedule

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cutover/cutover/cutover/evidence"
	"github.com/cutover/cutover/cutover/plan"
	"github.com/cutover/cutover/cutover/runbook"
)

// Schedule is every selected tenant's part of a plan, with when each
// batch is expected to run. Offsets are from the run's start (the
// run-start record, before the pre-check).
type Schedule struct {
	Plan *plan.Plan
	// Times says where the windows come from.
	Times Times
	// Start is the run's start, for clock times; zero: not known, and
	// then only offsets are shown. StartFrom says where it came from.
	Start     time.Time
	StartFrom string
	// Loc is the zone clock times are shown in: the change window's, or
	// the start's own offset.
	Loc *time.Location
	// WindowOpen and WindowClose are the change window's opening that
	// Start falls in; zero without a window or a start, or when Start is
	// outside the window (see Notes).
	WindowOpen, WindowClose time.Time
	// Batches are every batch of the plan, in order, with its window.
	Batches []*Batch
	// Tenants are the selected tenants, sorted, with their batches.
	Tenants []*Tenant
	// Notes are what a reader must know besides the windows: records
	// skipped, batches that may start after the change window closes.
	Notes []string
	// Made is when the schedule was made (Options.Now): the calendars'
	// DTSTAMP.
	Made time.Time
}

// Times says where a schedule's windows come from.
type Times struct {
	// Rehearsals are the green rehearsals the windows were measured in
	// (newest first); none: every window is estimated.
	Rehearsals []*evidence.Record
	// Dir is the store the rehearsals were looked for in ("": none).
	Dir string
	// Why says why there is no rehearsal, when there is none.
	Why string
	// Estimate is the rule the estimated windows follow.
	Estimate Estimate
}

// Measured reports whether the windows come from rehearsals.
func (t Times) Measured() bool { return len(t.Rehearsals) > 0 }

// String says where the times come from in one line: "from 3 green
// rehearsals, 2026-11-28 … 2026-12-01" or "estimated from the runbook: no
// rehearsal of these bytes in DIR".
func (t Times) String() string {
	n := len(t.Rehearsals)
	if n == 0 {
		return "estimated from the runbook: " + t.Why
	}
	oldest, newest := t.Rehearsals[0].Rehearsed, t.Rehearsals[0].Rehearsed
	for _, r := range t.Rehearsals[1:] {
		if r.Rehearsed.Before(oldest) {
			oldest = r.Rehearsed
		}
		if r.Rehearsed.After(newest) {
			newest = r.Rehearsed
		}
	}
	days := newest.UTC().Format(time.DateOnly)
	if d := oldest.UTC().Format(time.DateOnly); d != days {
		days = d + " … " + days
	}
	s := fmt.Sprintf("from %d green rehearsal", n)
	if n > 1 {
		s += "s"
	}
	return s + ", " + days
}

// Batch is one batch of the plan with its expected window. Between its
// earliest start and its latest end, the batch's VMs may be moving: from
// the announce of its routes to its commit.
type Batch struct {
	Index  int
	Name   string
	Canary bool
	VMs    int
	// StartMin and StartMax bound when the batch starts (announces),
	// EndMin and EndMax when it ends (commits); the window is StartMin to
	// EndMax.
	StartMin, StartMax, EndMin, EndMax time.Duration
	// Rehearsed counts the rehearsals the window was measured in; 0: it is
	// estimated (from the batch before it, when that one was measured).
	Rehearsed int
	// AfterGo is the last go/no-go point before the batch ("": none): its
	// window assumes that point was answered at once.
	AfterGo string
	// PastClose is set when the batch may start after the change window
	// closes (WindowClose); it then waits for the next opening.
	PastClose bool
}

// Tenant is one tenant's part of the plan.
type Tenant struct {
	Name      string
	VMs       int
	Addresses int
	Batches   []*Part
}

// Part is a tenant's VMs in one batch.
type Part struct {
	Batch     *Batch
	VMs       []*runbook.VM // sorted by name
	Addresses int
}

// Options tune New.
type Options struct {
	// Evidence are the rehearsals to measure the windows in (see
	// ReadEvidence); none: every window is estimated.
	Evidence Evidence
	// Start is the run's start; zero: the change window's next opening
	// at or after Now, or unknown without a window.
	Start time.Time
	// Now is the time the schedule is made (the default start's
	// reference, and the iCalendar DTSTAMP); zero: time.Now().
	Now time.Time
	// Tenants selects tenants by name; none: every tenant.
	Tenants []string
}

// UnknownTenantError is a tenant asked for that the inventory does not
// name.
type UnknownTenantError struct {
	Tenant string
	Known  []string
}

func (e *UnknownTenantError) Error() string {
	return fmt.Sprintf("tenant %q: not in the inventory (its tenants: %s)", e.Tenant, strings.Join(e.Known, ", "))
}

// New builds the schedule of pl. The windows of the batches are measured
// in o.Evidence's rehearsals where they committed the batch, and
// estimated otherwise (see Estimate).
func New(pl *plan.Plan, o Options) (*Schedule, error) {
	if pl == nil {
		return nil, errors.New("schedule: a plan is required")
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	rb := pl.Runbook
	s := &Schedule{Plan: pl, Made: o.Now, Times: Times{Dir: o.Evidence.Dir, Why: o.Evidence.Why, Estimate: NewEstimate(rb)}}
	selected, err := selectTenants(pl.Inventory.Tenants(), o.Tenants)
	if err != nil {
		return nil, err
	}

	spans, notes := measureAll(pl, o.Evidence.Records)
	s.Notes = append(s.Notes, notes...)
	for _, r := range o.Evidence.Records {
		if _, ok := spans[r]; ok {
			s.Times.Rehearsals = append(s.Times.Rehearsals, r)
		}
	}
	if len(s.Times.Rehearsals) == 0 && len(o.Evidence.Records) > 0 {
		s.Times.Why = fmt.Sprintf("none of the %d green rehearsals in %s could be used", len(o.Evidence.Records), o.Evidence.Dir)
	}
	s.windows(pl, spans)

	if err := s.setStart(rb, o.Start, o.Now); err != nil {
		return nil, err
	}
	s.tenants(pl, selected)
	return s, nil
}

// selectTenants returns the tenants asked for (all when none), sorted,
// once each.
func selectTenants(known, asked []string) ([]string, error) {
	if len(asked) == 0 {
		return known, nil
	}
	var out []string
	for _, t := range asked {
		if !slices.Contains(known, t) {
			return nil, &UnknownTenantError{Tenant: t, Known: known}
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out, nil
}

// windows gives every batch its window: the spread of the rehearsals
// that committed it, or else the estimate, chained to the batch before.
func (s *Schedule) windows(pl *plan.Plan, spans map[*evidence.Record][]span) {
	est := s.Times.Estimate
	after := ""
	var prev *Batch
	for i, pb := range pl.Batches {
		if len(pb.Confirm) > 0 {
			after = pb.Confirm[len(pb.Confirm)-1]
		}
		b := &Batch{Index: pb.Index, Name: pb.Name, Canary: pb.Canary, VMs: len(pb.VMs), AfterGo: after}
		for _, sp := range spans {
			m := sp[i]
			if !m.ok {
				continue
			}
			if b.Rehearsed == 0 {
				b.StartMin, b.StartMax, b.EndMin, b.EndMax = m.start, m.start, m.end, m.end
			} else {
				b.StartMin, b.StartMax = min(b.StartMin, m.start), max(b.StartMax, m.start)
				b.EndMin, b.EndMax = min(b.EndMin, m.end), max(b.EndMax, m.end)
			}
			b.Rehearsed++
		}
		if b.Rehearsed == 0 {
			var lo, hi time.Duration // when the batch before ended
			if prev != nil {
				lo, hi = prev.EndMin+est.Hold, prev.EndMax+est.Hold
			}
			b.StartMin, b.StartMax = lo, hi+est.Ready
			b.EndMin, b.EndMax = b.StartMin+est.Least, b.StartMax+est.Converge+est.Gates
		}
		s.Batches = append(s.Batches, b)
		prev = b
	}
}

// tenants cuts the batches by tenant.
func (s *Schedule) tenants(pl *plan.Plan, selected []string) {
	byName := map[string]*Tenant{}
	for _, name := range selected {
		t := &Tenant{Name: name}
		byName[name] = t
		s.Tenants = append(s.Tenants, t)
	}
	for i, pb := range pl.Batches {
		parts := map[string]*Part{}
		for _, vm := range pb.VMs {
			t := byName[vm.Tenant]
			if t == nil {
				continue
			}
			p := parts[vm.Tenant]
			if p == nil {
				p = &Part{Batch: s.Batches[i]}
				parts[vm.Tenant] = p
				t.Batches = append(t.Batches, p)
			}
			p.VMs = append(p.VMs, vm)
			p.Addresses += len(vm.Prefixes)
			t.VMs++
			t.Addresses += len(vm.Prefixes)
		}
		for _, p := range parts {
			// The plan sorts a batch by tenant, then name; sort anyway, so
			// that a calendar's list does not hang on that.
			slices.SortFunc(p.VMs, func(a, b *runbook.VM) int { return cmp.Compare(a.Name, b.Name) })
		}
	}
}

// Selected reports whether the schedule holds only some of the plan's
// tenants.
func (s *Schedule) Selected() bool { return len(s.Tenants) < len(s.Plan.Inventory.Tenants()) }

// GoPoints says where the run waits for people, for the header: "the run
// waits for a go at before-start (before canary), after-canary (before
// batch-01), before-end (after the last batch)"; "" when it never does.
func (s *Schedule) GoPoints() string {
	var parts []string
	for _, b := range s.Plan.Batches {
		for _, c := range b.Confirm {
			parts = append(parts, fmt.Sprintf("%s (before %s)", c, b.Name))
		}
	}
	for _, c := range s.Plan.ConfirmEnd {
		parts = append(parts, c+" (after the last batch)")
	}
	if len(parts) == 0 {
		return ""
	}
	line := "the run waits for a person's go at " + strings.Join(parts, ", ") + "; the times assume each is answered at once, and a later answer shifts every batch after it"
	if hold := s.Plan.Runbook.Hold; hold > 0 {
		// The hold between batches runs while the run waits: an answer
		// within it delays nothing.
		line += fmt.Sprintf(" (once a batch has moved, by the delay less the %s hold that runs meanwhile)", hold)
	}
	return line
}
