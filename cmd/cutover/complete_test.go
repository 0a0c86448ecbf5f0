package main

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/serve"
)

// fakeDaemon is a status source for completion: the status it returns (or
// its error), and the socket and deadline it was asked with.
type fakeDaemon struct {
	st       engine.Status
	err      error
	socket   string
	deadline time.Duration
}

func (f *fakeDaemon) status(ctx context.Context, socket string) (engine.Status, error) {
	f.socket = socket
	if d, ok := ctx.Deadline(); ok {
		f.deadline = time.Until(d)
	}
	return f.st, f.err
}

// complete runs the shell's completion request for args and returns the
// candidates (without the directive line).
func complete(t *testing.T, f *fakeDaemon, args ...string) []string {
	t.Helper()
	a := newApp()
	a.status = f.status
	root := newRootCmd(a)
	var out, errb bytes.Buffer
	root.SetArgs(append([]string{"__complete"}, args...))
	root.SetOut(&out)
	root.SetErr(&errb)
	if err := root.Execute(); err != nil {
		t.Fatalf("__complete %q: %v\n%s", args, err, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], ":") {
		t.Fatalf("no directive line:\n%s", out.String())
	}
	return lines[:len(lines)-1]
}

func TestComplete(t *testing.T) {
	waiting := &fakeDaemon{st: engine.Status{State: engine.RunState{
		Phase: engine.PhasePaused, Confirm: "after-canary",
		Batches: []engine.BatchState{
			{Index: 0, Name: "canary", Phase: engine.BatchCommitted},
			{Index: 1, Name: "tier3-1", Phase: engine.BatchRolledBack},
			{Index: 2, Name: "tier3-2", Phase: engine.BatchGating},
			{Index: 3, Name: "tier3-3", Phase: engine.BatchPending},
		},
	}}}
	down := &fakeDaemon{err: errors.New("no cutover daemon is running")}
	idle := &fakeDaemon{st: engine.Status{State: engine.RunState{Phase: engine.PhaseIdle}}}
	for _, tt := range []struct {
		name string
		d    *fakeDaemon
		args []string
		want []string
	}{
		{"confirm: the point waited at", waiting, []string{"confirm", ""}, []string{"after-canary\tthe run waits here"}},
		{"confirm: one point only", waiting, []string{"confirm", "after-canary", ""}, nil},
		{"confirm: no point waited at", idle, []string{"confirm", ""}, nil},
		{"confirm: no daemon", down, []string{"confirm", ""}, nil},
		{"rollback --batch: the moved batches", waiting, []string{"rollback", "--batch", ""},
			[]string{"0\tcanary (committed)", "2\ttier3-2 (gating)"}},
		{"rollback --to", waiting, []string{"rollback", "--all=false", "--to", ""},
			[]string{"0\tcanary (committed)", "2\ttier3-2 (gating)"}},
		{"rollback --batch: no daemon", down, []string{"rollback", "--batch", ""}, nil},
		{"-o of status", down, []string{"status", "-o", ""}, []string{"text", "json"}},
		{"--output of lab fault", down, []string{"lab", "fault", "vm-down", "--output", ""}, []string{"text", "json"}},
		{"-o of report", down, []string{"report", "-o", ""}, []string{"md", "html", "json", "svg", "text", "markdown"}},
		{"fault kinds", down, []string{"lab", "fault", ""}, []string{"vm-down", "target-down", "slow-vm", "http-5xx", "bgp-reset", "link-down", "daemon-kill"}},
		{"reconcile", down, []string{"reconcile", ""}, []string{"adopt", "clear"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.d.socket = ""
			if got := complete(t, tt.d, tt.args...); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}

	// The daemon is the one --socket names (else the default), asked with
	// a short deadline.
	f := &fakeDaemon{st: waiting.st}
	complete(t, f, "confirm", "")
	if f.socket != serve.DefaultSocket || f.deadline <= 0 || f.deadline > completeTimeout {
		t.Errorf("asked %q with deadline %v", f.socket, f.deadline)
	}
	complete(t, f, "rollback", "--socket", "/tmp/other.sock", "--to", "")
	if f.socket != "/tmp/other.sock" {
		t.Errorf("asked %q, want /tmp/other.sock", f.socket)
	}
	t.Setenv("CUTOVER_SOCKET", "/tmp/env.sock")
	complete(t, f, "confirm", "")
	if f.socket != "/tmp/env.sock" {
		t.Errorf("asked %q, want /tmp/env.sock (CUTOVER_SOCKET)", f.socket)
	}
}
