package report

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/internal/words"
)

// SVGFile is the name the Markdown report expects the timeline picture
// under, beside it (WriteDir writes it there).
const SVGFile = "timeline.svg"

// Markdown renders the report for a change ticket or a repository.
func (r *Report) Markdown() []byte {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	p("# Cutover report: %s\n\n", mdText(r.Runbook))
	p("**Outcome:** %s\n\n", mdText(r.Banner))
	if h := r.Rehearsal; h != nil {
		p("**Rehearsal:** %s — expected %s; got %s.\n\n", passFail(h.Passed), mdText(h.Expected), mdText(h.Actual))
	}
	r.mdHeader(p)
	r.mdTotals(p)
	r.mdComparison(p)

	if len(r.BaselineDown) > 0 {
		p("\n## VMs down at pre-check\n\n")
		p("Before any move the pre-check found %s down. A VM down at pre-check moves with its batch: neither the readiness check nor the gates hold a batch for it.\n\n", words.Plural(len(r.BaselineDown), "VM"))
		for _, d := range r.BaselineDown {
			p("- %s\n", mdText(d))
		}
	}

	p("\n## Who ran what\n\n| Time (UTC) | Operator | Command |\n|---|---|---|\n")
	for _, c := range r.Commands {
		p("| %s | %s | %s |\n", clock(c.Time), mdCell(c.Operator), mdCommand(c))
	}

	if len(r.Events) > 0 {
		p("\n## Run events\n\n| Time (UTC) | Event |\n|---|---|\n")
		for _, e := range r.Events {
			p("| %s | %s |\n", clock(e.Time), mdCell(e.Text))
		}
	}

	if len(r.Waits) > 0 {
		p("\n## Waits and pauses\n\n| From (UTC) | To (UTC) | Took | Waiting for | Ended by |\n|---|---|---:|---|---|\n")
		for _, wt := range r.Waits {
			to := clock(wt.To)
			if wt.To.IsZero() {
				to = "still waiting"
			}
			p("| %s | %s | %s | %s | %s |\n", clock(wt.From), to, engine.Human(wt.took(r.Until)), mdCell(wt.Why), mdCell(wt.Answer))
		}
	}

	r.mdBatches(p)
	r.mdGateReasons(p)
	r.mdRollbacks(p)

	p("## Timeline\n\n![Batches over time, VMs at the target, waits, rollbacks](%s)\n\n", SVGFile)
	p("| Time (UTC) | VMs at the target |\n|---|---:|\n")
	for _, pt := range r.Moved {
		p("| %s | %d |\n", clock(pt.Time), pt.VMs)
	}

	r.mdDiffs(&b)
	if len(r.Snapshots) > 0 {
		p("\n## Snapshots\n")
		for _, s := range r.Snapshots {
			p("\n### %s\n\n", mdText(s.Name))
			fence(&b, "", s.Text)
		}
	}
	r.mdRehearsal(p)
	return b.Bytes()
}

// mdHeader writes the table of the run's identity: ids, digests, times.
func (r *Report) mdHeader(p func(string, ...any)) {
	p("| | |\n|---|---|\n")
	row := func(k, v string) {
		if v != "" {
			p("| %s | %s |\n", k, v)
		}
	}
	row("Run", code(r.RunID))
	row("Runbook", code(r.Runbook))
	if r.Source != "" && r.Target != "" {
		row("Move", mdCell(r.Source+" → "+r.Target))
	}
	if r.RunbookDigest != "" {
		row("Runbook digest", code(r.RunbookDigest)+" (SHA-256 of the runbook file)")
	}
	if r.InventoryDigest != "" {
		row("Inventory digest", code(r.InventoryDigest)+" (SHA-256 of the inventory file)")
	}
	if r.PlanDigest != "" {
		row("Plan digest", code(r.PlanDigest)+" ("+mdCell(r.planNote())+")")
	}
	row("Journal digest", code(r.Journal.Digest)+" ("+mdCell(r.journalNote())+")")
	row("Started", stamp(r.Started)+" by "+mdCell(r.Operator))
	if !r.Ended.IsZero() {
		row("Ended", fmt.Sprintf("%s (took %s)", stamp(r.Ended), engine.Human(r.Ended.Sub(r.Started))))
	} else {
		row("Last record", stamp(r.Until))
	}
	row("Phase", string(r.Phase))
	row("Result", mdCell(r.Result))
}

// mdTotals writes the counts, naming every batch left at the source.
func (r *Report) mdTotals(p func(string, ...any)) {
	t := r.Totals
	p("\n## Totals\n\n")
	p("- VMs at %s: %d of %d (prefixes: %d of %d)\n", mdText(siteOr(r.Target, "the target")), t.MovedVMs, t.VMs, t.MovedPrefixes, t.Prefixes)
	if len(r.AtSource) > 0 {
		p("- VMs still at %s: %d — %s\n", mdText(siteOr(r.Source, "the source")), t.AtSourceVMs, mdText(r.atSourceList()))
	}
	p("- Batches: %d — %d committed, %d pending", t.Batches, t.Committed, t.Pending)
	if t.Other > 0 {
		p(", %d under way", t.Other)
	}
	p("\n- Rolled back: %s\n", mdText(r.batchesIn(engine.BatchRolledBack)))
	p("- Held (not ready at the target): %s\n", mdText(r.batchesIn(engine.BatchHeld)))
	p("- Rollbacks: %d\n- Retries: %d\n- Daemon restarts: %d\n", t.Rollbacks, t.Retries, t.Restarts)
}

// mdComparison writes the run beside its rehearsal: what differed in
// sentences, then batch by batch.
func (r *Report) mdComparison(p func(string, ...any)) {
	c := r.Comparison
	if c == nil {
		return
	}
	rec := c.Record
	p("\n## Against its rehearsal\n\n")
	p("Compared with the %s", mdText(rec.String()))
	if rec.File != "" {
		p(", rehearsed from %s", code(rec.File))
	}
	p(".\n\n")
	p("- Runbook: %s\n- Inventory: %s\n", digestWords(c.RunbookDigest), digestWords(c.InventoryDigest))
	if h := c.Rehearsal; h != nil {
		t := c.Tonight
		p("- Outcome: %s tonight, %s at the rehearsal\n", outcomeWords(t.Outcome), outcomeWords(h.Outcome))
		p("- Took: %s tonight; %s at the rehearsal\n", t.tookWords(), h.tookWords())
		p("- Batches: %s tonight; %s at the rehearsal\n", t.endedWords(), h.endedWords())
	} else {
		p("- Outcome: %s tonight, %s at the rehearsal\n", outcomeWords(c.Tonight.Outcome), outcomeWords(rec.Outcome))
	}
	if len(c.Faults) > 0 {
		p("- Faults injected at the rehearsal: %s\n", mdText(c.faultsLine()))
	} else {
		p("- Faults injected at the rehearsal: none\n")
	}
	p("\n### What differed\n\n")
	if len(c.Differences) == 0 {
		p("Nothing: every count is the same, and no duration differs beyond noise.\n")
	}
	for _, d := range c.Differences {
		p("- %s\n", mdText(d))
	}
	p("\nCounts differ when they are not equal; %s.\n", durationRule)
	if len(c.Batches) == 0 {
		return
	}
	p("\n| Batch | Tonight | Rehearsal | Gate rounds t/r | Failed t/r | Rollbacks t/r | Note |\n")
	p("|---|---|---|---:|---:|---:|---|\n")
	for _, b := range c.Batches {
		p("| %s | %s | %s | %s | %s | %s | %s |\n", mdCell(b.label()), mdCell(b.Tonight.cell()), mdCell(b.Rehearsal.cell()),
			b.gateCell(), b.failedCell(), b.rollbackCell(), mdCell(b.note()))
	}
}

// mdCommand is a command as typed, with the reason the operator gave.
func mdCommand(c Command) string {
	s := code(commandLine(c))
	if c.Reason != "" {
		s += " — reason: " + mdCell(c.Reason)
	}
	return s
}

// commandLine is the command as the operator typed it, without its reason.
func commandLine(c Command) string {
	return strings.TrimSpace("cutover " + c.Command + " " + c.Args)
}

// mdBatches writes the table of batches and their earlier tries.
func (r *Report) mdBatches(p func(string, ...any)) {
	p("\n## Batches\n\n")
	p("Times are UTC; announce is the BGP and nft change, converge the wait until the peers held the routes, gate the health gates, rollback the change back to the source. A held batch never moved: the readiness check before the move found VMs of it not answering at the target.\n\n")
	p("| # | Batch | VMs | Phase | Started | Announce | Converge | Gate | Decision | Rollback | Total | Gates |\n")
	p("|---:|---|---:|---|---|---:|---:|---:|---|---:|---:|---|\n")
	for _, x := range r.Batches {
		p("| %d | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			x.Index, mdCell(x.Name), x.VMs, x.Phase, clock(x.Started),
			durOr(x.ApplyTook, !x.Announced.IsZero()), durOr(x.ConvergeTook, !x.Converged.IsZero()),
			durOr(x.GateTook, x.gated()), mdCell(x.decisionText()), durOr(x.RollbackTook, !x.RolledBack.IsZero()),
			durOr(x.total(), x.total() > 0), mdCell(x.gateSummary()))
	}
	var tries []string
	for _, x := range r.Batches {
		for k, t := range x.Retries {
			tries = append(tries, fmt.Sprintf("- %s, try %d: %s; retry by %s at %s", mdText(x.ref()), k+1, mdText(t.outcome()), mdText(t.RetryBy), clock(t.RetryAt)))
		}
	}
	if len(tries) > 0 {
		p("\n### Tries before a retry\n\n%s\n", strings.Join(tries, "\n"))
	}
}

// decisionText is the decision with the retries before it.
func (b *Batch) decisionText() string {
	s := b.decision()
	if n := len(b.Retries); n > 0 {
		s = strings.TrimSpace(s + " (after " + words.Plural(n, "retry") + ")")
	}
	return s
}

// outcome says how an earlier try ended.
func (t Retried) outcome() string {
	switch t.Phase {
	case engine.BatchRolledBack:
		s := "rolled back " + clock(t.RolledBack)
		if t.RollbackBy != "" {
			s += " by " + t.RollbackBy
		}
		if t.RollbackTook > 0 {
			s += " in " + engine.Human(t.RollbackTook)
		}
		if t.Reason != "" {
			s += " (" + t.Reason + ")"
		}
		return s
	case engine.BatchHeld:
		return "held " + clock(t.Decided) + " (" + t.Reason + ")"
	}
	return string(t.Phase)
}

// mdGateReasons writes every failed gate evaluation, each failing target
// in full.
func (r *Report) mdGateReasons(p func(string, ...any)) {
	p("\n## Gate reasons\n\n")
	failed := false
	for _, x := range r.Batches {
		for i, g := range x.failedGates() {
			failed = true
			p("### %s\n\n", mdText(gateHeading(x, i, g)))
			for _, v := range g.Verdicts {
				list := v.Failures()
				switch {
				case v.Pass:
					p("- %s: pass\n", mdText(v.Gate))
				case len(list) == 0:
					p("- %s: FAIL\n", mdText(v.Gate))
				}
				if v.Pass {
					continue
				}
				for _, reason := range list {
					p("- %s: FAIL — %s\n", mdText(v.Gate), mdText(reason))
				}
			}
			p("\n")
		}
	}
	if !failed {
		p("Every gate evaluation passed.\n\n")
	}
}

// gateHeading heads the i-th failed evaluation g of batch b.
func gateHeading(b Batch, i int, g GateRun) string {
	if g.Ready {
		return fmt.Sprintf("Batch %d %s — not ready at the target at %s (readiness check, took %s)", b.Index, b.Name, clock(g.Time), engine.Human(g.Took))
	}
	return fmt.Sprintf("Batch %d %s — failed at %s (evaluation %d, took %s)", b.Index, b.Name, clock(g.Time), i+1, engine.Human(g.Took))
}

// mdRollbacks writes the rollbacks: who, why, how long.
func (r *Report) mdRollbacks(p func(string, ...any)) {
	p("## Rollbacks\n\n")
	if len(r.Rollbacks) == 0 {
		p("None.\n\n")
		return
	}
	p("| Time (UTC) | Batches | By | Reason | Took |\n|---|---|---|---|---:|\n")
	for _, rb := range r.Rollbacks {
		by := mdCell(rb.by())
		if rb.Command != "" {
			by += " (" + code("cutover "+rb.Command) + ")"
		}
		p("| %s | %s | %s | %s | %s |\n", clock(rb.Time), mdCell(batchList(rb)), by, mdCell(rb.reason()), rb.took())
	}
	p("\n")
}

// by is who rolled back, in words.
func (rb Rollback) by() string {
	switch rb.By {
	case "policy":
		return "policy"
	case "recover":
		return "recover (daemon restart)"
	}
	return rb.By
}

// reason is why, or that the operator gave none.
func (rb Rollback) reason() string {
	if rb.Reason == "" && rb.Command != "" {
		return "no reason given"
	}
	return rb.Reason
}

// took is the rollback's duration, or that it has not completed.
func (rb Rollback) took() string {
	if rb.Took > 0 {
		return engine.Human(rb.Took)
	}
	return "not completed"
}

// mdDiffs writes what changed between the snapshots.
func (r *Report) mdDiffs(b *bytes.Buffer) {
	if len(r.Diffs) == 0 {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("\n## What changed\n")
	for _, d := range r.Diffs {
		p("\n### %s\n\n", mdText(d.Name+": "+d.summary()))
		if d.Kind == DiffLines {
			var text strings.Builder
			for _, l := range d.Removed {
				text.WriteString("- " + l + "\n")
			}
			for _, l := range d.Added {
				text.WriteString("+ " + l + "\n")
			}
			fence(b, "diff", text.String())
			continue
		}
		for _, note := range d.notes() {
			p("%s\n\n", mdText(note))
		}
		if len(d.Sets) == 0 {
			continue
		}
		p("| Set | Added | Removed | Kept |\n|---|---:|---:|---:|\n")
		for _, s := range d.Sets {
			name := mdCell(s.Set)
			if s.Note != "" {
				name += " (" + mdCell(s.Note) + ")"
			}
			p("| %s | %d | %d | %d |\n", name, len(s.Added), len(s.Removed), s.Kept)
		}
		if text := d.elementLines(); text != "" {
			p("\n")
			fence(b, "diff", text)
		}
	}
}

// summary sums a diff up in its heading.
func (d *Diff) summary() string {
	if d.Kind == DiffLines {
		return fmt.Sprintf("%s added, %d removed", words.Plural(len(d.Added), "line"), len(d.Removed))
	}
	a, rm, k := d.counts()
	return fmt.Sprintf("before → after, %s added, %d removed, %d kept", words.Plural(a, "element"), rm, k)
}

// notes say what a table diff's sides held when they held no table, and
// whether a capture was cut short.
func (d *Diff) notes() []string {
	var out []string
	if d.Before != "" {
		out = append(out, "Before: "+d.Before+".")
	}
	if d.After != "" {
		out = append(out, "After: "+d.After+".")
	}
	if d.Cut {
		out = append(out, "A snapshot was cut short: only the elements it holds are compared.")
	}
	return out
}

// elementLines are the elements added and removed, set by set, as diff
// lines.
func (d *Diff) elementLines() string {
	var b strings.Builder
	for _, s := range d.Sets {
		if len(s.Added)+len(s.Removed) == 0 {
			continue
		}
		b.WriteString("@@ " + s.Set + " @@\n")
		for _, e := range s.Removed {
			b.WriteString("- " + e + "\n")
		}
		for _, e := range s.Added {
			b.WriteString("+ " + e + "\n")
		}
	}
	return b.String()
}

// mdRehearsal writes the rehearsal's result; what it does not know (how
// long it took, when a fault was injected) is left out.
func (r *Report) mdRehearsal(p func(string, ...any)) {
	h := r.Rehearsal
	if h == nil {
		return
	}
	p("\n## Rehearsal\n\n")
	p("- Result: **%s**\n- Expected: %s\n- Actual: %s\n", passFail(h.Passed), mdText(h.Expected), mdText(h.Actual))
	if h.Took > 0 {
		p("- Took: %s\n", engine.Human(h.Took))
	}
	if len(h.Faults) == 0 {
		return
	}
	if h.faultTimes() {
		p("\n| Fault | When | At (UTC) | Result |\n|---|---|---|---|\n")
	} else {
		p("\n| Fault | When | Result |\n|---|---|---|\n")
	}
	for _, f := range h.Faults {
		if h.faultTimes() {
			p("| %s | %s | %s | %s |\n", code(f.Fault), mdCell(f.When), faultAt(f), mdCell(f.Result))
		} else {
			p("| %s | %s | %s |\n", code(f.Fault), mdCell(f.When), mdCell(f.Result))
		}
	}
}

// faultTimes reports whether any fault has the time it was injected.
func (h *Rehearsal) faultTimes() bool {
	for _, f := range h.Faults {
		if !f.At.IsZero() {
			return true
		}
	}
	return false
}

// faultAt is when the fault was injected, or that it was not recorded.
func faultAt(f Fault) string {
	if f.At.IsZero() {
		return "not recorded"
	}
	return clock(f.At)
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

// durOr formats d when the phase it measures was reached, else nothing.
func durOr(d time.Duration, reached bool) string {
	if !reached {
		return ""
	}
	return engine.Human(d)
}

func batchList(rb Rollback) string {
	parts := make([]string, len(rb.Batches))
	for i, b := range rb.Batches {
		parts[i] = fmt.Sprintf("%d %s", b, rb.Names[i])
	}
	return strings.Join(parts, ", ")
}

// mdText escapes the characters Markdown would read as markup in running
// text, and folds newlines.
func mdText(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	r := strings.NewReplacer(`\`, `\\`, "`", "\\`", "*", `\*`, "_", `\_`, "<", "&lt;", ">", "&gt;", "[", `\[`, "]", `\]`, "#", `\#`, "|", `\|`)
	return r.Replace(s)
}

// mdCell is mdText for a table cell.
func mdCell(s string) string { return mdText(s) }

// code puts s in an inline code span (empty stays empty).
func code(s string) string {
	if s == "" {
		return ""
	}
	s = strings.ReplaceAll(strings.Join(strings.Fields(s), " "), "|", `\|`)
	ticks := "`"
	for strings.Contains(s, ticks) {
		ticks += "`"
	}
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		s = " " + s + " "
	}
	return ticks + s + ticks
}

// fence writes text as a fenced code block whose fence no line of text
// can close.
func fence(b *bytes.Buffer, lang, text string) {
	f := "```"
	for strings.Contains(text, f) {
		f += "`"
	}
	text = strings.TrimRight(text, "\n")
	fmt.Fprintf(b, "%s%s\n%s\n%s\n", f, lang, text, f)
}
