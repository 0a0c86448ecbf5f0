// GoBGP's listeners are opened by Go as MPTCP sockets by default, which
// refuse TCP MD5 keys (and TTL settings): turn MPTCP off for BGP.
//go:debug multipathtcp=0

package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/bgp"
	"github.com/cutover/cutover/internal/words"
	"github.com/cutover/cutover/lab"
	"github.com/cutover/cutover/lab/bgplab"
)

func newBGPCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bgp",
		Short: "Drive the embedded BGP speaker by hand (lab tools)",
		Long: `The cutover daemon announces routes with an embedded GoBGP speaker. These
commands run that speaker on their own against the lab (cutover lab up), to see
the edge router's forwarding table follow an announcement.`,
		Example: `  cutover bgp announce --lab lab --to skm2`,
	}
	cmd.AddCommand(newBGPAnnounceCmd(a))
	return cmd
}

func newBGPAnnounceCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "announce --lab NAME (--to SITE | --withdraw)",
		Short: "Announce the lab's VMs via a site's gateway, or withdraw them",
		Long: `announce runs the controller's BGP speaker in the lab's ctl namespace, announces
every VM address (/32, /128) with the gateway of --to as next-hop, and reports when
the edge router's kernel FIB held them all and when the edge's mirror of its best
paths confirmed them.

Without --hold it then stops without withdrawing: the edge keeps the routes for
the graceful-restart time (--restart-time), then drops them. --hold keeps the
session until interrupted, then withdraws. --withdraw removes routes a previous
announce left behind. Needs root and a running lab.`,
		Example: `  cutover lab up
  cutover bgp announce --lab lab --to skm2 --hold
  cutover bgp announce --lab lab --to skm2 --count 100
  cutover bgp announce --lab lab --withdraw`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			name, to, withdraw := a.v.GetString("lab"), a.v.GetString("to"), a.v.GetBool("withdraw")
			if (to == "") == !withdraw {
				return usageErr(fmt.Errorf("give exactly one of --to SITE and --withdraw"))
			}
			if withdraw && a.v.GetBool("hold") {
				return usageErr(fmt.Errorf("--hold goes with --to, not --withdraw"))
			}
			if to != "" && to != lab.NodeSKM1 && to != lab.NodeSKM2 {
				return usageErr(fmt.Errorf("--to %q: want %s", to, strings.Join(lab.Sites, " or ")))
			}
			l, err := lab.Open(name)
			if err != nil {
				return err
			}
			ns := l.Namespace(lab.NodeCtl)
			if !bgplab.InNamespace(ns) {
				return reexec(cmd, ns)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return bgplab.Announce(ctx, l, bgplab.AnnounceOptions{
				Site: to, Count: a.v.GetInt("count"), Withdraw: withdraw, Hold: a.v.GetBool("hold"),
				Timeout: a.v.GetDuration("timeout"), RestartTime: a.v.GetDuration("restart-time"),
			}, a.out, a.log)
		},
	}
	f := cmd.Flags()
	f.String("lab", lab.DefaultName, "lab name")
	f.String("to", "", "site whose gateway becomes the next-hop: skm1 or skm2")
	_ = cmd.RegisterFlagCompletionFunc("to", cobra.FixedCompletions(lab.Sites, cobra.ShellCompDirectiveNoFileComp))
	f.Bool("withdraw", false, "withdraw the VMs' routes instead")
	f.Bool("hold", false, "keep the session until interrupted, then withdraw")
	f.Int("count", 0, "announce only the first N VMs (0: all)")
	f.Duration("timeout", bgplab.DefaultTimeout, "how long to wait for the edge")
	f.Duration("restart-time", bgplab.DefaultRestartTime, "graceful restart time announced to the edge (1s-4095s)")
	return cmd
}

// reexec runs this command again inside namespace ns, where GoBGP can open
// its sockets (a process enters a namespace whole, not thread by thread).
func reexec(cmd *cobra.Command, ns string) error {
	c, err := bgplab.Command(ns, os.Args[1:]...)
	if err != nil {
		return err
	}
	if err := bgplab.Run(c, cmd.OutOrStdout(), cmd.ErrOrStderr()); err != nil {
		return fmt.Errorf("in namespace %s: %w", ns, err)
	}
	return nil
}

func newBenchCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "bench",
		Short:   "Measure the tool against the lab",
		Example: `  cutover bench bgp --sizes 2000 --runs 1`,
	}
	cmd.AddCommand(newBenchBGPCmd(a))
	cmd.AddCommand(newBenchRunCmd(a))
	return cmd
}

func newBenchBGPCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bgp",
		Short: "Time announce, next-hop switch and withdraw of N prefixes until the edge's FIB holds them",
		Long: `bench bgp brings up its own lab (few VMs), runs the speaker in its ctl namespace
and, for each size, measures from the Set call until the edge router's kernel FIB
holds every prefix: announcing N /32s via skm2, switching them to skm1's gateway,
and withdrawing them (median of --runs), plus when the bgp gate would have
seen each change confirmed: by the edge's BMP session with a station the bench
runs in ctl (--observe bmp, the default) or by its mirror (--observe mirror). --reference also times a bare embedded GoBGP, run by run in turn
with the speaker (each run a fresh session), so both meet the same machine load.
The lab is taken down at the end. Needs root and FRR.

Progress goes to the log (standard error), the table (or -o json) to standard output.`,
		Example: `  cutover bench bgp
  cutover bench bgp --sizes 2000 --runs 5 --reference
  cutover bench bgp --sizes 2000,10000 -o json > bench.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sizes, err := parseSizes(a.v.GetString("sizes"))
			if err != nil {
				return usageErr(err)
			}
			runs := a.v.GetInt("runs")
			if runs < 1 {
				return usageErr(fmt.Errorf("--runs %d: want at least 1", runs))
			}
			observe, err := bgp.ParseProof(a.v.GetString("observe"))
			if err != nil || (observe != bgp.ProofBMP && observe != bgp.ProofMirror) {
				return usageErr(fmt.Errorf("--observe %q: want bmp or mirror", a.v.GetString("observe")))
			}
			flavor := a.v.GetString("edge")
			if !slices.Contains(lab.Flavors, flavor) {
				return usageErr(fmt.Errorf("--edge %q: want %s", flavor, words.OrList(lab.Flavors)))
			}
			name := a.v.GetString("lab")
			ns := lab.NamespaceName(name, lab.NodeCtl)
			if bgplab.InNamespace(ns) {
				l, err := lab.Open(name)
				if err != nil {
					return err
				}
				a.log.Info().Ints("sizes", sizes).Int("runs", runs).Msg("measuring")
				rs, err := bgplab.Bench(cmd.Context(), l, bgplab.BenchOptions{Sizes: sizes, Runs: runs, Reference: a.v.GetBool("reference"), Observe: observe, Log: a.log})
				if err != nil {
					return err
				}
				if a.jsonOut() {
					return a.writeJSON(benchJSON(rs))
				}
				return bgplab.WriteBenchTable(a.out, rs)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			a.log.Info().Str("lab", name).Msg("bringing up the lab")
			shape := lab.DefaultShape()
			if observe == bgp.ProofBMP {
				shape.BMP = netip.AddrPortFrom(netip.IPv6Unspecified(), bgp.DefaultBMPPort)
			}
			if _, err := lab.Up(ctx, lab.Config{Name: name, VMs: lab.DefaultVMs(10), Shape: &shape, EdgeFlavors: []string{flavor}}, a.log); err != nil {
				return err
			}
			err = reexec(cmd, ns)
			if !a.v.GetBool("keep-lab") {
				derr := lab.Down(context.Background(), name, a.log)
				if err == nil {
					err = derr
				}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.String("sizes", "2000,10000,50000", "prefix counts to measure, comma-separated")
	f.Int("runs", 3, "runs per size (the median is reported)")
	f.Bool("reference", false, "also time a bare embedded GoBGP for comparison")
	f.String("observe", "bmp", "how the gate's confirmation is timed: bmp (the edge's BMP session) or mirror")
	f.String("edge", lab.FlavorFRR, "the edge router: "+words.OrList(lab.Flavors))
	f.String("lab", "bench", "name of the lab to bring up (and down)")
	f.Bool("keep-lab", false, "leave the lab up at the end")
	addOutputFlag(cmd, "text", "json")
	return cmd
}

func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 200000 {
			return nil, fmt.Errorf("--sizes %q: want numbers from 1 to 200000, comma-separated", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// benchResult is one size of bench bgp's JSON output (times in
// nanoseconds, medians over the runs).
type benchResult struct {
	Prefixes        int           `json:"prefixes"`
	Runs            int           `json:"runs"`
	Announce        time.Duration `json:"announce"`
	Switch          time.Duration `json:"switch"`
	Withdraw        time.Duration `json:"withdraw"`
	ConfirmAnnounce time.Duration `json:"confirm_announce"`
	ConfirmSwitch   time.Duration `json:"confirm_switch"`
	ConfirmWithdraw time.Duration `json:"confirm_withdraw"`
	RSS             int64         `json:"rss_bytes"`
	Reference       *benchResult  `json:"reference,omitempty"`
}

func benchJSON(rs []bgplab.BenchResult) []benchResult {
	out := make([]benchResult, len(rs))
	for i, r := range rs {
		out[i] = benchOne(r)
	}
	return out
}

func benchOne(r bgplab.BenchResult) benchResult {
	b := benchResult{Prefixes: r.Prefixes, Runs: r.Runs, Announce: r.Announce, Switch: r.Switch, Withdraw: r.Withdraw,
		ConfirmAnnounce: r.Confirm[0], ConfirmSwitch: r.Confirm[1], ConfirmWithdraw: r.Confirm[2], RSS: r.RSS}
	if r.Reference != nil {
		ref := benchOne(*r.Reference)
		b.Reference = &ref
	}
	return b
}
