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

// completeBatch completes rollback's --batch and --to: the batches whose
// prefixes are at the target (announcing, gating, committed), with name
// and phase.
func (a *app) completeBatch(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
	st, ok := a.daemonState(cmd)
	if !ok {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, b := range st.Batches {
		switch b.Phase {
		case engine.BatchAnnouncing, engine.BatchGating, engine.BatchCommitted:
			out = append(out, fmt.Sprintf("%s\t%s (%s)", strconv.Itoa(b.Index), b.Name, b.Phase))
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveKeepOrder
}

// completeAtSource completes retry's --batch with the batches the run
// left at the source (rolled back or held).
func (a *app) completeAtSource(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
	st, ok := a.daemonState(cmd)
	if !ok {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, b := range st.Batches {
		if b.Phase.AtSource() {
			out = append(out, fmt.Sprintf("%s\t%s (%s)", strconv.Itoa(b.Index), b.Name, b.Phase))
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveKeepOrder
}

// completeAnyBatch completes status's --batch with every batch of the run.
func (a *app) completeAnyBatch(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
	st, ok := a.daemonState(cmd)
	if !ok {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, b := range st.Batches {
		out = append(out, fmt.Sprintf("%s\t%s (%s)", strconv.Itoa(b.Index), b.Name, b.Phase))
	}
	return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveKeepOrder
}
