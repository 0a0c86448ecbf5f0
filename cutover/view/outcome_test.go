package view

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/cutover/engine"
)

// TestOutcomeBanner: how the run ended, in the colour it is shown in, and
// the next command.
func TestOutcomeBanner(t *testing.T) {
	tests := []struct {
		name   string
		change func(st *engine.Status)
		want   []styledLine
	}{
		{"all moved", func(*engine.Status) {}, []styledLine{
			{kOK, "ALL MOVED: every batch committed, 80 VMs at skm2"}}},
		{"partial: a batch rolled back, one held", func(st *engine.Status) {
			rollBack(st, 1, vmsDown(30, "tcp 80: connection refused"))
			hold(st, 3, vmsDown(3, "tcp 80: i/o timeout"))
		}, []styledLine{
			{kWarn, "PARTIAL: 20 VMs (batch 1 batch-01, batch 3 batch-03) still at skm1"},
			{kWarn, "next: cutover retry moves them again (readiness check, gates and go/no-go points); why: cutover status --batch N (N: 1, 3)"}}},
		{"partial: one batch", func(st *engine.Status) {
			hold(st, 7, vmsDown(1, "tcp 80: i/o timeout"))
		}, []styledLine{
			{kWarn, "PARTIAL: 10 VMs (batch 7 batch-07) still at skm1"},
			{kWarn, "next: cutover retry moves them again (readiness check, gates and go/no-go points); why: cutover status --batch 7"}}},
		{"partial: many batches", func(st *engine.Status) {
			for i := range 7 {
				rollBack(st, i, vmsDown(1, "http 503"))
			}
		}, []styledLine{
			{kWarn, "PARTIAL: 70 VMs (batch 0 batch-00, batch 1 batch-01, batch 2 batch-02, batch 3 batch-03, batch 4 batch-04, +2 more batches) still at skm1"},
			{kWarn, "next: cutover retry moves them again (readiness check, gates and go/no-go points); why: cutover status --batch N (N: 0, 1, 2, 3, 4, …)"}}},
		{"aborted before any move", func(st *engine.Status) {
			st.State.Phase, st.State.Result = engine.PhaseAborted, "pre-check failed: change window closed"
			for i := range st.State.Batches {
				st.State.Batches[i] = engine.BatchState{Index: i, Name: st.State.Batches[i].Name, VMs: 10, Phase: engine.BatchPending}
			}
		}, []styledLine{
			{kBad, "ABORTED: pre-check failed: change window closed · every VM at skm1"},
			{kBad, "next: start it again with cutover run (retry does not apply to an aborted run)"}}},
		{"aborted with VMs at the target", func(st *engine.Status) {
			st.State.Phase, st.State.Result = engine.PhaseAborted, "rolled back by alice"
		}, []styledLine{
			{kBad, "ABORTED: rolled back by alice · 80 VMs still at skm2"},
			{kBad, "next: cutover rollback --all takes them back to skm1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := ended(8)
			tt.change(&st)
			settle(&st)
			got := outcomeLines(st)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("banner\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestRenderPartial: the end screen of a partial run, in full.
func TestRenderPartial(t *testing.T) {
	st := ended(5)
	rollBack(&st, 1, vmsDown(30, "tcp 80: connection refused"))
	hold(&st, 3, vmsDown(3, "tcp 80: i/o timeout"))
	settle(&st)
	var out bytes.Buffer
	if err := Render(&out, st, utc); err != nil {
		t.Fatal(err)
	}
	want := `run 20260314T230000Z  runbooks/helse-nord/runbook.yaml  skm1 → skm2  by alice
done (partial) · moved 30/50 VMs (60%) · batches 5/5 decided: 3 committed, 1 rolled back, 1 held · ended 23:10:00 after 10m0s
PARTIAL: 20 VMs (batch 1 batch-01, batch 3 batch-03) still at skm1
next: cutover retry moves them again (readiness check, gates and go/no-go points); why: cutover status --batch N (N: 1, 3)
#  batch     VMs  progress      state         gates                                     time
0  batch-00   10  [##########]  committed     pass (2 gates)                            4s (gate 3s)
1  batch-01   10  [xxxxxxxxxx]  rolled-back   FAIL probe: 30 failing                    4s (rollback 20ms by policy)
   why: probe: vm-0001 10.64.0.10: tcp 80: connection refused (+29 more: cutover status --batch 1)
2  batch-02   10  [##########]  committed     pass (2 gates)                            4s (gate 3s)
3  batch-03   10  [!!!!!!!!!!]  held          not ready: 3 failing
   why: not ready at skm2: vm-0001 10.64.0.10: tcp 80: i/o timeout (+2 more: cutover status --batch 3)
4  batch-04   10  [##########]  committed     pass (2 gates)                            4s (gate 3s)
`
	if out.String() != want {
		t.Errorf("view\n%s\nwant\n%s", out.String(), want)
	}
}

// TestNoFolding: in a window far too small for 40 batches, every batch
// rolled back or held keeps its row and its why; only committed and
// pending batches are folded into count lines.
func TestNoFolding(t *testing.T) {
	st := ended(40)
	for _, i := range []int{2, 9, 17, 18, 30} {
		rollBack(&st, i, vmsDown(2, "http 503"))
	}
	hold(&st, 25, vmsDown(1, "tcp 80: i/o timeout"))
	st.State.Phase, st.State.Ended = engine.PhaseRunning, time.Time{}
	for i := 34; i < 40; i++ {
		st.State.Batches[i] = engine.BatchState{Index: i, Name: fmt.Sprintf("batch-%02d", i), VMs: 10, Phase: engine.BatchPending}
	}
	b := &st.State.Batches[33]
	b.Phase, b.Decided = engine.BatchGating, time.Time{}
	b.Verdicts = []engine.VerdictRecord{{Gate: "probe", Pending: true, Round: 2, RoundOK: true, Streak: 1, Need: 2}}
	st.Now = b.Started.Add(5 * s)
	settle(&st)
	want := ` #  batch     VMs  progress      state         gates                                     time
    … 2 batches: 2 committed
 2  batch-02   10  [xxxxxxxxxx]  rolled-back   FAIL probe: 2 failing                     4s (rollback 20ms by policy)
    why: probe: vm-0001 10.64.0.10: http 503 (+1 more: cutover status --batch 2)
    … 6 batches: 6 committed
 9  batch-09   10  [xxxxxxxxxx]  rolled-back   FAIL probe: 2 failing                     4s (rollback 20ms by policy)
    why: probe: vm-0001 10.64.0.10: http 503 (+1 more: cutover status --batch 9)
    … 7 batches: 7 committed
17  batch-17   10  [xxxxxxxxxx]  rolled-back   FAIL probe: 2 failing                     4s (rollback 20ms by policy)
    why: probe: vm-0001 10.64.0.10: http 503 (+1 more: cutover status --batch 17)
18  batch-18   10  [xxxxxxxxxx]  rolled-back   FAIL probe: 2 failing                     4s (rollback 20ms by policy)
    why: probe: vm-0001 10.64.0.10: http 503 (+1 more: cutover status --batch 18)
    … 6 batches: 6 committed
25  batch-25   10  [!!!!!!!!!!]  held          not ready: 1 failing
    why: not ready at skm2: vm-0001 10.64.0.10: tcp 80: i/o timeout
    … 4 batches: 4 committed
30  batch-30   10  [xxxxxxxxxx]  rolled-back   FAIL probe: 2 failing                     4s (rollback 20ms by policy)
    why: probe: vm-0001 10.64.0.10: http 503 (+1 more: cutover status --batch 30)
    … 2 batches: 2 committed
33  batch-33   10  [######----]  gating        probe round 2 ✓ (1/2 in a row)            running 5s
    … 6 batches: 6 pending
`
	for _, height := range []int{5, 14, 20} {
		t.Run(fmt.Sprint("height ", height), func(t *testing.T) {
			opts := utc.withDefaults()
			opts.height, opts.Events = height, -1
			v := render(st, nil, opts, plain{})
			_, table, _ := strings.Cut(v, "VMs (70%)")
			_, table, _ = strings.Cut(table, "\n")
			if table != want {
				t.Errorf("table\n%s\nwant\n%s", table, want)
			}
		})
	}
	// With room for more, the batches around the current one show.
	opts := utc.withDefaults()
	opts.height, opts.Events = 30, -1
	v := render(st, nil, opts, plain{})
	for _, want := range []string{"    … 2 batches: 2 committed\n 2  batch-02", "\n31  batch-31", "\n32  batch-32", "\n34  batch-34", "\n39  batch-39"} {
		if !strings.Contains(v, want) {
			t.Errorf("a roomy view lacks %q:\n%s", want, v)
		}
	}
	if n := strings.Count(v, "\n"); n > 30 {
		t.Errorf("a view of %d lines in 30:\n%s", n, v)
	}
}

// TestBaselineDown: at the go/no-go point of the VMs found down at
// pre-check, the view lists them (the first ten) and the answers.
func TestBaselineDown(t *testing.T) {
	head := `waiting for go/no-go at "baseline-down": %d VMs did not answer at pre-check, before any move:`
	answers := []string{
		"go:    cutover confirm baseline-down (they move with their batches; the gates ignore them)",
		"no-go: cutover confirm baseline-down --no-go (the run stays paused), or cutover rollback --all (ends it)",
	}
	tests := []struct {
		down int
		want []string
	}{
		{2, append([]string{fmt.Sprintf(head, 2),
			"  vm-0001 10.64.0.10: tcp 80: connection refused",
			"  vm-0002 10.64.0.11: tcp 80: connection refused"}, answers...)},
		{12, append([]string{fmt.Sprintf(head, 12),
			"  vm-0001 10.64.0.10: tcp 80: connection refused",
			"  vm-0002 10.64.0.11: tcp 80: connection refused",
			"  vm-0003 10.64.0.12: tcp 80: connection refused",
			"  vm-0004 10.64.0.13: tcp 80: connection refused",
			"  vm-0005 10.64.0.14: tcp 80: connection refused",
			"  vm-0006 10.64.0.15: tcp 80: connection refused",
			"  vm-0007 10.64.0.16: tcp 80: connection refused",
			"  vm-0008 10.64.0.17: tcp 80: connection refused",
			"  vm-0009 10.64.0.18: tcp 80: connection refused",
			"  vm-0010 10.64.0.19: tcp 80: connection refused",
			"  +2 more (cutover status -o json)"}, answers...)},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.down, " down"), func(t *testing.T) {
			st := *steps()[0]
			st.State.Phase, st.State.Pause, st.State.Confirm = engine.PhasePaused, "confirm", engine.ConfirmBaselineDown
			st.State.BaselineDown = vmsDown(tt.down, "tcp 80: connection refused")
			var out bytes.Buffer
			if err := Render(&out, st, utc); err != nil {
				t.Fatal(err)
			}
			want := "\n" + strings.Join(tt.want, "\n") + "\n#  batch"
			if !strings.Contains(out.String(), want) {
				t.Errorf("view lacks%s\n\n%s", want, out.String())
			}
			// Watch writes them as lines of the log.
			var lines []string
			for _, l := range changes(*steps()[0], st, nil, time.UTC) {
				lines = append(lines, l.text)
			}
			if len(lines) != len(tt.want) || lines[0] != "  23:00:00  run  state     "+tt.want[0] ||
				lines[len(lines)-1] != "  23:00:00  run  wait      "+strings.TrimSpace(tt.want[len(tt.want)-1]) {
				t.Errorf("watch lines:\n%s", strings.Join(lines, "\n"))
			}
		})
	}
}

// TestNotReadyPause: a run paused because a batch's VMs do not answer at
// the target says which batch, and what resume does.
func TestNotReadyPause(t *testing.T) {
	st := ended(3)
	st.State.Phase, st.State.Pause, st.State.Ended = engine.PhasePaused, "not-ready", time.Time{}
	st.State.Batches[2] = engine.BatchState{Index: 2, Name: "batch-02", VMs: 10, Phase: engine.BatchPending,
		Verdicts: []engine.VerdictRecord{{Gate: "ready", Failed: vmsDown(4, "tcp 80: i/o timeout")}}}
	settle(&st)
	var out bytes.Buffer
	if err := Render(&out, st, utc); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"\npaused before batch 2 batch-02: its VMs do not answer at skm2; cutover resume checks again (which: cutover status --batch 2)\n",
		"\n2  batch-02   10  [----------]  pending       not ready: 4 failing\n   why: not ready at skm2: vm-0001 10.64.0.10: tcp 80: i/o timeout (+3 more: cutover status --batch 2)\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("view lacks %q:\n%s", want, out.String())
		}
	}
}
