package view

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/cutover/engine"
)

// TestRenderBatch: the drill-down of one batch lists every failing target
// of every gate, one a line, and says what to do next.
func TestRenderBatch(t *testing.T) {
	st := ended(8)
	rollBack(&st, 1, vmsDown(30, "tcp 80: connection refused"))
	st.State.Batches[1].Retries, st.State.Batches[1].Attempts = 1, 2
	hold(&st, 3, vmsDown(3, "tcp 80: i/o timeout"))
	settle(&st)

	var out bytes.Buffer
	if err := RenderBatch(&out, st, 1, utc); err != nil {
		t.Fatal(err)
	}
	var failed strings.Builder
	for i := range 30 {
		fmt.Fprintf(&failed, "    vm-%04d 10.64.0.%d: tcp 80: connection refused\n", i+1, i+10)
	}
	want := `batch 1 batch-01: rolled-back
run 20260314T230000Z  runbooks/helse-nord/runbook.yaml  skm1 → skm2
size         10 VMs, 1 prefix
attempts     2 (retried 1 time)
started      23:00:10
converged    23:00:11
decided      23:00:14 (gate 3s)
rolled back  23:00:32
rollback     took 20ms, by policy
reason       gate failed: probe: vm-0001 10.64.0.10: tcp 80: connection refused (+2 more)
verdicts:
  bgp    pass
  probe  FAIL, 30 failing:
` + failed.String() + `next: cutover retry --batch 1 moves it again (readiness check, gates and go/no-go points); cutover retry moves every batch rolled back or held
`
	if out.String() != want {
		t.Errorf("batch 1\n%s\nwant\n%s", out.String(), want)
	}
	if n := strings.Count(out.String(), ": tcp 80: connection refused\n"); n != 30 {
		t.Errorf("%d failing VMs listed, want 30", n)
	}

	out.Reset()
	if err := RenderBatch(&out, st, 3, utc); err != nil {
		t.Fatal(err)
	}
	want = `batch 3 batch-03: held
run 20260314T230000Z  runbooks/helse-nord/runbook.yaml  skm1 → skm2
size         10 VMs, 1 prefix
attempts     0 (never moved)
held         23:00:30 (readiness check 1.2s)
reason       not ready at skm2: ready: vm-0001 10.64.0.10: tcp 80: i/o timeout (+2 more)
verdicts:
  ready  FAIL, 3 failing:
    vm-0001 10.64.0.10: tcp 80: i/o timeout
    vm-0002 10.64.0.11: tcp 80: i/o timeout
    vm-0003 10.64.0.12: tcp 80: i/o timeout
next: cutover retry --batch 3 moves it again (readiness check, gates and go/no-go points); cutover retry moves every batch rolled back or held
`
	if out.String() != want {
		t.Errorf("batch 3\n%s\nwant\n%s", out.String(), want)
	}
}

// TestRenderBatchUnderWay: a batch whose gate is rising, and the next step
// of a batch the run is still to decide.
func TestRenderBatchUnderWay(t *testing.T) {
	tests := []struct {
		name   string
		change func(st *engine.Status)
		batch  int
		want   string
	}{
		{"gate rising", func(st *engine.Status) {
			st.State.Phase = engine.PhaseRunning
			b := &st.State.Batches[2]
			b.Phase, b.Decided = engine.BatchGating, time.Time{}
			b.Verdicts = []engine.VerdictRecord{{Gate: "probe", Pending: true, Round: 1, Streak: 0, Need: 2, Failed: vmsDown(2, "http 503")}}
		}, 2, `verdicts:
  probe  running: round 1 ✗ (0/2), 2 failing in the last round:
    vm-0001 10.64.0.10: http 503
    vm-0002 10.64.0.11: http 503
`},
		{"gated again after a failed attempt", func(st *engine.Status) {
			st.State.Phase = engine.PhaseRunning
			b := &st.State.Batches[2]
			b.Phase, b.Decided, b.Attempts = engine.BatchGating, time.Time{}, 2
			b.Verdicts = []engine.VerdictRecord{{Gate: "probe", Failed: vmsDown(1, "http 503")},
				{Gate: "probe", Pending: true, Round: 2, RoundOK: true, Streak: 2, Need: 3}}
		}, 2, `verdicts of an earlier attempt:
  probe  FAIL, 1 failing:
    vm-0001 10.64.0.10: http 503
verdicts:
  probe  running: round 2 ✓ (2/3 in a row)
`},
		{"rolled back while the run goes on", func(st *engine.Status) {
			st.State.Phase = engine.PhaseRunning
			rollBack(st, 2, vmsDown(1, "http 503"))
		}, 2, "next: cutover retry --batch 2 moves it again once the run is done, or paused (cutover pause)\n"},
		{"aborted", func(st *engine.Status) {
			st.State.Phase = engine.PhaseAborted
			rollBack(st, 2, vmsDown(1, "http 503"))
		}, 2, "next: the run was aborted: start it again with cutover run\n"},
		{"paused after a failed gate", func(st *engine.Status) {
			st.State.Phase, st.State.Pause = engine.PhasePaused, "gate-failed"
			b := &st.State.Batches[2]
			b.Phase, b.Verdicts = engine.BatchGating, []engine.VerdictRecord{{Gate: "probe", Reasons: []string{"vm-0001: http 503"}}}
		}, 2, `  probe  FAIL:
    vm-0001: http 503
next: cutover resume runs its gates again; cutover rollback --batch 2 takes it back
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := ended(4)
			tt.change(&st)
			settle(&st)
			var out bytes.Buffer
			if err := RenderBatch(&out, st, tt.batch, utc); err != nil {
				t.Fatal(err)
			}
			if !strings.HasSuffix(out.String(), tt.want) {
				t.Errorf("drill-down\n%s\ndoes not end in\n%s", out.String(), tt.want)
			}
			if tt.name == "gate rising" && strings.Contains(out.String(), "FAIL") {
				t.Errorf("a rising gate says FAIL:\n%s", out.String())
			}
		})
	}
}

// TestRenderBatchErrors: a batch the run does not have.
func TestRenderBatchErrors(t *testing.T) {
	tests := []struct {
		name  string
		st    engine.Status
		batch int
		want  string
	}{
		{"after the last", ended(8), 12, "batch 12: the run has batches 0 to 7"},
		{"negative", ended(8), -1, "batch -1: the run has batches 0 to 7"},
		{"no run", engine.Status{State: engine.RunState{Phase: engine.PhaseIdle}}, 0, "batch 0: there is no run"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := RenderBatch(&out, tt.st, tt.batch, utc)
			if err == nil || err.Error() != tt.want {
				t.Errorf("err %v, want %q", err, tt.want)
			}
			if out.Len() > 0 {
				t.Errorf("wrote %q", out.String())
			}
		})
	}
}
