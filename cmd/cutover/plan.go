package main

import (
	"github.com/spf13/cobra"

	"github.com/cutover/cutover/cutover/plan"
)

func newPlanCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plan RUNBOOK",
		Short: "Show the batches of a runbook and exactly what each changes",
		Long: `plan cuts the runbook's move into batches and prints, for each batch, its VMs
and prefixes and the exact changes it makes: the BGP routes announced and
withdrawn (with their attributes, per peer) and the nftables set elements
added and removed. It has no side effects and needs no root.

Text is for people (a header, a table per batch and tenant, then the
details; --summary stops after the table). JSON is for tools; two runs on
the same files give the same bytes.

A runbook with mistakes is not planned: they are listed as by validate and
plan exits 2.`,
		Example: `  cutover plan runbooks/helse-nord/runbook.yaml --summary
  cutover plan -o json runbooks/helse-nord/runbook.yaml | jq '.batches[] | {name, vms: (.vms | length)}'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPlan(a, args[0], a.v.GetString("output"), a.v.GetBool("summary"))
		},
	}
	addOutputFlag(cmd, "text", "json")
	cmd.Flags().Bool("summary", false, "text: print the header and the batch table only")
	return cmd
}

func runPlan(a *app, path, output string, summary bool) error {
	pl, warns, err := plan.Load(path)
	if err := reportProblems(a.errLines(), path, warns, err); err != nil {
		return err
	}
	if output == "json" {
		return pl.WriteJSON(a.out)
	}
	return pl.WriteText(a.out, plan.TextOptions{Summary: summary})
}
