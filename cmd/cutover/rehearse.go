package main

import (
	"encoding/json"
	"fmt"
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
  vm-down[:10%|:N]   stop the responders of a share (or N) of the batch's VMs at the target
  slow-vm[:2s]       delay the responders of 10% of the batch's VMs at the target
  bgp-reset          clear the edge's BGP sessions while the batch runs
  link-down          take the target site's link down while the batch runs
  daemon-kill        kill -9 the daemon in the batch, sample the edge FIB, restart, resume

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
				Out: a.out, Log: a.log, Report: writeReport,
			})
			if err != nil {
				return inputErr(err)
			}
			printResult(a, res)
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

func printResult(a *app, res *rehearse.Result) {
	w := a.out
	fmt.Fprintf(w, "\nrehearsal of %s in lab %s (%d VM addresses)\n", res.Runbook, res.Lab, res.VMs)
	fmt.Fprintf(w, "  expected  %s\n  actual    %s\n", res.Expected, res.Actual)
	for _, in := range res.Injected {
		fmt.Fprintf(w, "  fault     %s in batch %d (%s) %s %s\n", in.Fault, in.Batch, in.At, strings.Join(in.VMs, " "), strings.Join(in.Evidence, "; "))
	}
	for _, c := range res.Checked {
		fmt.Fprintf(w, "  checked   %s\n", c)
	}
	for _, p := range res.Problems {
		fmt.Fprintf(w, "  PROBLEM   %s\n", p)
	}
	if res.Rollback > 0 {
		fmt.Fprintf(w, "  rollback --all: edge FIB back at the source %s after the command\n", res.Rollback.Round(time.Millisecond))
	}
	for _, r := range res.Reports {
		fmt.Fprintf(w, "  report    %s\n", r)
	}
	verdict := "OK: the outcome is what the policy promises"
	if !res.OK {
		verdict = "FAILED"
	}
	fmt.Fprintf(w, "  took      lab up %s, run %s, %s in all\n%s\n", res.LabUp.Round(time.Millisecond),
		res.RunTook.Round(time.Millisecond), res.Took.Round(time.Second), verdict)
}

func newFaultCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "fault KIND",
		Short: "Inject a fault into a running lab (vm-down, slow-vm, bgp-reset, link-down, daemon-kill)",
		Long: `fault injects one fault into a running lab by hand:
  vm-down   --addrs A,B [--site skm2] [--up]     stop (or, with --up, restart) VM responders
  slow-vm   --addrs A,B [--site skm2] --delay 2s delay VM responders (0 undoes it)
  bgp-reset                                      clear the edge's BGP sessions
  link-down [--site skm2] [--up]                 take a site's link at the edge down (or up)
  daemon-kill [--gap 3s]                         kill -9 the daemon a rehearsal left up (--keep), sample
                                                 the edge FIB while it is dead, start it again the same way;
                                                 the run then waits for 'cutover resume'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := lab.Open(a.v.GetString("name"))
			if err != nil {
				return err
			}
			site := a.v.GetString("site")
			var addrs []netip.Addr
			for _, s := range a.v.GetStringSlice("addrs") {
				ad, err := netip.ParseAddr(strings.TrimSpace(s))
				if err != nil {
					return &exitError{code: 2, err: fmt.Errorf("--addrs: %w", err)}
				}
				addrs = append(addrs, ad)
			}
			up := a.v.GetBool("up")
			switch args[0] {
			case rehearse.VMDown, rehearse.SlowVM:
				if len(addrs) == 0 {
					return &exitError{code: 2, err: fmt.Errorf("%s needs --addrs", args[0])}
				}
				if args[0] == rehearse.VMDown {
					err = l.SetVMDown(site, addrs, !up)
				} else {
					err = l.SetVMDelay(site, addrs, a.v.GetDuration("delay"))
				}
			case rehearse.BGPReset:
				var out string
				out, err = l.Vtysh(cmd.Context(), lab.NodeEdge, "clear bgp *")
				if err != nil {
					err = fmt.Errorf("%w: %s", err, out)
				}
			case rehearse.LinkDown:
				err = rehearse.SetSiteLink(cmd.Context(), l, site, up)
			case rehearse.DaemonKill:
				var ev []string
				ev, err = rehearse.KillDaemon(cmd.Context(), l, a.v.GetDuration("gap"))
				for _, e := range ev {
					fmt.Fprintln(a.out, e)
				}
			default:
				return &exitError{code: 2, err: fmt.Errorf("fault %q: want vm-down, slow-vm, bgp-reset, link-down or daemon-kill", args[0])}
			}
			if err != nil {
				return err
			}
			out, _ := json.Marshal(map[string]any{"fault": args[0], "site": site, "addrs": len(addrs), "up": up})
			fmt.Fprintln(a.out, string(out))
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
	return c
}
