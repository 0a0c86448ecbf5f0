package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/lab"
	"github.com/cutover/cutover/lab/rehearse"
)

func newRehearseCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "rehearse RUNBOOK",
		Short: "Rehearse a runbook, unchanged, in the lab with faults, and write the report",
		Long: `rehearse brings the lab up sized and addressed from the runbook's inventory, starts the
daemon in the lab's controller namespace (nft steering on the edge, probes from hosp),
runs the runbook with every go/no-go point answered, injects the faults, checks that
the outcome is what the runbook's failure policy promises, writes the report and tears
the lab down (unless --keep).

Faults (--inject, repeatable) are KIND[:ARG][@WHEN]; WHEN is a batch index, a batch
name or "middle" (the default):
` + rehearse.InjectHelp() + `

Exit status 0 only when the outcome is what the policy promises.`,
		Example: `  cutover lab rehearse runbooks/helse-nord/runbook.yaml
  cutover lab rehearse runbooks/helse-nord/runbook.yaml --inject vm-down@middle --inject daemon-kill@3`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var faults []rehearse.Fault
			for _, s := range a.v.GetStringSlice("inject") {
				f, err := rehearse.ParseFault(s)
				if err != nil {
					return &exitError{code: 2, err: err}
				}
				faults = append(faults, f)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			res, err := rehearse.Run(ctx, rehearse.Options{
				Runbook: args[0], Lab: a.v.GetString("name"), VMs: a.v.GetInt("vms"), Faults: faults,
				Keep: a.v.GetBool("keep"), ReportDir: a.v.GetString("report-dir"),
				MeasureRollback: a.v.GetBool("measure-rollback"), ReachAll: a.v.GetBool("reach-all"),
				Out: a.out, Log: a.log, Report: rehearse.WriteReport,
			})
			if err != nil {
				return inputErr(err)
			}
			if err := res.WriteText(a.out); err != nil {
				return err
			}
			if !res.OK {
				return &exitError{code: 1, err: fmt.Errorf("rehearsal: the outcome is not what the runbook's policy promises")}
			}
			return nil
		},
	}
	f := c.Flags()
	f.String("name", "rehearse", "lab name (namespaces cutover-NAME-*)")
	f.Int("vms", 0, "VM addresses in the lab (0: every address of the inventory)")
	f.StringSlice("inject", nil, "fault to inject, KIND[:ARG][@WHEN] (repeatable)")
	f.Bool("keep", false, "leave the lab and the daemon up afterwards")
	f.String("report-dir", "", "where to write the report (default reports/<runbook>-<time>)")
	f.Bool("measure-rollback", false, "after the run, roll everything back and measure until the edge FIB is back at the source")
	f.Bool("reach-all", false, "fetch every VM from hosp at the end (default: 50 per site)")
	return c
}

func newFaultCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "fault KIND",
		Short: "Inject a fault into a running lab (" + strings.Join(rehearse.KindNames(), ", ") + ")",
		Long: `fault injects one fault into a running lab by hand:
` + rehearse.ByHandHelp(),
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := rehearse.LookupKind(args[0])
			if err != nil {
				return &exitError{code: 2, err: fmt.Errorf("fault %q: %w", args[0], err)}
			}
			output := a.v.GetString("output")
			if output != "text" && output != "json" {
				return &exitError{code: 2, err: fmt.Errorf("-o %q: want text or json", output)}
			}
			in := rehearse.Injection{Site: a.v.GetString("site"), Undo: a.v.GetBool("up"),
				Delay: a.v.GetDuration("delay"), Gap: a.v.GetDuration("gap")}
			for _, s := range a.v.GetStringSlice("addrs") {
				ad, err := netip.ParseAddr(strings.TrimSpace(s))
				if err != nil {
					return &exitError{code: 2, err: fmt.Errorf("--addrs: %w", err)}
				}
				in.VMs = append(in.VMs, ad)
			}
			if k.NeedsVMs && len(in.VMs) == 0 {
				return &exitError{code: 2, err: fmt.Errorf("%s needs --addrs", k.Name)}
			}
			if in.Lab, err = lab.Open(a.v.GetString("name")); err != nil {
				return err
			}
			ev, err := k.Inject(cmd.Context(), in)
			if output == "json" {
				if err != nil {
					printLines(a.err, ev)
					return err
				}
				res := map[string]any{"fault": k.Name, "site": in.Site, "addrs": len(in.VMs), "up": in.Undo}
				if len(ev) > 0 {
					res["evidence"] = ev
				}
				out, _ := json.Marshal(res)
				fmt.Fprintln(a.out, string(out))
				return nil
			}
			printLines(a.out, ev)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.out, "fault %s: %s\n", k.Name, k.Describe(in))
			return nil
		},
	}
	f := c.Flags()
	f.String("name", lab.DefaultName, "lab name")
	f.String("site", lab.NodeSKM2, "site of the fault")
	f.StringSlice("addrs", nil, "VM addresses (comma-separated)")
	f.Bool("up", false, "undo: start responders again / bring the link up")
	f.Duration("delay", 2*time.Second, "slow-vm: response delay")
	f.Duration("gap", 3*time.Second, "daemon-kill: how long the daemon stays dead while the edge FIB is sampled")
	f.StringP("output", "o", "text", "output format: text (a line for people) or json (for scripts)")
	return c
}

func printLines(w io.Writer, lines []string) {
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}
