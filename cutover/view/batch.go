package view

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/internal/words"
)

// RenderBatch writes, as plain text, all the view knows of one batch of
// st's run: its name and phase, size, timings, attempts and retries, why
// it was rolled back or held and who rolled it back in how long, every
// gate verdict with every failing target, and what to do next. A batch the
// run does not have is an error.
func RenderBatch(w io.Writer, st engine.Status, batch int, opts Options) error {
	opts = opts.withDefaults()
	rs := &st.State
	switch {
	case rs.RunID == "" && len(rs.Batches) == 0:
		return fmt.Errorf("batch %d: there is no run", batch)
	case len(rs.Batches) == 0:
		return fmt.Errorf("batch %d: the run has no batches", batch)
	case batch < 0 || batch >= len(rs.Batches):
		return fmt.Errorf("batch %d: the run has batches 0 to %d", batch, len(rs.Batches)-1)
	}
	_, err := io.WriteString(w, renderBatch(st, rs.Batches[batch], opts.Location))
	return err
}

// renderBatch builds the drill-down of batch x.
func renderBatch(st engine.Status, x engine.BatchState, loc *time.Location) string {
	rs := &st.State
	var b strings.Builder
	fmt.Fprintf(&b, "batch %d %s: %s\n", x.Index, x.Name, x.Phase)
	head := "run " + rs.RunID + "  " + rs.Runbook
	if rs.Source != "" || rs.Target != "" {
		head += "  " + site(rs.Source, "source") + " → " + site(rs.Target, "target")
	}
	b.WriteString(head + "\n")
	kv := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%-12s %s\n", k, v)
		}
	}
	kv("size", fmt.Sprintf("%s, %s", words.Plural(x.VMs, "VM"), words.Plural(x.Prefixes, "prefix")))
	kv("attempts", attemptsText(x))
	for _, t := range batchTimes(x, loc) {
		kv(t[0], t[1])
	}
	kv("rollback", rollbackDetail(x))
	kv("reason", x.Reason)
	if now := current(x, rs.Phase); len(now.Verdicts) < len(x.Verdicts) {
		// Moved again: the decided verdicts are an earlier attempt's.
		pending, decided := splitVerdicts(x.Verdicts)
		b.WriteString(verdictsText("verdicts of an earlier attempt:", decided))
		b.WriteString(verdictsText("verdicts:", pending))
	} else {
		b.WriteString(verdictsText("verdicts:", x.Verdicts))
	}
	if next := batchNext(rs, x); next != "" {
		b.WriteString("next: " + next + "\n")
	}
	return b.String()
}

// attemptsText is how often a batch was started and retried.
func attemptsText(x engine.BatchState) string {
	s := fmt.Sprint(x.Attempts)
	if x.Attempts == 0 {
		s += " (never moved)"
	}
	if x.Retries > 0 {
		s += fmt.Sprintf(" (retried %s)", words.Plural(x.Retries, "time"))
	}
	return s
}

// batchTimes are a batch's clock times that it reached, with the
// durations the engine measured.
func batchTimes(x engine.BatchState, loc *time.Location) [][2]string {
	clock := func(t time.Time) string { return t.In(loc).Format("15:04:05") }
	var out [][2]string
	add := func(k string, t time.Time, extra string) {
		if !t.IsZero() {
			out = append(out, [2]string{k, clock(t) + extra})
		}
	}
	took := func(what string, d time.Duration) string {
		if d <= 0 {
			return ""
		}
		return " (" + what + " " + engine.Human(d) + ")"
	}
	add("started", x.Started, "")
	add("announced", x.Announced, took("apply", x.ApplyTook))
	add("converged", x.Converged, "")
	switch x.Phase {
	case engine.BatchHeld:
		add("held", x.Decided, took("readiness check", x.GateTook))
	case engine.BatchCommitted:
		add("committed", x.Decided, took("gate", x.GateTook))
	default:
		add("decided", x.Decided, took("gate", x.GateTook))
	}
	add("rolled back", x.RolledBack, "")
	return out
}

// rollbackDetail is how long a batch's rollback took and who did it.
func rollbackDetail(x engine.BatchState) string {
	var parts []string
	if x.RollbackTook > 0 {
		parts = append(parts, "took "+engine.Human(x.RollbackTook))
	}
	if who := rollbackWho(x.RollbackBy); who != "" {
		parts = append(parts, who)
	}
	return strings.Join(parts, ", ")
}

// verdictsText lists verdicts under title, a gate after the other, each
// failing target on a line of its own.
func verdictsText(title string, vs []engine.VerdictRecord) string {
	if len(vs) == 0 {
		return title + " none yet\n"
	}
	nameW := 0
	for _, v := range vs {
		n, _ := gateName(v)
		nameW = max(nameW, len(n))
	}
	var b strings.Builder
	b.WriteString(title + "\n")
	for _, v := range vs {
		name, pending := gateName(v)
		list := v.Failures()
		var state string
		switch {
		case pending:
			state = "running: " + strings.TrimPrefix(progressText(v), name+" ")
			list = v.Failed
			if len(list) > 0 {
				state += fmt.Sprintf(", %d failing in the last round:", len(list))
			}
		case v.Pass:
			state, list = "pass", nil
		case len(v.Failed) > 0:
			state = fmt.Sprintf("FAIL, %d failing:", len(v.Failed))
		default:
			state = "FAIL"
			if len(list) > 0 {
				state += ":"
			}
		}
		fmt.Fprintf(&b, "  %s  %s\n", pad(name, nameW), state)
		for _, f := range list {
			b.WriteString("    " + f + "\n")
		}
	}
	return b.String()
}

// batchNext is what to do next about batch x, or "" when nothing.
func batchNext(rs *engine.RunState, x engine.BatchState) string {
	switch {
	case x.Phase.AtSource() && rs.Phase == engine.PhaseAborted:
		return "the run was aborted: start it again with cutover run"
	case x.Phase.AtSource() && (rs.Phase == engine.PhaseDone || rs.Phase == engine.PhasePaused):
		return fmt.Sprintf("cutover retry --batch %d moves it again (readiness check, gates and go/no-go points); cutover retry moves every batch rolled back or held", x.Index)
	case x.Phase.AtSource():
		return fmt.Sprintf("cutover retry --batch %d moves it again once the run is done, or paused (cutover pause)", x.Index)
	case rs.Phase == engine.PhasePaused && rs.Pause == "gate-failed" && x.Phase == engine.BatchGating:
		return fmt.Sprintf("cutover resume runs its gates again; cutover rollback --batch %d takes it back", x.Index)
	case rs.Phase == engine.PhasePaused && rs.Pause == "not-ready" && x.Phase == engine.BatchPending && len(failing(x.Verdicts)) > 0:
		return "cutover resume checks again whether its VMs answer at " + site(rs.Target, "target")
	}
	return ""
}
