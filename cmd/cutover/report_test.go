package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/evidence"
	"github.com/cutover/cutover/cutover/report"
)

// journalAPI serves GET /v1/journal with es, and refuses everything else.
func journalAPI(t *testing.T, es []engine.JournalEntry) string {
	return serveAPI(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method != http.MethodGet || r.URL.Path != "/v1/journal" {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":"not here"}`))
			return
		}
		_ = json.NewEncoder(w).Encode(es)
	})
}

func hexDigest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

var (
	testRunbookDigest   = hexDigest("runbook")
	testInventoryDigest = hexDigest("inventory")
)

// twoBatches is the journal of a run of two batches from start, each
// taking 5s; with failing, batch 1 fails its gates and the policy rolls
// it back.
func twoBatches(t *testing.T, start time.Time, failing bool) []engine.JournalEntry {
	t.Helper()
	j := &engine.MemJournal{}
	at := start
	rec := func(d time.Duration, typ string, v any) {
		at = at.Add(d)
		if _, err := j.RecordAt(typ, v, at); err != nil {
			t.Fatal(err)
		}
	}
	rec(0, engine.RecRunStart, engine.RunStartRecord{RunID: start.Format("20060102T150405Z"), Runbook: "runbooks/helse-nord/runbook.yaml",
		Operator: "alice", RunbookDigest: testRunbookDigest, InventoryDigest: testInventoryDigest,
		Batches: []engine.BatchState{{Index: 0, Name: "b00-canary", VMs: 10, Prefixes: 1, Phase: engine.BatchPending},
			{Index: 1, Name: "b01-unn", VMs: 200, Prefixes: 1, Phase: engine.BatchPending}}})
	rec(time.Second, engine.RecPhase, engine.PhaseRecord{Phase: engine.PhaseRunning})
	probe := []engine.VerdictRecord{{Gate: "probe", Pass: true}}
	refused := []engine.VerdictRecord{{Gate: "probe", Reasons: []string{"vm-1a 10.64.1.10: tcp 80: connection refused"}}}
	moved := []int{}
	for i := range 2 {
		rec(time.Second, engine.RecBatch, engine.BatchRecord{Batch: i, Phase: engine.BatchAnnouncing})
		rec(200*time.Millisecond, engine.RecApplied, engine.ChangeRecord{Moved: append(moved, i), Batch: i, Op: "announce", Took: 200 * time.Millisecond})
		rec(800*time.Millisecond, engine.RecBatch, engine.BatchRecord{Batch: i, Phase: engine.BatchGating})
		if failing && i == 1 {
			rec(3*time.Second, engine.RecGates, engine.GatesRecord{Batch: i, Took: 3 * time.Second, Verdicts: refused})
			why := "gate failed: " + engine.FailedGates(refused)
			rec(0, engine.RecBatch, engine.BatchRecord{Batch: i, Phase: engine.BatchRollingBack, Reason: why})
			rec(200*time.Millisecond, engine.RecApplied, engine.ChangeRecord{Moved: moved, Batch: i, Op: "rollback", Took: 200 * time.Millisecond})
			rec(0, engine.RecBatch, engine.BatchRecord{Batch: i, Phase: engine.BatchRolledBack, Reason: why, By: "policy", Took: 200 * time.Millisecond})
			continue
		}
		rec(3*time.Second, engine.RecGates, engine.GatesRecord{Batch: i, Pass: true, Took: 3 * time.Second, Verdicts: probe})
		rec(0, engine.RecBatch, engine.BatchRecord{Batch: i, Phase: engine.BatchCommitted})
		moved = append(moved, i)
	}
	rec(time.Second, engine.RecPhase, engine.PhaseRecord{Phase: engine.PhaseDone})
	return j.Entries()
}

// rehearsalFile writes the record of a clean rehearsal of twoBatches
// with a vm-down injected at batch 1, and returns its path.
func rehearsalFile(t *testing.T) string {
	t.Helper()
	at := time.Date(2026, 3, 13, 22, 10, 0, 0, time.UTC)
	rep, err := report.Build(report.Input{Entries: twoBatches(t, at, false)})
	if err != nil {
		t.Fatal(err)
	}
	file, err := evidence.Store{Dir: t.TempDir()}.Write(&evidence.Record{RehearsalRecord: report.RehearsalRecord{Runbook: "helse-nord",
		File: "runbooks/helse-nord/runbook.yaml", RunbookDigest: testRunbookDigest, InventoryDigest: testInventoryDigest,
		Rehearsed: at, Took: 48 * time.Second, Green: true, Outcome: rep.Outcome, Faults: []string{"vm-down@1"}}, Report: rep})
	if err != nil {
		t.Fatal(err)
	}
	return file
}

func TestReportCompare(t *testing.T) {
	sock := journalAPI(t, twoBatches(t, time.Date(2026, 3, 14, 23, 0, 0, 0, time.UTC), true))
	file := rehearsalFile(t)

	out, _, code, err := run(t, "report", "--socket", sock, "--compare", file)
	if code != 0 || err != nil {
		t.Fatalf("exit %d (%v)", code, err)
	}
	for _, want := range []string{
		"\n## Against its rehearsal\n\nCompared with the green rehearsal of helse-nord on 2026-03-13 22:10 UTC (all-moved, faults vm-down@1, took 48s)",
		"- batch 1 b01-unn: rolled back by policy tonight, committed at the rehearsal; the rehearsal injected vm-down@1 here\n",
		"- batch 1 b01-unn: 1 gate round failed tonight (probe: vm-1a 10.64.1.10: tcp 80: connection refused), none at the rehearsal; the rehearsal injected vm-down@1 here\n",
		"| 1 b01-unn | rolled back by policy in 4.2s | committed in 4s | 1/1 | 1/0 | 1/0 |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}

	out, _, code, err = run(t, "report", "--socket", sock, "--compare", file, "-o", "json")
	var got struct {
		Outcome    engine.Outcome     `json:"outcome"`
		Comparison *report.Comparison `json:"comparison"`
	}
	if code != 0 || err != nil || json.Unmarshal([]byte(out), &got) != nil || got.Comparison == nil {
		t.Fatalf("-o json: exit %d (%v)\n%s", code, err, out)
	}
	if got.Outcome != engine.OutcomePartial || got.Comparison.Rehearsal.Outcome != engine.OutcomeAllMoved || len(got.Comparison.Differences) != 5 {
		t.Errorf("-o json: outcome %s, comparison %+v", got.Outcome, got.Comparison)
	}

	// Without --compare the report is as it was.
	out, _, _, _ = run(t, "report", "--socket", sock, "-o", "json")
	if strings.Contains(out, `"comparison"`) {
		t.Error("a report not asked to compare has a comparison")
	}
}

// TestReportCompareBadFile: a record that cannot be read is bad input,
// told before the daemon is asked (there is none here).
func TestReportCompareBadFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := func(extra string) string {
		return `{"version": 1, "runbook": "helse-nord", "runbook_digest": "` + testRunbookDigest + `", "inventory_digest": "` +
			testInventoryDigest + `", "rehearsed": "2026-03-13T22:10:00Z", "took": 0, "green": true, "outcome": "all-moved"` + extra + "}"
	}
	none := filepath.Join(dir, "none.sock")
	missing := filepath.Join(dir, "missing.json")
	cut := write("cut.json", `{"version": 1, "runbook": `)
	unknown := write("unknown.json", good(`, "colour": "green"`))
	v2 := write("v2.json", strings.Replace(good(""), `"version": 1`, `"version": 2`, 1))
	noDigest := write("nodigest.json", strings.Replace(good(""), testRunbookDigest, "abc", 1))
	for _, tt := range []struct {
		name, file, want string
	}{
		{"no such file", missing, "--compare: open " + missing + ": no such file or directory"},
		{"a directory", dir, "--compare: " + dir + ": not a regular file"},
		{"cut short", cut, "--compare: " + cut + ": decode rehearsal record: unexpected EOF"},
		{"unknown field", unknown, "--compare: " + unknown + `: decode rehearsal record: json: unknown field "colour"`},
		{"another version", v2, "--compare: " + v2 + ": rehearsal record: record version 2: this cutover reads version 1"},
		{"not a digest", noDigest, "--compare: " + noDigest + `: rehearsal record: runbook_digest "abc": want 64 hex digits`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, _, code, err := run(t, "report", "--socket", none, "--compare", tt.file)
			if code != exitUsage || err == nil || err.Error() != tt.want || out != "" {
				t.Errorf("exit %d (%v), stdout %q; want exit %d (%s)", code, err, out, exitUsage, tt.want)
			}
		})
	}
}
