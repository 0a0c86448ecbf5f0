package evidence

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/report"
)

var (
	rbA, rbB   = strings.Repeat("a1", 32), strings.Repeat("b2", 32)
	invA, invB = strings.Repeat("c3", 32), strings.Repeat("d4", 32)
	at         = time.Date(2026, 12, 1, 22, 10, 0, 0, time.UTC)
)

// store writes recs into a new store and returns it.
func store(t *testing.T, recs ...*Record) Store {
	t.Helper()
	s := Store{Dir: filepath.Join(t.TempDir(), "rehearsals")}
	for _, r := range recs {
		if _, err := s.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func rec(name, rb, inv string, hours int, green bool, problems ...string) *Record {
	o := engine.OutcomeAllMoved
	if !green {
		o = engine.OutcomePartial
	}
	return &Record{RehearsalRecord: report.RehearsalRecord{Runbook: name, RunbookDigest: rb, InventoryDigest: inv,
		Rehearsed: at.Add(time.Duration(hours) * time.Hour), Green: green, Outcome: o}, Problems: problems}
}

// TestLookup reads a store for one runbook's bytes: the newest green
// rehearsal of exactly them, else the nearest and what differs, with
// exact words.
func TestLookup(t *testing.T) {
	for _, tt := range []struct {
		name    string
		recs    []*Record
		runbook string // the name asked about
		rb, inv string
		green   int // hours of the green record found; -1: none
		why     string
	}{
		{"empty", nil, "helse-nord", rbA, invA, -1, "no rehearsal of helse-nord on record"},
		{"another name, these bytes", []*Record{rec("other", rbA, invA, 0, true)}, "helse-nord", rbA, invA, 0, ""},
		{"green of these bytes, the newest of two", []*Record{rec("helse-nord", rbA, invA, 0, true), rec("helse-nord", rbA, invA, 2, true)},
			"helse-nord", rbA, invA, 2, ""},
		{"failed after green: the green still counts", []*Record{rec("helse-nord", rbA, invA, 0, true), rec("helse-nord", rbA, invA, 1, false, "x")},
			"helse-nord", rbA, invA, 0, ""},
		{"inventory differs", []*Record{rec("helse-nord", rbA, invA, 0, true)}, "helse-nord", rbA, invB, -1,
			"last green rehearsal of helse-nord: 2026-12-01 22:10 UTC, its inventory differs: rehearsed sha256 c3c3c3c3c3c3…, now d4d4d4d4d4d4…"},
		{"runbook differs", []*Record{rec("helse-nord", rbA, invA, 0, true)}, "helse-nord", rbB, invA, -1,
			"last green rehearsal of helse-nord: 2026-12-01 22:10 UTC, its runbook differs: rehearsed sha256 a1a1a1a1a1a1…, now b2b2b2b2b2b2…"},
		{"both differ, the newest green is named", []*Record{rec("helse-nord", rbA, invA, 0, true), rec("helse-nord", rbA, invB, 3, true)}, "helse-nord", rbB, invA, -1,
			"last green rehearsal of helse-nord: 2026-12-02 01:10 UTC, its runbook and inventory differ: runbook rehearsed sha256 a1a1a1a1a1a1…, now b2b2b2b2b2b2…; " +
				"inventory rehearsed sha256 d4d4d4d4d4d4…, now c3c3c3c3c3c3…"},
		{"failed only", []*Record{rec("helse-nord", rbA, invA, 0, false), rec("helse-nord", rbA, invA, 1, false, "hosp reached 49 of 50 VMs at skm2")}, "helse-nord", rbA, invA, -1,
			"no green rehearsal of helse-nord on record (2 failed); the rehearsal of these bytes on 2026-12-01 23:10 UTC failed: hosp reached 49 of 50 VMs at skm2"},
		{"failed without a problem, older green of other bytes", []*Record{rec("helse-nord", rbB, invA, 0, true), rec("helse-nord", rbA, invA, 1, false)}, "helse-nord", rbA, invA, -1,
			"last green rehearsal of helse-nord: 2026-12-01 22:10 UTC, its runbook differs: rehearsed sha256 b2b2b2b2b2b2…, now a1a1a1a1a1a1…; " +
				"the rehearsal of these bytes on 2026-12-01 23:10 UTC failed: outcome partial"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st, err := store(t, tt.recs...).Lookup(tt.runbook, tt.rb, tt.inv)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.green < 0 && st.Green != nil:
				t.Errorf("green %s, want none", st.Green)
			case tt.green >= 0 && (st.Green == nil || !st.Green.Rehearsed.Equal(at.Add(time.Duration(tt.green)*time.Hour))):
				t.Errorf("green %v, want the one of %d hours after", st.Green, tt.green)
			}
			if got := st.Why(); got != tt.why {
				t.Errorf("Why:\n got %q\nwant %q", got, tt.why)
			}
		})
	}
}

// TestLookupUnreadable: a file of the store that cannot be read is named
// in the answer (the missing record may be that one); a store that is no
// directory is an error.
func TestLookupUnreadable(t *testing.T) {
	s := store(t, rec("helse-nord", rbA, invA, 0, true))
	if err := os.WriteFile(filepath.Join(s.Dir, "torn.json"), []byte(`{"version": 1`), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := s.Lookup("helse-nord", rbA, invB)
	if err != nil {
		t.Fatal(err)
	}
	want := "last green rehearsal of helse-nord: 2026-12-01 22:10 UTC, its inventory differs: rehearsed sha256 c3c3c3c3c3c3…, now d4d4d4d4d4d4…; " +
		"1 record could not be read (" + filepath.Join(s.Dir, "torn.json") + ": decode rehearsal record: unexpected EOF)"
	if got := st.Why(); got != want {
		t.Errorf("Why:\n got %q\nwant %q", got, want)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := (Store{Dir: file}).Lookup("helse-nord", rbA, invA); err == nil || err.Error() != "rehearsal records: open "+file+": not a directory" {
		t.Errorf("Lookup in a file: %v", err)
	}
}

// TestWriteFile writes a record beside a report, reads it back the way
// the store reads its own, and refuses a record no rehearsal could write.
func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "evidence.json")
	r := rec("helse-nord", rbA, invA, 0, true)
	r.Faults, r.Took = []string{"daemon-kill@3"}, 108*time.Second
	if err := WriteFile(file, r); err != nil {
		t.Fatal(err)
	}
	back, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := back.String(), "green rehearsal of helse-nord on 2026-12-01 22:10 UTC (all-moved, faults daemon-kill@3, took 1m48s)"; got != want {
		t.Errorf("read back %q, want %q", got, want)
	}
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v (%v), want 0644", st.Mode(), err)
	}
	bad := rec("helse-nord", "short", invA, 0, true)
	if err := WriteFile(filepath.Join(dir, "bad.json"), bad); err == nil || err.Error() != `rehearsal record: runbook_digest "short": want 64 hex digits` {
		t.Errorf("WriteFile of a bad record: %v", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("files left in %s: %v, want evidence.json only", dir, ents)
	}
}

func TestShort(t *testing.T) {
	for in, want := range map[string]string{rbA: "a1a1a1a1a1a1…", "abc": "abc", "": ""} {
		if got := Short(in); got != want {
			t.Errorf("Short(%q) = %q, want %q", in, got, want)
		}
	}
}
