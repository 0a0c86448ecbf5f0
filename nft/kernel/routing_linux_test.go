//go:build linux

package kernel

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	vnl "github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/cutover/cutover/internal/testenv"
	"github.com/cutover/cutover/nft"
)

// TestReadRoutingSteeringTablesOnly reads the routing back in a namespace
// whose main table carries thousands of routes, as an edge with the moved
// prefixes does: only the steering tables' routes come back, a table that
// does not exist reads as empty, and the ip rules (listed on the same
// handle, without strict checking) still read.
func TestReadRoutingSteeringTablesOnly(t *testing.T) {
	testenv.RequireRoot(t)
	ns := gatewayNS(t, "routing")
	var batch strings.Builder
	for i := range 3000 {
		fmt.Fprintf(&batch, "route add 10.%d.%d.0/24 via 192.0.2.1\n", 100+i/256, i%256)
	}
	path := filepath.Join(t.TempDir(), "routes")
	if err := os.WriteFile(path, []byte(batch.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	ipn(t, ns, "-batch", path)
	dp := newKernel(t, nft.Config{NetNS: ns})
	st := nft.State{Sites: testSites(), Moved: map[string][]netip.Prefix{"skm2": {mp("10.64.0.10/32")}}}
	if _, err := dp.Apply(context.Background(), st); err != nil {
		t.Fatal(err)
	}

	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	rt, err := vnl.NewHandleAt(h, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	k, err := readRouting(rt, nft.DefaultRulePriority, []int{101, 102, 4242})
	if err != nil {
		t.Fatalf("readRouting: %v", err)
	}
	var got []string
	for _, r := range k.routes {
		got = append(got, fmt.Sprintf("table %d %s via %s", r.table, r.dst, r.via))
	}
	slices.Sort(got)
	want := []string{
		"table 101 0.0.0.0/0 via 192.0.2.1", "table 101 ::/0 via 2001:db8:ffff::1",
		"table 102 0.0.0.0/0 via 192.0.2.2", "table 102 ::/0 via 2001:db8:ffff::2",
	}
	if !slices.Equal(got, want) {
		t.Errorf("routes read back:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(k.rules) != 4 {
		t.Errorf("ip rules read back: %+v, want 4 (two sites, two families)", k.rules)
	}
	// The handle is left without strict checking: rule dumps still work.
	if _, err := rt.RuleList(vnl.FAMILY_V4); err != nil {
		t.Errorf("rule list after readRouting: %v", err)
	}
}
