// Package view is the night-shift view of a cutover run: one line per
// batch with a progress bar, its state, the gate verdict and timings, the
// VMs moved of the total with an ETA, how the run ended and what to do
// next, and the last events.
//
// Render writes it once as plain text, RenderBatch the whole record of one
// batch. Watch follows a run: on a terminal it redraws the view in place
// (with Bubble Tea); elsewhere (a pipe, a log file, CI) it prints one plain
// line per new event and per batch state change, never a full redraw.
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
	// WaitForRun makes Watch wait while the daemon has no run (phase
	// idle), showing "waiting for a run…", and then follow the run that
	// starts to its end. Without it Watch returns at once when there is
	// no run.
	WaitForRun bool

	// height is the lines the whole view may take (a terminal's height);
	// 0: no limit. Batches that do not fit are folded into count lines,
	// except those that need a person's eyes.
	height int
	// width is the terminal's width; 0: unknown (no line is cut).
	width int
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
	kOK   = "ok"   // done and well: committed, all moved
	kBad  = "bad"  // failed: a gate, an abort, a rollback under way
	kWarn = "warn" // needs a person: held or rolled back, partial, waiting
	kBusy = "busy" // under way: announcing, gating, a gate still rising
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
	case engine.BatchHeld:
		return width, '!'
	}
	return 0, '#'
}

func phaseKind(p engine.BatchPhase) string {
	switch p {
	case engine.BatchCommitted:
		return kOK
	case engine.BatchRollingBack:
		return kBad
	case engine.BatchRolledBack, engine.BatchHeld:
		return kWarn
	case engine.BatchAnnouncing, engine.BatchGating:
		return kBusy
	}
	return kDim
}

// idle reports whether the daemon has no run at all.
func idle(st engine.Status) bool {
	rs := &st.State
	return st.Unreconciled == nil && rs.RunID == "" && len(rs.Batches) == 0 &&
		(rs.Phase == engine.PhaseIdle || rs.Phase == "")
}

// waitingLine is what the view shows while Watch waits for a run.
const waitingLine = "waiting for a run…"

// render builds the whole view. events are the ones to list (the last
// opts.Events of them).
func render(st engine.Status, events []engine.Event, opts Options, s styler) string {
	var b strings.Builder
	write := func(lines []string) {
		for _, l := range lines {
			b.WriteString(l + "\n")
		}
	}
	if u := st.Unreconciled; u != nil {
		for _, line := range unreconciledLines(u) {
			b.WriteString(s.style(kBad, line) + "\n")
		}
		return b.String()
	}
	if rs := &st.State; rs.RunID == "" && len(rs.Batches) == 0 {
		line := "no run"
		if opts.WaitForRun && idle(st) {
			line = waitingLine
		}
		b.WriteString(s.style(kDim, line) + "\n")
		if line := journalLine(st.Journal, opts.Location); line != "" {
			b.WriteString(s.style(kBad, line) + "\n")
		}
		return b.String()
	}
	head := headLines(st, opts, s)
	evs := eventLines(events, opts, s)
	rows := 0 // no limit
	if opts.height > 0 {
		rows = max(3, opts.height-len(head)-1-len(evs))
	}
	write(head)
	write(tableLines(st, rows, opts, s))
	write(evs)
	return b.String()
}

// headLines are the lines above the batch table: the run, its summary,
// how it ended or why it waits, and the journal's trouble.
func headLines(st engine.Status, opts Options, s styler) []string {
	rs := &st.State
	head := "run " + rs.RunID + "  " + rs.Runbook
	if rs.Source != "" || rs.Target != "" {
		head += "  " + site(rs.Source, "source") + " → " + site(rs.Target, "target")
	}
	if rs.Operator != "" {
		head += "  by " + rs.Operator
	}
	out := []string{s.style(kBold, head), summary(st, opts.Location, s)}
	for _, l := range outcomeLines(st) {
		out = append(out, s.style(l.kind, l.text))
	}
	for _, l := range waitLines(rs) {
		out = append(out, s.style(l.kind, l.text))
	}
	if line := journalLine(st.Journal, opts.Location); line != "" {
		out = append(out, s.style(kBad, line))
	}
	return out
}

// eventLines are the last events under their title; none when there are
// none or the options want none.
func eventLines(events []engine.Event, opts Options, s styler) []string {
	if opts.Events <= 0 || len(events) == 0 {
		return nil
	}
	out := []string{s.style(kDim, "events:")}
	for _, e := range events[max(0, len(events)-opts.Events):] {
		out = append(out, eventLine(e, opts.Location, s))
	}
	return out
}

const (
	gateW  = 40
	nameW  = 28
	stateW = len("rolling-back")
)

// tableLines is the batch table: a header, a line per batch (and the why
// of a batch that failed or was held), and count lines for batches folded
// away when the table may take at most rows lines (0: no limit).
func tableLines(st engine.Status, rows int, opts Options, s styler) []string {
	rs := st.State
	rs.Batches = make([]engine.BatchState, len(st.State.Batches))
	for i, x := range st.State.Batches {
		rs.Batches[i] = current(x, rs.Phase)
	}
	// Cells first, widths from the plain text, then style.
	nameCol, vmW, idxW := len("batch"), len("VMs"), 1
	for _, x := range rs.Batches {
		nameCol = max(nameCol, min(utf8.RuneCountInString(x.Name), nameW))
		vmW = max(vmW, len(fmt.Sprint(x.VMs)))
		idxW = max(idxW, len(fmt.Sprint(x.Index)))
	}
	out := []string{s.style(kDim, strings.TrimRight(fmt.Sprintf("%*s  %-*s  %*s  %-*s  %-*s  %-*s  %s",
		idxW, "#", nameCol, "batch", vmW, "VMs", barWidth+2, "progress", stateW, "state", gateW, "gates", "time"), " "))}
	cost := func(i int) int {
		if whyText(rs.Batches[i], rs.Target) != "" {
			return 2
		}
		return 1
	}
	show := visible(rs.Batches, max(rows-1, 0), cost)
	for i := 0; i < len(rs.Batches); {
		if !show[i] {
			j := i
			for j < len(rs.Batches) && !show[j] {
				j++
			}
			out = append(out, s.style(kDim, fmt.Sprintf("%*s  … %s", idxW, "", countPhases(rs.Batches[i:j]))))
			i = j
			continue
		}
		x := rs.Batches[i]
		gates, gk := gateCell(x)
		line := fmt.Sprintf("%*d  %s  %*d  %s  %s  %s  %s",
			idxW, x.Index, pad(shorten(x.Name, nameW), nameCol), vmW, x.VMs,
			s.bar(x.Phase, barWidth), s.style(phaseKind(x.Phase), pad(string(x.Phase), stateW)),
			s.style(gk, pad(gates, gateW)), timing(x, st.Now))
		out = append(out, strings.TrimRight(line, " "))
		if why := whyText(x, rs.Target); why != "" {
			prefix := strings.Repeat(" ", idxW+2) + "why: "
			out = append(out, s.style(whyKind(x), fit(prefix+why, opts.width, x.Index)))
		}
		i++
	}
	return out
}

// summary is the line with the run's phase (and outcome), the moved VMs
// and the ETA.
func summary(st engine.Status, loc *time.Location, s styler) string {
	rs := &st.State
	var committed, rolled, held int
	for _, x := range rs.Batches {
		switch x.Phase {
		case engine.BatchCommitted:
			committed++
		case engine.BatchRolledBack:
			rolled++
		case engine.BatchHeld:
			held++
		}
	}
	pct := 0
	if st.TotalVMs > 0 {
		pct = st.MovedVMs * 100 / st.TotalVMs
	}
	phase, kind := string(rs.Phase), runKind(rs.Phase)
	if o, _, _ := outcome(st); o == engine.OutcomeAllMoved || o == engine.OutcomePartial {
		phase += " (" + strings.ReplaceAll(string(o), "-", " ") + ")"
		kind = outcomeKind(o)
	}
	line := fmt.Sprintf("%s · moved %d/%d VMs (%d%%) · batches %d/%d decided: %d committed, %d rolled back",
		s.style(kind, phase), st.MovedVMs, st.TotalVMs, pct, committed+rolled+held, len(rs.Batches), committed, rolled)
	if held > 0 {
		line += fmt.Sprintf(", %d held", held)
	}
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
		return kWarn
	}
	return kBold
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

// timing is a batch's time: running so far, or taken in all; for a batch
// rolled back, the rollback's own duration and who rolled it back.
func timing(x engine.BatchState, now time.Time) string {
	switch x.Phase {
	case engine.BatchAnnouncing, engine.BatchGating:
		if x.Started.IsZero() || now.Before(x.Started) {
			return ""
		}
		return "running " + engine.Human(now.Sub(x.Started))
	case engine.BatchCommitted:
		if x.Started.IsZero() {
			return ""
		}
		s := engine.Human(x.Decided.Sub(x.Started))
		if x.GateTook > 0 {
			s += " (gate " + engine.Human(x.GateTook) + ")"
		}
		return s
	case engine.BatchRollingBack:
		return "rolling back"
	case engine.BatchRolledBack:
		rb := rollbackText(x)
		if x.Started.IsZero() || x.Decided.Before(x.Started) {
			return rb
		}
		if rb == "" {
			return engine.Human(x.Decided.Sub(x.Started))
		}
		return engine.Human(x.Decided.Sub(x.Started)) + " (" + rb + ")"
	}
	return ""
}

// rollbackText says how long a batch's rollback took, as the engine
// measured the change, and who rolled it back: "rollback 20ms by policy".
// It is "" when the batch holds neither.
func rollbackText(x engine.BatchState) string {
	who := rollbackWho(x.RollbackBy)
	switch {
	case x.RollbackTook > 0 && who != "":
		return "rollback " + engine.Human(x.RollbackTook) + " " + who
	case x.RollbackTook > 0:
		return "rollback " + engine.Human(x.RollbackTook)
	case who != "":
		return "rolled back " + who
	}
	return ""
}

// rollbackWho words who rolled a batch back: "by policy", "by alice",
// "on recovery" (the daemon completing a rollback a restart interrupted).
func rollbackWho(by string) string {
	switch by {
	case "":
		return ""
	case "recover":
		return "on recovery"
	}
	return "by " + by
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
	case "confirm", "pause", "held":
		k = kWarn
	case "retry":
		k = kBusy
	}
	return fmt.Sprintf("  %s  %-4s %s %s", e.Time.In(loc).Format("15:04:05"), who, s.style(k, pad(e.Op, 9)), moreHint(e.Msg, e.Batch))
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

// site is a site's name, or "the source"/"the target" when it has none.
func site(name, role string) string {
	if name == "" {
		return "the " + role
	}
	return name
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
