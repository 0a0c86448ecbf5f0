package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/cutover/cutover/bgp"
)

// scrape registers c alone and renders what a scrape gathers as
// `name{label="value"} value` lines, sorted; it fails the test on a
// problem promlint finds.
func scrape(t *testing.T, c prometheus.Collector) []string {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	if problems, err := promlint.NewWithMetricFamilies(mfs).Lint(); err != nil || len(problems) > 0 {
		t.Errorf("promlint: %v %+v", err, problems)
	}
	var out []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			out = append(out, fmt.Sprintf("%s{%s} %g", mf.GetName(), strings.Join(labels, ","), m.GetGauge().GetValue()))
		}
	}
	slices.Sort(out)
	return out
}

// checkScrape compares a scrape of c with want, which has
// cutover_unreconciled{} 0 unless it says otherwise.
func checkScrape(t *testing.T, what string, c prometheus.Collector, want ...string) {
	t.Helper()
	if !slices.ContainsFunc(want, func(s string) bool { return strings.HasPrefix(s, "cutover_unreconciled{}") }) {
		want = append(want, "cutover_unreconciled{} 0")
	}
	slices.Sort(want)
	if got := scrape(t, c); !slices.Equal(got, want) {
		t.Errorf("%s:\n got %s\nwant %s", what, strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
}

func TestCollectorPeers(t *testing.T) {
	ctx := context.Background()
	sp := bgp.NewFake(bgp.Limits{Allowed: []netip.Prefix{netip.MustParsePrefix("10.64.0.0/14")}, MaxPrefixes: 100})
	d := &Daemon{}
	c := d.Collector()
	checkScrape(t, "no speaker", c, `cutover_bgp_speaker_running{} 0`)

	d.speaker = sp
	routes := []bgp.Route{
		{Prefix: netip.MustParsePrefix("10.64.0.10/32"), NextHop: netip.MustParseAddr("10.255.2.2")},
		{Prefix: netip.MustParsePrefix("10.64.0.11/32"), NextHop: netip.MustParseAddr("10.255.2.2")},
		{Prefix: netip.MustParsePrefix("10.64.0.12/32"), NextHop: netip.MustParseAddr("10.255.2.2")},
	}
	if err := sp.Set(ctx, routes); err != nil {
		t.Fatal(err)
	}
	sp.Withhold(bgp.FakeObserver, routes[2].Prefix)
	checkScrape(t, "an observe peer that holds 2 of 3", c,
		`cutover_bgp_speaker_running{} 1`,
		`cutover_bgp_peers_query_success{} 1`,
		`cutover_bgp_peer_up{peer="192.0.2.1"} 1`,
		`cutover_bgp_peer_state{peer="192.0.2.1",state="established"} 1`,
		`cutover_bgp_peer_prefixes_advertised{peer="192.0.2.1"} 3`,
		`cutover_bgp_peer_prefixes_received{peer="192.0.2.1"} 0`,
		`cutover_bgp_peer_prefixes_accepted{peer="192.0.2.1"} 2`)

	sp.SetPeers([]bgp.PeerStatus{
		{Address: netip.MustParseAddr("10.255.0.1"), AS: 65000, State: "established", Established: true, Advertised: 3, Received: 7, Observe: bgp.ProofMirror, Accepted: 3},
		{Address: netip.MustParseAddr("10.255.0.3"), AS: 65001, State: "active"},
		{Address: netip.MustParseAddr("fd00:255::1"), AS: 65002, State: "waiting for the first Set"},
	})
	checkScrape(t, "one peer up, two not; only the observe peer tells what it accepted", c,
		`cutover_bgp_speaker_running{} 1`,
		`cutover_bgp_peers_query_success{} 1`,
		`cutover_bgp_peer_up{peer="10.255.0.1"} 1`,
		`cutover_bgp_peer_up{peer="10.255.0.3"} 0`,
		`cutover_bgp_peer_up{peer="fd00:255::1"} 0`,
		`cutover_bgp_peer_state{peer="10.255.0.1",state="established"} 1`,
		`cutover_bgp_peer_state{peer="10.255.0.3",state="active"} 1`,
		`cutover_bgp_peer_state{peer="fd00:255::1",state="waiting for the first Set"} 1`,
		`cutover_bgp_peer_prefixes_advertised{peer="10.255.0.1"} 3`,
		`cutover_bgp_peer_prefixes_advertised{peer="10.255.0.3"} 0`,
		`cutover_bgp_peer_prefixes_advertised{peer="fd00:255::1"} 0`,
		`cutover_bgp_peer_prefixes_received{peer="10.255.0.1"} 7`,
		`cutover_bgp_peer_prefixes_received{peer="10.255.0.3"} 0`,
		`cutover_bgp_peer_prefixes_received{peer="fd00:255::1"} 0`,
		`cutover_bgp_peer_prefixes_accepted{peer="10.255.0.1"} 3`)

	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	checkScrape(t, "a speaker closed under the scrape", c, `cutover_bgp_speaker_running{} 0`)
}

// slowSpeaker is a speaker whose Peers answers only once release is
// closed, or fails with err.
type slowSpeaker struct {
	*bgp.Fake
	release chan struct{}
	calls   atomic.Int32
	err     error
}

func (s *slowSpeaker) Peers(ctx context.Context) ([]bgp.PeerStatus, error) {
	s.calls.Add(1)
	<-s.release
	if s.err != nil {
		return nil, s.err
	}
	return s.Fake.Peers(ctx)
}

// TestCollectorSpeakerSlow: a speaker that does not answer in time
// fails the peers query without holding the scrape up, and scrapes meanwhile
// ask it nothing more.
func TestCollectorSpeakerSlow(t *testing.T) {
	sp := &slowSpeaker{Fake: bgp.NewFake(bgp.Limits{}), release: make(chan struct{})}
	d := &Daemon{speaker: sp}
	c := &collector{d: d, timeout: 50 * time.Millisecond} // the speaker blocks: no race with the clock
	for range 3 {
		checkScrape(t, "no answer", c, `cutover_bgp_peers_query_success{} 0`)
	}
	if n := sp.calls.Load(); n != 1 {
		t.Errorf("%d questions to a speaker that had not answered the first, want 1", n)
	}
	close(sp.release)
	c.timeout = time.Minute // it answers now
	checkScrape(t, "answered", c,
		`cutover_bgp_speaker_running{} 1`,
		`cutover_bgp_peers_query_success{} 1`,
		`cutover_bgp_peer_up{peer="192.0.2.1"} 1`,
		`cutover_bgp_peer_state{peer="192.0.2.1",state="established"} 1`,
		`cutover_bgp_peer_prefixes_advertised{peer="192.0.2.1"} 0`,
		`cutover_bgp_peer_prefixes_received{peer="192.0.2.1"} 0`,
		`cutover_bgp_peer_prefixes_accepted{peer="192.0.2.1"} 0`)

	sp.err = errors.New("list peers: connection refused")
	checkScrape(t, "failed", c, `cutover_bgp_speaker_running{} 1`, `cutover_bgp_peers_query_success{} 0`)
}

// TestCollectorDaemonLocked: a scrape does not wait for the daemon's
// lock, which is held while a speaker starts.
func TestCollectorDaemonLocked(t *testing.T) {
	d := &Daemon{}
	c := &collector{d: d, timeout: 50 * time.Millisecond}
	d.mu.Lock()
	checkScrape(t, "locked", c, `cutover_bgp_peers_query_success{} 0`)
	d.mu.Unlock()
	c.timeout = time.Minute
	checkScrape(t, "unlocked", c, `cutover_bgp_speaker_running{} 0`)
}
