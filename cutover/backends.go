package cutover

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/cutover/cutover/bgp"
	"github.com/cutover/cutover/bgp/gobgp"
	"github.com/cutover/cutover/cutover/health"
	"github.com/cutover/cutover/nft"
)

// LiveBackends are the real speaker (embedded GoBGP), the kernel nft
// dataplane and network probes.
type LiveBackends struct {
	Log zerolog.Logger
	// ProbeNetns runs the probes from inside this network namespace
	// (for the lab: the hospital client's); "": the daemon's own.
	ProbeNetns string
	// DrainTimeout is how long flows opened before a move keep their old
	// path (0: the dataplane's default).
	DrainTimeout time.Duration
	// CorrectDrift lets the dataplane fix hand edits of its table.
	CorrectDrift bool
	// DataplaneNetns, when set, overrides the runbook's dataplane netns
	// (the lab: the daemon runs in ctl, the gateway is the edge).
	DataplaneNetns string
}

// Speaker implements Backends.
func (b LiveBackends) Speaker(ctx context.Context, c bgp.Config) (bgp.Speaker, error) {
	return gobgp.New(ctx, c, b.Log.With().Str("component", "bgp").Logger())
}

// Dataplane implements Backends.
func (b LiveBackends) Dataplane(c nft.Config) (DataplaneCloser, error) {
	c.DrainTimeout = b.DrainTimeout
	if b.DataplaneNetns != "" {
		c.NetNS = b.DataplaneNetns
	}
	c.Correct = b.CorrectDrift
	dp, err := nft.New(c, b.Log)
	if err != nil {
		return nil, err
	}
	return nftDataplane{dp}, nil
}

// Prober implements Backends.
func (b LiveBackends) Prober() (health.Prober, error) {
	return health.NewProber(health.Options{Netns: b.ProbeNetns})
}

// nftDataplane adapts nft.Dataplane to the engine's Dataplane.
type nftDataplane struct{ nft.Dataplane }

func (d nftDataplane) Apply(ctx context.Context, s nft.State) error {
	_, err := d.Dataplane.Apply(ctx, s)
	return err
}

// FakeBackends simulate everything in memory: for --dry-run and tests.
type FakeBackends struct {
	BGP   *bgp.Fake
	NFT   *nft.Fake
	Probe *health.Fake // nil: every probe healthy
}

// Speaker implements Backends.
func (f *FakeBackends) Speaker(_ context.Context, c bgp.Config) (bgp.Speaker, error) {
	if f.BGP == nil {
		f.BGP = bgp.NewFake(c.Limits)
		var ps []bgp.PeerStatus
		for _, p := range c.Peers {
			ps = append(ps, bgp.PeerStatus{Address: p.Address, AS: p.AS, State: "established", Established: true})
		}
		f.BGP.SetPeers(ps)
	}
	return f.BGP, nil
}

// Dataplane implements Backends.
func (f *FakeBackends) Dataplane(c nft.Config) (DataplaneCloser, error) {
	if f.NFT == nil {
		f.NFT = nft.NewFake(c)
	}
	return nftDataplane{f.NFT}, nil
}

// Prober implements Backends.
func (f *FakeBackends) Prober() (health.Prober, error) {
	if f.Probe == nil {
		f.Probe = &health.Fake{}
	}
	return f.Probe, nil
}
