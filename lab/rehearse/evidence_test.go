package rehearse

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/evidence"
	"github.com/cutover/cutover/cutover/plan"
)

// journalOf is the journal of a finished run of pl that moved every
// batch: enough for a report.
func journalOf(t *testing.T, pl *plan.Plan, at time.Time) []engine.JournalEntry {
	t.Helper()
	var batches []engine.BatchState
	for i, b := range pl.Batches {
		batches = append(batches, engine.BatchState{Index: i, Name: b.Name, VMs: len(b.VMs), Phase: engine.BatchPending})
	}
	var es []engine.JournalEntry
	for i, rec := range []struct {
		typ string
		v   any
	}{
		{engine.RecRunStart, engine.RunStartRecord{RunID: "20261201T221000Z", Runbook: pl.Runbook.File, Digest: pl.Digest,
			Operator: "rehearsal", RunbookDigest: pl.Runbook.Digest, InventoryDigest: pl.Inventory.Digest, Batches: batches}},
		{engine.RecPhase, engine.PhaseRecord{Phase: engine.PhaseDone, Result: "every batch committed"}},
	} {
		data, err := json.Marshal(rec.v)
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, engine.JournalEntry{Seq: uint64(i + 1), Time: at.Add(time.Duration(i) * time.Second), Type: rec.typ, Data: data})
	}
	return es
}

// TestWriteRecords writes the records of a two-step chain: one green, one
// not, each into the store and beside its report, with the faults as given
// and the digests of the rehearsed bytes. A store that cannot be written
// is a problem of the step, and the step's verdict stays the run's.
func TestWriteRecords(t *testing.T) {
	pl, _, err := plan.Load("testdata/small.yaml")
	if err != nil {
		t.Fatal(err)
	}
	began := time.Date(2026, 12, 1, 22, 10, 0, 0, time.UTC)
	kill, _ := ParseFault("daemon-kill@2")
	green := &Result{Runbook: "testdata/small.yaml", OK: true, Outcome: engine.OutcomeAllMoved, Took: 108 * time.Second}
	failed := &Result{Runbook: "testdata/small.yaml", OK: false, Outcome: engine.OutcomePartial, Took: 90 * time.Second,
		Problems: []string{"outcome done; committed [0 2 3]; rolled back [1]"}}
	reports := t.TempDir()
	steps := []*stepRecord{
		{o: Options{Runbook: "testdata/small.yaml", Faults: []Fault{kill}, ReportDir: filepath.Join(reports, "1")}, pl: pl, began: began, res: green,
			in: &ReportInput{Entries: journalOf(t, pl, began), RunbookPath: "testdata/small.yaml", RunbookDigest: pl.Runbook.Digest,
				InventoryDigest: pl.Inventory.Digest, Result: green}},
		{o: Options{Runbook: "testdata/small.yaml"}, pl: pl, began: began.Add(time.Minute), res: failed},
	}
	store := filepath.Join(t.TempDir(), "rehearsals")
	r := &rehearsal{o: Options{EvidenceDir: store}}
	r.writeRecords(steps)

	for _, res := range []*Result{green, failed} {
		if filepath.Dir(res.Evidence) != store {
			t.Fatalf("record of %s at %q, want in %s (problems %q)", res.Runbook, res.Evidence, store, res.Problems)
		}
	}
	rec, err := evidence.Load(green.Evidence)
	if err != nil {
		t.Fatal(err)
	}
	want := "green rehearsal of rehearse-small on 2026-12-01 22:10 UTC (all-moved, faults daemon-kill@2, took 1m48s)"
	if got := rec.String(); got != want {
		t.Errorf("record %q, want %q", got, want)
	}
	if rec.RunbookDigest != pl.Runbook.Digest || rec.InventoryDigest != pl.Inventory.Digest || rec.File != "testdata/small.yaml" {
		t.Errorf("record of %s: digests %s %s, want the rehearsed bytes' %s %s", rec.File, rec.RunbookDigest, rec.InventoryDigest,
			pl.Runbook.Digest, pl.Inventory.Digest)
	}
	if rec.Report == nil || len(rec.Report.Batches) != len(pl.Batches) || len(rec.Problems) != 0 {
		t.Errorf("record's report %v, problems %q: want the run's %d batches and no problem", rec.Report, rec.Problems, len(pl.Batches))
	}
	beside := filepath.Join(reports, "1", EvidenceFile)
	if copy, err := evidence.Load(beside); err != nil || copy.String() != want || !slices.Contains(green.Reports, beside) {
		t.Errorf("evidence.json beside the report: %v, %v; reports %q", copy, err, green.Reports)
	}
	st, err := evidence.Store{Dir: store}.Lookup(pl.Runbook.Name, pl.Runbook.Digest, pl.Inventory.Digest)
	if err != nil || st.Green == nil || !st.Green.Rehearsed.Equal(began) {
		t.Errorf("Lookup = %+v, %v: want the green step's record, not the later failed one", st, err)
	}
	bad, err := evidence.Load(failed.Evidence)
	if err != nil || bad.Green || bad.Report != nil || !slices.Equal(bad.Problems, failed.Problems) {
		t.Errorf("failed step's record %+v, %v: want not green, no report (no journal), its problems", bad, err)
	}

	// A store that cannot be written: a problem, the verdict unchanged.
	blocked := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocked, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	res := &Result{Runbook: "testdata/small.yaml", OK: true, Outcome: engine.OutcomeAllMoved}
	r = &rehearsal{o: Options{EvidenceDir: filepath.Join(blocked, "rehearsals")}}
	r.writeRecords([]*stepRecord{{o: Options{Runbook: "testdata/small.yaml"}, pl: pl, began: began, res: res}})
	if !res.OK || res.Evidence != "" || len(res.Problems) != 1 ||
		!strings.HasPrefix(res.Problems[0], "write the rehearsal's record: rehearsal records: mkdir "+blocked+": not a directory") {
		t.Errorf("unwritable store: OK %v, evidence %q, problems %q; want OK kept and the failure as the one problem", res.OK, res.Evidence, res.Problems)
	}
}

// checkRecord checks the record a rehearsal of runbook left in the store
// dir: green, of the rehearsed bytes, with the faults as given and the
// run's report; it is the green rehearsal Lookup finds.
func checkRecord(t *testing.T, dir string, res *Result, runbook string, faults ...string) {
	t.Helper()
	pl, _, err := plan.Load(runbook)
	if err != nil {
		t.Fatal(err)
	}
	st, err := evidence.Store{Dir: dir}.Lookup(pl.Runbook.Name, pl.Runbook.Digest, pl.Inventory.Digest)
	if err != nil || st.Green == nil {
		t.Fatalf("no green record of %s in %s (%v); the rehearsal's: %q", runbook, dir, err, res.Evidence)
	}
	rec, err := evidence.Load(res.Evidence)
	if err != nil {
		t.Fatal(err)
	}
	batches := -1 // no report
	if rec.Report != nil {
		batches = len(rec.Report.Batches)
	}
	if !rec.Rehearsed.Equal(st.Green.Rehearsed) || rec.Outcome != res.FinalOutcome() || !slices.Equal(rec.Faults, faults) ||
		batches != len(pl.Batches) || len(rec.Edges) == 0 || rec.Took != res.Took {
		t.Errorf("record %s: %s, faults %q, edges %q, %d batches in its report; want outcome %s, faults %q, %d batches",
			res.Evidence, rec, rec.Faults, rec.Edges, batches, res.FinalOutcome(), faults, len(pl.Batches))
	}
	t.Logf("evidence: %s: %s", res.Evidence, rec)
}
