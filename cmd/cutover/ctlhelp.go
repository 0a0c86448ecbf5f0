package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cutover/cutover/cutover/daemon"
	"github.com/cutover/cutover/cutover/daemon/client"
	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/view"
)

func (a *app) dryRun(ctx context.Context, path string) error {
	if err := daemon.DryRun(ctx, path, time.Now(), a.out); err != nil {
		return inputErr(err)
	}
	return nil
}

// follow shows the run live until it ends (on a terminal: a view redrawn in
// place; elsewhere: plain lines).
func (a *app) follow(ctx context.Context, cl *client.Client) error {
	st, err := view.Watch(ctx, func(ctx context.Context) (engine.Status, error) { return cl.Status(ctx, 0) }, a.out, view.Options{})
	if errors.Is(err, view.ErrInterrupted) {
		fmt.Fprintln(a.err, err)
		return nil
	}
	if err != nil {
		return err
	}
	if st.State.Phase == engine.PhaseAborted {
		return &exitError{code: 1, err: fmt.Errorf("run aborted: %s", st.State.Result)}
	}
	return nil
}
