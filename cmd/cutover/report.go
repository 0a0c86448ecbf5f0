package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/cutover/evidence"
	"github.com/cutover/cutover/cutover/report"
)

func newReportCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "report",
		Short: "Write the evidence report of a run from the daemon's journal",
		Long: `report builds the run's report from the daemon's journal: runbook and inventory digests,
who ran what when, the per-batch timeline (announce, converge, gate, commit or rollback,
with durations), gate reasons and rollbacks, and a timeline picture.

  -o md     Markdown on standard output (default; -o text is the same)
  -o html   one self-contained HTML page (inline CSS and SVG, opens without network)
  -o json   the report's data
  -o svg    the timeline picture
  --dir D   write report.md, report.html, timeline.svg and report.json into D
            (and print what was written, in the format of -o text or json)

--compare FILE puts the run beside a lab rehearsal: FILE is a rehearsal record,
as cutover lab rehearse leaves it in /var/lib/cutover/rehearsals and as
evidence.json in its report directory. The Markdown and HTML reports gain a
section "Against its rehearsal" (the JSON a "comparison" field): whether the
runbook and inventory are the rehearsed ones, the outcome, and batch by batch
how long the move took, gate rounds and failed rounds (with the first reason),
readiness checks, rollbacks (by whom), retries and attempts, tonight and at
the rehearsal, with what differed named in sentences. Counts differ when they
are not equal; durations when the longer is more than 1.5x the shorter and
more than 5s longer. A difference at a batch the rehearsal injected a fault
into says so. The SVG picture has no comparison.`,
		Example: `  cutover report > report.md
  cutover report -o html > report.html
  cutover report --dir reports/helse-nord
  cutover report --compare reports/helse-nord-20260313-221000/evidence.json -o html > report.html`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The record is read first: a wrong path is the operator's
			// mistake, told before the daemon is asked for anything.
			var rehearsed *evidence.Record
			if file := a.v.GetString("compare"); file != "" {
				rec, err := evidence.Load(file)
				if err != nil {
					return usageErr(fmt.Errorf("--compare: %w", err))
				}
				rehearsed = rec
			}
			es, err := a.client().Journal(cmd.Context())
			if err != nil {
				return daemonErr(err)
			}
			r, err := report.Build(report.Input{Entries: es, Run: a.v.GetString("run")})
			if err != nil {
				return err
			}
			if rehearsed != nil {
				r.Comparison = report.Compare(r, rehearsed.Report, rehearsed.RehearsalRecord)
			}
			format := a.output()
			if dir := a.v.GetString("dir"); dir != "" {
				if err := r.WriteDir(dir); err != nil {
					return err
				}
				files := []string{"report.md", "report.html", "timeline.svg", "report.json"}
				if format == "json" {
					return a.writeJSON(struct {
						Dir   string   `json:"dir"`
						Files []string `json:"files"`
					}{dir, files})
				}
				_, err := fmt.Fprintf(a.out, "wrote %s/{%s}\n", dir, strings.Join(files, ","))
				return err
			}
			if format == "text" {
				format = "md"
			}
			out, err := r.Render(format)
			var fe *report.FormatError
			if errors.As(err, &fe) {
				return usageErr(err)
			}
			if err != nil {
				return err
			}
			_, err = a.out.Write(out)
			return err
		},
	}
	addSocketFlag(c)
	addOutputFlag(c, append(slices.Clone(report.Formats), "text", "markdown")...)
	c.Flags().String("dir", "", "write every format into this directory")
	c.Flags().String("run", "", "the run id (default: the journal's last run)")
	c.Flags().String("compare", "", "put the run beside the lab rehearsal recorded in this file")
	_ = c.MarkFlagFilename("compare", "json")
	return c
}
