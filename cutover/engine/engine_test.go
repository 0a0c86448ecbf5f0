package engine

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cutover/cutover/bgp"
	"github.com/cutover/cutover/nft"
)

// spyDataplane records every state it is asked to apply.
type spyDataplane struct {
	mu    sync.Mutex
	calls []nft.State
	fail  error
	hook  func(nft.State) // called first, outside the lock
}

func (d *spyDataplane) Apply(_ context.Context, s nft.State) error {
	d.mu.Lock()
	hook := d.hook
	d.mu.Unlock()
	if hook != nil {
		hook(s)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail != nil {
		return d.fail
	}
	d.calls = append(d.calls, s)
	return nil
}

func (d *spyDataplane) moved() [][]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out [][]string
	for _, s := range d.calls {
		var ps []string
		for _, p := range s.Moved["skm2"] {
			ps = append(ps, p.String())
		}
		out = append(out, ps)
	}
	return out
}

// batchPrefix is the single prefix of test batch b.
func batchPrefix(b int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 64, byte(b), 10}), 32)
}

var testNextHop = netip.MustParseAddr("10.255.2.2")

type harness struct {
	t      *testing.T
	e      *Engine
	j      *MemJournal
	sp     *bgp.Fake
	dp     *spyDataplane
	spec   *Spec
	cancel context.CancelFunc
	done   chan struct{}

	// rec, when set, is the engine's Recorder instead of j (a wrapper
	// of j); clock, when set, its Now and After; logw its log.
	rec   Recorder
	clock *fakeClock
	logw  io.Writer

	mu      sync.Mutex
	failing map[int]bool          // batches whose gate fails
	block   map[int]bool          // batches whose gate blocks until cancelled
	release map[int]chan struct{} // batches whose gate passes once this is closed
	gated   []int                 // batches gated, in order
}

func newHarness(t *testing.T, n int, policy FailurePolicy) *harness {
	t.Helper()
	return newHarnessWith(t, n, policy, nil)
}

// newHarnessWith is newHarness with setup run before the engine starts.
func newHarnessWith(t *testing.T, n int, policy FailurePolicy, setup func(h *harness)) *harness {
	t.Helper()
	h := &harness{t: t, j: &MemJournal{}, sp: bgp.NewFake(bgp.Limits{Allowed: []netip.Prefix{netip.MustParsePrefix("10.64.0.0/14")}, MaxPrefixes: 1000}),
		dp: &spyDataplane{}, failing: map[int]bool{}, block: map[int]bool{}, release: map[int]chan struct{}{}}
	h.spec = &Spec{Runbook: "test.yaml", Digest: "d1", Policy: policy}
	for i := range n {
		h.spec.Batches = append(h.spec.Batches, SpecBatch{Name: fmt.Sprintf("batch-%02d", i), VMs: 1, Prefixes: []netip.Prefix{batchPrefix(i)}})
	}
	h.spec.Routes = func(moved []int) []bgp.Route {
		var rs []bgp.Route
		for _, m := range moved {
			rs = append(rs, bgp.Route{Prefix: batchPrefix(m), NextHop: testNextHop})
		}
		return rs
	}
	h.spec.Dataplane = func(moved []int) nft.State {
		var ps []netip.Prefix
		for _, m := range moved {
			ps = append(ps, batchPrefix(m))
		}
		return nft.State{Moved: map[string][]netip.Prefix{"skm2": ps}}
	}
	h.spec.Converge = func(ctx context.Context, routes []bgp.Route) (string, error) {
		c, err := bgp.WaitConverged(ctx, h.sp, routes, time.Millisecond)
		return c.Proofs(), err
	}
	h.spec.Baseline = func(context.Context) (BaselineRecord, error) {
		return BaselineRecord{Healthy: []string{"vm"}, Probed: 1}, nil
	}
	h.spec.Gate = func(ctx context.Context, b int, _ []string) (bool, []VerdictRecord) {
		h.mu.Lock()
		h.gated = append(h.gated, b)
		fail, block, release := h.failing[b], h.block[b], h.release[b]
		h.mu.Unlock()
		if release != nil {
			select {
			case <-release:
			case <-ctx.Done():
				return false, []VerdictRecord{{Gate: "probe", Reasons: []string{"cancelled"}}}
			}
		}
		if block {
			<-ctx.Done()
			return false, []VerdictRecord{{Gate: "probe", Reasons: []string{"cancelled"}}}
		}
		if fail {
			return false, []VerdictRecord{{Gate: "probe", Reasons: []string{fmt.Sprintf("vm-%d: connection refused", b)}}}
		}
		return true, []VerdictRecord{{Gate: "probe", Pass: true}}
	}
	if setup != nil {
		setup(h)
	}
	h.start(RunState{})
	return h
}

// start (re)creates the engine with state st and runs its loop.
func (h *harness) start(st RunState) {
	cfg := Config{Speaker: h.sp, Dataplane: h.dp, Journal: h.j, Log: zerolog.New(zerolog.NewTestWriter(h.t)), State: st}
	if h.rec != nil {
		cfg.Journal = h.rec
	}
	if h.clock != nil {
		cfg.Now, cfg.After = h.clock.Now, h.clock.After
	}
	if h.logw != nil {
		cfg.Log = zerolog.New(h.logw)
	}
	h.e = New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan struct{})
	go func() { defer close(h.done); h.e.Loop(ctx) }()
	h.t.Cleanup(h.stop)
}

// stop ends the loop, as a crash would: no clean-up.
func (h *harness) stop() {
	h.cancel()
	<-h.done
}

func (h *harness) wait(what string, ok func(RunState) bool) RunState {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := h.e.Status(0).State
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s; state %+v", what, st)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func ended(s RunState) bool { return s.Phase == PhaseDone || s.Phase == PhaseAborted }

func phases(s RunState) []BatchPhase {
	var out []BatchPhase
	for _, b := range s.Batches {
		out = append(out, b.Phase)
	}
	return out
}

// checkFold asserts that replaying the journal gives the engine's state.
func (h *harness) checkFold() {
	h.t.Helper()
	got, err := Fold(h.j.Entries())
	if err != nil {
		h.t.Fatalf("Fold: %v", err)
	}
	want := h.e.Status(0).State
	if !reflect.DeepEqual(got, want) {
		h.t.Errorf("fold of the journal differs from the engine's state:\nfold   %+v\nengine %+v", got, want)
	}
}

func announcedPrefixes(f *bgp.Fake) []string {
	var out []string
	for _, r := range f.Announced() {
		out = append(out, r.Prefix.String())
	}
	return out
}

func TestEngineRuns(t *testing.T) {
	c, r, p := BatchCommitted, BatchRolledBack, BatchPending
	tests := []struct {
		name        string
		batches     int
		policy      FailurePolicy
		failing     []int
		wantPhase   RunPhase
		wantBatches []BatchPhase
		wantApplied []int
		// wantSets is the moved set of every nft Apply, in order; the first
		// is the baseline the pre-check applies.
		wantSets [][]int
	}{
		{"all pass", 3, RollbackBatch, nil, PhaseDone, []BatchPhase{c, c, c}, []int{0, 1, 2},
			[][]int{{}, {0}, {0, 1}, {0, 1, 2}}},
		{"middle fails, rollback-batch goes on", 3, RollbackBatch, []int{1}, PhaseDone, []BatchPhase{c, r, c}, []int{0, 2},
			[][]int{{}, {0}, {0, 1}, {0}, {0, 2}}},
		{"canary fails, rollback-batch goes on", 2, RollbackBatch, []int{0}, PhaseDone, []BatchPhase{r, c}, []int{1},
			[][]int{{}, {0}, {}, {1}}},
		{"middle fails, rollback-all", 3, RollbackAll, []int{1}, PhaseAborted, []BatchPhase{r, r, p}, []int{},
			[][]int{{}, {0}, {0, 1}, {}}},
		{"last fails, rollback-all", 2, RollbackAll, []int{1}, PhaseAborted, []BatchPhase{r, r}, []int{},
			[][]int{{}, {0}, {0, 1}, {}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.batches, tt.policy)
			for _, b := range tt.failing {
				h.failing[b] = true
			}
			if err := h.e.Start(h.spec, "nina", false); err != nil {
				t.Fatal(err)
			}
			st := h.wait("the run to end", ended)
			if st.Phase != tt.wantPhase {
				t.Errorf("run phase %s, want %s (%s)", st.Phase, tt.wantPhase, st.Result)
			}
			if got := phases(st); !slices.Equal(got, tt.wantBatches) {
				t.Errorf("batch phases %v, want %v", got, tt.wantBatches)
			}
			if !slices.Equal(st.Applied, tt.wantApplied) {
				t.Errorf("applied %v, want %v", st.Applied, tt.wantApplied)
			}
			var wantSets [][]string
			for _, set := range tt.wantSets {
				var ps []string
				for _, b := range set {
					ps = append(ps, batchPrefix(b).String())
				}
				wantSets = append(wantSets, ps)
			}
			if got := h.dp.moved(); !reflect.DeepEqual(got, wantSets) {
				t.Errorf("nft applies %v, want %v", got, wantSets)
			}
			var wantBGP []string
			for _, b := range tt.wantApplied {
				wantBGP = append(wantBGP, batchPrefix(b).String())
			}
			if got := announcedPrefixes(h.sp); !slices.Equal(got, wantBGP) {
				t.Errorf("announced %v, want %v", got, wantBGP)
			}
			for _, b := range tt.failing {
				if st.Batches[b].Reason == "" || len(st.Batches[b].Verdicts) == 0 {
					t.Errorf("batch %d: no reason or verdicts recorded: %+v", b, st.Batches[b])
				}
			}
			h.checkFold()
		})
	}
}

func TestEngineRefusesSecondRun(t *testing.T) {
	h := newHarness(t, 2, RollbackBatch)
	h.spec.Batches[0].Confirm = []string{"before-start"}
	if err := h.e.Start(h.spec, "nina", false); err != nil {
		t.Fatal(err)
	}
	h.wait("the confirm point", func(s RunState) bool { return s.Confirm == "before-start" })
	err := h.e.Start(h.spec, "ola", false)
	want := "a run is already active: test.yaml (paused); pause it and roll it back, or wait for it to end"
	if err == nil || err.Error() != want {
		t.Fatalf("second Start: %v, want %q", err, want)
	}
}

func TestEngineConfirmPoints(t *testing.T) {
	h := newHarness(t, 3, RollbackBatch)
	h.spec.Batches[0].Confirm = []string{"before-start"}
	h.spec.Batches[1].Confirm = []string{"after-canary"}
	h.spec.ConfirmEnd = []string{"before-end"}
	if err := h.e.Start(h.spec, "nina", false); err != nil {
		t.Fatal(err)
	}
	st := h.wait("before-start", func(s RunState) bool { return s.Confirm == "before-start" })
	if len(st.Applied) != 0 || st.Phase != PhasePaused {
		t.Fatalf("at before-start: applied %v phase %s", st.Applied, st.Phase)
	}
	if err := h.e.Resume("nina"); err == nil || err.Error() != `resume: the run waits for go/no-go at "before-start": answer with cutover confirm before-start` {
		t.Errorf("Resume at a confirm point: %v", err)
	}
	if err := h.e.Confirm("after-canary", true, "nina"); err == nil || err.Error() != `confirm: the run waits at "before-start", not "after-canary"` {
		t.Errorf("Confirm of the wrong point: %v", err)
	}
	// A no-go keeps the run paused at the point.
	if err := h.e.Confirm("", false, "nina"); err != nil {
		t.Fatal(err)
	}
	if st := h.e.Status(0).State; st.Confirm != "before-start" || st.Phase != PhasePaused || st.Pause != "no-go" {
		t.Fatalf("after no-go: %+v", st)
	}
	if err := h.e.Confirm("before-start", true, "nina"); err != nil {
		t.Fatal(err)
	}
	st = h.wait("after-canary", func(s RunState) bool { return s.Confirm == "after-canary" })
	if !slices.Equal(st.Applied, []int{0}) {
		t.Fatalf("at after-canary applied %v, want [0]", st.Applied)
	}
	if err := h.e.Confirm("after-canary", true, "nina"); err != nil {
		t.Fatal(err)
	}
	st = h.wait("before-end", func(s RunState) bool { return s.Confirm == "before-end" })
	if !slices.Equal(st.Applied, []int{0, 1, 2}) {
		t.Fatalf("at before-end applied %v", st.Applied)
	}
	if err := h.e.Confirm("before-end", true, "nina"); err != nil {
		t.Fatal(err)
	}
	st = h.wait("done", ended)
	if st.Phase != PhaseDone || !slices.Equal(st.Confirmed, []string{"before-start", "after-canary", "before-end"}) {
		t.Fatalf("end: phase %s confirmed %v", st.Phase, st.Confirmed)
	}
	h.checkFold()
}

func TestEngineAutoConfirm(t *testing.T) {
	h := newHarness(t, 2, RollbackBatch)
	h.spec.Batches[0].Confirm = []string{"before-start"}
	h.spec.ConfirmEnd = []string{"before-end"}
	if err := h.e.Start(h.spec, "nina", true); err != nil {
		t.Fatal(err)
	}
	st := h.wait("done", ended)
	if st.Phase != PhaseDone || !slices.Equal(st.Confirmed, []string{"before-start", "before-end"}) {
		t.Fatalf("phase %s confirmed %v", st.Phase, st.Confirmed)
	}
}

func TestEnginePauseStepResume(t *testing.T) {
	// Batch 0's gate waits for release: the run cannot end before the
	// pause, however fast the fakes are.
	release := make(chan struct{})
	h := newHarnessWith(t, 3, RollbackBatch, func(h *harness) { h.release[0] = release })
	h.spec.Batches[0].Confirm = []string{"before-start"}
	if err := h.e.Start(h.spec, "nina", false); err != nil {
		t.Fatal(err)
	}
	h.wait("before-start", func(s RunState) bool { return s.Confirm == "before-start" })
	if err := h.e.Confirm("", true, "nina"); err != nil {
		t.Fatal(err)
	}
	if err := h.e.Pause("nina"); err != nil {
		t.Fatal(err)
	}
	h.wait("paused", func(s RunState) bool { return s.Phase == PhasePaused })
	// The pause came before batch 0 started, or lets it finish.
	close(release)
	h.wait("batch 0 finished or not started", func(s RunState) bool {
		return s.Batches[0].Phase == BatchCommitted || s.Batches[0].Phase == BatchPending
	})
	// Pause lets a batch under way finish; nothing new starts.
	time.Sleep(20 * time.Millisecond)
	before := h.e.Status(0).State.Applied
	time.Sleep(20 * time.Millisecond)
	if after := h.e.Status(0).State.Applied; !slices.Equal(before, after) {
		t.Fatalf("batches moved while paused: %v → %v", before, after)
	}
	if err := h.e.Step("nina"); err != nil {
		t.Fatal(err)
	}
	st := h.wait("one step", func(s RunState) bool { return s.Phase == PhasePaused && s.Pause == "step" })
	if len(st.Applied) != len(before)+1 {
		t.Fatalf("step moved %v → %v, want one batch more", before, st.Applied)
	}
	if err := h.e.Resume("nina"); err != nil {
		t.Fatal(err)
	}
	st = h.wait("done", ended)
	if !slices.Equal(st.Applied, []int{0, 1, 2}) {
		t.Fatalf("applied %v", st.Applied)
	}
	h.checkFold()
}

func TestEnginePausePolicy(t *testing.T) {
	h := newHarness(t, 2, Pause)
	h.failing[1] = true
	if err := h.e.Start(h.spec, "nina", false); err != nil {
		t.Fatal(err)
	}
	st := h.wait("gate-failed pause", func(s RunState) bool { return s.Pause == "gate-failed" })
	if st.Batches[1].Phase != BatchGating || !slices.Equal(st.Applied, []int{0, 1}) {
		t.Fatalf("after failed gate under pause: batch %s applied %v", st.Batches[1].Phase, st.Applied)
	}
	// The person fixes the VMs and resumes: the gates run again.
	h.mu.Lock()
	h.failing[1] = false
	h.mu.Unlock()
	if err := h.e.Resume("nina"); err != nil {
		t.Fatal(err)
	}
	st = h.wait("done", ended)
	if got := phases(st); !slices.Equal(got, []BatchPhase{BatchCommitted, BatchCommitted}) {
		t.Fatalf("phases %v", got)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !slices.Equal(h.gated, []int{0, 1, 1}) {
		t.Errorf("gated %v, want [0 1 1]", h.gated)
	}
}

func TestEngineRollbackInterruptsGate(t *testing.T) {
	h := newHarness(t, 3, RollbackBatch)
	h.block[1] = true
	if err := h.e.Start(h.spec, "nina", false); err != nil {
		t.Fatal(err)
	}
	h.wait("batch 1 gating", func(s RunState) bool { return len(s.Batches) > 1 && s.Batches[1].Phase == BatchGating })
	start := time.Now()
	if err := h.e.Rollback(context.Background(), AllBatches(), "nina"); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	st := h.e.Status(0).State
	if st.Phase != PhaseAborted || len(st.Applied) != 0 || len(h.sp.Announced()) != 0 {
		t.Fatalf("after rollback --all: phase %s applied %v announced %v", st.Phase, st.Applied, announcedPrefixes(h.sp))
	}
	if got := phases(st); !slices.Equal(got, []BatchPhase{BatchRolledBack, BatchRolledBack, BatchPending}) {
		t.Errorf("phases %v", got)
	}
	t.Logf("rollback --all during a gate took %s", took)
	h.checkFold()
}

func TestEngineRollbackSelections(t *testing.T) {
	tests := []struct {
		target      RollbackTarget
		wantApplied []int
		wantErr     string
	}{
		{OnlyBatch(1), []int{0, 2, 3}, ""},
		{BatchesFrom(2), []int{0, 1}, ""},
		{AllBatches(), []int{}, ""},
		{OnlyBatch(4), []int{0, 1, 2, 3}, "rollback --batch 4: batches are numbered 0 to 3"},
		{BatchesFrom(-1), []int{0, 1, 2, 3}, "rollback --to -1: batches are numbered 0 to 3"},
		{RollbackTarget{}, []int{0, 1, 2, 3}, "rollback: no target: give all, one batch or a batch and every later one; nothing was rolled back"},
		{RollbackTarget{Batch: 0}, []int{0, 1, 2, 3}, "rollback: no target: give all, one batch or a batch and every later one; nothing was rolled back"},
	}
	for _, tt := range tests {
		t.Run(tt.target.String(), func(t *testing.T) {
			h := newHarness(t, 4, RollbackBatch)
			if err := h.e.Start(h.spec, "nina", false); err != nil {
				t.Fatal(err)
			}
			h.wait("done", ended)
			err := h.e.Rollback(context.Background(), tt.target, "nina")
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Rollback: %v, want %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			st := h.e.Status(0).State
			if !slices.Equal(st.Applied, tt.wantApplied) {
				t.Fatalf("applied %v, want %v", st.Applied, tt.wantApplied)
			}
			if tt.wantErr == "" && tt.target.Kind == TargetOnly && st.Result != "3 batches committed, 1 rolled back (after rollback by nina)" {
				t.Errorf("result after rolling back one batch of a finished run: %q", st.Result)
			}
			var want []string
			for _, b := range tt.wantApplied {
				want = append(want, batchPrefix(b).String())
			}
			if got := announcedPrefixes(h.sp); !slices.Equal(got, want) {
				t.Fatalf("announced %v, want %v", got, want)
			}
			h.checkFold()
		})
	}
}

// TestEngineCrashResume kills the engine in the middle of a batch's gates,
// rebuilds it from the journal alone, and checks that recovery re-applies
// what the journal says, that resume finishes the run, and that the end
// state equals that of an uninterrupted run.
func TestEngineCrashResume(t *testing.T) {
	h := newHarness(t, 4, RollbackBatch)
	h.block[2] = true
	if err := h.e.Start(h.spec, "nina", false); err != nil {
		t.Fatal(err)
	}
	h.wait("batch 2 gating", func(s RunState) bool { return len(s.Batches) > 2 && s.Batches[2].Phase == BatchGating })
	h.stop() // the crash

	st, err := Fold(h.j.Entries())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(st.Applied, []int{0, 1, 2}) || st.Phase != PhaseRunning {
		t.Fatalf("journal after crash: applied %v phase %s", st.Applied, st.Phase)
	}
	// A new process: fresh speaker (the peers keep the routes by graceful
	// restart), fresh dataplane handle, same journal.
	h.sp = bgp.NewFake(bgp.Limits{Allowed: []netip.Prefix{netip.MustParsePrefix("10.64.0.0/14")}, MaxPrefixes: 1000})
	h.dp = &spyDataplane{}
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
	if got, want := announcedPrefixes(h.sp), []string{"10.64.0.10/32", "10.64.1.10/32", "10.64.2.10/32"}; !slices.Equal(got, want) {
		t.Fatalf("re-announced after restart %v, want %v", got, want)
	}
	if st := h.e.Status(0).State; st.Phase != PhasePaused || st.Pause != "interrupted" {
		t.Fatalf("after recover: phase %s pause %q", st.Phase, st.Pause)
	}
	if err := h.e.Resume("nina"); err != nil {
		t.Fatal(err)
	}
	end := h.wait("done", ended)

	// The same run without a crash.
	u := newHarness(t, 4, RollbackBatch)
	if err := u.e.Start(u.spec, "nina", false); err != nil {
		t.Fatal(err)
	}
	want := u.wait("done", ended)
	if !slices.Equal(end.Applied, want.Applied) || !slices.Equal(phases(end), phases(want)) {
		t.Fatalf("after crash and resume: applied %v phases %v; uninterrupted: %v %v", end.Applied, phases(end), want.Applied, phases(want))
	}
	if !slices.Equal(announcedPrefixes(h.sp), announcedPrefixes(u.sp)) {
		t.Fatalf("announced %v, uninterrupted %v", announcedPrefixes(h.sp), announcedPrefixes(u.sp))
	}
	h.checkFold()
}

// TestEngineCrashDuringRollback: an intent without its applied record is
// re-applied, and the interrupted rollback is completed.
func TestEngineCrashDuringRollback(t *testing.T) {
	h := newHarness(t, 3, RollbackBatch)
	if err := h.e.Start(h.spec, "nina", false); err != nil {
		t.Fatal(err)
	}
	h.wait("done", ended)
	h.stop()
	// Write what a crash between intent and applied leaves behind.
	_, _ = h.j.Record(RecPhase, PhaseRecord{Phase: PhasePaused, Pause: "operator"})
	_, _ = h.j.Record(RecBatch, BatchRecord{Batch: 1, Phase: BatchRollingBack, Reason: "operator"})
	_, _ = h.j.Record(RecIntent, ChangeRecord{Moved: []int{0, 2}, Batch: 1, Op: "rollback"})
	st, err := Fold(h.j.Entries())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(st.Intent, []int{0, 2}) {
		t.Fatalf("intent %v", st.Intent)
	}
	h.sp = bgp.NewFake(bgp.Limits{Allowed: []netip.Prefix{netip.MustParsePrefix("10.64.0.0/14")}, MaxPrefixes: 1000})
	h.start(st)
	if err := h.e.Attach(h.spec); err != nil {
		t.Fatal(err)
	}
	if err := h.e.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := announcedPrefixes(h.sp); !slices.Equal(got, []string{"10.64.0.10/32", "10.64.2.10/32"}) {
		t.Fatalf("re-applied %v", got)
	}
	if err := h.e.Resume("nina"); err != nil {
		t.Fatal(err)
	}
	st = h.wait("done", ended)
	if got := phases(st); !slices.Equal(got, []BatchPhase{BatchCommitted, BatchRolledBack, BatchCommitted}) {
		t.Fatalf("phases %v", got)
	}
	h.checkFold()
}

func TestFoldRejectsUnknownRecord(t *testing.T) {
	_, err := Fold([]JournalEntry{{Seq: 7, Type: "teleport", Data: []byte(`{}`)}})
	want := `journal record 7: unknown journal record type "teleport"`
	if err == nil || err.Error() != want {
		t.Fatalf("Fold: %v, want %q", err, want)
	}
}

func TestDecideHoldAndWindow(t *testing.T) {
	now := time.Date(2026, 11, 24, 23, 30, 0, 0, time.UTC)
	sp := &Spec{Batches: []SpecBatch{{Name: "canary"}, {Name: "batch-01"}}, Hold: time.Minute}
	st := &RunState{Phase: PhaseRunning, Batches: []BatchState{
		{Phase: BatchCommitted, Decided: now.Add(-20 * time.Second)}, {Phase: BatchPending}}}
	if a := decide(st, sp, now); a.kind != actWait || !a.until.Equal(now.Add(40*time.Second)) {
		t.Errorf("within hold: %+v, want wait until +40s", a)
	}
	if a := decide(st, sp, now.Add(41*time.Second)); a.kind != actMove || a.batch != 1 {
		t.Errorf("after hold: %+v, want move batch 1", a)
	}
	sp.Window = func(time.Time) error { return fmt.Errorf("closes at 00:00") }
	if a := decide(st, sp, now.Add(time.Hour)); a.kind != actWindow || a.why != "closes at 00:00" {
		t.Errorf("window closed: %+v", a)
	}
	st.Phase = PhasePaused
	if a := decide(st, sp, now); a.kind != actNone {
		t.Errorf("paused: %+v, want none", a)
	}
}

// TestEngineFourEyes: a point that needs two operators waits after the
// first go, refuses the same operator twice (whoever root acts for counts,
// a user's claimed name does not), and goes on at the second; a no-go
// starts the count again. run --yes is the starter's go, one of two.
func TestEngineFourEyes(t *testing.T) {
	h := newHarness(t, 2, RollbackBatch)
	h.spec.Batches[0].Confirm = []string{"before-start"}
	h.spec.ConfirmEnd = []string{"before-end"}
	h.spec.ConfirmOperators = map[string]int{"before-start": 2, "before-end": 2}
	if err := h.e.Start(h.spec, "root (nina)", true); err != nil {
		t.Fatal(err)
	}
	st := h.wait("before-start", func(s RunState) bool { return s.Confirm == "before-start" && s.Phase == PhasePaused })
	if len(st.Applied) != 0 || !slices.Equal(st.ConfirmGo, []string{"nina"}) || st.ConfirmGoAt != "before-start" {
		t.Fatalf("at before-start with --yes: applied %v, go from %v at %q", st.Applied, st.ConfirmGo, st.ConfirmGoAt)
	}
	want := `confirm: nina already said go at "before-start", which needs 2 different operators: another operator must say go`
	for _, op := range []string{"nina", "root (nina)", "nina (ola)"} {
		if err := h.e.Confirm("before-start", true, op); err == nil || err.Error() != want {
			t.Errorf("go from %q again: %v, want %q", op, err, want)
		}
	}
	// A no-go from anyone resets the count: nina's go no longer stands.
	if err := h.e.Confirm("before-start", false, "ola"); err != nil {
		t.Fatal(err)
	}
	if st := h.e.Status(0).State; st.Confirm != "before-start" || st.Pause != "no-go" || len(st.ConfirmGo) != 0 {
		t.Fatalf("after no-go: confirm %q pause %q go %v", st.Confirm, st.Pause, st.ConfirmGo)
	}
	if err := h.e.Confirm("before-start", true, "ola"); err != nil {
		t.Fatal(err)
	}
	if st := h.e.Status(0).State; st.Confirm != "before-start" || st.Phase != PhasePaused || !slices.Equal(st.ConfirmGo, []string{"ola"}) {
		t.Fatalf("after one go: confirm %q phase %s go %v", st.Confirm, st.Phase, st.ConfirmGo)
	}
	if err := h.e.Confirm("before-start", true, "root (nina)"); err != nil {
		t.Fatal(err)
	}
	st = h.wait("before-end", func(s RunState) bool { return s.Confirm == "before-end" && s.Phase == PhasePaused })
	if !slices.Equal(st.Applied, []int{0, 1}) || !slices.Equal(st.ConfirmGo, []string{"nina"}) {
		t.Fatalf("at before-end: applied %v go %v", st.Applied, st.ConfirmGo)
	}
	// The journal holds the go that waits: a restart folds it back.
	h.checkFold()
	if err := h.e.Confirm("before-end", true, "per"); err != nil {
		t.Fatal(err)
	}
	st = h.wait("done", ended)
	if st.Phase != PhaseDone || !slices.Equal(st.Confirmed, []string{"before-start", "before-end"}) || len(st.ConfirmGo) != 0 {
		t.Fatalf("end: phase %s confirmed %v go %v", st.Phase, st.Confirmed, st.ConfirmGo)
	}
	var texts []string
	for _, e := range h.e.Status(0).Events {
		if e.Op == "confirm" {
			texts = append(texts, e.Msg)
		}
	}
	h.checkFold()
	wantTexts := []string{
		`go at "before-start" by root (nina) (--yes): one more operator must say go`,
		`waiting for go/no-go at "before-start" (2 different operators)`,
		`no-go at "before-start" by ola`,
		`go at "before-start" by ola: one more operator must say go`,
		`go at "before-start" by root (nina)`,
		`go at "before-end" by root (nina) (--yes): one more operator must say go`,
		`waiting for go/no-go at "before-end" (2 different operators)`,
		`go at "before-end" by per`,
	}
	if !slices.Equal(texts, wantTexts) {
		t.Errorf("confirm events:\n%s\nwant:\n%s", strings.Join(texts, "\n"), strings.Join(wantTexts, "\n"))
	}
}

func TestOperatorIdentity(t *testing.T) {
	for _, tt := range []struct{ op, want string }{
		{"nina", "nina"},
		{"root (nina)", "nina"},
		{"nina (ola)", "nina"},
		{"root", "root"},
		{"root (nina (x))", "nina (x)"},
		{"unknown", "unknown"},
	} {
		if got := OperatorIdentity(tt.op); got != tt.want {
			t.Errorf("OperatorIdentity(%q) = %q, want %q", tt.op, got, tt.want)
		}
	}
}
