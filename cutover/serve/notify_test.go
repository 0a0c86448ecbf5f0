package serve

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cutover/cutover/cutover/engine"
)

type sent struct {
	mu     sync.Mutex
	states []string
}

func (s *sent) send(state string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.states = append(s.states, state)
	return true, nil
}

func (s *sent) count(state string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, st := range s.states {
		if st == state {
			n++
		}
	}
	return n
}

func (s *sent) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.states)
}

// TestWatchdogFeedsWhileTheEngineAnswers: the watchdog is fed while the
// status answers, goes hungry while it hangs (the daemon is then restarted
// by systemd), and is fed again when it answers again; STATUS= follows the
// run.
func TestWatchdogFeedsWhileTheEngineAnswers(t *testing.T) {
	s := &sent{}
	n := &notifier{log: zerolog.Nop(), send: s.send}
	var mu sync.Mutex
	st := engine.Status{}
	hang := make(chan struct{})
	close(hang) // answering
	hanging := false
	blocked := 0 // calls that began while the engine hung
	status := func() engine.Status {
		mu.Lock()
		h := hang
		if hanging {
			blocked++
		}
		mu.Unlock()
		<-h
		mu.Lock()
		defer mu.Unlock()
		return st
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	const iv = 200 * time.Millisecond
	go func() { defer close(done); n.watchdog(ctx, iv, status) }()
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; sent %q", what, s.all())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("three feeds", func() bool { return s.count("WATCHDOG=1") >= 3 })
	if s.count("STATUS=idle") != 1 {
		t.Errorf("STATUS=idle sent %d times, want once (only changes are sent): %q", s.count("STATUS=idle"), s.all())
	}
	mu.Lock()
	st = engine.Status{State: engine.RunState{RunID: "r1", Runbook: "helse-nord", Phase: engine.PhasePaused, Confirm: "after-canary"}, MovedVMs: 4, TotalVMs: 260}
	mu.Unlock()
	waitFor("the new status", func() bool {
		return s.count("STATUS=paused helse-nord: 4/260 VMs at the target, waiting for go/no-go at after-canary") == 1
	})

	// The engine hangs: no feed for well over the interval.
	mu.Lock()
	hang, hanging = make(chan struct{}), true
	mu.Unlock()
	// The watchdog asks one status at a time: once one hangs, the feed
	// for the one before has been sent.
	waitFor("a status call that hangs", func() bool { mu.Lock(); defer mu.Unlock(); return blocked > 0 })
	fed := s.count("WATCHDOG=1")
	time.Sleep(3 * iv)
	if got := s.count("WATCHDOG=1"); got != fed {
		t.Errorf("the watchdog was fed %d times while the engine hung", got-fed)
	}
	mu.Lock()
	close(hang)
	hanging = false
	mu.Unlock()
	waitFor("a feed after the engine answers again", func() bool { return s.count("WATCHDOG=1") > fed })
	cancel()
	<-done
}

// TestNotifySocket: the notifier speaks to the socket in NOTIFY_SOCKET
// (what systemd gives a Type=notify service), and is silent without it.
func TestNotifySocket(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	n := newNotifier(zerolog.Nop())
	n.notify("READY=1\nSTATUS=idle")
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 512)
	k, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(buf[:k]); got != "READY=1\nSTATUS=idle" {
		t.Errorf("sent %q", got)
	}
	os.Unsetenv("NOTIFY_SOCKET")
	if ok, err := n.send("READY=1"); ok || err != nil {
		t.Errorf("without NOTIFY_SOCKET: sent %v, err %v", ok, err)
	}
	t.Setenv("WATCHDOG_USEC", "30000000")
	t.Setenv("WATCHDOG_PID", "1") // another process's watchdog
	if got := watchdogInterval(); got != 0 {
		t.Errorf("watchdog of another pid: %s", got)
	}
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	if got := watchdogInterval(); got != 30*time.Second {
		t.Errorf("watchdog interval %s, want 30s", got)
	}
}
