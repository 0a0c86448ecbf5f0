// Package benchrun is `cutover bench run`: one end-to-end benchmark in the
// lab. It generates a runbook of N VMs (Write), rehearses it in a lab of
// its shape with the daemon and its gates (package rehearse), rolls every
// batch back, then stops the daemon and times a bare embedded GoBGP
// announcing and withdrawing the same prefixes against the same edge
// (bgplab.MeasureReference, in a child process in the lab's ctl
// namespace). The Result holds per batch the announce, convergence and
// gate times, the rollback until the edge's FIB is back at the source, the
// reference's withdraw beside it, and the daemon's peak RSS.
package benchrun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/report"
	"github.com/cutover/cutover/lab"
	"github.com/cutover/cutover/lab/rehearse"
)

// Defaults of Options.
const (
	DefaultLab       = "benchrun"
	DefaultVMs       = 50_000
	DefaultCanary    = 24
	DefaultBatchSize = 10_000
)

// TargetRatio is what the project aims at: a rollback until the edge's
// FIB is back at the source within 1.1 times the reference's withdraw of
// the same prefixes.
const TargetRatio = 1.1

// ErrNotRoot is returned by Run when the process is not root.
var ErrNotRoot = errors.New("bench run: needs root (network namespaces, FRR, nftables): run it as root, e.g. with sudo")

// Options say what Run measures, and where.
type Options struct {
	Spec
	// Lab is the lab's name (default DefaultLab); a lab of that name that
	// is up is taken down first.
	Lab string
	// Dir receives the generated runbook and inventory, the rehearsal's
	// report (report/) and its evidence record (evidence/); "": a
	// temporary directory, removed at the end.
	Dir string
	// KeepLab leaves the lab up at the end (its daemon stopped, as the
	// reference needs the edge's session).
	KeepLab bool
	// Binary is the cutover executable the lab's daemon and responders
	// run (default os.Executable(); a test binary serves them when its
	// TestMain calls serve.RunIfChild and lab.MaybeRunResponder).
	Binary string
	// ReferenceArgs are the arguments this program is started with again
	// inside the lab's ctl namespace to measure the reference. There
	// ReferenceEnv is set, and the program must call ServeReference:
	// `cutover bench run` does; a test's TestMain calls
	// MaybeServeReference.
	ReferenceArgs []string
	// Out receives progress lines; nil: discarded.
	Out io.Writer
	Log zerolog.Logger
}

// Result is what one bench run measured. Times are in nanoseconds in JSON.
type Result struct {
	Lab       string `json:"lab"`
	VMs       int    `json:"vms"`
	Prefixes  int    `json:"prefixes"`
	Canary    int    `json:"canary"`
	BatchSize int    `json:"batch_size"`
	// Runbook is the generated runbook's path when Options.Dir keeps it.
	Runbook string `json:"runbook,omitempty"`
	// Outcome is how the run ended before the rollback (all-moved when
	// every batch passed its gates).
	Outcome engine.Outcome `json:"outcome"`
	Batches []Batch        `json:"batches"`
	LabUp   time.Duration  `json:"lab_up"`
	// RunTook is the run through the daemon, from its start to its end.
	RunTook time.Duration `json:"run_took"`
	// Rollback is from `rollback --all` until the edge's kernel FIB held
	// no VM route via the target; DaemonRollback is the daemon's own
	// change (BGP and nft) within it, as its journal says.
	Rollback       time.Duration `json:"rollback"`
	DaemonRollback time.Duration `json:"daemon_rollback,omitempty"`
	// Reference is the bare GoBGP's announce and withdraw of the same
	// prefixes; nil when it was not measured.
	Reference *Reference `json:"reference,omitempty"`
	// Ratio is Rollback over the reference's withdraw (0: not measured).
	Ratio         float64 `json:"ratio,omitempty"`
	DaemonPeakRSS int64   `json:"daemon_peak_rss_bytes"`
	// Took is the whole bench: lab up and (unless KeepLab) down included.
	Took time.Duration `json:"took"`
	// Problems are what went wrong: what the rehearsal found, or a step
	// that failed. The figures of a result with problems are suspect.
	Problems []string `json:"problems,omitempty"`
}

// Batch is one batch of the run: its size and the times the daemon's
// journal gives for its last try. Announce is the change (BGP and nft),
// Converge until the edge held the batch's routes (the bgp gate), Gate
// the probe gate.
type Batch struct {
	Name     string            `json:"name"`
	VMs      int               `json:"vms"`
	Prefixes int               `json:"prefixes"`
	Result   engine.BatchPhase `json:"result"`
	Announce time.Duration     `json:"announce"`
	Converge time.Duration     `json:"converge"`
	Gate     time.Duration     `json:"gate"`
}

// Reference is what a bare embedded GoBGP took against the same edge:
// from its call until the edge's kernel FIB held every prefix (Announce),
// then none of them (Withdraw).
type Reference struct {
	Prefixes int           `json:"prefixes"`
	Announce time.Duration `json:"announce"`
	Withdraw time.Duration `json:"withdraw"`
}

// Run generates the runbook, rehearses it, measures the reference and
// takes the lab down (unless KeepLab), also when it fails or ctx ends. A
// result whose run had problems comes back with an error that lists them.
func Run(ctx context.Context, o Options) (res *Result, err error) {
	start := time.Now()
	if err := o.Spec.Check(); err != nil {
		return nil, err
	}
	if o.Lab == "" {
		o.Lab = DefaultLab
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if os.Geteuid() != 0 {
		return nil, ErrNotRoot
	}
	dir := o.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "cutover-bench-run-"); err != nil {
			return nil, fmt.Errorf("bench run: %w", err)
		}
		defer os.RemoveAll(dir)
	}
	path, err := Write(dir, o.Spec)
	if err != nil {
		return nil, err
	}
	progress(o.Out, "bench run: %d VMs, canary %d, batches of %d: runbook %s", o.VMs, o.Canary, o.BatchSize, path)
	if !o.KeepLab {
		defer func() {
			if derr := down(o); derr != nil {
				err = errors.Join(err, derr)
			}
			if res != nil {
				res.Took = time.Since(start)
			}
		}()
	}
	rr, entries, err := rehearseRun(ctx, o, dir, path)
	if err != nil {
		return nil, err
	}
	res = newResult(o, rr, entries)
	if o.Dir != "" {
		res.Runbook = path
	}
	if err := measureReference(ctx, o, res); err != nil {
		res.Problems = append(res.Problems, err.Error())
	}
	res.Took = time.Since(start)
	if len(res.Problems) > 0 {
		return res, fmt.Errorf("bench run: %s", strings.Join(res.Problems, "; "))
	}
	return res, nil
}

// rehearseRun rehearses the runbook at path in o's lab, rolls it back and
// leaves the lab and its daemon up. It returns the rehearsal's result and
// the run's journal; the rehearsal's report and evidence record go into
// dir, the report only when Options.Dir keeps it.
func rehearseRun(ctx context.Context, o Options, dir, path string) (*rehearse.Result, []engine.JournalEntry, error) {
	var entries []engine.JournalEntry
	rr, err := rehearse.Run(ctx, rehearse.Options{
		Runbook: path, Lab: o.Lab, Binary: o.Binary, MeasureRollback: true, Keep: true,
		ReportDir: filepath.Join(dir, "report"), EvidenceDir: filepath.Join(dir, "evidence"), Out: o.Out, Log: o.Log,
		Report: func(d string, in rehearse.ReportInput) ([]string, error) {
			entries = in.Entries
			if o.Dir == "" {
				return nil, nil
			}
			return rehearse.WriteReport(d, in)
		},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("bench run: rehearse: %w", err)
	}
	return rr, entries, nil
}

// newResult is what the rehearsal rr found, with the batches of the run's
// journal (entries).
func newResult(o Options, rr *rehearse.Result, entries []engine.JournalEntry) *Result {
	res := &Result{Lab: o.Lab, VMs: o.VMs, Canary: o.Canary, BatchSize: o.BatchSize, Outcome: rr.Outcome,
		LabUp: rr.LabUp, RunTook: rr.RunTook, Rollback: rr.Rollback, DaemonPeakRSS: rr.DaemonPeakRSS,
		Problems: slices.Clone(rr.Problems)}
	if len(entries) == 0 {
		res.Problems = append(res.Problems, "the run's journal could not be read: no batch times")
		return res
	}
	rep, err := report.Build(report.Input{Entries: entries})
	if err != nil {
		res.Problems = append(res.Problems, "read the run's journal: "+err.Error())
		return res
	}
	res.Prefixes = rep.Totals.Prefixes
	res.Batches = batches(rep, rr.Actual)
	if n := len(rep.Rollbacks); n > 0 {
		res.DaemonRollback = rep.Rollbacks[n-1].Took
	}
	return res
}

// batches are the report's batches with where each stood when the run
// ended (before the rollback that the report's phases already show).
func batches(rep *report.Report, at rehearse.Outcome) []Batch {
	out := make([]Batch, len(rep.Batches))
	for i, b := range rep.Batches {
		out[i] = Batch{Name: b.Name, VMs: b.VMs, Prefixes: b.Prefixes, Result: phaseIn(at, b.Index),
			Announce: b.ApplyTook, Converge: b.ConvergeTook, Gate: b.GateTook}
	}
	return out
}

// phaseIn is where batch i stood in outcome o.
func phaseIn(o rehearse.Outcome, i int) engine.BatchPhase {
	switch {
	case slices.Contains(o.Committed, i):
		return engine.BatchCommitted
	case slices.Contains(o.RolledBack, i):
		return engine.BatchRolledBack
	case slices.Contains(o.Held, i):
		return engine.BatchHeld
	}
	return engine.BatchPending
}

// measureReference stops the lab's daemon and measures the reference into
// res; it is skipped when the rollback did not bring the edge back to the
// source (the reference would start from routes left there).
func measureReference(ctx context.Context, o Options, res *Result) error {
	if res.Rollback == 0 {
		return errors.New("reference not measured: the rollback did not bring the edge back to the source")
	}
	l, err := lab.Open(o.Lab)
	if err != nil {
		return fmt.Errorf("reference: %w", err)
	}
	progress(o.Out, "stopping the daemon: the reference takes over the edge's session from %s", l.Namespace(lab.NodeCtl))
	if err := stopDaemon(l); err != nil {
		return fmt.Errorf("reference: %w", err)
	}
	progress(o.Out, "reference: a bare GoBGP announces and withdraws the same %d prefixes", len(l.Topology().VMs))
	ref, err := runReference(ctx, o, l)
	if err != nil {
		return err
	}
	res.Reference = &ref
	if ref.Withdraw > 0 {
		res.Ratio = float64(res.Rollback) / float64(ref.Withdraw)
	}
	progress(o.Out, "reference: announce %s, withdraw %s", seconds(ref.Announce), seconds(ref.Withdraw))
	return nil
}

// down takes the lab down, with a context of its own: it also runs when
// the bench's was cancelled.
func down(o Options) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	progress(o.Out, "lab %s: taking it down", o.Lab)
	if err := lab.Down(ctx, o.Lab, o.Log); err != nil {
		return fmt.Errorf("bench run: %w", err)
	}
	return nil
}

// progress writes one line of progress, timestamped as the rehearsal's.
func progress(w io.Writer, format string, a ...any) {
	fmt.Fprintf(w, "%s  %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, a...))
}
