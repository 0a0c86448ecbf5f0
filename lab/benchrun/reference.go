package benchrun

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cutover/cutover/lab"
	"github.com/cutover/cutover/lab/bgplab"
)

// ReferenceEnv marks the process Run starts inside the lab's ctl namespace
// to measure the reference; its value is the lab's name.
const ReferenceEnv = "CUTOVER_BENCH_RUN_REFERENCE"

// InReferenceChild reports whether this process was started by Run to
// measure the reference (then it calls ServeReference).
func InReferenceChild() bool { return os.Getenv(ReferenceEnv) != "" }

// ServeReference measures the reference in the lab named by ReferenceEnv
// and writes it to w as JSON: a bare embedded GoBGP announces every VM
// prefix of the lab via the target site, then withdraws them. It must run
// in the lab's ctl namespace, started there by Run.
func ServeReference(ctx context.Context, w io.Writer) error {
	l, err := lab.Open(os.Getenv(ReferenceEnv))
	if err != nil {
		return fmt.Errorf("reference: %w", err)
	}
	if ns := l.Namespace(lab.NodeCtl); !bgplab.InNamespace(ns) {
		return fmt.Errorf("reference: not started in %s by bench run", ns)
	}
	topo := l.Topology()
	node, ok := topo.SiteNode(TargetSite)
	if !ok {
		return fmt.Errorf("reference: lab %s has no site %s", l.Name(), TargetSite)
	}
	routes, err := bgplab.SiteRoutes(topo, node, topo.VMs)
	if err != nil {
		return fmt.Errorf("reference: %w", err)
	}
	t, err := bgplab.MeasureReference(ctx, l, routes)
	if err != nil {
		return err
	}
	if err := json.NewEncoder(w).Encode(Reference{Prefixes: t.Prefixes, Announce: t.Announce, Withdraw: t.Withdraw}); err != nil {
		return fmt.Errorf("reference: write the result: %w", err)
	}
	return nil
}

// MaybeServeReference turns this process into the reference's child when
// ReferenceEnv is set, and exits when done; otherwise it returns at once.
// A test package that runs Run calls it first in TestMain.
func MaybeServeReference() {
	if !InReferenceChild() {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := ServeReference(ctx, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench run:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// runReference starts this program again in the lab's ctl namespace with
// o.ReferenceArgs and ReferenceEnv, sends it SIGTERM when ctx ends,
// and reads the reference it measured. Its log goes to o.Out.
func runReference(ctx context.Context, o Options, l *lab.Lab) (Reference, error) {
	c, err := bgplab.Command(l.Namespace(lab.NodeCtl), o.ReferenceArgs...)
	if err != nil {
		return Reference{}, fmt.Errorf("reference: %w", err)
	}
	c.Env = append(c.Env, ReferenceEnv+"="+l.Name())
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, o.Out
	if err := c.Start(); err != nil {
		return Reference{}, fmt.Errorf("reference: start %s: %w", c.Path, err)
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			_ = c.Process.Signal(syscall.SIGTERM)
		case <-done:
		}
	}()
	if err := c.Wait(); err != nil {
		return Reference{}, fmt.Errorf("reference: in %s: %w", l.Namespace(lab.NodeCtl), err)
	}
	var ref Reference
	if err := json.Unmarshal(out.Bytes(), &ref); err != nil {
		return Reference{}, fmt.Errorf("reference: read its result %q: %w", strings.TrimSpace(out.String()), err)
	}
	if ref.Withdraw <= 0 || ref.Announce <= 0 {
		return ref, fmt.Errorf("reference: no times in its result %q", strings.TrimSpace(out.String()))
	}
	return ref, nil
}

// labDaemon is what the rehearsal records of the daemon it started in the
// lab's directory (daemon.json): enough to stop it.
type labDaemon struct {
	PID    int    `json:"pid"`
	Socket string `json:"socket"`
}

// alive reports whether d's process runs and is still that daemon (a
// reused pid is never taken for it).
func (d labDaemon) alive() bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", d.PID))
	return err == nil && d.Socket != "" && strings.Contains(string(b), d.Socket)
}

// stopDaemon stops the daemon the rehearsal left running in l, so that
// the reference can have the edge's session from ctl: SIGTERM, then
// SIGKILL when it is still there after 10 s.
func stopDaemon(l *lab.Lab) error {
	path := filepath.Join(l.Dir(), "daemon.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("stop the daemon: %w", err)
	}
	var d labDaemon
	if err := json.Unmarshal(b, &d); err != nil {
		return fmt.Errorf("stop the daemon: %s: %w", path, err)
	}
	for _, step := range []struct {
		sig  syscall.Signal
		wait time.Duration
	}{{syscall.SIGTERM, 10 * time.Second}, {syscall.SIGKILL, 5 * time.Second}} {
		if !d.alive() {
			return nil
		}
		if err := syscall.Kill(d.PID, step.sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("stop the daemon (pid %d): %w", d.PID, err)
		}
		for deadline := time.Now().Add(step.wait); d.alive() && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if d.alive() {
		return fmt.Errorf("stop the daemon: pid %d is still there after SIGKILL", d.PID)
	}
	return nil
}
