package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

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

// follow shows the run until it ends and returns nil, or an error (exit
// 1) when it aborted. In text it shows the view (on a terminal redrawn in
// place, elsewhere plain lines); with -o json it shows nothing and then
// hands the last status to emit.
func (a *app) follow(ctx context.Context, cl *client.Client, emit func(engine.Status) error) error {
	out := a.out
	if a.jsonOut() {
		out = io.Discard
	}
	st, err := view.Watch(ctx, func(ctx context.Context) (engine.Status, error) { return cl.Status(ctx, 0) }, out, view.Options{})
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
	if st.State.Phase == engine.PhaseAborted {
		return &exitError{code: exitFailed, err: fmt.Errorf("run aborted: %s", st.State.Result)}
	}
	return nil
}
