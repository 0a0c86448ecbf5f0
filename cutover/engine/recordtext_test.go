package engine

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestEventText(t *testing.T) {
	at := time.Date(2026, 3, 14, 23, 0, 0, 0, time.UTC)
	st := &RunState{Phase: PhasePaused, Applied: []int{0, 1}, Batches: []BatchState{
		{Index: 0, Name: "b00-canary", VMs: 10, Phase: BatchCommitted, Started: at},
		{Index: 1, Name: "b01-unn", VMs: 200, Phase: BatchGating, Started: at},
		{Index: 2, Name: "b02-hsyk", VMs: 150, Phase: BatchPending},
	}}
	fresh := &RunState{Phase: PhaseAborted, Applied: []int{}, Batches: []BatchState{{Index: 0, Name: "b0", VMs: 1, Phase: BatchPending}}}
	tests := []struct {
		typ  string
		rec  Record
		st   *RunState
		want string
	}{
		{RecRunStart, RunStartRecord{Runbook: "rb.yaml", Operator: "alice", Batches: st.Batches}, st, "run rb.yaml started by alice: 3 batches"},
		{RecBaseline, BaselineRecord{Healthy: []string{"a", "b"}, Probed: 3}, st, "pre-check passed: baseline 2 of 3 probed VMs healthy"},
		{RecPhase, PhaseRecord{Phase: PhasePaused, Pause: "operator", Operator: "bob"}, st, "paused by bob"},
		{RecPhase, PhaseRecord{Phase: PhasePaused, Pause: "interrupted"}, st, "paused: interrupted by a daemon restart"},
		{RecPhase, PhaseRecord{Phase: PhasePaused, Pause: "confirm", Confirm: "after-canary"}, st, `waiting for go/no-go at "after-canary"`},
		{RecPhase, PhaseRecord{Phase: PhasePaused, Pause: "no-go", Confirm: "after-canary", Operator: "bob"}, st, `no-go at "after-canary" by bob`},
		{RecPhase, PhaseRecord{Phase: PhasePaused, Pause: "step"}, st, "paused after one step"},
		{RecPhase, PhaseRecord{Phase: PhasePaused, Pause: "gate-failed"}, st,
			"paused by the failure policy after batch 1 b01-unn failed its gates: resume re-runs them, rollback --batch 1 takes it back"},
		{RecPhase, PhaseRecord{Phase: PhasePaused, Pause: "gate-failed"}, fresh, "paused by the failure policy after a failed gate"},
		{RecPhase, PhaseRecord{Phase: PhasePaused, Pause: "window: outside the change window 22:00-04:00"}, st,
			"paused: change window closed: outside the change window 22:00-04:00"},
		{RecPhase, PhaseRecord{Phase: PhasePaused, Pause: "error: journal: disk full"}, st, "paused: error: journal: disk full"},
		{RecPhase, PhaseRecord{Phase: PhasePaused, Pause: "rollback by dave"}, st, "paused: rollback by dave"},
		{RecPhase, PhaseRecord{Phase: PhasePaused, Pause: "something new", Operator: "eve"}, st, "paused: something new by eve"},
		{RecPhase, PhaseRecord{Phase: PhaseRunning, Operator: "bob"}, st, ""},
		{RecPhase, PhaseRecord{Phase: PhaseDone, Result: "2 batches committed, 0 rolled back"}, st,
			"run finished: 2 batches committed, 0 rolled back; 210 VMs at the target"},
		{RecPhase, PhaseRecord{Phase: PhaseAborted, Result: "rolled back by dave"}, st, "run aborted: rolled back by dave"},
		{RecPhase, PhaseRecord{Phase: PhaseAborted, Result: "pre-check failed: peer down"}, fresh,
			"run aborted: pre-check failed: peer down; nothing was changed"},
		{RecApplied, ChangeRecord{Moved: []int{}, Batch: -1, Op: "baseline", Took: 200 * time.Millisecond}, fresh,
			"baseline routes and nft state applied before the first batch in 200ms (0 routes)"},
		{RecApplied, ChangeRecord{Moved: []int{0, 1}, Batch: -1, Op: "recover", Took: 290 * time.Millisecond, Routes: 2}, st,
			"daemon restart: state re-applied from the journal in 290ms (2 batches, 210 VMs at the target)"},
		{RecIntent, ChangeRecord{Moved: []int{0, 1}, Batch: -1, Op: "recover"}, st, ""},
		{RecApplied, ChangeRecord{Moved: []int{0, 1}, Batch: 1, Op: "announce"}, st, ""},
		{RecConfirm, ConfirmRecord{Point: "after-canary", Go: true, Operator: "alice (--yes)"}, st, `go at "after-canary" by alice (--yes)`},
		{RecConfirm, ConfirmRecord{Point: "after-canary", Operator: "bob"}, st, `no-go at "after-canary" by bob`},
		{RecBatch, BatchRecord{Batch: 1, Phase: BatchGating}, st, ""},
		{RecGates, GatesRecord{Batch: 1}, st, ""},
		{RecOperator, OperatorRecord{Command: "pause", Operator: "bob"}, st, ""},
		{RecRecovered, RecoveredRecord{}, st, ""},
	}
	for _, tt := range tests {
		if got := EventText(tt.typ, tt.rec, tt.st); got != tt.want {
			t.Errorf("EventText(%s, %+v)\n got %q\nwant %q", tt.typ, tt.rec, got, tt.want)
		}
	}
}

// TestLiveEventsAreRecordTexts: every line EventText gives for a run's
// journal, as the report shows it, is one the engine told live, through a
// go/no-go point, a failed gate under the pause policy, an operator's
// rollback, a daemon restart and the end.
func TestLiveEventsAreRecordTexts(t *testing.T) {
	h := newHarness(t, 3, Pause)
	h.failing[1] = true
	h.block[2] = true
	h.spec.Batches[1].Confirm = []string{"after-canary"}
	var live []string
	tell := func() {
		for _, ev := range h.e.Status(0).Events {
			live = append(live, ev.Msg)
		}
	}
	if err := h.e.Start(h.spec, "nina", false); err != nil {
		t.Fatal(err)
	}
	h.wait("after-canary", func(s RunState) bool { return s.Confirm == "after-canary" })
	if err := h.e.Confirm("after-canary", true, "olga"); err != nil {
		t.Fatal(err)
	}
	h.wait("the policy pause", func(s RunState) bool { return s.Pause == "gate-failed" })
	if err := h.e.Rollback(context.Background(), OnlyBatch(1), "olga"); err != nil {
		t.Fatal(err)
	}
	if err := h.e.Resume("nina"); err != nil {
		t.Fatal(err)
	}
	h.wait("batch 2 gating", func(s RunState) bool { return s.Batches[2].Phase == BatchGating })
	tell()
	h.stop() // the crash

	st, err := Fold(h.j.Entries())
	if err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	h.block[2] = false
	h.mu.Unlock()
	h.start(st)
	if err := h.e.Attach(h.spec); err != nil {
		t.Fatal(err)
	}
	if err := h.e.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := h.e.Resume("nina"); err != nil {
		t.Fatal(err)
	}
	h.wait("the end", ended)
	tell()

	var texts []string
	if _, err := Walk(h.j.Entries(), func(e JournalEntry, rec Record, st *RunState) error {
		if text := EventText(e.Type, rec, st); text != "" {
			texts = append(texts, text)
			if !slices.Contains(live, text) {
				t.Errorf("record %d (%s): %q was not told live", e.Seq, e.Type, text)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"run test.yaml started by nina: 3 batches",
		"baseline routes and nft state applied before the first batch in ", // the real clock's duration
		`waiting for go/no-go at "after-canary"`,
		`go at "after-canary" by olga`,
		"paused by the failure policy after batch 1 batch-01 failed its gates: resume re-runs them, rollback --batch 1 takes it back",
		"daemon restart: state re-applied from the journal in ",
		"paused: interrupted by a daemon restart",
		"run finished: 2 batches committed, 1 rolled back; 2 VMs at the target",
	} {
		if !slices.ContainsFunc(texts, func(s string) bool { return strings.HasPrefix(s, want) }) {
			t.Errorf("no %q in the journal's texts %q", want, texts)
		}
	}
}
