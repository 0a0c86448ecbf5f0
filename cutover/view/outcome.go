package view

import (
	"fmt"
	"strings"

	"github.com/cutover/cutover/cutover/engine"
)

// styledLine is a line of the view and the style it is shown in.
type styledLine struct {
	kind, text string
}

// outcome is how the run ended (engine.OutcomeNone while it is under
// way), and the VMs and batches it left at the source. It takes the
// daemon's counts when it sent them, else counts them from the state.
func outcome(st engine.Status) (engine.Outcome, int, []int) {
	o, vms, batches := st.Outcome, st.AtSourceVMs, st.AtSourceBatches
	if o == engine.OutcomeNone {
		o = st.State.Outcome()
	}
	if vms == 0 && len(batches) == 0 {
		vms, batches = st.State.AtSource()
	}
	return o, vms, batches
}

func outcomeKind(o engine.Outcome) string {
	switch o {
	case engine.OutcomeAllMoved:
		return kOK
	case engine.OutcomePartial:
		return kWarn
	case engine.OutcomeAborted:
		return kBad
	}
	return kBold
}

// maxListed is how many batches a banner names before it counts the rest.
const maxListed = 5

// outcomeLines are the banner of a run that ended, and the next command;
// none while it is under way.
func outcomeLines(st engine.Status) []styledLine {
	rs := &st.State
	o, vms, batches := outcome(st)
	k := outcomeKind(o)
	switch o {
	case engine.OutcomeAllMoved:
		return []styledLine{{k, fmt.Sprintf("ALL MOVED: every batch committed, %d VMs at %s", st.MovedVMs, site(rs.Target, "target"))}}
	case engine.OutcomePartial:
		return []styledLine{
			{k, fmt.Sprintf("PARTIAL: %d VMs (%s) still at %s", vms, batchList(rs, batches), site(rs.Source, "source"))},
			{k, "next: cutover retry moves them again (readiness check, gates and go/no-go points); why: " + detailsFor(batches)},
		}
	case engine.OutcomeAborted:
		line := "ABORTED"
		if rs.Result != "" {
			line += ": " + rs.Result
		}
		if st.MovedVMs > 0 {
			return []styledLine{{k, fmt.Sprintf("%s · %d VMs still at %s", line, st.MovedVMs, site(rs.Target, "target"))},
				{k, "next: cutover rollback --all takes them back to " + site(rs.Source, "source")}}
		}
		return []styledLine{{k, line + " · every VM at " + site(rs.Source, "source")},
			{k, "next: start it again with cutover run (retry does not apply to an aborted run)"}}
	}
	return nil
}

// batchList names batches: "batch 1 batch-01, batch 3 batch-03", the
// first few of them and a count of the others.
func batchList(rs *engine.RunState, batches []int) string {
	var parts []string
	for _, i := range batches[:min(len(batches), maxListed)] {
		p := fmt.Sprintf("batch %d", i)
		if i >= 0 && i < len(rs.Batches) && rs.Batches[i].Name != "" {
			p += " " + rs.Batches[i].Name
		}
		parts = append(parts, p)
	}
	if n := len(batches) - maxListed; n > 0 {
		parts = append(parts, fmt.Sprintf("+%d more batches", n))
	}
	return strings.Join(parts, ", ")
}

// detailsFor is the command that shows why batches were left at the
// source: "cutover status --batch 3", or "cutover status --batch N
// (N: 1, 3, 5)" for several.
func detailsFor(batches []int) string {
	if len(batches) == 1 {
		return detailsCmd(batches[0])
	}
	ns := make([]string, 0, maxListed+1)
	for _, i := range batches[:min(len(batches), maxListed)] {
		ns = append(ns, fmt.Sprint(i))
	}
	if len(batches) > maxListed {
		ns = append(ns, "…")
	}
	return "cutover status --batch N (N: " + strings.Join(ns, ", ") + ")"
}

// maxDown is how many VMs found down at pre-check the view lists.
const maxDown = 10

// waitLines say what a run that is not moving waits for and the commands
// that answer it: a go/no-go point (the VMs found down at pre-check, at
// "baseline-down"), or a pause.
func waitLines(rs *engine.RunState) []styledLine {
	switch {
	case rs.Confirm == engine.ConfirmBaselineDown:
		return baselineDownLines(rs)
	case rs.Confirm != "" && rs.ConfirmOperators > 1:
		said := "none yet"
		if rs.ConfirmGoAt == rs.Confirm && len(rs.ConfirmGo) > 0 {
			said = "go from " + strings.Join(rs.ConfirmGo, ", ")
		}
		return []styledLine{{kWarn, fmt.Sprintf("waiting for go/no-go at %q from %d different operators (%s): cutover confirm %s",
			rs.Confirm, rs.ConfirmOperators, said, rs.Confirm)}}
	case rs.Confirm != "":
		return []styledLine{{kWarn, fmt.Sprintf("waiting for go/no-go at %q: cutover confirm %s", rs.Confirm, rs.Confirm)}}
	case rs.Phase == engine.PhasePaused && rs.Pause == "not-ready":
		return []styledLine{{kWarn, notReadyLine(rs)}}
	case rs.Phase == engine.PhasePaused:
		return []styledLine{{kWarn, "paused: " + rs.Pause + " (cutover resume continues)"}}
	}
	return nil
}

// baselineDownLines list the VMs found down at pre-check (the first few)
// and the answers to the go/no-go point they stop the run at.
func baselineDownLines(rs *engine.RunState) []styledLine {
	down := rs.BaselineDown
	out := []styledLine{{kWarn, fmt.Sprintf("waiting for go/no-go at %q: %d VMs did not answer at pre-check, before any move:",
		engine.ConfirmBaselineDown, len(down))}}
	for _, vm := range down[:min(len(down), maxDown)] {
		out = append(out, styledLine{kWarn, "  " + vm})
	}
	if n := len(down) - maxDown; n > 0 {
		out = append(out, styledLine{kWarn, fmt.Sprintf("  +%d more (cutover status -o json)", n)})
	}
	return append(out,
		styledLine{kWarn, "go:    cutover confirm " + engine.ConfirmBaselineDown + " (they move with their batches; the gates ignore them)"},
		styledLine{kWarn, "no-go: cutover confirm " + engine.ConfirmBaselineDown + " --no-go (the run stays paused), or cutover rollback --all (ends it)"})
}

// notReadyLine says which batch's VMs do not answer at the target, and
// what resume does.
func notReadyLine(rs *engine.RunState) string {
	for _, x := range rs.Batches {
		if x.Phase == engine.BatchPending && len(failing(x.Verdicts)) > 0 {
			return fmt.Sprintf("paused before batch %d %s: its VMs do not answer at %s; cutover resume checks again (which: %s)",
				x.Index, x.Name, site(rs.Target, "target"), detailsCmd(x.Index))
		}
	}
	return "paused: a batch's VMs do not answer at " + site(rs.Target, "target") + "; cutover resume checks again"
}

// endLine is the run's state line when it ended, for the plain watch:
// its outcome and the VMs moved.
func endLine(st engine.Status) string {
	lines := outcomeLines(st)
	if len(lines) == 0 {
		return string(st.State.Phase)
	}
	return fmt.Sprintf("%s; moved %d/%d VMs", lines[0].text, st.MovedVMs, st.TotalVMs)
}
