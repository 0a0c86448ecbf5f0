package rehearse

import (
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/cutover/engine"
)

func TestResultWriteText(t *testing.T) {
	res := &Result{Runbook: "rb.yaml", Lab: "rh", VMs: 20,
		Expected: Outcome{Phase: "done", Committed: []int{0, 2}, RolledBack: []int{1}},
		Actual:   Outcome{Phase: "done", Committed: []int{0, 2}, RolledBack: []int{1}},
		Outcome:  engine.OutcomePartial, AtSourceVMs: 8, AtSourceBatches: []int{1},
		Injected: []Injected{{Fault: "vm-down:10%@1", Batch: 1, At: "announcing", VMs: []string{"vm-a", "vm-b"}}},
		Checked:  []string{"edge FIB: as the journal says"}, Rollback: 321 * time.Millisecond,
		LabUp: 2 * time.Second, RunTook: 30 * time.Second, Took: 40 * time.Second, OK: true}
	var b strings.Builder
	if err := res.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	want := `
rehearsal of rb.yaml in lab rh (20 VM addresses)
  expected  done; committed [0 2]; rolled back [1]; pending []
  actual    done; committed [0 2]; rolled back [1]; pending []
  outcome   partial: 8 VMs left at the source (batches [1])
  fault     vm-down:10%@1 in batch 1 (announcing) vm-a vm-b 
  checked   edge FIB: as the journal says
  rollback --all: edge FIB back at the source 321ms after the command
  took      lab up 2s, run 30s, 40s in all
OK: the outcome is what the policy promises
`
	if b.String() != want {
		t.Errorf("WriteText:\n%s\nwant\n%s", b.String(), want)
	}
	if got := res.FinalOutcome(); got != engine.OutcomePartial {
		t.Errorf("FinalOutcome without a retry = %s, want partial", got)
	}
}

func TestResultWriteTextRetry(t *testing.T) {
	res := &Result{Runbook: "rb.yaml", Lab: "rh", VMs: 40,
		Expected: Outcome{Phase: "done", Committed: []int{0, 1, 3}, Held: []int{2}},
		Actual:   Outcome{Phase: "done", Committed: []int{0, 1, 3}, Held: []int{2}},
		Outcome:  engine.OutcomePartial, AtSourceVMs: 12, AtSourceBatches: []int{2},
		Retry: &Retried{Batches: []int{2}, Expected: Outcome{Phase: "done", Committed: []int{0, 1, 2, 3}},
			Actual:  Outcome{Phase: "done", Committed: []int{0, 1, 2, 3}},
			Outcome: engine.OutcomeAllMoved, Took: 5 * time.Second,
			Evidence: []string{"fault target-down:100%@2: responders started again", "edge FIB: 40 VM prefixes via skm2"}},
		LabUp: 2 * time.Second, RunTook: 30 * time.Second, Took: 40 * time.Second, OK: true}
	var b strings.Builder
	if err := res.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	want := `
rehearsal of rb.yaml in lab rh (40 VM addresses)
  expected  done; committed [0 1 3]; rolled back []; held [2]; pending []
  actual    done; committed [0 1 3]; rolled back []; held [2]; pending []
  outcome   partial: 12 VMs left at the source (batches [2])
  retry     batches [2] with the faults undone: done; committed [0 1 2 3]; rolled back []; pending [] in 5s
  retry     outcome all-moved
  retry     fault target-down:100%@2: responders started again
  retry     edge FIB: 40 VM prefixes via skm2
  took      lab up 2s, run 30s, 40s in all
OK: the outcome is what the policy promises
`
	if b.String() != want {
		t.Errorf("WriteText:\n%s\nwant\n%s", b.String(), want)
	}
	if got := res.FinalOutcome(); got != engine.OutcomeAllMoved {
		t.Errorf("FinalOutcome after the retry = %s, want all-moved", got)
	}
	wantActual := "done; committed [0 1 3]; rolled back []; held [2]; pending [] (partial: 12 VMs left at the source (batches [2])); " +
		"after retrying batches [2]: done; committed [0 1 2 3]; rolled back []; pending [] (all-moved)"
	if got := res.actualText(); got != wantActual {
		t.Errorf("actualText:\n%s\nwant\n%s", got, wantActual)
	}
}
