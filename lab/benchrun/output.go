package benchrun

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cutover/cutover/cutover/engine"
)

// WriteText writes res for people: a line per batch (VMs, prefixes, and
// the announce, convergence and gate times), then the run, the rollback
// against the reference, the daemon's peak RSS and any problems.
func (res *Result) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "bench run: %d VMs (%d prefixes) in lab %s, canary %d, batches of %d, outcome %s\n\n",
		res.VMs, res.Prefixes, res.Lab, res.Canary, res.BatchSize, orNone(string(res.Outcome)))
	fmt.Fprintf(&b, "%-10s  %7s  %8s  %9s  %9s  %9s\n", "batch", "VMs", "prefixes", "announce", "converge", "gate")
	for _, bt := range res.Batches {
		fmt.Fprintf(&b, "%-10s  %7d  %8d  %9s  %9s  %9s", bt.Name, bt.VMs, bt.Prefixes,
			seconds(bt.Announce), seconds(bt.Converge), seconds(bt.Gate))
		if bt.Result != engine.BatchCommitted {
			fmt.Fprintf(&b, "  %s", bt.Result)
		}
		b.WriteString("\n")
	}
	b.WriteString("announce: the daemon's change (BGP and nft); converge: until the edge held the batch's routes (bgp gate); gate: the probe gate\n\n")
	fmt.Fprintf(&b, "%-20s %s (lab up %s; the whole bench %s)\n", "run took", seconds(res.RunTook), seconds(res.LabUp), seconds(res.Took))
	rollback := "not measured"
	if res.Rollback > 0 {
		rollback = fmt.Sprintf("%s from the command until the edge's FIB sent every VM back to %s", seconds(res.Rollback), SourceSite)
		if res.DaemonRollback > 0 {
			rollback += fmt.Sprintf(" (the daemon's change: %s)", seconds(res.DaemonRollback))
		}
	}
	fmt.Fprintf(&b, "%-20s %s\n", "rollback --all", rollback)
	if ref := res.Reference; ref != nil {
		fmt.Fprintf(&b, "%-20s %s: a bare GoBGP, the same %d prefixes, until the edge's FIB held none (its announce: %s)\n",
			"reference withdraw", seconds(ref.Withdraw), ref.Prefixes, seconds(ref.Announce))
		fmt.Fprintf(&b, "%-20s %.2fx rollback / reference withdraw (target ≤ %.2fx)\n", "ratio", res.Ratio, TargetRatio)
	} else {
		fmt.Fprintf(&b, "%-20s not measured\n", "reference withdraw")
	}
	fmt.Fprintf(&b, "%-20s %s\n", "daemon peak RSS", megabytes(res.DaemonPeakRSS))
	if res.Runbook != "" {
		fmt.Fprintf(&b, "%-20s %s\n", "runbook", res.Runbook)
	}
	for _, p := range res.Problems {
		fmt.Fprintf(&b, "PROBLEM  %s\n", p)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// seconds is d in seconds with milliseconds, "-" for zero (not reached).
func seconds(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f s", d.Seconds())
}

// megabytes is n bytes in MB (2^20), "not measured" for zero.
func megabytes(n int64) string {
	if n <= 0 {
		return "not measured"
	}
	return fmt.Sprintf("%d MB", (n+1<<19)>>20)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
