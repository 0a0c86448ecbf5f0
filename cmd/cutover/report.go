package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"

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

  -o md     Markdown on standard output (default; -o text is the same)
  -o html   one self-contained HTML page (inline CSS and SVG, opens without network)
  -o json   the report's data
  -o svg    the timeline picture
  --dir D   write report.md, report.html, timeline.svg and report.json into D
            (and print what was written, in the format of -o text or json)`,
		Example: `  cutover report > report.md
  cutover report -o html > report.html
  cutover report --dir reports/helse-nord`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			es, err := a.client().Journal(cmd.Context())
			if err != nil {
				return daemonErr(err)
			}
			r, err := report.Build(report.Input{Entries: es, Run: a.v.GetString("run")})
			if err != nil {
				return err
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
	return c
}
