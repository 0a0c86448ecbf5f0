package report_test

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/report"
	"github.com/cutover/cutover/internal/golden"
)

// The reports compared in TestCompare are built by hand: a run of four
// batches, each announced, gated once and committed, one after the other.
var t0 = time.Date(2026, 3, 14, 23, 0, 0, 0, time.UTC)

var (
	passed = report.GateRun{Pass: true, Took: 3 * time.Second, Verdicts: []engine.VerdictRecord{{Gate: "bgp", Pass: true}, {Gate: "probe", Pass: true}}}
	// refused is a gate round that failed: its reason, as the engine sums
	// it up, is refusedWhy.
	refused = report.GateRun{Took: 3 * time.Second, Verdicts: []engine.VerdictRecord{{Gate: "bgp", Pass: true}, {Gate: "probe",
		Reasons: []string{"vm-3a 10.64.3.10: tcp 80: connection refused", "vm-3b 10.64.3.11: tcp 80: connection refused", "vm-3c 10.64.3.12: tcp 80: connection refused"}}}}
	refusedWhy = "probe: vm-3a 10.64.3.10: tcp 80: connection refused (+2 more)"
	notReady   = report.GateRun{Ready: true, Took: time.Second, Verdicts: []engine.VerdictRecord{{Gate: "ready", Reasons: []string{"0/2 VMs answer at skm2"}}}}
	ready      = report.GateRun{Ready: true, Pass: true, Took: time.Second, Verdicts: []engine.VerdictRecord{{Gate: "ready", Pass: true}}}
)

// handRun is a run of four batches that all committed, batch i taking
// 10s from 23:00:00 + i minutes, the run ending at 23:04:00.
func handRun() *report.Report {
	r := &report.Report{RunID: "20260314T230000Z", Runbook: "runbooks/helse-nord/runbook.yaml",
		RunbookDigest: runbookDigest, InventoryDigest: inventoryDigest,
		Started: t0, Ended: t0.Add(4 * time.Minute), Until: t0.Add(4 * time.Minute), Phase: engine.PhaseDone}
	for i, b := range testBatches {
		start := t0.Add(time.Duration(i) * time.Minute)
		r.Batches = append(r.Batches, report.Batch{Index: i, Name: b.name, VMs: b.vms, Prefixes: 1, Phase: engine.BatchCommitted, Attempts: 1,
			Try:   report.Try{Started: start, Announced: start.Add(200 * time.Millisecond), Converged: start.Add(time.Second), Decided: start.Add(10 * time.Second)},
			Gates: []report.GateRun{passed}})
	}
	return r
}

// tally sets the totals and the outcome from the batches, as Build does.
func tally(r *report.Report) *report.Report {
	t := &r.Totals
	t.Batches, t.Committed, t.RolledBack, t.Held = len(r.Batches), 0, 0, 0
	for _, b := range r.Batches {
		switch b.Phase {
		case engine.BatchCommitted:
			t.Committed++
		case engine.BatchRolledBack:
			t.RolledBack++
		case engine.BatchHeld:
			t.Held++
		}
	}
	switch {
	case r.Ended.IsZero():
		r.Outcome = engine.OutcomeNone
	case t.Committed == t.Batches:
		r.Outcome = engine.OutcomeAllMoved
	case t.Committed == 0:
		r.Outcome = engine.OutcomeAborted
	default:
		r.Outcome = engine.OutcomePartial
	}
	return r
}

// took makes batch i take d from its start to its decision.
func took(r *report.Report, i int, d time.Duration) {
	b := &r.Batches[i]
	b.Decided = b.Started.Add(d)
}

// rollBack makes batch i fail its one gate round and be rolled back by by.
func rollBack(r *report.Report, i int, by string) {
	b := &r.Batches[i]
	b.Phase, b.Gates = engine.BatchRolledBack, []report.GateRun{refused}
	b.RollbackStart, b.RolledBack, b.RollbackBy = b.Decided, b.Decided.Add(300*time.Millisecond), by
}

var rehearsed = report.RehearsalRecord{Runbook: "helse-nord", File: "runbooks/helse-nord/runbook.yaml",
	RunbookDigest: runbookDigest, InventoryDigest: inventoryDigest,
	Rehearsed: time.Date(2026, 3, 13, 22, 10, 0, 0, time.UTC), Took: 108 * time.Second, Green: true, Outcome: engine.OutcomeAllMoved}

func TestCompare(t *testing.T) {
	tests := []struct {
		name string
		// night and rehearsal change the hand-made runs; rec the record.
		night, rehearsal func(r *report.Report)
		rec              func(rec *report.RehearsalRecord)
		want             []string
	}{
		{name: "the same run"},
		{name: "durations within noise",
			night: func(r *report.Report) {
				took(r, 0, 6*time.Second)   // 1.7× as long, but 4s apart
				took(r, 1, 14*time.Second)  // 4s longer
				took(r, 2, 100*time.Second) // 1.4× 72s
			},
			rehearsal: func(r *report.Report) {
				took(r, 0, 10*time.Second)
				took(r, 1, 10*time.Second)
				took(r, 2, 72*time.Second)
			}},
		{name: "a batch slower",
			night:     func(r *report.Report) { took(r, 3, 41*time.Second) },
			rehearsal: func(r *report.Report) { took(r, 3, 12*time.Second) },
			want:      []string{"batch 3 b03-nlsh: took 41s tonight, 12s at the rehearsal (3.4×)"}},
		{name: "a batch faster",
			night:     func(r *report.Report) { took(r, 3, 12*time.Second) },
			rehearsal: func(r *report.Report) { took(r, 3, 41*time.Second) },
			want:      []string{"batch 3 b03-nlsh: took 12s tonight, 41s at the rehearsal (0.29×)"}},
		{name: "gate rounds failed tonight",
			night: func(r *report.Report) {
				r.Batches[3].Gates = []report.GateRun{refused, refused, passed}
			},
			want: []string{"batch 3 b03-nlsh: 2 gate rounds failed tonight (" + refusedWhy + "), none at the rehearsal"}},
		{name: "gate rounds failed at the rehearsal only",
			rehearsal: func(r *report.Report) {
				r.Batches[3].Gates = []report.GateRun{refused, passed}
			},
			want: []string{"batch 3 b03-nlsh: no gate round failed tonight, 1 at the rehearsal (" + refusedWhy + ")"}},
		{name: "more gate rounds, none failed",
			night: func(r *report.Report) { r.Batches[1].Gates = []report.GateRun{passed, passed} },
			want:  []string{"batch 1 b01-unn: 2 gate rounds tonight, 1 at the rehearsal"}},
		{name: "not ready at the target tonight",
			night: func(r *report.Report) {
				r.Batches[2].Gates = []report.GateRun{notReady, ready, passed}
			},
			rehearsal: func(r *report.Report) { r.Batches[2].Gates = []report.GateRun{ready, passed} },
			want:      []string{"batch 2 b02-hsyk: 1 readiness check failed tonight (ready: 0/2 VMs answer at skm2), none at the rehearsal"}},
		{name: "held tonight",
			night: func(r *report.Report) {
				b := &r.Batches[3]
				b.Phase, b.Attempts, b.Gates = engine.BatchHeld, 0, []report.GateRun{notReady}
				b.Try = report.Try{Decided: t0.Add(3*time.Minute + time.Second)}
			},
			want: []string{
				"the run ended partial tonight, all-moved at the rehearsal",
				"3 of 4 batches committed tonight, 4 of 4 at the rehearsal",
				"1 batch held (not ready at the target) tonight, none at the rehearsal",
				"batch 3 b03-nlsh: held (not ready at the target) tonight, committed at the rehearsal",
				"batch 3 b03-nlsh: 1 readiness check failed tonight (ready: 0/2 VMs answer at skm2), none at the rehearsal",
			}},
		{name: "rolled back tonight",
			night: func(r *report.Report) { rollBack(r, 2, "policy") },
			want: []string{
				"the run ended partial tonight, all-moved at the rehearsal",
				"3 of 4 batches committed tonight, 4 of 4 at the rehearsal",
				"1 batch rolled back tonight, none at the rehearsal",
				"batch 2 b02-hsyk: rolled back by policy tonight, committed at the rehearsal",
				"batch 2 b02-hsyk: 1 gate round failed tonight (" + refusedWhy + "), none at the rehearsal",
			}},
		{name: "rolled back by an operator tonight, by the policy at the rehearsal",
			night:     func(r *report.Report) { rollBack(r, 2, "alice") },
			rehearsal: func(r *report.Report) { rollBack(r, 2, "policy") },
			want:      []string{"batch 2 b02-hsyk: rolled back by alice tonight, by policy at the rehearsal"}},
		{name: "rolled back and retried tonight",
			night: func(r *report.Report) {
				b := &r.Batches[2]
				first := b.Try
				first.RollbackStart, first.RolledBack, first.RollbackBy = first.Decided, first.Decided.Add(300*time.Millisecond), "policy"
				b.Retries = []report.Retried{{Try: first, Phase: engine.BatchRolledBack, RetryAt: t0.Add(10 * time.Minute), RetryBy: "alice"}}
				b.Gates = []report.GateRun{refused, passed}
				b.Attempts = 2
			},
			want: []string{
				"batch 2 b02-hsyk: rolled back once (by policy) tonight, not at the rehearsal",
				"batch 2 b02-hsyk: 1 gate round failed tonight (" + refusedWhy + "), none at the rehearsal",
				"batch 2 b02-hsyk: retried once tonight, not at the rehearsal",
				// Each try took 10s (10.3s with the rollback): 20.3s, not 10s.
				"batch 2 b02-hsyk: took 20.3s tonight, 10s at the rehearsal (2.0×)",
			}},
		{name: "a fault injected at the batch explains it",
			rehearsal: func(r *report.Report) {
				rollBack(r, 2, "policy")
				r.Totals.Rollbacks = 1
			},
			rec: func(rec *report.RehearsalRecord) {
				rec.Faults, rec.Outcome = []string{"vm-down@2"}, engine.OutcomePartial
			},
			want: []string{
				"the run ended all-moved tonight, partial at the rehearsal",
				"4 of 4 batches committed tonight, 3 of 4 at the rehearsal",
				"no batch rolled back tonight, 1 at the rehearsal",
				"batch 2 b02-hsyk: committed tonight, rolled back by policy at the rehearsal; the rehearsal injected vm-down@2 here",
				"batch 2 b02-hsyk: no gate round failed tonight, 1 at the rehearsal (" + refusedWhy + "); the rehearsal injected vm-down@2 here",
			}},
		{name: "a daemon killed at the rehearsal",
			rehearsal: func(r *report.Report) {
				r.Totals.Restarts = 1
				r.Batches[2].Attempts = 2
			},
			rec: func(rec *report.RehearsalRecord) { rec.Faults = []string{"daemon-kill"} }, // the middle batch: 2 of 4
			want: []string{
				"the daemon did not restart tonight, restarted once at the rehearsal",
				"batch 2 b02-hsyk: announced once tonight, twice at the rehearsal; the rehearsal injected daemon-kill here",
			}},
		{name: "the run slower, waits for people not counted",
			night: func(r *report.Report) {
				r.Ended = t0.Add(30 * time.Minute)
				r.Waits = []report.Wait{{From: t0.Add(time.Minute), To: t0.Add(21 * time.Minute), Point: "after-canary", Why: "go/no-go at after-canary"}}
			},
			rehearsal: func(r *report.Report) { r.Ended = t0.Add(2 * time.Minute) },
			want:      []string{"the run took 10m0s tonight, 2m0s at the rehearsal (5.0×), not counting waits for people"}},
		{name: "the inventory changed",
			night: func(r *report.Report) { r.InventoryDigest = sha256Hex("other inventory") },
			want:  []string{"the inventory differs from the rehearsed one"}},
		{name: "the runbook and the inventory changed",
			rec: func(rec *report.RehearsalRecord) {
				rec.RunbookDigest, rec.InventoryDigest = sha256Hex("old runbook"), "sha256:"+sha256Hex("old inventory")
			},
			want: []string{"the runbook and the inventory differ from the rehearsed ones"}},
		{name: "the same files, a digest prefixed",
			night: func(r *report.Report) { r.RunbookDigest = "sha256:" + runbookDigest }},
		{name: "no digests in the run's report",
			night: func(r *report.Report) { r.RunbookDigest, r.InventoryDigest = "", "" },
			want:  []string{"the run's report has no runbook or inventory digest: whether the rehearsed files ran is not known"}},
		{name: "another batch list",
			night: func(r *report.Report) {
				r.Batches[3].Name = "b03-nlsh-a"
				r.Batches = append(r.Batches, report.Batch{Index: 4, Name: "b04-nlsh-b", Phase: engine.BatchCommitted, Attempts: 1, Gates: []report.GateRun{passed},
					Try: report.Try{Started: t0.Add(4 * time.Minute), Decided: t0.Add(4*time.Minute + 10*time.Second)}})
			},
			want: []string{
				"the batches differ from the rehearsed ones (the runbook or inventory changed?): 5 batches tonight, 4 at the rehearsal; " +
					"batch 3 is b03-nlsh-a tonight, b03-nlsh at the rehearsal; only batches of the same index and name are compared",
				"5 of 5 batches committed tonight, 4 of 4 at the rehearsal",
			}},
		{name: "a batch moved by an earlier run",
			night: func(r *report.Report) {
				r.Batches[0] = report.Batch{Index: 0, Name: "b00-canary", Phase: engine.BatchCommitted, Earlier: true}
			},
			want: []string{"batch 0 b00-canary: at the target from an earlier run tonight, so not compared"}},
		{name: "still under way",
			night: func(r *report.Report) {
				r.Ended, r.Phase = time.Time{}, engine.PhaseRunning
				r.Batches[3].Phase, r.Batches[3].Decided = engine.BatchGating, time.Time{}
			},
			want: []string{
				"the run is still under way tonight; the rehearsal ended all-moved",
				"3 of 4 batches committed tonight, 4 of 4 at the rehearsal",
				"batch 3 b03-nlsh: gating tonight, committed at the rehearsal",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			night, rh, rec := handRun(), handRun(), rehearsed
			if tt.night != nil {
				tt.night(night)
			}
			if tt.rehearsal != nil {
				tt.rehearsal(rh)
			}
			if tt.rec != nil {
				tt.rec(&rec)
			}
			c := report.Compare(tally(night), tally(rh), rec)
			if !reflect.DeepEqual(c.Differences, tt.want) {
				t.Errorf("differences:\n%s\nwant:\n%s", strings.Join(c.Differences, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestCompareSides: what the table shows of each batch.
func TestCompareSides(t *testing.T) {
	night, rh := handRun(), handRun()
	rollBack(night, 2, "policy")
	night.Batches[3].Gates = []report.GateRun{notReady, ready, refused, passed}
	c := report.Compare(tally(night), tally(rh), rehearsed)
	want := report.BatchCompared{Index: 2, Compared: true,
		Tonight: &report.BatchSide{Name: "b02-hsyk", Phase: engine.BatchRolledBack, Took: 10*time.Second + 300*time.Millisecond,
			GateRounds: 1, FailedRounds: 1, FirstFailure: refusedWhy, Rollbacks: 1, RollbackBy: []string{"policy"}, Attempts: 1},
		Rehearsal: &report.BatchSide{Name: "b02-hsyk", Phase: engine.BatchCommitted, Took: 10 * time.Second, GateRounds: 1, Attempts: 1},
		Notes:     []string{"rolled back by policy tonight, committed at the rehearsal", "1 gate round failed tonight (" + refusedWhy + "), none at the rehearsal"},
	}
	if !reflect.DeepEqual(c.Batches[2], want) {
		t.Errorf("batch 2:\n got %+v\nwant %+v", c.Batches[2], want)
	}
	if s := c.Batches[3].Tonight; s.GateRounds != 2 || s.FailedRounds != 1 || s.ReadyChecks != 2 || s.NotReady != 1 || s.FirstNotReady != "ready: 0/2 VMs answer at skm2" {
		t.Errorf("batch 3 tonight: %+v", s)
	}
	if c.RunbookDigest != report.DigestsMatch || c.InventoryDigest != report.DigestsMatch || !c.SameBatches {
		t.Errorf("digests %q %q, same batches %v", c.RunbookDigest, c.InventoryDigest, c.SameBatches)
	}
}

// TestCompareFaults: each fault is placed at its batch as the lab reads
// WHEN: an index, a name, the middle by default.
func TestCompareFaults(t *testing.T) {
	rh := tally(handRun())
	rec := rehearsed
	rec.Faults = []string{"vm-down:20%@1", "slow-vm:3s@b03-nlsh", "daemon-kill", "bgp-reset@middle", "link-down@9", "http-5xx@nope"}
	got := report.Compare(tally(handRun()), rh, rec).Faults
	want := []report.InjectedFault{{"vm-down:20%@1", 1, "b01-unn"}, {"slow-vm:3s@b03-nlsh", 3, "b03-nlsh"}, {"daemon-kill", 2, "b02-hsyk"},
		{"bgp-reset@middle", 2, "b02-hsyk"}, {"link-down@9", -1, ""}, {"http-5xx@nope", -1, ""}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("faults\n got %+v\nwant %+v", got, want)
	}

	// A record without faults as given: those the rehearsal's report
	// lists at a batch.
	rh.Rehearsal = &report.Rehearsal{Faults: []report.Fault{{Fault: "vm-down", When: "batch 3"}, {Fault: "retry", When: "after the run"}}}
	got = report.Compare(tally(handRun()), rh, rehearsed).Faults
	if want := []report.InjectedFault{{"vm-down@3", 3, "b03-nlsh"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("faults from the report\n got %+v\nwant %+v", got, want)
	}
}

// TestCompareWithoutReport: a record without the rehearsed run's report
// still tells whether the files and the outcome are the rehearsed ones.
func TestCompareWithoutReport(t *testing.T) {
	night := handRun()
	rollBack(night, 2, "policy")
	night.InventoryDigest = sha256Hex("other inventory")
	c := report.Compare(tally(night), nil, rehearsed)
	want := []string{
		"the inventory differs from the rehearsed one",
		"the rehearsal's record holds no report of the rehearsed run: only digests and outcome are compared",
		"the run ended partial tonight, all-moved at the rehearsal",
	}
	if !reflect.DeepEqual(c.Differences, want) || c.Batches != nil || c.Rehearsal != nil {
		t.Errorf("differences %q, batches %v, rehearsal %v", c.Differences, c.Batches, c.Rehearsal)
	}
	night.Comparison = c
	md := string(night.Markdown())
	for _, want := range []string{"- Outcome: partial tonight, all-moved at the rehearsal\n", "- Inventory: differs from the rehearsed one\n"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	if strings.Contains(md, "| Batch | Tonight |") {
		t.Error("markdown has a table of batches it did not compare")
	}
}

// compared is a run where batch 2 fails every gate round and is rolled
// back, beside a clean rehearsal of the same runbook in which a vm-down
// was injected at batch 3 (that did not fail its gates).
func compared(t *testing.T) *report.Report {
	t.Helper()
	night := build(t, newRun(t, 2), report.Input{})
	rh := build(t, newRun(t), report.Input{})
	rec := rehearsed
	rec.Faults = []string{"vm-down@3"}
	night.Comparison = report.Compare(night, rh, rec)
	return night
}

// section is the text of md from heading to the next heading of its
// level.
func section(md, heading string) string {
	i := strings.Index(md, heading)
	if i < 0 {
		return ""
	}
	s := md[i:]
	if j := strings.Index(s[len(heading):], "\n## "); j >= 0 {
		s = s[:len(heading)+j+1]
	}
	return s
}

func TestCompareMarkdown(t *testing.T) {
	rep := compared(t)
	md := string(rep.Markdown())
	sec := section(md, "\n## Against its rehearsal\n")
	for _, want := range []string{
		"Compared with the green rehearsal of helse-nord on 2026-03-13 22:10 UTC (all-moved, faults vm-down@3, took 1m48s), rehearsed from `runbooks/helse-nord/runbook.yaml`.\n",
		"- Runbook: the rehearsed one\n- Inventory: the rehearsed one\n",
		"- Outcome: partial tonight, all-moved at the rehearsal\n",
		"- Faults injected at the rehearsal: vm-down@3 (batch 3 b03-nlsh)\n",
		"- batch 2 b02-hsyk: rolled back by policy tonight, committed at the rehearsal\n",
		"| Batch | Tonight | Rehearsal | Gate rounds t/r | Failed t/r | Rollbacks t/r | Note |\n",
		"| 2 b02-hsyk | rolled back by policy in 4.2s | committed in 4s | 1/1 | 1/0 | 1/0 | rolled back by policy tonight, committed at the rehearsal; " +
			"1 gate round failed tonight (probe: vm-2a (10.64.2.10): tcp/443 connect: connection refused (+1 more)), none at the rehearsal |\n",
		"| 3 b03-nlsh | committed in 4s | committed in 4s | 1/1 | 0/0 | 0/0 | the rehearsal injected vm-down@3 here |\n",
		"Counts differ when they are not equal; durations count as different when the longer is more than 1.5× the shorter and more than 5s longer.\n",
	} {
		if !strings.Contains(sec, want) {
			t.Errorf("section lacks %q", want)
		}
	}
	// Right after the totals, where a reader looks first.
	if !strings.Contains(md, "- Daemon restarts: 0\n\n## Against its rehearsal\n") {
		t.Error("the comparison does not follow the totals")
	}
	golden.Check(t, filepath.Join("testdata", "TestCompareMarkdown.golden"), []byte(sec))

	// Without --compare the report has no such section.
	rep.Comparison = nil
	if strings.Contains(string(rep.Markdown()), "Against its rehearsal") {
		t.Error("a report not asked to compare has the section")
	}
}

func TestCompareHTML(t *testing.T) {
	rep := compared(t)
	page := rep.HTML()
	checkBalanced(t, page)
	s := string(page)
	i, j := strings.Index(s, `<section id="comparison">`), strings.Index(s, `<section id="timeline">`)
	if i < 0 || j < i {
		t.Fatalf("no comparison section before the timeline")
	}
	sec := s[i:j]
	for _, want := range []string{
		"<h2>Against its rehearsal</h2>",
		"<tr><th>Outcome</th><td>partial tonight, all-moved at the rehearsal</td></tr>",
		"<li>batch 2 b02-hsyk: rolled back by policy tonight, committed at the rehearsal</li>",
		`<tr class="compared" id="compare-2"><td>2 b02-hsyk</td><td>rolled back by policy in 4.2s</td><td>committed in 4s</td>` +
			`<td class="num">1/1</td><td class="num">1/0</td><td class="num">1/0</td><td class="warn">rolled back by policy tonight, committed at the rehearsal; ` +
			`1 gate round failed tonight (probe: vm-2a (10.64.2.10): tcp/443 connect: connection refused (&#43;1 more)), none at the rehearsal</td></tr>`,
		`<tr class="compared" id="compare-3"><td>3 b03-nlsh</td><td>committed in 4s</td><td>committed in 4s</td>` +
			`<td class="num">1/1</td><td class="num">0/0</td><td class="num">0/0</td><td>the rehearsal injected vm-down@3 here</td></tr>`,
	} {
		if !strings.Contains(sec, want) {
			t.Errorf("section lacks %q", want)
		}
	}
	rep.Comparison = nil
	if strings.Contains(string(rep.HTML()), `id="comparison"`) {
		t.Error("a report not asked to compare has the section")
	}
}

func TestCompareJSON(t *testing.T) {
	rep := compared(t)
	js, err := rep.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var back report.Report
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatalf("JSON does not read back: %v", err)
	}
	if !reflect.DeepEqual(back.Comparison, rep.Comparison) {
		t.Errorf("comparison round trip differs:\n got %+v\nwant %+v", back.Comparison, rep.Comparison)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(js, &top); err != nil {
		t.Fatal(err)
	}
	var c struct {
		Differences []string `json:"differences"`
		Batches     []struct {
			Index   int `json:"index"`
			Tonight struct {
				FailedRounds int    `json:"failed_rounds"`
				FirstFailure string `json:"first_failure"`
			} `json:"tonight"`
		} `json:"batches"`
	}
	if err := json.Unmarshal(top["comparison"], &c); err != nil {
		t.Fatalf("comparison: %v", err)
	}
	if len(c.Batches) != 4 || c.Batches[2].Tonight.FailedRounds != 1 || !strings.HasPrefix(c.Batches[2].Tonight.FirstFailure, "probe: vm-2a") || len(c.Differences) == 0 {
		t.Errorf("comparison as JSON: %s", top["comparison"])
	}

	// Without --compare the JSON is as it was: no comparison key.
	rep.Comparison = nil
	js, err = rep.JSON()
	if err != nil {
		t.Fatal(err)
	}
	if regexp.MustCompile(`"comparison"`).Match(js) {
		t.Error("a report not asked to compare has a comparison field")
	}
}
