package engine

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/bgp"
	"github.com/cutover/cutover/nft"
)

// readyGate makes batches in notReady fail the readiness check until
// cleared, and records which batches were checked.
type readyGate struct {
	mu       sync.Mutex
	notReady map[int]bool
	checked  []int
}

func (g *readyGate) ready(_ context.Context, b int, _ []string) (bool, VerdictRecord) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.checked = append(g.checked, b)
	if g.notReady[b] {
		f := fmt.Sprintf("vm-%d 10.64.%d.10: tcp 80: connection refused", b, b)
		return false, VerdictRecord{Gate: "ready", Reasons: []string{"0/1 VMs answer at skm2", f}, Failed: []string{f}}
	}
	return true, VerdictRecord{Gate: "ready", Pass: true}
}

func (g *readyGate) set(b int, down bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.notReady[b] = down
}

func withReady(g *readyGate, policy ReadyPolicy) func(*harness) {
	return func(h *harness) {
		h.spec.Source, h.spec.Target = "skm1", "skm2"
		h.spec.Ready, h.spec.ReadyPolicy = g.ready, policy
	}
}

// TestOutcome: how a run ended, from the state alone.
func TestOutcome(t *testing.T) {
	c, r, h := BatchCommitted, BatchRolledBack, BatchHeld
	for _, tt := range []struct {
		name    string
		phase   RunPhase
		batches []BatchPhase
		want    Outcome
		vms     int
		at      []int
	}{
		{"under way", PhaseRunning, []BatchPhase{c, r, BatchPending}, OutcomeNone, 2, []int{1}},
		{"all moved", PhaseDone, []BatchPhase{c, c}, OutcomeAllMoved, 0, nil},
		{"one rolled back", PhaseDone, []BatchPhase{c, r, c}, OutcomePartial, 2, []int{1}},
		{"one held", PhaseDone, []BatchPhase{h, c}, OutcomePartial, 1, []int{0}},
		{"aborted", PhaseAborted, []BatchPhase{r, r}, OutcomeAborted, 3, []int{0, 1}},
		{"idle", PhaseIdle, nil, OutcomeNone, 0, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := RunState{Phase: tt.phase}
			for i, p := range tt.batches {
				s.Batches = append(s.Batches, BatchState{Index: i, VMs: i + 1, Phase: p})
			}
			if got := s.Outcome(); got != tt.want {
				t.Errorf("Outcome() = %q, want %q", got, tt.want)
			}
			vms, at := s.AtSource()
			if vms != tt.vms || !slices.Equal(at, tt.at) {
				t.Errorf("AtSource() = %d %v, want %d %v", vms, at, tt.vms, tt.at)
			}
		})
	}
}

// TestReadinessSkipHoldsBatch: a batch whose VMs do not answer at the
// target is held, never announced, and the run goes on; retry moves it
// once they answer, and the run ends all moved.
func TestReadinessSkipHoldsBatch(t *testing.T) {
	g := &readyGate{notReady: map[int]bool{1: true}}
	h := newHarnessWith(t, 3, RollbackBatch, withReady(g, ReadySkip))
	if err := h.e.Start(h.spec, "nina", false); err != nil {
		t.Fatal(err)
	}
	st := h.wait("the run to end", ended)
	if got, want := phases(st), []BatchPhase{BatchCommitted, BatchHeld, BatchCommitted}; !slices.Equal(got, want) {
		t.Fatalf("batch phases %v, want %v", got, want)
	}
	for _, set := range h.dp.moved() {
		if slices.Contains(set, batchPrefix(1).String()) {
			t.Fatalf("the held batch reached the dataplane: %v", h.dp.moved())
		}
	}
	if slices.Contains(announcedPrefixes(h.sp), batchPrefix(1).String()) {
		t.Fatalf("the held batch was announced: %v", announcedPrefixes(h.sp))
	}
	if got, want := st.Batches[1].Reason, "not ready: 0/1 VMs answer at skm2: vm-1 10.64.1.10: tcp 80: connection refused"; got != want {
		t.Errorf("reason %q, want %q", got, want)
	}
	if got := st.Batches[1].Verdicts; len(got) != 1 || len(got[0].Failed) != 1 {
		t.Errorf("verdicts of the held batch %+v, want the readiness verdict with its failed VM", got)
	}
	full := h.e.Status(0)
	if full.Outcome != OutcomePartial || full.AtSourceVMs != 1 || !slices.Equal(full.AtSourceBatches, []int{1}) {
		t.Errorf("outcome %q, %d VMs at the source in %v; want partial, 1 in [1]", full.Outcome, full.AtSourceVMs, full.AtSourceBatches)
	}
	if !strings.Contains(st.Result, "1 held at the source") {
		t.Errorf("result %q does not count the held batch", st.Result)
	}
	h.checkFold()

	g.set(1, false)
	if err := h.e.Retry(nil, "olga"); err != nil {
		t.Fatal(err)
	}
	st = h.wait("the retried run to end", func(s RunState) bool { return ended(s) && s.Batches[1].Phase != BatchPending })
	if got := st.Outcome(); got != OutcomeAllMoved {
		t.Fatalf("after retry: outcome %q (%v), want all-moved", got, phases(st))
	}
	if st.Batches[1].Retries != 1 {
		t.Errorf("retries %d, want 1", st.Batches[1].Retries)
	}
	h.checkFold()
}

// TestReadinessPause: under the pause policy the run pauses before the
// batch; resume checks again.
func TestReadinessPause(t *testing.T) {
	g := &readyGate{notReady: map[int]bool{0: true}}
	h := newHarnessWith(t, 2, Pause, withReady(g, ReadyPause))
	if err := h.e.Start(h.spec, "nina", false); err != nil {
		t.Fatal(err)
	}
	st := h.wait("the pause", func(s RunState) bool { return s.Phase == PhasePaused })
	if st.Pause != "not-ready" || st.Batches[0].Phase != BatchPending {
		t.Fatalf("paused %q with batch 0 %s, want not-ready and pending", st.Pause, st.Batches[0].Phase)
	}
	if len(announcedPrefixes(h.sp)) != 0 {
		t.Fatalf("announced %v before the batch was ready", announcedPrefixes(h.sp))
	}
	g.set(0, false)
	if err := h.e.Resume("nina"); err != nil {
		t.Fatal(err)
	}
	st = h.wait("the run to end", ended)
	if st.Outcome() != OutcomeAllMoved {
		t.Fatalf("outcome %q (%v)", st.Outcome(), phases(st))
	}
	h.checkFold()
}

// TestRetryAsksAgain: a retried batch goes through its go/no-go point
// again, and the gates run again.
func TestRetryAsksAgain(t *testing.T) {
	h := newHarnessWith(t, 3, RollbackBatch, func(h *harness) {
		h.spec.Batches[2].Confirm = []string{"before-last"}
		h.failing[2] = true
	})
	if err := h.e.Start(h.spec, "nina", false); err != nil {
		t.Fatal(err)
	}
	h.wait("before-last", func(s RunState) bool { return s.Confirm == "before-last" })
	if err := h.e.Confirm("before-last", true, "nina"); err != nil {
		t.Fatal(err)
	}
	st := h.wait("the run to end", ended)
	if st.Outcome() != OutcomePartial || st.Batches[2].RollbackBy != "policy" {
		t.Fatalf("outcome %q, batch 2 rolled back by %q", st.Outcome(), st.Batches[2].RollbackBy)
	}
	for _, tc := range []struct {
		batches []int
		want    string
	}{
		{[]int{0}, "retry: batch 0 is committed: only rolled-back and held batches are retried"},
		{[]int{7}, "retry: batch 7: batches are numbered 0 to 2"},
	} {
		if err := h.e.Retry(tc.batches, "nina"); err == nil || err.Error() != tc.want {
			t.Errorf("Retry(%v) = %v, want %q", tc.batches, err, tc.want)
		}
	}
	h.mu.Lock()
	h.failing[2] = false
	gatedBefore := len(h.gated)
	h.mu.Unlock()
	if err := h.e.Retry([]int{2}, "olga"); err != nil {
		t.Fatal(err)
	}
	h.wait("before-last again", func(s RunState) bool { return s.Confirm == "before-last" })
	if err := h.e.Confirm("before-last", true, "olga"); err != nil {
		t.Fatal(err)
	}
	st = h.wait("the end after the retry", func(s RunState) bool { return ended(s) && s.Batches[2].Phase == BatchCommitted })
	if st.Outcome() != OutcomeAllMoved {
		t.Fatalf("outcome %q", st.Outcome())
	}
	h.mu.Lock()
	regated := len(h.gated) - gatedBefore
	h.mu.Unlock()
	if regated != 1 {
		t.Errorf("the retried batch was gated %d times, want 1", regated)
	}
	h.checkFold()
}

// TestBaselineDownAsks: VMs down at pre-check stop the run at a go/no-go
// point naming them; go moves on.
func TestBaselineDownAsks(t *testing.T) {
	h := newHarnessWith(t, 1, RollbackBatch, func(h *harness) {
		h.spec.Baseline = func(context.Context) (BaselineRecord, error) {
			return BaselineRecord{Healthy: []string{"vm-a"}, Probed: 2, Down: []string{"vm-b 10.64.0.2: tcp 80: connection refused"}}, nil
		}
	})
	if err := h.e.Start(h.spec, "nina", false); err != nil {
		t.Fatal(err)
	}
	st := h.wait("the go/no-go", func(s RunState) bool { return s.Confirm == ConfirmBaselineDown })
	if !slices.Equal(st.BaselineDown, []string{"vm-b 10.64.0.2: tcp 80: connection refused"}) {
		t.Errorf("baseline down %v", st.BaselineDown)
	}
	var line string
	for _, ev := range h.e.Status(0).Events {
		if ev.Op == "precheck" {
			line = ev.Msg
		}
	}
	if want := "pre-check: baseline 1 of 2 probed VMs healthy; 1 down before any move: vm-b 10.64.0.2: tcp 80: connection refused"; line != want {
		t.Errorf("pre-check event %q, want %q", line, want)
	}
	if err := h.e.Confirm(ConfirmBaselineDown, true, "nina"); err != nil {
		t.Fatal(err)
	}
	if st := h.wait("the run to end", ended); st.Outcome() != OutcomeAllMoved {
		t.Fatalf("outcome %q", st.Outcome())
	}
	h.checkFold()
}

// TestRollbackRecordsWhoAndHowLong: an operator's rollback keeps the
// reason, the operator and the change's duration.
func TestRollbackRecordsWhoAndHowLong(t *testing.T) {
	h := newHarness(t, 2, RollbackBatch)
	if err := h.e.Start(h.spec, "nina", false); err != nil {
		t.Fatal(err)
	}
	h.wait("the run to end", ended)
	if err := h.e.Rollback(context.Background(), OnlyBatch(1).Because("vm-07 crashed"), "olga"); err != nil {
		t.Fatal(err)
	}
	st := h.e.Status(0).State
	b := st.Batches[1]
	if b.Phase != BatchRolledBack || b.RollbackBy != "olga" || b.RollbackTook <= 0 {
		t.Fatalf("batch 1: %s by %q in %v", b.Phase, b.RollbackBy, b.RollbackTook)
	}
	if want := "operator olga rollback --batch 1: vm-07 crashed"; b.Reason != want {
		t.Errorf("reason %q, want %q", b.Reason, want)
	}
	if st.Outcome() != OutcomePartial {
		t.Errorf("outcome %q, want partial", st.Outcome())
	}
	h.checkFold()
}

// TestRollbackAppliesBGPAndNftTogether holds the rollback's BGP change until
// its nft change has started and the other way round: a rollback that
// applied them one after the other would never get past the first.
func TestRollbackAppliesBGPAndNftTogether(t *testing.T) {
	h := newHarness(t, 2, RollbackBatch)
	if err := h.e.Start(h.spec, "nina", false); err != nil {
		t.Fatal(err)
	}
	h.wait("the run to end", ended)
	bgpIn, nftIn := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var problems []string
	meet := func(mine, theirs chan struct{}, what string) {
		close(mine)
		select {
		case <-theirs:
		case <-time.After(10 * time.Second):
			mu.Lock()
			problems = append(problems, what+" waited 10s for the other half of the rollback")
			mu.Unlock()
		}
	}
	h.sp.OnSet(func([]bgp.Route) { meet(bgpIn, nftIn, "bgp") })
	h.dp.mu.Lock()
	h.dp.hook = func(nft.State) { meet(nftIn, bgpIn, "nft") }
	h.dp.mu.Unlock()
	if err := h.e.Rollback(context.Background(), AllBatches(), "olga"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Fatal(strings.Join(problems, "; "))
	}
	if got := h.sp.Announced(); len(got) != 0 {
		t.Errorf("announced after rollback --all: %v", got)
	}
	if got := h.dp.moved(); len(got[len(got)-1]) != 0 {
		t.Errorf("nft moved after rollback --all: %v", got[len(got)-1])
	}
}
