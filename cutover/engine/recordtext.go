package engine

import (
	"fmt"
	"strconv"
	"strings"
)

// EventText is the line people read about a journal record of type typ:
// the engine's live event when it writes the record (status --watch, the
// daemon's log) and the report's run event when it reads it back, so the
// two say the same. st is the state with the record folded in. It is ""
// for a record that is not worth a line of its own: an intent, a batch's
// phase, gate verdicts, an operator's command (the engine tells about
// those in its own words, or the report in its tables), or a phase record
// that resumes a run.
func EventText(typ string, rec Record, st *RunState) string {
	switch r := rec.(type) {
	case RunStartRecord:
		if r.Rehearsal != "" {
			return fmt.Sprintf("run %s started by %s: %d batches; rests on the %s", r.Runbook, r.Operator, len(r.Batches), r.Rehearsal)
		}
		return fmt.Sprintf("run %s started by %s: %d batches", r.Runbook, r.Operator, len(r.Batches))
	case BaselineRecord:
		if len(r.Down) > 0 {
			return fmt.Sprintf("pre-check: baseline %d of %d probed VMs healthy; %d down before any move: %s",
				len(r.Healthy), r.Probed, len(r.Down), strings.Join(firstN(r.Down, 5), "; "))
		}
		return fmt.Sprintf("pre-check passed: baseline %d of %d probed VMs healthy", len(r.Healthy), r.Probed)
	case RetryRecord:
		names := make([]string, len(r.Batches))
		for k, i := range r.Batches {
			names[k] = fmt.Sprint(i)
			if b := st.batch(i); b != nil {
				names[k] += " " + b.Name
			}
		}
		return fmt.Sprintf("retry by %s: batch %s back to pending, through the readiness check, gates and go/no-go points again",
			r.Operator, strings.Join(names, ", "))
	case PhaseRecord:
		return phaseText(r, st)
	case ChangeRecord:
		if typ != RecApplied {
			return ""
		}
		switch r.Op {
		case "baseline":
			return fmt.Sprintf("baseline routes and nft state applied before the first batch in %s (%d routes)", Human(r.Took), r.Routes)
		case "recover":
			vms, _ := st.Moved()
			return fmt.Sprintf("daemon restart: state re-applied from the journal in %s (%d batches, %d VMs at the target)", Human(r.Took), len(r.Moved), vms)
		case "adopt":
			vms, _ := st.Moved()
			return fmt.Sprintf("adopted what the nft table held: re-applied in %s (%d batches, %d VMs at the target)", Human(r.Took), len(r.Moved), vms)
		}
	case ConfirmRecord:
		if r.Go && r.Pending > 0 {
			return answerText(r.Point, r.Go, r.Operator) + ": " + pendingText(r.Pending)
		}
		return answerText(r.Point, r.Go, r.Operator)
	}
	return ""
}

// phaseText is the line of a change of the run's phase.
func phaseText(r PhaseRecord, st *RunState) string {
	switch r.Phase {
	case PhaseDone:
		vms, _ := st.Moved()
		line := fmt.Sprintf("run finished: %s; %d VMs at the target", r.Result, vms)
		if left, batches := st.AtSource(); left > 0 {
			line += fmt.Sprintf(", %d VMs (batch %s) still at the source%s: cutover retry moves them again", left, joinInts(batches, ", "), siteSuffix(st.Source))
		}
		return line
	case PhaseAborted:
		if !anyBatchMoved(st) {
			return "run aborted: " + r.Result + "; nothing was changed"
		}
		return "run aborted: " + r.Result
	case PhasePaused:
	default:
		return ""
	}
	switch {
	case r.Pause == "operator":
		return "paused by " + r.Operator
	case r.Pause == "interrupted":
		return "paused: interrupted by a daemon restart"
	case r.Pause == "confirm" && r.Operators > 1:
		return fmt.Sprintf("waiting for go/no-go at %q (%d different operators)", r.Confirm, r.Operators)
	case r.Pause == "confirm":
		return fmt.Sprintf("waiting for go/no-go at %q", r.Confirm)
	case r.Pause == "no-go":
		return answerText(r.Confirm, false, r.Operator)
	case r.Pause == "step":
		return "paused after one step"
	case r.Pause == "not-ready":
		return "paused: a batch's VMs do not answer at the target: resume checks again"
	case r.Pause == "gate-failed":
		if b := underWay(st); b != nil {
			return fmt.Sprintf("paused by the failure policy after batch %d %s failed its gates: resume re-runs them, rollback --batch %d takes it back",
				b.Index, b.Name, b.Index)
		}
		return "paused by the failure policy after a failed gate"
	case strings.HasPrefix(r.Pause, "journal unusable: "):
		return "paused: the journal cannot follow the run (" + strings.TrimPrefix(r.Pause, "journal unusable: ") +
			"): no step forward until it can; rollback still works"
	case strings.HasPrefix(r.Pause, "window: "):
		return "paused: change window closed: " + strings.TrimPrefix(r.Pause, "window: ")
	case r.Operator != "":
		return "paused: " + r.Pause + " by " + r.Operator
	}
	return "paused: " + r.Pause
}

// joinInts is list joined by sep: "1, 3, 4".
func joinInts(list []int, sep string) string {
	s := make([]string, len(list))
	for k, i := range list {
		s[k] = strconv.Itoa(i)
	}
	return strings.Join(s, sep)
}

// siteSuffix is " (skm1)" for a named site, "" otherwise.
func siteSuffix(site string) string {
	if site == "" {
		return ""
	}
	return " (" + site + ")"
}

// answerText is the line of an answer to a go/no-go point.
func answerText(point string, goAhead bool, operator string) string {
	if goAhead {
		return fmt.Sprintf("go at %q by %s", point, operator)
	}
	return fmt.Sprintf("no-go at %q by %s", point, operator)
}

// anyBatchMoved reports whether the run has started or rolled back any of
// its batches.
func anyBatchMoved(st *RunState) bool {
	for _, b := range st.Batches {
		if !b.Started.IsZero() || !b.RolledBack.IsZero() {
			return true
		}
	}
	return false
}

// underWay is the batch being announced or gated, if any.
func underWay(st *RunState) *BatchState {
	for i, b := range st.Batches {
		if b.Phase == BatchAnnouncing || b.Phase == BatchGating {
			return &st.Batches[i]
		}
	}
	return nil
}

// eventOfLocked tells people about a record the engine has just written
// (or failed to write) with the record's EventText, the words the report
// uses for it. The caller holds e.mu.
func (e *Engine) eventOfLocked(batch int, op, typ string, rec Record) {
	if text := EventText(typ, rec, &e.st); text != "" {
		e.eventLocked(batch, op, "%s", text)
	}
}
