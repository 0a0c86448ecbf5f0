package schedule

import (
	"bytes"
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/evidence"
	"github.com/cutover/cutover/cutover/plan"
	"github.com/cutover/cutover/cutover/report"
	"github.com/cutover/cutover/cutover/runbook"
	"github.com/cutover/cutover/internal/golden"
)

// base is the runbook every plan test starts from: three tenants, a
// canary and two batches, go/no-go before-start, after-canary and
// before-end.
const base = "../../runbook/testdata/base"

// loadPlan plans the base runbook with edits ({old, new}, applied in
// memory, so that the names in the output stay the same) and, if
// inventory is not empty, another inventory.
func loadPlan(t testing.TB, edits [][2]string, inventory string) *plan.Plan {
	t.Helper()
	rb, err := os.ReadFile(filepath.Join(base, "runbook.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	inv := []byte(inventory)
	if inventory == "" {
		if inv, err = os.ReadFile(filepath.Join(base, "inventory.csv")); err != nil {
			t.Fatal(err)
		}
	}
	text := string(rb)
	for _, e := range edits {
		if !strings.Contains(text, e[0]) {
			t.Fatalf("base runbook has no %q", e[0])
		}
		text = strings.Replace(text, e[0], e[1], 1)
	}
	pl, _, err := plan.Parse("base/runbook.yaml", []byte(text), "base/inventory.csv", inv)
	if err != nil {
		t.Fatal(err)
	}
	return pl
}

// t0 is when the synthetic rehearsals' runs start; now is when the test
// schedules are made.
var (
	t0  = time.Date(2026, 11, 28, 21, 0, 0, 0, time.UTC)
	now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
)

func sec(n int) time.Duration { return time.Duration(n) * time.Second }

// timing is a batch of a synthetic rehearsal: its phase, and when it
// started and was decided, in seconds from the run's start.
type timing struct {
	phase        engine.BatchPhase
	start, end   int
	rerunStarted int // > 0: an earlier start of the same try
}

// record is a green rehearsal of pl's bytes on day (from t0), whose
// report has the batches as given and the waits at go/no-go points.
func record(pl *plan.Plan, day int, batches []timing, waits ...report.Wait) *evidence.Record {
	started := t0.AddDate(0, 0, day)
	rep := &report.Report{Runbook: pl.Runbook.File, Started: started, Waits: waits}
	for i, b := range batches {
		rb := report.Batch{Index: i, Name: pl.Batches[i].Name, Phase: b.phase}
		if b.phase != engine.BatchPending {
			rb.Started = started.Add(sec(b.start))
			rb.Decided = started.Add(sec(b.end))
		}
		if b.rerunStarted > 0 {
			rb.Reruns = []report.Rerun{{Started: started.Add(sec(b.rerunStarted))}}
		}
		rep.Batches = append(rep.Batches, rb)
	}
	return &evidence.Record{Version: evidence.Version, RehearsalRecord: report.RehearsalRecord{Runbook: pl.Runbook.Name,
		File: pl.Runbook.File, RunbookDigest: pl.Runbook.Digest, InventoryDigest: pl.Inventory.Digest,
		Rehearsed: started, Took: 5 * time.Minute, Green: true, Outcome: engine.OutcomeAllMoved}, Report: rep}
}

// wait is a wait at a go/no-go point, in seconds from the run's start.
func wait(day int, point string, from, to int) report.Wait {
	started := t0.AddDate(0, 0, day)
	return report.Wait{From: started.Add(sec(from)), To: started.Add(sec(to)), Point: point, Why: "go/no-go at " + point}
}

func TestEstimate(t *testing.T) {
	tests := []struct {
		name  string
		edits [][2]string
		want  Estimate
	}{
		{"base", nil, Estimate{Least: sec(1), Ready: sec(4), Converge: sec(30), Gates: sec(60), Hold: sec(1)}},
		{"slow probe, readiness off", [][2]string{
			{"{kind: probe, min_healthy: 99%}", "{kind: probe, rise: 3, interval: 2s, within: 90s}"},
			{"hold: 1s", "hold: 30s\nreadiness: off"}},
			Estimate{Least: sec(4), Converge: sec(30), Gates: sec(90), Hold: sec(30)}},
		{"prometheus slower than probe, no bgp gate", [][2]string{
			{"  - {kind: bgp, timeout: 30s}\n", ""},
			{"{kind: probe, min_healthy: 99%}", "{kind: probe}\n  - {kind: prometheus, url: \"http://127.0.0.1:9090\", query: up, op: \">\", value: 0, rise: 4, interval: 5s, within: 2m}"}},
			Estimate{Least: sec(15), Ready: sec(4), Gates: 2 * time.Minute, Hold: sec(1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NewEstimate(loadPlan(t, tt.edits, "").Runbook)
			if got != tt.want {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestEstimatedWindows checks the estimate's rule batch by batch on the
// base runbook: 1s to 1m34s a batch, hold 1s.
func TestEstimatedWindows(t *testing.T) {
	s, err := New(loadPlan(t, nil, ""), Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ startMin, startMax, endMin, endMax int }{
		{0, 4, 1, 94},    // ready 4s, then converge 30s + within 60s
		{2, 99, 3, 189},  // 1+1 ; 94+1+4 ; +1 ; +90
		{4, 194, 5, 284}, //
	}
	for i, b := range s.Batches {
		w := want[i]
		if b.StartMin != sec(w.startMin) || b.StartMax != sec(w.startMax) || b.EndMin != sec(w.endMin) || b.EndMax != sec(w.endMax) || b.Rehearsed != 0 {
			t.Errorf("%s: %v %v %v %v (rehearsed %d), want %+v", b.Name, b.StartMin, b.StartMax, b.EndMin, b.EndMax, b.Rehearsed, w)
		}
	}
	if got := s.Times.String(); got != "estimated from the runbook: " {
		// No Evidence given: no reason either; the CLI always reads a store.
		t.Errorf("times %q", got)
	}
}

// TestRehearsedWindows checks that a batch's window is the minimum and
// maximum of its start and end across the rehearsals that committed it,
// with waits at go/no-go points taken out, and that a batch no
// rehearsal committed is estimated from the one before.
func TestRehearsedWindows(t *testing.T) {
	pl := loadPlan(t, nil, "")
	c, m := engine.BatchCommitted, engine.BatchRolledBack
	recs := []*evidence.Record{ // newest first, as the store gives them
		record(pl, 3, []timing{{c, 8, 50, 5}, {m, 60, 90, 0}, {c, 200, 260, 0}}),
		// Five minutes at after-canary: b01 ran at 345-420s, b02 at 430-500s.
		record(pl, 2, []timing{{c, 12, 35, 0}, {c, 345, 420, 0}, {c, 430, 500, 0}}, wait(2, "after-canary", 36, 336)),
		record(pl, 0, []timing{{c, 10, 40, 0}, {c, 50, 100, 0}, {c, 110, 150, 0}}),
	}
	other := record(pl, 1, []timing{{c, 1, 2, 0}, {c, 3, 4, 0}})
	s, err := New(pl, Options{Now: now, Evidence: Evidence{Dir: "/rehearsals", Records: append(recs, other)}})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ startMin, startMax, endMin, endMax, n int }{
		{5, 12, 35, 50, 3},    // the rerun at 5s is the first start
		{45, 50, 100, 120, 2}, // rolled back on day 3: says nothing
		{110, 200, 150, 260, 3},
	}
	for i, b := range s.Batches {
		w := want[i]
		if b.StartMin != sec(w.startMin) || b.StartMax != sec(w.startMax) || b.EndMin != sec(w.endMin) || b.EndMax != sec(w.endMax) || b.Rehearsed != w.n {
			t.Errorf("%s: %v %v %v %v (rehearsed %d), want %+v", b.Name, b.StartMin, b.StartMax, b.EndMin, b.EndMax, b.Rehearsed, w)
		}
	}
	if got, want := s.Times.String(), "from 3 green rehearsals, 2026-11-28 … 2026-12-01"; got != want {
		t.Errorf("times %q, want %q", got, want)
	}
	wantNote := "left out the green rehearsal of base on 2026-11-29 21:00 UTC (all-moved, took 5m0s): its report has 2 batches, the plan 3"
	if len(s.Notes) != 1 || s.Notes[0] != wantNote {
		t.Errorf("notes %q, want %q", s.Notes, wantNote)
	}

	// No rehearsal committed batch-02: estimated from batch-01's ends.
	recs = []*evidence.Record{record(pl, 0, []timing{{c, 10, 40, 0}, {c, 50, 100, 0}, {m, 110, 150, 0}})}
	s, err = New(pl, Options{Now: now, Evidence: Evidence{Dir: "/rehearsals", Records: recs}})
	if err != nil {
		t.Fatal(err)
	}
	b := s.Batches[2]
	// start: 100s + hold 1s (+ readiness 4s), end: + 1s, + 30s + 60s.
	if b.Rehearsed != 0 || b.StartMin != sec(101) || b.StartMax != sec(105) || b.EndMin != sec(102) || b.EndMax != sec(195) {
		t.Errorf("batch-02 %+v, want estimated 101s-195s", *b)
	}
	if b.Source() != "estimate" || s.Batches[1].Source() != "1 rehearsal" {
		t.Errorf("sources %q %q", b.Source(), s.Batches[1].Source())
	}
}

func TestReadEvidence(t *testing.T) {
	pl := loadPlan(t, nil, "")
	c := engine.BatchCommitted
	dir := t.TempDir()
	store := evidence.Store{Dir: dir}
	green := record(pl, 0, []timing{{c, 10, 40, 0}, {c, 50, 100, 0}, {c, 110, 150, 0}})
	failed := record(pl, 1, []timing{{c, 10, 40, 0}, {c, 50, 100, 0}, {c, 110, 150, 0}})
	failed.Green = false
	other := record(pl, 2, nil)
	other.InventoryDigest = strings.Repeat("0", 64)
	for _, r := range []*evidence.Record{green, failed, other} {
		if _, err := store.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	ev := ReadEvidence(dir, pl)
	if len(ev.Records) != 1 || !ev.Records[0].Rehearsed.Equal(green.Rehearsed) || ev.Why != "" {
		t.Errorf("got %d records (%q), want the green one", len(ev.Records), ev.Why)
	}

	// The plan of another inventory finds none, and says what is there.
	inv, err := os.ReadFile(filepath.Join(base, "inventory.csv"))
	if err != nil {
		t.Fatal(err)
	}
	pl2 := loadPlan(t, nil, string(inv)+"g4,10.64.0.40,gamma,3,\n")
	if err := os.WriteFile(filepath.Join(dir, "broken.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ dir, want string }{
		{dir, "no rehearsal of these bytes in " + dir + " (4 records: 3 of other bytes, 0 failed, 1 unreadable)"},
		{filepath.Join(dir, "missing"), "no rehearsal of these bytes in " + filepath.Join(dir, "missing")},
		{filepath.Join(dir, "broken.json"), "cannot read the rehearsal records: rehearsal records: open " + filepath.Join(dir, "broken.json") + ": not a directory"},
	}
	for _, tt := range tests {
		ev := ReadEvidence(tt.dir, pl2)
		if len(ev.Records) != 0 || ev.Why != tt.want {
			t.Errorf("ReadEvidence(%s): %d records, why %q\nwant %q", tt.dir, len(ev.Records), ev.Why, tt.want)
		}
	}
}

// TestOutputs renders the base runbook's schedules in every format to
// golden files (go test -update rewrites them).
func TestOutputs(t *testing.T) {
	pl := loadPlan(t, nil, "")
	c := engine.BatchCommitted
	rehearsed := Evidence{Dir: "/var/lib/cutover/rehearsals", Records: []*evidence.Record{
		record(pl, 3, []timing{{c, 8, 50, 5}, {c, 60, 90, 0}, {c, 200, 260, 0}}),
		record(pl, 0, []timing{{c, 10, 40, 0}, {c, 50, 100, 0}, {c, 110, 150, 0}}),
	}}
	none := Evidence{Dir: "/var/lib/cutover/rehearsals", Why: "no rehearsal of these bytes in /var/lib/cutover/rehearsals"}
	start := time.Date(2026, 12, 3, 23, 0, 0, 0, time.FixedZone("", 3600))
	windowed := loadPlan(t, [][2]string{{"hold: 1s", "hold: 1s\nwindow: {start: \"23:00\", end: \"23:03\", timezone: Europe/Oslo}"}}, "")
	tests := []struct {
		name   string
		pl     *plan.Plan
		o      Options
		format string
	}{
		{"estimate.txt", pl, Options{Evidence: none}, "text"},
		{"estimate-start.txt", pl, Options{Evidence: none, Start: start}, "text"},
		{"rehearsed.txt", pl, Options{Evidence: rehearsed, Start: start}, "text"},
		{"rehearsed-beta.txt", pl, Options{Evidence: rehearsed, Tenants: []string{"beta"}}, "text"},
		{"window.txt", windowed, Options{Evidence: none}, "text"},
		{"rehearsed.csv", pl, Options{Evidence: rehearsed, Start: start}, "csv"},
		{"estimate.csv", pl, Options{Evidence: none}, "csv"},
		{"rehearsed.json", pl, Options{Evidence: rehearsed, Start: start}, "json"},
		{"window.json", windowed, Options{Evidence: none}, "json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.Now = now
			s, err := New(tt.pl, tt.o)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			switch tt.format {
			case "csv":
				err = s.WriteCSV(&b)
			case "json":
				err = s.WriteJSON(&b)
			default:
				err = s.WriteText(&b)
			}
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", tt.name), b.Bytes())
		})
	}
}

func TestUnknownTenant(t *testing.T) {
	_, err := New(loadPlan(t, nil, ""), Options{Now: now, Tenants: []string{"beta", "delta"}})
	var ute *UnknownTenantError
	if !errors.As(err, &ute) || err.Error() != `tenant "delta": not in the inventory (its tenants: alpha, beta, gamma)` {
		t.Errorf("got %v", err)
	}
}

// TestEveryVMOnce schedules the 2,000 VMs of helse-nord: every VM of
// every tenant is in its tenant's schedule exactly once, in the batch the
// plan puts it in, and the CSV says the same.
func TestEveryVMOnce(t *testing.T) {
	pl, _, err := plan.Load("../../../runbooks/helse-nord/runbook.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(pl, Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	planned := map[*runbook.VM]int{}
	for _, b := range pl.Batches {
		for _, vm := range b.VMs {
			planned[vm] = b.Index
		}
	}
	seen := map[*runbook.VM]int{}
	if len(s.Tenants) != 6 {
		t.Fatalf("%d tenants, want 6", len(s.Tenants))
	}
	for _, tn := range s.Tenants {
		n := 0
		last := -1
		for _, p := range tn.Batches {
			if p.Batch.Index <= last {
				t.Errorf("%s: batch %d after %d", tn.Name, p.Batch.Index, last)
			}
			last = p.Batch.Index
			if p.Batch != s.Batches[p.Batch.Index] {
				t.Errorf("%s: part of batch %d is not the schedule's batch", tn.Name, p.Batch.Index)
			}
			for _, vm := range p.VMs {
				seen[vm]++
				n++
				if vm.Tenant != tn.Name {
					t.Errorf("%s in the schedule of %s", vm.Name, tn.Name)
				}
				if planned[vm] != p.Batch.Index {
					t.Errorf("%s: scheduled in batch %d, planned in %d", vm.Name, p.Batch.Index, planned[vm])
				}
			}
		}
		if n != tn.VMs {
			t.Errorf("%s: %d VMs in its batches, counted %d", tn.Name, n, tn.VMs)
		}
	}
	for _, vm := range pl.Inventory.VMs {
		if seen[vm] != 1 {
			t.Errorf("%s of %s scheduled %d times", vm.Name, vm.Tenant, seen[vm])
		}
	}
	if len(seen) != 2000 || len(pl.Inventory.VMs) != 2000 {
		t.Errorf("%d VMs scheduled of %d", len(seen), len(pl.Inventory.VMs))
	}

	var b bytes.Buffer
	if err := s.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	inCSV := map[string]string{} // VM → "tenant batch"
	for _, r := range rows[1:] {
		names := strings.Fields(r[16])
		if strconv.Itoa(len(names)) != r[4] {
			t.Errorf("row %v: %d names, vms %s", r[:6], len(names), r[4])
		}
		for _, n := range names {
			if _, dup := inCSV[n]; dup {
				t.Errorf("%s in two rows", n)
			}
			inCSV[n] = r[0] + " " + r[1]
		}
	}
	for vm, i := range planned {
		if got, want := inCSV[vm.Name], vm.Tenant+" "+strconv.Itoa(i); got != want {
			t.Errorf("%s in CSV row %q, want %q", vm.Name, got, want)
		}
	}
}

// TestWindowAgrees checks the window's openings the schedule reads
// (ChangeWindow.Around, Next) against ChangeWindow.Open, which the engine
// obeys, every 10 minutes of two weeks, across a change of summer time.
func TestWindowAgrees(t *testing.T) {
	for _, w := range []string{
		`{start: "23:00", end: "05:00", timezone: Europe/Oslo}`,
		`{start: "22:30", end: "24:00", timezone: Europe/Oslo, days: [fri, sat]}`,
		`{start: "01:00", end: "03:30", timezone: America/New_York, days: [sun]}`,
	} {
		pl := loadPlan(t, [][2]string{{"hold: 1s", "hold: 1s\nwindow: " + w}}, "")
		cw := pl.Runbook.Window
		for at := time.Date(2026, 10, 20, 0, 0, 0, 0, time.UTC); at.Before(time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)); at = at.Add(10 * time.Minute) {
			open, _ := cw.Around(at)
			if isOpen := pl.Runbook.Window.Open(at) == nil; isOpen != !open.IsZero() {
				t.Fatalf("window %s at %s: runbook says open %v, schedule %v", w, at, isOpen, !open.IsZero())
			}
			next := cw.Next(at)
			if next.Before(at) || pl.Runbook.Window.Open(next) != nil || pl.Runbook.Window.Open(next.Add(-time.Minute)) == nil && !next.Equal(at) {
				t.Fatalf("window %s at %s: next opening %s", w, at, next)
			}
		}
	}
}

// TestWindowStart takes the start from the change window and marks the
// batches that may start after it closes.
func TestWindowStart(t *testing.T) {
	pl := loadPlan(t, [][2]string{{"hold: 1s", "hold: 1s\nwindow: {start: \"23:00\", end: \"23:03\", timezone: Europe/Oslo}"}}, "")
	s, err := New(pl, Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	oslo, _ := time.LoadLocation("Europe/Oslo")
	if want := time.Date(2026, 12, 1, 23, 0, 0, 0, oslo); !s.Start.Equal(want) || s.StartFrom != StartWindow || !s.WindowClose.Equal(want.Add(3*time.Minute)) {
		t.Errorf("start %s (%s), closes %s", s.Start, s.StartFrom, s.WindowClose)
	}
	// batch-02 starts at the latest at 3m14s: after 23:03.
	if s.Batches[1].PastClose || !s.Batches[2].PastClose {
		t.Errorf("past close: %v %v", s.Batches[1].PastClose, s.Batches[2].PastClose)
	}
	// A start outside the window is kept, with a note.
	s, err = New(pl, Options{Now: now, Start: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	want := "the start 2026-12-03 13:00:00 is outside the change window 23:00-23:03 Europe/Oslo: the run waits for it to open at 2026-12-03 23:00:00, and every time here moves with it"
	if len(s.Notes) != 1 || s.Notes[0] != want {
		t.Errorf("notes %q\nwant %q", s.Notes, want)
	}
}
