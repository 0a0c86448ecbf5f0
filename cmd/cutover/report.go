package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/cutover/report"
)

func newReportCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "report",
		Short: "Write the evidence report of a run from the daemon's journal",
		Long: `report builds the run's report from the daemon's journal: runbook and inventory digests,
who ran what when, the per-batch timeline (announce, converge, gate, commit or rollback,
with durations), gate reasons and rollbacks, and a timeline picture.

  -o md     Markdown on standard output (default)
  -o html   one self-contained HTML page (inline CSS and SVG, opens without network)
  -o json   the report's data
  -o svg    the timeline picture
  --dir D   write report.md, report.html, timeline.svg and report.json into D`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			es, err := a.client().Journal(cmd.Context())
			if err != nil {
				return err
			}
			r, err := report.Build(report.Input{Entries: es, Run: a.v.GetString("run")})
			if err != nil {
				return err
			}
			if dir := a.v.GetString("dir"); dir != "" {
				if err := r.WriteDir(dir); err != nil {
					return err
				}
				fmt.Fprintf(a.out, "wrote %s/{report.md,report.html,timeline.svg,report.json}\n", dir)
				return nil
			}
			out, err := r.Render(a.v.GetString("output"))
			var fe *report.FormatError
			if errors.As(err, &fe) {
				return &exitError{code: 2, err: err}
			}
			if err != nil {
				return err
			}
			_, err = a.out.Write(out)
			return err
		},
	}
	addSocketFlag(c)
	c.Flags().StringP("output", "o", "md", "format: md, html, json or svg")
	c.Flags().String("dir", "", "write every format into this directory")
	c.Flags().String("run", "", "the run id (default: the journal's last run)")
	return c
}
