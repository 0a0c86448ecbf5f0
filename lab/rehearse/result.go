package rehearse

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/report"
)

// WriteText writes the rehearsal's result for people: outcome expected
// and actual, faults, checks, problems, reports, timings and the verdict.
func (res *Result) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "\nrehearsal of %s in lab %s (%d VM addresses)\n", res.Runbook, res.Lab, res.VMs)
	fmt.Fprintf(&b, "  expected  %s\n  actual    %s\n", res.Expected, res.Actual)
	if res.Outcome != "" {
		fmt.Fprintf(&b, "  outcome   %s\n", outcomeText(res.Outcome, res.AtSourceVMs, res.AtSourceBatches))
	}
	for _, in := range res.Injected {
		fmt.Fprintf(&b, "  fault     %s in batch %d (%s) %s %s\n", in.Fault, in.Batch, in.At, strings.Join(in.VMs, " "), strings.Join(in.Evidence, "; "))
	}
	for _, c := range res.Checked {
		fmt.Fprintf(&b, "  checked   %s\n", c)
	}
	if rt := res.Retry; rt != nil {
		fmt.Fprintf(&b, "  retry     batches %v with the faults undone: %s in %s\n", rt.Batches, rt.Actual, rt.Took.Round(time.Millisecond))
		fmt.Fprintf(&b, "  retry     outcome %s\n", outcomeText(rt.Outcome, rt.AtSourceVMs, rt.AtSourceBatches))
		for _, e := range rt.Evidence {
			fmt.Fprintf(&b, "  retry     %s\n", e)
		}
	}
	for _, p := range res.Problems {
		fmt.Fprintf(&b, "  PROBLEM   %s\n", p)
	}
	if res.Rollback > 0 {
		fmt.Fprintf(&b, "  rollback --all: edge FIB back at the source %s after the command\n", res.Rollback.Round(time.Millisecond))
	}
	for _, r := range res.Reports {
		fmt.Fprintf(&b, "  report    %s\n", r)
	}
	verdict := "OK: the outcome is what the policy promises"
	if !res.OK {
		verdict = "FAILED"
	}
	fmt.Fprintf(&b, "  took      lab up %s, run %s, %s in all\n%s\n", res.LabUp.Round(time.Millisecond),
		res.RunTook.Round(time.Millisecond), res.Took.Round(time.Second), verdict)
	_, err := io.WriteString(w, b.String())
	return err
}

// outcomeText says how a run ended, and what it left at the source.
func outcomeText(o engine.Outcome, vms int, batches []int) string {
	if o == engine.OutcomePartial || len(batches) > 0 {
		return fmt.Sprintf("%s: %d VMs left at the source (batches %v)", o, vms, batches)
	}
	return string(o)
}

// actualText is the outcome for the report: where the batches stand, how
// the run ended and, after a retry, how it ended then.
func (res *Result) actualText() string {
	s := res.Actual.String()
	if res.Outcome != "" {
		s += " (" + outcomeText(res.Outcome, res.AtSourceVMs, res.AtSourceBatches) + ")"
	}
	if rt := res.Retry; rt != nil {
		s += fmt.Sprintf("; after retrying batches %v: %s (%s)", rt.Batches, rt.Actual, outcomeText(rt.Outcome, rt.AtSourceVMs, rt.AtSourceBatches))
	}
	return s
}

// WriteReport writes a rehearsal's report into dir (report.md,
// report.html, timeline.svg, report.json) and returns the files: the
// writer for Options.Report.
func WriteReport(dir string, in ReportInput) ([]string, error) {
	r, err := buildReport(in)
	if err != nil {
		return nil, err
	}
	if err := r.WriteDir(dir); err != nil {
		return nil, err
	}
	var files []string
	for _, f := range []string{"report.md", "report.html", report.SVGFile, "report.json"} {
		files = append(files, filepath.Join(dir, f))
	}
	return files, nil
}

// buildReport builds a rehearsal's report from the run's journal and what
// the rehearsal found: the report WriteReport writes and the one its
// evidence record holds.
func buildReport(in ReportInput) (*report.Report, error) {
	rh := &report.Rehearsal{Expected: in.Result.Expected.String(), Actual: in.Result.actualText(),
		Passed: len(in.Result.Problems) == 0, Took: in.Result.Took}
	if rh.Took == 0 {
		rh.Took = in.Took
	}
	for _, f := range in.Result.Injected {
		res := fmt.Sprintf("injected while the batch was %s", f.At)
		if len(f.VMs) > 0 {
			res += fmt.Sprintf("; %d VMs: %v", len(f.VMs), f.VMs)
		}
		for _, e := range f.Evidence {
			res += "; " + e
		}
		rh.Faults = append(rh.Faults, report.Fault{Fault: f.Fault, When: fmt.Sprintf("batch %d", f.Batch), At: f.Time, Result: res})
	}
	if rt := in.Result.Retry; rt != nil {
		res := fmt.Sprintf("batches %v retried with the faults undone: %s", rt.Batches, outcomeText(rt.Outcome, rt.AtSourceVMs, rt.AtSourceBatches))
		for _, e := range rt.Evidence {
			res += "; " + e
		}
		rh.Faults = append(rh.Faults, report.Fault{Fault: "retry", When: "after the run", Result: res})
	}
	var snaps []report.Snapshot
	for _, s := range in.Snapshots {
		snaps = append(snaps, report.Snapshot{Name: s.Name, Text: s.Text})
	}
	return report.Build(report.Input{Entries: in.Entries, RunbookPath: in.RunbookPath, RunbookDigest: in.RunbookDigest,
		InventoryDigest: in.InventoryDigest, Snapshots: snaps, Rehearsal: rh})
}
