//go:build linux

package kernel

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cutover/cutover/internal/testenv"
	"github.com/cutover/cutover/nft"
)

// gatewayNS returns a namespace in which the next-hops of testSites are
// reachable (a veth pair with both ends inside).
func gatewayNS(t testing.TB, role string) string {
	ns := newTestNS(t, role)
	ipn(t, ns, "link", "add", "gw0", "type", "veth", "peer", "name", "gw1")
	ipn(t, ns, "addr", "add", "192.0.2.254/24", "dev", "gw0")
	ipn(t, ns, "addr", "add", "2001:db8:ffff::fe/64", "dev", "gw0", "nodad")
	ipn(t, ns, "link", "set", "gw0", "up")
	ipn(t, ns, "link", "set", "gw1", "up")
	return ns
}

func mp(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func elems(set string, ps ...string) []nft.Element {
	var es []nft.Element
	for _, p := range ps {
		es = append(es, nft.Element{Set: set, Prefix: mp(p)})
	}
	return es
}

func testSites() []nft.Site {
	return []nft.Site{
		{Name: "skm1", Mark: 0xc01, Table: 101, NextHop4: netip.MustParseAddr("192.0.2.1"), NextHop6: netip.MustParseAddr("2001:db8:ffff::1")},
		{Name: "skm2", Mark: 0xc02, Table: 102, NextHop4: netip.MustParseAddr("192.0.2.2"), NextHop6: netip.MustParseAddr("2001:db8:ffff::2")},
	}
}

func newKernel(t *testing.T, cfg nft.Config) nft.Dataplane {
	t.Helper()
	dp, err := New(cfg, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dp.Close() })
	return dp
}

// normalizeRuleset drops comments, joins lines, squeezes spaces and sorts
// the elements of each set (nft lists a hash set in hash order).
func normalizeRuleset(s string) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			lines = append(lines, l)
		}
	}
	s = strings.Join(strings.Fields(strings.Join(lines, " ")), " ")
	var out strings.Builder
	for {
		i := strings.Index(s, "elements = { ")
		if i < 0 {
			break
		}
		j := strings.Index(s[i:], " }")
		elems := strings.Split(s[i+len("elements = { "):i+j], ", ")
		slices.Sort(elems)
		out.WriteString(s[:i] + "elements = { " + strings.Join(elems, ", ") + " }")
		s = s[i+j+2:]
	}
	return out.String() + s
}

func TestKernelApplyListsAsRendered(t *testing.T) {
	testenv.RequireRoot(t)
	ns := gatewayNS(t, "render")
	dp := newKernel(t, nft.Config{NetNS: ns})
	st := nft.State{Sites: testSites(), Moved: map[string][]netip.Prefix{
		"skm2": {mp("10.0.0.1/32"), mp("10.0.0.2/32"), mp("10.0.0.3/32"), mp("10.1.0.0/24"), mp("10.0.0.7/32"),
			mp("2001:db8:1::/64"), mp("2001:db8:2::1/128"), mp("255.255.255.255/32"), mp("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127")},
		"skm1": {mp("10.9.0.0/32"), mp("10.9.0.2/32")},
	}}
	res, err := dp.Apply(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res.Timings)
	got := nsRun(t, ns, "nft", "list", "table", "inet", nft.DefaultTable)
	if normalizeRuleset(got) != normalizeRuleset(nft.Render(st)) {
		t.Errorf("nft list table:\n%s\nwant (Render):\n%s", got, nft.Render(st))
	}
	t.Log(nsRun(t, ns, "ip", "rule"), nsRun(t, ns, "ip", "-6", "rule"), nsRun(t, ns, "ip", "route", "show", "table", "102"))
}

// TestKernelDriftReportedAndCorrected edits the table, the ip rules and the
// routes by hand in every way the tool checks, and expects Drift to name
// each edit, Apply without Correct to refuse, and Apply with Correct to put
// everything back as rendered.
func TestKernelDriftReportedAndCorrected(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "nft")
	ns := gatewayNS(t, "drift")
	ctx := context.Background()
	st := nft.State{Sites: testSites(), Moved: map[string][]netip.Prefix{
		"skm2": {mp("10.0.0.1/32"), mp("10.0.0.2/32"), mp("10.0.0.9/32"), mp("2001:db8:1::/64")},
	}}
	dp := newKernel(t, nft.Config{NetNS: ns})
	if _, err := dp.Apply(ctx, st); err != nil {
		t.Fatal(err)
	}
	restore := ruleHandle(t, ns, "steer", "cutover:restore:skm2")
	nftCmd := func(args ...string) { nsRun(t, ns, append([]string{"nft"}, args...)...) }
	nftCmd("add", "chain", "inet", nft.DefaultTable, "extra")
	nftCmd("add", "counter", "inet", nft.DefaultTable, "foo")
	nftCmd("add", "rule", "inet", nft.DefaultTable, "steer", "counter")
	nftCmd("replace", "rule", "inet", nft.DefaultTable, "steer", "handle", restore,
		"ct", "direction", "original", "ct", "mark", "0x00000c02", "meta", "mark", "set", "0x00000c09",
		"counter", "name", "steered_skm2", "return", "comment", `"cutover:restore:skm2"`)
	nftCmd("flush", "set", "inet", nft.DefaultTable, "moved_skm2_v4_hosts")
	nftCmd("add", "element", "inet", nft.DefaultTable, "moved_skm2_v6", "{ 2001:db8:9::1 }")
	nftCmd("add", "table", "inet", nft.DefaultTable, "{ flags dormant; }")
	ipn(t, ns, "route", "del", "default", "table", "102")
	ipn(t, ns, "route", "add", "10.0.0.0/8", "via", "192.0.2.9", "table", "101")
	ipn(t, ns, "rule", "add", "fwmark", "0x99", "lookup", "150", "priority", "9000")

	d, err := dp.Drift(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	handle := func(item string) string { // handles differ per run
		if i := strings.Index(item, " (handle "); i >= 0 {
			return item[:i] + " (handle N)"
		}
		return item
	}
	var got []string
	for _, item := range d.Items() {
		got = append(got, handle(item))
	}
	want := []string{
		"table inet cutover: dormant",
		"counter foo: unexpected",
		`chain steer: rule "cutover:restore:skm2" changed (handle N)`,
		"chain steer: unexpected rule (handle N)",
		"chain extra: unexpected",
		"ip route default via 192.0.2.2 table 102: missing",
		"ip rule fwmark 0x99 lookup 150 priority 9000: unexpected",
		"ip route 10.0.0.0/8 via 192.0.2.9 table 101: unexpected",
		"missing element moved_skm2_v4 10.0.0.9/32",
		"unexpected element moved_skm2_v6 2001:db8:9::1/128",
	}
	if !slices.Equal(got, want) {
		t.Errorf("drift:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var de *nft.DriftError
	if _, err := dp.Apply(ctx, st); !errors.As(err, &de) {
		t.Fatalf("Apply without Correct: %v, want a DriftError", err)
	}

	fixer := newKernel(t, nft.Config{NetNS: ns, Correct: true})
	res, err := fixer.Apply(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Corrected) != 8 {
		t.Errorf("corrected %d items, want the 8 object items: %q", len(res.Corrected), res.Corrected)
	}
	if d, err := dp.Drift(ctx, st); err != nil || !d.Empty() {
		t.Errorf("drift after the correction: %v, %v", d, err)
	}
	if got := nsRun(t, ns, "nft", "list", "table", "inet", nft.DefaultTable); normalizeRuleset(got) != normalizeRuleset(nft.Render(st)) {
		t.Errorf("after the correction nft lists:\n%s\nwant:\n%s", got, nft.Render(st))
	}
}

// TestKernelSitesAndTeardown adds a site, removes one, and removes
// everything with a State without sites.
func TestKernelSitesAndTeardown(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "nft")
	ns := gatewayNS(t, "sites")
	ctx := context.Background()
	dp := newKernel(t, nft.Config{NetNS: ns})
	skm1, skm2 := testSites()[0], testSites()[1]
	steps := []nft.State{
		{Sites: []nft.Site{skm1}, Moved: map[string][]netip.Prefix{"skm1": {mp("10.0.0.0/24")}}},
		{Sites: []nft.Site{skm1, skm2}, Moved: map[string][]netip.Prefix{"skm1": {mp("10.0.0.0/24")}, "skm2": {mp("10.0.1.0/24")}}},
		{Sites: []nft.Site{skm2}, Moved: map[string][]netip.Prefix{"skm2": {mp("10.0.1.0/24"), mp("10.0.0.0/24")}}},
	}
	for i, st := range steps {
		if _, err := dp.Apply(ctx, st); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got := nsRun(t, ns, "nft", "list", "table", "inet", nft.DefaultTable); normalizeRuleset(got) != normalizeRuleset(nft.Render(st)) {
			t.Errorf("step %d: nft lists:\n%s\nwant:\n%s", i, got, nft.Render(st))
		}
		fresh := newKernel(t, nft.Config{NetNS: ns})
		if d, err := fresh.Drift(ctx, st); err != nil || !d.Empty() {
			t.Errorf("step %d: drift %v, %v", i, d, err)
		}
	}
	if got := nsRun(t, ns, "ip", "rule"); strings.Contains(got, "lookup 101") {
		t.Errorf("skm1's ip rule is left:\n%s", got)
	}
	if got := nsRun(t, ns, "ip", "route", "show", "table", "101"); got != "" {
		t.Errorf("skm1's routes are left:\n%s", got)
	}

	res, err := dp.Apply(ctx, nft.State{})
	if err != nil {
		t.Fatal(err)
	}
	if want := elems("moved_skm2_v4", "10.0.0.0/23"); !slices.Equal(res.Changes.Remove, want) {
		t.Errorf("teardown removes %v, want %v", res.Changes.Remove, want)
	}
	for _, cmd := range [][]string{
		{"nft", "list", "tables"}, {"ip", "route", "show", "table", "102"}, {"ip", "-6", "route", "show", "table", "102"},
	} {
		if got := nsRun(t, ns, cmd...); got != "" {
			t.Errorf("after the teardown %s shows:\n%s", strings.Join(cmd, " "), got)
		}
	}
	for _, fam := range []string{"-4", "-6"} {
		if got := nsRun(t, ns, "ip", fam, "rule"); strings.Contains(got, "9000:") {
			t.Errorf("after the teardown ip %s rule shows:\n%s", fam, got)
		}
	}
	if d, err := dp.Drift(ctx, nft.State{}); err != nil || !d.Empty() {
		t.Errorf("drift after the teardown: %v, %v", d, err)
	}
}

// TestKernelLargeBatches applies 50,000 addresses (scattered v4, adjacent
// v4, v6) to two sites, moves part of them, and reads them back with a
// fresh dataplane.
func TestKernelLargeBatches(t *testing.T) {
	testenv.RequireRoot(t)
	ns := gatewayNS(t, "large")
	ctx := context.Background()
	dp := newKernel(t, nft.Config{NetNS: ns, DrainTimeout: time.Hour})
	scattered := benchPrefixes(20000, true)
	var adjacent, v6 []netip.Prefix
	for i := range 20000 {
		adjacent = append(adjacent, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 200, byte(i >> 8), byte(i)}), 32))
	}
	a := netip.MustParseAddr("2001:db8:5::")
	for range 10000 {
		v6 = append(v6, netip.PrefixFrom(a, 128))
		a = a.Next().Next().Next()
	}
	st := nft.State{Sites: testSites(), Moved: map[string][]netip.Prefix{
		"skm2": append(append(slices.Clone(scattered), adjacent...), v6...),
	}}
	res, err := dp.Apply(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("50,000 addresses: %s (%+v)", res.Took, res.Timings)
	if len(res.Changes.Add) != 20000+10000+5 { // 20,000 adjacent /32s are 5 prefixes
		t.Errorf("%d prefixes added", len(res.Changes.Add))
	}
	// Move the first 10,000 scattered and all v6 to skm1.
	st2 := nft.State{Sites: testSites(), Moved: map[string][]netip.Prefix{
		"skm1": append(slices.Clone(scattered[:10000]), v6...),
		"skm2": append(slices.Clone(scattered[10000:]), adjacent...),
	}}
	res, err = dp.Apply(ctx, st2)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Changes.Add) != 20000 || len(res.Changes.Remove) != 20000 || res.Drain == nil || len(res.Drain.Prefixes) != 20000 {
		t.Errorf("move: %d added, %d removed, drain %v", len(res.Changes.Add), len(res.Changes.Remove), res.Drain != nil)
	}
	fresh := newKernel(t, nft.Config{NetNS: ns})
	if d, err := fresh.Drift(ctx, st2); err != nil || !d.Empty() {
		t.Errorf("a fresh dataplane finds drift: %v, %v", d, err)
	}
	// No flow was open: the drains finish long before their hour.
	for _, site := range []string{"skm1", "skm2"} {
		if st := waitDrained(t, dp, site, 10*time.Second); st.ID != res.Drain.ID || st.Reason != "no-old-flows" {
			t.Errorf("%s: last drain %d finished as %q, want drain %d with no-old-flows", site, st.ID, st.Reason, res.Drain.ID)
		}
	}
}

// TestKernelCurrentNamespace: with Config.NetNS empty the dataplane works in
// the namespace of the thread that created it.
func TestKernelCurrentNamespace(t *testing.T) {
	testenv.RequireRoot(t)
	ns := gatewayNS(t, "current")
	var dp nft.Dataplane
	if err := inNS(ns, func() (err error) {
		dp, err = New(nft.Config{}, zerolog.New(zerolog.NewTestWriter(t)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer dp.Close()
	st := nft.State{Sites: testSites()[:1], Moved: map[string][]netip.Prefix{"skm1": {mp("10.0.0.0/24")}}}
	if _, err := dp.Apply(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	if got := nsRun(t, ns, "nft", "list", "set", "inet", nft.DefaultTable, "moved_skm1_v4"); !strings.Contains(got, "10.0.0.0/24") {
		t.Errorf("the set in %s:\n%s", ns, got)
	}
}

func TestKernelNewErrors(t *testing.T) {
	testenv.RequireRoot(t)
	for _, tt := range []struct {
		cfg  nft.Config
		want string
	}{
		{nft.Config{NetNS: "cutover-nft-" + runID() + "-none"}, `open netns "cutover-nft-` + runID() + `-none": no such file or directory`},
		{nft.Config{RulePriority: -1}, "invalid dataplane config: rule priority -1 is out of range 1-32765"},
	} {
		if _, err := New(tt.cfg, zerolog.Nop()); err == nil || err.Error() != tt.want {
			t.Errorf("New(%+v) = %v, want %q", tt.cfg, err, tt.want)
		}
	}
	ns := gatewayNS(t, "closed")
	dp, err := New(nft.Config{NetNS: ns}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := dp.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := dp.Apply(context.Background(), nft.State{}); err == nil || err.Error() != "apply: dataplane closed" {
		t.Errorf("Apply after Close: %v", err)
	}
	if err := dp.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestKernelHostsSetSize: the _hosts hash sets are created with a size
// (layout.HostsCapacity), created again larger in the same Apply when a state
// needs more than it holds, never smaller; a set without a size (as `nft -f` of an older
// rendering makes it) is not drift and is replaced by a sized one.
func TestKernelHostsSetSize(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "nft")
	ns := gatewayNS(t, "size")
	ctx := context.Background()
	size := func() string {
		t.Helper()
		out := nsRun(t, ns, "nft", "list", "set", "inet", nft.DefaultTable, "moved_skm2_v4_hosts")
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) == 2 && f[0] == "size" {
				return f[1]
			}
		}
		return "none"
	}
	state := func(n int) nft.State {
		return nft.State{Sites: testSites(), Moved: map[string][]netip.Prefix{"skm2": benchPrefixes(n, true)}}
	}

	// An older table: hash sets without a size.
	var old []string
	for _, l := range strings.Split(nft.Render(state(100)), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "size ") {
			old = append(old, l)
		}
	}
	file := filepath.Join(t.TempDir(), "old.nft")
	if err := os.WriteFile(file, []byte(strings.Join(old, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	nsRun(t, ns, "nft", "-f", file)
	if got := size(); got != "none" {
		t.Fatalf("hand-made set: size %s, want none", got)
	}
	dp := newKernel(t, nft.Config{NetNS: ns, DrainTimeout: time.Hour, Correct: true})
	// The ip rules and routes are missing (nft -f does not make them); the
	// table is as wanted.
	d, err := dp.Drift(ctx, state(100))
	if err != nil {
		t.Fatal(err)
	}
	for _, item := range d.Items() {
		if !strings.HasPrefix(item, "ip ") {
			t.Errorf("a set without a size: drift %q, want none in the table", item)
		}
	}

	for _, step := range []struct {
		n    int
		size string
	}{
		{100, "4096"},    // replaced by a sized set
		{4096, "4096"},   // full: fits
		{4097, "16384"},  // does not fit: created again, larger
		{100, "16384"},   // not shrunk
		{20000, "65536"}, // grown again
	} {
		res, err := dp.Apply(ctx, state(step.n))
		if err != nil {
			t.Fatalf("%d addresses: %v", step.n, err)
		}
		for _, item := range res.Corrected {
			if !strings.HasPrefix(item, "ip ") {
				t.Errorf("%d addresses: corrected %q, want nothing in the table (a set's size is not drift)", step.n, item)
			}
		}
		if step.n == 4097 && (len(res.Changes.Add) != 1 || len(res.Changes.Remove) != 0) {
			t.Errorf("grown set: %d added, %d removed, want 1 and 0", len(res.Changes.Add), len(res.Changes.Remove))
		}
		if got := size(); got != step.size {
			t.Errorf("%d addresses: size %s, want %s", step.n, got, step.size)
		}
		fresh := newKernel(t, nft.Config{NetNS: ns})
		if d, err := fresh.Drift(ctx, state(step.n)); err != nil || !d.Empty() {
			t.Errorf("%d addresses: a fresh dataplane finds drift: %v, %v", step.n, d, err)
		}
	}
}

// TestKernelLinkFlap: a link to a site going down makes the kernel drop
// the site's steering routes. That is not drift that stops Apply: a
// rollback while the link is down works (the route cannot come back yet
// and is reported), and the next Apply after the link is up adds the
// routes back.
func TestKernelLinkFlap(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "nft")
	ns := gatewayNS(t, "flap")
	ctx := context.Background()
	moved := nft.State{Sites: testSites(), Moved: map[string][]netip.Prefix{"skm2": {mp("10.0.0.1/32"), mp("2001:db8:1::/64")}}}
	back := nft.State{Sites: testSites()}
	dp := newKernel(t, nft.Config{NetNS: ns})
	if _, err := dp.Apply(ctx, moved); err != nil {
		t.Fatal(err)
	}
	routes := func() string { return nsRun(t, ns, "ip", "-4", "route", "show", "table", "102") }
	if !strings.Contains(routes(), "default via 192.0.2.2") {
		t.Fatalf("table 102 before the flap: %q", routes())
	}
	ipn(t, ns, "link", "set", "gw0", "down")
	if strings.Contains(routes(), "default via 192.0.2.2") {
		t.Skip("this kernel keeps the route of a link that is down; nothing to repair")
	}
	res, err := dp.Apply(ctx, back)
	if err != nil {
		t.Fatalf("rollback with the link down: %v", err)
	}
	if len(res.Corrected) == 0 || !strings.Contains(strings.Join(res.Corrected, "; "), "ip route default via 192.0.2.2 table 102: missing") {
		t.Errorf("rollback with the link down reported %q, want the missing route", res.Corrected)
	}
	if got := nsRun(t, ns, "nft", "list", "set", "inet", nft.DefaultTable, "moved_skm2_v4"); strings.Contains(got, "10.0.0.1") {
		t.Errorf("after the rollback the set still holds the address:\n%s", got)
	}
	ipn(t, ns, "link", "set", "gw0", "up")
	// The link lost its IPv6 address going down (keep_addr_on_down is 0 by
	// default): the network's configuration puts it back.
	ipn(t, ns, "addr", "replace", "2001:db8:ffff::fe/64", "dev", "gw0", "nodad")
	if _, err := dp.Apply(ctx, moved); err != nil {
		t.Fatalf("apply after the link came back: %v", err)
	}
	if !strings.Contains(routes(), "default via 192.0.2.2") {
		t.Errorf("table 102 after the link came back: %q, want the default route again", routes())
	}
	if d, err := dp.Drift(ctx, moved); err != nil || !d.Empty() {
		t.Errorf("drift after the repair: %v, %v", d, err)
	}
}
