package daemon

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/evidence"
	"github.com/cutover/cutover/cutover/plan"
	"github.com/cutover/cutover/cutover/report"
	"github.com/cutover/cutover/internal/logcheck"
)

// rehearsedRunbook copies the daemon tests' runbook and inventory into a
// directory of their own, with extra lines appended to the runbook, and
// returns the runbook's path.
func rehearsedRunbook(t *testing.T, extra string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"runbook.yaml", "inventory.csv"} {
		data, err := os.ReadFile(filepath.Join("testdata/daemon", f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "runbook.yaml" {
			data = append(data, extra...)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "runbook.yaml")
}

// digestsOf are the runbook and inventory digests of the files as they
// are now: what a run request of them carries.
func digestsOf(t *testing.T, path string) (rb, inv string) {
	t.Helper()
	snap, err := plan.ReadSnapshot(path)
	if err != nil {
		t.Fatal(err)
	}
	pl, _, err := snap.Plan()
	if err != nil {
		t.Fatal(err)
	}
	return pl.Runbook.Digest, pl.Inventory.Digest
}

// TestRequireRehearsal starts a runbook with require_rehearsal against a
// store of rehearsal records: refused while no green rehearsal of exactly
// its bytes is on record, with what differs, and before anything is
// touched; accepted once there is one, which the run's journal names.
func TestRequireRehearsal(t *testing.T) {
	ctx := context.Background()
	rb := rehearsedRunbook(t, "require_rehearsal: true\n")
	inv := filepath.Join(filepath.Dir(rb), "inventory.csv")
	rbDigest, invDigest := digestsOf(t, rb)
	ev := filepath.Join(t.TempDir(), "rehearsals")
	h := openDaemonConfig(t, Config{StateDir: t.TempDir(), Backends: &FakeBackends{}, Log: zerolog.New(logcheck.Writer(t)), EvidenceDir: ev})

	at := time.Date(2026, 12, 1, 22, 10, 0, 0, time.UTC)
	write := func(rec evidence.Record) {
		t.Helper()
		if rec.Runbook == "" {
			rec.Runbook = "daemon-test"
		}
		if _, err := (evidence.Store{Dir: ev}).Write(&rec); err != nil {
			t.Fatal(err)
		}
	}
	refused := func(why string) string {
		return "runbook requires a green rehearsal of exactly these bytes: none on record in " + ev + " (" + why +
			"); rehearse it: cutover lab rehearse " + rb
	}
	other := strings.Repeat("ab", 32)
	for _, tt := range []struct {
		name   string
		before func() // what the store holds or the files are, from now on
		want   string
	}{
		{"no store", func() {}, refused("no rehearsal of daemon-test on record")},
		{"another runbook's green rehearsal", func() {
			write(evidence.Record{RehearsalRecord: report.RehearsalRecord{Runbook: "other", RunbookDigest: other, InventoryDigest: other, Rehearsed: at, Green: true}})
		}, refused("no rehearsal of daemon-test on record")},
		{"failed rehearsal of these bytes", func() {
			write(evidence.Record{RehearsalRecord: report.RehearsalRecord{RunbookDigest: rbDigest, InventoryDigest: invDigest, Rehearsed: at,
				Outcome: engine.OutcomePartial}, Problems: []string{"outcome done; committed [0 2 3]; rolled back [1]; the policy rollback-batch promised every batch committed"}})
		}, refused("no green rehearsal of daemon-test on record (1 failed); the rehearsal of these bytes on 2026-12-01 22:10 UTC failed: " +
			"outcome done; committed [0 2 3]; rolled back [1]; the policy rollback-batch promised every batch committed")},
		{"green rehearsal of another runbook's bytes", func() {
			write(evidence.Record{RehearsalRecord: report.RehearsalRecord{RunbookDigest: other, InventoryDigest: invDigest, Rehearsed: at.Add(time.Hour),
				Green: true, Outcome: engine.OutcomeAllMoved}})
		}, refused("last green rehearsal of daemon-test: 2026-12-01 23:10 UTC, its runbook differs: rehearsed sha256 abababababab…, now " +
			evidence.Short(rbDigest) + "; the rehearsal of these bytes on 2026-12-01 22:10 UTC failed: " +
			"outcome done; committed [0 2 3]; rolled back [1]; the policy rollback-batch promised every batch committed")},
		{"green rehearsal of these bytes, then one byte of the inventory changed", func() {
			write(evidence.Record{RehearsalRecord: report.RehearsalRecord{RunbookDigest: rbDigest, InventoryDigest: invDigest,
				Rehearsed: at.Add(2 * time.Hour), Green: true, Outcome: engine.OutcomeAllMoved, Faults: []string{"daemon-kill@2"},
				Took: 108 * time.Second}})
			changeByte(t, inv)
		}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.before()
			_, nowInv := digestsOf(t, rb)
			want := tt.want
			if want == "" {
				want = refused("last green rehearsal of daemon-test: 2026-12-02 00:10 UTC, its inventory differs: rehearsed sha256 " +
					evidence.Short(invDigest) + ", now " + evidence.Short(nowInv))
			}
			err := h.cl.Run(ctx, rb, true)
			if err == nil || err.Error() != want {
				t.Fatalf("run: %v\nwant: %s", err, want)
			}
			// Refused before anything is touched: no speaker, no
			// snapshot, nothing in the journal.
			es, jerr := h.cl.Journal(ctx)
			if _, serr := os.Stat(filepath.Join(h.dir, "runs")); h.fb.BGP != nil || jerr != nil || len(es) != 0 || serr == nil {
				t.Fatalf("after the refusal: speaker %v, journal %d records (%v), runs/: %v", h.fb.BGP != nil, len(es), jerr, serr)
			}
		})
	}

	// The inventory's bytes as rehearsed again: the run starts and its
	// journal names the rehearsal it rests on.
	changeByte(t, inv)
	if err := h.cl.Run(ctx, rb, true); err != nil {
		t.Fatalf("run of the rehearsed bytes: %v", err)
	}
	h.waitFor("the end", func(s engine.RunState) bool { return s.Phase == engine.PhaseDone })
	es, err := h.cl.Journal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := "green rehearsal of daemon-test on 2026-12-02 00:10 UTC (all-moved, faults daemon-kill@2, took 1m48s)"
	var start engine.RunStartRecord
	if len(es) == 0 || es[0].Type != engine.RecRunStart || json.Unmarshal(es[0].Data, &start) != nil || start.Rehearsal != want {
		t.Fatalf("journal's first record: %+v, want a run start resting on %q", es[0], want)
	}
	if got, wantText := engine.EventText(engine.RecRunStart, start, &engine.RunState{}), "run "; !strings.HasPrefix(got, wantText) || !strings.HasSuffix(got, "; rests on the "+want) {
		t.Errorf("run-start event %q, want it to name the rehearsal", got)
	}
	h.stop()
}

// changeByte changes one byte of the inventory, and back when called
// again: the last VM's tier (",1,tcp:80" at the file's end) becomes 2.
func changeByte(t *testing.T, file string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	i := len(data) - len("1,tcp:80\n")
	switch data[i] {
	case '1':
		data[i] = '2'
	case '2':
		data[i] = '1'
	default:
		t.Fatalf("%s: no tier 1 or 2 at byte %d: %q", file, i, data[i-10:])
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestWithoutRequireRehearsal: a runbook without require_rehearsal runs
// whatever the store holds, even when it cannot be read.
func TestWithoutRequireRehearsal(t *testing.T) {
	rb := rehearsedRunbook(t, "")
	blocked := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocked, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	h := openDaemonConfig(t, Config{StateDir: t.TempDir(), Backends: &FakeBackends{}, Log: zerolog.New(logcheck.Writer(t)), EvidenceDir: blocked})
	if err := h.cl.Run(context.Background(), rb, true); err != nil {
		t.Fatalf("run without require_rehearsal: %v", err)
	}
	h.waitFor("the end", func(s engine.RunState) bool { return s.Phase == engine.PhaseDone })
	h.stop()
}

// TestRequireRehearsalUnreadableStore: with require_rehearsal, a store the
// daemon cannot read refuses the run and says why.
func TestRequireRehearsalUnreadableStore(t *testing.T) {
	rb := rehearsedRunbook(t, "require_rehearsal: true\n")
	blocked := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocked, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	h := openDaemonConfig(t, Config{StateDir: t.TempDir(), Backends: &FakeBackends{}, Log: zerolog.New(logcheck.Writer(t)), EvidenceDir: blocked})
	want := "runbook requires a green rehearsal of exactly these bytes, and the daemon cannot read its records: rehearsal records: open " +
		blocked + ": not a directory"
	if err := h.cl.Run(context.Background(), rb, true); err == nil || err.Error() != want {
		t.Fatalf("run: %v\nwant: %s", err, want)
	}
	h.stop()
}

// TestRequireRehearsalRehearsing: the daemon of a lab rehearsal runs a
// runbook with require_rehearsal against an empty store: the rehearsal is
// how the runbook earns it.
func TestRequireRehearsalRehearsing(t *testing.T) {
	ctx := context.Background()
	rb := rehearsedRunbook(t, "require_rehearsal: true\n")
	h := openDaemonConfig(t, Config{StateDir: t.TempDir(), Backends: &FakeBackends{}, Log: zerolog.New(logcheck.Writer(t)),
		EvidenceDir: filepath.Join(t.TempDir(), "none"), Rehearsing: true})
	if err := h.cl.Run(ctx, rb, true); err != nil {
		t.Fatalf("a rehearsal's run: %v", err)
	}
	h.waitFor("the end", func(s engine.RunState) bool { return s.Phase == engine.PhaseDone })
	h.stop()
}
