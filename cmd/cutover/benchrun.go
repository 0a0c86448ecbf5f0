package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/lab"
	"github.com/cutover/cutover/lab/benchrun"
)

func newBenchRunCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Move N generated VMs through the daemon with gates, roll back, and time it against a bare GoBGP",
		Long: `bench run is one end-to-end benchmark. It generates an inventory of --vms VMs
(addresses from 10.64.0.10 up, a few tenants, HTTP and TCP probes) and a runbook
that moves them from skm1 to skm2 in a canary of --canary VMs and batches of
--batch-size, behind a bgp gate (the edge's BMP session) and a probe gate. It
rehearses that runbook in a lab of its shape (cutover lab rehearse): the daemon runs
it in the lab's ctl namespace, then rolls every batch back (rollback --all) while the
edge router's kernel FIB is watched. It then stops the daemon and, in the same lab,
times a bare embedded GoBGP announcing and withdrawing the same prefixes against the
same edge: the reference the rollback is measured against (the project aims at a
rollback within 1.1 times the reference's withdraw).

It prints per batch the daemon's announce (its BGP and nft change), the convergence
(until the edge held the batch's routes) and the probe gate; then the run's time, the
rollback until the edge's FIB was back at skm1, the reference's withdraw, their
ratio and the daemon's peak RSS. The lab is taken down at the end, also after an
error or an interrupt, unless --keep-lab (its daemon then stopped). Needs root and
FRR; 50,000 VMs take a few minutes.

Progress goes to standard error, the table (or -o json, times in nanoseconds) to
standard output.`,
		Example: `  sudo cutover bench run
  sudo cutover bench run --vms 2000 --canary 10 --batch-size 500
  sudo cutover bench run --vms 50000 --dir bench-50k -o json > bench-50k.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := benchRunOptions(a)
			if err != nil {
				return usageErr(err)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if benchrun.InReferenceChild() {
				return benchrun.ServeReference(ctx, a.out)
			}
			o.Out, o.Log = cmd.ErrOrStderr(), a.log
			// The reference runs in the lab's ctl namespace: this command
			// again, which ServeReference then answers (see above).
			o.ReferenceArgs = os.Args[1:]
			res, err := benchrun.Run(ctx, o)
			if res == nil {
				return err
			}
			var werr error
			if a.jsonOut() {
				werr = a.writeJSON(res)
			} else {
				werr = res.WriteText(a.out)
			}
			return errors.Join(err, werr)
		},
	}
	f := cmd.Flags()
	f.Int("vms", benchrun.DefaultVMs, fmt.Sprintf("VMs to generate and move (1 to %d), one IPv4 address each", benchrun.MaxVMs))
	f.Int("canary", benchrun.DefaultCanary, "VMs in the canary batch (0: none)")
	f.Int("batch-size", benchrun.DefaultBatchSize, "VMs per batch after the canary")
	f.String("lab", benchrun.DefaultLab, "name of the lab to bring up (and down)")
	f.Bool("keep-lab", false, "leave the lab up at the end (its daemon stopped)")
	f.String("dir", "", "keep the generated runbook and inventory, the rehearsal's report and evidence here (default: a temporary directory)")
	addOutputFlag(cmd, "text", "json")
	return cmd
}

// benchRunOptions reads and checks bench run's flags.
func benchRunOptions(a *app) (benchrun.Options, error) {
	o := benchrun.Options{
		Spec: benchrun.Spec{VMs: a.v.GetInt("vms"), Canary: a.v.GetInt("canary"), BatchSize: a.v.GetInt("batch-size")},
		Lab:  a.v.GetString("lab"), Dir: a.v.GetString("dir"), KeepLab: a.v.GetBool("keep-lab"),
	}
	if err := o.Spec.Check(); err != nil {
		return o, err
	}
	if o.Lab == "" {
		return o, errors.New(`--lab "": want a lab name`)
	}
	// The lab's own check of its name, on a topology that is built and
	// thrown away: nothing is touched.
	if _, err := lab.NewTopology(lab.Config{Name: o.Lab, VMs: []netip.Prefix{}}); err != nil {
		return o, fmt.Errorf("--lab: %w", err)
	}
	return o, nil
}
