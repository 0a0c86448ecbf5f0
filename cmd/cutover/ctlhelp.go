package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cutover/cutover/cutover/daemon"
	"github.com/cutover/cutover/cutover/daemon/client"
	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/notify"
	"github.com/cutover/cutover/cutover/view"
)

func (a *app) dryRun(ctx context.Context, path string) error {
	if err := daemon.DryRun(ctx, path, time.Now(), a.out); err != nil {
		return inputErr(err)
	}
	return nil
}

// notifier returns the engine's notification hook for a webhook URL, and
// the function that flushes it on the way out.
func (a *app) notifier(url string) (func(kind, msg string), func()) {
	if url == "" {
		return nil, func() {}
	}
	w := &notify.Webhook{URL: url, Log: a.log.With().Str("component", "notify").Logger()}
	return w.Notify, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := w.Close(ctx); err != nil {
			a.log.Warn().Err(err).Str("op", "notify").Msg("webhook not flushed")
		}
	}
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
