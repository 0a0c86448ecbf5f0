package daemon

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/plan"

	"github.com/cutover/cutover/bgp"
	"github.com/cutover/cutover/cutover/health"
)

// SpecOptions are the live parts a Spec needs besides the plan.
type SpecOptions struct {
	Speaker bgp.Speaker
	// Observer answers the bgp gate: every observed peer by its proof
	// (the daemon's BMP station for bmp peers). nil: Speaker alone.
	Observer bgp.Observer
	Prober   health.Prober
	// Ready probes through the target site without moving a route (the
	// gateway's socket with the target's steering mark): the readiness
	// check before each batch. nil: no check.
	Ready health.Prober
	// PeerWait is how long the pre-check waits for every peer to be
	// established (default 60 s).
	PeerWait time.Duration
	// Progress receives pending verdicts while gates run (status displays).
	Progress func(batch int, v health.Verdict)
}

// NewSpec builds what the engine runs from a plan.
func NewSpec(pl *plan.Plan, o SpecOptions) *engine.Spec {
	rb := pl.Runbook
	if o.PeerWait == 0 {
		o.PeerWait = 60 * time.Second
	}
	if o.Observer == nil {
		o.Observer = o.Speaker
	}
	sp := &engine.Spec{
		Runbook:          rb.File,
		Digest:           pl.Digest,
		ConfirmEnd:       slices.Clone(pl.ConfirmEnd),
		ConfirmOperators: maps.Clone(rb.ConfirmOperators),
		Policy:           rb.FailurePolicy,
		Source:           rb.Move.From,
		Target:           rb.Move.To,
		RunbookDigest:    rb.Digest,
		InventoryDigest:  pl.Inventory.Digest,
		Hold:             rb.Hold,
		Routes:           pl.RoutesOf,
		Dataplane:        pl.DataplaneOf,
	}
	for _, b := range pl.Batches {
		sp.Batches = append(sp.Batches, engine.SpecBatch{Name: b.Name, VMs: len(b.VMs), Prefixes: b.Prefixes, Confirm: slices.Clone(b.Confirm)})
	}
	if rb.Window != nil {
		sp.Window = rb.Window.Open
	}
	sp.Precheck = func(ctx context.Context) error { return waitPeers(ctx, o.Speaker, o.PeerWait) }

	var gates []health.Gate
	for _, g := range rb.Gates {
		if hg := g.Gate(o.Prober); hg != nil {
			gates = append(gates, hg)
		}
	}
	bgpTimeout := rb.ConvergeTimeout()
	if bgpTimeout > 0 {
		sp.Converge = func(ctx context.Context, routes []bgp.Route) (string, error) {
			ctx, cancel := context.WithTimeout(ctx, bgpTimeout)
			defer cancel()
			c, err := bgp.WaitConverged(ctx, o.Observer, routes, 50*time.Millisecond)
			switch {
			case err == nil:
				return c.Proofs(), nil
			case len(c.Peers) > 0 && ctx.Err() != nil:
				// Once: the peers that still miss routes, by which
				// proof, and their first missing prefixes.
				return "", fmt.Errorf("peers did not hold the batch's routes within %s: %s", bgpTimeout, c.Pending())
			default:
				return "", fmt.Errorf("peers did not hold the batch's routes: %w", err)
			}
		}
	}
	sp.Baseline = func(ctx context.Context) (engine.BaselineRecord, error) {
		all := plan.Targets(pl.Inventory.VMs) // once per run: not kept all night
		if o.Prober == nil || len(all) == 0 {
			return engine.BaselineRecord{}, nil
		}
		b, err := health.TakeBaseline(ctx, o.Prober, all, health.BaselineOptions{})
		if err != nil {
			return engine.BaselineRecord{}, err
		}
		rec := engine.BaselineRecord{Healthy: b.Healthy, Probed: b.Probed}
		for _, t := range all {
			if why, ok := b.Down[t.Name]; ok {
				rec.Down = append(rec.Down, t.Failure(why))
			}
		}
		return rec, nil
	}
	sp.Gate = func(ctx context.Context, i int, baseline []string) (bool, []engine.VerdictRecord) {
		in := health.Input{Batch: i, Targets: plan.Targets(pl.Batches[i].VMs), Baseline: health.BaselineOf(baseline)}
		if o.Progress != nil {
			in.Progress = func(v health.Verdict) { o.Progress(i, v) }
		}
		pass, vs := health.Evaluate(ctx, gates, in)
		out := make([]engine.VerdictRecord, 0, len(vs))
		for _, v := range vs {
			out = append(out, verdictRecord(v))
		}
		return pass, out
	}
	if o.Ready != nil && rb.Readiness != engine.ReadyOff {
		sp.ReadyPolicy = rb.Readiness
		sp.Ready = func(ctx context.Context, i int, baseline []string) (bool, engine.VerdictRecord) {
			var base *health.Baseline
			if baseline != nil {
				base = health.BaselineOf(baseline)
			}
			v := health.Ready(ctx, o.Ready, plan.Targets(pl.Batches[i].VMs), base, rb.Move.To)
			return v.Pass, verdictRecord(v)
		}
	}
	return sp
}

// verdictRecord is a gate's verdict as the engine journals it.
func verdictRecord(v health.Verdict) engine.VerdictRecord {
	return engine.VerdictRecord{Gate: v.Gate, Pass: v.Pass, Reasons: v.Reasons, Failed: v.Failed}
}

// waitPeers waits until every configured peer is established.
func waitPeers(ctx context.Context, s bgp.Speaker, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		ps, err := s.Peers(ctx)
		if err != nil {
			return fmt.Errorf("peers: %w", err)
		}
		var down []string
		for _, p := range ps {
			if !p.Established {
				down = append(down, fmt.Sprintf("%s (AS %d) %s", p.Address, p.AS, p.State))
			}
		}
		if len(down) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("BGP peers not established after %s: %v", wait, down)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
