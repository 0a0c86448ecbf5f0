package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// TestWalk walks a real run's journal: every entry comes with the record
// of its type and the state after it, which is the fold of the journal up
// to there; the end is Fold's state and the engine's.
func TestWalk(t *testing.T) {
	h := newHarness(t, 3, RollbackBatch)
	h.failing[1] = true
	h.spec.Batches[1].Confirm = []string{"after-canary"}
	if err := h.e.Start(h.spec, "nina", false); err != nil {
		t.Fatal(err)
	}
	h.wait("after-canary", func(s RunState) bool { return s.Confirm == "after-canary" })
	if err := h.e.Confirm("after-canary", true, "olga"); err != nil {
		t.Fatal(err)
	}
	want := h.wait("the end", ended)
	entries := h.j.Entries()

	wantType := map[string]reflect.Type{
		RecRunStart: reflect.TypeFor[RunStartRecord](), RecBaseline: reflect.TypeFor[BaselineRecord](),
		RecPhase: reflect.TypeFor[PhaseRecord](), RecIntent: reflect.TypeFor[ChangeRecord](),
		RecApplied: reflect.TypeFor[ChangeRecord](), RecBatch: reflect.TypeFor[BatchRecord](),
		RecGates: reflect.TypeFor[GatesRecord](), RecConfirm: reflect.TypeFor[ConfirmRecord](),
		RecOperator: reflect.TypeFor[OperatorRecord](),
	}
	seen := map[string]bool{}
	i := 0
	got, err := Walk(entries, func(e JournalEntry, rec Record, st *RunState) error {
		if e.Seq != entries[i].Seq {
			t.Fatalf("entry %d is record %d, want %d", i, e.Seq, entries[i].Seq)
		}
		if typ := reflect.TypeOf(rec); typ != wantType[e.Type] {
			t.Errorf("record %d (%s) decoded as %v, want %v", e.Seq, e.Type, typ, wantType[e.Type])
		}
		seen[e.Type] = true
		fold, err := Fold(entries[:i+1])
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(*st, fold) {
			t.Errorf("state after record %d differs from the fold up to it:\nwalk %+v\nfold %+v", e.Seq, *st, fold)
		}
		i++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if i != len(entries) {
		t.Errorf("walked %d of %d entries", i, len(entries))
	}
	for typ := range wantType {
		if typ != RecOperator && !seen[typ] {
			t.Errorf("the run journaled no %s record", typ)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Walk's state differs from the engine's:\nwalk   %+v\nengine %+v", got, want)
	}
	h.checkFold()
}

func entry(seq uint64, typ, data string) JournalEntry {
	return JournalEntry{Seq: seq, Time: time.Date(2026, 3, 14, 23, 0, int(seq), 0, time.UTC), Type: typ, Data: json.RawMessage(data)}
}

var runStart = entry(1, RecRunStart, `{"run_id":"r1","runbook":"rb.yaml","digest":"d","operator":"alice","batches":[{"index":0,"name":"b0","vms":1,"prefixes":1,"phase":"pending"}]}`)

// TestFolderErrors: a record that does not fold is an error naming it,
// and leaves the state as it was.
func TestFolderErrors(t *testing.T) {
	tests := []struct {
		name    string
		e       JournalEntry
		wantErr string
	}{
		{"unknown type", entry(2, "teleport", `{}`), `journal record 2: unknown journal record type "teleport"`},
		{"torn phase", entry(2, RecPhase, `{"phase":`), "journal record 2: phase: unexpected end of JSON input"},
		{"torn intent", entry(2, RecIntent, `{"moved":"x"}`), "journal record 2: intent: json: cannot unmarshal string into Go struct field ChangeRecord.moved of type []int"},
		{"batch out of range", entry(2, RecBatch, `{"batch":7,"phase":"announcing"}`), "journal record 2: batch: no batch 7"},
		{"torn operator", entry(2, RecOperator, `{"command":7}`), "journal record 2: operator: json: cannot unmarshal number into Go struct field OperatorRecord.command of type string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f Folder
			if _, err := f.Apply(runStart); err != nil {
				t.Fatal(err)
			}
			before := f.State().clone()
			rec, err := f.Apply(tt.e)
			if err == nil || err.Error() != tt.wantErr || rec != nil {
				t.Fatalf("Apply: %v, %v; want %q", rec, err, tt.wantErr)
			}
			if !reflect.DeepEqual(*f.State(), before) {
				t.Errorf("a failed Apply changed the state:\n got %+v\nwant %+v", *f.State(), before)
			}
			if _, err := Walk([]JournalEntry{runStart, tt.e}, nil); err == nil || err.Error() != tt.wantErr {
				t.Errorf("Walk: %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// TestFoldAuditTrail: Fold goes on past an operator record it cannot read
// (no state depends on it: a daemon must recover its routes), where Walk,
// whose reader wants the audit trail, stops.
func TestFoldAuditTrail(t *testing.T) {
	es := []JournalEntry{runStart, entry(2, RecOperator, `{"command":7}`), entry(3, RecBaseline, `{"healthy":["vm-a"],"probed":1}`),
		entry(4, RecRecovered, `"anything"`)}
	st, err := Fold(es)
	if err != nil {
		t.Fatalf("Fold: %v", err)
	}
	if st.RunID != "r1" || !reflect.DeepEqual(st.Baseline, []string{"vm-a"}) {
		t.Errorf("Fold stopped at the audit record: %+v", st)
	}
	want := "journal record 2: operator: json: cannot unmarshal number into Go struct field OperatorRecord.command of type string"
	if _, err := Walk(es, nil); err == nil || err.Error() != want {
		t.Errorf("Walk: %v, want %q", err, want)
	}
	var recs []Record
	if _, err := Walk([]JournalEntry{runStart, es[3]}, func(_ JournalEntry, rec Record, _ *RunState) error {
		recs = append(recs, rec)
		return nil
	}); err != nil || len(recs) != 2 || recs[1] != (RecoveredRecord{}) {
		t.Errorf("recovered record: %v %v", recs, err)
	}
}

func TestWalkStopsAtCallbackError(t *testing.T) {
	stop := errors.New("enough")
	n := 0
	st, err := Walk([]JournalEntry{runStart, entry(2, RecBaseline, `{"healthy":[],"probed":0}`), entry(3, "teleport", `{}`)},
		func(JournalEntry, Record, *RunState) error {
			if n++; n == 2 {
				return stop
			}
			return nil
		})
	if !errors.Is(err, stop) || n != 2 || st.RunID != "r1" {
		t.Errorf("Walk: %v after %d calls, state %+v", err, n, st)
	}
}

// TestFolderZero: the zero Folder is no run, as Fold of nothing.
func TestFolderZero(t *testing.T) {
	var f Folder
	st, err := Fold(nil)
	if err != nil || !reflect.DeepEqual(*f.State(), st) || st.Phase != PhaseIdle {
		t.Errorf("zero Folder %+v, Fold(nil) %+v %v", *f.State(), st, err)
	}
}

// TestFoldKeepsRecordsApart: a record handed to a reader does not change
// as the fold goes on.
func TestFoldKeepsRecordsApart(t *testing.T) {
	var f Folder
	rec, err := f.Apply(runStart)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Apply(entry(2, RecBatch, `{"batch":0,"phase":"announcing"}`)); err != nil {
		t.Fatal(err)
	}
	if p := rec.(RunStartRecord).Batches[0].Phase; p != BatchPending {
		t.Errorf("the run-start record's batch 0 is %s after the fold moved on", p)
	}
	if p := f.State().Batches[0].Phase; p != BatchAnnouncing {
		t.Errorf("state batch 0 %s", p)
	}
}

func ExampleWalk() {
	es := []JournalEntry{runStart, entry(2, RecBaseline, `{"healthy":["vm-a"],"probed":2}`),
		entry(3, RecPhase, `{"phase":"paused","pause":"operator","operator":"bob"}`)}
	st, err := Walk(es, func(e JournalEntry, rec Record, st *RunState) error {
		if text := EventText(e.Type, rec, st); text != "" {
			fmt.Printf("%d %s: %s\n", e.Seq, st.Phase, text)
		}
		return nil
	})
	fmt.Println(st.Phase, err)
	// Output:
	// 1 prechecking: run rb.yaml started by alice: 1 batches
	// 2 prechecking: pre-check passed: baseline 1 of 2 probed VMs healthy
	// 3 paused: paused by bob
	// paused <nil>
}
