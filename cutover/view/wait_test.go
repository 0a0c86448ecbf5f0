package view

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/cutover/cutover/cutover/engine"
)

// waitSteps are the statuses of a daemon with no run, twice, then of a
// run of two batches under way, then of that run done.
func waitSteps() []*engine.Status {
	idle := engine.Status{Now: at(-time.Minute), State: engine.RunState{Phase: engine.PhaseIdle}}
	running := ended(2)
	running.State.Phase, running.State.Ended = engine.PhaseRunning, time.Time{}
	b := &running.State.Batches[1]
	b.Phase, b.Decided = engine.BatchGating, time.Time{}
	b.Verdicts = []engine.VerdictRecord{{Gate: "probe", Pending: true, Round: 1, RoundOK: true, Streak: 1, Need: 2}}
	running.Now = at(12 * s)
	running.Events = []engine.Event{
		{Seq: 1, Time: at(0), Batch: -1, Op: "run", Msg: "run runbooks/helse-nord/runbook.yaml started by alice: 2 batches"},
		{Seq: 2, Time: at(4 * s), Batch: 0, Op: "commit", Msg: "batch-00 committed: gates passed in 3s"},
	}
	settle(&running)
	done := ended(2)
	done.State.Ended = at(14 * s)
	done.State.Result = "2 batches committed, 0 rolled back"
	done.Now = at(15 * s)
	done.Events = append(running.Events,
		engine.Event{Seq: 3, Time: at(14 * s), Batch: 1, Op: "commit", Msg: "batch-01 committed: gates passed in 3s"},
		engine.Event{Seq: 4, Time: at(14 * s), Batch: -1, Op: "done", Msg: "run finished: 2 batches committed, 0 rolled back; 20 VMs at the target"})
	settle(&done)
	return []*engine.Status{&idle, &idle, &running, &done}
}

// TestWatchWaitForRun: with WaitForRun, Watch waits while there is no
// run (one line), then follows the run that starts to its end.
func TestWatchWaitForRun(t *testing.T) {
	src := &source{steps: waitSteps()}
	var out bytes.Buffer
	opts := utc
	opts.Interval, opts.WaitForRun = time.Millisecond, true
	st, err := Watch(context.Background(), src.get, &out, opts)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	if st.State.Phase != engine.PhaseDone || src.calls != 4 {
		t.Errorf("Watch returned %s after %d calls, want done after 4", st.State.Phase, src.calls)
	}
	want := `waiting for a run…
run 20260314T230000Z  runbooks/helse-nord/runbook.yaml  skm1 → skm2  by alice
running · moved 20/20 VMs (100%) · batches 1/2 decided: 1 committed, 0 rolled back
#  batch     VMs  progress      state         gates                                     time
0  batch-00   10  [##########]  committed     pass (2 gates)                            4s (gate 3s)
1  batch-01   10  [######----]  gating        probe round 1 ✓ (1/2 in a row)            running 2s
events:
  23:00:00  run  run       run runbooks/helse-nord/runbook.yaml started by alice: 2 batches
  23:00:04  b0   commit    batch-00 committed: gates passed in 3s
  23:00:14  b1   state     committed    [##########] 4s (gate 3s)
  23:00:14  run  state     ALL MOVED: every batch committed, 20 VMs at skm2; moved 20/20 VMs
  23:00:14  b1   commit    batch-01 committed: gates passed in 3s
  23:00:14  run  done      run finished: 2 batches committed, 0 rolled back; 20 VMs at the target
`
	if out.String() != want {
		t.Errorf("output\n%s\nwant\n%s", out.String(), want)
	}

	// Without it, Watch says there is no run and returns.
	src = &source{steps: waitSteps()}
	out.Reset()
	opts.WaitForRun = false
	if _, err := Watch(context.Background(), src.get, &out, opts); err != nil {
		t.Fatalf("Watch: %v", err)
	}
	if out.String() != "no run\n" || src.calls != 1 {
		t.Errorf("without WaitForRun: %q after %d calls", out.String(), src.calls)
	}
}

// TestModelWaitForRun: the live view waits while there is no run, and
// quits when the run it then follows ends.
func TestModelWaitForRun(t *testing.T) {
	all := waitSteps()
	var screen bytes.Buffer
	opts := utc.withDefaults()
	opts.WaitForRun, opts.Interval = true, time.Millisecond // cmd() of a tick waits for it
	m := newModel(context.Background(), nil, opts, newStyled(&screen), *all[0])
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 30})
	if _, cmd := m.Update(statusMsg{st: *all[1]}); cmd == nil || cmd() == tea.Quit() {
		t.Fatal("the view does not wait for a run")
	}
	if v := ansi.Strip(m.View()); v != "waiting for a run…\nq: stop waiting\n" {
		t.Errorf("waiting view %q", v)
	}
	if _, cmd := m.Update(statusMsg{st: *all[2]}); cmd == nil || cmd() == tea.Quit() {
		t.Fatal("the view does not follow the run")
	}
	if v := ansi.Strip(m.View()); !strings.Contains(v, "probe round 1 ✓ (1/2 in a row)") {
		t.Errorf("run view:\n%s", v)
	}
	if _, cmd := m.Update(statusMsg{st: *all[3]}); cmd == nil || cmd() != tea.Quit() {
		t.Error("the view does not quit at the end of the run")
	}
	if v := ansi.Strip(m.View()); !strings.Contains(v, "\nALL MOVED: every batch committed, 20 VMs at skm2\n") {
		t.Errorf("end view:\n%s", v)
	}
}
