package report

import (
	"bytes"
	"fmt"
	"html/template"
	"os"
	"path/filepath"
	"time"

	"github.com/cutover/cutover/cutover/engine"
)

// HTML renders the report as one self-contained page: inline CSS and SVG,
// no scripts and no external references, so that it opens from a USB
// stick on a machine without network.
func (r *Report) HTML() []byte {
	var svg bytes.Buffer
	r.writeSVG(&svg, false)
	var b bytes.Buffer
	// The template is fixed and the data is a Report: an error here is a
	// bug in this package.
	if err := page.Execute(&b, struct {
		*Report
		// The picture is our own markup with every text escaped.
		Timeline template.HTML
	}{r, template.HTML(svg.String())}); err != nil {
		panic(fmt.Sprintf("report: render html: %v", err))
	}
	return b.Bytes()
}

// WriteDir writes report.md, report.html, timeline.svg and report.json
// into dir, creating it.
func (r *Report) WriteDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	js, err := r.JSON()
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	for name, data := range map[string][]byte{
		"report.md": r.Markdown(), "report.html": r.HTML(), SVGFile: r.SVG(), "report.json": js,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	}
	return nil
}

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"clock":       clock,
	"stamp":       stamp,
	"dur":         engine.Human,
	"passFail":    passFail,
	"durOr":       durOr,
	"since":       func(a, b time.Time) time.Duration { return b.Sub(a) },
	"gates":       func(b Batch) string { return b.gateSummary() },
	"decision":    func(b Batch) string { return b.decisionText() },
	"total":       func(b Batch) time.Duration { return b.total() },
	"failed":      func(b Batch) []GateRun { return b.failedGates() },
	"gated":       func(b Batch) bool { return b.gated() },
	"heading":     gateHeading,
	"failures":    engine.VerdictRecord.Failures,
	"notZero":     func(t time.Time) bool { return !t.IsZero() },
	"list":        batchList,
	"cmdline":     commandLine,
	"site":        siteOr,
	"in":          func(r *Report, p engine.BatchPhase) string { return r.batchesIn(p) },
	"left":        func(r *Report) string { return r.atSourceList() },
	"outcome":     func(t Retried) string { return t.outcome() },
	"waitTook":    func(wt Wait, until time.Time) time.Duration { return wt.took(until) },
	"planNote":    func(r *Report) string { return r.planNote() },
	"journalNote": func(r *Report) string { return r.journalNote() },
	"rbBy":        func(rb Rollback) string { return rb.by() },
	"rbReason":    func(rb Rollback) string { return rb.reason() },
	"rbTook":      func(rb Rollback) string { return rb.took() },
	"diffSummary": func(d Diff) string { return d.summary() },
	"diffNotes":   func(d Diff) []string { return d.notes() },
	"faultTimes":  func(h *Rehearsal) bool { return h.faultTimes() },
	"phaseClass": func(p engine.BatchPhase) string {
		switch p {
		case engine.BatchCommitted:
			return "ok"
		case engine.BatchRolledBack, engine.BatchRollingBack:
			return "bad"
		case engine.BatchHeld:
			return "warn"
		case engine.BatchPending:
			return "idle"
		}
		return "busy"
	},
	"runClass": func(p engine.RunPhase) string {
		switch p {
		case engine.PhaseDone:
			return "ok"
		case engine.PhaseAborted:
			return "bad"
		}
		return "busy"
	},
	"inc": func(i int) int { return i + 1 },
	// The comparison with the rehearsal (cutover report --compare).
	"recordLine":   func(rr RehearsalRecord) string { return rr.String() },
	"digestWords":  digestWords,
	"outcomeWords": outcomeWords,
	"tookWords":    func(s RunSide) string { return s.tookWords() },
	"endedWords":   func(s RunSide) string { return s.endedWords() },
	"faultsLine":   func(c *Comparison) string { return c.faultsLine() },
	"durationRule": func() string { return durationRule },
	"cmpLabel":     func(b BatchCompared) string { return b.label() },
	"cmpCell":      func(s *BatchSide) string { return s.cell() },
	"cmpGates":     func(b BatchCompared) string { return b.gateCell() },
	"cmpFailed":    func(b BatchCompared) string { return b.failedCell() },
	"cmpRollbacks": func(b BatchCompared) string { return b.rollbackCell() },
	"cmpNote":      func(b BatchCompared) string { return b.note() },
}).Parse(pageTemplate))

const pageTemplate = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Cutover report: {{.Runbook}} ({{.RunID}})</title>
<style>
:root { --ok: #2f7d32; --bad: #c62828; --warn: #a05f00; --busy: #1f5f99; --idle: #6c757d; --line: #dee2e6; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #212529; background: #f4f5f7; }
main { max-width: 1040px; margin: 0 auto; padding: 24px; background: #fff; }
h1 { margin: 0 0 4px; font-size: 24px; }
h2 { margin: 28px 0 10px; font-size: 18px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { margin: 16px 0 6px; font-size: 15px; }
.sub { margin: 0; color: var(--idle); }
.outcome { margin: 14px 0 0; padding: 10px 14px; border-radius: 6px; font-weight: 600; border-left: 6px solid var(--busy); background: #e8f1fa; }
.outcome.ok { border-color: var(--ok); background: #e8f5e9; }
.outcome.warn { border-color: #e0a100; background: #fff8e1; }
.outcome.bad { border-color: var(--bad); background: #ffebee; }
table { border-collapse: collapse; width: 100%; margin: 6px 0; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #f1f3f5; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.kv th { width: 200px; background: none; }
code, pre { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; font-size: 12.5px; }
code.digest { word-break: break-all; }
.note { color: var(--idle); font-size: 12.5px; }
pre { background: #f8f9fa; border: 1px solid var(--line); padding: 8px; overflow-x: auto; white-space: pre; }
.tiles { display: flex; flex-wrap: wrap; gap: 10px; }
.tile { flex: 1 1 130px; border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; }
.tile b { display: block; font-size: 22px; }
.tile span { color: var(--idle); }
.tile small { display: block; }
.ok { color: var(--ok); }
.bad { color: var(--bad); }
.warn { color: var(--warn); }
.busy { color: var(--busy); }
.idle { color: var(--idle); }
.outcome.ok, .outcome.warn, .outcome.bad, .outcome.busy { color: inherit; }
.pill { display: inline-block; padding: 0 6px; border-radius: 9px; font-size: 12px; font-weight: 600; border: 1px solid currentColor; }
.timeline { width: 100%; height: auto; border: 1px solid var(--line); }
.add { color: var(--ok); }
.del { color: var(--bad); }
ul.reasons { margin: 4px 0 10px; }
footer { margin-top: 32px; color: var(--idle); font-size: 12px; }
@media print { body { background: #fff; } main { padding: 0; } details { display: block; } }
</style>
</head>
<body>
<main>
<header>
<h1>Cutover report</h1>
<p class="sub">{{.Runbook}} · run {{.RunID}}</p>
<p class="outcome {{.Tone}}" id="outcome">{{.Banner}}</p>
{{- with .Rehearsal}}
<p class="outcome {{if .Passed}}ok{{else}}bad{{end}}" id="rehearsal">Rehearsal {{passFail .Passed}}: expected {{.Expected}}; got {{.Actual}}.</p>
{{- end}}
</header>

<section id="run">
<h2>Run</h2>
<table class="kv">
<tr><th>Run</th><td><code>{{.RunID}}</code></td></tr>
<tr><th>Runbook</th><td><code>{{.Runbook}}</code></td></tr>
{{- if and .Source .Target}}
<tr><th>Move</th><td>{{.Source}} → {{.Target}}</td></tr>
{{- end}}
{{- if .RunbookDigest}}
<tr id="runbook-digest"><th>Runbook digest</th><td><code class="digest">{{.RunbookDigest}}</code> <span class="note">(SHA-256 of the runbook file)</span></td></tr>
{{- end}}
{{- if .InventoryDigest}}
<tr id="inventory-digest"><th>Inventory digest</th><td><code class="digest">{{.InventoryDigest}}</code> <span class="note">(SHA-256 of the inventory file)</span></td></tr>
{{- end}}
{{- if .PlanDigest}}
<tr id="plan-digest"><th>Plan digest</th><td><code class="digest">{{.PlanDigest}}</code> <span class="note{{if eq .DigestCheck "differ"}} bad{{end}}">({{planNote .Report}})</span></td></tr>
{{- end}}
<tr id="journal-digest"><th>Journal digest</th><td><code class="digest">{{.Journal.Digest}}</code> <span class="note">({{journalNote .Report}})</span></td></tr>
<tr><th>Started</th><td>{{stamp .Started}} by <b>{{.Operator}}</b></td></tr>
{{- if notZero .Ended}}
<tr><th>Ended</th><td>{{stamp .Ended}} (took {{dur (since .Started .Ended)}})</td></tr>
{{- else}}
<tr><th>Last record</th><td>{{stamp .Until}}</td></tr>
{{- end}}
<tr><th>Phase</th><td><span class="pill {{runClass .Phase}}">{{.Phase}}</span></td></tr>
{{- if .Result}}
<tr><th>Result</th><td>{{.Result}}</td></tr>
{{- end}}
</table>
</section>

<section id="totals">
<h2>Totals</h2>
<div class="tiles">
<div class="tile"><b>{{.Totals.MovedVMs}} / {{.Totals.VMs}}</b><span>VMs at {{site .Target "the target"}}</span></div>
<div class="tile"><b class="{{if .AtSource}}warn{{else}}idle{{end}}">{{.Totals.AtSourceVMs}}</b><span>VMs left at {{site .Source "the source"}}</span>{{if .AtSource}}<small>{{left .Report}}</small>{{end}}</div>
<div class="tile"><b class="ok">{{.Totals.Committed}}</b><span>batches committed</span></div>
<div class="tile" id="rolled-back"><b class="{{if .Totals.RolledBack}}bad{{else}}idle{{end}}">{{.Totals.RolledBack}}</b><span>rolled back</span><small>{{in .Report "rolled-back"}}</small></div>
<div class="tile" id="held"><b class="{{if .Totals.Held}}warn{{else}}idle{{end}}">{{.Totals.Held}}</b><span>held (not ready)</span><small>{{in .Report "held"}}</small></div>
<div class="tile"><b class="idle">{{.Totals.Pending}}</b><span>batches pending</span></div>
<div class="tile"><b>{{.Totals.Rollbacks}}</b><span>rollbacks</span></div>
<div class="tile"><b>{{.Totals.Retries}}</b><span>retries</span></div>
<div class="tile"><b>{{.Totals.Restarts}}</b><span>daemon restarts</span></div>
</div>
</section>

{{- with .Comparison}}
<section id="comparison">
<h2>Against its rehearsal</h2>
<p>Compared with the {{recordLine .Record}}{{if .Record.File}}, rehearsed from <code>{{.Record.File}}</code>{{end}}.</p>
<table class="kv">
<tr><th>Runbook</th><td{{if eq .RunbookDigest "differ"}} class="bad"{{end}}>{{digestWords .RunbookDigest}}</td></tr>
<tr><th>Inventory</th><td{{if eq .InventoryDigest "differ"}} class="bad"{{end}}>{{digestWords .InventoryDigest}}</td></tr>
{{- if .Rehearsal}}
<tr><th>Outcome</th><td>{{outcomeWords .Tonight.Outcome}} tonight, {{outcomeWords .Rehearsal.Outcome}} at the rehearsal</td></tr>
<tr><th>Took</th><td>{{tookWords .Tonight}} tonight; {{tookWords .Rehearsal}} at the rehearsal</td></tr>
<tr><th>Batches</th><td>{{endedWords .Tonight}} tonight; {{endedWords .Rehearsal}} at the rehearsal</td></tr>
{{- else}}
<tr><th>Outcome</th><td>{{outcomeWords .Tonight.Outcome}} tonight, {{outcomeWords .Record.Outcome}} at the rehearsal</td></tr>
{{- end}}
<tr><th>Faults injected at the rehearsal</th><td>{{with faultsLine .}}{{.}}{{else}}none{{end}}</td></tr>
</table>
<h3>What differed</h3>
{{- if .Differences}}
<ul id="differences">
{{- range .Differences}}
<li>{{.}}</li>
{{- end}}
</ul>
{{- else}}
<p>Nothing: every count is the same, and no duration differs beyond noise.</p>
{{- end}}
<p class="note">Counts differ when they are not equal; {{durationRule}}.</p>
{{- if .Batches}}
<table>
<tr><th>Batch</th><th>Tonight</th><th>Rehearsal</th><th class="num">Gate rounds t/r</th><th class="num">Failed t/r</th><th class="num">Rollbacks t/r</th><th>Note</th></tr>
{{- range .Batches}}
<tr class="compared" id="compare-{{.Index}}"><td>{{cmpLabel .}}</td><td>{{cmpCell .Tonight}}</td><td>{{cmpCell .Rehearsal}}</td><td class="num">{{cmpGates .}}</td><td class="num">{{cmpFailed .}}</td><td class="num">{{cmpRollbacks .}}</td><td{{if .Notes}} class="warn"{{end}}>{{cmpNote .}}</td></tr>
{{- end}}
</table>
{{- end}}
</section>
{{- end}}

{{- if .BaselineDown}}
<section id="baseline-down">
<h2>VMs down at pre-check</h2>
<p>Before any move the pre-check found these VMs down. A VM down at pre-check moves with its batch: neither the readiness check nor the gates hold a batch for it.</p>
<ul>
{{- range .BaselineDown}}
<li>{{.}}</li>
{{- end}}
</ul>
</section>
{{- end}}

<section id="timeline">
<h2>Timeline</h2>
{{.Timeline}}
</section>

{{- if .Waits}}
<section id="waits">
<h2>Waits and pauses</h2>
<table>
<tr><th>From (UTC)</th><th>To (UTC)</th><th class="num">Took</th><th>Waiting for</th><th>Ended by</th></tr>
{{- $until := .Until}}
{{- range .Waits}}
<tr class="wait"><td>{{clock .From}}</td><td>{{if notZero .To}}{{clock .To}}{{else}}still waiting{{end}}</td><td class="num">{{dur (waitTook . $until)}}</td><td>{{.Why}}</td><td>{{.Answer}}</td></tr>
{{- end}}
</table>
</section>
{{- end}}

<section id="batches">
<h2>Batches</h2>
<p>Times are UTC. Announce is the BGP and nft change, converge the wait until the peers held the routes, gate the health gates, rollback the change back to the source. A held batch never moved: the readiness check before the move found VMs of it not answering at the target.</p>
<table>
<tr><th class="num">#</th><th>Batch</th><th class="num">VMs</th><th>Phase</th><th>Started</th><th class="num">Announce</th><th class="num">Converge</th><th class="num">Gate</th><th>Decision</th><th class="num">Rollback</th><th class="num">Total</th><th>Gates</th></tr>
{{- range .Batches}}
<tr class="batch" id="batch-{{.Index}}"><td class="num">{{.Index}}</td><td>{{.Name}}</td><td class="num">{{.VMs}}</td><td><span class="pill {{phaseClass .Phase}}">{{.Phase}}</span></td><td>{{clock .Started}}</td><td class="num">{{durOr .ApplyTook (notZero .Announced)}}</td><td class="num">{{durOr .ConvergeTook (notZero .Converged)}}</td><td class="num">{{durOr .GateTook (gated .)}}</td><td>{{decision .}}</td><td class="num">{{durOr .RollbackTook (notZero .RolledBack)}}</td><td class="num">{{durOr (total .) (gt (total .) 0)}}</td><td>{{gates .}}</td></tr>
{{- end}}
</table>
{{- if .Totals.Retries}}
<h3>Tries before a retry</h3>
<ul id="tries">
{{- range $b := .Batches}}
{{- range $i, $t := $b.Retries}}
<li>batch {{$b.Index}} {{$b.Name}}, try {{inc $i}}: {{outcome $t}}; retry by {{$t.RetryBy}} at {{clock $t.RetryAt}}</li>
{{- end}}
{{- end}}
</ul>
{{- end}}
</section>

<section id="gate-reasons">
<h2>Gate reasons</h2>
{{- $failed := false}}
{{- range $b := .Batches}}
{{- range $i, $g := failed $b}}
{{- $failed = true}}
<h3>{{heading $b $i $g}}</h3>
<ul class="reasons">
{{- range $g.Verdicts}}
{{- $list := failures .}}
{{- if .Pass}}
<li><b>{{.Gate}}</b>: <span class="ok">pass</span></li>
{{- else if not $list}}
<li><b>{{.Gate}}</b>: <span class="bad">FAIL</span></li>
{{- else if gt (len $list) 10}}
<li><details><summary><b>{{.Gate}}</b>: <span class="bad">FAIL</span> — {{len $list}} failing, first: {{index $list 0}}</summary>
<ul>
{{- range $list}}
<li>{{.}}</li>
{{- end}}
</ul></details></li>
{{- else}}
{{- $gate := .Gate}}
{{- range $list}}
<li><b>{{$gate}}</b>: <span class="bad">FAIL</span> — {{.}}</li>
{{- end}}
{{- end}}
{{- end}}
</ul>
{{- end}}
{{- end}}
{{- if not $failed}}
<p>Every gate evaluation passed.</p>
{{- end}}
</section>

<section id="rollbacks">
<h2>Rollbacks</h2>
{{- if .Rollbacks}}
<table>
<tr><th>Time (UTC)</th><th>Batches</th><th>By</th><th>Reason</th><th class="num">Took</th></tr>
{{- range .Rollbacks}}
<tr class="rollback"><td>{{clock .Time}}</td><td>{{list .}}</td><td>{{rbBy .}}{{if .Command}} (<code>cutover {{.Command}}</code>){{end}}</td><td>{{rbReason .}}</td><td class="num">{{rbTook .}}</td></tr>
{{- end}}
</table>
{{- else}}
<p>None.</p>
{{- end}}
</section>

<section id="commands">
<h2>Who ran what</h2>
<table>
<tr><th>Time (UTC)</th><th>Operator</th><th>Command</th></tr>
{{- range .Commands}}
<tr><td>{{clock .Time}}</td><td>{{.Operator}}</td><td><code>{{cmdline .}}</code>{{if .Reason}} — reason: {{.Reason}}{{end}}</td></tr>
{{- end}}
</table>
</section>

{{- if .Events}}
<section id="events">
<h2>Run events</h2>
<table>
<tr><th>Time (UTC)</th><th>Event</th></tr>
{{- range .Events}}
<tr><td>{{clock .Time}}</td><td>{{.Text}}</td></tr>
{{- end}}
</table>
</section>
{{- end}}

{{- if .Diffs}}
<section id="changes">
<h2>What changed</h2>
{{- range .Diffs}}
<h3>{{.Name}}: {{diffSummary .}}</h3>
{{- if eq .Kind "lines"}}
<pre>
{{- template "plusminus" .}}
</pre>
{{- else}}
{{- range diffNotes .}}
<p>{{.}}</p>
{{- end}}
{{- if .Sets}}
<table class="sets">
<tr><th>Set</th><th class="num">Added</th><th class="num">Removed</th><th class="num">Kept</th></tr>
{{- range .Sets}}
<tr><td>{{.Set}}{{if .Note}} ({{.Note}}){{end}}</td><td class="num">{{len .Added}}</td><td class="num">{{len .Removed}}</td><td class="num">{{.Kept}}</td></tr>
{{- end}}
</table>
{{- range .Sets}}
{{- if or .Added .Removed}}
<pre>
<b>{{.Set}}</b>
{{- template "plusminus" .}}
</pre>
{{- end}}
{{- end}}
{{- end}}
{{- end}}
{{- end}}
</section>
{{- end}}

{{- if .Snapshots}}
<section id="snapshots">
<h2>Snapshots</h2>
{{- range .Snapshots}}
<details>
<summary>{{.Name}}</summary>
<pre>{{.Text}}</pre>
</details>
{{- end}}
</section>
{{- end}}

{{- with .Rehearsal}}
<section id="rehearsal-details">
<h2>Rehearsal</h2>
<table class="kv">
<tr><th>Result</th><td><span class="pill {{if .Passed}}ok{{else}}bad{{end}}">{{passFail .Passed}}</span></td></tr>
<tr><th>Expected</th><td>{{.Expected}}</td></tr>
<tr><th>Actual</th><td>{{.Actual}}</td></tr>
{{- if .Took}}
<tr><th>Took</th><td>{{dur .Took}}</td></tr>
{{- end}}
</table>
{{- if .Faults}}
{{- $at := faultTimes .}}
<table>
<tr><th>Fault</th><th>When</th>{{if $at}}<th>At (UTC)</th>{{end}}<th>Result</th></tr>
{{- range .Faults}}
<tr><td><code>{{.Fault}}</code></td><td>{{.When}}</td>{{if $at}}<td>{{if notZero .At}}{{clock .At}}{{else}}not recorded{{end}}</td>{{end}}<td>{{.Result}}</td></tr>
{{- end}}
</table>
{{- end}}
</section>
{{- end}}

<footer>Built from the cutover daemon's journal by <code>cutover report</code>. Everything on this page is inline: it needs no network.</footer>
</main>
</body>
</html>
{{- define "plusminus"}}
{{- range .Removed}}
<span class="del">- {{.}}</span>
{{- end}}
{{- range .Added}}
<span class="add">+ {{.}}</span>
{{- end}}
{{- end}}
`
