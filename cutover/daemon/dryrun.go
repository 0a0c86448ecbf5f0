package daemon

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/netip"
	"time"

	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/plan"
	"github.com/cutover/cutover/cutover/runbook"

	"github.com/rs/zerolog"

	"github.com/cutover/cutover/bgp"
	"github.com/cutover/cutover/nft"
)

// DryRun runs the runbook at path through the real engine against
// in-memory fakes (speaker, dataplane, probes: every VM healthy), with go/no-go
// points answered, no hold times and no window wait, and writes the
// timeline to w: what every batch announces and steers, where the run
// stops for people, and how long it is expected to take. It touches no
// daemon, namespace, route or table.
func DryRun(ctx context.Context, path string, now time.Time, w io.Writer) error {
	snap, err := plan.ReadSnapshot(path)
	if err != nil {
		return err
	}
	pl, _, err := snap.Plan()
	if err != nil {
		return err
	}
	fb := &FakeBackends{}
	bc, err := pl.SpeakerConfig()
	if err != nil {
		return err
	}
	sp, _ := fb.Speaker(ctx, bc)
	dp, _ := fb.Dataplane(pl.DataplaneConfig())
	pr, _ := fb.Prober()
	rp, _ := fb.TargetProber(pl.DataplaneConfig(), nft.Site{})
	spec := NewSpec(pl, SpecOptions{Speaker: sp, Prober: pr, Ready: rp})
	real := *spec
	// Simulated time: gates pass at once, nothing waits.
	spec.Hold, spec.Window = 0, nil
	spec.Gate = func(context.Context, int, []string) (bool, []engine.VerdictRecord) {
		return true, []engine.VerdictRecord{{Gate: "simulated", Pass: true}}
	}
	if spec.Converge != nil {
		spec.Converge = func(ctx context.Context, routes []bgp.Route) (string, error) {
			_, err := bgp.WaitConverged(ctx, sp, routes, time.Millisecond)
			return "", err
		}
	}
	j := &engine.MemJournal{}
	e := engine.New(engine.Config{Speaker: sp, Dataplane: dp, Journal: j, Log: zerolog.Nop()})
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go e.Loop(lctx)
	if err := e.Start(spec, "dry-run", true); err != nil {
		return err
	}
	var st engine.RunState
	for {
		st = e.Status(0).State
		if !st.Active() {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
	if st.Phase != engine.PhaseDone {
		return fmt.Errorf("dry run did not finish: %s: %s", st.Phase, st.Result)
	}
	writeTimeline(w, pl, &real, now)
	vms, prefixes, _, _ := pl.Totals()
	ann := len(fb.BGP.Announced())
	// The dataplane stores intervals: adjacent prefixes merge, so count
	// addresses, not prefixes.
	elems := uint64(0)
	for _, ps := range fb.NFT.State().Moved {
		elems += addresses(ps)
	}
	want := uint64(0)
	for _, ps := range pl.DataplaneOf(allBatches(len(pl.Batches))).Moved {
		want += addresses(ps)
	}
	fmt.Fprintf(w, "\nsimulated against fakes: %s; %d journal records\n", st.Result, len(j.Entries()))
	fmt.Fprintf(w, "end state: %d of %d VMs at %s; BGP %d routes announced; nft steers %d addresses\n",
		vms, vms, pl.Runbook.Move.To, ann, elems)
	if ann != len(pl.RoutesOf(allBatches(len(pl.Batches)))) || (pl.Runbook.Dataplane.Enabled && elems != want) {
		return fmt.Errorf("dry run ended in an unexpected state: %d routes, %d nft addresses for %d prefixes", ann, elems, prefixes)
	}
	return nil
}

// addresses counts the addresses in ps, saturating for huge IPv6 ranges.
func addresses(ps []netip.Prefix) uint64 {
	var n uint64
	for _, p := range ps {
		host := p.Addr().BitLen() - p.Bits()
		if host >= 63 {
			return math.MaxUint64
		}
		n += 1 << host
	}
	return n
}

func allBatches(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// gateTime estimates the least time the gates of one batch take.
func gateTime(rb *runbook.Runbook) (d time.Duration, desc []string) {
	for _, g := range rb.Gates {
		d = max(d, g.Least())
		desc = append(desc, g.String())
	}
	return d, desc
}

func writeTimeline(w io.Writer, pl *plan.Plan, sp *engine.Spec, now time.Time) {
	rb := pl.Runbook
	vms, prefixes, v4, v6 := pl.Totals()
	fmt.Fprintf(w, "dry run of %s — nothing was changed\n", rb.File)
	fmt.Fprintf(w, "plan %s: %d VMs, %d prefixes (%d IPv4, %d IPv6), %d batches, %s → %s\n",
		pl.Digest[:min(12, len(pl.Digest))], vms, prefixes, v4, v6, len(pl.Batches), rb.Move.From, rb.Move.To)
	for _, p := range rb.BGP.Peers {
		fmt.Fprintf(w, "peer %s AS %d%s\n", p.Address, p.AS, plan.ObservedBy(p))
	}
	if rb.Window != nil {
		state := "open now"
		if err := rb.Window.Open(now); err != nil {
			state = err.Error()
		}
		fmt.Fprintf(w, "window %s: %s\n", rb.Window, state)
	}
	gt, gdesc := gateTime(rb)
	fmt.Fprintf(w, "failure policy %s; hold %s between batches; gates:\n", rb.FailurePolicy, rb.Hold)
	for _, d := range gdesc {
		fmt.Fprintf(w, "  %s\n", d)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%-8s %-10s %5s %8s  %s\n", "T+", "batch", "VMs", "prefixes", "changes")
	var at time.Duration
	stamp := func(d time.Duration) string {
		return fmt.Sprintf("%d:%02d", int(d.Minutes()), int(d.Seconds())%60)
	}
	fmt.Fprintf(w, "%-8s %-10s %5s %8s  pre-check: peers established, window, health baseline\n", stamp(at), "", "", "")
	for i, b := range pl.Batches {
		for _, c := range b.Confirm {
			fmt.Fprintf(w, "%-8s %-10s %5s %8s  go/no-go %q: waits for a person (cutover confirm)\n", stamp(at), "", "", "", c)
		}
		ch := pl.Changes(i)
		nh := "-"
		if len(ch.Announce) > 0 {
			nh = ch.Announce[0].NextHop.String()
		}
		fmt.Fprintf(w, "%-8s %-10s %5d %8d  announce %d via %s, replace %d, withdraw %d; nft +%d -%d; converge, gates, commit\n",
			stamp(at), b.Name, len(b.VMs), len(b.Prefixes), len(ch.Announce), nh, len(ch.Replaced), len(ch.Withdraw), len(ch.NFT.Add), len(ch.NFT.Remove))
		at += gt + time.Second // announce + converge: about a second in the lab
		if i < len(pl.Batches)-1 {
			at += sp.Hold
		}
	}
	for _, c := range pl.ConfirmEnd {
		fmt.Fprintf(w, "%-8s %-10s %5s %8s  go/no-go %q: waits for a person\n", stamp(at), "", "", "", c)
	}
	fmt.Fprintf(w, "%-8s %-10s %5s %8s  done: every VM at %s\n", stamp(at), "", "", "", rb.Move.To)
	fmt.Fprintf(w, "\nexpected duration: about %s plus the time at go/no-go points\n", at.Round(time.Second))
}
