package plan

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cutover/cutover/cutover/runbook"
	"github.com/cutover/cutover/cutover/runbook/runbooktest"

	"github.com/cutover/cutover/bgp"
	"github.com/cutover/cutover/internal/golden"
	"github.com/cutover/cutover/nft"
)

// checkPlan asserts the plan's invariants: every VM and prefix in exactly
// one batch with all its addresses, the canary first, spread over the
// tenants and without tier 1, batches within size and the tenant cap,
// tiers never going back up, and the counts right.
func checkPlan(t testing.TB, pl *Plan) {
	t.Helper()
	rb, inv := pl.Runbook, pl.Inventory
	cfg := rb.Batching
	batchOf := map[*runbook.VM]int{}
	prefixBatch := map[netip.Prefix]int{}
	if len(pl.Batches) == 0 {
		t.Fatal("no batches")
	}
	for i, b := range pl.Batches {
		if b.Index != i {
			t.Errorf("batch %d has index %d", i, b.Index)
		}
		if len(b.VMs) == 0 {
			t.Errorf("%s is empty", b.Name)
		}
		var ps []netip.Prefix
		tenants := map[string]int{}
		tiers := map[int]int{}
		for _, vm := range b.VMs {
			if j, dup := batchOf[vm]; dup {
				t.Errorf("vm %q in batches %d and %d", vm.Name, j, i)
			}
			batchOf[vm] = i
			ps = append(ps, vm.Prefixes...)
			tenants[vm.Tenant]++
			tiers[vm.Tier]++
			if b.Canary && vm.Tier == 1 {
				t.Errorf("tier 1 vm %q in the canary", vm.Name)
			}
		}
		slices.SortFunc(ps, netip.Prefix.Compare)
		if !slices.Equal(ps, b.Prefixes) {
			t.Errorf("%s: prefixes are not exactly those of its VMs (or not sorted)", b.Name)
		}
		for _, p := range b.Prefixes {
			if j, dup := prefixBatch[p]; dup {
				t.Errorf("prefix %s in batches %d and %d", p, j, i)
			}
			prefixBatch[p] = i
		}
		if !mapsEqual(tenants, b.Tenants) || !mapsEqual(tiers, b.Tiers) {
			t.Errorf("%s: counts %v %v, want %v %v", b.Name, b.Tenants, b.Tiers, tenants, tiers)
		}
		if cfg.MaxPerTenant > 0 {
			for tn, n := range tenants {
				if n > cfg.MaxPerTenant {
					t.Errorf("%s: %d VMs of %s, cap %d", b.Name, n, tn, cfg.MaxPerTenant)
				}
			}
		}
		if b.Canary != (i == 0 && cfg.Canary > 0) {
			t.Errorf("batch %d canary=%v", i, b.Canary)
		}
		if !b.Canary && len(b.VMs) > cfg.Size {
			t.Errorf("%s: %d VMs, size %d", b.Name, len(b.VMs), cfg.Size)
		}
		want := "canary"
		if !b.Canary {
			n := i
			if cfg.Canary == 0 {
				n = i + 1
			}
			want = fmt.Sprintf("batch-%02d", n)
			if len(pl.Batches) > 100 {
				want = fmt.Sprintf("batch-%03d", n)
			}
		}
		if b.Name != want {
			t.Errorf("batch %d named %q, want %q", i, b.Name, want)
		}
	}
	for _, vm := range inv.VMs {
		if _, ok := batchOf[vm]; !ok {
			t.Errorf("vm %q in no batch", vm.Name)
		}
	}
	if len(prefixBatch) != inv.Prefixes() {
		t.Errorf("%d prefixes planned, inventory has %d", len(prefixBatch), inv.Prefixes())
	}
	// Tiers never go back up: every VM of a batch is at most as critical
	// as every VM of any later batch... i.e. min tier of batch i is at
	// least the max tier of batch i+1.
	first := 0
	if cfg.Canary > 0 {
		first = 1
		c := pl.Batches[0]
		if len(c.VMs) != cfg.Canary {
			t.Errorf("canary has %d VMs, want %d", len(c.VMs), cfg.Canary)
		}
		// Round-robin: a tenant gets two fewer than another only when it
		// had no more to give.
		eligible := map[string]int{}
		for _, vm := range inv.VMs {
			if vm.Tier != 1 {
				eligible[vm.Tenant]++
			}
		}
		for a, ea := range eligible {
			limit := ea
			if cfg.MaxPerTenant > 0 {
				limit = min(limit, cfg.MaxPerTenant)
			}
			for bn := range eligible {
				if c.Tenants[a] < c.Tenants[bn]-1 && c.Tenants[a] < limit {
					t.Errorf("canary unfair: %s %d, %s %d (%s could give %d)", a, c.Tenants[a], bn, c.Tenants[bn], a, limit)
				}
			}
		}
	}
	for i := first; i+1 < len(pl.Batches); i++ {
		lo, hi := 3, 1
		for tr := range pl.Batches[i].Tiers {
			lo = min(lo, tr)
		}
		for tr := range pl.Batches[i+1].Tiers {
			hi = max(hi, tr)
		}
		if hi > lo {
			t.Errorf("tier order: %s has tier %d, the later %s tier %d", pl.Batches[i].Name, lo, pl.Batches[i+1].Name, hi)
		}
	}
}

func mapsEqual[K comparable](a, b map[K]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// checkChanges asserts that Routes, RoutesOf, Dataplane and Changes agree
// with each other and with a plain diff of the full states.
func checkChanges(t testing.TB, pl *Plan) {
	t.Helper()
	rb := pl.Runbook
	src, tgt := rb.Source(), rb.Target()
	n := len(pl.Batches)
	// Every step on small plans; on big ones the first and last few and
	// a spread in between (each step costs O(plan)).
	check := func(k int) bool { return n <= 40 || k < 5 || k > n-5 || k%(n/20) == 0 }
	var moved []int
	for k := 0; k <= n; k++ {
		if k > 0 {
			moved = append(moved, k-1)
		}
		if !check(k) {
			continue
		}
		routes := pl.Routes(k)
		if !sameRoutes(routes, pl.RoutesOf(moved)) {
			t.Fatalf("Routes(%d) differs from RoutesOf(%v)", k, moved)
		}
		atTarget := map[netip.Prefix]bool{}
		for i := range k {
			for _, p := range pl.Batches[i].Prefixes {
				atTarget[p] = true
			}
		}
		for _, r := range routes {
			site := src
			if atTarget[r.Prefix] {
				site = tgt
			}
			if want := routesAt(site, []netip.Prefix{r.Prefix})[0]; !sameRoute(r, want) {
				t.Fatalf("Routes(%d): %s, want %s", k, r, want)
			}
		}
		want := len(atTarget)
		if rb.BGP.AnnounceSource {
			want = pl.Inventory.Prefixes()
		}
		if len(routes) != want {
			t.Fatalf("Routes(%d) has %d routes, want %d", k, len(routes), want)
		}
		if k < n {
			c := pl.Changes(k)
			ann, wd := diffRoutes(routes, pl.Routes(k+1))
			if !sameRoutes(sortRoutes(c.Announce), ann) || len(c.Withdraw) != len(wd) {
				t.Fatalf("Changes(%d) announces %d/withdraws %d, a diff of Routes gives %d/%d", k, len(c.Announce), len(c.Withdraw), len(ann), len(wd))
			}
			if rb.BGP.AnnounceSource != (c.Replaced != nil) {
				t.Fatalf("Changes(%d).Replaced = %v with announce_source %v", k, c.Replaced != nil, rb.BGP.AnnounceSource)
			}
			full := nft.Diff(pl.Dataplane(k), pl.Dataplane(k+1))
			if !slices.Equal(c.NFT.Add, full.Add) || !slices.Equal(c.NFT.Remove, full.Remove) {
				t.Fatalf("Changes(%d).NFT differs from nft.Diff of Dataplane", k)
			}
			if rb.Dataplane.Enabled && len(full.Add) != len(pl.Batches[k].Prefixes) {
				t.Fatalf("batch %d adds %d elements for %d prefixes", k, len(full.Add), len(pl.Batches[k].Prefixes))
			}
		}
	}
	// Rolled back in the middle: RoutesOf a set with a hole.
	if n >= 3 {
		routes := pl.RoutesOf([]int{0, 2})
		for _, r := range routes {
			if r.NextHop == tgt.NextHop.For(r.Prefix) && !slices.Contains(pl.Batches[0].Prefixes, r.Prefix) && !slices.Contains(pl.Batches[2].Prefixes, r.Prefix) {
				t.Fatalf("RoutesOf([0 2]) moves %s", r.Prefix)
			}
		}
		st := pl.DataplaneOf([]int{0, 2})
		if rb.Dataplane.Enabled && len(st.Moved[rb.Move.To]) != len(pl.Batches[0].Prefixes)+len(pl.Batches[2].Prefixes) {
			t.Fatalf("DataplaneOf([0 2]) moves %d prefixes", len(st.Moved[rb.Move.To]))
		}
	}
}

// diffRoutes is the reference diff: routes in to that are new or
// different, and prefixes of from that are gone, both sorted.
func diffRoutes(from, to []bgp.Route) (announce, withdraw []bgp.Route) {
	have := map[netip.Prefix]bgp.Route{}
	for _, r := range from {
		have[r.Prefix] = r
	}
	want := map[netip.Prefix]bool{}
	for _, r := range to {
		want[r.Prefix] = true
		if old, ok := have[r.Prefix]; !ok || !sameRoute(old, r) {
			announce = append(announce, r)
		}
	}
	for _, r := range from {
		if !want[r.Prefix] {
			withdraw = append(withdraw, r)
		}
	}
	return sortRoutes(announce), sortRoutes(withdraw)
}

func sortRoutes(rs []bgp.Route) []bgp.Route {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b bgp.Route) int { return a.Prefix.Compare(b.Prefix) })
	return rs
}

func sameRoute(a, b bgp.Route) bool {
	medEq := (a.MED == nil) == (b.MED == nil) && (a.MED == nil || *a.MED == *b.MED)
	return a.Prefix == b.Prefix && a.NextHop == b.NextHop && a.LocalPref == b.LocalPref && medEq &&
		a.Prepend == b.Prepend && slices.Equal(a.Communities, b.Communities) && slices.Equal(a.LargeCommunities, b.LargeCommunities)
}

func sameRoutes(a, b []bgp.Route) bool {
	return slices.EqualFunc(a, b, sameRoute)
}

func planJSONBytes(t testing.TB, path string) []byte {
	t.Helper()
	pl, _, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := pl.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestPlanBase pins the plan of the small base runbook exactly.
func TestPlanBase(t *testing.T) {
	tests := []struct {
		name  string
		edits []runbooktest.Edit
		want  []string // batch: VMs
		end   []string
	}{
		// Round-robin: the canary takes one VM of alpha and beta (a2 over
		// a1: evenly spaced among alpha's probed tier-3 VMs); the rest of
		// tier 3 (a1 g1) leaves room for tier 2 until alpha hits its cap
		// of 2; g2 waits for the next batch, before tier 1.
		{"spread", nil, []string{
			"canary [a2 b1] confirm [before-start]",
			"batch-01 [a1 g1 a3 b2] confirm [after-canary]",
			"batch-02 [g2 a4 b3 g3] confirm []",
		}, []string{"before-end"}},
		// A tenant after another, two at most: alpha's tier 3 and beta's
		// tier 3 fill batch-01 before tier 2 starts.
		{"grouped", []runbooktest.Edit{{"max_per_tenant: 2}", "max_per_tenant: 2, group_by_tenant: true}"}}, []string{
			"canary [a2 b1] confirm [before-start]",
			"batch-01 [a1 g1 a3 b2] confirm [after-canary]",
			"batch-02 [g2 a4 b3 g3] confirm []",
		}, []string{"before-end"}},
		{"grouped big batches", []runbooktest.Edit{{"{canary: 2, size: 4, max_per_tenant: 2}", "{canary: 0, size: 5, group_by_tenant: true}"}, {"[before-start, after-canary, before-end]", "[before-batch:2, after-batch:2]"}}, []string{
			"batch-01 [a1 a2 b1 g1 a3] confirm []",
			"batch-02 [b2 g2 a4 b3 g3] confirm [before-batch:2]",
		}, []string{"after-batch:2"}},
		{"one VM per batch", []runbooktest.Edit{{"{canary: 2, size: 4, max_per_tenant: 2}", "{canary: 1, size: 1}"}}, []string{
			"canary [a2] confirm [before-start]",
			"batch-01 [a1] confirm [after-canary]", "batch-02 [b1] confirm []", "batch-03 [g1] confirm []",
			"batch-04 [a3] confirm []", "batch-05 [b2] confirm []", "batch-06 [g2] confirm []",
			"batch-07 [a4] confirm []", "batch-08 [b3] confirm []", "batch-09 [g3] confirm []",
		}, []string{"before-end"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pl, _, err := Load(runbooktest.WriteCase(t, "../runbook/testdata/base", tt.edits, ""))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, b := range pl.Batches {
				var names []string
				for _, vm := range b.VMs {
					names = append(names, vm.Name)
				}
				// Within a tier block the order of taking is tenant-wise;
				// show VMs in tier order, then name, for readability.
				slices.SortStableFunc(names, func(x, y string) int {
					return vmByName(pl.Inventory, y).Tier - vmByName(pl.Inventory, x).Tier
				})
				got = append(got, fmt.Sprintf("%s %v confirm %v", b.Name, names, nonNil(b.Confirm)))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if !slices.Equal(pl.ConfirmEnd, tt.end) {
				t.Errorf("confirm at the end %v, want %v", pl.ConfirmEnd, tt.end)
			}
			checkPlan(t, pl)
			checkChanges(t, pl)
		})
	}
}

func vmByName(inv *runbook.Inventory, name string) *runbook.VM {
	for _, vm := range inv.VMs {
		if vm.Name == name {
			return vm
		}
	}
	return nil
}

// TestPlanGolden pins the text and JSON output of the base plan, once
// with announce_source (routes replaced, a baseline) and once without.
// Run with -update to rewrite the golden files after a deliberate change.
func TestPlanGolden(t *testing.T) {
	for _, tt := range []struct {
		golden string
		render func(*Plan, *bytes.Buffer) error
	}{
		{"plan.txt", func(pl *Plan, b *bytes.Buffer) error { return pl.WriteText(b, TextOptions{}) }},
		{"plan-summary.txt", func(pl *Plan, b *bytes.Buffer) error { return pl.WriteText(b, TextOptions{Summary: true}) }},
		{"plan.json", func(pl *Plan, b *bytes.Buffer) error { return pl.WriteJSON(b) }},
	} {
		t.Run(tt.golden, func(t *testing.T) {
			pl, _, err := Load("../runbook/testdata/base/runbook.yaml")
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			if err := tt.render(pl, &got); err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", tt.golden), got.Bytes())
		})
	}
}

func TestParsePlan(t *testing.T) {
	rb, err := os.ReadFile("../runbook/testdata/base/runbook.yaml")
	if err != nil {
		t.Fatal(err)
	}
	inv, err := os.ReadFile("../runbook/testdata/base/inventory.csv")
	if err != nil {
		t.Fatal(err)
	}
	pl, _, err := Parse("saved/runbook.yaml", rb, "saved/inventory.csv", inv)
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := Load("../runbook/testdata/base/runbook.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if pl.Digest != want.Digest || len(pl.Batches) != len(want.Batches) || pl.Inventory.File != "saved/inventory.csv" {
		t.Errorf("ParsePlan: digest %s, %d batches, inventory %s", pl.Digest, len(pl.Batches), pl.Inventory.File)
	}
	_, _, err = Parse("saved/runbook.yaml", rb, "saved/inventory.csv", []byte("name,address,tenant,tier\n"))
	if err == nil || err.Error() != "saved/inventory.csv: the inventory has no VMs" {
		t.Errorf("ParsePlan of an empty inventory: %v", err)
	}
}

func TestPlanAnnounceSource(t *testing.T) {
	path := runbooktest.WriteCase(t, "../runbook/testdata/base", []runbooktest.Edit{{"  router_id: 10.255.0.2", "  router_id: 10.255.0.2\n  announce_source: true"}}, "")
	pl, _, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	base := pl.Baseline()
	if len(base) != 11 {
		t.Fatalf("baseline has %d routes, want every prefix", len(base))
	}
	for _, r := range base {
		if r.NextHop != pl.Runbook.Source().NextHop.For(r.Prefix) || r.Communities[0].String() != "65100:1" {
			t.Errorf("baseline route %s is not via skm1", r)
		}
	}
	c := pl.Changes(0)
	if len(c.Replaced) != len(c.Announce) || len(c.Withdraw) != 0 {
		t.Errorf("canary: announce %d replacing %d, withdraw %d", len(c.Announce), len(c.Replaced), len(c.Withdraw))
	}
	checkChanges(t, pl)
	var b bytes.Buffer
	if err := pl.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b.Bytes(), []byte(`"replaces_next_hop": "10.255.1.2"`)) {
		t.Error("JSON announcements do not name the next-hop they replace")
	}
}

func TestPlanDataplaneDisabled(t *testing.T) {
	pl, _, err := Load(runbooktest.WriteCase(t, "../runbook/testdata/base", []runbooktest.Edit{{"hold: 1s", "hold: 1s\ndataplane: {enabled: false}"}}, ""))
	if err != nil {
		t.Fatal(err)
	}
	if st := pl.Dataplane(len(pl.Batches)); len(st.Sites) != 0 || len(st.Moved) != 0 {
		t.Errorf("Dataplane with the dataplane disabled: %+v", st)
	}
	if c := pl.Changes(0); len(c.NFT.Add)+len(c.NFT.Remove) != 0 {
		t.Errorf("nft changes with the dataplane disabled: %+v", c.NFT)
	}
	checkChanges(t, pl)
}

func TestPlanDataplaneSites(t *testing.T) {
	pl, _, err := Load("../runbook/testdata/base/runbook.yaml")
	if err != nil {
		t.Fatal(err)
	}
	st := pl.Dataplane(1)
	want := []nft.Site{
		{Name: "skm1", Mark: 0x0c070000, Table: 7000, NextHop4: netip.MustParseAddr("10.255.1.2"), NextHop6: netip.MustParseAddr("fd00:255:1::2")},
		{Name: "skm2", Mark: 0x0c070001, Table: 7001, NextHop4: netip.MustParseAddr("10.255.2.2"), NextHop6: netip.MustParseAddr("fd00:255:2::2")},
	}
	if !slices.Equal(st.Sites, want) {
		t.Errorf("sites %+v, want %+v", st.Sites, want)
	}
	if got := st.Moved["skm2"]; !slices.Equal(got, pl.Batches[0].Prefixes) {
		t.Errorf("moved after the canary: %v", got)
	}
	if got := pl.Dataplane(0).Moved["skm2"]; got == nil || len(got) != 0 {
		t.Errorf("moved at the baseline: %#v, want empty", got)
	}
}

// randomCase writes a random inventory and runbook, different in shape for
// every seed: 1-40 tenants, 50-3000 VMs, skewed tiers, VMs with several
// addresses, IPv6, prefixes wider than a host, random batching.
func randomCase(t testing.TB, dir string, seed uint64) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 0xc0ffee))
	nTenants := 1 + rng.IntN(40)
	nVMs := 50 + rng.IntN(2950)
	tierW := [3]int{1 + rng.IntN(10), 1 + rng.IntN(10), 1 + rng.IntN(10)}
	tenants := make([]string, nTenants)
	tw := make([]int, nTenants)
	for i := range tenants {
		tenants[i] = fmt.Sprintf("tenant-%02d", rng.IntN(1000))
		tw[i] = 1 + rng.IntN(20)
	}
	pick := func(w []int) int {
		total := 0
		for _, x := range w {
			total += x
		}
		r := rng.IntN(total)
		for i, x := range w {
			if r < x {
				return i
			}
			r -= x
		}
		return len(w) - 1
	}
	v4 := netip.MustParseAddr("10.64.0.10")
	v6host := netip.MustParseAddr("fd00:64::10")
	v6net := 1
	var rows []string
	probes := []string{"", "icmp", "tcp:22", "http:80/", "https:443/health"}
	eligible := map[string]int{}
	for i := range nVMs {
		tenant := tenants[pick(tw[:])]
		tier := 1 + pick(tierW[:])
		probe := probes[rng.IntN(len(probes))]
		name := fmt.Sprintf("vm-%x-%d", rng.Uint32(), i)
		if tier != 1 {
			eligible[tenant]++
		}
		for range 1 + min(rng.IntN(12)/10, 2) + rng.IntN(2)*rng.IntN(2) {
			var addr string
			switch r := rng.IntN(100); {
			case r < 5: // an aligned /30
				for v4.As4()[3]%4 != 0 {
					v4 = v4.Next()
				}
				addr = netip.PrefixFrom(v4, 30).String()
				for range 4 {
					v4 = v4.Next()
				}
			case r < 12:
				addr = v6host.String()
				v6host = v6host.Next()
			case r < 14:
				addr = fmt.Sprintf("fd00:64:%x::/64", v6net)
				v6net++
			default:
				addr = v4.String()
				v4 = v4.Next()
			}
			rows = append(rows, fmt.Sprintf("%s,%s,%s,%d,%s", name, addr, tenant, tier, probe))
		}
	}
	rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	size := 1 + rng.IntN(300)
	perTenant := 0
	if rng.IntN(2) == 0 {
		perTenant = 1 + rng.IntN(100)
	}
	fillable := 0
	for _, n := range eligible {
		if perTenant > 0 {
			n = min(n, perTenant)
		}
		fillable += n
	}
	canary := rng.IntN(min(fillable, 25) + 1)
	batching := fmt.Sprintf("{canary: %d, size: %d, group_by_tenant: %v", canary, size, rng.IntN(2) == 0)
	if perTenant > 0 {
		batching += fmt.Sprintf(", max_per_tenant: %d", perTenant)
	}
	batching += "}"
	runbook := fmt.Sprintf(`version: 1
name: random-%d
inventory: inventory.csv
sites:
  a: {next_hop: {ipv4: 10.255.1.2, ipv6: "fd00:255:1::2"}, communities: ["65100:1"]}
  b: {next_hop: {ipv4: 10.255.2.2, ipv6: "fd00:255:2::2"}, large_communities: ["65100:2:3"], med: 5, prepend: 2}
move: {from: a, to: b}
bgp:
  local_as: 65100
  router_id: 10.255.0.2
  announce_source: %v
  peers: [{address: 10.255.0.1, as: 65000}, {address: "fd00:255::1", as: 65100, observe: false}]
allowed_prefixes: [10.64.0.0/14, "fd00:64::/32"]
max_prefixes: 20000
batching: %s
dataplane: {enabled: %v}
`, seed, rng.IntN(2) == 0, batching, rng.IntN(4) != 0)
	if err := os.WriteFile(filepath.Join(dir, "inventory.csv"), []byte("name,address,tenant,tier,probe\n"+strings.Join(rows, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "runbook.yaml")
	if err := os.WriteFile(path, []byte(runbook), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPlanRandom checks the plan invariants, the route and dataplane
// functions and byte-identical JSON on random inventories of many shapes,
// and that the order of the inventory's rows does not change the plan.
func TestPlanRandom(t *testing.T) {
	seeds := 30
	if testing.Short() {
		seeds = 8
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			dir := t.TempDir()
			path := randomCase(t, dir, seed+100)
			pl, warns, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(warns) > 0 {
				t.Errorf("warnings: %v", warns)
			}
			runbooktest.CheckInventory(t, pl.Inventory)
			checkPlan(t, pl)
			checkChanges(t, pl)
			a, b := planJSONBytes(t, path), planJSONBytes(t, path)
			if !bytes.Equal(a, b) {
				t.Fatal("two runs give different JSON")
			}
			// Reverse the rows: the same batches.
			invPath := filepath.Join(dir, "inventory.csv")
			data, err := os.ReadFile(invPath)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(string(data)), "\n")
			slices.Reverse(lines[1:])
			if err := os.WriteFile(invPath, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			pl2, _, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(pl2.Batches) != len(pl.Batches) {
				t.Fatalf("reordered rows: %d batches, before %d", len(pl2.Batches), len(pl.Batches))
			}
			for i := range pl.Batches {
				if !slices.Equal(pl.Batches[i].Prefixes, pl2.Batches[i].Prefixes) {
					t.Fatalf("reordered rows change %s", pl.Batches[i].Name)
				}
			}
		})
	}
}
