package view

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/internal/golden"
)

var t0 = time.Date(2026, 3, 14, 23, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

const s = time.Second

var (
	pass = []engine.VerdictRecord{{Gate: "bgp", Pass: true}, {Gate: "probe", Pass: true}}
	fail = []engine.VerdictRecord{{Gate: "bgp", Pass: true}, {Gate: "probe", Reasons: []string{
		"vm-2a (10.64.2.10): tcp/443 connect: connection refused", "vm-2b (10.64.2.11): http 503"}}}
	failReason = "gate failed: probe: vm-2a (10.64.2.10): tcp/443 connect: connection refused (+1 more)"
)

// run is a hand-made run of 4 batches that a test moves step by step.
type run struct {
	st     engine.Status
	events []engine.Event
	seq    int
}

func newRun() *run {
	r := &run{}
	r.st = engine.Status{TotalVMs: 500, Now: t0, State: engine.RunState{
		RunID: "20260314T230000Z", Runbook: "runbooks/helse-nord/runbook.yaml", Operator: "alice",
		Source: "skm1", Target: "skm2", Phase: engine.PhasePrechecking, Started: t0, Applied: []int{},
	}}
	for i, b := range []struct {
		name string
		vms  int
	}{{"b00-canary", 10}, {"b01-unn", 200}, {"b02-hsyk", 150}, {"b03-nlsh", 140}} {
		r.st.State.Batches = append(r.st.State.Batches, engine.BatchState{Index: i, Name: b.name, VMs: b.vms, Prefixes: 1, Phase: engine.BatchPending})
	}
	r.recordEvent(0, -1, "run", engine.RecRunStart, engine.RunStartRecord{RunID: r.st.State.RunID, Runbook: r.st.State.Runbook,
		Operator: "alice", Batches: r.st.State.Batches})
	return r
}

func (r *run) event(d time.Duration, batch int, op, msg string) {
	r.seq++
	r.events = append(r.events, engine.Event{Seq: r.seq, Time: at(d), Batch: batch, Op: op, Msg: msg})
}

// recordEvent is the event the engine tells when it writes rec, in the
// engine's words (EventText of the state so far).
func (r *run) recordEvent(d time.Duration, batch int, op, typ string, rec engine.Record) {
	r.event(d, batch, op, engine.EventText(typ, rec, &r.st.State))
}

// restart is a daemon restart: event numbers start again.
func (r *run) restart() { r.seq, r.events = 0, nil }

func (r *run) b(i int) *engine.BatchState { return &r.st.State.Batches[i] }

// snap returns a deep copy of the status as the daemon would send it,
// taken at now.
func (r *run) snap(now time.Duration) engine.Status {
	c := r.st
	c.Now = at(now)
	c.State.Batches = slices.Clone(r.st.State.Batches)
	c.State.Applied = slices.Clone(r.st.State.Applied)
	c.Events = slices.Clone(r.events)
	c.MovedVMs = 0
	for _, i := range c.State.Applied {
		c.MovedVMs += c.State.Batches[i].VMs
	}
	return c
}

func (r *run) commit(i int, start time.Duration) {
	b := r.b(i)
	b.Phase, b.Attempts = engine.BatchCommitted, b.Attempts+1
	b.Started, b.Announced, b.Converged, b.Decided = at(start), at(start+200*time.Millisecond), at(start+s), at(start+4*s)
	b.ApplyTook, b.GateTook, b.Verdicts = 200*time.Millisecond, 3*s, pass
	if !slices.Contains(r.st.State.Applied, i) {
		r.st.State.Applied = append(r.st.State.Applied, i)
	}
}

// steps is the run as a daemon's status would show it, poll after poll;
// a nil entry is a poll that fails (the daemon restarting).
func steps() []*engine.Status {
	r := newRun()
	var out []*engine.Status
	add := func(now time.Duration) { st := r.snap(now); out = append(out, &st) }
	add(0)

	r.st.State.Phase = engine.PhaseRunning
	r.recordEvent(1*s, -1, "precheck", engine.RecBaseline, engine.BaselineRecord{Healthy: make([]string, 498), Probed: 500})
	b := r.b(0)
	b.Phase, b.Started, b.Attempts = engine.BatchAnnouncing, at(1*s), 1
	r.st.State.Applied = []int{0}
	r.event(1*s, 0, "announce", "announcing b00-canary (10 VMs, 1 prefixes)")
	add(1500 * time.Millisecond)

	r.commit(0, 1*s)
	r.event(2*s, 0, "converge", "peers hold the batch's routes after 800ms")
	r.event(5*s, 0, "commit", "b00-canary committed: gates passed in 3s")
	r.st.State.Phase, r.st.State.Pause, r.st.State.Confirm = engine.PhasePaused, "confirm", "after-canary"
	r.recordEvent(5*s, 1, "confirm", engine.RecPhase, engine.PhaseRecord{Phase: engine.PhasePaused, Pause: "confirm", Confirm: "after-canary"})
	add(6 * s)
	add(7 * s) // nothing new: no line
	out = append(out, nil)

	r.st.State.Phase, r.st.State.Pause, r.st.State.Confirm, r.st.State.Confirmed = engine.PhaseRunning, "", "", []string{"after-canary"}
	r.recordEvent(20*s, -1, "confirm", engine.RecConfirm, engine.ConfirmRecord{Point: "after-canary", Go: true, Operator: "bob"})
	b = r.b(1)
	b.Phase, b.Started, b.Announced, b.Converged, b.Attempts = engine.BatchGating, at(20*s), at(20200*time.Millisecond), at(21*s), 1
	r.st.State.Applied = []int{0, 1}
	r.event(20*s, 1, "announce", "announcing b01-unn (200 VMs, 1 prefixes)")
	r.event(21*s, 1, "converge", "peers hold the batch's routes after 800ms")
	r.st.ETA = 9 * s
	add(22 * s)
	out = append(out, nil)

	// The daemon was killed during b01's gate and came back.
	r.restart()
	r.st.State.Phase, r.st.State.Pause = engine.PhasePaused, "interrupted"
	r.st.ETA = 0
	r.recordEvent(23*s, -1, "recover", engine.RecApplied, engine.ChangeRecord{Moved: []int{0, 1}, Batch: -1, Op: "recover", Took: 300 * time.Millisecond, Routes: 2})
	r.recordEvent(23*s, -1, "pause", engine.RecPhase, engine.PhaseRecord{Phase: engine.PhasePaused, Pause: "interrupted"})
	add(23 * s)

	r.st.State.Phase, r.st.State.Pause = engine.PhaseRunning, ""
	r.event(25*s, -1, "resume", "resume by alice")
	r.commit(1, 20*s)
	r.b(1).Decided = at(28 * s)
	r.event(28*s, 1, "commit", "b01-unn committed: gates passed in 3s")
	b = r.b(2)
	b.Phase, b.Attempts, b.Reason = engine.BatchRolledBack, 1, failReason
	b.Started, b.Announced, b.Converged, b.Decided, b.RolledBack = at(28*s), at(28200*time.Millisecond), at(29*s), at(32*s), at(32300*time.Millisecond)
	b.ApplyTook, b.GateTook, b.Verdicts = 200*time.Millisecond, 3*s, fail
	b.RollbackBy, b.RollbackTook = "policy", 20*time.Millisecond // measured: not RolledBack-Decided
	r.event(28*s, 2, "announce", "announcing b02-hsyk (150 VMs, 1 prefixes)")
	r.event(32*s, 2, "gate", "b02-hsyk failed its gates: probe: vm-2a (10.64.2.10): tcp/443 connect: connection refused (+1 more)")
	r.event(32300*time.Millisecond, 2, "rollback", "rolled back 1 batches in 20ms ("+failReason+")")
	b = r.b(3)
	b.Phase, b.Started, b.Attempts = engine.BatchAnnouncing, at(33*s), 1
	r.st.State.Applied = []int{0, 1, 3}
	r.event(33*s, 3, "announce", "announcing b03-nlsh (140 VMs, 1 prefixes)")
	r.st.ETA = 4 * s
	add(34 * s)

	r.commit(3, 33*s)
	r.event(37*s, 3, "commit", "b03-nlsh committed: gates passed in 3s")
	r.st.State.Phase, r.st.State.Ended, r.st.State.Result = engine.PhaseDone, at(37*s), "3 batches committed, 1 rolled back"
	r.st.ETA = 0
	r.recordEvent(37*s, -1, "done", engine.RecPhase, engine.PhaseRecord{Phase: engine.PhaseDone, Result: r.st.State.Result})
	add(38 * s)
	return out
}

// source serves the steps in order; a nil step fails once.
type source struct {
	mu    sync.Mutex
	steps []*engine.Status
	calls int
}

func (src *source) get(context.Context) (engine.Status, error) {
	src.mu.Lock()
	defer src.mu.Unlock()
	i := min(src.calls, len(src.steps)-1)
	src.calls++
	if src.steps[i] == nil {
		return engine.Status{}, errors.New("dial unix /run/cutover/cutover.sock: connect: connection refused")
	}
	return *src.steps[i], nil
}

var utc = Options{Location: time.UTC, Events: 5}

func TestRenderMidRun(t *testing.T) {
	all := steps()
	var out bytes.Buffer
	if err := Render(&out, *all[5], utc); err != nil { // b1 gating, b0 committed
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "TestRenderMidRun.golden"), out.Bytes())
	for _, want := range []string{
		"0  b00-canary   10  [##########]  committed     pass (2 gates)",
		"1  b01-unn     200  [######----]  gating",
		"running 2s",
		"moved 210/500 VMs (42%)",
		"ETA 9s",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("view lacks %q", want)
		}
	}
}

func TestRenderEnd(t *testing.T) {
	all := steps()
	var out bytes.Buffer
	if err := Render(&out, *all[len(all)-1], utc); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "TestRenderEnd.golden"), out.Bytes())
}

func TestWatchPlain(t *testing.T) {
	src := &source{steps: steps()}
	var out bytes.Buffer
	opts := utc
	opts.Interval = time.Millisecond
	st, err := Watch(context.Background(), src.get, &out, opts)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	if st.State.Phase != engine.PhaseDone || st.MovedVMs != 350 {
		t.Errorf("Watch returned %s with %d VMs moved", st.State.Phase, st.MovedVMs)
	}
	if src.calls != len(src.steps) {
		t.Errorf("Watch asked %d times for %d steps: it must stop at the end of the run", src.calls, len(src.steps))
	}
	golden.Check(t, filepath.Join("testdata", "TestWatchPlain.golden"), out.Bytes())
	// Each event exactly once, even across the daemon's restart.
	for _, ev := range []string{"announcing b00-canary", "go at \"after-canary\" by bob", "daemon restart: state re-applied", "paused: interrupted by a daemon restart", "resume by alice", "run finished"} {
		if n := strings.Count(out.String(), ev); n != 1 {
			t.Errorf("event %q printed %d times", ev, n)
		}
	}
}

func TestWatchErrors(t *testing.T) {
	down := errors.New("connect: connection refused")
	tests := []struct {
		name    string
		src     Source
		wantErr string
	}{
		{"no daemon at the start", func(context.Context) (engine.Status, error) { return engine.Status{}, down },
			"watch: connect: connection refused"},
		{"daemon gone for good", func() Source {
			first := true
			return func(context.Context) (engine.Status, error) {
				if first {
					first = false
					return *steps()[1], nil
				}
				return engine.Status{}, down
			}
		}(), "watch: no status for 20ms: connect: connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			_, err := Watch(context.Background(), tt.src, &out, Options{Interval: time.Millisecond, Patience: 20 * time.Millisecond, Location: time.UTC})
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("err %v, want %q", err, tt.wantErr)
			}
		})
	}
	t.Run("context ends", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		calls := 0
		src := func(context.Context) (engine.Status, error) {
			calls++
			if calls == 3 {
				cancel()
			}
			return *steps()[1], nil
		}
		_, err := Watch(ctx, src, &bytes.Buffer{}, Options{Interval: time.Millisecond})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err %v, want context.Canceled", err)
		}
	})
}

func TestTracker(t *testing.T) {
	ev := func(seq int, sec int) engine.Event {
		return engine.Event{Seq: seq, Time: at(time.Duration(sec) * s), Op: "x", Msg: fmt.Sprintf("%d@%d", seq, sec)}
	}
	tr := &tracker{keep: 3}
	msgs := func(es []engine.Event) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Msg)
		}
		return out
	}
	for _, step := range []struct {
		in   []engine.Event
		want []string
	}{
		{[]engine.Event{ev(1, 0), ev(2, 1)}, []string{"1@0", "2@1"}},
		{[]engine.Event{ev(1, 0), ev(2, 1), ev(3, 2)}, []string{"3@2"}}, // all events every time
		{[]engine.Event{ev(4, 3)}, []string{"4@3"}},                     // only the new ones
		{[]engine.Event{ev(4, 3)}, nil},
		{[]engine.Event{ev(1, 10), ev(2, 11)}, []string{"1@10", "2@11"}}, // restarted daemon
		{[]engine.Event{ev(1, 10), ev(2, 11), ev(3, 12)}, []string{"3@12"}},
	} {
		if got := msgs(tr.fresh(step.in)); !slices.Equal(got, step.want) {
			t.Errorf("fresh(%v) = %v, want %v", msgs(step.in), got, step.want)
		}
	}
	if got := msgs(tr.recent); !slices.Equal(got, []string{"1@10", "2@11", "3@12"}) {
		t.Errorf("recent %v", got)
	}
}

// TestModel drives the live view's model as Bubble Tea would.
func TestModel(t *testing.T) {
	all := steps()
	var screen bytes.Buffer // not a terminal: lipgloss renders without color
	m := newModel(context.Background(), nil, utc.withDefaults(), newStyled(&screen), *all[0])
	if cmd := m.Init(); cmd == nil {
		t.Fatal("Init returns no tick")
	}
	if _, cmd := m.Update(tickMsg{}); cmd == nil {
		t.Fatal("a tick does not poll")
	}
	_, cmd := m.Update(statusMsg{st: *all[5]})
	if cmd == nil {
		t.Fatal("an active run does not tick again")
	}
	v := ansi.Strip(m.View())
	for _, want := range []string{"1  b01-unn     200  [██████░░░░]  gating", "moved 210/500 VMs (42%)", "q: stop watching"} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q:\n%s", want, v)
		}
	}
	m.Update(statusMsg{err: errors.New("connection refused")})
	if v := m.View(); !strings.Contains(v, "status unavailable since") || !strings.Contains(v, "connection refused (retrying)") {
		t.Errorf("view does not show the failing status:\n%s", v)
	}
	// A short terminal: the batches around the current one, and counts;
	// the rolled-back batch keeps its row and its why, cut to the width
	// with the pointer to the rest kept.
	m.Update(tea.WindowSizeMsg{Width: 100, Height: 12})
	m.Update(statusMsg{st: *all[8]})
	v = ansi.Strip(m.View())
	for _, want := range []string{"   … 2 batches: 2 committed\n2  b02-hsyk", "3  b03-nlsh",
		"\n   why: probe: vm-2a (10.64.2.10): tcp/443 connect: connection… (+1 more: cutover status --batch 2)\n"} {
		if !strings.Contains(v, want) {
			t.Errorf("short terminal view lacks %q:\n%s", want, v)
		}
	}
	if m.lastErr != nil {
		t.Error("the error stays after a good status")
	}
	_, cmd = m.Update(statusMsg{st: *all[len(all)-1]})
	if cmd == nil || cmd() != tea.Quit() {
		t.Error("the view does not quit at the end of the run")
	}
	if _, cmd = m.Update(tea.KeyMsg{Type: tea.KeyCtrlC}); cmd == nil || cmd() != tea.Quit() || !m.interrupted {
		t.Error("ctrl+c does not stop the view")
	}
}

// TestWatchTTY runs the real Bubble Tea program, writing to a buffer.
func TestWatchTTY(t *testing.T) {
	src := &source{steps: steps()}
	first, _ := src.get(context.Background())
	var out bytes.Buffer
	opts := utc.withDefaults()
	opts.Interval = time.Millisecond
	st, err := watchTTY(context.Background(), src.get, &out, nil, first, opts)
	if err != nil {
		t.Fatalf("watchTTY: %v", err)
	}
	if st.State.Phase != engine.PhaseDone {
		t.Errorf("ended in %s", st.State.Phase)
	}
	if screen := ansi.Strip(out.String()); !strings.Contains(screen, "PARTIAL: 150 VMs (batch 2 b02-hsyk) still at skm1") {
		t.Errorf("the last frame lacks the result:\n%s", screen)
	}
}

// TestRenderJournalUnusable: a journal that cannot be written is one line
// under the run's state, in the rendered view and when Watch follows.
func TestRenderJournalUnusable(t *testing.T) {
	st := *steps()[5]
	st.State.Phase, st.State.Pause = engine.PhasePaused, "journal unusable: write /var/lib/cutover/journal: no space left on device"
	st.Journal = engine.JournalStatus{Unusable: true, Error: "write /var/lib/cutover/journal: no space left on device",
		Since: at(5 * s), Held: 3, Retry: at(9 * s)}
	var out bytes.Buffer
	if err := Render(&out, st, utc); err != nil {
		t.Fatal(err)
	}
	want := "JOURNAL UNUSABLE since 23:00:05: write /var/lib/cutover/journal: no space left on device · 3 records held in memory until the journal takes them · next try 23:00:09 · no step forward; rollback still works\n"
	if !strings.Contains(out.String(), "\n"+want) {
		t.Errorf("view lacks the journal's line %q:\n%s", want, out.String())
	}
	full := engine.JournalStatus{Unusable: true, Full: "the file system of /var/lib/cutover is full: the journal writes into its reserve (16 KiB of 20 KiB left)", Since: at(5 * s)}
	if got, want := journalLine(full, time.UTC), "JOURNAL UNUSABLE since 23:00:05: the file system of /var/lib/cutover is full: the journal writes into its reserve (16 KiB of 20 KiB left) · no step forward; rollback still works"; got != want {
		t.Errorf("journal line\n got %q\nwant %q", got, want)
	}
	// Without a run.
	out.Reset()
	if err := Render(&out, engine.Status{Journal: full}, utc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "no run\nJOURNAL UNUSABLE since 23:00:05: ") {
		t.Errorf("view without a run:\n%s", out.String())
	}
	// Watch tells when it becomes unusable and when it is back.
	ok := st
	ok.Journal = engine.JournalStatus{}
	var lines []string
	for _, l := range changes(ok, st, nil, time.UTC) {
		lines = append(lines, l.text)
	}
	for _, l := range changes(st, ok, nil, time.UTC) {
		lines = append(lines, l.text)
	}
	if len(lines) != 2 || !strings.Contains(lines[0], "run  journal   JOURNAL UNUSABLE since 23:00:05") || !strings.HasSuffix(lines[1], "run  journal   the journal can be written again") {
		t.Errorf("watch lines %q", lines)
	}
}
