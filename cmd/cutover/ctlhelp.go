package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cutover/cutover/cutover/daemon"
	"github.com/cutover/cutover/cutover/daemon/client"
	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/notify"
	"github.com/cutover/cutover/cutover/report"
	"github.com/cutover/cutover/cutover/view"
	"github.com/cutover/cutover/lab/rehearse"
)

func errorsAs(err error, target any) bool { return errors.As(err, target) }

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

// writeReport writes a rehearsal's report into dir.
func writeReport(dir string, in rehearse.ReportInput) ([]string, error) {
	rh := &report.Rehearsal{Expected: in.Result.Expected.String(), Actual: in.Result.Actual.String(),
		Passed: len(in.Result.Problems) == 0, Took: in.Result.Took}
	for _, f := range in.Result.Injected {
		res := fmt.Sprintf("injected while the batch was %s", f.At)
		if len(f.VMs) > 0 {
			res += fmt.Sprintf("; %d VMs: %v", len(f.VMs), f.VMs)
		}
		for _, e := range f.Evidence {
			res += "; " + e
		}
		rh.Faults = append(rh.Faults, report.Fault{Fault: f.Fault, When: fmt.Sprintf("batch %d", f.Batch), Result: res})
	}
	var snaps []report.Snapshot
	for _, s := range in.Snapshots {
		snaps = append(snaps, report.Snapshot{Name: s.Name, Text: s.Text})
	}
	r, err := report.Build(report.Input{Entries: in.Entries, RunbookPath: in.RunbookPath, RunbookDigest: in.RunbookDigest,
		InventoryDigest: in.InventoryDigest, Snapshots: snaps, Rehearsal: rh})
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := r.WriteDir(dir); err != nil {
		return nil, err
	}
	var files []string
	for _, f := range []string{"report.md", "report.html", "timeline.svg", "report.json"} {
		files = append(files, filepath.Join(dir, f))
	}
	return files, nil
}
