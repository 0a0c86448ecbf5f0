package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/plan"
	"github.com/cutover/cutover/cutover/report"
	"github.com/cutover/cutover/internal/golden"
)

// The gate reason of batch 2, as the report must show it.
const gateReason = "vm-2a (10.64.2.10): tcp/443 connect: connection refused"

// The digests of the files the test runs read.
var (
	runbookDigest   = sha256Hex(runbookFile)
	inventoryDigest = sha256Hex(inventoryFile)
	files           = &plan.Snapshot{RunbookName: "runbooks/helse-nord/runbook.yaml", Runbook: runbookFile,
		InventoryName: "runbooks/helse-nord/inventory.csv", Inventory: inventoryFile}
)

// snapshots are what a rehearsal captures of the edge and the gateway; the
// script tag checks that captured text cannot inject markup.
var snapshots = []report.Snapshot{
	{Name: "edge routes before", Text: "B>* 10.64.0.0/14 [20/0] via 10.255.1.2, eth1\n"},
	{Name: "edge routes after", Text: "B>* 10.64.0.0/14 [20/0] via 10.255.1.2, eth1\nB>* 10.64.0.0/24 [20/0] via 10.255.2.2, eth2\nB>* 10.64.1.0/24 [20/0] via 10.255.2.2, eth2\nB>* 10.64.3.0/24 [20/0] via 10.255.2.2, eth2\n"},
	{Name: "nft table before", Text: "table inet cutover {\n\tset skm2_v4 {\n\t}\n}\n"},
	{Name: "nft table after", Text: "table inet cutover {\n\tset skm2_v4 {\n\t\telements = { 10.64.0.0/24, 10.64.1.0/24, 10.64.3.0/24 }\n\t}\n}\n# <script>alert('not run')</script>\n"},
}

var rehearsal = &report.Rehearsal{
	Faults:   []report.Fault{{Fault: "vm-down", When: "batch 2", At: time.Date(2026, 3, 14, 23, 1, 40, 0, time.UTC), Result: "stopped the responders of 2 VMs"}},
	Expected: "batch 2 rolled back, batches 0, 1 and 3 committed",
	Actual:   "batch 2 rolled back, batches 0, 1 and 3 committed",
	Passed:   true,
	Took:     42 * time.Second,
}

// buildFailing runs 4 batches where batch 2 fails its gate and builds the
// report from the journal.
func buildFailing(t *testing.T) (*report.Report, []engine.JournalEntry) {
	t.Helper()
	r := newRun(t, 2)
	st := r.runToEnd()
	if st.Phase != engine.PhaseDone {
		t.Fatalf("run ended %s (%s), want done", st.Phase, st.Result)
	}
	entries := r.j.Entries()
	rep, err := report.Build(report.Input{Entries: entries, Files: files, Snapshots: snapshots, Rehearsal: rehearsal})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return rep, entries
}

func TestBuild(t *testing.T) {
	rep, entries := buildFailing(t)
	t0 := time.Date(2026, 3, 14, 23, 0, 0, 0, time.UTC)
	if rep.RunID != "20260314T230000Z" || rep.Operator != "alice" || rep.Runbook != "runbooks/helse-nord/runbook.yaml" ||
		rep.PlanDigest != planDigest || rep.RunbookDigest != runbookDigest || rep.InventoryDigest != inventoryDigest ||
		rep.DigestCheck != report.DigestsMatch || rep.Source != "skm1" || rep.Target != "skm2" {
		t.Errorf("header: %+v", rep)
	}
	wantBanner := "done — partial: 150 VMs (batch 2 b02-hsyk rolled back) still at skm1; cutover retry moves them. 350 of 500 VMs at skm2 (70%)."
	if rep.Phase != engine.PhaseDone || rep.Outcome != engine.OutcomePartial || rep.Banner != wantBanner || rep.Tone != report.ToneWarn ||
		!slices.Equal(rep.AtSource, []int{2}) {
		t.Errorf("outcome %s %s %q (%s), at the source %v", rep.Phase, rep.Outcome, rep.Banner, rep.Tone, rep.AtSource)
	}
	wantTotals := report.Totals{VMs: 500, MovedVMs: 350, Prefixes: 4, MovedPrefixes: 3, AtSourceVMs: 150, Batches: 4, Committed: 3, RolledBack: 1, Rollbacks: 1}
	if rep.Totals != wantTotals {
		t.Errorf("totals\n got %+v\nwant %+v", rep.Totals, wantTotals)
	}
	if want := []string{"vm-d 10.0.0.4: tcp 80: connection refused"}; !slices.Equal(rep.BaselineDown, want) {
		t.Errorf("baseline down %q, want %q", rep.BaselineDown, want)
	}
	var phases []engine.BatchPhase
	for _, b := range rep.Batches {
		phases = append(phases, b.Phase)
	}
	c, rb := engine.BatchCommitted, engine.BatchRolledBack
	if want := []engine.BatchPhase{c, c, rb, c}; !slices.Equal(phases, want) {
		t.Errorf("phases %v, want %v", phases, want)
	}
	// Who ran what: alice started it, bob gave the go at both points.
	var cmds []string
	for _, c := range rep.Commands {
		cmds = append(cmds, c.Operator+": "+c.Command+" "+c.Args)
	}
	want := []string{"alice: run runbooks/helse-nord/runbook.yaml", "bob: confirm baseline-down go", "bob: confirm after-canary go"}
	if !slices.Equal(cmds, want) {
		t.Errorf("commands %q, want %q", cmds, want)
	}
	// The go/no-go points are waits, from the pause to bob's answer.
	var waits []string
	for _, w := range rep.Waits {
		waits = append(waits, fmt.Sprintf("%s: %s after %s", w.Why, w.Answer, w.To.Sub(w.From)))
	}
	if want := []string{"go/no-go at baseline-down: go by bob after 30.01s", "go/no-go at after-canary: go by bob after 1m0.01s"}; !slices.Equal(waits, want) {
		t.Errorf("waits %q, want %q", waits, want)
	}
	// The fake clock makes every duration exact.
	b0, b2 := rep.Batches[0], rep.Batches[2]
	if b0.ApplyTook != 200*time.Millisecond || b0.ConvergeTook != 710*time.Millisecond || b0.GateTook != 3*time.Second || b0.Attempts != 1 {
		t.Errorf("batch 0 durations: apply %s converge %s gate %s attempts %d", b0.ApplyTook, b0.ConvergeTook, b0.GateTook, b0.Attempts)
	}
	if b2.Reason != "gate failed: probe: "+gateReason+" (+1 more)" {
		t.Errorf("batch 2 reason %q", b2.Reason)
	}
	if len(b2.Gates) != 1 || b2.Gates[0].Pass || b2.Gates[0].Ready || b2.Gates[0].Verdicts[1].Reasons[0] != gateReason {
		t.Errorf("batch 2 gates %+v", b2.Gates)
	}
	// The rollback's duration is the engine's measure of its change, not
	// the time between the batch's records.
	if b2.RollbackTook != 220*time.Millisecond || b2.RollbackBy != "policy" || b2.RolledBack.Sub(b2.RollbackStart) != 230*time.Millisecond {
		t.Errorf("batch 2 rollback by %s took %s (%s to %s)", b2.RollbackBy, b2.RollbackTook, b2.RollbackStart, b2.RolledBack)
	}
	wantRB := []report.Rollback{{Time: b2.RollbackStart, Batches: []int{2}, Names: []string{"b02-hsyk"}, By: "policy",
		Reason: b2.Reason, Took: 220 * time.Millisecond}}
	if !reflect.DeepEqual(rep.Rollbacks, wantRB) {
		t.Errorf("rollbacks\n got %+v\nwant %+v", rep.Rollbacks, wantRB)
	}
	var moved []int
	for _, p := range rep.Moved {
		moved = append(moved, p.VMs)
	}
	if want := []int{0, 10, 210, 360, 210, 350}; !slices.Equal(moved, want) {
		t.Errorf("moved VMs over time %v, want %v", moved, want)
	}
	if rep.Started != t0.Add(10*time.Millisecond) || !rep.Ended.After(b2.RolledBack) || rep.Until != rep.Ended {
		t.Errorf("started %s ended %s until %s", rep.Started, rep.Ended, rep.Until)
	}
	// The canary is at the target from its applied record on.
	i := slices.IndexFunc(entries, func(e engine.JournalEntry) bool {
		return e.Type == "applied" && strings.Contains(string(e.Data), `"moved":[0]`)
	})
	if i < 0 || rep.Moved[1].Time != entries[i].Time {
		t.Errorf("canary at the target at %s, want the time of journal record %d", rep.Moved[1].Time, i+1)
	}
	wantDiffs := []report.Diff{
		{Name: "edge routes", Kind: report.DiffLines,
			Added: []string{"B>* 10.64.0.0/24 [20/0] via 10.255.2.2, eth2", "B>* 10.64.1.0/24 [20/0] via 10.255.2.2, eth2", "B>* 10.64.3.0/24 [20/0] via 10.255.2.2, eth2"}},
		{Name: "nft table", Kind: report.DiffSets, Sets: []report.SetDiff{{Set: "skm2_v4", Added: []string{"10.64.0.0/24", "10.64.1.0/24", "10.64.3.0/24"}}}},
	}
	if !reflect.DeepEqual(rep.Diffs, wantDiffs) {
		t.Errorf("diffs\n got %+v\nwant %+v", rep.Diffs, wantDiffs)
	}
	if j := rep.Journal; j.Records != len(entries) || j.First != 1 || j.Last != uint64(len(entries)) || len(j.Digest) != 64 {
		t.Errorf("journal %+v, want records 1 to %d", j, len(entries))
	}
}

// TestEventsAsTold: the report's run events are the lines the engine told
// live for the same records, in the same words.
func TestEventsAsTold(t *testing.T) {
	r := newRun(t, 2)
	r.runToEnd()
	rep, err := report.Build(report.Input{Entries: r.j.Entries()})
	if err != nil {
		t.Fatal(err)
	}
	var live, texts []string
	for _, ev := range r.e.Status(0).Events {
		live = append(live, ev.Msg)
	}
	for _, ev := range rep.Events {
		texts = append(texts, ev.Text)
		if !slices.Contains(live, ev.Text) {
			t.Errorf("report event %q was not told live; live events:\n%s", ev.Text, strings.Join(live, "\n"))
		}
	}
	want := []string{
		"baseline routes and nft state applied before the first batch in 200ms (0 routes)",
		"pre-check: baseline 3 of 4 probed VMs healthy; 1 down before any move: vm-d 10.0.0.4: tcp 80: connection refused",
		`waiting for go/no-go at "baseline-down"`,
		`waiting for go/no-go at "after-canary"`,
		"run finished: 3 batches committed, 1 rolled back; 350 VMs at the target, 150 VMs (batch 2) still at the source (skm1): cutover retry moves them again",
	}
	if !slices.Equal(texts, want) {
		t.Errorf("events %q, want %q", texts, want)
	}
}

func TestMarkdown(t *testing.T) {
	rep, _ := buildFailing(t)
	md := rep.Markdown()
	for _, want := range []string{
		"**Outcome:** done — partial: 150 VMs (batch 2 b02-hsyk rolled back) still at skm1; cutover retry moves them. 350 of 500 VMs at skm2 (70%).",
		"| 0 | b00-canary | 10 | committed |",
		"| 1 | b01-unn | 200 | committed |",
		"| 2 | b02-hsyk | 150 | rolled-back |",
		"| 3 | b03-nlsh | 140 | committed |",
		"| rollback 23:01:42 by policy | 220ms | 4.2s | FAIL probe (1 of 2 gates) |",
		"| commit 23:00:34 |  | 4s | pass (2 gates) |",
		"probe: FAIL — vm-2a (10.64.2.10): tcp/443 connect: connection refused",
		"| alice | `cutover run runbooks/helse-nord/runbook.yaml` |",
		"| bob | `cutover confirm after-canary go` |",
		"| 23:00:34 | 23:01:34 | 1m0s | go/no-go at after-canary | go by bob |",
		"| 2 b02-hsyk | policy | gate failed: probe: vm-2a (10.64.2.10): tcp/443 connect: connection refused (+1 more) | 220ms |",
		"| Runbook digest | `" + runbookDigest + "` (SHA-256 of the runbook file) |",
		"| Inventory digest | `" + inventoryDigest + "` (SHA-256 of the inventory file) |",
		"- VMs still at skm1: 150 — batch 2 b02-hsyk rolled back\n",
		"- Rolled back: batch 2 b02-hsyk (150 VMs)\n- Held (not ready at the target): none\n",
		"- vm-d 10.0.0.4: tcp 80: connection refused\n",
		"**Rehearsal:** PASS",
		"+ B>* 10.64.1.0/24 [20/0] via 10.255.2.2, eth2",
		"| skm2\\_v4 | 3 | 0 | 0 |",
	} {
		if !bytes.Contains(md, []byte(want)) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	golden.Check(t, filepath.Join("testdata", "TestMarkdown.golden"), md)
}

func TestSVG(t *testing.T) {
	rep, _ := buildFailing(t)
	svg := rep.SVG()
	dec := xml.NewDecoder(bytes.NewReader(svg))
	dec.Strict = true
	var stack []string
	bars, segs, rollbacks, waits, yticks := 0, map[string]int{}, 0, 0, 0
	root := ""
	for {
		tok, err := dec.Token()
		if err != nil {
			if err.Error() == "EOF" {
				break
			}
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = el.Name.Space + " " + el.Name.Local
			}
			stack = append(stack, el.Name.Local)
			for _, a := range el.Attr {
				if a.Name.Local != "class" {
					continue
				}
				classes := strings.Fields(a.Value)
				switch {
				case el.Name.Local == "rect" && slices.Contains(classes, "bar"):
					bars++
				case el.Name.Local == "rect" && slices.Contains(classes, "seg"):
					segs[classes[1]]++
				case el.Name.Local == "g" && slices.Contains(classes, "rollback"):
					rollbacks++
				case el.Name.Local == "g" && slices.Contains(classes, "wait"):
					waits++
				case el.Name.Local == "text" && slices.Contains(classes, "ytick"):
					yticks++
				}
			}
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		}
	}
	if root != "http://www.w3.org/2000/svg svg" || len(stack) != 0 {
		t.Errorf("root %q, %d elements left open", root, len(stack))
	}
	if bars != 4 || rollbacks != 1 || waits != 2 {
		t.Errorf("%d bars, %d rollback markers and %d waits, want 4, 1 and 2", bars, rollbacks, waits)
	}
	if yticks != 6 {
		t.Errorf("%d ticks of VMs at the target, want 6 (0 to 500 by 100)", yticks)
	}
	want := map[string]int{"seg-announce": 4, "seg-converge": 4, "seg-gate": 4, "seg-at-target": 3, "seg-rollback": 1}
	if !reflect.DeepEqual(segs, want) {
		t.Errorf("segments %v, want %v", segs, want)
	}
}

func TestJSON(t *testing.T) {
	rep, _ := buildFailing(t)
	js, err := rep.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var back report.Report
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatalf("JSON does not read back: %v", err)
	}
	if !reflect.DeepEqual(&back, rep) {
		t.Errorf("JSON round trip differs:\n got %+v\nwant %+v", back, *rep)
	}
}

// TestBuildRerunRestartRollback covers a second run of the same runbook,
// a daemon restart and an operator's rollback, and picking a run by id.
func TestBuildRerunRestartRollback(t *testing.T) {
	r := newRun(t, 2)
	first := r.runToEnd()
	r.clock.Advance(time.Minute)
	// carol runs it again with --yes: batch 2 fails again.
	if err := r.e.Start(r.spec, "carol", true); err != nil {
		t.Fatal(err)
	}
	r.wait("the second run", func(s engine.RunState) bool { return s.RunID != first.RunID && ended(s) })
	// A daemon restart: a new engine from the journal re-applies the state.
	r.stop()
	st, err := engine.Fold(r.j.Entries())
	if err != nil {
		t.Fatal(err)
	}
	r.start(st)
	if err := r.e.Attach(r.spec); err != nil {
		t.Fatal(err)
	}
	if err := r.e.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	// dave takes everything back.
	if err := r.e.Rollback(context.Background(), engine.AllBatches().Because("change window ends"), "dave"); err != nil {
		t.Fatal(err)
	}
	entries := r.j.Entries()

	rep, err := report.Build(report.Input{Entries: entries})
	if err != nil {
		t.Fatal(err)
	}
	if rep.RunID != "20260314T230246Z" || rep.Operator != "carol" {
		t.Errorf("last run: %s by %s", rep.RunID, rep.Operator)
	}
	var cmds []string
	for _, c := range rep.Commands {
		cmds = append(cmds, c.Operator+": "+c.Command+" "+c.Args)
	}
	want := []string{"carol: run --yes runbooks/helse-nord/runbook.yaml", "carol (--yes): confirm baseline-down go", "dave: rollback --all"}
	if !slices.Equal(cmds, want) {
		t.Errorf("commands %q, want %q", cmds, want)
	}
	if rep.Totals.Restarts != 1 || rep.Totals.MovedVMs != 0 || rep.Phase != engine.PhaseAborted {
		t.Errorf("restarts %d, moved %d, phase %s", rep.Totals.Restarts, rep.Totals.MovedVMs, rep.Phase)
	}
	if len(rep.Rollbacks) != 2 {
		t.Fatalf("rollbacks %+v", rep.Rollbacks)
	}
	if rb := rep.Rollbacks[1]; rb.By != "dave" || rb.Command != "rollback --all" || rb.Reason != "change window ends" ||
		!slices.Equal(rb.Batches, []int{0, 1, 3}) || rb.Took != 220*time.Millisecond {
		t.Errorf("dave's rollback %+v", rb)
	}
	if c := rep.Commands[2]; c.Reason != "change window ends" {
		t.Errorf("dave's command %+v", c)
	}
	wantBanner := "aborted — rolled back by dave; 0 of 500 VMs at skm2 (0%); 500 VMs (batch 0 b00-canary rolled back, " +
		"batch 1 b01-unn rolled back, batch 2 b02-hsyk rolled back, batch 3 b03-nlsh rolled back) back at skm1"
	if rep.Outcome != engine.OutcomeAborted || rep.Banner != wantBanner || rep.Tone != report.ToneBad {
		t.Errorf("outcome %s %q (%s), want %q", rep.Outcome, rep.Banner, rep.Tone, wantBanner)
	}
	// The second run starts with the first run's 350 VMs at the target.
	if rep.Moved[0].VMs != 350 || rep.Moved[len(rep.Moved)-1].VMs != 0 {
		t.Errorf("moved %+v", rep.Moved)
	}
	if !slices.ContainsFunc(rep.Events, func(e report.Event) bool { return strings.HasPrefix(e.Text, "daemon restart: state re-applied") }) {
		t.Errorf("no restart event in %+v", rep.Events)
	}
	// Batches committed in the first run stay committed until dave's
	// rollback: their bars show the time at the target, then the rollback.
	svg := string(rep.SVG())
	if n := strings.Count(svg, `class="seg seg-rollback"`); n != 4 {
		t.Errorf("%d rollback segments, want 4 (batch 2 by policy, 0, 1, 3 by dave)", n)
	}

	old, err := report.Build(report.Input{Entries: entries, Run: first.RunID})
	if err != nil {
		t.Fatal(err)
	}
	if old.RunID != first.RunID || old.Operator != "alice" || old.Totals.MovedVMs != 350 || old.Totals.Restarts != 0 {
		t.Errorf("first run by id: %s by %s, %d moved", old.RunID, old.Operator, old.Totals.MovedVMs)
	}
}

func TestBuildErrors(t *testing.T) {
	at := time.Date(2026, 3, 14, 23, 0, 0, 0, time.UTC)
	e := func(seq uint64, typ, data string) engine.JournalEntry {
		return engine.JournalEntry{Seq: seq, Time: at, Type: typ, Data: json.RawMessage(data)}
	}
	start := e(1, "run-start", `{"run_id":"r1","runbook":"rb.yaml","digest":"d","operator":"alice","batches":[{"index":0,"name":"b0","vms":1,"prefixes":1,"phase":"pending"}]}`)
	tests := []struct {
		name    string
		in      report.Input
		wantErr string
	}{
		{"empty journal", report.Input{}, "build report: the journal holds no run"},
		{"no run-start", report.Input{Entries: []engine.JournalEntry{e(1, "baseline", `{"healthy":[],"probed":0}`)}},
			"build report: the journal holds no run"},
		{"unknown run", report.Input{Entries: []engine.JournalEntry{start}, Run: "r2"},
			`build report: the journal holds no run with id "r2"`},
		{"torn run-start", report.Input{Entries: []engine.JournalEntry{e(1, "run-start", `{"run_id":`)}},
			"build report: journal record 1: run-start: unexpected end of JSON input"},
		{"unknown record type", report.Input{Entries: []engine.JournalEntry{start, e(2, "teleport", `{}`)}},
			`build report: journal record 2: unknown journal record type "teleport"`},
		{"batch out of range", report.Input{Entries: []engine.JournalEntry{start, e(2, "batch", `{"batch":7,"phase":"announcing"}`)}},
			"build report: journal record 2: batch: no batch 7"},
		// The daemon's fold goes on past a damaged audit record; the
		// report, whose table of commands it is, does not.
		{"torn operator record", report.Input{Entries: []engine.JournalEntry{start, e(2, "operator", `{"command":7}`)}},
			"build report: journal record 2: operator: json: cannot unmarshal number into Go struct field OperatorRecord.command of type string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := report.Build(tt.in)
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("err %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// TestWriteDir writes the four files; CUTOVER_REPORT_DIR=dir keeps them.
func TestWriteDir(t *testing.T) {
	rep, _ := buildFailing(t)
	dir := filepath.Join(t.TempDir(), "report")
	if d := os.Getenv("CUTOVER_REPORT_DIR"); d != "" {
		dir = d // keep a sample report to look at
	}
	if err := rep.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]byte{"report.md": rep.Markdown(), "report.html": rep.HTML(), report.SVGFile: rep.SVG()} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %v, same content %t", name, err, bytes.Equal(got, want))
		}
	}
	md, _ := os.ReadFile(filepath.Join(dir, "report.md"))
	if !regexp.MustCompile(`!\[[^]]*\]\(` + regexp.QuoteMeta(report.SVGFile) + `\)`).Match(md) {
		t.Errorf("report.md does not show %s", report.SVGFile)
	}
}

// TestBuildInterruptedChange: a daemon killed between the intent of a
// change and its applied record shows in the report.
func TestBuildInterruptedChange(t *testing.T) {
	_, entries := buildFailing(t)
	k := slices.IndexFunc(entries, func(e engine.JournalEntry) bool {
		return e.Type == "intent" && strings.Contains(string(e.Data), `"batch":1,"op":"announce"`)
	})
	if k < 0 {
		t.Fatal("no intent for batch 1 in the journal")
	}
	es := slices.Clone(entries[:k+1])
	next := func(d time.Duration, typ, data string) {
		last := es[len(es)-1]
		es = append(es, engine.JournalEntry{Seq: last.Seq + 1, Time: last.Time.Add(d), Type: typ, Data: json.RawMessage(data)})
	}
	next(9*time.Second, "intent", `{"moved":[0,1],"batch":-1,"op":"recover"}`)
	next(300*time.Millisecond, "applied", `{"moved":[0,1],"batch":-1,"op":"recover","took":290000000,"routes":2}`)
	next(10*time.Millisecond, "phase", `{"phase":"paused","pause":"interrupted"}`)
	rep, err := report.Build(report.Input{Entries: es})
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, e := range rep.Events {
		texts = append(texts, e.Text)
	}
	want := []string{
		"the daemon stopped during the announce of batch 1 b01-unn (journaled, not completed); the restart re-applied it",
		"daemon restart: state re-applied from the journal in 290ms (2 batches, 210 VMs at the target)",
		"paused: interrupted by a daemon restart",
	}
	if len(texts) < 3 || !slices.Equal(texts[len(texts)-3:], want) {
		t.Errorf("events %q, want them to end with %q", texts, want)
	}
	if rep.Totals.Restarts != 1 || rep.Totals.MovedVMs != 210 || rep.Outcome != engine.OutcomeNone || rep.Tone != report.ToneBusy ||
		rep.Banner != "under way, paused (interrupted); 210 of 500 VMs at skm2 (42%)" {
		t.Errorf("restarts %d moved %d outcome %q %q", rep.Totals.Restarts, rep.Totals.MovedVMs, rep.Outcome, rep.Banner)
	}
	if w := rep.Waits[len(rep.Waits)-1]; w.Why != "paused: daemon restart" || !w.To.IsZero() {
		t.Errorf("last wait %+v, want the restart's pause, not over", w)
	}
}

func TestRender(t *testing.T) {
	r, _ := buildFailing(t)
	js, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		format string
		want   []byte
	}{{"md", r.Markdown()}, {"markdown", r.Markdown()}, {"html", r.HTML()}, {"svg", r.SVG()}, {"json", js}} {
		got, err := r.Render(tc.format)
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Errorf("Render(%q): %v, output differs: %v", tc.format, err, !bytes.Equal(got, tc.want))
		}
	}
	_, err = r.Render("pdf")
	var fe *report.FormatError
	if !errors.As(err, &fe) || err.Error() != `-o "pdf": want md, html, json, svg` {
		t.Errorf("Render(pdf) = %v", err)
	}
}

// TestBuildFourEyes: a go/no-go point that needs two operators shows
// both answers as commands and the wait answered by both.
func TestBuildFourEyes(t *testing.T) {
	r := newRun(t)
	r.spec.ConfirmOperators = map[string]int{"after-canary": 2}
	if err := r.e.Start(r.spec, "alice", false); err != nil {
		t.Fatalf("Start: %v", err)
	}
	r.answer(engine.ConfirmBaselineDown, 30*time.Second)
	r.answer("after-canary", time.Minute)
	if err := r.e.Confirm("after-canary", true, "carol"); err != nil {
		t.Fatal(err)
	}
	r.wait("the end of the run", ended)
	rep, err := report.Build(report.Input{Entries: r.j.Entries()})
	if err != nil {
		t.Fatal(err)
	}
	var confirms []string
	for _, c := range rep.Commands {
		if c.Command == "confirm" {
			confirms = append(confirms, c.Operator+": "+c.Args)
		}
	}
	want := []string{"bob: baseline-down go", "bob: after-canary go (one more operator needed)", "carol: after-canary go"}
	if !slices.Equal(confirms, want) {
		t.Errorf("confirm commands %q, want %q", confirms, want)
	}
	var answers []string
	for _, w := range rep.Waits {
		if w.Point == "after-canary" {
			answers = append(answers, w.Answer)
		}
	}
	if want := []string{"go by bob and carol"}; !slices.Equal(answers, want) {
		t.Errorf("after-canary waits answered %q, want %q", answers, want)
	}
}
