package bgplab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/cutover/cutover/bgp"
	"github.com/cutover/cutover/bgp/gobgp"
	"github.com/cutover/cutover/lab"
)

// Defaults of AnnounceOptions.
const (
	DefaultTimeout     = 60 * time.Second
	DefaultRestartTime = 120 * time.Second
)

// AnnounceOptions say what Announce does.
type AnnounceOptions struct {
	// Site is where to send the VMs: their routes get its gateway as
	// next-hop. Empty with Withdraw.
	Site string
	// Count announces only the first Count VMs; 0 means all.
	Count int
	// Withdraw removes the routes instead (what an earlier Announce left
	// at the edge through graceful restart).
	Withdraw bool
	// Hold keeps the session until ctx ends, then withdraws and exits.
	// Without it Announce stops the speaker without withdrawing: the edge
	// keeps the routes for RestartTime, then drops them.
	Hold bool
	// Timeout bounds each wait for the edge (default DefaultTimeout).
	Timeout time.Duration
	// RestartTime is the graceful restart time announced to the edge
	// (default DefaultRestartTime).
	RestartTime time.Duration
}

// Announce runs a speaker for the lab's controller (it must run inside the
// ctl namespace), moves the lab's VMs to a site or withdraws them, and
// reports on out when the edge's kernel FIB held the change and when the
// edge's mirror confirmed it.
func Announce(ctx context.Context, l *lab.Lab, o AnnounceOptions, out io.Writer, log zerolog.Logger) (err error) {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	topo := l.Topology()
	vms := topo.VMs
	if o.Count < 0 || o.Count > len(vms) {
		return fmt.Errorf("count %d: the lab has %d VMs", o.Count, len(vms))
	}
	if o.Count > 0 {
		vms = vms[:o.Count]
	}
	var (
		routes []bgp.Route
		want   []bgp.Route
		fib    map[netip.Prefix]netip.Addr
	)
	if o.Withdraw {
		want, fib = bgp.Withdrawals(vms), FIBFor(nil, vms)
	} else {
		if routes, err = SiteRoutes(topo, o.Site, vms); err != nil {
			return err
		}
		want, fib = routes, FIBFor(routes, nil)
	}
	cfg := ControllerConfig(topo, len(topo.VMs))
	if o.RestartTime > 0 {
		cfg.GracefulRestart.RestartTime = o.RestartTime
	}
	w, err := WatchFIB(l.Namespace(lab.NodeEdge))
	if err != nil {
		return err
	}
	defer w.Close()
	sp, err := gobgp.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if !closed {
			err = errors.Join(err, sp.Close())
		}
	}()

	what := fmt.Sprintf("%d VM prefixes via %s", len(vms), o.Site)
	if o.Withdraw {
		what = fmt.Sprintf("the routes of %d VM prefixes", len(vms))
	}
	took, up, err := apply(ctx, sp, w, routes, fib, o.Timeout)
	if err != nil {
		return fmt.Errorf("announce %s: %w", what, err)
	}
	verb := "announced"
	if o.Withdraw {
		verb = "withdrew"
	}
	fmt.Fprintf(out, "%s %s: the edge's FIB held the change %s after Set", verb, what, round(took))
	if up > 0 {
		fmt.Fprintf(out, " (the BGP session took %s of it to come up)", round(up))
	}
	fmt.Fprintln(out)
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, o.Timeout)
	c, err := bgp.WaitConverged(wctx, sp, want, 20*time.Millisecond)
	cancel()
	if err != nil {
		return fmt.Errorf("confirm %s: %w", what, err)
	}
	fmt.Fprintf(out, "the edge's mirror confirmed it %s later (%s)\n", round(time.Since(start)), c)

	switch {
	case o.Withdraw:
		return nil
	case !o.Hold:
		fmt.Fprintf(out, "stopping without withdrawing: the edge keeps these routes for up to %s (graceful restart), then drops them; `--withdraw` removes them now\n",
			cfg.GracefulRestart.RestartTime)
		return nil
	}
	fmt.Fprintln(out, "holding the session; interrupt (Ctrl-C) to withdraw and exit")
	<-ctx.Done()
	wctx, cancel = context.WithTimeout(context.Background(), o.Timeout)
	defer cancel()
	took, _, err = apply(wctx, sp, w, nil, FIBFor(nil, vms), o.Timeout)
	if err != nil {
		return fmt.Errorf("withdraw %s: %w", what, err)
	}
	fmt.Fprintf(out, "withdrew %s: the edge's FIB held the change %s after Set\n", what, round(took))
	closed = true
	return sp.Close()
}

// apply sets routes and waits until the edge's FIB looks like fib. It
// returns the time that took, and how long of it the session took to come
// up when it was not up at the start.
func apply(ctx context.Context, sp bgp.Speaker, w *FIBWatch, routes []bgp.Route, fib map[netip.Prefix]netip.Addr, timeout time.Duration) (took, up time.Duration, err error) {
	ps, err := sp.Peers(ctx)
	if err != nil {
		return 0, 0, err
	}
	wasUp := len(ps) > 0 && ps[0].Established
	w.Expect(fib)
	start := time.Now()
	if err := sp.Set(ctx, routes); err != nil {
		return 0, 0, err
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	upc := make(chan time.Duration, 1)
	if !wasUp {
		go func() {
			for wctx.Err() == nil {
				if ps, err := sp.Peers(wctx); err == nil && len(ps) > 0 && ps[0].Established {
					upc <- time.Since(start)
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	at, err := w.Wait(wctx)
	if err != nil {
		return 0, 0, err
	}
	select {
	case up = <-upc:
	default:
	}
	return at.Sub(start), up, nil
}

func round(d time.Duration) time.Duration {
	if d > time.Second {
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

// Run runs cmd (from Command) in the foreground: its output goes to this
// process's, SIGINT and SIGTERM are passed on to it, and its exit status
// is returned as an error.
func Run(cmd *exec.Cmd, stdout, stderr io.Writer) error {
	cmd.Stdin = os.Stdin
	cmd.Stdout, cmd.Stderr = stdout, stderr
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case s := <-sigs:
			cmd.Process.Signal(s)
		case err := <-done:
			return err
		}
	}
}
