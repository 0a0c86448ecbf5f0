package lab

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cutover/cutover/bgp"
	"github.com/cutover/cutover/cutover/plan"
	"github.com/cutover/cutover/internal/testenv"
)

func configOf(t *testing.T, fallback string, runbooks ...string) Config {
	t.Helper()
	var books []Book
	for _, p := range runbooks {
		pl, _, err := plan.Load(p)
		if err != nil {
			t.Fatal(err)
		}
		books = append(books, Book{Runbook: pl.Runbook, Inventory: pl.Inventory})
	}
	cfg, err := ConfigFor("t", fallback, books...)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

const threeSites = "rehearse/testdata/three-sites/runbook.yaml"

// TestTopologyOfThreeSites builds the lab of a runbook unlike the
// examples: three sites (one named like a lab node, one too long for an
// interface name), two edges of different ASes (the second over IPv6
// only), IPv4 and IPv6 VMs.
func TestTopologyOfThreeSites(t *testing.T) {
	cfg := configOf(t, "", threeSites)
	topo, err := NewTopology(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := topo.Nodes(), []string{"edge", "edge2", "nord", "site2", "site3", "hosp", "ctl"}; !slices.Equal(got, want) {
		// Sites: move.from, move.to, then the rest.
		t.Errorf("nodes %v, want %v", got, want)
	}
	a := netip.MustParseAddr
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"site order", topo.Sites[1].Name + " " + topo.Sites[2].Name, "tromso_reserve_hall ctl"},
		{"baseline", topo.BaselineSite, "nord"},
		{"edge AS", topo.EdgeAS, 64600},
		{"edge2 AS (iBGP)", topo.Edges[1].AS, 64512},
		{"edge session", topo.Edges[0].Sessions[0].Edge.String() + " from " + topo.Edges[0].Sessions[0].Ctl.String(), "172.20.0.1 from 172.20.0.2"},
		{"edge2 session", topo.Edges[1].Sessions[0].Edge.String() + " from " + topo.Edges[1].Sessions[0].Ctl.String(), "2001:db8:20::1 from 2001:db8:20::2"},
		{"edge2 sessions", len(topo.Edges[1].Sessions), 1},
		{"edge2 timers", topo.Edges[1].Keepalive*100 + topo.Edges[1].HoldTime, 412},
		{"VMs", len(topo.VMs), 27},
		{"bridges", len(topo.Bridges), 3},
	} {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	// Each site's gateway is on one segment with both edges.
	br := topo.Bridges[1]
	if br.Node != "site2" || !slices.Equal(br.Addrs, []netip.Prefix{netip.MustParsePrefix("172.21.3.1/29"), netip.MustParsePrefix("2001:db8:21:3::1/64")}) {
		t.Errorf("bridge of tromso_reserve_hall: %+v", br)
	}
	l2, ok := topo.LinkOf("edge2", "site2")
	if !ok || l2.B.Bridge != siteBridge || !slices.Contains(l2.A.Addrs, netip.MustParsePrefix("172.21.3.3/29")) {
		t.Errorf("edge2's link to site2: %+v", l2)
	}
	// The edge reached over IPv6 still gets an IPv4 router-id of the lab's own.
	if id := topo.Edges[1].RouterID; !id.Is4() || !id.IsValid() {
		t.Errorf("edge2 router-id %s", id)
	}
	if topo.SiteNextHop["site2"].V4 != a("172.21.3.1") {
		t.Errorf("next-hops %v", topo.SiteNextHop)
	}
	if !slices.Equal(cfg.HTTPPorts, []uint16{22, 80, 8080}) || !slices.Equal(cfg.TLSPorts, []uint16{443}) {
		t.Errorf("ports: http %v tls %v", cfg.HTTPPorts, cfg.TLSPorts)
	}
	// No two links share a subnet.
	var subs []netip.Prefix
	for _, l := range topo.Links {
		for _, p := range append(slices.Clone(l.A.Addrs), l.B.Addrs...) {
			subs = append(subs, p.Masked())
		}
	}
	for _, b := range topo.Bridges {
		for _, p := range b.Addrs {
			subs = append(subs, p.Masked())
		}
	}
	slices.SortFunc(subs, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	subs = slices.Compact(subs)
	for i := range subs {
		for j := i + 1; j < len(subs); j++ {
			if subs[i].Overlaps(subs[j]) {
				t.Errorf("subnets %s and %s overlap", subs[i], subs[j])
			}
		}
		for _, c := range topo.Covering {
			if c.Overlaps(subs[i]) {
				t.Errorf("link subnet %s overlaps the VM range %s", subs[i], c)
			}
		}
	}
}

// TestTopologyOfExamples builds the lab of every example runbook and of
// both chained drills.
func TestTopologyOfExamples(t *testing.T) {
	root := "../runbooks"
	for _, tc := range []struct {
		name     string
		runbooks []string
		edges    []string
		sites    []string
		baseline string
	}{
		{"helse-nord", []string{"helse-nord/runbook.yaml"}, []string{"edge"}, []string{"skm1", "skm2"}, "skm1"},
		{"drain out", []string{"drain-upgrade/out.yaml"}, []string{"edge", "edge2"}, []string{"skm1", "tmp"}, "skm1"},
		{"drain back", []string{"drain-upgrade/back.yaml"}, []string{"edge", "edge2"}, []string{"tmp", "skm1"}, "skm1"},
		{"drain chain", []string{"drain-upgrade/out.yaml", "drain-upgrade/back.yaml"}, []string{"edge", "edge2"}, []string{"skm1", "tmp"}, "skm1"},
		{"dr chain", []string{"dr-drill/failover.yaml", "dr-drill/failback.yaml"}, []string{"edge", "edge2"}, []string{"skm1", "dr"}, "skm1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var paths []string
			for _, p := range tc.runbooks {
				paths = append(paths, filepath.Join(root, p))
			}
			topo, err := NewTopology(configOf(t, "", paths...))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(topo.EdgeNodes(), tc.edges) || !slices.Equal(topo.SiteNodes(), tc.sites) || topo.BaselineSite != tc.baseline {
				t.Errorf("edges %v sites %v baseline %s; want %v %v %s", topo.EdgeNodes(), topo.SiteNodes(), topo.BaselineSite, tc.edges, tc.sites, tc.baseline)
			}
			// The runbook's addresses are the lab's.
			if tc.name == "dr chain" {
				if s := topo.Edges[1].Sessions; len(s) != 1 || s[0].Edge != netip.MustParseAddr("10.255.0.5") || s[0].Ctl != netip.MustParseAddr("10.255.0.6") {
					t.Errorf("second edge's sessions %+v", s)
				}
			}
		})
	}
}

func TestShapeErrors(t *testing.T) {
	a := netip.MustParseAddr
	base := func() Shape { return DefaultShape() }
	for _, tc := range []struct {
		name string
		edit func(*Shape)
		want string
	}{
		{"one site", func(s *Shape) { s.Sites = s.Sites[:1] }, "lab shape: 1 sites: a lab needs at least two"},
		{"no edge", func(s *Shape) { s.Edges = nil }, "lab shape: no edge router: the controller needs a peer"},
		{"link-local peer", func(s *Shape) { s.Edges[0].Addrs = []netip.Addr{a("fe80::1")} },
			"lab shape: edge fe80::1: the lab needs a unicast, global or private address (no link-local, no zone)"},
		{"fallback unknown", func(s *Shape) { s.Fallback = "x" }, `lab shape: fallback "x": not a site of the lab`},
		{"no next-hop", func(s *Shape) { s.Sites[1].NextHop = NextHop{} }, "lab shape: site skm2 has no next-hop"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := base()
			tc.edit(&s)
			err := validateShape(s)
			if err == nil || err.Error() != tc.want {
				t.Errorf("got  %v\nwant %s", err, tc.want)
			}
		})
	}
	// Addresses too close for a subnet each (a transit network holding the
	// gateways): the links become point to point, the gateway's address
	// kept, the edge's from the lab's own ranges as its peer.
	s := base()
	s.Sites[1].NextHop.V4 = a("10.255.1.3")
	topo, err := NewTopology(Config{Shape: &s, VMs: DefaultVMs(2)})
	if err != nil {
		t.Fatal(err)
	}
	l, _ := topo.Link("skm1")
	if l.B.Addrs[0] != netip.MustParsePrefix("10.255.1.2/32") || l.B.Peer(0) != l.A.Addrs[0].Addr() || l.A.Peer(0) != a("10.255.1.2") {
		t.Errorf("skm1 link, close to skm2's gateway: %+v", l)
	}
	if len(topo.Bridges) != 0 {
		t.Errorf("bridges %v with one edge", topo.Bridges)
	}
	// /31 is used where a /30 would hold another lab address.
	s = base()
	s.Sites[0].NextHop.V4, s.Sites[1].NextHop.V4 = a("10.255.1.1"), a("10.255.1.2")
	topo, err = NewTopology(Config{Shape: &s, VMs: DefaultVMs(2)})
	if err != nil {
		t.Fatal(err)
	}
	if l, _ := topo.Link("skm1"); l.A.Addrs[0] != netip.MustParsePrefix("10.255.1.0/31") {
		t.Errorf("skm1 link %v, want 10.255.1.0/31 on the edge", l.A.Addrs)
	}
}

// TestTopologyInsideVMRanges: a network that numbers its routers from the
// same ranges as its VMs (allowed_prefixes holding the next-hops and the
// peers): the links keep the runbook's addresses, hold no VM, and the
// lab's own links stay out of the VM ranges.
func TestTopologyInsideVMRanges(t *testing.T) {
	p := netip.MustParsePrefix
	sh := DefaultShape()
	covering := []netip.Prefix{p("10.255.0.0/16"), p("fd00:255::/32")}
	vms := []netip.Prefix{p("10.255.1.1/32"), p("10.255.3.7/32"), p("fd00:255:1::1/128")}
	topo, err := NewTopology(Config{Shape: &sh, Covering: covering, VMs: vms})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range topo.Links {
		for _, a := range append(slices.Clone(l.A.Addrs), l.B.Addrs...) {
			for _, vm := range vms {
				if a.Masked().Contains(vm.Addr()) {
					t.Errorf("link %s-%s subnet %s holds VM %s", l.A, l.B, a.Masked(), vm)
				}
			}
			if (l.B.Node == NodeHosp) && slices.ContainsFunc(covering, func(c netip.Prefix) bool { return c.Overlaps(a) }) {
				t.Errorf("the lab's own link %s-%s uses %s inside a VM range", l.A, l.B, a)
			}
		}
	}
	// skm1's gateway keeps 10.255.1.2; the edge takes the /31's other half,
	// since the /30 would hold the VM 10.255.1.1.
	if l, _ := topo.Link(NodeSKM1); l.A.Addrs[0] != p("10.255.1.3/31") || l.B.Addrs[0] != p("10.255.1.2/31") {
		t.Errorf("skm1 link %v - %v", l.A.Addrs, l.B.Addrs)
	}
}

func TestShapeOfObservedIBGP(t *testing.T) {
	pl, _, err := plan.Load(threeSites)
	if err != nil {
		t.Fatal(err)
	}
	rb := *pl.Runbook
	rb.BGP.Peers = slices.Clone(rb.BGP.Peers)
	rb.BGP.Peers[1].Observe = bgp.ProofMirror
	_, err = ShapeOf(&rb, "")
	want := "runbook three-sites: peer 2001:db8:20::1 is iBGP (AS 64512, the controller's) and observed by the bgp gate, but a router sends a peer's routes back to no iBGP peer, so the gate could never see its view: set observe: bmp (or false) for it to rehearse"
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
}

func TestShapeOfAnnounceSourceNeedsFallback(t *testing.T) {
	pl, _, err := plan.Load("../runbooks/drain-upgrade/back.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rb := *pl.Runbook
	rb.Fallback = ""
	_, err = ShapeOf(&rb, "")
	want := "runbook return-tmp-to-skm1 announces its source (bgp.announce_source: true) and names no fallback site: the lab cannot tell where the network's own routes lead; write `fallback: SITE` in the runbook (or pass --fallback SITE)"
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
	if sh, err := ShapeOf(&rb, "skm1"); err != nil || sh.Fallback != "skm1" {
		t.Errorf("--fallback skm1: %v %v", sh.Fallback, err)
	}
}

// TestFRRAcceptsEdgeConfigs checks every edge's config of the three-site
// lab with FRR's own parser.
func TestFRRAcceptsEdgeConfigs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs FRR's vtysh: skipped in -short mode")
	}
	testenv.RequireCommand(t, "vtysh")
	topo, err := NewTopology(configOf(t, "", threeSites))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "vtysh.conf"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, e := range topo.Edges {
		conf := must(t)(renderFRRConf(topo, e))
		p := filepath.Join(dir, e.Node+".conf")
		if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("vtysh", "--config_dir", dir, "--dryrun", "-f", p).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "" {
			t.Errorf("vtysh --dryrun %s: %v\n%s", e.Node, err, out)
		}
		for _, s := range e.Sessions {
			if !strings.Contains(conf, " neighbor "+s.Ctl.String()+" peer-group CONTROLLER\n") {
				t.Errorf("%s: no neighbor %s", e.Node, s.Ctl)
			}
		}
		if !strings.Contains(conf, "router bgp "+fmt.Sprint(e.AS)+"\n") {
			t.Errorf("%s: not AS %d", e.Node, e.AS)
		}
	}
}

// TestUpThreeSites brings the three-site lab up for real: both edges hold
// the covering routes via the fallback site, hosp reaches IPv4 and IPv6
// VMs there through the first edge, and the second edge reaches every
// site's gateway over the site's shared segment.
func TestUpThreeSites(t *testing.T) {
	testenv.RequireFRR(t)
	cfg := configOf(t, "", threeSites)
	cfg.Name = testName()
	log := zerolog.New(zerolog.NewTestWriter(t))
	var daemons []Daemon
	t.Cleanup(func() {
		if err := Down(context.Background(), cfg.Name, log); err != nil {
			t.Errorf("Down: %v", err)
		}
		assertGone(t, cfg.Name, daemons)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l, err := Up(ctx, cfg, log)
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	daemons = l.Daemons()
	ctx, cancel = context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	topo := l.Topology()
	nord := topo.SiteNextHop["nord"]
	for _, e := range topo.EdgeNodes() {
		fib, err := l.EdgeFIBOf(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range topo.Covering {
			if got := fib[c]; got != nord.For(c.Addr()) {
				t.Errorf("%s FIB %s via %v, want via nord %s", e, c, got, nord.For(c.Addr()))
			}
		}
	}
	// 10.90.8.21 is inside the VM that is a subnet, 10.90.8.16/28.
	for _, vm := range []string{"10.90.0.10", "2001:db8:90::a", "2001:db8:90::99", "10.90.9.9", "10.90.8.16", "10.90.8.21"} {
		body, err := l.HTTPGet(ctx, NodeHosp, netip.MustParseAddr(vm), HTTPPort)
		if err != nil || body != "nord\n" {
			t.Errorf("GET %s from hosp = %q, %v; want \"nord\\n\"", vm, body, err)
		}
	}
	for _, s := range topo.Sites {
		for _, gw := range []netip.Addr{s.NextHop.V4, s.NextHop.V6} {
			c, err := l.DialContext(ctx, "edge2", "tcp", netip.AddrPortFrom(gw, HTTPPort).String())
			if err != nil {
				t.Errorf("edge2 → %s gateway %s: %v", s.Name, gw, err)
				continue
			}
			c.Close()
		}
	}
	st, err := l.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Problems) > 0 || len(st.Nodes) != 7 {
		t.Errorf("status: %d nodes, problems %v", len(st.Nodes), st.Problems)
	}
}

// TestTopologyRandomShapes builds many random shapes — 2 to 6 sites and 1
// to 4 edges, addresses drawn close together from a few ranges so that
// they collide often, IPv4 and IPv6, VMs inside and around the routers —
// and checks every topology the lab accepts: the shape's addresses are
// kept, no two link subnets overlap, no link subnet holds a VM, the lab's
// own links stay out of the VM ranges, every edge has an IPv4 router-id
// and a session per address, and every node has its routes. What the lab
// refuses it must refuse with an error, never a panic.
func TestTopologyRandomShapes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	v4 := func() netip.Addr {
		return netip.AddrFrom4([4]byte{10, byte(250 + rng.IntN(6)), byte(rng.IntN(4)), byte(rng.IntN(16))})
	}
	v6 := func() netip.Addr {
		b := netip.MustParseAddr("fd00:255::").As16()
		b[5], b[15] = byte(rng.IntN(4)), byte(rng.IntN(16))
		return netip.AddrFrom16(b)
	}
	shapes := 400
	if testing.Short() {
		shapes = 150
	}
	built, refused := 0, 0
	for n := range shapes {
		sh := Shape{ControllerAS: 65100, Fallback: "s0"}
		for i := range 2 + rng.IntN(5) {
			nh := NextHop{V4: v4(), V6: v6()}
			k := rng.IntN(4)
			if i == 0 {
				k = 3 // the fallback s0 routes both families
			}
			switch k {
			case 0:
				nh.V6 = netip.Addr{}
			case 1:
				nh.V4 = netip.Addr{}
			}
			sh.Sites = append(sh.Sites, SiteSpec{Name: fmt.Sprintf("s%d", i), NextHop: nh})
		}
		for range 1 + rng.IntN(4) {
			e := EdgeSpec{AS: uint32(65000 + rng.IntN(3)*100)}
			switch rng.IntN(3) {
			case 0:
				e.Addrs = []netip.Addr{v4()}
			case 1:
				e.Addrs = []netip.Addr{v6()}
			default:
				e.Addrs = []netip.Addr{v4(), v6()}
			}
			sh.Edges = append(sh.Edges, e)
		}
		covering := []netip.Prefix{netip.MustParsePrefix("10.248.0.0/13"), netip.MustParsePrefix("fd00:255::/32")}
		vms := []netip.Prefix{}
		for range rng.IntN(30) {
			a := v4()
			if rng.IntN(2) == 0 {
				a = v6()
			}
			if !slices.Contains(shapeAddrs(sh), a) {
				vms = append(vms, netip.PrefixFrom(a, a.BitLen()))
			}
		}
		slices.SortFunc(vms, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
		vms = slices.Compact(vms)
		topo, err := NewTopology(Config{Name: "r", Shape: &sh, Covering: covering, VMs: vms})
		if err != nil {
			if refused < 8 {
				t.Logf("refused: %v", err)
			}
			refused++
			continue
		}
		built++
		checkTopology(t, n, sh, topo)
	}
	t.Logf("%d shapes built, %d refused with a reason", built, refused)
	if built < shapes/2 {
		t.Errorf("only %d of %d random shapes built: the allocator gives up too easily", built, shapes)
	}
}

func checkTopology(t *testing.T, n int, sh Shape, topo Topology) {
	t.Helper()
	fail := func(format string, a ...any) { t.Errorf("shape %d: "+format, append([]any{n}, a...)...) }
	var subs []netip.Prefix
	have := map[netip.Addr]bool{}
	add := func(ps []netip.Prefix) {
		for _, p := range ps {
			subs = append(subs, p.Masked())
			have[p.Addr()] = true
		}
	}
	for _, l := range topo.Links {
		add(l.A.Addrs)
		add(l.B.Addrs)
	}
	for _, b := range topo.Bridges {
		add(b.Addrs)
	}
	for _, a := range shapeAddrs(sh) {
		if !have[a] {
			fail("the shape's address %s is on no link", a)
		}
	}
	subs = slices.Compact(func() []netip.Prefix {
		slices.SortFunc(subs, func(a, b netip.Prefix) int {
			if c := a.Addr().Compare(b.Addr()); c != 0 {
				return c
			}
			return a.Bits() - b.Bits()
		})
		return subs
	}())
	for i := range subs {
		for j := i + 1; j < len(subs); j++ {
			if subs[i].Overlaps(subs[j]) {
				fail("subnets %s and %s overlap", subs[i], subs[j])
			}
		}
		for _, vm := range topo.VMs {
			if subs[i].Overlaps(vm) {
				fail("subnet %s holds VM %s", subs[i], vm)
			}
		}
	}
	for _, l := range topo.Links {
		if l.B.Node != NodeHosp {
			continue
		}
		for _, p := range l.A.Addrs {
			for _, c := range topo.Covering {
				if c.Overlaps(p) {
					fail("the lab's own link %s-%s is inside the VM range %s", l.A, l.B, c)
				}
			}
		}
	}
	for i, e := range topo.Edges {
		if !e.RouterID.Is4() {
			fail("%s has router-id %s", e.Node, e.RouterID)
		}
		if len(e.Sessions) != len(sh.Edges[i].Addrs) {
			fail("%s has %d sessions for %d addresses", e.Node, len(e.Sessions), len(sh.Edges[i].Addrs))
		}
	}
	for _, node := range topo.Nodes() {
		if !topo.IsEdge(node) && len(topo.Routes[node]) == 0 {
			fail("node %s has no routes", node)
		}
	}
}
