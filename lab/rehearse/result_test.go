package rehearse

import (
	"strings"
	"testing"
	"time"
)

func TestResultWriteText(t *testing.T) {
	res := &Result{Runbook: "rb.yaml", Lab: "rh", VMs: 20,
		Expected: Outcome{Phase: "done", Committed: []int{0, 2}, RolledBack: []int{1}},
		Actual:   Outcome{Phase: "done", Committed: []int{0, 2}, RolledBack: []int{1}},
		Injected: []Injected{{Fault: "vm-down:10%@1", Batch: 1, At: "pending", VMs: []string{"vm-a", "vm-b"}}},
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
  fault     vm-down:10%@1 in batch 1 (pending) vm-a vm-b 
  checked   edge FIB: as the journal says
  rollback --all: edge FIB back at the source 321ms after the command
  took      lab up 2s, run 30s, 40s in all
OK: the outcome is what the policy promises
`
	if b.String() != want {
		t.Errorf("WriteText:\n%s\nwant\n%s", b.String(), want)
	}
}
