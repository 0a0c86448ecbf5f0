package lab

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/cutover/cutover/edge"
)

func TestParseFlavors(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  string
	}{
		{in: "frr", want: []string{"frr"}},
		{in: "bird", want: []string{"bird"}},
		{in: "gobgp", want: []string{"gobgp"}},
		{in: "frr,bird", want: []string{"frr", "bird"}},
		{in: " frr , gobgp ,bird", want: []string{"frr", "gobgp", "bird"}},
		{in: "", err: `edge flavour: empty: want frr, bird or gobgp, or a comma-separated list of them (one per edge)`},
		{in: "quagga", err: `edge flavour "quagga": want frr, bird or gobgp`},
		{in: "frr,", err: `edge flavour "": want frr, bird or gobgp`},
		{in: "FRR", err: `edge flavour "FRR": want frr, bird or gobgp`},
		{in: "junos", err: `edge flavour "junos": want frr, bird or gobgp`},
	} {
		got, err := ParseFlavors(tc.in)
		switch {
		case tc.err != "":
			if err == nil || err.Error() != tc.err {
				t.Errorf("ParseFlavors(%q) = %v, %v; want error %q", tc.in, got, err, tc.err)
			}
		case err != nil || !slices.Equal(got, tc.want):
			t.Errorf("ParseFlavors(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestExpandFlavors(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		n    int
		want []string
		err  string
	}{
		{in: nil, n: 2, want: []string{"frr", "frr"}},
		{in: []string{"bird"}, n: 3, want: []string{"bird", "bird", "bird"}},
		{in: []string{"frr", "gobgp"}, n: 2, want: []string{"frr", "gobgp"}},
		{in: []string{"frr", "gobgp", "bird"}, n: 2,
			err: "3 edge flavours (frr,gobgp,bird) for 2 edge routers (edge, edge2): give one for all, or one per edge in the order of bgp.peers"},
		{in: []string{"frr", "bird"}, n: 3,
			err: "2 edge flavours (frr,bird) for 3 edge routers (edge, edge2, edge3): give one for all, or one per edge in the order of bgp.peers"},
		{in: []string{"bird", "xorp"}, n: 2, err: `edge flavour "xorp": want frr, bird or gobgp`},
	} {
		got, err := ExpandFlavors(tc.in, tc.n)
		switch {
		case tc.err != "":
			if err == nil || err.Error() != tc.err {
				t.Errorf("ExpandFlavors(%v, %d) = %v, %v; want error %q", tc.in, tc.n, got, err, tc.err)
			}
		case err != nil || !slices.Equal(got, tc.want):
			t.Errorf("ExpandFlavors(%v, %d) = %v, %v; want %v", tc.in, tc.n, got, err, tc.want)
		}
	}
}

// TestConfigFlavors: a wrong count or an unknown flavour fails the
// config's validation, before anything is created; a good one gives each
// edge its flavour.
func TestConfigFlavors(t *testing.T) {
	sh := DefaultShape()
	sh.Edges = append(sh.Edges, EdgeSpec{Addrs: []netip.Addr{netip.MustParseAddr("10.255.0.5")}, AS: EdgeAS})
	cfg := Config{Name: "fl", VMs: DefaultVMs(3), Shape: &sh, EdgeFlavors: []string{"frr", "bird", "gobgp"}}
	if _, err := NewTopology(cfg); err == nil || err.Error() != "lab config: 3 edge flavours (frr,bird,gobgp) for 2 edge routers (edge, edge2): "+
		"give one for all, or one per edge in the order of bgp.peers" {
		t.Errorf("3 flavours for 2 edges: %v", err)
	}
	cfg.EdgeFlavors = []string{"frr", "bgp"}
	if _, err := NewTopology(cfg); err == nil || err.Error() != `lab config: edge flavour "bgp": want frr, bird or gobgp` {
		t.Errorf("unknown flavour: %v", err)
	}
	cfg.EdgeFlavors = []string{"gobgp", "bird"}
	topo, err := NewTopology(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if topo.Edges[0].Flavor != FlavorGoBGP || topo.Edges[1].Flavor != FlavorBIRD {
		t.Errorf("flavours %s, %s; want gobgp, bird", topo.Edges[0].Flavor, topo.Edges[1].Flavor)
	}
	cfg.EdgeFlavors = nil
	if topo, err = NewTopology(cfg); err != nil || topo.Edges[1].FlavorOf() != FlavorFRR {
		t.Errorf("default flavour: %v, %v", topo.Edges, err)
	}
	if (Edge{}).FlavorOf() != FlavorFRR {
		t.Error("an edge of an older state file is not FRR")
	}
}

// TestPlaceBMP: the station at the session's controller address when it
// listens on every address, else its own, which must be ctl's; BIRD
// reports to none.
func TestPlaceBMP(t *testing.T) {
	a := netip.MustParseAddr
	sh := DefaultShape()
	sh.Edges = append(sh.Edges, EdgeSpec{Addrs: []netip.Addr{a("10.255.0.5")}, AS: EdgeAS})
	cfg := func(listen string, flavors ...string) Config {
		s := sh
		s.BMP = netip.MustParseAddrPort(listen)
		return Config{Name: "bmp", VMs: DefaultVMs(3), Shape: &s, EdgeFlavors: flavors}
	}
	topo, err := NewTopology(cfg("[::]:11019", "frr", "gobgp"))
	if err != nil {
		t.Fatal(err)
	}
	if got := []netip.AddrPort{topo.Edges[0].BMP, topo.Edges[1].BMP}; got[0].String() != "10.255.0.2:11019" || got[1].String() != "10.255.0.6:11019" {
		t.Errorf("[::]: stations %v, want each edge's controller address", got)
	}
	topo, err = NewTopology(cfg("10.255.0.2:5000", "gobgp", "frr"))
	if err != nil {
		t.Fatal(err)
	}
	if topo.Edges[0].BMP.String() != "10.255.0.2:5000" || topo.Edges[1].BMP.String() != "10.255.0.2:5000" {
		t.Errorf("stations %s, %s; want 10.255.0.2:5000", topo.Edges[0].BMP, topo.Edges[1].BMP)
	}
	// edge2 reaches ctl's address on edge's link through its own.
	if !slices.ContainsFunc(topo.Routes["edge2"], func(r StaticRoute) bool {
		return r.Dst.String() == "10.255.0.2/32" && r.Via.String() == "10.255.0.6" && r.Dev == NodeCtl
	}) {
		t.Errorf("edge2's routes %v: want 10.255.0.2/32 via 10.255.0.6 dev ctl", topo.Routes["edge2"])
	}
	topo, err = NewTopology(cfg("0.0.0.0:11019", "bird", "frr"))
	if err != nil {
		t.Fatal(err)
	}
	if topo.Edges[0].BMP.IsValid() || topo.Edges[1].BMP.String() != "10.255.0.6:11019" {
		t.Errorf("stations %s, %s; want none (BIRD) and 10.255.0.6:11019", topo.Edges[0].BMP, topo.Edges[1].BMP)
	}
	_, err = NewTopology(cfg("192.0.2.1:11019"))
	if err == nil || !strings.Contains(err.Error(), "bgp.bmp.listen 192.0.2.1:11019: not an address of the controller in the lab") {
		t.Errorf("station outside ctl: %v", err)
	}
}

// TestEdgeInput: the lab renders every flavour with package edge from its
// topology; FRR's output splits into staticd's and bgpd's parts.
func TestEdgeInput(t *testing.T) {
	topo := defaultTopology(t, Config{VMs: DefaultVMs(3)})
	in := edgeInput(topo, topo.Edges[0], FlavorFRR)
	if in.RouterAS != EdgeAS || in.ControllerAS != ControllerAS || !slices.Equal(in.Controllers, []netip.Addr{topo.Ctl4, topo.Ctl6}) ||
		in.MaxPrefixes != DefaultMaxPrefixes || !in.GracefulRestart || !in.Mirror || len(in.Covering) != 2 || in.BMP.IsValid() {
		t.Errorf("edge input %+v", in)
	}
	for _, f := range Flavors {
		if _, err := edge.Render(edgeInput(topo, topo.Edges[0], f)); err != nil {
			t.Errorf("render %s: %v", f, err)
		}
	}
	conf, err := renderEdge(topo, topo.Edges[0], FlavorFRR)
	if err != nil {
		t.Fatal(err)
	}
	static, bgpd := splitFRR(conf)
	if strings.Contains(bgpd, "ip route") || strings.Contains(bgpd, "ipv6 route") || !strings.Contains(bgpd, "router bgp 65000") {
		t.Errorf("bgpd part:\n%s", bgpd)
	}
	if static != "! Covering routes: every VM reaches skm1 until the controller announces a more specific route.\n"+
		"ip route 10.64.0.0/14 10.255.1.2\nipv6 route fd00:64::/48 fd00:255:1::2\n" {
		t.Errorf("staticd part:\n%s", static)
	}
}
