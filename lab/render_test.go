package lab

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover/cutover/internal/golden"
	"github.com/cutover/cutover/internal/testenv"
)

func defaultTopology(t *testing.T, cfg Config) Topology {
	t.Helper()
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	topo, err := newTopology(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// must returns a rendered config, failing t on an error.
func must(t *testing.T) func(string, error) string {
	return func(s string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

func TestRenderFRR(t *testing.T) {
	topo := defaultTopology(t, Config{VMs: DefaultVMs(3)})
	v4only := defaultTopology(t, Config{Name: "v4", VMs: DefaultVMs(3), Covering: []netip.Prefix{
		netip.MustParsePrefix("10.64.0.0/16"), netip.MustParsePrefix("10.80.0.0/16"),
	}})
	for _, tc := range []struct {
		name string
		got  string
	}{
		{"zebra.conf", renderZebra(topo, topo.Edges[0])},
		{"staticd.conf", must(t)(renderStaticd(topo, topo.Edges[0]))},
		{"bgpd.conf", must(t)(renderBgpd(topo, topo.Edges[0]))},
		{"frr.conf", must(t)(renderFRRConf(topo, topo.Edges[0]))},
		{"bgpd-v4only.conf", must(t)(renderBgpd(v4only, v4only.Edges[0]))},
		{"staticd-v4only.conf", must(t)(renderStaticd(v4only, v4only.Edges[0]))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			golden.Check(t, filepath.Join("testdata", "TestRenderFRR_"+tc.name+".golden"), []byte(tc.got))
		})
	}
}

// TestFRRAcceptsConfigs checks the rendered configs with FRR's own parser
// (vtysh --dryrun), which needs neither root nor running daemons.
func TestFRRAcceptsConfigs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs FRR's vtysh: skipped in -short mode")
	}
	testenv.RequireCommand(t, "vtysh")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "vtysh.conf"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	topo := defaultTopology(t, Config{VMs: DefaultVMs(3)})
	for name, body := range map[string]string{
		"zebra.conf": renderZebra(topo, topo.Edges[0]), "staticd.conf": must(t)(renderStaticd(topo, topo.Edges[0])),
		"bgpd.conf": must(t)(renderBgpd(topo, topo.Edges[0])), "frr.conf": must(t)(renderFRRConf(topo, topo.Edges[0])),
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("vtysh", "--config_dir", dir, "--dryrun", "-f", p).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "" {
			t.Errorf("vtysh --dryrun %s: %v\n%s", name, err, out)
		}
	}
	// The check is real: a bad line fails it.
	bad := filepath.Join(dir, "bad.conf")
	os.WriteFile(bad, []byte("router bgp 65000\n neighbor X bogus 1\nexit\n"), 0o644)
	if err := exec.Command("vtysh", "--config_dir", dir, "--dryrun", "-f", bad).Run(); err == nil {
		t.Error("vtysh --dryrun accepted a bad config")
	}
}

func TestConfigValidate(t *testing.T) {
	p := netip.MustParsePrefix
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // "" for no error
	}{
		{"defaults", Config{}, ""},
		{"no VMs", Config{VMs: []netip.Prefix{}}, ""},
		{"v6 VMs", Config{VMs: DefaultVMs6(3)}, ""},
		{"bad name", Config{Name: "-x"}, `lab name "-x": want 1-31 characters of a-z, 0-9, '-' and '_', starting with a letter or digit`},
		{"name with slash", Config{Name: "a/b"}, `lab name "a/b": want 1-31 characters of a-z, 0-9, '-' and '_', starting with a letter or digit`},
		{"a subnet", Config{VMs: []netip.Prefix{p("10.64.0.0/24")}}, ""},
		{"host bits", Config{VMs: []netip.Prefix{p("10.64.0.1/24")}}, "lab config: VM 10.64.0.1/24: host bits set (want 10.64.0.0/24)"},
		{"outside", Config{VMs: []netip.Prefix{p("10.99.0.1/32")}}, "lab config: VM 10.99.0.1/32 is outside the covering ranges [10.64.0.0/14 fd00:64::/48]"},
		{"twice", Config{VMs: []netip.Prefix{p("10.64.0.1/32"), p("10.64.0.1/32")}}, "lab config: VM 10.64.0.1/32: listed twice"},
		{"default covering", Config{Covering: []netip.Prefix{p("0.0.0.0/0")}, VMs: []netip.Prefix{}},
			"lab config: covering range 0.0.0.0/0: a default route cannot be a VM range"},
		{"host bits", Config{Covering: []netip.Prefix{p("10.64.0.1/14")}, VMs: []netip.Prefix{}}, "lab config: covering range 10.64.0.1/14: host bits set (want 10.64.0.0/14)"},
		{"routers inside the VM range", Config{Covering: []netip.Prefix{p("10.255.0.0/16")}, VMs: []netip.Prefix{p("10.255.9.9/32")}}, ""},
		{"VM on a router's address", Config{Covering: []netip.Prefix{p("10.255.0.0/16")}, VMs: []netip.Prefix{p("10.255.1.2/32")}},
			"lab config: VM 10.255.1.2/32 has the address of a site's gateway or an edge router"},
		{"overlapping ranges", Config{Covering: []netip.Prefix{p("10.64.0.0/14"), p("10.64.0.0/16")}, VMs: []netip.Prefix{}},
			"lab config: covering ranges 10.64.0.0/14 and 10.64.0.0/16 overlap"},
		{"too many", Config{VMs: DefaultVMs(1 << 18)},
			"lab config: VM 10.68.0.0/32 is outside the covering ranges [10.64.0.0/14 fd00:64::/48]\nVM 10.68.0.1/32 is outside the covering ranges [10.64.0.0/14 fd00:64::/48]\nVM 10.68.0.2/32 is outside the covering ranges [10.64.0.0/14 fd00:64::/48]\nVM 10.68.0.3/32 is outside the covering ranges [10.64.0.0/14 fd00:64::/48]\nVM 10.68.0.4/32 is outside the covering ranges [10.64.0.0/14 fd00:64::/48]\n5 more VM errors"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			err := cfg.validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("validate:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	cfg := Config{}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Name != "lab" || cfg.Dir != "/run/cutover/lab/lab" || len(cfg.VMs) != 2000 || cfg.FRRDir != "/usr/lib/frr" {
		t.Errorf("defaults: name %q dir %q %d VMs FRR %q", cfg.Name, cfg.Dir, len(cfg.VMs), cfg.FRRDir)
	}
	vms := DefaultVMs(300)
	if vms[0] != netip.MustParsePrefix("10.64.0.10/32") || vms[299] != netip.MustParsePrefix("10.64.1.53/32") {
		t.Errorf("DefaultVMs: first %s last %s", vms[0], vms[299])
	}
	if v6 := DefaultVMs6(2); v6[1] != netip.MustParsePrefix("fd00:64::11/128") {
		t.Errorf("DefaultVMs6: %v", v6)
	}
	topo, err := newTopology(cfg)
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string][2]string{
		"EdgeCtl4":   {topo.EdgeCtl4.String(), "10.255.0.1"},
		"EdgeCtl6":   {topo.EdgeCtl6.String(), "fd00:255::1"},
		"Ctl4":       {topo.Ctl4.String(), "10.255.0.2"},
		"Ctl6":       {topo.Ctl6.String(), "fd00:255::2"},
		"skm1":       {topo.SiteNextHop["skm1"].V4.String() + " " + topo.SiteNextHop["skm1"].V6.String(), "10.255.1.2 fd00:255:1::2"},
		"skm2":       {topo.SiteNextHop["skm2"].V4.String() + " " + topo.SiteNextHop["skm2"].V6.String(), "10.255.2.2 fd00:255:2::2"},
		"hosp":       {topo.HospAddr.String() + " " + topo.HospAddr6.String(), "10.255.3.2 fd00:255:3::2"},
		"router-id":  {topo.EdgeRouterID.String(), "10.255.0.1"},
		"namespace":  {NamespaceName("lab", NodeEdge), "cutover-lab-edge"},
		"link skm2":  {topo.Links[2].A.String() + " " + topo.Links[2].B.String(), "edge:skm2 skm2:edge"},
		"route hosp": {topo.Routes[NodeHosp][0].Dst.String() + " via " + topo.Routes[NodeHosp][0].Via.String(), "0.0.0.0/0 via 10.255.3.1"},
		"baseline":   {topo.BaselineSite, "skm1"},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %s, want %s", name, c[0], c[1])
		}
	}
	if topo.EdgeAS != 65000 || topo.ControllerAS != 65100 {
		t.Errorf("ASNs %d %d", topo.EdgeAS, topo.ControllerAS)
	}
}

func TestParseNeighbors(t *testing.T) {
	// Captured from FRR 8.4.4 with the test speaker established on v4.
	b, err := os.ReadFile("testdata/neighbors.json")
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseNeighbors(NodeEdge, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d sessions, want 2", len(got))
	}
	s := got[0]
	if s.Peer.String() != "10.255.0.2" || s.RemoteAS != 65100 || !s.Established() || s.Uptime != "00:00:01" ||
		s.Received["ipv4Unicast"] != 4 || s.Received["ipv6Unicast"] != 1 || s.Sent["ipv4Unicast"] != 4 {
		t.Errorf("session 0: %+v", s)
	}
	if got[1].Peer.String() != "fd00:255::2" || got[1].Established() || got[1].Uptime != "" {
		t.Errorf("session 1: %+v", got[1])
	}
	if _, err := parseNeighbors(NodeEdge, []byte("% Unknown command")); err == nil {
		t.Error("parseNeighbors accepted garbage")
	}
}
