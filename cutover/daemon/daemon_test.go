package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/cutover/daemon/client"
	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/plan"
	"github.com/cutover/cutover/cutover/runbook"

	"github.com/rs/zerolog"

	"github.com/cutover/cutover/bgp"
	"github.com/cutover/cutover/cutover/health"
	"github.com/cutover/cutover/internal/logcheck"
)

const daemonRunbook = "testdata/daemon/runbook.yaml"

type daemonHarness struct {
	t       *testing.T
	dir     string
	fb      *FakeBackends
	d       *Daemon
	cl      *client.Client
	cancel  context.CancelFunc
	served  chan error
	stopped bool
}

// openDaemon starts a daemon on dir with fresh fakes (a new process: the
// speaker and dataplane start empty) and serves its API on a unix socket.
func openDaemon(t *testing.T, dir string, probe *health.Fake) *daemonHarness {
	t.Helper()
	return openDaemonWith(t, dir, &FakeBackends{Probe: probe})
}

func openDaemonWith(t *testing.T, dir string, fb *FakeBackends) *daemonHarness {
	t.Helper()
	return openDaemonConfig(t, Config{StateDir: dir, Backends: fb, Log: zerolog.New(logcheck.Writer(t))})
}

// openDaemonConfig is openDaemonWith for a whole configuration; its
// Backends must be *FakeBackends.
func openDaemonConfig(t *testing.T, cfg Config) *daemonHarness {
	t.Helper()
	dir := cfg.StateDir
	h := &daemonHarness{t: t, dir: dir, fb: cfg.Backends.(*FakeBackends)}
	d, err := Open(context.Background(), cfg)
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
	t.Cleanup(func() {
		if !h.stopped {
			h.stop() // a test that failed half-way
		}
	})
	return h
}

// stop stops the API and the daemon without withdrawing (as on SIGTERM,
// or for the journal's sake as after a crash: nothing is cleaned up).
func (h *daemonHarness) stop() {
	h.t.Helper()
	h.stopped = true
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
	took, err := h.cl.Rollback(ctx, engine.AllBatches())
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

// TestDaemonRefusesBadRunbook: a runbook the client cannot read fails in
// the client, with the file system's error, and the daemon hears nothing.
func TestDaemonRefusesBadRunbook(t *testing.T) {
	h := openDaemon(t, t.TempDir(), nil)
	defer h.stop()
	err := h.cl.Run(context.Background(), "/nonexistent/runbook.yaml", true)
	if err == nil || err.Error() != "/nonexistent/runbook.yaml: cannot read the runbook: no such file or directory" || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("run of a missing runbook: %v", err)
	}
	if es, err := h.cl.Journal(context.Background()); err != nil || len(es) != 0 {
		t.Fatalf("journal after a refused run: %d records, %v", len(es), err)
	}
}

// TestClientReadsFiles: the client reads the runbook and its inventory
// with its own user's rights and sends their contents; what it cannot
// read fails before anything is sent, with the file system's error (and
// as runbook.ValidationErrors, for exit code 2). The tests run as root,
// who may read any file: a file that does not exist stands for one the
// operator may not read (the error comes from the same open in the
// client); the permission case runs only for other users.
func TestClientReadsFiles(t *testing.T) {
	fc := &fakeControl{}
	cl := client.New(serveFake(t, fc, defaultLimits))
	ctx := context.Background()
	dir := t.TempDir()
	rbText, err := os.ReadFile(daemonRunbook)
	if err != nil {
		t.Fatal(err)
	}
	missingInv := filepath.Join(dir, "missing-inventory.yaml")
	if err := os.WriteFile(missingInv, bytes.Replace(rbText, []byte("inventory: inventory.csv"), []byte("inventory: missing.csv"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path, err string
		is              error
	}{
		{"missing runbook", filepath.Join(dir, "none.yaml"), filepath.Join(dir, "none.yaml") + ": cannot read the runbook: no such file or directory", fs.ErrNotExist},
		{"missing inventory", missingInv, missingInv + `:4: inventory: cannot read the inventory ` + filepath.Join(dir, "missing.csv") + `: no such file or directory (value "missing.csv")`, fs.ErrNotExist},
		{"named pipe", fifo, fifo + ": cannot read the runbook: not a regular file (a named pipe)", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := cl.Run(ctx, tc.path, true)
			var ve runbook.ValidationErrors
			if err == nil || err.Error() != tc.err || !errors.As(err, &ve) || (tc.is != nil && !errors.Is(err, tc.is)) {
				t.Fatalf("run: %v\nwant %s", err, tc.err)
			}
		})
	}
	t.Run("unreadable runbook", func(t *testing.T) {
		// Root may read any file: as root, the client runs as nobody for
		// this, on a thread of its own whose file system user is nobody.
		open, err := os.MkdirTemp("", "cutover-client-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(open)
		if err := os.Chmod(open, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range []struct {
			name string
			data []byte
			mode os.FileMode
		}{{"readable.yaml", rbText, 0o644}, {"inventory.csv", []byte("name,address,tenant,tier,probe\n"), 0o644}, {"secret.yaml", rbText, 0o000}} {
			if err := os.WriteFile(filepath.Join(open, f.name), f.data, f.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(filepath.Join(open, f.name), f.mode); err != nil {
				t.Fatal(err)
			}
		}
		secret := filepath.Join(open, "secret.yaml")
		var readErr, secretErr error
		asNobody := asNobody
		if os.Geteuid() != 0 {
			asNobody = func(_ *testing.T, f func()) { f() }
		}
		asNobody(t, func() {
			_, readErr = client.ReadRun(filepath.Join(open, "readable.yaml"))
			secretErr = cl.Run(ctx, secret, true)
		})
		if readErr != nil {
			t.Fatalf("nobody cannot read a file open to all: %v", readErr)
		}
		var ve runbook.ValidationErrors
		if !errors.Is(secretErr, fs.ErrPermission) || !errors.As(secretErr, &ve) || secretErr.Error() != secret+": cannot read the runbook: permission denied" {
			t.Fatalf("run of a runbook nobody may not read: %v", secretErr)
		}
	})
	if calls := fc.Calls(); len(calls) > 0 {
		t.Fatalf("the daemon was asked %q", calls)
	}

	// A readable runbook, named relative to the working directory: its
	// contents go out under absolute names.
	if err := cl.Run(ctx, daemonRunbook, false); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(daemonRunbook)
	inv, _ := os.ReadFile(filepath.Join(filepath.Dir(abs), "inventory.csv"))
	want := fmt.Sprintf("run %s (%d bytes) %s (%d bytes) yes=false by ", abs, len(rbText), filepath.Join(filepath.Dir(abs), "inventory.csv"), len(inv))
	if calls := fc.Calls(); len(calls) != 1 || !strings.HasPrefix(calls[0], want) {
		t.Fatalf("the daemon was asked %q, want %q", calls, want)
	}
}

// TestDaemonRunValidationErrors: mistakes the daemon finds in the contents
// come back to the client as runbook.ValidationErrors, as cutover validate
// reports them.
func TestDaemonRunValidationErrors(t *testing.T) {
	dir := t.TempDir()
	rbText, err := os.ReadFile(daemonRunbook)
	if err != nil {
		t.Fatal(err)
	}
	rb := filepath.Join(dir, "runbook.yaml")
	inv := filepath.Join(dir, "inventory.csv")
	if err := os.WriteFile(rb, rbText, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(inv, []byte("name,address,tenant,tier,probe\nvm-00,10.64.0.300,beta,3,tcp:80\nvm-01,192.0.2.1,alpha,2,tcp:80\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, _, want := runbook.Load(rb)
	if want == nil {
		t.Fatal("the broken inventory passes runbook.Load")
	}
	h := openDaemon(t, t.TempDir(), nil)
	defer h.stop()
	err = h.cl.Run(context.Background(), rb, true)
	var ve runbook.ValidationErrors
	if err == nil || !errors.As(err, &ve) || err.Error() != want.Error() || ve.Error() != want.Error() {
		t.Fatalf("run of a broken inventory:\n%v\nwant\n%v", err, want)
	}
	if st := h.waitFor("state", func(engine.RunState) bool { return true }); st.Runbook != "" || h.fb.BGP != nil {
		t.Fatalf("a refused run left state %+v", st)
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

// asNobody runs f on an OS thread whose file system user and group are
// nobody's (65534): f opens files with nobody's rights. It needs root
// (CAP_SETUID); the thread is never given back, it ends with f.
func asNobody(t *testing.T, f func()) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with this goroutine
		syscall.Syscall(syscall.SYS_SETFSGID, 65534, 0, 0)
		syscall.Syscall(syscall.SYS_SETFSUID, 65534, 0, 0)
		// An invalid id changes nothing and returns the current one.
		if uid, _, _ := syscall.Syscall(syscall.SYS_SETFSUID, ^uintptr(0), 0, 0); uid != 65534 {
			errc <- fmt.Errorf("file system uid is %d, not 65534", uid)
			return
		}
		f()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// TestDaemonReadinessAndRetry: a VM that does not answer through the
// target holds its batch (never announced); the run ends partial; once it
// answers, retry over the API moves the batch and the run ends all moved.
func TestDaemonReadinessAndRetry(t *testing.T) {
	ctx := context.Background()
	abs, _ := filepath.Abs(daemonRunbook)
	var down atomic.Bool
	down.Store(true)
	ready := &health.Fake{Func: func(tg health.Target, _ int) health.Result {
		if tg.Name == "vm-03" && down.Load() {
			return health.Result{Err: "tcp 80: connection refused"}
		}
		return health.Result{OK: true}
	}}
	h := openDaemonWith(t, t.TempDir(), &FakeBackends{Ready: ready})
	if err := h.cl.Run(ctx, abs, true); err != nil {
		t.Fatalf("run: %v", err)
	}
	st := h.waitFor("the end", func(s engine.RunState) bool { return s.Phase == engine.PhaseDone })
	held := -1
	for i, b := range st.Batches {
		if b.Phase == engine.BatchHeld {
			held = i
		}
	}
	if held < 0 {
		t.Fatalf("no batch held: %+v", st.Batches)
	}
	full, err := h.cl.Status(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if full.Outcome != engine.OutcomePartial || !slices.Equal(full.AtSourceBatches, []int{held}) {
		t.Fatalf("outcome %q at the source %v, want partial [%d]", full.Outcome, full.AtSourceBatches, held)
	}
	if want := "vm-03 10.64.0.13: tcp 80: connection refused"; !slices.Contains(st.Batches[held].Verdicts[0].Failed, want) {
		t.Errorf("held batch's verdict %+v lacks %q", st.Batches[held].Verdicts, want)
	}
	for _, r := range h.fb.BGP.Announced() {
		if r.Prefix == netip.MustParsePrefix("10.64.0.13/32") {
			t.Fatalf("the held VM's prefix is announced: %v", r)
		}
	}
	down.Store(false)
	if err := h.cl.Retry(ctx, nil); err != nil {
		t.Fatalf("retry: %v", err)
	}
	st = h.waitFor("the end after the retry", func(s engine.RunState) bool {
		return s.Phase == engine.PhaseDone && s.Batches[held].Phase == engine.BatchCommitted
	})
	if st.Outcome() != engine.OutcomeAllMoved || len(h.fb.BGP.Announced()) != 12 {
		t.Fatalf("after retry: outcome %q, %d routes announced", st.Outcome(), len(h.fb.BGP.Announced()))
	}
	if err := h.cl.Retry(ctx, nil); err == nil || !strings.Contains(err.Error(), "no batch is rolled back or held") {
		t.Errorf("a second retry: %v", err)
	}
	h.stop()
}
