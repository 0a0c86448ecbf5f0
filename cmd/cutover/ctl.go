package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/cutover/daemon"
	"github.com/cutover/cutover/cutover/daemon/client"
	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/evidence"
	"github.com/cutover/cutover/cutover/plan"
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

Before it starts, run says whether a green lab rehearsal of exactly these bytes
(runbook and inventory) is on record in --evidence-dir (cutover lab rehearse writes
them there). A runbook with require_rehearsal: true is refused by the daemon without
one in the daemon's own store (cutover serve --evidence-dir).

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
			note := a.rehearsalNote(path, a.v.GetString("evidence-dir"))
			cl := a.client()
			if err := cl.Run(cmd.Context(), path, a.v.GetBool("yes")); err != nil {
				return daemonErr(inputErr(err))
			}
			res := runResult{Runbook: path, Started: true, Detached: a.v.GetBool("detach"), Rehearsal: note}
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
	c.Flags().String("evidence-dir", evidence.DefaultDir, "rehearsal records to look for a green rehearsal of these bytes in")
	return c
}

// rehearsalNote tells, before a run starts, whether a green rehearsal of
// exactly the files it sends is on record in the store dir: a line in the
// log, which it returns. The daemon decides against its own store, so
// what cannot be read here is a warning, never a failure, and files that
// cannot be read or planned give no line (the daemon, or the client
// reading them again, says what is wrong).
func (a *app) rehearsalNote(path, dir string) string {
	snap, err := plan.ReadSnapshot(path)
	if err != nil {
		return ""
	}
	pl, _, err := snap.Plan()
	if err != nil {
		return ""
	}
	line, warn := rehearsalLine(pl, path, dir)
	ev := a.log.Info()
	if warn {
		ev = a.log.Warn()
	}
	ev.Str("op", "rehearsal").Str("runbook", pl.Runbook.Name).Msg(line)
	return line
}

// rehearsalLine is the note of rehearsalNote, and whether it warns: the
// store could not be read, or the runbook requires a rehearsal that is
// not on record.
func rehearsalLine(pl *plan.Plan, path, dir string) (line string, warn bool) {
	st, err := evidence.Store{Dir: dir}.Lookup(pl.Runbook.Name, pl.Runbook.Digest, pl.Inventory.Digest)
	switch {
	case err != nil:
		return fmt.Sprintf("cannot tell whether these bytes were rehearsed: %v (the daemon checks its own records)", err), true
	case st.Green != nil:
		return "rehearsed: " + st.Green.String(), false
	}
	line = fmt.Sprintf("not rehearsed: no green rehearsal of these bytes in %s (%s)", dir, st.Why())
	if !pl.Runbook.RequireRehearsal {
		return line, false
	}
	return line + "; the runbook has require_rehearsal: the daemon refuses it without one; rehearse it: cutover lab rehearse " + path, true
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
	// Rehearsal says whether a green rehearsal of exactly the files sent
	// was on record in --evidence-dir ("rehearsed: …", "not rehearsed: …").
	Rehearsal string `json:"rehearsal,omitempty"`
}

func newStatusCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "status",
		Short: "Show the run: batches, states, gate verdicts, moved/total, ETA",
		Long: `status shows the daemon's run: its phase, every batch with its state and gate
verdicts, moved/total VMs, the ETA and the last events.

--watch follows the run live until it ends, and waits for one when there is none
yet (with -o json: prints the last status then). --wait shows nothing until the
run ends, then prints its status and exits with its outcome: 0 every VM moved,
5 VMs left at the source, 6 aborted (for scripts). --batch N shows one batch in
full: every failed VM with its reason, who rolled it back and how long it took.`,
		Example: `  cutover status
  cutover status --watch
  cutover status --batch 3
  cutover status --wait -o json | jq -r .outcome
  cutover status -o json | jq -r .state.phase`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl := a.client()
			modes := 0
			for _, f := range []string{"watch", "wait", "batch"} {
				if cmd.Flags().Changed(f) {
					modes++
				}
			}
			if modes > 1 {
				return usageErr(fmt.Errorf("status: give at most one of --watch, --wait, --batch N"))
			}
			switch {
			case a.v.GetBool("watch"):
				return a.followOpts(cmd.Context(), cl, view.Options{WaitForRun: true}, func(st engine.Status) error { return a.writeJSON(st) })
			case a.v.GetBool("wait"):
				return a.waitRun(cmd.Context(), cl)
			}
			st, err := cl.Status(cmd.Context(), 0)
			if err != nil {
				return daemonErr(err)
			}
			if cmd.Flags().Changed("batch") {
				n := a.v.GetInt("batch")
				if n < 0 || n >= len(st.State.Batches) {
					return usageErr(fmt.Errorf("status --batch %d: %s", n, batchRange(st)))
				}
				if a.jsonOut() {
					return a.writeJSON(st.State.Batches[n])
				}
				return view.RenderBatch(a.out, st, n, view.Options{})
			}
			if a.jsonOut() {
				return a.writeJSON(st)
			}
			return view.Render(a.out, st, view.Options{Events: 10})
		},
	}
	addSocketFlag(c)
	addOutputFlag(c, "text", "json")
	c.Flags().BoolP("watch", "w", false, "follow the run live until it ends (waits for one when there is none)")
	c.Flags().Bool("wait", false, "wait for the run to end, print its status, exit with its outcome (0, 5, 6)")
	c.Flags().Int("batch", 0, "show batch N in full: every failed VM and why")
	_ = c.RegisterFlagCompletionFunc("batch", a.completeAnyBatch)
	return c
}

// batchRange says which batches a run has.
func batchRange(st engine.Status) string {
	if len(st.State.Batches) == 0 {
		return "the daemon has no run"
	}
	return fmt.Sprintf("the run has batches 0 to %d", len(st.State.Batches)-1)
}

func newRetryCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "retry [--batch N]...",
		Short: "Move rolled-back or held batches again, through the same checks",
		Long: `retry takes batches the run left at the source back to pending: batches a gate
rolled back, and batches the readiness check held because their VMs did not answer
at the target. The run then moves them again through the readiness check, the gates
and the go/no-go points, journaled like any batch; a finished run goes on and ends
again with its outcome (cutover status --watch follows it).

Without --batch every rolled-back and held batch is retried. Fix the VMs first:
cutover status --batch N lists every VM that failed and why. The daemon refuses a
retry (exit 4) while the run is moving batches (pause first), and after an aborted
run (start it again with cutover run). The shell completes --batch.`,
		Example: `  cutover retry
  cutover retry --batch 3 --batch 5
  cutover retry --batch 3 && cutover status --wait`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			batches, err := cmd.Flags().GetIntSlice("batch")
			if err != nil {
				return usageErr(err)
			}
			for _, b := range batches {
				if b < 0 {
					return usageErr(fmt.Errorf("retry --batch %d: batches are numbered from 0", b))
				}
			}
			if err := a.client().Retry(cmd.Context(), batches); err != nil {
				return daemonErr(err)
			}
			what := "every rolled-back and held batch"
			if len(batches) > 0 {
				what = "batch " + joinBatches(batches)
			}
			return a.result(commandResult{Command: "retry", Result: "retry: " + what + " back to pending; the run goes on (cutover status --watch)"})
		},
	}
	addSocketFlag(c)
	addOutputFlag(c, "text", "json")
	c.Flags().IntSlice("batch", nil, "retry this batch (repeat, or N,M); none: every rolled-back and held batch")
	_ = c.RegisterFlagCompletionFunc("batch", a.completeAtSource)
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
shell completes POINT with the point the run waits at.

A point the runbook marks {point: NAME, operators: 2} (four eyes) needs go from
that many different operators: after the first the run still waits, and the same
operator saying go again is refused. Anyone's no-go starts the count again.`,
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
			} else if st, err := a.client().Status(cmd.Context(), 0); err == nil {
				if rs := st.State; rs.Confirm != "" && rs.ConfirmGoAt == rs.Confirm && (point == "" || point == rs.Confirm) {
					r.Result = fmt.Sprintf("go recorded (%s); the run still waits at %q for %d different operators",
						strings.Join(rs.ConfirmGo, ", "), rs.Confirm, rs.ConfirmOperators)
				}
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

--reason TEXT says why, for the journal, the report and the next shift.
On a terminal, --all first asks (y/N) with what it would move back; --yes
answers for scripts and for the operator who knows (not on a terminal it
never asks). The shell completes --batch and --to with the batches the
daemon has moved.`,
		Example: `  cutover rollback --all
  cutover rollback --all --yes --reason "EPJ slow at skm2"
  cutover rollback --batch 3 --reason "vm-0042 crashed"
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
			t = t.Because(a.v.GetString("reason"))
			if t.All() && !a.v.GetBool("yes") && a.interactive() {
				ok, err := a.askRollbackAll(cmd.Context())
				if err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("rollback --all: not confirmed; nothing was rolled back")
				}
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
			_, err = fmt.Fprintf(a.out, "rolled back (%s) in %s: one BGP change and one nft transaction (%s from the command to the answer)\n", t, took, all)
			return err
		},
	}
	addSocketFlag(c)
	addOutputFlag(c, "text", "json")
	c.Flags().Bool("all", false, "roll back every batch and end the run")
	c.Flags().Int("batch", 0, "roll back only this batch")
	c.Flags().Int("to", 0, "roll back this batch and every later one")
	c.Flags().String("reason", "", "why, for the journal and the report")
	c.Flags().Bool("yes", false, "do not ask before --all on a terminal")
	_ = c.RegisterFlagCompletionFunc("batch", a.completeBatch)
	_ = c.RegisterFlagCompletionFunc("to", a.completeBatch)
	return c
}

// rollbackResult is rollback's JSON output.
type rollbackResult struct {
	Command    string `json:"command"`
	Target     string `json:"target"`      // --all, --batch N or --to N
	DaemonTook string `json:"daemon_took"` // the change (BGP and nft), as the engine measured and journaled it
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
