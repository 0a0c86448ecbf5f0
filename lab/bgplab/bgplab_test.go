package bgplab

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cutover/cutover/bgp"
	"github.com/cutover/cutover/lab"
)

var pfx, ip = netip.MustParsePrefix, netip.MustParseAddr

func testTopology() lab.Topology {
	return lab.Topology{
		EdgeAS: 65000, ControllerAS: 65100,
		EdgeCtl4: ip("10.255.0.1"), Ctl4: ip("10.255.0.2"),
		SiteNextHop: map[string]lab.NextHop{
			"skm1": {V4: ip("10.255.1.2"), V6: ip("fd00:255:1::2")},
			"skm2": {V4: ip("10.255.2.2")},
		},
		VMs:      []netip.Prefix{pfx("10.64.0.10/32"), pfx("fd00:64::10/128")},
		Covering: []netip.Prefix{pfx("10.64.0.0/14"), pfx("fd00:64::/48")},
	}
}

func TestControllerConfig(t *testing.T) {
	topo := testTopology()
	cfg := ControllerConfig(topo, 0)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	p := cfg.Peers[0]
	if cfg.LocalAS != 65100 || cfg.RouterID != topo.Ctl4 || cfg.ListenPort != -1 || p.Address != topo.EdgeCtl4 ||
		p.AS != 65000 || p.Observe != bgp.ProofMirror || p.LocalAddress != topo.Ctl4 || cfg.Limits.MaxPrefixes != 2 ||
		!reflect.DeepEqual(cfg.Limits.Allowed, topo.Covering) || !cfg.GracefulRestart.Enabled {
		t.Errorf("ControllerConfig = %+v", cfg)
	}
	if got := ControllerConfig(topo, 50000).Limits.MaxPrefixes; got != 50000 {
		t.Errorf("max prefixes %d, want 50000", got)
	}
}

func TestSiteRoutes(t *testing.T) {
	topo := testTopology()
	rs, err := SiteRoutes(topo, "skm1", topo.VMs)
	want := []bgp.Route{{Prefix: pfx("10.64.0.10/32"), NextHop: ip("10.255.1.2")}, {Prefix: pfx("fd00:64::10/128"), NextHop: ip("fd00:255:1::2")}}
	if err != nil || !reflect.DeepEqual(rs, want) {
		t.Errorf("SiteRoutes(skm1) = %v, %v", rs, err)
	}
	for site, wantErr := range map[string]string{
		"skm3": `site "skm3": not in the lab (sites: [skm1 skm2])`,
		"skm2": "site skm2: no next-hop for fd00:64::10/128",
	} {
		if _, err := SiteRoutes(topo, site, topo.VMs); err == nil || err.Error() != wantErr {
			t.Errorf("SiteRoutes(%s) = %v, want %q", site, err, wantErr)
		}
	}
	fib := FIBFor(want[:1], []netip.Prefix{pfx("10.64.0.11/32"), pfx("10.64.0.10/32")})
	if !reflect.DeepEqual(fib, map[netip.Prefix]netip.Addr{pfx("10.64.0.10/32"): ip("10.255.1.2"), pfx("10.64.0.11/32"): {}}) {
		t.Errorf("FIBFor = %v (routes win over withdrawals)", fib)
	}
}

func TestBenchPrefixesAndTable(t *testing.T) {
	ps, err := benchPrefixes(testTopology(), 3)
	if err != nil || !reflect.DeepEqual(ps, []netip.Prefix{pfx("10.64.0.1/32"), pfx("10.64.0.2/32"), pfx("10.64.0.3/32")}) {
		t.Errorf("benchPrefixes = %v, %v", ps, err)
	}
	if _, err := benchPrefixes(testTopology(), 300000); err == nil || err.Error() != "bench: 300000 prefixes do not fit in 10.64.0.0/14" {
		t.Errorf("benchPrefixes(300000) = %v", err)
	}
	if m := median([]time.Duration{3, 1, 2}); m != 2 {
		t.Errorf("median odd = %v", m)
	}
	if m := median([]time.Duration{4, 1, 3, 2}); m != 2 {
		t.Errorf("median even = %v (integer mean of 2 and 3)", m)
	}
	var b bytes.Buffer
	rs := []BenchResult{{Prefixes: 2000, Announce: 90 * time.Millisecond, Switch: 100 * time.Millisecond, Withdraw: 80 * time.Millisecond,
		Confirm: [3]time.Duration{100 * time.Millisecond, 110 * time.Millisecond, 80 * time.Millisecond}, Runs: 3, RSS: 40 << 20,
		Reference: &BenchResult{Announce: 80 * time.Millisecond, Switch: 100 * time.Millisecond, Withdraw: 80 * time.Millisecond}}}
	if err := WriteBenchTable(&b, rs); err != nil {
		t.Fatal(err)
	}
	want := "2000      0.090 / 0.100 / 0.080 s     0.100 / 0.110 / 0.080 s     0.080 / 0.100 / 0.080 s      1.12x    40MB\n"
	if !strings.Contains(b.String(), want) {
		t.Errorf("table:\n%s\nwant a row\n%s", b.String(), want)
	}
}

// TestServeSpeakerProtocol drives ServeSpeaker over pipes with a speaker
// that has no reachable peer: requests get answers, errors come back as
// errors, and end of input ends it.
func TestServeSpeakerProtocol(t *testing.T) {
	cfg := ControllerConfig(testTopology(), 0)
	cfg.Peers[0].Address, cfg.Peers[0].LocalAddress = ip("127.0.0.1"), netip.Addr{}
	cfg.Peers[0].Port = 9 // discard: nothing answers BGP there
	cfg.Peers[0].Passive = true
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- ServeSpeaker(context.Background(), cfg, inR, outW, testLog(t)) }()
	enc, dec := json.NewEncoder(inW), json.NewDecoder(outR)
	call := func(req request) response {
		t.Helper()
		if err := enc.Encode(req); err != nil {
			t.Fatal(err)
		}
		var resp response
		if err := dec.Decode(&resp); err != nil {
			t.Fatal(err)
		}
		return resp
	}
	rs := []bgp.Route{{Prefix: pfx("10.64.0.10/32"), NextHop: ip("10.255.2.2")}}
	if r := call(request{Op: "set", Routes: rs}); r.Error != "" {
		t.Errorf("set: %s", r.Error)
	}
	if r := call(request{Op: "set", Routes: []bgp.Route{{Prefix: pfx("0.0.0.0/0"), NextHop: ip("10.255.2.2")}}}); r.Error != "refuse routes: 1 of 1 break the limits: 0.0.0.0/0 via 10.255.2.2: default route" {
		t.Errorf("set default route: %q", r.Error)
	}
	if r := call(request{Op: "accepted", Routes: rs}); r.Error != "" || r.Convergence == nil || r.Convergence.Want != 1 || r.Convergence.Peers[0].Matched != 0 {
		t.Errorf("accepted: %+v", r)
	}
	if r := call(request{Op: "peers"}); r.Error != "" || len(r.Peers) != 1 || r.Peers[0].Established {
		t.Errorf("peers: %+v", r)
	}
	if r := call(request{Op: "fly"}); r.Error != `unknown op "fly"` {
		t.Errorf("unknown op: %q", r.Error)
	}
	if r := call(request{Op: "close"}); r.Error != "" {
		t.Errorf("close: %q", r.Error)
	}
	if err := <-done; err != nil {
		t.Errorf("ServeSpeaker = %v", err)
	}
}

func testLog(t *testing.T) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
}
