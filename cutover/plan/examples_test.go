package plan

import (
	"bytes"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover/cutover/cutover/runbook"
	"github.com/cutover/cutover/cutover/runbook/runbooktest"

	"gopkg.in/yaml.v3"
)

// exampleRunbooks returns every runbook under ../runbooks: the YAML files
// whose top level is a mapping (inventories are lists).
func exampleRunbooks(t *testing.T) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir("../../runbooks", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if ext := filepath.Ext(path); ext != ".yaml" && ext != ".yml" {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var n yaml.Node
		if err := yaml.Unmarshal(data, &n); err != nil {
			return err
		}
		if len(n.Content) > 0 && n.Content[0].Kind == yaml.MappingNode {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 5 {
		t.Fatalf("found %d example runbooks, want at least 5: %v", len(out), out)
	}
	return out
}

// TestExampleRunbooks: every runbook under runbooks/ loads without errors
// or warnings, plans within every invariant, and gives the same JSON twice.

func TestExampleRunbooks(t *testing.T) {
	for _, path := range exampleRunbooks(t) {
		t.Run(strings.TrimPrefix(path, "../../runbooks/"), func(t *testing.T) {
			pl, warns, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range warns {
				t.Errorf("warning: %s", w)
			}
			runbooktest.CheckInventory(t, pl.Inventory)
			checkPlan(t, pl)
			checkChanges(t, pl)
			if a, b := planJSONBytes(t, path), planJSONBytes(t, path); !bytes.Equal(a, b) {
				t.Error("two runs give different JSON")
			}
			var text bytes.Buffer
			if err := pl.WriteText(&text, TextOptions{}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestHelseNordMatchesTheLab: the flagship example rehearses unchanged in
// the lab, so it must use exactly the lab topology's addresses
// (lab/topology.go) and probe only port 80 (the lab's responders).
func TestHelseNordMatchesTheLab(t *testing.T) {
	pl, _, err := Load("../../runbooks/helse-nord/runbook.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rb, inv := pl.Runbook, pl.Inventory
	addr := netip.MustParseAddr
	if rb.BGP.LocalAS != 65100 || rb.BGP.RouterID != addr("10.255.0.2") || len(rb.BGP.Peers) != 1 ||
		rb.BGP.Peers[0].Address != addr("10.255.0.1") || rb.BGP.Peers[0].AS != 65000 {
		t.Errorf("bgp does not match the lab: %+v", rb.BGP)
	}
	if rb.Move != (runbook.Move{From: "skm1", To: "skm2"}) {
		t.Errorf("move %+v", rb.Move)
	}
	want := map[string]runbook.NextHops{
		"skm1": {IPv4: addr("10.255.1.2"), IPv6: addr("fd00:255:1::2")},
		"skm2": {IPv4: addr("10.255.2.2"), IPv6: addr("fd00:255:2::2")},
	}
	for name, nh := range want {
		if s := rb.Sites[name]; s == nil || s.NextHop != nh {
			t.Errorf("site %s: %+v, want next-hops %+v", name, s, nh)
		}
	}
	v4 := netip.MustParsePrefix("10.64.0.0/14")
	v6 := netip.MustParsePrefix("fd00:64::/48")
	first := addr("10.64.0.10")
	var n6, multi int
	for _, vm := range inv.VMs {
		if vm.Probe.Kind != runbook.ProbeNone && vm.Probe.Port != 80 {
			t.Errorf("vm %s probes port %d; the lab answers on 80", vm.Name, vm.Probe.Port)
		}
		v4s := 0
		for _, p := range vm.Prefixes {
			switch {
			case v4.Contains(p.Addr()):
				v4s++
				if p.Addr().Less(first) || p.Bits() != 32 {
					t.Errorf("vm %s: %s below 10.64.0.10 or not a host", vm.Name, p)
				}
			case v6.Contains(p.Addr()):
				n6++
			default:
				t.Errorf("vm %s: %s outside the lab's ranges", vm.Name, p)
			}
		}
		if v4s > 1 {
			multi++
		}
	}
	if len(inv.VMs) != 2000 || len(inv.Tenants()) != 6 || n6 < 15 || multi < 2 {
		t.Errorf("%d VMs, %d tenants, %d IPv6 addresses, %d VMs with two IPv4 addresses", len(inv.VMs), len(inv.Tenants()), n6, multi)
	}
}
