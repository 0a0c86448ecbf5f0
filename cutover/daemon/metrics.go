package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cutover/cutover/bgp"
)

// peersTimeout is how long a scrape waits for the speaker to report its
// peers. GoBGP answers from its own goroutine and does not heed a context
// while it is busy, and the daemon's lock is held while a speaker starts:
// a scrape must not wait for either.
const peersTimeout = 2 * time.Second

// The metrics the daemon's collector reports at scrape time.
var (
	speakerRunningDesc = prometheus.NewDesc("cutover_bgp_speaker_running",
		"1 while the daemon runs a BGP speaker (it starts one for a runbook's peers).", nil, nil)
	peersQueryDesc = prometheus.NewDesc("cutover_bgp_peers_query_success",
		fmt.Sprintf("1 when the speaker reported its peers for this scrape, 0 when it failed or did not answer within %s (the peer series are then missing).", peersTimeout), nil, nil)
	peerUpDesc = prometheus.NewDesc("cutover_bgp_peer_up",
		"1 while the BGP session with the peer is established.", []string{"peer"}, nil)
	peerStateDesc = prometheus.NewDesc("cutover_bgp_peer_state",
		"1 for the BGP session's state (established, active, idle, ..., or waiting for the first Set before the speaker peers).", []string{"peer", "state"}, nil)
	peerAdvertisedDesc = prometheus.NewDesc("cutover_bgp_peer_prefixes_advertised",
		"Prefixes the speaker advertises to the peer.", []string{"peer"}, nil)
	peerReceivedDesc = prometheus.NewDesc("cutover_bgp_peer_prefixes_received",
		"Prefixes received from the peer.", []string{"peer"}, nil)
	unreconciledDesc = prometheus.NewDesc("cutover_unreconciled",
		"1 while the journal holds no run but the daemon found an earlier run's traces (moves in its nft table, snapshots): no run starts until a person runs cutover reconcile adopt or clear.", nil, nil)
	peerAcceptedDesc = prometheus.NewDesc("cutover_bgp_peer_prefixes_accepted",
		"Prefixes for which a mirror peer's best path is ours, as it mirrors them back (observe: mirror peers only).", []string{"peer"}, nil)
	bmpRouterUpDesc = prometheus.NewDesc("cutover_bmp_router_up",
		"1 while the router's BMP session with the daemon's station is up, 0 after it ended (observe: bmp; the station keeps a router it has seen).", []string{"router", "sys_name"}, nil)
	bmpRouterPrefixesDesc = prometheus.NewDesc("cutover_bmp_router_prefixes",
		"Prefixes the station holds for the router over all its monitored tables.", []string{"router", "sys_name"}, nil)
)

// Collector returns a prometheus.Collector for what the daemon reads at
// scrape time: its BGP speaker and the speaker's peers. Register it next
// to engine.NewMetrics. With no speaker running it reports
// cutover_bgp_speaker_running 0 and no peers.
func (d *Daemon) Collector() prometheus.Collector {
	return &collector{d: d, timeout: peersTimeout}
}

// collector implements prometheus.Collector. At most one query for the
// peers runs at a time: a scrape that finds the previous one still
// running waits for its answer instead of starting another.
type collector struct {
	d       *Daemon
	timeout time.Duration

	mu      sync.Mutex
	running *peersQuery // nil: none
}

// peersQuery is one question to the speaker; its fields are set before
// done is closed.
type peersQuery struct {
	done    chan struct{}
	speaker bool // a speaker was running
	peers   []bgp.PeerStatus
	err     error
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{unreconciledDesc, speakerRunningDesc, peersQueryDesc, peerUpDesc, peerStateDesc,
		peerAdvertisedDesc, peerReceivedDesc, peerAcceptedDesc, bmpRouterUpDesc, bmpRouterPrefixesDesc} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(unreconciledDesc, prometheus.GaugeValue, bool01(c.d.unreconciled.Load()))
	// The station answers from memory, without waiting on the speaker
	// or the daemon's lock.
	if st := c.d.stationNow.Load(); st != nil {
		for _, r := range st.st.Routers() {
			router := r.Source.Addr().String()
			ch <- prometheus.MustNewConstMetric(bmpRouterUpDesc, prometheus.GaugeValue, bool01(r.Up), router, r.SysName)
			ch <- prometheus.MustNewConstMetric(bmpRouterPrefixesDesc, prometheus.GaugeValue, float64(r.Prefixes), router, r.SysName)
		}
	}
	q := c.query()
	t := time.NewTimer(c.timeout)
	defer t.Stop()
	select {
	case <-q.done:
	case <-t.C:
		ch <- prometheus.MustNewConstMetric(peersQueryDesc, prometheus.GaugeValue, 0)
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if !q.speaker {
		gauge(speakerRunningDesc, 0)
		return
	}
	gauge(speakerRunningDesc, 1)
	if q.err != nil {
		gauge(peersQueryDesc, 0)
		return
	}
	gauge(peersQueryDesc, 1)
	for _, p := range q.peers {
		peer := p.Address.String()
		gauge(peerUpDesc, bool01(p.Established), peer)
		gauge(peerStateDesc, 1, peer, p.State)
		gauge(peerAdvertisedDesc, float64(p.Advertised), peer)
		gauge(peerReceivedDesc, float64(p.Received), peer)
		if p.Observe == bgp.ProofMirror {
			gauge(peerAcceptedDesc, float64(p.Accepted), peer)
		}
	}
}

// query starts a question to the speaker, or returns the one still
// running.
func (c *collector) query() *peersQuery {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running != nil {
		return c.running
	}
	q := &peersQuery{done: make(chan struct{})}
	c.running = q
	go func() {
		// The speaker's own bound: a scrape stops waiting long before.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		q.speaker, q.peers, q.err = c.d.peers(ctx)
		c.mu.Lock()
		c.running = nil
		c.mu.Unlock()
		close(q.done)
	}()
	return q
}

// peers reports whether a speaker runs and, if one does, its peers.
func (d *Daemon) peers(ctx context.Context) (bool, []bgp.PeerStatus, error) {
	d.mu.Lock()
	s := d.speaker
	d.mu.Unlock()
	if s == nil {
		return false, nil, nil
	}
	ps, err := s.Peers(ctx)
	if errors.Is(err, bgp.ErrClosed) {
		return false, nil, nil // stopped since
	}
	return true, ps, err
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
