package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/cutover/daemon"
	"github.com/cutover/cutover/cutover/daemon/client"
	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/serve"
	"github.com/cutover/cutover/cutover/view"
)

func (a *app) client() *client.Client {
	s := a.v.GetString("socket")
	if s == "" {
		s = serve.DefaultSocket
	}
	return client.New(s)
}

func addSocketFlag(c *cobra.Command) {
	c.Flags().String("socket", serve.DefaultSocket, "unix socket of the cutover daemon")
}

func newRunCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "run RUNBOOK",
		Short: "Start a runbook in the daemon and follow it",
		Long: `run hands the runbook to the daemon (cutover serve), which checks the peers, the
change window and the health baseline, then moves batch after batch through the gates.

run follows the progress until the run ends (a live view on a terminal, plain lines
otherwise). At a go/no-go point the run waits for 'cutover confirm' (from a second
operator's shell, or after leaving the view with q); --yes answers every go/no-go point
with go in advance. Leaving the view (q, Ctrl-C, or --detach) does not stop the cutover.

--dry-run simulates the whole run against in-memory fakes and prints the timeline;
it touches no daemon, namespace, route or table.`,
		Example: `  cutover run --dry-run runbooks/helse-nord/runbook.yaml
  cutover run runbooks/helse-nord/runbook.yaml
  cutover run --yes --detach -o json runbooks/helse-nord/runbook.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if a.v.GetBool("dry-run") {
				return a.dryRun(cmd.Context(), args[0])
			}
			path, err := filepath.Abs(args[0])
			if err != nil {
				return err
			}
			cl := a.client()
			if err := cl.Run(cmd.Context(), path, a.v.GetBool("yes")); err != nil {
				return daemonErr(inputErr(err))
			}
			res := runResult{Runbook: path, Started: true, Detached: a.v.GetBool("detach")}
			if res.Detached {
				if a.jsonOut() {
					return a.writeJSON(res)
				}
				_, err := fmt.Fprintf(a.out, "started %s\n", path)
				return err
			}
			if !a.jsonOut() {
				fmt.Fprintf(a.out, "started %s\n", path)
			}
			return a.follow(cmd.Context(), cl, func(st engine.Status) error {
				res.Status = &st
				return a.writeJSON(res)
			})
		},
	}
	addSocketFlag(c)
	addOutputFlag(c, "text", "json")
	c.Flags().Bool("yes", false, "answer every go/no-go point with go")
	c.Flags().Bool("dry-run", false, "simulate the run against fakes and print the timeline; changes nothing")
	c.Flags().Bool("detach", false, "start the run and return at once")
	return c
}

// runResult is run's JSON output.
type runResult struct {
	Runbook  string `json:"runbook"`
	Started  bool   `json:"started"`
	Detached bool   `json:"detached,omitempty"`
	// DryRun: Timeline holds the lines of the simulated run.
	DryRun   bool     `json:"dry_run,omitempty"`
	Timeline []string `json:"timeline,omitempty"`
	// Status is the run's last status when run followed it to its end.
	Status *engine.Status `json:"status,omitempty"`
}

func newStatusCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "status",
		Short: "Show the run: batches, states, gate verdicts, moved/total, ETA",
		Long: `status shows the daemon's run: its phase, every batch with its state and gate
verdicts, moved/total VMs, the ETA and the last events. --watch follows the run
until it ends (with -o json: prints the last status then).`,
		Example: `  cutover status
  cutover status --watch
  cutover status -o json | jq -r .state.phase`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl := a.client()
			if a.v.GetBool("watch") {
				return a.follow(cmd.Context(), cl, func(st engine.Status) error { return a.writeJSON(st) })
			}
			st, err := cl.Status(cmd.Context(), 0)
			if err != nil {
				return daemonErr(err)
			}
			if a.jsonOut() {
				return a.writeJSON(st)
			}
			return view.Render(a.out, st, view.Options{Events: 10})
		},
	}
	addSocketFlag(c)
	addOutputFlag(c, "text", "json")
	c.Flags().BoolP("watch", "w", false, "follow the run live until it ends")
	return c
}

func simpleCmd(a *app, use, short string, f func(*client.Client, context.Context) error, done, example string) *cobra.Command {
	c := &cobra.Command{
		Use:     use,
		Short:   short,
		Example: example,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f(a.client(), cmd.Context()); err != nil {
				return daemonErr(err)
			}
			return a.result(commandResult{Command: use, Result: done})
		},
	}
	addSocketFlag(c)
	addOutputFlag(c, "text", "json")
	return c
}

func newConfirmCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "confirm [POINT]",
		Short: "Answer the go/no-go point the run waits at (go, or --no-go)",
		Long: `confirm answers the go/no-go point the run waits at: go, or with --no-go, no-go
(the run stays paused there). Naming the POINT makes sure the answer is for the
point meant: the daemon refuses it (exit 4) when the run waits elsewhere. The
shell completes POINT with the point the run waits at.`,
		Example: `  cutover confirm
  cutover confirm after-canary
  cutover confirm before-end --no-go`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: a.completePoint,
		RunE: func(cmd *cobra.Command, args []string) error {
			point := ""
			if len(args) == 1 {
				point = args[0]
			}
			goAhead := !a.v.GetBool("no-go")
			if err := a.client().Confirm(cmd.Context(), point, goAhead); err != nil {
				return daemonErr(err)
			}
			r := commandResult{Command: "confirm", Point: point, Go: &goAhead, Result: "go"}
			if !goAhead {
				r.Result = "no-go: the run stays paused"
			}
			return a.result(r)
		},
	}
	addSocketFlag(c)
	addOutputFlag(c, "text", "json")
	c.Flags().Bool("no-go", false, "answer no-go: the run stays paused at the point")
	return c
}

func newRollbackCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "rollback (--all | --batch N | --to N)",
		Short: "Move batches back to the source in one BGP change and one nft transaction",
		Long: `rollback moves traffic back to the source site at once, interrupting a batch under way:
  --all        every batch; the run ends
  --batch N    only batch N; the run pauses
  --to N       batch N and every later batch; the run pauses

The shell completes --batch and --to with the batches the daemon has moved.`,
		Example: `  cutover rollback --all
  cutover rollback --batch 3
  cutover rollback --to 5 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var t engine.RollbackTarget
			set := 0
			if a.v.GetBool("all") {
				t = engine.AllBatches()
				set++
			}
			if cmd.Flags().Changed("batch") {
				t = engine.OnlyBatch(a.v.GetInt("batch"))
				set++
			}
			if cmd.Flags().Changed("to") {
				t = engine.BatchesFrom(a.v.GetInt("to"))
				set++
			}
			if set != 1 {
				return usageErr(fmt.Errorf("rollback: give exactly one of --all, --batch N, --to N"))
			}
			start := time.Now()
			took, err := a.client().Rollback(cmd.Context(), t)
			if err != nil {
				return daemonErr(err)
			}
			all := time.Since(start).Round(time.Millisecond)
			if a.jsonOut() {
				return a.writeJSON(rollbackResult{Command: "rollback", Target: t.String(), DaemonTook: took, Took: all.String()})
			}
			_, err = fmt.Fprintf(a.out, "rolled back (%s): daemon took %s, %s in all\n", t, took, all)
			return err
		},
	}
	addSocketFlag(c)
	addOutputFlag(c, "text", "json")
	c.Flags().Bool("all", false, "roll back every batch and end the run")
	c.Flags().Int("batch", 0, "roll back only this batch")
	c.Flags().Int("to", 0, "roll back this batch and every later one")
	_ = c.RegisterFlagCompletionFunc("batch", a.completeBatch)
	_ = c.RegisterFlagCompletionFunc("to", a.completeBatch)
	return c
}

// rollbackResult is rollback's JSON output.
type rollbackResult struct {
	Command    string `json:"command"`
	Target     string `json:"target"`      // --all, --batch N or --to N
	DaemonTook string `json:"daemon_took"` // as the daemon measured it
	Took       string `json:"took"`        // command to answer, here
}

func newReconcileCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "reconcile (adopt | clear)",
		Short: "Decide on an earlier run's traces that the daemon's journal does not hold",
		Long: `When the daemon starts with a journal that holds no run (it was emptied, lost or
deleted) but finds an earlier run's traces (moves in the nft table it owns, snapshots
of runs in its state directory), it does not call itself idle: status shows the phase
"unreconciled", what was found and what each choice would do, and no run starts until
a person decides:

  adopt   take the moves as they are: they must be whole batches of one earlier run
          (its snapshot); the daemon journals that run as finished with those batches
          moved and announces their routes again. rollback and a way back then work
          as after any run.
  clear   take them away: remove the nft tables found (with their ip rules and routes)
          and connect to the earlier run's BGP peers with no routes, so they drop the
          routes they kept for the daemon. Traffic goes back to the source.

rollback --all does what clear does.`,
		Example: `  cutover status
  cutover reconcile adopt
  cutover reconcile clear -o json`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{daemon.DecideAdopt, daemon.DecideClear},
		RunE: func(cmd *cobra.Command, args []string) error {
			d := args[0]
			if d != daemon.DecideAdopt && d != daemon.DecideClear {
				return usageErr(fmt.Errorf("reconcile: %q: give adopt or clear", d))
			}
			if err := a.client().Reconcile(cmd.Context(), d); err != nil {
				return daemonErr(err)
			}
			r := commandResult{Command: "reconcile", Decision: d}
			switch d {
			case daemon.DecideAdopt:
				r.Result = "adopted: the daemon holds the moves found; cutover status shows them as a finished run"
			default:
				r.Result = "cleared: the earlier run's traces are taken away; the daemon is idle"
			}
			return a.result(r)
		},
	}
	addSocketFlag(c)
	addOutputFlag(c, "text", "json")
	return c
}
