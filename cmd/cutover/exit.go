package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/cutover/cutover/cutover/daemon/client"
	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/runbook"
)

// Exit codes: the one table of them (see exitCodes, which the help and the
// man page print). Scripts of the night shift branch on them, so a number
// never changes its meaning; new meanings take new numbers.
const (
	exitOK        = 0
	exitFailed    = 1
	exitUsage     = 2
	exitNoDaemon  = 3
	exitRefused   = 4
	exitRunPartly = 5 // the run finished with VMs left at the source
	exitRunAbort  = 6 // the run was aborted and rolled back
)

// exitCodes documents the exit codes, in order.
var exitCodes = []struct {
	code     int
	reserved bool
	meaning  string
}{
	{exitOK, false, "success"},
	{exitFailed, false, "failure: the command could not do its work (I/O, a lab that is not up or not healthy, a rehearsal whose outcome is not what the runbook's policy promises)"},
	{exitUsage, false, "bad input: unknown command or flag, wrong arguments, a bad flag value (also -o), a config file that cannot be read or has an unknown key, mistakes in a runbook or its inventory"},
	{exitNoDaemon, false, "the daemon is unreachable: nothing listens on --socket (not running, wrong path) or the socket refuses this user"},
	{exitRefused, false, "the daemon refused the command in its current state: a run is already active, there is no run, the run is not at that go/no-go point, the state is unreconciled, the user may only observe"},
	{exitRunPartly, false, "run, status --wait, lab rehearse: the run finished with VMs left at the source (batches rolled back by a gate or held by the readiness check): cutover retry moves them again"},
	{exitRunAbort, false, "run, status --wait, lab rehearse: the run was aborted: everything rolled back, or the pre-check failed"},
	{7, true, "reserved (7-9): further outcomes of a run"},
}

// exitCodeHelp renders exitCodes for the help text, wrapped to 84
// columns.
func exitCodeHelp() string {
	var b strings.Builder
	b.WriteString("Exit codes:")
	for _, e := range exitCodes {
		line := fmt.Sprintf("\n  %d ", e.code)
		for _, w := range strings.Fields(e.meaning) {
			if len(line)+1+len(w) > 85 {
				b.WriteString(line)
				line = "\n    "
			}
			line += " " + w
		}
		b.WriteString(line)
	}
	return b.String()
}

// outcomeErr is the exit of a run that ended: nil when every VM moved,
// exit 5 naming what is left at the source, exit 6 when it aborted. A run
// still under way (the view was left) is nil.
func outcomeErr(st engine.Status) error {
	switch st.Outcome {
	case engine.OutcomePartial:
		return outcomeExit(st.Outcome, errors.New(leftAtSource(st)))
	case engine.OutcomeAborted:
		return outcomeExit(st.Outcome, fmt.Errorf("run aborted: %s", st.State.Result))
	}
	return nil
}

// outcomeExit gives err the exit code of outcome o: 5 for partial, 6 for
// aborted; nil for a run that moved every VM (or is under way).
func outcomeExit(o engine.Outcome, err error) error {
	switch o {
	case engine.OutcomePartial:
		return &exitError{code: exitRunPartly, err: err}
	case engine.OutcomeAborted:
		return &exitError{code: exitRunAbort, err: err}
	}
	return nil
}

// leftAtSource says which VMs a finished run left at the source.
func leftAtSource(st engine.Status) string {
	var names []string
	for _, i := range st.AtSourceBatches {
		if i >= 0 && i < len(st.State.Batches) {
			b := st.State.Batches[i]
			names = append(names, fmt.Sprintf("%d %s (%s)", i, b.Name, b.Phase))
		}
	}
	src := st.State.Source
	if src == "" {
		src = "the source"
	}
	return fmt.Sprintf("run finished with %d VMs still at %s: batch %s; cutover status --batch N says why, cutover retry moves them again",
		st.AtSourceVMs, src, strings.Join(names, ", "))
}

// exitError carries a process exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErr marks err as bad input (exit 2).
func usageErr(err error) error { return &exitError{code: exitUsage, err: err} }

// exitCode is the exit code of err as the commands return it: the code of
// an *exitError in its chain, else 1. (Errors cobra returns before a
// command runs are bad input: see app.exitCode.)
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitFailed
}

// inputErr gives mistakes in a runbook or its inventory exit code 2,
// telling them by type: runbook.ValidationErrors (or a single
// runbook.FieldError) anywhere in err's chain, as loaded here or as the
// daemon's client hands them on.
func inputErr(err error) error {
	if isInputErr(err) {
		return usageErr(err)
	}
	return err
}

func isInputErr(err error) bool {
	var (
		ve runbook.ValidationErrors
		fe runbook.FieldError
	)
	return errors.As(err, &ve) || errors.As(err, &fe)
}

// statusCoder is what an answer of the daemon that is not OK implements to
// say its HTTP status (the client's error does): 409 or 404 for a refusal,
// 422 for mistakes in a runbook, 400, 408 and 413 for a request it could
// not read, 5xx when it failed.
type statusCoder interface{ StatusCode() int }

// daemonErr gives an error of a call to the daemon its exit code (see
// daemonCode). nil stays nil; an *exitError keeps its code.
func daemonErr(err error) error {
	if err == nil {
		return nil
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	return &exitError{code: daemonCode(err), err: err}
}

func daemonCode(err error) int {
	var (
		sc statusCoder
		oe *net.OpError
		ue *url.Error
	)
	switch {
	case isInputErr(err):
		return exitUsage
	case errors.Is(err, client.ErrNoDaemon):
		return exitNoDaemon
	case errors.As(err, &sc):
		switch sc.StatusCode() {
		case http.StatusConflict, http.StatusNotFound, http.StatusForbidden:
			return exitRefused
		case http.StatusUnprocessableEntity:
			return exitUsage
		}
		return exitFailed
	case errors.As(err, &oe) && oe.Op == "dial":
		// The socket exists but cannot be connected to: permissions, or
		// a dial timeout.
		return exitNoDaemon
	case errors.As(err, &ue), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// The connection failed after the dial (the daemon died in the
		// request), or the command was interrupted.
		return exitFailed
	}
	return exitFailed
}
