package view

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/cutover/cutover/cutover/engine"
)

// runningSuffix is what older daemons append to the name of a gate still
// running; such a verdict is progress like a pending one.
const runningSuffix = " (running)"

// gateName is a verdict's plain gate name, and whether the gate is still
// running (pending): a running gate has not failed, whatever its Pass.
func gateName(v engine.VerdictRecord) (name string, pending bool) {
	if n, ok := strings.CutSuffix(v.Gate, runningSuffix); ok {
		return n, true
	}
	return v.Gate, v.Pending
}

// progressText words a gate still running: "probe round 2 ✓ (1/2 in a
// row)" or "probe round 1 ✗ (0/2)". A verdict without rounds (from an
// older daemon) is "probe running: <its first reason>".
func progressText(v engine.VerdictRecord) string {
	name, _ := gateName(v)
	if v.Round <= 0 {
		if len(v.Reasons) > 0 {
			return name + " running: " + v.Reasons[0]
		}
		return name + " running"
	}
	mark := "✗"
	if v.RoundOK {
		mark = "✓"
	}
	s := fmt.Sprintf("%s round %d %s", name, v.Round, mark)
	switch {
	case v.Need > 0 && v.Streak > 0:
		s += fmt.Sprintf(" (%d/%d in a row)", v.Streak, v.Need)
	case v.Need > 0:
		s += fmt.Sprintf(" (0/%d)", v.Need)
	}
	return s
}

// splitVerdicts parts verdicts into the gates still running and those
// decided.
func splitVerdicts(vs []engine.VerdictRecord) (pending, decided []engine.VerdictRecord) {
	for _, v := range vs {
		if _, p := gateName(v); p {
			pending = append(pending, v)
		} else {
			decided = append(decided, v)
		}
	}
	return pending, decided
}

// current is batch x as the view judges it: while the run moves it again
// (announcing or gating, the run not paused), its decided verdicts are an
// earlier attempt's and are left out; the gates running are kept.
func current(x engine.BatchState, run engine.RunPhase) engine.BatchState {
	if (x.Phase != engine.BatchAnnouncing && x.Phase != engine.BatchGating) ||
		(run != engine.PhaseRunning && run != engine.PhasePrechecking) {
		return x
	}
	x.Verdicts, _ = splitVerdicts(x.Verdicts)
	return x
}

// failing are the decided verdicts that did not pass.
func failing(vs []engine.VerdictRecord) []engine.VerdictRecord {
	var out []engine.VerdictRecord
	for _, v := range vs {
		if _, p := gateName(v); !p && !v.Pass {
			out = append(out, v)
		}
	}
	return out
}

// moved reports whether a batch in phase p got as far as the target: its
// failing verdicts are gate failures, not a readiness check's.
func moved(p engine.BatchPhase) bool { return p != engine.BatchPending && p != engine.BatchHeld }

// gateCell sums up a batch's last gate verdicts in a table cell. A gate
// still running is progress, never a failure; verdicts decided before it
// (an earlier attempt's) are not shown beside it.
func gateCell(x engine.BatchState) (string, string) {
	pending, decided := splitVerdicts(x.Verdicts)
	if len(pending) > 0 {
		texts := make([]string, len(pending))
		for i, v := range pending {
			texts[i] = progressText(v)
		}
		return shorten(strings.Join(texts, "; "), gateW), kBusy
	}
	if len(decided) == 0 {
		if x.Reason != "" && whyText(x, "") == "" {
			return shorten(x.Reason, gateW), kBad
		}
		return "", kDim
	}
	failed := failing(decided)
	if len(failed) == 0 {
		if len(decided) == 1 {
			return "pass (1 gate)", kOK
		}
		return fmt.Sprintf("pass (%d gates)", len(decided)), kOK
	}
	// The why line under the row has the first failure in full.
	parts := make([]string, len(failed))
	for i, v := range failed {
		parts[i] = v.Gate
		if len(v.Failed) > 0 {
			parts[i] += fmt.Sprintf(": %d failing", len(v.Failed))
		}
	}
	if !moved(x.Phase) {
		return shorten(readyPrefix("not ready: ", strings.Join(parts, "; ")), gateW), kWarn
	}
	return shorten("FAIL "+strings.Join(parts, "; "), gateW), kBad
}

// readyGate is the name the engine gives the readiness check when it
// names none.
const readyGate = "ready"

// readyPrefix puts prefix before what the readiness check says, without
// repeating its name: "not ready: 3 failing", not "not ready: ready: …".
func readyPrefix(prefix, s string) string {
	if rest, ok := strings.CutPrefix(s, readyGate+": "); ok {
		return prefix + rest
	}
	if s == readyGate {
		return strings.TrimSuffix(prefix, ": ")
	}
	return prefix + s
}

// whyText says why a batch needs a person's eyes: why it was rolled back
// or held, or which of its gates failed; "" for a batch that does not.
// A list cut short says where the rest is. target names the target site
// ("" when unknown).
func whyText(x engine.BatchState, target string) string {
	pending, decided := splitVerdicts(x.Verdicts)
	failed := failing(decided)
	switch {
	case x.Phase == engine.BatchRolledBack || x.Phase == engine.BatchHeld || x.Phase == engine.BatchRollingBack:
	case len(failed) > 0 && len(pending) == 0 && x.Phase != engine.BatchCommitted:
	default:
		return ""
	}
	if len(failed) == 0 {
		return moreHint(x.Reason, x.Index)
	}
	parts := make([]string, len(failed))
	for i, v := range failed {
		parts[i] = failText(v, x.Index)
	}
	why := strings.Join(parts, "; ")
	if !moved(x.Phase) {
		why = readyPrefix("not ready at "+site(target, "target")+": ", why)
	}
	return why
}

// whyKind is the style of a batch's why line: amber for a batch held (or
// not ready), red for a failure after the move.
func whyKind(x engine.BatchState) string {
	if !moved(x.Phase) {
		return kWarn
	}
	return kBad
}

// failText is a failing verdict with its first failure and where to read
// the others: "probe: vm-0042 10.64.0.52: tcp 80: connection refused (+19
// more: cutover status --batch 3)".
func failText(v engine.VerdictRecord, batch int) string {
	list := v.Failures()
	if len(list) == 0 {
		return v.Gate
	}
	s := v.Gate + ": " + list[0]
	if len(list) > 1 {
		s += fmt.Sprintf(" (+%d more: %s)", len(list)-1, detailsCmd(batch))
	}
	return s
}

// detailsCmd is the command that shows everything about batch (the run,
// for a negative batch).
func detailsCmd(batch int) string {
	if batch < 0 {
		return "cutover status -o json"
	}
	return fmt.Sprintf("cutover status --batch %d", batch)
}

var moreRe = regexp.MustCompile(`\(\+(\d+) more\)`)

// moreHint points a "(+N more)" in the engine's words at where the rest
// can be read: "(+N more: cutover status --batch 3)".
func moreHint(s string, batch int) string {
	return moreRe.ReplaceAllString(s, "(+${1} more: "+detailsCmd(batch)+")")
}

// fit cuts a line to width runes (0: no limit), keeping at its end the
// pointer to the batch's details ("(+19 more: cutover status --batch 3)",
// or one it adds), so that what is cut can be read there.
func fit(line string, width, batch int) string {
	if width <= 0 || utf8.RuneCountInString(line) <= width {
		return line
	}
	tail := " (… " + detailsCmd(batch) + ")"
	if m := moreTailRe.FindString(line); m != "" && strings.HasSuffix(m, detailsCmd(batch)+")") {
		tail = m
	}
	room := width - utf8.RuneCountInString(tail)
	if room < 10 {
		return shorten(line, width)
	}
	head := []rune(strings.TrimSuffix(line, tail))
	return strings.TrimRight(string(head[:min(len(head), room-1)]), " ") + "…" + tail
}

var moreTailRe = regexp.MustCompile(` \(\+\d+ more: [^()]*\)$`)
