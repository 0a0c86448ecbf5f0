package rehearse

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cutover/cutover/cutover/serve"
	"github.com/cutover/cutover/internal/logcheck"
	"github.com/cutover/cutover/internal/testenv"
	"github.com/cutover/cutover/lab"
)

func TestMain(m *testing.M) {
	lab.MaybeRunResponder()
	serve.RunIfChild(DaemonEnv)
	os.Exit(m.Run())
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestRehearseFaults rehearses a small runbook with a VM failure in batch 1
// and a kill -9 of the daemon in batch 2: batch 1 must be rolled back by
// the rollback-batch policy, every other batch committed, and the edge
// must keep every route while the daemon is dead.
func TestRehearseFaults(t *testing.T) {
	testenv.RequireFRR(t)
	vmDown, _ := ParseFault("vm-down:10%@1")
	kill, _ := ParseFault("daemon-kill@2")
	res, err := Run(context.Background(), Options{Runbook: "testdata/small.yaml", Lab: "rh" + strings.ToLower(randSuffix()),
		Faults: []Fault{vmDown, kill}, Out: testWriter{t}, Log: zerolog.New(logcheck.Writer(t)), MeasureRollback: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Checked {
		t.Log("checked:", c)
	}
	for _, in := range res.Injected {
		t.Logf("injected %s in batch %d (%s): %v %v", in.Fault, in.Batch, in.At, in.VMs, in.Evidence)
	}
	if !res.OK {
		t.Fatalf("rehearsal not OK: %v", res.Problems)
	}
	if !slices.Equal(res.Actual.RolledBack, []int{1}) || res.Actual.Phase != "done" {
		t.Fatalf("outcome %s", res.Actual)
	}
	if res.Rollback <= 0 || res.Rollback > time.Second {
		t.Fatalf("rollback --all took %s from the command to the edge FIB, want under 1s", res.Rollback)
	}
	t.Logf("lab up %s, run %s, rollback --all %s, total %s", res.LabUp, res.RunTook, res.Rollback, res.Took)
}

// randSuffix makes a test's lab name its own: two test processes side by
// side (two CI runs on one machine) must never pick the same name, or one
// lab's `up` would take the other's down.
func randSuffix() string {
	return fmt.Sprintf("%d-%04x", os.Getpid()%100000, rand.IntN(0x10000))
}

// TestRehearseHelseNord rehearses the 2,000-VM example unchanged: every
// batch through its gates, every VM at skm2 in the edge's FIB and reached
// at skm2 from hosp, then rollback --all measured from the command until
// the edge's FIB sends every VM back to skm1.
func TestRehearseHelseNord(t *testing.T) {
	testenv.RequireFRR(t)
	res, err := Run(context.Background(), Options{Runbook: "../../runbooks/helse-nord/runbook.yaml", Lab: "rhn" + randSuffix(),
		Out: testWriter{t}, Log: zerolog.New(logcheck.Writer(t)), MeasureRollback: true, ReachAll: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Checked {
		t.Log("checked:", c)
	}
	if !res.OK {
		t.Fatalf("rehearsal not OK: %v", res.Problems)
	}
	if res.Actual.Phase != "done" || len(res.Actual.RolledBack) != 0 || len(res.Actual.Committed) != len(res.Expected.Committed) {
		t.Fatalf("outcome %s", res.Actual)
	}
	if res.Rollback <= 0 || res.Rollback > time.Second {
		t.Fatalf("rollback --all took %s from the command to the edge FIB, want under 1s", res.Rollback)
	}
	t.Logf("%d VMs: lab up %s, run %s, rollback --all %s, total %s", res.VMs, res.LabUp, res.RunTook, res.Rollback, res.Took)
}
