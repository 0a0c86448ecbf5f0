package daemon

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/cutover/daemon/client"
	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/plan"

	"github.com/rs/zerolog"

	"github.com/cutover/cutover/bgp"
	"github.com/cutover/cutover/cutover/health"
)

const daemonRunbook = "testdata/daemon/runbook.yaml"

type daemonHarness struct {
	t      *testing.T
	dir    string
	fb     *FakeBackends
	d      *Daemon
	cl     *client.Client
	cancel context.CancelFunc
	served chan error
}

// openDaemon starts a daemon on dir with fresh fakes (a new process: the
// speaker and dataplane start empty) and serves its API on a unix socket.
func openDaemon(t *testing.T, dir string, probe *health.Fake) *daemonHarness {
	t.Helper()
	return openDaemonWith(t, dir, &FakeBackends{Probe: probe})
}

func openDaemonWith(t *testing.T, dir string, fb *FakeBackends) *daemonHarness {
	t.Helper()
	h := &daemonHarness{t: t, dir: dir, fb: fb}
	d, err := Open(context.Background(), Config{StateDir: dir, Backends: h.fb, Log: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatalf("OpenDaemon: %v", err)
	}
	h.d = d
	sock := filepath.Join(dir, "api.sock")
	l, err := Listen(sock, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.served = cancel, make(chan error, 1)
	go func() { h.served <- d.Serve(ctx, l) }()
	h.cl = client.New(sock)
	return h
}

// stop stops the API and the daemon without withdrawing (as on SIGTERM,
// or for the journal's sake as after a crash: nothing is cleaned up).
func (h *daemonHarness) stop() {
	h.t.Helper()
	h.cancel()
	if err := <-h.served; err != nil {
		h.t.Errorf("Serve: %v", err)
	}
	if err := h.d.Close(false); err != nil {
		h.t.Errorf("Close: %v", err)
	}
}

func (h *daemonHarness) waitFor(what string, ok func(engine.RunState) bool) engine.RunState {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := h.cl.Status(context.Background(), 0)
		if err != nil {
			h.t.Fatalf("status: %v", err)
		}
		if ok(st.State) {
			return st.State
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s: phase %s pause %q confirm %q", what, st.State.Phase, st.State.Pause, st.State.Confirm)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestDaemonRunRestartRollback(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	abs, _ := filepath.Abs(daemonRunbook)
	h := openDaemon(t, dir, nil)

	if err := h.cl.Run(ctx, abs, false); err != nil {
		t.Fatalf("run: %v", err)
	}
	h.waitFor("before-start", func(s engine.RunState) bool { return s.Confirm == "before-start" })
	// A second run is refused while this one is active.
	err := h.cl.Run(ctx, abs, false)
	if err == nil || !strings.Contains(err.Error(), "a run is already active") {
		t.Fatalf("second run: %v", err)
	}
	if err := h.cl.Confirm(ctx, "before-start", true); err != nil {
		t.Fatal(err)
	}
	st := h.waitFor("the end", func(s engine.RunState) bool { return s.Phase == engine.PhaseDone })
	if !slices.Equal(st.Applied, []int{0, 1, 2, 3}) {
		t.Fatalf("applied %v", st.Applied)
	}
	if got := len(h.fb.BGP.Announced()); got != 12 {
		t.Fatalf("announced %d routes, want 12", got)
	}
	h.stop()

	// A new daemon process: empty fakes, the same state directory. It must
	// re-announce all 12 routes before anyone asks.
	h = openDaemon(t, dir, nil)
	if got := len(h.fb.BGP.Announced()); got != 12 {
		t.Fatalf("after restart: announced %d routes, want 12", got)
	}
	if st := h.waitFor("state", func(engine.RunState) bool { return true }); st.Phase != engine.PhaseDone {
		t.Fatalf("after restart the finished run is %s", st.Phase)
	}
	took, err := h.cl.Rollback(ctx, engine.RollbackTarget{All: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rollback --all took %s in the daemon", took)
	if got := len(h.fb.BGP.Announced()); got != 0 {
		t.Fatalf("after rollback --all: %d routes still announced", got)
	}
	es, err := h.cl.Journal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var audit []string
	drift := ""
	for _, e := range es {
		if e.Type == engine.RecOperator && strings.Contains(string(e.Data), `"command":"drift"`) {
			drift = string(e.Data)
			continue
		}
		if e.Type == engine.RecOperator || e.Type == engine.RecConfirm {
			audit = append(audit, e.Type+" "+string(e.Data))
		}
	}
	// The new process's dataplane started empty, as after a reboot: the
	// daemon must have reported that before re-applying the journal.
	if !strings.Contains(drift, "table inet cutover: missing") || !strings.Contains(drift, "missing element moved_skm2_v4 10.64.0.10/31") {
		t.Errorf("no drift report for the lost nft table: %q", drift)
	}
	if len(audit) != 2 || !strings.Contains(audit[0], `"point":"before-start"`) || !strings.Contains(audit[1], `"command":"rollback","args":"--all"`) {
		t.Fatalf("audit trail %q", audit)
	}
	h.stop()
}

func TestDaemonInterruptedBatchResumes(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	abs, _ := filepath.Abs(daemonRunbook)
	pl, _, err := plan.Load(abs)
	if err != nil {
		t.Fatal(err)
	}
	// The first process's peer never accepts batch 1: the batch hangs in
	// convergence, and the daemon is stopped right there.
	bc, err := pl.SpeakerConfig()
	if err != nil {
		t.Fatal(err)
	}
	slow := bgp.NewFake(bc.Limits)
	slow.SetPeers([]bgp.PeerStatus{{Address: bc.Peers[0].Address, AS: 65000, State: "established", Established: true}})
	slow.SetObservers(bc.Peers[0].Address)
	slow.Withhold(bc.Peers[0].Address, pl.Batches[1].Prefixes...)
	h := openDaemonWith(t, dir, &FakeBackends{BGP: slow})
	if err := h.cl.Run(ctx, abs, true); err != nil {
		t.Fatal(err)
	}
	h.waitFor("batch 1 announced", func(s engine.RunState) bool {
		return len(s.Batches) > 1 && s.Batches[1].Phase == engine.BatchAnnouncing && slices.Contains(s.Applied, 1)
	})
	h.stop()

	h = openDaemon(t, dir, nil)
	st := h.waitFor("state after restart", func(engine.RunState) bool { return true })
	if st.Phase != engine.PhasePaused || st.Pause != "interrupted" {
		t.Fatalf("after restart: phase %s pause %q, want paused (interrupted)", st.Phase, st.Pause)
	}
	want := len(pl.Batches[0].Prefixes) + len(pl.Batches[1].Prefixes)
	if got := len(h.fb.BGP.Announced()); got != want {
		t.Fatalf("restart re-announced %d routes, want %d (batches 0 and 1)", got, want)
	}
	if err := h.cl.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	st = h.waitFor("the end", func(s engine.RunState) bool { return s.Phase == engine.PhaseDone })
	if !slices.Equal(st.Applied, []int{0, 1, 2, 3}) || len(h.fb.BGP.Announced()) != 12 {
		t.Fatalf("end: applied %v, %d routes", st.Applied, len(h.fb.BGP.Announced()))
	}
	if st.Batches[1].Attempts != 2 {
		t.Errorf("batch 1 attempts %d, want 2 (interrupted, then resumed)", st.Batches[1].Attempts)
	}
	h.stop()
}

func TestDaemonRefusesBadRunbook(t *testing.T) {
	h := openDaemon(t, t.TempDir(), nil)
	defer h.stop()
	err := h.cl.Run(context.Background(), "/nonexistent/runbook.yaml", true)
	if err == nil || !strings.Contains(err.Error(), "cannot read the runbook") {
		t.Fatalf("run of a missing runbook: %v", err)
	}
}

func TestClientWithoutDaemon(t *testing.T) {
	cl := client.New(filepath.Join(t.TempDir(), "none.sock"))
	_, err := cl.Status(context.Background(), 0)
	if !errors.Is(err, client.ErrNoDaemon) {
		t.Fatalf("status without daemon: %v", err)
	}
}

func TestDryRunExamples(t *testing.T) {
	for _, rb := range []string{"../../runbooks/helse-nord/runbook.yaml", "../../runbooks/drain-upgrade/out.yaml",
		"../../runbooks/drain-upgrade/back.yaml", "../../runbooks/dr-drill/failover.yaml", "../../runbooks/dr-drill/failback.yaml"} {
		t.Run(rb, func(t *testing.T) {
			var b strings.Builder
			if err := DryRun(context.Background(), rb, time.Date(2026, 11, 24, 22, 0, 0, 0, time.UTC), &b); err != nil {
				t.Fatalf("DryRun: %v\n%s", err, b.String())
			}
			out := b.String()
			for _, want := range []string{"nothing was changed", "pre-check", "canary", "simulated against fakes:", "0 rolled back", "expected duration"} {
				if !strings.Contains(out, want) {
					t.Errorf("timeline lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

// TestDaemonHandover: a finished run's moved batches are taken over by a
// runbook whose baseline announces exactly them (drain out, then back),
// and refused for one whose baseline differs.
func TestDaemonHandover(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	out, _ := filepath.Abs(daemonRunbook)
	back, _ := filepath.Abs("testdata/daemon/back.yaml")
	other, _ := filepath.Abs("testdata/daemon/other.yaml")
	h := openDaemon(t, dir, nil)
	defer h.stop()
	if err := h.cl.Run(ctx, out, true); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the first run's end", func(s engine.RunState) bool { return s.Phase == engine.PhaseDone })

	err := h.cl.Run(ctx, other, true)
	if err == nil || !strings.Contains(err.Error(), "baseline differs from what is announced in 12 routes (e.g. 10.64.0.16/32 via 10.255.2.2 would be withdrawn)") {
		t.Fatalf("run of a runbook that does not take over: %v", err)
	}
	before := len(h.fb.BGP.Calls())
	if err := h.cl.Run(ctx, back, true); err != nil {
		t.Fatalf("run of the runbook that takes over: %v", err)
	}
	st := h.waitFor("the second run's end", func(s engine.RunState) bool {
		return s.Phase == engine.PhaseDone && strings.HasSuffix(s.Runbook, "back.yaml")
	})
	if !slices.Equal(st.Applied, []int{0, 1, 2, 3}) {
		t.Fatalf("back run applied %v", st.Applied)
	}
	for _, r := range h.fb.BGP.Announced() {
		if r.NextHop.String() != "10.255.1.2" {
			t.Fatalf("after the way back %s is still announced via %s", r.Prefix, r.NextHop)
		}
	}
	if n := len(h.fb.BGP.Announced()); n != 12 {
		t.Fatalf("%d routes announced after the way back, want 12 (announce_source keeps them)", n)
	}
	// Every Set of the way back announced all 12 prefixes: the handover
	// never withdrew a VM.
	calls := h.fb.BGP.Calls()[before:]
	if len(calls) < 5 {
		t.Fatalf("%d Set calls on the way back, want the baseline and 4 batches", len(calls))
	}
	for i, call := range calls {
		if len(call) != 12 {
			t.Fatalf("Set call %d of the way back announced %d routes, want 12", i, len(call))
		}
	}
}
