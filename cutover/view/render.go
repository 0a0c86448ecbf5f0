// Package view is the night-shift view of a cutover run: one line per
// batch with a progress bar, its state, the gate verdict and timings, the
// VMs moved of the total with an ETA, and the last events.
//
// Render writes it once as plain text. Watch follows a run: on a terminal
// it redraws the view in place (with Bubble Tea); elsewhere (a pipe, a
// log file, CI) it prints one plain line per new event and per batch state
// change, never a full redraw.
package view

import (
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cutover/cutover/cutover/engine"
)

// Options tune the view. The zero value is usable.
type Options struct {
	// Events is how many of the last events are shown; 0: 8, <0: none.
	Events int
	// Interval is how often Watch asks for the status; 0: 1s.
	Interval time.Duration
	// Patience is how long Watch keeps retrying a status source that
	// fails (a daemon restarting) before it gives up; 0: 1 minute.
	Patience time.Duration
	// Location is the time zone of the clock times shown; nil: local.
	Location *time.Location

	// maxBatches caps the batch lines (a terminal's height); 0: all.
	maxBatches int
}

func (o Options) withDefaults() Options {
	if o.Events == 0 {
		o.Events = 8
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Patience <= 0 {
		o.Patience = time.Minute
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	return o
}

// Render writes the view of st as plain text, without colors.
func Render(w io.Writer, st engine.Status, opts Options) error {
	opts = opts.withDefaults()
	_, err := io.WriteString(w, render(st, st.Events, opts, plain{}))
	return err
}

// styler colors the view on a terminal; plain leaves it as it is. Every
// cell is padded before it is styled, so widths stay right.
type styler interface {
	style(kind, s string) string
	bar(p engine.BatchPhase, width int) string
}

// Style kinds.
const (
	kOK   = "ok"
	kBad  = "bad"
	kBusy = "busy"
	kDim  = "dim"
	kBold = "bold"
)

type plain struct{}

func (plain) style(_, s string) string { return s }

func (plain) bar(p engine.BatchPhase, width int) string {
	full, fill := barFill(p, width)
	return "[" + strings.Repeat(string(fill), full) + strings.Repeat("-", width-full) + "]"
}

const barWidth = 10

// barFill is how much of a batch's bar is full in phase p, and with what.
func barFill(p engine.BatchPhase, width int) (int, rune) {
	switch p {
	case engine.BatchAnnouncing:
		return width * 3 / 10, '#'
	case engine.BatchGating:
		return width * 6 / 10, '#'
	case engine.BatchCommitted:
		return width, '#'
	case engine.BatchRollingBack:
		return width / 2, '<'
	case engine.BatchRolledBack:
		return width, 'x'
	}
	return 0, '#'
}

func phaseKind(p engine.BatchPhase) string {
	switch p {
	case engine.BatchCommitted:
		return kOK
	case engine.BatchRollingBack, engine.BatchRolledBack:
		return kBad
	case engine.BatchAnnouncing, engine.BatchGating:
		return kBusy
	}
	return kDim
}

// render builds the whole view. events are the ones to list (the last
// opts.Events of them).
func render(st engine.Status, events []engine.Event, opts Options, s styler) string {
	var b strings.Builder
	rs := &st.State
	loc := opts.Location

	if u := st.Unreconciled; u != nil {
		for _, line := range unreconciledLines(u) {
			b.WriteString(s.style(kBad, line) + "\n")
		}
		return b.String()
	}
	if rs.RunID == "" && len(rs.Batches) == 0 {
		b.WriteString(s.style(kDim, "no run") + "\n")
		if line := journalLine(st.Journal, loc); line != "" {
			b.WriteString(s.style(kBad, line) + "\n")
		}
		return b.String()
	}
	head := "run " + rs.RunID + "  " + rs.Runbook
	if rs.Operator != "" {
		head += "  by " + rs.Operator
	}
	b.WriteString(s.style(kBold, head) + "\n")
	b.WriteString(summary(st, loc, s) + "\n")
	if line := pauseLine(rs); line != "" {
		b.WriteString(s.style(kBusy, line) + "\n")
	}
	if line := journalLine(st.Journal, loc); line != "" {
		b.WriteString(s.style(kBad, line) + "\n")
	}

	// Batch table: cells first, widths from the plain text, then style.
	nameW := len("batch")
	for _, x := range rs.Batches {
		nameW = max(nameW, min(utf8.RuneCountInString(x.Name), 28))
	}
	vmW := len("VMs")
	idxW := 1
	for _, x := range rs.Batches {
		vmW = max(vmW, len(fmt.Sprint(x.VMs)))
		idxW = max(idxW, len(fmt.Sprint(x.Index)))
	}
	stateW := len("rolling-back")
	fmt.Fprintf(&b, "%s\n", s.style(kDim, strings.TrimRight(fmt.Sprintf("%*s  %-*s  %*s  %-*s  %-*s  %-*s  %s",
		idxW, "#", nameW, "batch", vmW, "VMs", barWidth+2, "progress", stateW, "state", gateW, "gates", "time"), " ")))
	first, last := window(rs.Batches, opts.maxBatches)
	if first > 0 {
		b.WriteString(s.style(kDim, fmt.Sprintf("%*s  … %s", idxW, "", countPhases(rs.Batches[:first]))) + "\n")
	}
	for _, x := range rs.Batches[first:last] {
		gates, gk := gateCell(x)
		line := fmt.Sprintf("%*d  %s  %*d  %s  %s  %s  %s",
			idxW, x.Index, pad(shorten(x.Name, 28), nameW), vmW, x.VMs,
			s.bar(x.Phase, barWidth), s.style(phaseKind(x.Phase), pad(string(x.Phase), stateW)),
			s.style(gk, pad(gates, gateW)), timing(x, st.Now))
		b.WriteString(strings.TrimRight(line, " ") + "\n")
	}
	if last < len(rs.Batches) {
		b.WriteString(s.style(kDim, fmt.Sprintf("%*s  … %s", idxW, "", countPhases(rs.Batches[last:]))) + "\n")
	}

	if opts.Events > 0 && len(events) > 0 {
		b.WriteString(s.style(kDim, "events:") + "\n")
		for _, e := range events[max(0, len(events)-opts.Events):] {
			b.WriteString(eventLine(e, loc, s) + "\n")
		}
	}
	return b.String()
}

const gateW = 40

// summary is the line with the run's phase, the moved VMs and the ETA.
func summary(st engine.Status, loc *time.Location, s styler) string {
	rs := &st.State
	var committed, rolled, decided int
	for _, x := range rs.Batches {
		switch x.Phase {
		case engine.BatchCommitted:
			committed++
			decided++
		case engine.BatchRolledBack:
			rolled++
			decided++
		}
	}
	pct := 0
	if st.TotalVMs > 0 {
		pct = st.MovedVMs * 100 / st.TotalVMs
	}
	phase := s.style(runKind(rs.Phase), string(rs.Phase))
	line := fmt.Sprintf("%s · moved %d/%d VMs (%d%%) · batches %d/%d decided: %d committed, %d rolled back",
		phase, st.MovedVMs, st.TotalVMs, pct, decided, len(rs.Batches), committed, rolled)
	switch {
	case !rs.Ended.IsZero():
		line += fmt.Sprintf(" · ended %s after %s", rs.Ended.In(loc).Format("15:04:05"), engine.Human(rs.Ended.Sub(rs.Started)))
	case st.ETA > 0:
		line += " · ETA " + engine.Human(st.ETA)
	}
	return line
}

func runKind(p engine.RunPhase) string {
	switch p {
	case engine.PhaseDone:
		return kOK
	case engine.PhaseAborted:
		return kBad
	case engine.PhasePaused:
		return kBusy
	}
	return kBold
}

// pauseLine says why a run is paused, or how it ended.
func pauseLine(rs *engine.RunState) string {
	switch {
	case rs.Confirm != "":
		return fmt.Sprintf("waiting for go/no-go at %q: cutover confirm %s", rs.Confirm, rs.Confirm)
	case rs.Phase == engine.PhasePaused:
		return "paused: " + rs.Pause + " (cutover resume continues)"
	case rs.Phase == engine.PhaseDone || rs.Phase == engine.PhaseAborted:
		if rs.Result != "" {
			return string(rs.Phase) + ": " + rs.Result
		}
	}
	return ""
}

// unreconciledLines say what the daemon found of an earlier run while its
// journal holds none, and what each decision would do.
func unreconciledLines(u *engine.Unreconciled) []string {
	out := []string{"UNRECONCILED: the journal holds no run, but an earlier run left traces:"}
	for _, f := range u.Found {
		out = append(out, "  found: "+f)
	}
	if u.Adopt != "" {
		out = append(out, "  cutover reconcile adopt: take them as they are: "+u.Adopt)
	} else {
		out = append(out, "  cutover reconcile adopt: refused: "+u.NoAdopt)
	}
	out = append(out, "  cutover reconcile clear: "+u.Clear+" (rollback --all does the same)")
	return append(out, "  no run starts until one is chosen")
}

// journalLine says that the journal cannot be written, and what that
// means for the run, or "" when it can.
func journalLine(js engine.JournalStatus, loc *time.Location) string {
	if !js.Unusable && js.Held == 0 {
		return ""
	}
	line := "JOURNAL UNUSABLE"
	if !js.Since.IsZero() {
		line += " since " + js.Since.In(loc).Format("15:04:05")
	}
	var why []string
	for _, w := range []string{js.Error, js.Full} {
		if w != "" {
			why = append(why, w)
		}
	}
	if len(why) > 0 {
		line += ": " + strings.Join(why, "; ")
	}
	if js.Held > 0 {
		line += fmt.Sprintf(" · %d records held in memory until the journal takes them", js.Held)
	}
	if !js.Retry.IsZero() {
		line += " · next try " + js.Retry.In(loc).Format("15:04:05")
	}
	return line + " · no step forward; rollback still works"
}

// gateCell sums up a batch's last gate verdicts.
func gateCell(x engine.BatchState) (string, string) {
	if len(x.Verdicts) == 0 {
		if x.Reason != "" {
			return shorten(x.Reason, gateW), kBad
		}
		return "", kDim
	}
	failed := engine.FailedGates(x.Verdicts)
	if failed == "" {
		return fmt.Sprintf("pass (%d gates)", len(x.Verdicts)), kOK
	}
	return shorten("FAIL "+failed, gateW), kBad
}

// timing is a batch's time: running so far, or taken in all.
func timing(x engine.BatchState, now time.Time) string {
	if x.Started.IsZero() {
		return ""
	}
	switch x.Phase {
	case engine.BatchAnnouncing, engine.BatchGating:
		if now.Before(x.Started) {
			return ""
		}
		return "running " + engine.Human(now.Sub(x.Started))
	case engine.BatchCommitted:
		s := engine.Human(x.Decided.Sub(x.Started))
		if x.GateTook > 0 {
			s += " (gate " + engine.Human(x.GateTook) + ")"
		}
		return s
	case engine.BatchRollingBack:
		return "rolling back"
	case engine.BatchRolledBack:
		s := engine.Human(x.RolledBack.Sub(x.Started))
		if !x.Decided.IsZero() && x.RolledBack.After(x.Decided) {
			s += " (rollback " + engine.Human(x.RolledBack.Sub(x.Decided)) + ")"
		}
		return s
	}
	return ""
}

func eventLine(e engine.Event, loc *time.Location, s styler) string {
	who := "run"
	if e.Batch >= 0 {
		who = fmt.Sprintf("b%d", e.Batch)
	}
	k := kDim
	switch e.Op {
	case "gate", "rollback", "error":
		k = kBad
	case "commit", "done":
		k = kOK
	case "confirm", "pause":
		k = kBusy
	}
	return fmt.Sprintf("  %s  %-4s %s %s", e.Time.In(loc).Format("15:04:05"), who, s.style(k, pad(e.Op, 9)), e.Msg)
}

// window picks the batch lines to show when at most n fit: those around
// the first batch not yet decided.
func window(bs []engine.BatchState, n int) (first, last int) {
	if n <= 0 || len(bs) <= n {
		return 0, len(bs)
	}
	n = max(n-2, 1) // room for the two "…" lines
	cur := len(bs) - 1
	for i, x := range bs {
		if x.Phase != engine.BatchCommitted && x.Phase != engine.BatchRolledBack {
			cur = i
			break
		}
	}
	first = max(0, min(cur-n/3, len(bs)-n))
	return first, first + n
}

// countPhases says how many batches are in which phase.
func countPhases(bs []engine.BatchState) string {
	var order []engine.BatchPhase
	n := map[engine.BatchPhase]int{}
	for _, x := range bs {
		if n[x.Phase] == 0 {
			order = append(order, x.Phase)
		}
		n[x.Phase]++
	}
	parts := make([]string, len(order))
	for i, p := range order {
		parts[i] = fmt.Sprintf("%d %s", n[p], p)
	}
	return fmt.Sprintf("%d batches: %s", len(bs), strings.Join(parts, ", "))
}

// pad fills s with spaces to n runes.
func pad(s string, n int) string {
	if c := utf8.RuneCountInString(s); c < n {
		return s + strings.Repeat(" ", n-c)
	}
	return s
}

// shorten cuts s to n runes with an ellipsis.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
