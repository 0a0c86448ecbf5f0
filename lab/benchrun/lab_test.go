package benchrun

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/serve"
	"github.com/cutover/cutover/internal/logcheck"
	"github.com/cutover/cutover/internal/testenv"
	"github.com/cutover/cutover/lab"
	"github.com/cutover/cutover/lab/rehearse"
)

// TestMain lets the test binary play the lab's responders, the daemon and
// the reference's child, as the cutover binary does.
func TestMain(m *testing.M) {
	lab.MaybeRunResponder()
	serve.RunIfChild(rehearse.DaemonEnv)
	MaybeServeReference()
	os.Exit(m.Run())
}

// testLines sends progress lines to t.Log (safe for the child's output
// copied in from another goroutine).
type testLines struct {
	mu sync.Mutex
	t  *testing.T
}

func (w *testLines) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestBenchRunLab runs the whole bench once on 600 VMs (a canary of 10,
// batches of 200): every batch moved with its times, the rollback and
// the reference measured, the daemon's peak RSS read, and the lab gone
// afterwards.
func TestBenchRunLab(t *testing.T) {
	testenv.RequireFRR(t)
	// Its own name: two test processes side by side (two CI runs on one
	// machine) must never share a lab, or one's `up` takes the other's down.
	name := fmt.Sprintf("brt-%d", os.Getpid()%100000)
	log := zerolog.New(logcheck.Writer(t)).Level(zerolog.InfoLevel)
	t.Cleanup(func() {
		// Only if Run failed to: it takes the lab down itself.
		if err := lab.Down(context.Background(), name, log); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	start := time.Now()
	dir := t.TempDir()
	res, err := Run(ctx, Options{Spec: Spec{VMs: 600, Canary: 10, BatchSize: 200}, Lab: name, Dir: dir,
		ReferenceArgs: []string{"-test.run=^$"}, Out: &testLines{t: t}, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("bench run took %s", time.Since(start).Round(time.Millisecond))
	var b strings.Builder
	if err := res.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", b.String())

	if res.Outcome != engine.OutcomeAllMoved || len(res.Problems) > 0 {
		t.Errorf("outcome %s, problems %v", res.Outcome, res.Problems)
	}
	wantBatches := []struct {
		name string
		vms  int
	}{{"canary", 10}, {"batch-01", 200}, {"batch-02", 200}, {"batch-03", 190}}
	if len(res.Batches) != len(wantBatches) {
		t.Fatalf("%d batches, want %d: %+v", len(res.Batches), len(wantBatches), res.Batches)
	}
	for i, bt := range res.Batches {
		if bt.Name != wantBatches[i].name || bt.VMs != wantBatches[i].vms || bt.Prefixes != bt.VMs {
			t.Errorf("batch %d: %s with %d VMs, %d prefixes; want %s with %d of each", i, bt.Name, bt.VMs, bt.Prefixes, wantBatches[i].name, wantBatches[i].vms)
		}
		if bt.Result != engine.BatchCommitted || bt.Announce <= 0 || bt.Converge <= 0 || bt.Gate <= 0 {
			t.Errorf("batch %s: %s, announce %s, converge %s, gate %s; want committed with every time > 0", bt.Name, bt.Result, bt.Announce, bt.Converge, bt.Gate)
		}
	}
	if res.Prefixes != 600 || res.RunTook <= 0 || res.LabUp <= 0 {
		t.Errorf("prefixes %d, run took %s, lab up %s", res.Prefixes, res.RunTook, res.LabUp)
	}
	if res.Rollback <= 0 || res.DaemonRollback <= 0 || res.DaemonRollback > res.Rollback {
		t.Errorf("rollback %s, the daemon's change %s: want both > 0, the daemon's within", res.Rollback, res.DaemonRollback)
	}
	if r := res.Reference; r == nil || r.Prefixes != 600 || r.Announce <= 0 || r.Withdraw <= 0 || res.Ratio <= 0 {
		t.Errorf("reference %+v, ratio %g: want 600 prefixes, times and a ratio > 0", r, res.Ratio)
	}
	if res.DaemonPeakRSS < 1<<20 {
		t.Errorf("daemon peak RSS %d bytes: want at least 1 MB", res.DaemonPeakRSS)
	}
	for _, f := range []string{RunbookFile, InventoryFile, "report/report.md"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("--dir: %v", err)
		}
	}
	// The lab is gone: no state, no namespace.
	if _, err := lab.Open(name); !errors.Is(err, lab.ErrNotUp) {
		t.Errorf("lab %s after the bench: %v, want it down", name, err)
	}
	nss, _ := filepath.Glob("/run/netns/" + lab.NamespaceName(name, "*"))
	if len(nss) > 0 {
		t.Errorf("namespaces left: %v", nss)
	}
}
