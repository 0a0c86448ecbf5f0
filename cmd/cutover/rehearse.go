package main

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/evidence"
	"github.com/cutover/cutover/lab"
	"github.com/cutover/cutover/lab/rehearse"
)

func newRehearseCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "rehearse RUNBOOK [RUNBOOK...]",
		Short: "Rehearse a runbook (or a chain of them), unchanged, in the lab with faults, and write the report",
		Long: `rehearse builds a lab in the runbook's own shape — a site per runbook site with its
next-hops, an edge router (FRR) per bgp.peers entry, every inventory address at every
site, responders on every port the inventory probes, a real Prometheus for every
prometheus gate — starts the daemon in the lab's controller namespace (nft steering on
the first edge, probes from hosp), runs the runbook with every go/no-go point answered
and its change window ignored, injects the faults, checks that the outcome is what the
runbook's failure policy promises, writes the report and tears the lab down (unless
--keep).

Several runbooks make a chained drill (drain out, then back; fail over, then back):
they run one after the other in one lab built for all of them, against one daemon, each
starting where the one before left the routes; each step's outcome is checked, and the
report directory gets one report per step and an index.md. The chain stops at the first
step that does not end as promised.

The edges' covering routes (the network's own routes) lead to the runbook's fallback
site: move.from unless bgp.announce_source is set, else the runbook's fallback key or
--fallback.

Faults (--inject, repeatable) are [STEP/]KIND[:ARG][@WHEN]; WHEN is a batch index, a
batch name or "middle" (the default); STEP (1, 2...) names the runbook of a chain the
fault is for, without it the fault is injected into every runbook:
` + rehearse.InjectHelp() + `

Progress goes to standard output before the result; with -o json it goes to the log
(standard error) and standard output holds only the result (an array for a chain).

--retry: when the run leaves VMs at the source (a batch rolled back or held), the
rehearsal starts the faulted VMs again, retries those batches (cutover retry) and
requires every VM moved.

Every rehearsal (every step of a chain) leaves a record in --evidence-dir: the
SHA-256 of the runbook's and the inventory's bytes, the outcome, the faults, the
edges and the run's report; green when the outcome is what the runbook's policies
promise. A copy goes into the report directory as evidence.json. The daemon runs a
runbook with require_rehearsal: true only on a green record of exactly its bytes.

Exit status: 1 when an outcome is not what the runbook's policies promise; else the
run's outcome (after --retry, the retry's; for a chain the worst step's): 0 every VM
moved, 5 VMs left at the source (as a vm-down or target-down rehearsal promises), 6
aborted (as rollback-all promises).`,
		Example: `  cutover lab rehearse runbooks/helse-nord/runbook.yaml
  cutover lab rehearse runbooks/helse-nord/runbook.yaml --inject target-down@2 --retry
  cutover lab rehearse runbooks/helse-nord/runbook.yaml --inject vm-down@middle --inject daemon-kill@3
  cutover lab rehearse runbooks/drain-upgrade/out.yaml runbooks/drain-upgrade/back.yaml --inject 2/daemon-kill@2
  cutover lab rehearse runbooks/dr-drill/failover.yaml runbooks/dr-drill/failback.yaml -o json > drill.json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			steps := make([]rehearse.Step, len(args))
			for i, rb := range args {
				steps[i] = rehearse.Step{Runbook: rb, Retry: a.v.GetBool("retry")}
			}
			for _, s := range a.v.GetStringSlice("inject") {
				step, spec := 0, s
				if n, rest, ok := strings.Cut(s, "/"); ok {
					k, err := strconv.Atoi(n)
					if err != nil || k < 1 || k > len(args) {
						return usageErr(fmt.Errorf("--inject %q: step %q: want 1 to %d (the position of a runbook)", s, n, len(args)))
					}
					step, spec = k, rest
				}
				f, err := rehearse.ParseFault(spec)
				if err != nil {
					return usageErr(err)
				}
				for i := range steps {
					if step == 0 || step == i+1 {
						steps[i].Faults = append(steps[i].Faults, f)
					}
				}
			}
			flavors, err := a.edgeFlavors()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			var progress io.Writer = a.out
			if a.jsonOut() {
				ll := &logLines{log: a.log.With().Str("component", "rehearse").Logger()}
				defer ll.flush()
				progress = ll
			}
			reportDir := a.v.GetString("report-dir")
			if reportDir == "" && len(steps) > 1 {
				reportDir = "reports/chain-" + time.Now().Format("20060102-150405")
			}
			results, err := rehearse.RunChain(ctx, rehearse.Options{
				Lab: a.v.GetString("name"), VMs: a.v.GetInt("vms"), Fallback: a.v.GetString("fallback"), EdgeFlavors: flavors,
				Keep: a.v.GetBool("keep"), ReportDir: reportDir, EvidenceDir: a.v.GetString("evidence-dir"),
				MeasureRollback: a.v.GetBool("measure-rollback"), ReachAll: a.v.GetBool("reach-all"),
				Out: progress, Log: a.log, Report: rehearse.WriteReport,
			}, steps)
			if err != nil && len(results) == 0 {
				return inputErr(err)
			}
			if a.jsonOut() {
				if len(steps) == 1 {
					err = errors.Join(err, a.writeJSON(results[0]))
				} else {
					err = errors.Join(err, a.writeJSON(results))
				}
			} else {
				for i, res := range results {
					if len(steps) > 1 {
						fmt.Fprintf(a.out, "\nstep %d of %d: %s\n", i+1, len(steps), steps[i].Runbook)
					}
					err = errors.Join(err, res.WriteText(a.out))
					if res.Evidence != "" {
						fmt.Fprintf(a.out, "evidence: %s\n", res.Evidence)
					}
				}
				if len(steps) > 1 && reportDir != "" {
					fmt.Fprintf(a.out, "\nchain report: %s/index.md\n", reportDir)
				}
			}
			if err != nil {
				return err
			}
			if !rehearse.ChainOK(steps, results) {
				return &exitError{code: exitFailed, err: fmt.Errorf("rehearsal: an outcome is not what the runbook's policy promises")}
			}
			return rehearsalExit(steps, results)
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
	f.Bool("retry", false, "when the run leaves VMs at the source, start them again, retry and require every VM moved")
	f.String("fallback", "", "site the edges' covering routes lead to (default: the runbook's fallback, else move.from)")
	f.String("evidence-dir", evidence.DefaultDir, "where each rehearsal leaves its record (what require_rehearsal and cutover run look for)")
	addOutputFlag(c, "text", "json")
	return c
}

func newFaultCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "fault KIND",
		Short: "Inject a fault into a running lab (" + strings.Join(rehearse.KindNames(), ", ") + ")",
		Long: `fault injects one fault into a running lab by hand:
` + rehearse.ByHandHelp() + `

It prints what it injected in a line (and what it saw, such as the edge's FIB while
the daemon was dead, indented below); -o json prints the same as one JSON object.`,
		Example: `  cutover lab fault vm-down --addrs 10.64.0.10,10.64.0.11
  cutover lab fault vm-down --addrs 10.64.0.10,10.64.0.11 --up
  cutover lab fault link-down --site skm2
  cutover lab fault daemon-kill --name rehearse -o json`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: rehearse.KindNames(),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := rehearse.LookupKind(args[0])
			if err != nil {
				return usageErr(fmt.Errorf("fault %q: %w", args[0], err))
			}
			in := rehearse.Injection{Site: a.v.GetString("site"), Undo: a.v.GetBool("up"),
				Delay: a.v.GetDuration("delay"), Gap: a.v.GetDuration("gap")}
			for _, s := range a.v.GetStringSlice("addrs") {
				ad, err := netip.ParseAddr(strings.TrimSpace(s))
				if err != nil {
					return usageErr(fmt.Errorf("--addrs: %w", err))
				}
				in.VMs = append(in.VMs, ad)
			}
			if k.NeedsVMs && len(in.VMs) == 0 {
				return usageErr(fmt.Errorf("%s needs --addrs", k.Name))
			}
			if in.Lab, err = lab.Open(a.v.GetString("name")); err != nil {
				return err
			}
			ev, err := k.Inject(cmd.Context(), in)
			res := faultResult{Fault: k.Name, Lab: in.Lab.Name(), Site: in.Site, Addrs: len(in.VMs), Up: in.Undo, Evidence: ev}
			if err == nil {
				res.Injected = k.Describe(in)
			} else {
				res.Error = err.Error()
			}
			if werr := a.writeFault(res); werr != nil {
				return werr
			}
			return err
		},
	}
	f := c.Flags()
	f.String("name", lab.DefaultName, "lab name")
	f.String("site", lab.NodeSKM2, "site of the fault")
	f.StringSlice("addrs", nil, "VM addresses (comma-separated)")
	f.Bool("up", false, "undo: start responders again / bring the link up")
	f.Duration("delay", 2*time.Second, "slow-vm: response delay")
	f.Duration("gap", 3*time.Second, "daemon-kill: how long the daemon stays dead while the edge FIB is sampled")
	addOutputFlag(c, "text", "json")
	_ = c.RegisterFlagCompletionFunc("site", cobra.FixedCompletions(lab.Sites, cobra.ShellCompDirectiveNoFileComp))
	return c
}

// faultResult is what lab fault did: its JSON output.
type faultResult struct {
	Fault string `json:"fault"`
	Lab   string `json:"lab"`
	Site  string `json:"site"`
	Addrs int    `json:"addrs"`
	Up    bool   `json:"up"`
	// Injected says in a line what was injected; empty when it failed.
	Injected string `json:"injected,omitempty"`
	// Evidence is what the fault saw (daemon-kill: the edge's FIB while
	// the daemon was dead), also when it failed.
	Evidence []string `json:"evidence,omitempty"`
	Error    string   `json:"error,omitempty"`
}

// writeFault prints r: with -o json as JSON; in text the line of what was
// injected, then the evidence indented.
func (a *app) writeFault(r faultResult) error {
	if a.jsonOut() {
		return a.writeJSON(r)
	}
	if r.Injected != "" {
		fmt.Fprintf(a.out, "fault %s in lab %s: %s\n", r.Fault, r.Lab, r.Injected)
	}
	for _, l := range r.Evidence {
		fmt.Fprintf(a.out, "  %s\n", l)
	}
	return nil
}

// joinBatches is "1, 3".
func joinBatches(list []int) string {
	s := make([]string, len(list))
	for i, b := range list {
		s[i] = strconv.Itoa(b)
	}
	return strings.Join(s, ", ")
}

// rehearsalExit is the exit of rehearsals that all ran as promised: the
// worst outcome of the steps (aborted, then partial), with the batches a
// partial step left at the source.
func rehearsalExit(steps []rehearse.Step, results []*rehearse.Result) error {
	worst, at := engine.OutcomeAllMoved, ""
	for i, res := range results {
		o := res.FinalOutcome()
		name := ""
		if len(steps) > 1 {
			name = steps[i].Runbook + ": "
		}
		switch {
		case o == engine.OutcomeAborted:
			return outcomeExit(o, fmt.Errorf("rehearsal as promised: %sthe run was aborted", name))
		case o == engine.OutcomePartial && worst != engine.OutcomePartial:
			worst, at = o, fmt.Sprintf("rehearsal as promised: %sthe run left VMs at the source (batch %s)", name, joinBatches(res.FinalAtSource()))
		}
	}
	return outcomeExit(worst, errors.New(at))
}
