package rehearse

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/plan"
	"github.com/cutover/cutover/internal/logcheck"
	"github.com/cutover/cutover/internal/testenv"
	"github.com/cutover/cutover/lab"
)

// Crash-loop runbook: 260 VMs, a canary of 4 and batches of 98, so that
// the run pauses at its after-batch:2 go/no-go point with 200 VMs moved
// and 60 still at the source.
const (
	crashLoopVMs   = 260
	crashLoopMoved = 200
	crashLoopPause = "after-batch:2"
	crashLoopKills = 5
	// restartDelay is how long a killed daemon stays dead, as systemd's
	// RestartSec=1 in dist/cutover.service keeps it before the first
	// restart.
	restartDelay = time.Second
	// edgeStartup is how long FRR's bgpd sets the Restart bit in every
	// OPEN after it started (its t_startup timer, the default restart
	// time of 120 s, whatever the configuration says). A restarting
	// speaker that sees that bit need not wait for the edge's End-of-RIB,
	// which hides the wait: a production edge has been up for long.
	edgeStartup = 120 * time.Second
	// afterUp is how long a restarted daemon lives after the edge reports
	// its session Established, before the next kill: well inside the
	// second that FRR takes to send its own End-of-RIB (its coalesce
	// time), which the speaker used to wait for before re-announcing.
	afterUp = 300 * time.Millisecond
)

const crashLoopRunbook = `# Written by TestDaemonCrashLoop.
version: 1
name: crash-loop
inventory: crash-loop.csv
tenants: [alpha, beta]
sites:
  skm1: {next_hop: {ipv4: 10.255.1.2}}
  skm2: {next_hop: {ipv4: 10.255.2.2}, communities: ["65100:2"]}
move: {from: skm1, to: skm2}
bgp:
  local_as: 65100
  router_id: 10.255.0.2
  graceful_restart: {enabled: true, restart_time: %s}
  peers:
    - {address: 10.255.0.1, as: 65000, hold_time: 9s, keepalive: 3s, observe: true}
allowed_prefixes: [10.64.0.0/14]
max_prefixes: 400
batching: {canary: 4, size: 98}
gates:
  - {kind: bgp, timeout: 20s}
  - {kind: probe, rise: 2, fall: 2, interval: 300ms, timeout: 300ms, within: 15s}
failure_policy: rollback-batch
hold: 0s
confirm: [before-start, ` + crashLoopPause + `]
`

// writeCrashLoopRunbook writes the runbook, with the graceful-restart
// time restart, and its inventory into dir.
func writeCrashLoopRunbook(t *testing.T, dir string, restart time.Duration) string {
	t.Helper()
	var inv strings.Builder
	inv.WriteString("name,address,tenant,tier,probe\n")
	base := netip.MustParseAddr("10.64.0.10")
	a := base
	for i := range crashLoopVMs {
		tenant := "alpha"
		if i%2 == 0 {
			tenant = "beta"
		}
		fmt.Fprintf(&inv, "vm-%03d,%s,%s,%d,http:80/\n", i, a, tenant, 1+i%3)
		a = a.Next()
	}
	if err := os.WriteFile(filepath.Join(dir, "crash-loop.csv"), []byte(inv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "crash-loop.yaml")
	if err := os.WriteFile(p, []byte(fmt.Sprintf(crashLoopRunbook, restart)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// fibSample is one count of the edge's controller routes.
type fibSample struct {
	at time.Time
	n  int
}

// fibSampler counts the edge's controller routes (heldRoutes) every
// 50 ms until stopped.
type fibSampler struct {
	mu      sync.Mutex
	samples []fibSample
	errs    []error
	stop    chan struct{}
	done    chan struct{}
}

func sampleFIB(ctx context.Context, l *lab.Lab) *fibSampler {
	s := &fibSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			n, err := heldRoutes(ctx, l)
			s.mu.Lock()
			if err != nil {
				s.errs = append(s.errs, err)
			} else {
				s.samples = append(s.samples, fibSample{time.Now(), n})
			}
			s.mu.Unlock()
			select {
			case <-s.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return s
}

func (s *fibSampler) Stop() []fibSample {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]fibSample(nil), s.samples...)
}

// last returns the latest sample (zero before the first).
func (s *fibSampler) last() fibSample {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.samples) == 0 {
		return fibSample{}
	}
	return s.samples[len(s.samples)-1]
}

// edgeSession is the edge's view of its session to the controller.
type edgeSession struct {
	State string `json:"bgpState"`
	UpMs  int64  `json:"bgpTimerUpMsec"`
}

func readEdgeSession(ctx context.Context, l *lab.Lab, peer netip.Addr) (edgeSession, error) {
	out, err := l.Vtysh(ctx, lab.NodeEdge, "show bgp neighbors "+peer.String()+" json")
	if err != nil {
		return edgeSession{}, err
	}
	var m map[string]edgeSession
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		return edgeSession{}, fmt.Errorf("parse show bgp neighbors: %w", err)
	}
	return m[peer.String()], nil
}

// waitSessionSince waits until the edge holds an Established session to
// peer that came up after since, and returns when it saw it.
func waitSessionSince(ctx context.Context, l *lab.Lab, peer netip.Addr, since time.Time, within time.Duration) (time.Time, error) {
	deadline := time.Now().Add(within)
	for {
		s, err := readEdgeSession(ctx, l, peer)
		now := time.Now()
		if err == nil && s.State == "Established" && now.Add(-time.Duration(s.UpMs)*time.Millisecond).After(since) {
			return now, nil
		}
		if now.After(deadline) {
			return now, fmt.Errorf("the edge's session to %s was not re-established within %s (last: %+v, %v)", peer, within, s, err)
		}
		select {
		case <-ctx.Done():
			return now, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitPaused waits until the run pauses at the go/no-go point point,
// answering "go" at before-start.
func (r *rehearsal) waitPaused(ctx context.Context, point string, within time.Duration) (engine.RunState, error) {
	deadline := time.Now().Add(within)
	for {
		st, err := r.cl.Status(ctx, 0)
		if err != nil {
			return engine.RunState{}, err
		}
		s := st.State
		switch {
		case s.Phase == engine.PhasePaused && s.Confirm == point:
			return s, nil
		case s.Phase == engine.PhasePaused && s.Confirm == "before-start":
			if err := r.cl.Confirm(ctx, "before-start", true); err != nil {
				return s, err
			}
		case s.Phase == engine.PhaseDone || s.Phase == engine.PhaseAborted:
			return s, fmt.Errorf("the run ended (%s) before %s", s.Phase, point)
		}
		if time.Now().After(deadline) {
			return s, fmt.Errorf("the run did not pause at %s within %s (phase %s, pause %q)", point, within, s.Phase, s.Pause)
		}
		select {
		case <-ctx.Done():
			return s, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// upPaused brings up a lab for the crash-loop runbook (graceful-restart
// time restart), starts the daemon as a rehearsal does, runs the runbook
// until it pauses at its go/no-go point with 200 VMs moved, and returns
// the rehearsal and the edge's controller routes then. Everything is torn
// down at the end of the test.
func upPaused(ctx context.Context, t *testing.T, restart time.Duration) (*rehearsal, int) {
	t.Helper()
	runbook := writeCrashLoopRunbook(t, t.TempDir(), restart)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	pl, _, err := plan.Load(runbook)
	if err != nil {
		t.Fatal(err)
	}
	r := &rehearsal{o: Options{Runbook: runbook, Lab: "ck" + randSuffix(), Binary: exe, DrainTimeout: 5 * time.Second,
		Log: zerolog.New(logcheck.Writer(t)).Level(zerolog.InfoLevel)},
		pl: pl, out: testWriter{t}, at: map[int][]Fault{}, res: &Result{Runbook: runbook}}
	r.res.Lab = r.o.Lab
	cfg, err := lab.ConfigFor(r.o.Lab, "", lab.Book{Runbook: pl.Runbook, Inventory: pl.Inventory})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Responder = exe
	if err := r.up(ctx, cfg); err != nil {
		r.teardown()
		t.Fatal(err)
	}
	if err := r.beginStep(r.o, pl, map[int][]Fault{}, r.res.LabUp, time.Now()); err != nil {
		r.teardown()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(r.l.Dir(), "daemon.log")); err == nil {
				t.Logf("daemon.log (last 40 lines):\n%s", tail(string(b), 40))
			}
			if b, err := os.ReadFile(edgeLog(r.l)); err == nil {
				t.Logf("the edge's bgpd log, session and graceful-restart events:\n%s", edgeEvents(string(b), r.l.Topology().Ctl4))
			}
		}
		r.teardown()
	})
	// FRR's own account of the sessions: neighbor events (graceful-restart
	// timers, End-of-RIB) and what it takes out of the FIB, in a log of
	// bgpd's own with milliseconds (the command line's log has seconds).
	args, err := r.l.VtyshArgs(lab.NodeEdge)
	if err != nil {
		t.Fatal(err)
	}
	args = append(args, "-d", "bgpd", "-c", "configure terminal", "-c", "log file "+edgeLog(r.l)+" debugging",
		"-c", "log timestamp precision 3", "-c", "debug bgp neighbor-events", "-c", "debug bgp zebra")
	if out, err := exec.CommandContext(ctx, "vtysh", args...).CombinedOutput(); err != nil {
		t.Fatalf("vtysh %q: %v: %s", args, err, out)
	}
	abs, _ := filepath.Abs(runbook)
	if err := r.cl.Run(ctx, abs, false); err != nil {
		t.Fatal(err)
	}
	if _, err := r.waitPaused(ctx, crashLoopPause, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	held, err := heldRoutes(ctx, r.l)
	if err != nil {
		t.Fatal(err)
	}
	if held != crashLoopMoved {
		t.Fatalf("paused at %s with %d controller routes at the edge, want %d", crashLoopPause, held, crashLoopMoved)
	}
	return r, held
}

// TestDaemonCrashLoop is the crash loop of issue "The emergency brake
// always works", item 1: a run moves 200 VMs and pauses at a go/no-go
// point; the daemon is then killed with kill -9 five times, each time
// started again after a second (as systemd's RestartSec=1 would), and
// killed again shortly after its new session came up, or a second after
// it started. The edge's FIB is sampled every 50 ms throughout: it must
// never hold fewer controller routes than before the first kill, and at
// the end it must agree with the journal (and hosp must reach the VMs
// where the journal says they are).
func TestDaemonCrashLoop(t *testing.T) {
	testenv.RequireFRR(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	r, held := upPaused(ctx, t, 120*time.Second)
	peer := r.l.Topology().Ctl4
	if wait := edgeStartup + 3*time.Second - edgeBGPAge(t, r.l); wait > 0 {
		t.Logf("waiting %s until the edge's bgpd is past its startup period (the Restart bit in its OPENs for %s after it starts), like an edge that has been up for long",
			wait.Round(time.Second), edgeStartup)
		time.Sleep(wait)
	}
	t.Logf("run paused at %s: the edge holds %d controller routes; kill -9 the daemon %d times", crashLoopPause, held, crashLoopKills)

	fib := sampleFIB(ctx, r.l)
	defer fib.Stop()
	type kill struct {
		at  time.Time
		how string // when it was killed
		ev  []string
	}
	var kills []kill
	var restarted, lastKill time.Time
	for i := range crashLoopKills {
		how := "after a long run"
		switch {
		case i == 0:
		case i%2 == 1:
			// Wait for the new session, then kill it before FRR's own
			// End-of-RIB would have let the old speaker send its routes.
			up, err := waitSessionSince(ctx, r.l, peer, lastKill, 30*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(afterUp - time.Since(up))
			how = fmt.Sprintf("%s after its session came up (%s after it started)",
				time.Since(up).Round(time.Millisecond), time.Since(restarted).Round(time.Millisecond))
		default:
			// systemd's cadence: a second after it was started.
			time.Sleep(time.Second - time.Since(restarted))
			s, _ := readEdgeSession(ctx, r.l, peer)
			how = fmt.Sprintf("%s after it started (edge session %s)", time.Since(restarted).Round(time.Millisecond), s.State)
		}
		k := kill{at: time.Now(), how: how}
		lastKill = k.at
		ev, _, err := killAndRestart(ctx, r.l, r.ld, restartDelay, nil)
		k.ev = ev
		if err != nil {
			t.Fatalf("kill %d: %v", i+1, err)
		}
		restarted = time.Now()
		kills = append(kills, k)
	}
	// The last daemon stays up: its session comes back, and the edge must
	// hold every route fresh again.
	if _, err := waitSessionSince(ctx, r.l, peer, lastKill, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	settled := time.Now().Add(2 * time.Second)
	for time.Now().Before(settled) || fib.last().at.Before(settled) {
		time.Sleep(50 * time.Millisecond)
	}
	samples := fib.Stop()
	for _, err := range fib.errs {
		t.Errorf("read the edge FIB: %v", err)
	}

	lowest := held
	for i, k := range kills {
		end := time.Now()
		if i+1 < len(kills) {
			end = kills[i+1].at
		}
		low, n := held, 0
		var lowAt time.Time
		for _, s := range samples {
			if s.at.Before(k.at) || !s.at.Before(end) {
				continue
			}
			n++
			if s.n < low {
				low, lowAt = s.n, s.at
			}
		}
		lowest = min(lowest, low)
		line := fmt.Sprintf("kill %d (%s): %d samples until the next kill, lowest %d of %d", i+1, k.how, n, low, held)
		if low < held {
			line += fmt.Sprintf(" at %s after the kill", lowAt.Sub(k.at).Round(time.Millisecond))
		}
		t.Log(line)
		for _, e := range k.ev {
			t.Log("  " + e)
		}
	}
	t.Logf("%d samples over %s; lowest %d of %d controller routes", len(samples),
		samples[len(samples)-1].at.Sub(kills[0].at).Round(time.Millisecond), lowest, held)
	if b, err := os.ReadFile(edgeLog(r.l)); err == nil {
		for _, line := range syncTimes(string(b), peer) {
			t.Log(line)
		}
	}
	if out, err := r.l.Vtysh(ctx, lab.NodeEdge, "show bgp neighbors "+peer.String()); err == nil {
		t.Logf("edge's graceful-restart view of the last session:\n%s", grSection(out))
	}
	if lowest < held {
		t.Errorf("across %d kill -9 of the daemon the edge FIB dropped to %d of the %d controller routes it held", len(kills), lowest, held)
	}

	st, err := r.cl.Status(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if o := outcomeOf(st.State); o.Phase != engine.PhasePaused || len(o.Committed) != 3 || len(o.Pending) != len(r.pl.Batches)-3 {
		t.Errorf("after the restarts the run is %s (pause %q), want paused with batches 0-2 committed and the rest pending", o, st.State.Pause)
	}
	r.verify(ctx, st.State)
	for _, c := range r.res.Checked {
		t.Log("checked:", c)
	}
	for _, p := range r.res.Problems {
		t.Error(p)
	}
}

// edgeBGPAge returns how long the edge's bgpd has been running.
func edgeBGPAge(t *testing.T, l *lab.Lab) time.Duration {
	t.Helper()
	pid := 0
	for _, d := range l.Daemons() {
		if d.Node == lab.NodeEdge && d.Name == "bgpd" {
			pid = d.PID
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatalf("the edge's bgpd: %v", err)
	}
	uptime, err := os.ReadFile("/proc/uptime")
	if err != nil {
		t.Fatal(err)
	}
	// Field 22, after the parenthesised command name: start time in clock
	// ticks (USER_HZ, 100 on Linux) since boot.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	var ticks int64
	var up float64
	if _, err := fmt.Sscan(fields[19], &ticks); err != nil {
		t.Fatalf("parse /proc/%d/stat: %v", pid, err)
	}
	if _, err := fmt.Sscan(strings.Fields(string(uptime))[0], &up); err != nil {
		t.Fatalf("parse /proc/uptime: %v", err)
	}
	return time.Duration(up*float64(time.Second)) - time.Duration(ticks)*10*time.Millisecond
}

// grSection keeps the capability and graceful-restart lines of FRR's
// show bgp neighbors.
func grSection(out string) string {
	var keep []string
	in := false
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.Contains(line, "Graceful Restart Capability"), strings.Contains(line, "Long-lived Graceful Restart"):
			in = true
		case strings.Contains(line, "Message statistics"):
			in = false
		}
		if in || strings.Contains(line, "BGP state") {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}

// edgeLog is the debug log the tests have the edge's bgpd write.
func edgeLog(l *lab.Lab) string { return filepath.Join(l.Dir(), lab.NodeEdge, "bgpd-debug.log") }

// syncTimes reads bgpd's log for each session from peer that came up: how
// long after it came up the edge had the controller's End-of-RIB (IPv4),
// that is, held none of its paths as stale any more; or that the session
// went down before.
func syncTimes(log string, peer netip.Addr) []string {
	const layout = "2006/01/02 15:04:05.000"
	stamp := func(line string) (time.Time, bool) {
		s, _, ok := strings.Cut(line, " BGP: ")
		if !ok {
			return time.Time{}, false
		}
		ts, err := time.Parse(layout, s)
		return ts, err == nil
	}
	var out []string
	var up time.Time
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, peer.String()) {
			continue
		}
		ts, ok := stamp(line)
		switch {
		case !ok:
		case strings.Contains(line, "ADJCHANGE") && strings.Contains(line, " Up"):
			up = ts
		case strings.Contains(line, "ADJCHANGE") && strings.Contains(line, " Down") && !up.IsZero():
			out = append(out, fmt.Sprintf("edge: session up at %s went down %s later, before the controller's End-of-RIB", up.Format("15:04:05.000"), ts.Sub(up)))
			up = time.Time{}
		case strings.Contains(line, "rcvd End-of-RIB for IPv4 Unicast") && !up.IsZero():
			out = append(out, fmt.Sprintf("edge: session up at %s, the controller's End-of-RIB (all paths refreshed) %s later", up.Format("15:04:05.000"), ts.Sub(up)))
			up = time.Time{}
		}
	}
	return out
}

// edgeEvents keeps bgpd's lines about the session to peer: session and
// graceful-restart events, End-of-RIB, and the routes it deleted from the
// FIB counted per second.
func edgeEvents(log string, peer netip.Addr) string {
	var keep []string
	deletes, last := 0, ""
	flush := func() {
		if deletes > 0 {
			keep = append(keep, fmt.Sprintf("%s  ... %d routes deleted from the FIB (Tx route delete)", last, deletes))
			deletes = 0
		}
	}
	for _, line := range strings.Split(log, "\n") {
		stamp, _, _ := strings.Cut(line, " BGP: ")
		switch {
		case strings.Contains(line, "Tx route delete"):
			if stamp != last {
				flush()
			}
			deletes++
			last = stamp
		case strings.Contains(line, peer.String()) && (strings.Contains(line, "ADJCHANGE") || strings.Contains(line, "graceful restart") ||
			strings.Contains(line, "End-of-RIB") || strings.Contains(line, "has restarted") || strings.Contains(line, "went from")):
			flush()
			keep = append(keep, line)
		}
	}
	flush()
	return tail(strings.Join(keep, "\n"), 120)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestDaemonDeadPastRestartTime is the second line: the daemon, killed,
// stays dead past its graceful-restart time (4 s here, 120 s by default).
// The edge must go on holding its routes by long-lived graceful restart
// (RFC 9494), marked llgr-stale, rather than drop them while the nft table
// still steers by them; a daemon started again refreshes them.
func TestDaemonDeadPastRestartTime(t *testing.T) {
	testenv.RequireFRR(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const restart = 4 * time.Second
	r, held := upPaused(ctx, t, restart)
	peer := r.l.Topology().Ctl4
	vm := r.pl.Batches[0].VMs[0].Prefixes[0]
	show := "show bgp ipv4 unicast " + vm.String()

	fib := sampleFIB(ctx, r.l)
	defer fib.Stop()
	killed := time.Now()
	killPID(r.ld.PID, r.ld.Socket)
	// Past the restart time, until FRR reports the path long-lived stale.
	var out string
	for {
		var err error
		if out, err = r.l.Vtysh(ctx, lab.NodeEdge, show); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, "llgr-stale") && time.Since(killed) > 2*restart {
			break
		}
		if time.Since(killed) > 30*time.Second {
			t.Fatalf("%s after the kill the edge's path for %s is not long-lived stale:\n%s", time.Since(killed).Round(time.Millisecond), vm, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	dead := time.Since(killed)
	t.Logf("%s after the kill (restart time %s) the edge holds %s as:\n%s", dead.Round(time.Millisecond), restart, vm, out)

	restarted := time.Now()
	if err := startLabDaemon(ctx, r.l, r.ld); err != nil {
		t.Fatal(err)
	}
	if _, err := waitSessionSince(ctx, r.l, peer, killed, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	for {
		var err error
		if out, err = r.l.Vtysh(ctx, lab.NodeEdge, show); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "llgr-stale") && !strings.Contains(out, "stale") {
			break
		}
		if time.Since(restarted) > 30*time.Second {
			t.Fatalf("the restarted daemon did not refresh %s at the edge:\n%s", vm, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("daemon started again: %s refreshed at the edge %s later", vm, time.Since(restarted).Round(time.Millisecond))
	time.Sleep(time.Second)
	samples := fib.Stop()
	lowest := held
	for _, s := range samples {
		lowest = min(lowest, s.n)
	}
	t.Logf("%d samples over %s: lowest %d of %d controller routes", len(samples), time.Since(killed).Round(time.Millisecond), lowest, held)
	if lowest < held {
		t.Errorf("the edge FIB dropped to %d of the %d controller routes with the daemon dead for %s (restart time %s)", lowest, held, dead.Round(time.Millisecond), restart)
	}
	st, err := r.cl.Status(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	r.verify(ctx, st.State)
	for _, c := range r.res.Checked {
		t.Log("checked:", c)
	}
	for _, p := range r.res.Problems {
		t.Error(p)
	}
}
