package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/cutover/evidence"
	"github.com/cutover/cutover/cutover/plan"
	"github.com/cutover/cutover/cutover/plan/schedule"
)

// exampleStart is the form --start takes, for its help and errors.
const exampleStart = "2026-12-03T23:00:00+01:00"

// tenantFlags are the flags that only --by-tenant takes.
var tenantFlags = []string{"tenant", "start", "ical"}

func newPlanCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plan RUNBOOK",
		Short: "Show the batches of a runbook and exactly what each changes",
		Long: `plan cuts the runbook's move into batches and prints, for each batch, its VMs
and prefixes and the exact changes it makes: the BGP routes announced and
withdrawn (with their attributes, per peer) and the nftables set elements
added and removed. It needs no root and changes nothing; the only files it
writes are the calendars --ical asks for.

Text is for people (a header, a table per batch and tenant, then the
details; --summary stops after the table). JSON is for tools; two runs on
the same files give the same bytes.

--by-tenant prints each tenant's schedule instead: the batches that hold
its VMs and when each is expected to run, from the run's start. The times
come from green lab rehearsals of exactly these runbook and inventory bytes
in --evidence-dir (a window spans the rehearsals' earliest start of the
batch to their latest commit); without one they are estimated from the
runbook (per batch its gates' shortest pass to readiness + bgp timeout +
longest within, plus the hold between batches), and the output says
which. The run waits for a person at go/no-go points; the times assume
prompt answers. Clock times need a start: --start, or the next opening of
the runbook's change window.

  -o text   per tenant a line per batch (default)
  -o csv    one row per tenant and batch, with a header row
  -o json   the schedules for tools; offsets in seconds
  --ical D  write one iCalendar file per tenant into D (<tenant>.ics, an
            event per batch) and print what was written

A runbook with mistakes is not planned: they are listed as by validate and
plan exits 2.`,
		Example: `  cutover plan runbooks/helse-nord/runbook.yaml --summary
  cutover plan -o json runbooks/helse-nord/runbook.yaml | jq '.batches[] | {name, vms: (.vms | length)}'
  cutover plan runbooks/helse-nord/runbook.yaml --by-tenant
  cutover plan runbooks/helse-nord/runbook.yaml --by-tenant --tenant unn --tenant hsyk -o csv > unn-hsyk.csv
  cutover plan runbooks/helse-nord/runbook.yaml --by-tenant --start ` + exampleStart + ` --ical calendars`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if a.v.GetBool("by-tenant") {
				if a.v.GetBool("summary") {
					return usageErr(errors.New("--summary: not with --by-tenant (the schedules have no details to leave out)"))
				}
				return runSchedule(a, args[0])
			}
			for _, f := range tenantFlags {
				if cmd.Flags().Changed(f) {
					return usageErr(fmt.Errorf("--%s: only with --by-tenant", f))
				}
			}
			if o := a.output(); o == "csv" {
				return usageErr(errors.New(`-o csv: only with --by-tenant (a plan is text or json)`))
			}
			return runPlan(a, args[0], a.output(), a.v.GetBool("summary"))
		},
	}
	addOutputFlag(cmd, "text", "json", "csv")
	f := cmd.Flags()
	f.Bool("summary", false, "text: print the header and the batch table only")
	f.Bool("by-tenant", false, "print each tenant's schedule: its batches and when each is expected to run")
	f.StringSlice("tenant", nil, "--by-tenant: only this tenant (repeatable)")
	f.String("start", "", "--by-tenant: the run's start for clock times, RFC 3339 such as "+exampleStart+" (default: the change window's next opening)")
	f.String("ical", "", "--by-tenant: write one iCalendar file per tenant into this directory")
	f.String("evidence-dir", evidence.DefaultDir, "--by-tenant: rehearsal records to measure the times in (none there: estimated from the runbook)")
	_ = cmd.RegisterFlagCompletionFunc("ical", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return nil, cobra.ShellCompDirectiveFilterDirs
	})
	_ = cmd.RegisterFlagCompletionFunc("evidence-dir", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return nil, cobra.ShellCompDirectiveFilterDirs
	})
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

// runSchedule is plan --by-tenant.
func runSchedule(a *app, path string) error {
	var start time.Time
	if s := a.v.GetString("start"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return usageErr(fmt.Errorf("--start %q: want a time in RFC 3339, such as %s", s, exampleStart))
		}
		start = t
	}
	pl, warns, err := plan.Load(path)
	if err := reportProblems(a.errLines(), path, warns, err); err != nil {
		return err
	}
	ev := schedule.ReadEvidence(a.v.GetString("evidence-dir"), pl)
	s, err := schedule.New(pl, schedule.Options{Evidence: ev, Start: start, Tenants: a.v.GetStringSlice("tenant")})
	if ute := (*schedule.UnknownTenantError)(nil); errors.As(err, &ute) {
		msg := fmt.Sprintf("--tenant %q: not a tenant of the inventory", ute.Tenant)
		if near := nearestKey(ute.Tenant, ute.Known); near != "" {
			msg += fmt.Sprintf(": did you mean %q?", near)
		} else {
			msg += " (its tenants: " + strings.Join(ute.Known, ", ") + ")"
		}
		return usageErr(errors.New(msg))
	}
	if err != nil {
		return err
	}
	if dir := a.v.GetString("ical"); dir != "" {
		return writeCalendars(a, s, dir)
	}
	switch a.output() {
	case "json":
		return s.WriteJSON(a.out)
	case "csv":
		return s.WriteCSV(a.out)
	}
	return s.WriteText(a.out)
}

// writeCalendars is --ical: the files, then what was written.
func writeCalendars(a *app, s *schedule.Schedule, dir string) error {
	if s.Start.IsZero() {
		return usageErr(fmt.Errorf("--ical: a calendar needs clock times, and the runbook has no change window to start from: give the run's start with --start, such as --start %s", exampleStart))
	}
	if _, err := s.FileNames(); err != nil {
		return usageErr(fmt.Errorf("--ical: %w", err))
	}
	files, err := s.WriteICalDir(dir)
	if err != nil {
		return err
	}
	if a.jsonOut() {
		return a.writeJSON(struct {
			Dir   string   `json:"dir"`
			Files []string `json:"files"`
			Times string   `json:"times"`
		}{dir, files, s.Times.String()})
	}
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = filepath.Base(f)
	}
	noun := "calendars"
	if len(files) == 1 {
		noun = "calendar"
	}
	_, err = fmt.Fprintf(a.out, "wrote %d %s to %s: %s\ntimes %s\n", len(files), noun, dir, strings.Join(names, ", "), s.Times)
	return err
}
