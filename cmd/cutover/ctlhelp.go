package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/mattn/go-isatty"

	"github.com/cutover/cutover/cutover/daemon"
	"github.com/cutover/cutover/cutover/daemon/client"
	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/view"
)

// dryRun simulates the run and prints the timeline; with -o json the
// timeline's lines in a runResult.
func (a *app) dryRun(ctx context.Context, path string) error {
	if !a.jsonOut() {
		if err := daemon.DryRun(ctx, path, time.Now(), a.out); err != nil {
			return inputErr(err)
		}
		return nil
	}
	var b bytes.Buffer
	if err := daemon.DryRun(ctx, path, time.Now(), &b); err != nil {
		return inputErr(err)
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	return a.writeJSON(runResult{Runbook: path, DryRun: true, Timeline: lines})
}

// follow shows the run until it ends and returns nil when every VM moved,
// or an error with the outcome's exit code (5: VMs left at the source, 6:
// aborted); nil too when the person left the view of a run that goes on.
// In text it shows the view (on a terminal redrawn in place, elsewhere
// plain lines); with -o json it shows nothing and then hands the last
// status to emit.
func (a *app) follow(ctx context.Context, cl *client.Client, emit func(engine.Status) error) error {
	return a.followOpts(ctx, cl, view.Options{}, emit)
}

// followOpts is follow with the view's options.
func (a *app) followOpts(ctx context.Context, cl *client.Client, opts view.Options, emit func(engine.Status) error) error {
	out := a.out
	if a.jsonOut() {
		out = io.Discard
	}
	st, err := view.Watch(ctx, func(ctx context.Context) (engine.Status, error) { return cl.Status(ctx, 0) }, out, opts)
	if errors.Is(err, view.ErrInterrupted) {
		fmt.Fprintln(a.errLines(), err)
		return nil
	}
	if err != nil {
		return daemonErr(err)
	}
	if a.jsonOut() && emit != nil {
		if err := emit(st); err != nil {
			return err
		}
	}
	return outcomeErr(st)
}

// waitRun waits without a view until the run ends (or is not there),
// prints its status and returns its outcome's exit code. It polls once a
// second and rides out a daemon restart for a minute (not a daemon that is
// not there at the first call).
func (a *app) waitRun(ctx context.Context, cl *client.Client) error {
	var lost time.Time
	for first := true; ; first = false {
		st, err := cl.Status(ctx, math.MaxInt)
		switch {
		case err != nil && !first && ctx.Err() == nil && (lost.IsZero() || time.Since(lost) < time.Minute):
			if lost.IsZero() {
				lost = time.Now()
			}
		case err != nil:
			return daemonErr(err)
		case !st.State.Active():
			if st.State.Phase == engine.PhaseIdle || st.State.Phase == engine.PhaseUnreconciled {
				return &exitError{code: exitRefused, err: fmt.Errorf("status --wait: no run (phase %s)", st.State.Phase)}
			}
			if st, err = cl.Status(ctx, 0); err != nil {
				return daemonErr(err)
			}
			if a.jsonOut() {
				if err := a.writeJSON(st); err != nil {
					return err
				}
			} else if err := view.Render(a.out, st, view.Options{Events: 10}); err != nil {
				return err
			}
			return outcomeErr(st)
		default:
			lost = time.Time{}
		}
		select {
		case <-ctx.Done():
			return daemonErr(ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

// interactive reports whether a person answers on standard input and
// reads standard error.
func (a *app) interactive() bool {
	in, ok := a.in.(interface{ Fd() uintptr })
	errw, ok2 := a.err.(interface{ Fd() uintptr })
	return ok && ok2 && isatty.IsTerminal(in.Fd()) && isatty.IsTerminal(errw.Fd())
}

// askRollbackAll asks the person at the terminal before rollback --all,
// saying what it would move back.
func (a *app) askRollbackAll(ctx context.Context) (bool, error) {
	what := "every batch at the target"
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	st, err := a.client().Status(sctx, math.MaxInt)
	cancel()
	if err == nil && st.State.Runbook != "" {
		src := st.State.Source
		if src == "" {
			src = "the source"
		}
		what = fmt.Sprintf("%d VMs of %s (%s) back to %s", st.MovedVMs, st.State.Runbook, st.State.Phase, src)
	}
	fmt.Fprintf(a.err, "rollback --all moves %s and ends the run. Roll back? [y/N] ", what)
	line, err := bufio.NewReader(a.in).ReadString('\n')
	if err != nil && line == "" {
		return false, nil
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}
