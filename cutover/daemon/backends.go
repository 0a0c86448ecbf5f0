package daemon

import (
	"context"

	"github.com/cutover/cutover/bgp"
	"github.com/cutover/cutover/cutover/health"
	"github.com/cutover/cutover/nft"
)

// FromNFT adapts an nft.Dataplane (the kernel's or the fake) to what the
// daemon drives.
func FromNFT(d nft.Dataplane) DataplaneCloser { return nftDataplane{d} }

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
	// Ready answers the readiness check's probes through the target
	// (nil: every probe healthy).
	Ready *health.Fake
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

// Dataplane implements Backends. After the fake was closed (a handle the
// daemon opened to read the table at start), it is a new one.
func (f *FakeBackends) Dataplane(c nft.Config) (DataplaneCloser, error) {
	if f.NFT == nil || f.NFT.Closed() {
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

// TargetProber implements Backends.
func (f *FakeBackends) TargetProber(nft.Config, nft.Site) (health.Prober, error) {
	if f.Ready == nil {
		f.Ready = &health.Fake{}
	}
	return f.Ready, nil
}
