package cutover

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/cutover/cutover/bgp"
	"github.com/cutover/cutover/cutover/health"
	"github.com/cutover/cutover/nft"
)

// SpeakerConfig is the BGP speaker configuration the runbook asks for.
// Passwords named by password_env are read from the environment here.
func (pl *Plan) SpeakerConfig() (bgp.Config, error) {
	rb := pl.Runbook
	c := bgp.Config{
		LocalAS:         rb.BGP.LocalAS,
		RouterID:        rb.BGP.RouterID,
		ListenPort:      int32(rb.BGP.ListenPort),
		GracefulRestart: bgp.GracefulRestart{Enabled: rb.BGP.GracefulRestart.Enabled, RestartTime: rb.BGP.GracefulRestart.RestartTime},
		Limits:          bgp.Limits{Allowed: slices.Clone(rb.AllowedPrefixes), MaxPrefixes: rb.MaxPrefixes},
	}
	for _, p := range rb.BGP.Peers {
		pw := p.Password
		if p.PasswordEnv != "" {
			pw = os.Getenv(p.PasswordEnv)
			if pw == "" {
				return bgp.Config{}, fmt.Errorf("peer %s: password_env %s is empty or not set", p.Address, p.PasswordEnv)
			}
		}
		c.Peers = append(c.Peers, bgp.PeerConfig{Address: p.Address, AS: p.AS, Port: p.Port, Password: pw,
			HoldTime: p.HoldTime, Keepalive: p.Keepalive, Observe: p.Observe})
	}
	return c, c.Validate()
}

// DataplaneConfig is the nft configuration the runbook asks for.
func (pl *Plan) DataplaneConfig() nft.Config {
	return nft.Config{Table: pl.Runbook.Dataplane.Table, NetNS: pl.Runbook.Dataplane.Netns}
}

// Targets returns the probe targets of the given VMs: one per address of
// every VM that has a probe. A VM's first address is named after the VM,
// further ones "name/address".
func Targets(vms []*VM) []health.Target {
	var ts []health.Target
	for _, vm := range vms {
		if vm.Probe.Kind == ProbeNone {
			continue
		}
		for i, p := range vm.Prefixes {
			name := vm.Name
			if i > 0 {
				name = vm.Name + "/" + p.Addr().String()
			}
			ts = append(ts, health.Target{Name: name, Addr: p.Addr(),
				Probe: health.Probe{Kind: string(vm.Probe.Kind), Port: vm.Probe.Port, Path: vm.Probe.Path}})
		}
	}
	return ts
}

// SpecOptions are the live parts a Spec needs besides the plan.
type SpecOptions struct {
	Speaker bgp.Speaker
	Prober  health.Prober
	// PeerWait is how long the pre-check waits for every peer to be
	// established (default 60 s).
	PeerWait time.Duration
	// Progress receives pending verdicts while gates run (status displays).
	Progress func(batch int, v health.Verdict)
}

// NewSpec builds what the engine runs from a plan.
func NewSpec(pl *Plan, o SpecOptions) *Spec {
	rb := pl.Runbook
	if o.PeerWait == 0 {
		o.PeerWait = 60 * time.Second
	}
	sp := &Spec{
		Runbook:    rb.File,
		Digest:     pl.Digest,
		ConfirmEnd: slices.Clone(pl.ConfirmEnd),
		Policy:     rb.FailurePolicy,
		Hold:       rb.Hold,
		Routes:     pl.RoutesOf,
		Dataplane:  pl.DataplaneOf,
	}
	for _, b := range pl.Batches {
		sp.Batches = append(sp.Batches, SpecBatch{Name: b.Name, VMs: len(b.VMs), Prefixes: b.Prefixes, Confirm: slices.Clone(b.Confirm)})
	}
	if rb.Window != nil {
		sp.Window = rb.Window.Open
	}
	sp.Precheck = func(ctx context.Context) error { return waitPeers(ctx, o.Speaker, o.PeerWait) }

	var gates []health.Gate
	bgpTimeout := time.Duration(0)
	for _, g := range rb.Gates {
		switch g.Kind {
		case GateBGP:
			bgpTimeout = g.Timeout
			if bgpTimeout == 0 {
				bgpTimeout = 30 * time.Second
			}
		case GateProbe:
			gates = append(gates, health.ProbeGate{Prober: o.Prober, MinHealthy: float64(g.MinHealthy),
				MaxFailures: g.MaxFailures, Rise: g.Rise, Fall: g.Fall, Interval: g.Interval,
				Timeout: g.Timeout, Within: g.Within, Concurrency: g.Concurrency})
		case GatePrometheus:
			gates = append(gates, health.PromGate{URL: g.URL, Query: g.Query, Op: g.Op, Value: g.Value,
				Within: g.Within, Interval: g.Interval, Timeout: g.Timeout})
		}
	}
	if bgpTimeout > 0 {
		sp.Converge = func(ctx context.Context, routes []bgp.Route) error {
			ctx, cancel := context.WithTimeout(ctx, bgpTimeout)
			defer cancel()
			c, err := bgp.WaitConverged(ctx, o.Speaker, routes, 50*time.Millisecond)
			if err != nil {
				return fmt.Errorf("peers did not accept the batch within %s: %w (%s)", bgpTimeout, err, c)
			}
			return nil
		}
	}
	all := Targets(pl.Inventory.VMs)
	sp.Baseline = func(ctx context.Context) ([]string, int, error) {
		if o.Prober == nil || len(all) == 0 {
			return nil, 0, nil
		}
		b, err := health.TakeBaseline(ctx, o.Prober, all, health.BaselineOptions{})
		if err != nil {
			return nil, 0, err
		}
		return b.Healthy, b.Probed, nil
	}
	sp.Gate = func(ctx context.Context, i int, baseline []string) (bool, []VerdictRecord) {
		in := health.Input{Batch: i, Targets: Targets(pl.Batches[i].VMs), Baseline: health.BaselineOf(baseline)}
		if o.Progress != nil {
			in.Progress = func(v health.Verdict) { o.Progress(i, v) }
		}
		pass, vs := health.Evaluate(ctx, gates, in)
		out := make([]VerdictRecord, 0, len(vs))
		for _, v := range vs {
			out = append(out, VerdictRecord{Gate: v.Gate, Pass: v.Pass, Reasons: v.Reasons})
		}
		return pass, out
	}
	return sp
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
