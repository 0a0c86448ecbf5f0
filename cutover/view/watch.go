package view

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/mattn/go-isatty"

	"github.com/cutover/cutover/cutover/engine"
)

// ErrInterrupted is returned by Watch when the person at the terminal
// pressed Ctrl-C. The run itself goes on in the daemon.
var ErrInterrupted = errors.New("watch interrupted; the run goes on in the daemon (cutover status --watch to follow it again)")

// Source returns the daemon's status, for example
//
//	func(ctx context.Context) (engine.Status, error) { return client.Status(ctx, 0) }
//
// It may return every event it knows or only the new ones: Watch keeps
// the last events itself and shows each one once.
type Source func(ctx context.Context) (engine.Status, error)

// Watch follows a run until it is no longer active (done or aborted) or
// ctx ends, and returns the last status it saw. With opts.WaitForRun it
// first waits while the daemon has no run, then follows the one that
// starts. On a terminal it redraws the view in place; otherwise it writes
// the view once (while it waits: one line) and then one line per new event
// and per batch state change. A failing src is retried for opts.Patience
// (a daemon restarting) unless the very first call fails.
func Watch(ctx context.Context, src Source, out io.Writer, opts Options) (engine.Status, error) {
	opts = opts.withDefaults()
	st, err := src(ctx)
	if err != nil {
		return st, fmt.Errorf("watch: %w", err)
	}
	if f, ok := out.(interface{ Fd() uintptr }); ok && isatty.IsTerminal(f.Fd()) && following(st, opts) {
		return watchTTY(ctx, src, out, keys(), st, opts)
	}
	return watchPlain(ctx, src, out, st, opts)
}

// following reports whether Watch goes on after status st: while the run
// is active, and while there is none when it waits for one.
func following(st engine.Status, opts Options) bool {
	return st.State.Active() || opts.WaitForRun && idle(st)
}

// tracker remembers which events were shown and keeps the last ones.
type tracker struct {
	lastSeq  int
	lastTime time.Time
	recent   []engine.Event
	keep     int
}

// fresh returns the events not seen before. Event numbers start again
// when the daemon restarts, so an event is also new when it is later than
// every event seen.
func (t *tracker) fresh(evs []engine.Event) []engine.Event {
	var out []engine.Event
	maxSeq, maxTime := t.lastSeq, t.lastTime
	restarted := false
	for _, e := range evs {
		if e.Seq > t.lastSeq || e.Time.After(t.lastTime) {
			out = append(out, e)
		}
		if e.Seq <= t.lastSeq && e.Time.After(t.lastTime) {
			restarted = true
		}
		maxTime = later(maxTime, e.Time)
	}
	if restarted {
		maxSeq = 0
	}
	for _, e := range out {
		maxSeq = max(maxSeq, e.Seq)
	}
	t.lastSeq, t.lastTime = maxSeq, maxTime
	t.recent = append(t.recent, out...)
	if len(t.recent) > t.keep {
		t.recent = slices.Delete(t.recent, 0, len(t.recent)-t.keep)
	}
	return out
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// watchPlain prints lines for a log, a pipe or a test.
func watchPlain(ctx context.Context, src Source, out io.Writer, st engine.Status, opts Options) (engine.Status, error) {
	tr := &tracker{keep: max(opts.Events, 0)}
	evs := tr.fresh(st.Events)
	if _, err := io.WriteString(out, render(st, evs, opts, plain{})); err != nil {
		return st, fmt.Errorf("watch: %w", err)
	}
	waiting := opts.WaitForRun && idle(st)
	prev := st
	var failing time.Time
	for following(st, opts) {
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(opts.Interval):
		}
		next, err := src(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return st, ctx.Err()
			}
			if failing.IsZero() {
				failing = time.Now()
				fmt.Fprintf(out, "  status unavailable: %v (retrying)\n", err)
			} else if time.Since(failing) > opts.Patience {
				return st, fmt.Errorf("watch: no status for %s: %w", opts.Patience, err)
			}
			continue
		}
		if !failing.IsZero() {
			failing = time.Time{}
			fmt.Fprintln(out, "  status available again")
		}
		st = next
		evs := tr.fresh(st.Events)
		if waiting && !idle(st) {
			// A run started: its view in full, then its changes.
			waiting = false
			if _, err := io.WriteString(out, render(st, evs, opts, plain{})); err != nil {
				return st, fmt.Errorf("watch: %w", err)
			}
		} else if !waiting {
			for _, l := range changes(prev, st, evs, opts.Location) {
				if _, err := io.WriteString(out, l.text+"\n"); err != nil {
					return st, fmt.Errorf("watch: %w", err)
				}
			}
		}
		prev = st
	}
	return st, nil
}

type line struct {
	at   time.Time
	text string
}

// runStateLines are the plain watch's lines about the run's phase: how it
// ended and what to do next, or what it waits for, or its phase.
func runStateLines(st engine.Status, stamp func(op, msg string) line) []line {
	rs := &st.State
	if !rs.Active() {
		out := []line{stamp("state", endLine(st))}
		for i, l := range outcomeLines(st) {
			if i > 0 {
				out = append(out, stamp("next", strings.TrimPrefix(l.text, "next: ")))
			}
		}
		return out
	}
	wait := waitLines(rs)
	if len(wait) == 0 {
		return []line{stamp("state", string(rs.Phase))}
	}
	var out []line
	for i, l := range wait {
		op := "state"
		if i > 0 {
			op = "wait"
		}
		out = append(out, stamp(op, strings.TrimSpace(l.text)))
	}
	return out
}

// changes lists, in time order, what happened between two statuses: the
// run's phase, each batch's phase, and the new events.
func changes(prev, st engine.Status, evs []engine.Event, loc *time.Location) []line {
	var out []line
	rs, ps := &st.State, &prev.State
	stamp := func(t time.Time, who, op, msg string) line {
		if t.IsZero() {
			t = st.Now
		}
		return line{t, fmt.Sprintf("  %s  %-4s %-9s %s", t.In(loc).Format("15:04:05"), who, op, msg)}
	}
	newRun := rs.RunID != ps.RunID
	if newRun {
		out = append(out, stamp(rs.Started, "run", "start", fmt.Sprintf("run %s of %s by %s: %d batches", rs.RunID, rs.Runbook, rs.Operator, len(rs.Batches))))
	}
	for i, x := range rs.Batches {
		if !newRun && i < len(ps.Batches) && ps.Batches[i].Phase == x.Phase && ps.Batches[i].Attempts == x.Attempts {
			continue
		}
		if newRun && x.Phase == engine.BatchPending {
			continue
		}
		msg := fmt.Sprintf("%-12s %s", x.Phase, plain{}.bar(x.Phase, barWidth))
		if t := timing(x, st.Now); t != "" && (x.Phase == engine.BatchCommitted || x.Phase == engine.BatchRolledBack) {
			msg += " " + t
		}
		if why := whyText(current(x, rs.Phase), rs.Target); why != "" {
			msg += " · " + why
		}
		out = append(out, stamp(x.PhaseTime(), fmt.Sprintf("b%d", x.Index), "state", msg))
	}
	if newRun || rs.Phase != ps.Phase || rs.Pause != ps.Pause || rs.Confirm != ps.Confirm {
		at := st.Now
		if !rs.Ended.IsZero() {
			at = rs.Ended
		}
		out = append(out, runStateLines(st, func(op, msg string) line { return stamp(at, "run", op, msg) })...)
	}
	if (st.Unreconciled == nil) != (prev.Unreconciled == nil) {
		msg := "reconciled"
		if st.Unreconciled != nil {
			msg = strings.Join(unreconciledLines(st.Unreconciled), "\n")
		}
		out = append(out, stamp(st.Now, "run", "journal", msg))
	}
	if js, pj := st.Journal, prev.Journal; js.Unusable != pj.Unusable || js.Error != pj.Error || js.Full != pj.Full || js.Held != pj.Held {
		msg := journalLine(js, loc)
		if msg == "" {
			msg = "the journal can be written again"
		}
		out = append(out, stamp(st.Now, "run", "journal", msg))
	}
	if rs.Active() && st.MovedVMs != prev.MovedVMs {
		msg := fmt.Sprintf("%d/%d VMs at the target", st.MovedVMs, st.TotalVMs)
		if st.ETA > 0 {
			msg += " · ETA " + engine.Human(st.ETA)
		}
		out = append(out, stamp(st.Now, "run", "moved", msg))
	}
	for _, e := range evs {
		out = append(out, line{e.Time, eventLine(e, loc, plain{})})
	}
	// State changes first on a tie (the engine journals, then tells), the
	// batches' before the run's.
	slices.SortStableFunc(out, func(a, b line) int { return a.at.Compare(b.at) })
	return out
}
