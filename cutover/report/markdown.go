package report

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/cutover/cutover/cutover/engine"
)

// SVGFile is the name the Markdown report expects the timeline picture
// under, beside it (WriteDir writes it there).
const SVGFile = "timeline.svg"

// Markdown renders the report for a change ticket or a repository.
func (r *Report) Markdown() []byte {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	p("# Cutover report: %s\n\n", mdText(r.Runbook))
	p("**Outcome:** %s\n\n", mdText(r.Outcome))
	if h := r.Rehearsal; h != nil {
		p("**Rehearsal:** %s — expected %s; got %s.\n\n", passFail(h.Passed), mdText(h.Expected), mdText(h.Actual))
	}
	p("| | |\n|---|---|\n")
	row := func(k, v string) {
		if v != "" {
			p("| %s | %s |\n", k, v)
		}
	}
	row("Run", code(r.RunID))
	row("Runbook", code(r.Runbook))
	row("Runbook digest", code(r.RunbookDigest))
	row("Inventory digest", code(r.InventoryDigest))
	row("Run digest (journal)", code(r.RunDigest))
	row("Started", stamp(r.Started)+" by "+mdCell(r.Operator))
	if !r.Ended.IsZero() {
		row("Ended", fmt.Sprintf("%s (took %s)", stamp(r.Ended), engine.Human(r.Ended.Sub(r.Started))))
	} else {
		row("Last record", stamp(r.Until))
	}
	row("Phase", string(r.Phase))
	row("Result", mdCell(r.Result))

	t := r.Totals
	p("\n## Totals\n\n")
	p("- VMs at the target: %d of %d (prefixes: %d of %d)\n", t.MovedVMs, t.VMs, t.MovedPrefixes, t.Prefixes)
	p("- Batches: %d — %d committed, %d rolled back, %d pending", t.Batches, t.Committed, t.RolledBack, t.Pending)
	if t.Other > 0 {
		p(", %d under way", t.Other)
	}
	p("\n- Rollbacks: %d\n- Daemon restarts: %d\n", t.Rollbacks, t.Restarts)

	p("\n## Who ran what\n\n| Time (UTC) | Operator | Command |\n|---|---|---|\n")
	for _, c := range r.Commands {
		p("| %s | %s | %s |\n", clock(c.Time), mdCell(c.Operator), code(strings.TrimSpace("cutover "+c.Command+" "+c.Args)))
	}

	if len(r.Events) > 0 {
		p("\n## Run events\n\n| Time (UTC) | Event |\n|---|---|\n")
		for _, e := range r.Events {
			p("| %s | %s |\n", clock(e.Time), mdCell(e.Text))
		}
	}

	p("\n## Batches\n\n")
	p("Times are UTC; announce is the BGP and nft change, converge the wait until the peers held the routes, gate the health gates.\n\n")
	p("| # | Batch | VMs | Phase | Started | Announce | Converge | Gate | Decision | Rollback | Total | Gates |\n")
	p("|---:|---|---:|---|---|---:|---:|---:|---|---:|---:|---|\n")
	for _, x := range r.Batches {
		p("| %d | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			x.Index, mdCell(x.Name), x.VMs, x.Phase, clock(x.Started),
			durOr(x.ApplyTook, !x.Announced.IsZero()), durOr(x.ConvergeTook, !x.Converged.IsZero()),
			durOr(x.GateTook, len(x.Gates) > 0), x.decision(), durOr(x.RollbackTook, !x.RolledBack.IsZero()),
			durOr(x.total(), x.total() > 0), mdCell(x.gateSummary()))
	}

	p("\n## Gate reasons\n\n")
	failed := false
	for _, x := range r.Batches {
		for i, g := range x.failedGates() {
			failed = true
			p("### Batch %d %s — failed at %s (evaluation %d, took %s)\n\n", x.Index, mdText(x.Name), clock(g.Time), i+1, engine.Human(g.Took))
			for _, v := range g.Verdicts {
				if v.Pass {
					p("- %s: pass\n", mdText(v.Gate))
					continue
				}
				if len(v.Reasons) == 0 {
					p("- %s: FAIL\n", mdText(v.Gate))
				}
				for _, reason := range v.Reasons {
					p("- %s: FAIL — %s\n", mdText(v.Gate), mdText(reason))
				}
			}
			p("\n")
		}
	}
	if !failed {
		p("Every gate evaluation passed.\n\n")
	}

	p("## Rollbacks\n\n")
	if len(r.Rollbacks) == 0 {
		p("None.\n\n")
	} else {
		p("| Time (UTC) | Batches | By | Reason | Took |\n|---|---|---|---|---:|\n")
		for _, rb := range r.Rollbacks {
			took := "not completed"
			if rb.Took > 0 {
				took = engine.Human(rb.Took)
			}
			p("| %s | %s | %s | %s | %s |\n", clock(rb.Time), mdCell(batchList(rb)), mdCell(rb.By), mdCell(rb.Reason), took)
		}
		p("\n")
	}

	p("## Timeline\n\n![Batches over time, VMs at the target, rollbacks](%s)\n\n", SVGFile)
	p("| Time (UTC) | VMs at the target |\n|---|---:|\n")
	for _, pt := range r.Moved {
		p("| %s | %d |\n", clock(pt.Time), pt.VMs)
	}

	if len(r.Diffs) > 0 {
		p("\n## What changed\n")
		for _, d := range r.Diffs {
			p("\n### %s: %d lines added, %d removed\n\n", mdText(d.Name), len(d.Added), len(d.Removed))
			var text strings.Builder
			for _, l := range d.Removed {
				text.WriteString("- " + l + "\n")
			}
			for _, l := range d.Added {
				text.WriteString("+ " + l + "\n")
			}
			fence(&b, "diff", text.String())
		}
	}
	if len(r.Snapshots) > 0 {
		p("\n## Snapshots\n")
		for _, s := range r.Snapshots {
			p("\n### %s\n\n", mdText(s.Name))
			fence(&b, "", s.Text)
		}
	}
	if h := r.Rehearsal; h != nil {
		p("\n## Rehearsal\n\n")
		p("- Result: **%s**\n- Expected: %s\n- Actual: %s\n- Took: %s\n", passFail(h.Passed), mdText(h.Expected), mdText(h.Actual), engine.Human(h.Took))
		if len(h.Faults) > 0 {
			p("\n| Fault | When | At (UTC) | Result |\n|---|---|---|---|\n")
			for _, f := range h.Faults {
				p("| %s | %s | %s | %s |\n", code(f.Fault), mdCell(f.When), clock(f.At), mdCell(f.Result))
			}
		}
	}
	return b.Bytes()
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
