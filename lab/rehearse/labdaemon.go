package rehearse

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cutover/cutover/cutover/daemon/client"
	"github.com/cutover/cutover/internal/logcheck"
	"github.com/cutover/cutover/lab"
)

// labDaemon is how a rehearsal started the daemon in a lab; it is kept in
// the lab's directory (daemon.json) so that `cutover lab fault daemon-kill`
// can kill and restart it on a lab left up with --keep.
type labDaemon struct {
	PID    int      `json:"pid"`
	Argv   []string `json:"argv"` // after `ip netns exec <ctl>`
	Env    []string `json:"env,omitempty"`
	Socket string   `json:"socket"`
}

func labDaemonPath(l *lab.Lab) string { return filepath.Join(l.Dir(), "daemon.json") }

// startLabDaemon starts d.Argv in the lab's ctl namespace, records it in
// daemon.json (and its pid in d) and waits until the daemon answers on its
// socket.
func startLabDaemon(ctx context.Context, l *lab.Lab, d *labDaemon) error {
	logf, err := os.OpenFile(filepath.Join(l.Dir(), "daemon.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := lab.Exec(l.Namespace(lab.NodeCtl), d.Argv...)
	cmd.Env = append(os.Environ(), d.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the daemon in %s: %w", l.Namespace(lab.NodeCtl), err)
	}
	go func() { _ = cmd.Wait() }()
	d.PID = cmd.Process.Pid
	b, _ := json.MarshalIndent(d, "", "  ")
	if err := os.WriteFile(labDaemonPath(l), b, 0o600); err != nil {
		return fmt.Errorf("record the daemon: %w", err)
	}
	cl := client.New(d.Socket)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := cl.Status(ctx, 0); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the daemon did not answer on %s within 20s; see %s", d.Socket, filepath.Join(l.Dir(), "daemon.log"))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// alive reports whether pid runs and is the daemon on sock (a reused pid
// is never taken for it).
func alive(pid int, sock string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && strings.Contains(string(b), sock)
}

// killPID sends SIGKILL to pid and waits until it is gone.
func killPID(pid int, sock string) {
	if !alive(pid, sock) {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for range 200 {
		if !alive(pid, sock) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// heldRoutes counts the edge's host routes via any site's gateway: the
// routes the controller put there.
func heldRoutes(ctx context.Context, l *lab.Lab) (int, error) {
	held, err := heldSet(ctx, l)
	return len(held), err
}

// heldSet is the edge's host routes via any site's gateway.
func heldSet(ctx context.Context, l *lab.Lab) (map[netip.Prefix]bool, error) {
	return hostRoutesSet(ctx, l, siteGateways(l)...)
}

// siteGateways are the next-hops of every site of the lab.
func siteGateways(l *lab.Lab) []lab.NextHop {
	var gws []lab.NextHop
	for _, nh := range l.Topology().SiteNextHop {
		gws = append(gws, nh)
	}
	return gws
}

// hostRoutesSet is the edge's host routes (/32, /128) whose gateway is one
// of nhs.
func hostRoutesSet(ctx context.Context, l *lab.Lab, nhs ...lab.NextHop) (map[netip.Prefix]bool, error) {
	return hostRoutesSetOf(ctx, l, lab.NodeEdge, nhs...)
}

// hostRoutesSetOf is hostRoutesSet of the edge at node edge.
func hostRoutesSetOf(ctx context.Context, l *lab.Lab, edge string, nhs ...lab.NextHop) (map[netip.Prefix]bool, error) {
	fib, err := l.EdgeFIBOf(ctx, edge)
	if err != nil {
		return nil, err
	}
	gws := map[netip.Addr]bool{}
	for _, nh := range nhs {
		gws[nh.V4], gws[nh.V6] = true, true
	}
	set := map[netip.Prefix]bool{}
	for p, gw := range fib {
		if p.IsSingleIP() && gws[gw] {
			set[p] = true
		}
	}
	return set, nil
}

// killAndRestart kills the daemon with SIGKILL, samples the edge's FIB for
// gap while it is dead, starts it again the same way (d then holds its new
// pid) and returns what it saw: the evidence lines, and whether the edge
// dropped a route graceful restart should have held.
//
// withdrawn holds the prefixes the daemon withdrew before the kill (the
// batches it had rolled back). The edge may still hold some of them when
// the daemon dies, since it applies a withdrawal a little later; their
// leaving is the withdrawal landing, not graceful restart failing. Every
// other route the edge held before the kill must stay.
func killAndRestart(ctx context.Context, l *lab.Lab, d *labDaemon, gap time.Duration, withdrawn map[netip.Prefix]bool) ([]string, bool, error) {
	// Every edge must hold its routes, whatever router it runs; the
	// counts are the first edge's, as the rest of the rehearsal's.
	beforeAll, err := heldAll(ctx, l)
	if err != nil {
		return nil, false, err
	}
	before := beforeAll[lab.NodeEdge]
	keep := map[string]map[netip.Prefix]bool{}
	lost := map[string]map[netip.Prefix]bool{} // of keep, missing in some sample
	for e, held := range beforeAll {
		keep[e], lost[e] = map[netip.Prefix]bool{}, map[netip.Prefix]bool{}
		for p := range held {
			if !withdrawn[p] {
				keep[e][p] = true
			}
		}
	}
	old := d.PID
	killPID(d.PID, d.Socket)
	killed := time.Now()
	lowest, highest, samples := len(before), 0, 0
	for time.Since(killed) < gap {
		nowAll, err := heldAll(ctx, l)
		if err != nil {
			return nil, false, err
		}
		now := nowAll[lab.NodeEdge]
		samples++
		lowest, highest = min(lowest, len(now)), max(highest, len(now))
		for e, k := range keep {
			for p := range k {
				if !nowAll[e][p] {
					lost[e][p] = true
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	line := fmt.Sprintf("kill -9 of the daemon (pid %d); edge FIB sampled %d times over %s with the daemon dead: between %d and %d controller routes (before the kill: %d",
		old, samples, time.Since(killed).Round(time.Millisecond), lowest, highest, len(before))
	if n := len(before) - len(keep[lab.NodeEdge]); n > 0 {
		line += fmt.Sprintf(", %d of them already withdrawn by the daemon", n)
	}
	line += ")"
	if others := len(keep) - 1; others > 0 {
		line += fmt.Sprintf("; %d more edges sampled alike", others)
	}
	dropped := false
	for _, e := range l.Topology().EdgeNodes() {
		if len(lost[e]) > 0 {
			dropped = true
			line += fmt.Sprintf("; %d routes the daemon announced went missing at %s, such as %s", len(lost[e]), e, firstPrefix(lost[e]))
		}
	}
	ev := []string{line}
	restart := time.Now()
	if err := startLabDaemon(ctx, l, d); err != nil {
		return ev, dropped, err
	}
	after, _ := heldRoutes(ctx, l)
	ev = append(ev, fmt.Sprintf("daemon restarted (pid %d) in %s; %d controller routes after the restart",
		d.PID, time.Since(restart).Round(time.Millisecond), after))
	return ev, dropped, nil
}

// heldAll is heldSet of every edge, by node.
func heldAll(ctx context.Context, l *lab.Lab) (map[string]map[netip.Prefix]bool, error) {
	gws := siteGateways(l)
	out := map[string]map[netip.Prefix]bool{}
	for _, e := range l.Topology().EdgeNodes() {
		set, err := hostRoutesSetOf(ctx, l, e, gws...)
		if err != nil {
			return nil, err
		}
		out[e] = set
	}
	return out, nil
}

// firstPrefix is the lowest prefix of set, for a message.
func firstPrefix(set map[netip.Prefix]bool) netip.Prefix {
	var first netip.Prefix
	for p := range set {
		if !first.IsValid() || p.Addr().Less(first.Addr()) {
			first = p
		}
	}
	return first
}

// killDaemon is the daemon-kill fault: kill -9 of the daemon a rehearsal
// started (in.daemon, or the one recorded in the lab, such as a rehearsal
// left up with --keep), the edge's FIB sampled through the outage, the
// daemon started again the same way. The run stays paused ("interrupted")
// until someone resumes it.
func killDaemon(ctx context.Context, in Injection) ([]string, error) {
	d := in.daemon
	if d == nil {
		var err error
		if d, err = readLabDaemon(in.Lab); err != nil {
			return nil, err
		}
	}
	if !alive(d.PID, d.Socket) {
		return nil, fmt.Errorf("daemon-kill: the lab's daemon (pid %d) is not running", d.PID)
	}
	gap := in.Gap
	if gap <= 0 {
		gap = 3 * time.Second
	}
	ev, dropped, err := killAndRestart(ctx, in.Lab, d, gap, in.Withdrawn)
	if err == nil && dropped {
		err = &RoutesDroppedError{Evidence: ev[0]}
	}
	return ev, err
}

// readLabDaemon reads the daemon recorded in the lab (daemon.json).
func readLabDaemon(l *lab.Lab) (*labDaemon, error) {
	b, err := os.ReadFile(labDaemonPath(l))
	if err != nil {
		return nil, fmt.Errorf("daemon-kill: no daemon recorded in lab %s (%w): start one with cutover lab rehearse --keep", l.Name(), err)
	}
	var d labDaemon
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("daemon-kill: %s: %w", labDaemonPath(l), err)
	}
	return &d, nil
}

// stopLabDaemon stops the daemon with SIGTERM, and with SIGKILL when it is
// still there after a second.
func stopLabDaemon(d *labDaemon) {
	if d == nil || d.PID == 0 || !alive(d.PID, d.Socket) {
		return
	}
	_ = syscall.Kill(d.PID, syscall.SIGTERM)
	for range 50 {
		if !alive(d.PID, d.Socket) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	killPID(d.PID, d.Socket)
}

// peakRSS is the daemon's peak resident set size in bytes (VmHWM in
// /proc/<pid>/status), or 0 when it is not running or that cannot be read.
func (d *labDaemon) peakRSS() int64 {
	if d == nil || d.PID == 0 || !alive(d.PID, d.Socket) {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.PID))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// maxLogProblems is how many bad lines of daemon.log a rehearsal lists.
const maxLogProblems = 5

// checkDaemonLog checks the lines of daemon.log that it has not checked
// yet: each must be one JSON object with every key once, as strict parsers
// such as Elasticsearch take nothing else. It is called at the
// end of the run, and again after the daemon stopped for the lines of its
// shutdown. Bad lines make the rehearsal not OK; the first few are listed
// as its problems.
func (r *rehearsal) checkDaemonLog() { r.checkLog(filepath.Join(r.l.Dir(), "daemon.log")) }

// checkLog is checkDaemonLog for the log at path.
func (r *rehearsal) checkLog(path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		r.res.Problems = append(r.res.Problems, "check daemon.log: "+err.Error())
		r.res.OK = false
		return
	}
	if r.ld != nil && alive(r.ld.PID, r.ld.Socket) {
		// A line without its newline may still be being written.
		b = b[:bytes.LastIndexByte(b, '\n')+1]
	}
	rep, _ := logcheck.Log(bytes.NewReader(b), 0) // a bytes.Reader never fails
	from := r.logLines
	r.logLines = rep.Lines
	var bad []logcheck.Problem
	for _, p := range rep.Problems {
		if p.Line > from {
			bad = append(bad, p)
		}
	}
	what := fmt.Sprintf("daemon.log: %d lines", rep.Lines-from)
	if from > 0 {
		what = fmt.Sprintf("daemon.log: %d more lines as the daemon stopped", rep.Lines-from)
	}
	if len(bad) == 0 {
		r.res.Checked = append(r.res.Checked, what+", each strict JSON with unique keys")
		return
	}
	r.res.Checked = append(r.res.Checked, fmt.Sprintf("%s, %d of them not strict JSON with unique keys (%s)", what, len(bad), path))
	for _, p := range bad[:min(len(bad), maxLogProblems)] {
		r.res.Problems = append(r.res.Problems, fmt.Sprintf("daemon.log %v: %s", p, shortLine(p.Text)))
	}
	r.res.OK = false
}

// shortLine shortens a log line for a problem.
func shortLine(s string) string {
	if len(s) <= 200 {
		return s
	}
	return strings.ToValidUTF8(s[:200], "") + "…"
}
