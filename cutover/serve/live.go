package serve

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/cutover/cutover/bgp"
	"github.com/cutover/cutover/bgp/gobgp"
	"github.com/cutover/cutover/cutover/daemon"
	"github.com/cutover/cutover/cutover/health"
	"github.com/cutover/cutover/nft"
	"github.com/cutover/cutover/nft/kernel"
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

// Speaker implements daemon.Backends.
func (b LiveBackends) Speaker(ctx context.Context, c bgp.Config) (bgp.Speaker, error) {
	return gobgp.New(ctx, c, b.Log) // gobgp.New adds component "bgp"
}

// Effective is the configuration Dataplane opens for c: the table in
// DataplaneNetns when that is set.
func (b LiveBackends) Effective(c nft.Config) nft.Config {
	if b.DataplaneNetns != "" {
		c.NetNS = b.DataplaneNetns
	}
	return c
}

// Dataplane implements daemon.Backends.
func (b LiveBackends) Dataplane(c nft.Config) (daemon.DataplaneCloser, error) {
	c = b.Effective(c)
	c.DrainTimeout = b.DrainTimeout
	c.Correct = c.Correct || b.CorrectDrift // reconcile clear asks for it
	dp, err := kernel.New(c, b.Log)
	if err != nil {
		return nil, err
	}
	return daemon.FromNFT(dp), nil
}

// Prober implements daemon.Backends.
func (b LiveBackends) Prober() (health.Prober, error) {
	return health.NewProber(health.Options{Netns: b.ProbeNetns})
}

// TargetProber implements daemon.Backends: probes from the dataplane's
// namespace (the gateway) with the site's steering mark, so that they take
// the site's routing table whatever the main table says.
func (b LiveBackends) TargetProber(c nft.Config, site nft.Site) (health.Prober, error) {
	return health.NewProber(health.Options{Netns: b.Effective(c).NetNS, Mark: site.Mark})
}
