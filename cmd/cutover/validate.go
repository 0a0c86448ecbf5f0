package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/cutover/plan"
	"github.com/cutover/cutover/cutover/runbook"
)

func newValidateCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "validate RUNBOOK",
		Short: "Check a runbook and its inventory, listing every mistake at once",
		Long: `validate reads the runbook and its inventory, checks both and plans the move,
without touching anything. It lists every mistake found, each with file, line,
field and the bad value, and exits 2 when there is one. Warnings (such as
ignored extra inventory columns) go to stderr and do not fail.`,
		Example: `  cutover validate runbooks/helse-nord/runbook.yaml
  cutover validate -o json runbooks/helse-nord/runbook.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runValidate(a, args[0], a.v.GetString("output"))
		},
	}
	addOutputFlag(cmd, "text", "json")
	return cmd
}

// validateResult is validate's JSON output.
type validateResult struct {
	OK       bool                 `json:"ok"`
	Runbook  string               `json:"runbook"`
	VMs      int                  `json:"vms"`
	Prefixes int                  `json:"prefixes"`
	Batches  int                  `json:"batches"`
	Errors   []runbook.FieldError `json:"errors"`
	Warnings []runbook.Warning    `json:"warnings"`
}

func runValidate(a *app, path, output string) error {
	pl, warns, err := plan.Load(path)
	var verrs runbook.ValidationErrors
	if err != nil && !errors.As(err, &verrs) {
		return err
	}
	if output == "json" {
		res := validateResult{OK: err == nil, Runbook: path, Errors: verrs, Warnings: warns}
		if res.Errors == nil {
			res.Errors = []runbook.FieldError{}
		}
		if res.Warnings == nil {
			res.Warnings = []runbook.Warning{}
		}
		if pl != nil {
			res.VMs, res.Prefixes, _, _ = pl.Totals()
			res.Batches = len(pl.Batches)
		}
		if werr := a.writeJSON(res); werr != nil {
			return werr
		}
		if err != nil {
			return usageErr(fmt.Errorf("%s: %s", path, countErrors(len(verrs))))
		}
		return nil
	}
	if err := reportProblems(a.errLines(), path, warns, err); err != nil {
		return err
	}
	vms, prefixes, _, _ := pl.Totals()
	fmt.Fprintf(a.out, "ok: %d VMs, %d prefixes, %d batches\n", vms, prefixes, len(pl.Batches))
	return nil
}

// reportProblems prints warnings and, for validation errors, every error
// to w, and returns the error to exit with (code 2 for validation errors).
func reportProblems(w io.Writer, path string, warns []runbook.Warning, err error) error {
	for _, wa := range warns {
		fmt.Fprintf(w, "warning: %s\n", wa)
	}
	if err == nil {
		return nil
	}
	var verrs runbook.ValidationErrors
	if !errors.As(err, &verrs) {
		return err
	}
	for _, e := range verrs {
		fmt.Fprintln(w, e)
	}
	return usageErr(fmt.Errorf("%s: %s", path, countErrors(len(verrs))))
}

func countErrors(n int) string {
	if n == 1 {
		return "1 error"
	}
	return fmt.Sprintf("%d errors", n)
}
