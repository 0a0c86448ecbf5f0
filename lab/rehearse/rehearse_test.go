package rehearse

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/evidence"
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
	ev := t.TempDir()
	res, err := Run(context.Background(), Options{EvidenceDir: ev, Runbook: "testdata/small.yaml", Lab: "rh" + strings.ToLower(randSuffix()),
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
	checkRecord(t, ev, res, "testdata/small.yaml", "vm-down:10%@1", "daemon-kill@2")
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
	res, err := Run(context.Background(), Options{EvidenceDir: t.TempDir(), Runbook: "../../runbooks/helse-nord/runbook.yaml", Lab: "rhn" + randSuffix(),
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

// TestRehearseTargetDown stops the responders of every VM of batch 2 at the
// target before the run: the readiness check must hold the batch at the
// source (readiness skip, the default of rollback-batch) without ever
// announcing it, the run must end partial, and the edge's FIB, sampled
// through the whole run, must never have held a prefix of batch 2 via the
// target.
func TestRehearseTargetDown(t *testing.T) {
	testenv.RequireFRR(t)
	down, _ := ParseFault("target-down:100%@2")
	res, err := Run(context.Background(), Options{EvidenceDir: t.TempDir(), Runbook: "testdata/small.yaml", Lab: "rt" + randSuffix(),
		Faults: []Fault{down}, Out: testWriter{t}, Log: zerolog.New(logcheck.Writer(t))})
	if err != nil {
		t.Fatal(err)
	}
	logResult(t, res)
	if !res.OK {
		t.Fatalf("rehearsal not OK: %v", res.Problems)
	}
	if res.Actual.Phase != "done" || !slices.Equal(res.Actual.Held, []int{2}) || len(res.Actual.RolledBack) != 0 ||
		!slices.Equal(res.Actual.Committed, []int{0, 1, 3}) {
		t.Fatalf("outcome %s, want batch 2 held and every other batch committed", res.Actual)
	}
	if res.Outcome != engine.OutcomePartial || res.AtSourceVMs != 12 || !slices.Equal(res.AtSourceBatches, []int{2}) {
		t.Fatalf("outcome %s, %d VMs at the source in batches %v; want partial, 12 in [2]", res.Outcome, res.AtSourceVMs, res.AtSourceBatches)
	}
	if len(res.Injected) != 1 || res.Injected[0].At != "pending" || len(res.Injected[0].VMs) != 12 {
		t.Fatalf("injected %+v, want the 12 VMs of batch 2 while it was pending", res.Injected)
	}
	ev := strings.Join(res.Injected[0].Evidence, "; ")
	var samples int
	if _, err := fmt.Sscanf(ev, "edge FIB sampled %d times", &samples); err != nil || samples < 20 {
		t.Fatalf("evidence %q: want the edge FIB sampled through the run (20 times at least)", ev)
	}
	if !strings.Contains(ev, "none of its 12 prefixes via skm2") || strings.Contains(ev, "up to 0 other VM prefixes") {
		t.Fatalf("evidence %q: want none of batch 2's prefixes via skm2, and the other batches' moves seen", ev)
	}
}

// TestRehearseTargetDownPause is TestRehearseTargetDown's fault under
// readiness pause: the run pauses "not-ready" before batch 1, the
// rehearsal's person starts the VMs at the target again and resumes, and
// the batch moves: every batch committed. The edge must not have held the
// batch's prefixes via the target before the person did.
func TestRehearseTargetDownPause(t *testing.T) {
	testenv.RequireFRR(t)
	rb := smallVariant(t, "hold: 0s", "hold: 0s\nreadiness: pause")
	down, _ := ParseFault("target-down:2@1")
	res, err := Run(context.Background(), Options{EvidenceDir: t.TempDir(), Runbook: rb, Lab: "rp" + randSuffix(),
		Faults: []Fault{down}, Out: testWriter{t}, Log: zerolog.New(logcheck.Writer(t))})
	if err != nil {
		t.Fatal(err)
	}
	logResult(t, res)
	if !res.OK {
		t.Fatalf("rehearsal not OK: %v", res.Problems)
	}
	if res.Outcome != engine.OutcomeAllMoved || !slices.Equal(res.Actual.Committed, []int{0, 1, 2, 3}) {
		t.Fatalf("outcome %s (%s), want every batch committed", res.Actual, res.Outcome)
	}
	if !slices.ContainsFunc(res.Checked, func(s string) bool { return strings.Contains(s, `paused "not-ready" before batch 1`) }) {
		t.Fatalf("checked %q: want the run paused not-ready before batch 1", res.Checked)
	}
	if ev := strings.Join(res.Injected[0].Evidence, "; "); !strings.Contains(ev, "none of its 12 prefixes via skm2") {
		t.Fatalf("evidence %q: want none of batch 1's prefixes via skm2 before the operator started the VMs", ev)
	}
}

// TestRehearseRetry stops two VMs of batch 1 at the target right after its
// readiness check: its gates roll it back and the run ends partial. The
// rehearsal then starts the VMs again, retries, and the run must end with
// every VM moved, at the target in the edge's FIB and for hosp.
func TestRehearseRetry(t *testing.T) {
	testenv.RequireFRR(t)
	vmDown, _ := ParseFault("vm-down:2@1")
	res, err := Run(context.Background(), Options{EvidenceDir: t.TempDir(), Runbook: "testdata/small.yaml", Lab: "rr" + randSuffix(),
		Faults: []Fault{vmDown}, Retry: true, Out: testWriter{t}, Log: zerolog.New(logcheck.Writer(t))})
	if err != nil {
		t.Fatal(err)
	}
	logResult(t, res)
	if !res.OK {
		t.Fatalf("rehearsal not OK: %v", res.Problems)
	}
	if res.Outcome != engine.OutcomePartial || !slices.Equal(res.Actual.RolledBack, []int{1}) || !slices.Equal(res.AtSourceBatches, []int{1}) {
		t.Fatalf("outcome before the retry %s (%s, batches %v at the source), want partial with batch 1 rolled back", res.Actual, res.Outcome, res.AtSourceBatches)
	}
	if at := res.Injected[0].At; !strings.HasPrefix(at, "announcing") && !strings.HasPrefix(at, "gating") {
		t.Errorf("vm-down injected while batch 1 was %s, want announcing (right after its readiness check)", at)
	} else if !strings.HasPrefix(at, "announcing") {
		t.Logf("vm-down injected late, while batch 1 was %s: the rehearsal polls every 20 ms, the machine is loaded", at)
	}
	rt := res.Retry
	if rt == nil {
		t.Fatal("no retry")
	}
	if rt.Outcome != engine.OutcomeAllMoved || res.FinalOutcome() != engine.OutcomeAllMoved || !slices.Equal(rt.Batches, []int{1}) ||
		!slices.Equal(rt.Actual.Committed, []int{0, 1, 2, 3}) {
		t.Fatalf("after the retry of %v: %s (%s)", rt.Batches, rt.Actual, rt.Outcome)
	}
	ev := strings.Join(rt.Evidence, "; ")
	for _, want := range []string{"started again before the retry", "edge FIB: 40 VM prefixes via skm2", `hosp → 40 VMs (all) answered "skm2": 40 of 40`} {
		if !strings.Contains(ev, want) {
			t.Errorf("retry evidence %q: want %q", ev, want)
		}
	}
}

// logResult logs what a rehearsal checked and injected.
func logResult(t *testing.T, res *Result) {
	t.Helper()
	for _, c := range res.Checked {
		t.Log("checked:", c)
	}
	for _, in := range res.Injected {
		t.Logf("injected %s in batch %d (%s): %v %v", in.Fault, in.Batch, in.At, in.VMs, in.Evidence)
	}
	if rt := res.Retry; rt != nil {
		t.Logf("retry of %v: %s (%s) in %s: %v", rt.Batches, rt.Actual, rt.Outcome, rt.Took, rt.Evidence)
	}
	t.Logf("outcome %s; lab up %s, run %s, total %s", res.Outcome, res.LabUp, res.RunTook, res.Took)
}

// TestRehearseThreeSites rehearses a runbook unlike the examples, in its
// own shape: three sites with their own names and next-hops, two edges of
// different ASes (the second reached over IPv6 only), IPv4 and IPv6 VMs
// probed by http, https, tcp and icmp on several ports. With a VM failure
// in batch 1 and a kill -9 of the daemon in batch 2, batch 1 must be rolled
// back and every other batch moved, on both edges.
func TestRehearseThreeSites(t *testing.T) {
	testenv.RequireFRR(t)
	vmDown, _ := ParseFault("vm-down:2@1")
	kill, _ := ParseFault("daemon-kill@2")
	res, err := Run(context.Background(), Options{EvidenceDir: t.TempDir(), Runbook: "testdata/three-sites/runbook.yaml", Lab: "r3" + randSuffix(),
		Faults: []Fault{vmDown, kill}, Out: testWriter{t}, Log: zerolog.New(logcheck.Writer(t)), MeasureRollback: true, ReachAll: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Checked {
		t.Log("checked:", c)
	}
	if !res.OK {
		t.Fatalf("rehearsal not OK: %v", res.Problems)
	}
	if !slices.Equal(res.Actual.RolledBack, []int{1}) || res.Actual.Phase != "done" || len(res.Actual.Committed) != len(res.Expected.Committed) {
		t.Fatalf("outcome %s", res.Actual)
	}
	for _, want := range []string{"edge FIB: ", "edge2 FIB: ", `answered "site2"`} {
		if !slices.ContainsFunc(res.Checked, func(c string) bool { return strings.Contains(c, want) }) {
			t.Errorf("checked %q: no line with %q", res.Checked, want)
		}
	}
	if res.Rollback <= 0 {
		t.Errorf("rollback --all not measured")
	}
}

// TestRehearseChain rehearses a move and its way back as one drill, in
// one lab and against one daemon: the way back starts where the move left
// the routes (its baseline announces every VM at the move's target). A VM
// failure rolls back a batch of the move, which the retry then moves; a
// kill -9 of the daemon in the way back keeps every route at the edge.
// Both must end as their policies promise, and the chain's index names
// both reports. Without the retry the chain stops after the move: the way
// back cannot start from VMs left at the source.
func TestRehearseChain(t *testing.T) {
	testenv.RequireFRR(t)
	vmDown, _ := ParseFault("vm-down:2@1")
	kill, _ := ParseFault("daemon-kill@2")
	steps := []Step{
		{Runbook: "testdata/small.yaml", Faults: []Fault{vmDown}, Retry: true},
		{Runbook: "testdata/small-back.yaml", Faults: []Fault{kill}},
	}
	dir, ev := t.TempDir(), t.TempDir()
	results, err := RunChain(context.Background(), Options{EvidenceDir: ev, Lab: "rc" + randSuffix(), Out: testWriter{t},
		Log: zerolog.New(logcheck.Writer(t)), ReportDir: dir, Report: WriteReport}, steps)
	if err != nil {
		t.Fatal(err)
	}
	if !ChainOK(steps, results) {
		for _, r := range results {
			t.Errorf("%s: %s, problems %v", r.Runbook, r.Actual, r.Problems)
		}
		t.FailNow()
	}
	if o := results[0].Outcome; o != engine.OutcomePartial || !slices.Equal(results[0].Actual.RolledBack, []int{1}) || results[0].FinalOutcome() != engine.OutcomeAllMoved {
		t.Errorf("step 1: outcome %s %s then %s, want partial with batch 1 rolled back, then all-moved", o, results[0].Actual, results[0].FinalOutcome())
	}
	if o := results[1].FinalOutcome(); o != engine.OutcomeAllMoved {
		t.Errorf("step 2: outcome %s, want all-moved", o)
	}
	for i, r := range results {
		for _, c := range r.Checked {
			t.Logf("step %d checked: %s", i+1, c)
		}
	}
	// One record per step, each also beside the step's report.
	checkRecord(t, ev, results[0], "testdata/small.yaml", "vm-down:2@1")
	checkRecord(t, ev, results[1], "testdata/small-back.yaml", "daemon-kill@2")
	for _, step := range []string{"1-rehearse-small", "2-rehearse-small-back"} {
		if _, err := evidence.Load(filepath.Join(dir, step, EvidenceFile)); err != nil {
			t.Errorf("step %s: %v", step, err)
		}
	}
	idx, err := os.ReadFile(dir + "/index.md")
	for _, want := range []string{"| 1 | testdata/small.yaml | all-moved | yes |", "| 2 | testdata/small-back.yaml | all-moved | yes |", "(2-rehearse-small-back/report.md)"} {
		if err != nil || !strings.Contains(string(idx), want) {
			t.Errorf("index.md: %v: no %q in\n%s", err, want, idx)
		}
	}

	// Without the retry, the chain stops after the move, and says why.
	steps[0].Retry = false
	steps[1].Faults = nil
	var out strings.Builder
	results, err = RunChain(context.Background(), Options{EvidenceDir: t.TempDir(), Lab: "rc" + randSuffix(), Out: &out,
		Log: zerolog.New(logcheck.Writer(t))}, steps)
	if err != nil || len(results) != 1 || ChainOK(steps, results) ||
		!strings.Contains(out.String(), "step 1 of 2 left VMs at the source (partial): the next step starts where this one ends, so the chain stops here (rehearse with --retry)") {
		t.Errorf("chain without retry: %d results, %v, output:\n%s", len(results), err, out.String())
	}
}

// TestRehearsePrometheus rehearses a runbook whose only health gate asks
// Prometheus: the lab runs a real one in ctl (its host name resolved
// there), scraping the responders while the hospitals' traffic runs. The
// gate passes for the healthy batches and fails batch 1, whose VMs answer
// 503 at the target, which the rollback-batch policy rolls back.
func TestRehearsePrometheus(t *testing.T) {
	testenv.RequireFRR(t)
	if _, err := lab.PrometheusBinary(); err != nil {
		t.Skip(err)
	}
	fault, _ := ParseFault("http-5xx:50%@1")
	res, err := Run(context.Background(), Options{EvidenceDir: t.TempDir(), Runbook: "testdata/prom.yaml", Lab: "rp" + randSuffix(),
		Faults: []Fault{fault}, Out: testWriter{t}, Log: zerolog.New(logcheck.Writer(t))})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK {
		t.Fatalf("rehearsal not OK: %v", res.Problems)
	}
	if !slices.Equal(res.Actual.RolledBack, []int{1}) || !slices.Equal(res.Actual.Committed, []int{0, 2, 3}) {
		t.Fatalf("outcome %s, want batch 1 rolled back and 0, 2, 3 committed", res.Actual)
	}
}

// TestRehearseTransit rehearses a runbook whose edges and gateways share
// one small transit network: the lab keeps every address on
// point-to-point links, and both edges route the moved VMs to the target.
func TestRehearseTransit(t *testing.T) {
	testenv.RequireFRR(t)
	vmDown, _ := ParseFault("vm-down:2@1")
	name := "rx" + randSuffix()
	t.Cleanup(func() {
		// The sites' nodes are hall_a and hall_b: the teardown must find
		// node names with an underscore too.
		ents, _ := os.ReadDir("/run/netns")
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), lab.NamespacePrefix+name+"-") {
				t.Errorf("namespace %s left after the rehearsal", e.Name())
			}
		}
	})
	res, err := Run(context.Background(), Options{EvidenceDir: t.TempDir(), Runbook: "testdata/transit.yaml", Lab: name,
		Faults: []Fault{vmDown}, Out: testWriter{t}, Log: zerolog.New(logcheck.Writer(t)), ReachAll: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Checked {
		t.Log("checked:", c)
	}
	if !res.OK {
		t.Fatalf("rehearsal not OK: %v", res.Problems)
	}
	if !slices.Equal(res.Actual.RolledBack, []int{1}) || !slices.Equal(res.Actual.Committed, []int{0, 2, 3}) {
		t.Fatalf("outcome %s", res.Actual)
	}
}
