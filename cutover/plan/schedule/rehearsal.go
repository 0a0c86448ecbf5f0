package schedule

import (
	"fmt"
	"time"

	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/evidence"
	"github.com/cutover/cutover/cutover/plan"
	"github.com/cutover/cutover/cutover/report"
	"github.com/cutover/cutover/internal/words"
)

// Evidence is what a store of rehearsal records gave for a plan.
type Evidence struct {
	// Dir is the store's directory.
	Dir string
	// Records are its green rehearsals of exactly the plan's runbook and
	// inventory bytes, newest first.
	Records []*evidence.Record
	// Why says, when there is no record, why: "no rehearsal of these
	// bytes in DIR (2 records: 1 of other bytes, 1 failed)".
	Why string
}

// ReadEvidence reads the green rehearsals of exactly pl's bytes from the
// store in dir. It never fails: a store that cannot be read gives no
// record and says why, and the schedule is then estimated.
func ReadEvidence(dir string, pl *plan.Plan) Evidence {
	ev := Evidence{Dir: dir}
	rbd, invd := pl.Runbook.Digest, pl.Inventory.Digest
	all, bad, err := evidence.Store{Dir: dir}.All()
	if err != nil {
		ev.Why = fmt.Sprintf("cannot read the rehearsal records: %v", err)
		return ev
	}
	var other, failed int
	for _, r := range all { // newest first, as the store gives them
		switch {
		case !r.Matches(rbd, invd):
			other++
		case !r.Green:
			failed++
		default:
			ev.Records = append(ev.Records, r)
		}
	}
	if len(ev.Records) > 0 {
		return ev
	}
	// Say what the store holds instead, so that a rehearsal of an older
	// inventory is not a mystery.
	ev.Why = "no rehearsal of these bytes in " + dir
	if len(all)+len(bad) == 0 {
		return ev
	}
	ev.Why += fmt.Sprintf(" (%s: %d of other bytes, %d failed, %d unreadable)", words.Plural(len(all)+len(bad), "record"), other, failed, len(bad))
	return ev
}

// span is when one rehearsal ran one batch, as offsets from its run's
// start without its waits at go/no-go points; ok is false when the
// rehearsal did not commit the batch.
type span struct {
	start, end time.Duration
	ok         bool
}

// measureAll measures every usable record: per record, a span per batch
// of the plan. A record that cannot be used is left out with a note.
func measureAll(pl *plan.Plan, recs []*evidence.Record) (map[*evidence.Record][]span, []string) {
	out := map[*evidence.Record][]span{}
	var notes []string
	for _, r := range recs {
		sp, err := measure(pl, r)
		if err != nil {
			notes = append(notes, fmt.Sprintf("left out the %s: %v", r, err))
			continue
		}
		out[r] = sp
	}
	return out, notes
}

// measure reads when the rehearsal in r ran each batch of pl. A batch
// counts where the rehearsal committed it: from the first start of any
// of its tries (announce) to its commit. Rolled back, held or never
// started, it gives nothing, as it says nothing of when the batch
// commits. Waits at go/no-go points are taken out, as the schedule
// assumes prompt answers; other pauses stay, as they are part of what
// the rehearsal measured.
func measure(pl *plan.Plan, r *evidence.Record) ([]span, error) {
	rep := r.Report
	switch {
	case !r.Matches(pl.Runbook.Digest, pl.Inventory.Digest):
		return nil, fmt.Errorf("it rehearsed other bytes (%s differs)", r.Differs(pl.Runbook.Digest, pl.Inventory.Digest))
	case rep == nil:
		return nil, fmt.Errorf("it holds no report")
	case rep.Started.IsZero():
		return nil, fmt.Errorf("its report has no start")
	case len(rep.Batches) != len(pl.Batches):
		return nil, fmt.Errorf("its report has %d batches, the plan %d", len(rep.Batches), len(pl.Batches))
	}
	out := make([]span, len(pl.Batches))
	for i, b := range rep.Batches {
		if b.Index != i || b.Name != pl.Batches[i].Name {
			return nil, fmt.Errorf("its batch %d is %d %q, the plan's %q", i, b.Index, b.Name, pl.Batches[i].Name)
		}
		if b.Phase != engine.BatchCommitted || b.Decided.IsZero() {
			continue
		}
		start := firstStart(&b)
		if start.IsZero() || b.Decided.Before(start) || start.Before(rep.Started) {
			continue
		}
		out[i] = span{start: offset(rep, start), end: offset(rep, b.Decided), ok: true}
	}
	return out, nil
}

// firstStart is the earliest start of any of the batch's tries: those
// retry sent back, and the reruns of each.
func firstStart(b *report.Batch) time.Time {
	var first time.Time
	see := func(t report.Try) {
		for _, at := range append([]time.Time{t.Started}, rerunStarts(t)...) {
			if !at.IsZero() && (first.IsZero() || at.Before(first)) {
				first = at
			}
		}
	}
	see(b.Try)
	for _, r := range b.Retries {
		see(r.Try)
	}
	return first
}

func rerunStarts(t report.Try) []time.Time {
	out := make([]time.Time, len(t.Reruns))
	for i, r := range t.Reruns {
		out[i] = r.Started
	}
	return out
}

// offset is at's time from the run's start without the time spent waiting
// at go/no-go points before it.
func offset(rep *report.Report, at time.Time) time.Duration {
	d := at.Sub(rep.Started)
	for _, w := range rep.Waits {
		if w.Point == "" || w.To.IsZero() {
			continue
		}
		from, to := w.From, w.To
		if from.Before(rep.Started) {
			from = rep.Started
		}
		if at.Before(to) {
			to = at
		}
		if to.After(from) {
			d -= to.Sub(from)
		}
	}
	return max(d, 0)
}
