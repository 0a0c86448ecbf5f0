package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/serve"
)

// completeTimeout bounds the daemon's answer to a completion: a shell
// waits for it at every Tab, so without an answer at once complete nothing.
const completeTimeout = time.Second

// daemonState asks the daemon that cmd's settings name (--socket,
// CUTOVER_SOCKET, the config file) for its run's state; ok is false on
// any error.
func (a *app) daemonState(cmd *cobra.Command) (st engine.RunState, ok bool) {
	v, err := settings(cmd)
	if err != nil {
		return st, false
	}
	socket := v.GetString("socket")
	if socket == "" {
		socket = serve.DefaultSocket
	}
	ctx, cancel := context.WithTimeout(context.Background(), completeTimeout)
	defer cancel()
	s, err := a.status(ctx, socket)
	if err != nil {
		return st, false
	}
	return s.State, true
}

// completePoint completes confirm's POINT: the go/no-go point the run
// waits at.
func (a *app) completePoint(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	st, ok := a.daemonState(cmd)
	if !ok || st.Confirm == "" {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return []string{st.Confirm + "\tthe run waits here"}, cobra.ShellCompDirectiveNoFileComp
}

// completeBatch completes rollback's --batch and --to with the batches the
// daemon has moved, each with its name and phase.
func (a *app) completeBatch(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
	return a.completeBatches(cmd, func(p engine.BatchPhase) bool {
		return p == engine.BatchAnnouncing || p == engine.BatchGating || p == engine.BatchCommitted
	})
}

// completeAtSource completes retry's --batch with the batches the run
// left at the source (rolled back or held).
func (a *app) completeAtSource(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
	return a.completeBatches(cmd, engine.BatchPhase.AtSource)
}

// completeAnyBatch completes status's --batch with every batch of the run.
func (a *app) completeAnyBatch(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
	return a.completeBatches(cmd, func(engine.BatchPhase) bool { return true })
}

// completeBatches offers the daemon's batches whose phase keep accepts.
func (a *app) completeBatches(cmd *cobra.Command, keep func(engine.BatchPhase) bool) ([]string, cobra.ShellCompDirective) {
	st, ok := a.daemonState(cmd)
	if !ok {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, b := range st.Batches {
		if keep(b.Phase) {
			out = append(out, fmt.Sprintf("%s\t%s (%s)", strconv.Itoa(b.Index), b.Name, b.Phase))
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveKeepOrder
}
