package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/health"
	"github.com/cutover/cutover/cutover/plan"
	"github.com/cutover/cutover/internal/testenv"
)

// logLines counts and keeps the daemon's log lines.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range bytes.Split(bytes.TrimSuffix(p, []byte("\n")), []byte("\n")) {
		l.lines = append(l.lines, string(line))
	}
	return len(p), nil
}

// summary counts the lines and the most any one message repeats.
func (l *logLines) summary() (lines int, top string, repeats int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	count := map[string]int{}
	for _, line := range l.lines {
		var ev struct{ Message string }
		_ = json.Unmarshal([]byte(line), &ev)
		count[ev.Message]++
	}
	msgs := make([]string, 0, len(count))
	for m := range count {
		msgs = append(msgs, m)
	}
	sort.Slice(msgs, func(i, j int) bool { return count[msgs[i]] > count[msgs[j]] })
	if len(msgs) > 0 {
		top, repeats = msgs[0], count[msgs[0]]
	}
	return len(l.lines), top, repeats
}

func (h *daemonHarness) status() engine.Status {
	h.t.Helper()
	st, err := h.cl.Status(context.Background(), 0)
	if err != nil {
		h.t.Fatalf("status: %v", err)
	}
	return st
}

func (h *daemonHarness) waitStatus(what string, ok func(engine.Status) bool) engine.Status {
	h.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		st := h.status()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s: phase %s pause %q journal %+v", what, st.State.Phase, st.State.Pause, st.Journal)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkFold asserts that the fold of the daemon's journal is its state.
func (h *daemonHarness) checkFold() {
	h.t.Helper()
	es, err := h.cl.Journal(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	got, err := engine.Fold(es)
	if err != nil {
		h.t.Fatal(err)
	}
	got.Baseline = nil // the API carries the count (BaselineHealthy), not the names
	if want := h.status().State; !reflect.DeepEqual(got, want) {
		h.t.Errorf("fold of the journal differs from the state:\nfold  %+v\nstate %+v", got, want)
	}
}

// fullDiskRun starts a run on a daemon whose state directory is a tmpfs of
// 64 KiB, fills the file system while batch 1's gates run, then lets the
// gates pass. It returns the harness with the run paused, the filler
// file, and the log.
func fullDiskRun(t *testing.T, reserve func(int) int64, pad bool) (*daemonHarness, *plan.Plan, string, *logLines) {
	t.Helper()
	dir := testenv.MountTmpfs(t, 64<<10)
	abs, _ := filepath.Abs(daemonRunbook)
	pl, _, err := plan.Load(abs)
	if err != nil {
		t.Fatal(err)
	}
	batch1 := map[string]bool{}
	for _, vm := range pl.Batches[1].VMs {
		batch1[vm.Name] = true
	}
	gating, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	probe := &health.Fake{Func: func(tg health.Target, n int) health.Result {
		if batch1[tg.Name] && n >= 1 { // n 0 is the baseline's probe
			once.Do(func() { close(gating) })
			<-release
		}
		return health.Result{OK: true}
	}}
	logs := &logLines{}
	h := openDaemonConfig(t, Config{StateDir: dir, Backends: &FakeBackends{Probe: probe}, Log: zerolog.New(logs), reserve: reserve})
	if err := h.cl.Run(context.Background(), abs, true); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gating:
	case <-time.After(15 * time.Second):
		t.Fatal("batch 1 was never gated")
	}
	filler := testenv.FillDisk(t, dir)
	if pad {
		// Fill the journal's last page too: its next record needs the
		// reserve (which the last padding record has begun to use), or,
		// without a reserve, finds no room.
		for {
			if have, want := h.d.j.Reserved(); have < want {
				break
			}
			if _, err := h.d.Record(engine.RecOperator, engine.OperatorRecord{Command: "padding", Operator: "test"}); err != nil {
				break
			}
		}
	}
	close(release)
	return h, pl, filler, logs
}

// TestDaemonFullStateDir is the full state directory of the issue, on a
// real tmpfs of 64 KiB: the run pauses with the batch under way not
// committed, the status says the journal is unusable, steps forward are
// refused; a restart on the full file system starts, re-applies the
// journaled state and accepts rollback --all, whose records go into the
// reserve taken when the run started; the log stays small.
func TestDaemonFullStateDir(t *testing.T) {
	ctx := context.Background()
	h, pl, filler, logs := fullDiskRun(t, nil, true)
	dir := h.dir
	full := "the file system of " + dir + " is full"
	st := h.waitStatus("the run paused", func(s engine.Status) bool { return s.State.Phase == engine.PhasePaused })
	reserve := reserveBytes(len(pl.Batches))
	inReserve := fmt.Sprintf("%s: the journal writes into its reserve (%d KiB of %d KiB left)", full, (reserve-4096)>>10, reserve>>10)
	if st.State.Pause != "journal unusable: "+inReserve || st.State.Batches[1].Phase != engine.BatchGating {
		t.Fatalf("paused %q with batch 1 %s; want journal unusable, batch 1 gating (not committed)", st.State.Pause, st.State.Batches[1].Phase)
	}
	if js := st.Journal; !js.Unusable || js.Full != inReserve || js.Held != 0 || js.Error != "" {
		t.Fatalf("journal status %+v", js)
	}
	if err := h.cl.Resume(ctx); err == nil || !strings.Contains(err.Error(), "journal unusable") {
		t.Fatalf("resume on a full disk: %v", err)
	}
	moved := len(h.fb.BGP.Announced())
	if want := len(pl.Batches[0].Prefixes) + len(pl.Batches[1].Prefixes); moved != want {
		t.Fatalf("%d routes announced, want %d (batches 0 and 1)", moved, want)
	}
	h.stop()

	// A new process on the full file system.
	h = openDaemonConfig(t, Config{StateDir: dir, Backends: &FakeBackends{}, Log: zerolog.New(logs)})
	if got := len(h.fb.BGP.Announced()); got != moved {
		t.Fatalf("the restart on a full disk re-announced %d routes, want %d", got, moved)
	}
	st = h.status()
	if !st.Journal.Unusable || st.State.Phase != engine.PhasePaused || st.State.Pause != "interrupted" ||
		!strings.HasPrefix(st.Journal.Full, full+": the journal writes into its reserve (") {
		t.Fatalf("after the restart: phase %s pause %q journal %+v", st.State.Phase, st.State.Pause, st.Journal)
	}
	t.Logf("restarted on a full disk: journal %+v", st.Journal)
	took, err := h.cl.Rollback(ctx, engine.AllBatches())
	if err != nil {
		t.Fatalf("rollback --all on a full disk: %v", err)
	}
	t.Logf("rollback --all on a full disk took %s", took)
	if got := len(h.fb.BGP.Announced()); got != 0 {
		t.Fatalf("after rollback --all %d routes are announced", got)
	}
	if s := h.fb.NFT.State(); len(s.Moved) != 0 {
		t.Fatalf("after rollback --all the nft sets hold %v", s.Moved)
	}
	st = h.status()
	if st.State.Phase != engine.PhaseAborted || st.Journal.Held != 0 {
		t.Fatalf("after rollback --all: phase %s, journal %+v (the reserve should have taken the records)", st.State.Phase, st.Journal)
	}
	have, _ := h.d.j.Reserved()
	t.Logf("the reserve holds %d of %d bytes after the restart and the rollback", have, reserve)
	h.checkFold()
	abs, _ := filepath.Abs(daemonRunbook)
	if err := h.cl.Run(ctx, abs, true); err == nil {
		t.Fatal("a run started on a full disk")
	} else {
		t.Logf("run on a full disk: %v", err)
	}

	// Room again: the journal is usable, with the reserve back.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	h.waitStatus("the journal usable", func(s engine.Status) bool { return s.Journal == (engine.JournalStatus{}) })
	if have, want := h.d.j.Reserved(); have != want || want != reserve {
		t.Errorf("reserve %d of %d, want %d", have, want, reserve)
	}
	h.stop()

	n, top, repeats := logs.summary()
	t.Logf("%d log lines in all; the most repeated message (%d times): %q", n, repeats, top)
	if n > 150 || repeats > 10 {
		t.Errorf("the log grew to %d lines, %q %d times", n, top, repeats)
	}
}

// TestDaemonFullStateDirNoReserve: without a reserve (and the journal's
// last page full) the journal takes no record at all; rollback --all still
// moves the network back, its records are held in memory, and they land in
// order once there is room, so that a restart finds the run rolled back.
func TestDaemonFullStateDirNoReserve(t *testing.T) {
	ctx := context.Background()
	h, _, filler, logs := fullDiskRun(t, func(int) int64 { return 0 }, true)
	dir := h.dir
	full := "the file system of " + dir + " is full"
	st := h.waitStatus("the run paused", func(s engine.Status) bool { return s.State.Phase == engine.PhasePaused })
	wantErr := "append phase: write: write " + filepath.Join(dir, "journal") + ": no space left on device"
	if js := st.Journal; st.State.Pause != "journal unusable: "+full || !js.Unusable || js.Full != full || js.Error != wantErr || js.Held != 1 {
		t.Fatalf("paused %q, journal %+v", st.State.Pause, js)
	}
	if _, err := h.cl.Rollback(ctx, engine.AllBatches()); err != nil {
		t.Fatalf("rollback --all with no room at all: %v", err)
	}
	if got := len(h.fb.BGP.Announced()); got != 0 {
		t.Fatalf("after rollback --all %d routes are announced", got)
	}
	if s := h.fb.NFT.State(); len(s.Moved) != 0 {
		t.Fatalf("after rollback --all the nft sets hold %v", s.Moved)
	}
	// The pause, then the audit record, 2 rolling-back, the intent, the
	// applied record, 2 rolled-back and the end of the run.
	if st := h.status(); st.Journal.Held != 9 || st.State.Phase != engine.PhaseAborted {
		t.Fatalf("after rollback --all: phase %s journal %+v", st.State.Phase, st.Journal)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	h.waitStatus("the held records written", func(s engine.Status) bool { return s.Journal == (engine.JournalStatus{}) })
	h.checkFold()
	h.stop()

	h = openDaemonConfig(t, Config{StateDir: dir, Backends: &FakeBackends{}, Log: zerolog.New(logs)})
	// Nothing is moved: the new process starts no speaker at all.
	st = h.status()
	h.stop()
	if st.State.Phase != engine.PhaseAborted || len(st.State.Applied) != 0 || h.fb.BGP != nil {
		t.Fatalf("after a restart: phase %s, applied %v, speaker started %v", st.State.Phase, st.State.Applied, h.fb.BGP != nil)
	}
	n, top, repeats := logs.summary()
	t.Logf("%d log lines in all; the most repeated message (%d times): %q", n, repeats, top)
	if n > 150 || repeats > 10 {
		t.Errorf("the log grew to %d lines, %q %d times", n, top, repeats)
	}
}
