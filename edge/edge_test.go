package edge

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/cutover/runbook"
	"github.com/cutover/cutover/internal/golden"
)

var (
	addr   = netip.MustParseAddr
	prefix = netip.MustParsePrefix
)

// labInput is the edge of the default lab (lab/frr.go), as the lab will
// render it with this package.
func labInput(flavor string) Input {
	return Input{
		Flavor:          flavor,
		About:           `cutover lab "lab", the edge`,
		RouterAS:        65000,
		RouterID:        addr("10.255.0.1"),
		ControllerAS:    65100,
		Controllers:     []netip.Addr{addr("10.255.0.2"), addr("fd00:255::2")},
		HoldTime:        9 * time.Second,
		Keepalive:       3 * time.Second,
		Allowed:         []netip.Prefix{prefix("10.64.0.0/14"), prefix("fd00:64::/48")},
		MaxPrefixes:     100000,
		GracefulRestart: true,
		RestartTime:     120 * time.Second,
		LongLivedStale:  time.Hour,
		Mirror:          true,
		Covering: []Covering{
			{Prefix: prefix("10.64.0.0/14"), NextHop: addr("10.255.1.2"), Via: "skm1"},
			{Prefix: prefix("fd00:64::/48"), NextHop: addr("fd00:255:1::2"), Via: "skm1"},
		},
	}
}

// v6Input is an edge over IPv6 transport with MD5, a port of its own, a
// prefix limit and a BMP station, not observed (no mirror).
func v6Input(flavor string) Input {
	return Input{
		Flavor:          flavor,
		About:           "runbook drain-skm1-to-tmp (runbooks/drain-upgrade/out.yaml), peer fd00:255::1 AS 65000",
		RouterAS:        65000,
		RouterID:        addr("10.255.0.1"),
		ControllerAS:    65100,
		Controllers:     []netip.Addr{addr("fd00:255::2")},
		Port:            1179,
		HoldTime:        90 * time.Second,
		Keepalive:       30 * time.Second,
		Password:        "s3cret-MD5",
		Allowed:         []netip.Prefix{prefix("10.66.0.0/16"), prefix("10.67.0.0/16"), prefix("fd00:66::/48")},
		MaxPrefixes:     600,
		GracefulRestart: true,
		RestartTime:     120 * time.Second,
		LongLivedStale:  time.Hour,
		BMP:             netip.MustParseAddrPort("192.0.2.10:5000"),
	}
}

var inputs = []struct {
	name string
	in   func(string) Input
}{{"lab", labInput}, {"v6-md5-bmp", v6Input}}

func render(t *testing.T, in Input) string {
	t.Helper()
	out, err := Render(in)
	if err != nil {
		t.Fatalf("Render %s: %v", in.Flavor, err)
	}
	return out
}

func TestRenderGolden(t *testing.T) {
	for _, f := range Flavors {
		for _, tc := range inputs {
			t.Run(f+"/"+tc.name, func(t *testing.T) {
				golden.Check(t, filepath.Join("testdata", f+"-"+tc.name+".golden"), []byte(render(t, tc.in(f))))
			})
		}
	}
}

// TestFRRMatchesLab compares the FRR output for the lab's edge with what
// lab/frr.go renders today (its golden frr.conf) from the covering
// routes on; the only differences are the prefix limit, which the lab
// does not set, and the neighbor description.
func TestFRRMatchesLab(t *testing.T) {
	lab, err := os.ReadFile("../lab/testdata/TestRenderFRR_frr.conf.golden")
	if err != nil {
		t.Skipf("the lab's golden file: %v", err)
	}
	from := func(s string) []string {
		lines := strings.Split(s, "\n")
		i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "! Covering routes") })
		if i < 0 {
			t.Fatalf("no covering routes in\n%s", s)
		}
		return lines[i:]
	}
	want := from(strings.ReplaceAll(string(lab), "description cutover controller in ctl", "description cutover controller"))
	// The lab's prefix limit without a runbook: lab.DefaultMaxPrefixes.
	in := labInput("frr")
	in.MaxPrefixes = 500000
	got := from(render(t, in))
	if d := golden.Diff(strings.Join(want, "\n"), strings.Join(got, "\n")); d != "" {
		t.Errorf("FRR output differs from the lab's:\n%s", d)
	}
}

func TestRenderErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Input)
		want string
	}{
		{"bad flavor", func(in *Input) { in.Flavor = "cisco" }, `edge: flavor "cisco": want frr, bird, gobgp, junos or eos`},
		{"no controller", func(in *Input) { in.Controllers = nil }, "edge: frr: no controller address: the edge must know whom to peer with"},
		{"controller twice", func(in *Input) { in.Controllers = append(in.Controllers, in.Controllers[0]) }, "edge: frr: controller address 10.255.0.2: listed twice"},
		{"no allowed", func(in *Input) { in.Allowed = nil }, "edge: frr: no allowed prefixes: the edge would accept nothing from the controller"},
		{"host bits", func(in *Input) { in.Allowed = []netip.Prefix{prefix("10.64.0.1/14")} },
			"edge: frr: allowed prefix 10.64.0.1/14: want a range without host bits, not a default route"},
		{"no limit", func(in *Input) { in.MaxPrefixes = 0 }, "edge: frr: max prefixes 0: want at least 1"},
		{"no AS", func(in *Input) { in.RouterAS, in.ControllerAS = 0, 0 },
			"edge: frr: router AS: want the edge's AS, not 0\ncontroller AS: want the controller's AS (bgp.local_as), not 0"},
		{"v6 router-id", func(in *Input) { in.RouterID = addr("fd00::1") }, "edge: frr: router-id fd00::1: want an IPv4 address"},
		{"keepalive", func(in *Input) { in.Keepalive = 9 * time.Second }, "edge: frr: keepalive 9s: want at least 1s and less than the hold time 9s"},
		{"keepalive without hold", func(in *Input) { in.HoldTime = 0 }, "edge: frr: keepalive 3s with hold time 0: a hold time of 0 turns keepalives off"},
		{"restart time", func(in *Input) { in.RestartTime = 0 }, "edge: frr: restart time 0s: want whole seconds from 1s to 4095s"},
		{"password space", func(in *Input) { in.Password = "two words" },
			`edge: frr: password: contains ' ': want printable ASCII without spaces, quotes or any of \#!;{} (the routers' config syntax)`},
		{"password quote", func(in *Input) { in.Password = `a"b` },
			`edge: frr: password: contains '"': want printable ASCII without spaces, quotes or any of \#!;{} (the routers' config syntax)`},
		{"BMP without port", func(in *Input) { in.BMP = netip.AddrPortFrom(addr("192.0.2.10"), 0) }, "edge: frr: BMP station 192.0.2.10:0: want a port"},
		{"covering family", func(in *Input) { in.Covering[0].NextHop = addr("fd00::1") },
			"edge: frr: covering route 10.64.0.0/14 via fd00::1: want a prefix and a next-hop of its family"},
		{"gobgp without router-id", func(in *Input) { in.Flavor, in.RouterID = "gobgp", netip.Addr{} },
			"edge: gobgp: gobgpd needs the edge's router-id (global.config.router-id), and it is not known: give it (an IPv6 peer's address cannot be one)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := labInput("frr")
			tc.edit(&in)
			_, err := Render(in)
			if err == nil || err.Error() != tc.want {
				t.Errorf("got  %v\nwant %s", err, tc.want)
			}
		})
	}
}

// TestRenderWithoutRouterID: every flavour but gobgp leaves the edge's
// own router-id alone when it is not known.
func TestRenderWithoutRouterID(t *testing.T) {
	for _, f := range Flavors {
		in := v6Input(f)
		in.RouterID = netip.Addr{}
		out, err := Render(in)
		if f == "gobgp" {
			if err == nil {
				t.Errorf("gobgp rendered without a router-id:\n%s", out)
			}
			continue
		}
		if err != nil || strings.Contains(out, "10.255.0.1") {
			t.Errorf("%s: %v\n%s", f, err, out)
		}
	}
}

// TestRenderIBGP: over iBGP nothing can mirror, and FRR says so.
func TestRenderIBGP(t *testing.T) {
	in := labInput("frr")
	in.RouterAS = in.ControllerAS
	out := render(t, in)
	if strings.Contains(out, "attribute-unchanged") || !strings.Contains(out, "! iBGP: the edge sends a peer's routes back to nobody of its AS") ||
		!strings.Contains(out, "route-map CONTROLLER-OUT deny 100") || strings.Contains(out, "route-map CONTROLLER-OUT permit") {
		t.Errorf("iBGP config mirrors:\n%s", out)
	}
}

func TestRenderNoGracefulRestart(t *testing.T) {
	for _, f := range Flavors {
		in := labInput(f)
		in.GracefulRestart, in.RestartTime, in.LongLivedStale = false, 0, 0
		out := render(t, in)
		if !strings.Contains(out, "Graceful restart is off in the runbook") || strings.Contains(out, "long-lived") || strings.Contains(out, "long lived") {
			t.Errorf("%s:\n%s", f, out)
		}
	}
}

func loadRunbook(t *testing.T) *runbook.Runbook {
	t.Helper()
	rb, _, err := runbook.LoadRunbook("../runbooks/drain-upgrade/out.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return rb
}

func TestFromRunbook(t *testing.T) {
	rb := loadRunbook(t)
	ctl := []netip.Addr{addr("10.255.0.2"), addr("fd00:255::2")}
	in, err := FromRunbook(rb, addr("10.255.0.1"), ctl, "frr")
	if err != nil {
		t.Fatal(err)
	}
	want := Input{
		Flavor: "frr", About: "runbook drain-skm1-to-tmp (../runbooks/drain-upgrade/out.yaml), peer 10.255.0.1 AS 65000",
		RouterAS: 65000, RouterID: addr("10.255.0.1"), ControllerAS: 65100, Controllers: ctl[:1], Port: 179,
		HoldTime: 9 * time.Second, Keepalive: 3 * time.Second, Allowed: []netip.Prefix{prefix("10.66.0.0/16"), prefix("fd00:66::/48")},
		MaxPrefixes: 600, GracefulRestart: true, RestartTime: 120 * time.Second, LongLivedStale: time.Hour,
		BMP: netip.MustParseAddrPort("10.255.0.2:11019"),
	}
	if !equalInput(in, want) {
		t.Errorf("got  %+v\nwant %+v", in, want)
	}
	// The IPv6 peer: its own family's controller, no router-id, not
	// observed so no mirror.
	in, err = FromRunbook(rb, addr("fd00:255::1"), ctl, "bird")
	if err != nil {
		t.Fatal(err)
	}
	if in.RouterID.IsValid() || in.Mirror || !slices.Equal(in.Controllers, ctl[1:]) {
		t.Errorf("IPv6 peer: %+v", in)
	}
}

func equalInput(a, b Input) bool {
	return slices.Equal(a.Controllers, b.Controllers) && slices.Equal(a.Allowed, b.Allowed) &&
		a.Flavor == b.Flavor && a.About == b.About && a.RouterAS == b.RouterAS && a.RouterID == b.RouterID &&
		a.ControllerAS == b.ControllerAS && a.Port == b.Port && a.HoldTime == b.HoldTime && a.Keepalive == b.Keepalive &&
		a.Password == b.Password && a.MaxPrefixes == b.MaxPrefixes && a.GracefulRestart == b.GracefulRestart &&
		a.RestartTime == b.RestartTime && a.LongLivedStale == b.LongLivedStale && a.Mirror == b.Mirror &&
		a.BMP == b.BMP && len(a.Covering) == len(b.Covering)
}

func TestFromRunbookErrors(t *testing.T) {
	rb := loadRunbook(t)
	for _, tc := range []struct {
		name string
		peer netip.Addr
		ctl  []netip.Addr
		env  string
		want string
	}{
		{"no such peer", addr("10.9.9.9"), []netip.Addr{addr("10.255.0.2")}, "",
			"runbook drain-skm1-to-tmp has no peer 10.9.9.9 (peers: 10.255.0.1, fd00:255::1)"},
		{"no IPv6 controller", addr("fd00:255::1"), []netip.Addr{addr("10.255.0.2")}, "",
			"peer fd00:255::1 is IPv6, but no controller address is: name the controller's IPv6 address this edge peers with"},
		{"no IPv4 controller", addr("10.255.0.1"), nil, "",
			"peer 10.255.0.1 is IPv4, but no controller address is: name the controller's IPv4 address this edge peers with"},
		{"password env unset", addr("10.255.0.1"), []netip.Addr{addr("10.255.0.2")}, "CUTOVER_EDGE_TEST_UNSET",
			"runbook drain-skm1-to-tmp: peer 10.255.0.1 takes its password from $CUTOVER_EDGE_TEST_UNSET, which is not set here: the edge needs the same password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rb := *rb
			rb.BGP.Peers = slices.Clone(rb.BGP.Peers)
			rb.BGP.Peers[0].PasswordEnv = tc.env
			_, err := FromRunbook(&rb, tc.peer, tc.ctl, "frr")
			if err == nil || err.Error() != tc.want {
				t.Errorf("got  %v\nwant %s", err, tc.want)
			}
		})
	}
}

func TestFromRunbookPasswordEnv(t *testing.T) {
	rb := loadRunbook(t)
	rb.BGP.Peers = slices.Clone(rb.BGP.Peers)
	rb.BGP.Peers[0].PasswordEnv = "CUTOVER_EDGE_TEST_MD5"
	t.Setenv("CUTOVER_EDGE_TEST_MD5", "from-env")
	in, err := FromRunbook(rb, addr("10.255.0.1"), []netip.Addr{addr("10.255.0.2")}, "eos")
	if err != nil || in.Password != "from-env" {
		t.Fatalf("%v, password %q", err, in.Password)
	}
}
