package edge

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/osrg/gobgp/v3/pkg/config/oc"
)

// The rendered configs are checked by the routers' own parsers where this
// machine has them: vtysh --dryrun (FRR), bird -p (BIRD), and gobgpd's
// config package (always) plus gobgpd --dry-run (when installed).

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func requireCommand(t *testing.T, name string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("runs %s: skipped in -short mode", name)
	}
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s is not installed: the check needs it", name)
	}
}

func TestFRRAcceptsConfigs(t *testing.T) {
	requireCommand(t, "vtysh")
	dir := t.TempDir()
	writeFile(t, dir, "vtysh.conf", "")
	for _, tc := range inputs {
		p := writeFile(t, dir, tc.name+".conf", render(t, tc.in("frr")))
		out, err := exec.Command("vtysh", "--config_dir", dir, "--dryrun", "-f", p).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "" {
			t.Errorf("vtysh --dryrun %s: %v\n%s", tc.name, err, out)
		}
	}
	// The check is real: a bad line fails it.
	bad := writeFile(t, dir, "bad.conf", "router bgp 65000\n neighbor X bogus 1\nexit\n")
	if err := exec.Command("vtysh", "--config_dir", dir, "--dryrun", "-f", bad).Run(); err == nil {
		t.Error("vtysh --dryrun accepted a bad config")
	}
}

// TestBIRDAcceptsConfigs includes the fragment from a minimal bird.conf,
// as an operator would.
func TestBIRDAcceptsConfigs(t *testing.T) {
	requireCommand(t, "bird")
	dir := t.TempDir()
	check := func(name, frag string) error {
		f := writeFile(t, dir, name+".frag", frag)
		main := writeFile(t, dir, name+".conf", fmt.Sprintf("router id 10.255.0.1;\nprotocol device {}\ninclude %q;\n", f))
		out, err := exec.Command("bird", "-p", "-c", main).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	for _, tc := range inputs {
		if err := check(tc.name, render(t, tc.in("bird"))); err != nil {
			t.Errorf("bird -p %s: %v", tc.name, err)
		}
	}
	if err := check("bad", "protocol bgp x { bogus 1; }\n"); err == nil {
		t.Error("bird -p accepted a bad config")
	}
}

// TestGoBGPAcceptsConfigs reads the TOML with gobgpd's own config code,
// which fills in defaults and validates, and checks what it does not: a
// prefix-set holds one family (gobgpd refuses a mixed one when it loads
// the policy).
func TestGoBGPAcceptsConfigs(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range inputs {
		in := tc.in("gobgp")
		p := writeFile(t, dir, tc.name+".toml", render(t, in))
		c, err := oc.ReadConfigfile(p, "toml")
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if len(c.Neighbors) != len(in.Controllers) || c.Global.Config.As != in.RouterAS {
			t.Errorf("%s: %d neighbors, AS %d", tc.name, len(c.Neighbors), c.Global.Config.As)
		}
		for _, n := range c.Neighbors {
			if n.Config.PeerAs != in.ControllerAS || n.Config.AuthPassword != in.Password ||
				n.Timers.Config.HoldTime != float64(secs(in.HoldTime)) || !n.GracefulRestart.Config.HelperOnly {
				t.Errorf("%s: neighbor %+v", tc.name, n.Config)
			}
			for _, af := range n.AfiSafis {
				if af.PrefixLimit.Config.MaxPrefixes != uint32(in.MaxPrefixes) {
					t.Errorf("%s: %s prefix limit %d", tc.name, af.Config.AfiSafiName, af.PrefixLimit.Config.MaxPrefixes)
				}
			}
		}
		for _, s := range c.DefinedSets.PrefixSets {
			fam := map[bool]bool{}
			for _, pr := range s.PrefixList {
				fam[netip.MustParsePrefix(pr.IpPrefix).Addr().Is4()] = true
			}
			if len(fam) != 1 {
				t.Errorf("%s: prefix-set %s mixes families", tc.name, s.PrefixSetName)
			}
		}
		if in.BMP.IsValid() && (len(c.BmpServers) != 1 || c.BmpServers[0].Config.Port != uint32(in.BMP.Port())) {
			t.Errorf("%s: BMP servers %+v", tc.name, c.BmpServers)
		}
		gobgpdDryRun(t, p)
	}
}

// gobgpdDryRun runs gobgpd --dry-run on the file when gobgpd is installed
// (go install github.com/osrg/gobgp/v3/cmd/gobgpd@v3.37.0).
func gobgpdDryRun(t *testing.T, path string) {
	t.Helper()
	if _, err := exec.LookPath("gobgpd"); err != nil || testing.Short() {
		t.Logf("gobgpd not installed: %s checked by the config package only", filepath.Base(path))
		return
	}
	out, err := exec.Command("gobgpd", "-f", path, "--dry-run").CombinedOutput()
	if err != nil {
		t.Errorf("gobgpd --dry-run %s: %v\n%s", filepath.Base(path), err, out)
	}
}
