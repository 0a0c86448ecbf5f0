//go:build linux

package kernel

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	vnl "github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/cutover/cutover/internal/testenv"
	"github.com/cutover/cutover/nft"
)

// inNS runs fn on an OS thread switched to the network namespace ns; sockets
// fn creates stay in ns.
func inNS(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		target, err := netns.GetFromName(ns)
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			errc <- err
			return
		}
		err = fn()
		if serr := netns.Set(orig); serr != nil {
			// Leave the thread locked: the runtime ends it with the goroutine.
			errc <- errors.Join(err, serr)
			return
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	return <-errc
}

// siteServer listens on addr in ns and answers each connection with the site
// name, then every line it reads with "<site> <line>".
func siteServer(t *testing.T, ns, site, addr string) {
	t.Helper()
	var ln net.Listener
	if err := inNS(ns, func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatalf("listen in %s: %v", ns, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				fmt.Fprintf(c, "%s\n", site)
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					fmt.Fprintf(c, "%s %s\n", site, sc.Text())
				}
			}()
		}
	}()
}

// client is a TCP connection opened in the hospital's namespace.
type client struct {
	c net.Conn
	r *bufio.Reader
}

// dial connects from ns to addr and returns the site that answered.
func dial(t *testing.T, ns, addr string) (*client, string) {
	t.Helper()
	var c net.Conn
	if err := inNS(ns, func() (err error) {
		c, err = net.DialTimeout("tcp", addr, 3*time.Second)
		return err
	}); err != nil {
		t.Fatalf("dial %s from %s: %v", addr, ns, err)
	}
	t.Cleanup(func() { c.Close() })
	cl := &client{c: c, r: bufio.NewReader(c)}
	site, err := cl.line()
	if err != nil {
		t.Fatalf("read greeting: %v", err)
	}
	return cl, site
}

func (c *client) line() (string, error) {
	_ = c.c.SetDeadline(time.Now().Add(3 * time.Second))
	s, err := c.r.ReadString('\n')
	return strings.TrimSuffix(s, "\n"), err
}

// ask sends msg and returns the answer.
func (c *client) ask(msg string) (string, error) {
	_ = c.c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := fmt.Fprintf(c.c, "%s\n", msg); err != nil {
		return "", err
	}
	return c.line()
}

// nftGen returns the nftables ruleset generation of ns: every committed
// transaction adds one.
func nftGen(t *testing.T, ns string) uint32 {
	t.Helper()
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: int(h)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msgs, err := c.Execute(netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETGEN), Flags: netlink.Request},
		Data:   []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0},
	})
	if err != nil {
		t.Fatalf("get nftables generation: %v", err)
	}
	for _, m := range msgs {
		for typ, v := range nlAttrs(m.Data[4:]) {
			if typ == unix.NFTA_GEN_ID && len(v) == 4 {
				return binary.BigEndian.Uint32(v)
			}
		}
	}
	t.Fatal("no NFTA_GEN_ID in the answer")
	return 0
}

// topology builds hosp → gw → {skm1, skm2}; the VM address is on lo in both
// sites, and gw routes it to skm1.
type topology struct {
	hosp, gw, skm1, skm2 string
	sites                []nft.Site
	vm                   string // VM address:port
}

func newTopology(t *testing.T) *topology {
	t.Helper()
	tp := &topology{
		hosp: newTestNS(t, "hosp"), gw: newTestNS(t, "gw"),
		skm1: newTestNS(t, "skm1"), skm2: newTestNS(t, "skm2"),
		vm: "10.100.0.5:7000",
	}
	nsRun(t, tp.gw, "sysctl", "-qw", "net.ipv4.ip_forward=1",
		"net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0")
	link := func(a, aIf, aAddr, b, bIf, bAddr string) {
		ipn(t, a, "link", "add", aIf, "type", "veth", "peer", "name", bIf, "netns", b)
		ipn(t, a, "addr", "add", aAddr, "dev", aIf)
		ipn(t, b, "addr", "add", bAddr, "dev", bIf)
		ipn(t, a, "link", "set", aIf, "up")
		ipn(t, b, "link", "set", bIf, "up")
	}
	link(tp.gw, "to-hosp", "10.10.0.254/24", tp.hosp, "to-gw", "10.10.0.1/24")
	link(tp.gw, "to-skm1", "10.11.0.254/24", tp.skm1, "to-gw", "10.11.0.1/24")
	link(tp.gw, "to-skm2", "10.12.0.254/24", tp.skm2, "to-gw", "10.12.0.1/24")
	ipn(t, tp.hosp, "route", "add", "default", "via", "10.10.0.254")
	for _, s := range []struct{ ns, gw string }{{tp.skm1, "10.11.0.254"}, {tp.skm2, "10.12.0.254"}} {
		ipn(t, s.ns, "addr", "add", "10.100.0.5/32", "dev", "lo")
		ipn(t, s.ns, "route", "add", "default", "via", s.gw)
	}
	ipn(t, tp.gw, "route", "add", "10.100.0.0/24", "via", "10.11.0.1")
	siteServer(t, tp.skm1, "skm1", tp.vm)
	siteServer(t, tp.skm2, "skm2", tp.vm)
	tp.sites = []nft.Site{
		{Name: "skm1", Mark: 0xc01, Table: 101, NextHop4: netip.MustParseAddr("10.11.0.1")},
		{Name: "skm2", Mark: 0xc02, Table: 102, NextHop4: netip.MustParseAddr("10.12.0.1")},
	}
	return tp
}

// waitDrained waits until no drain of site is left, and returns the last
// one that finished.
func waitDrained(t *testing.T, dp nft.Dataplane, site string, within time.Duration) nft.DrainStatus {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		cs, err := dp.Counters(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if c := cs[site]; c.Draining == 0 {
			if len(c.Drains) == 0 {
				t.Fatalf("site %s: no drain at all", site)
			}
			return c.Drains[len(c.Drains)-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("site %s still draining after %s: %+v", site, within, cs[site])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSteeringDrainRollback runs the acceptance in a real topology:
// (1) after a batch a new TCP connection lands in skm2; (2) a connection
// opened before keeps talking to skm1 until the drain timeout, then its
// conntrack entry is deleted, its next packet is a new flow steered to skm2,
// which resets it; (3) the rollback is one transaction and new flows land in
// skm1 again, while the skm2 connection drains; (4) the counters show the
// traffic steered to skm2.
func TestSteeringDrainRollback(t *testing.T) {
	testenv.RequireRoot(t)
	tp := newTopology(t)
	const drainTimeout = 2 * time.Second
	dp := newKernel(t, nft.Config{NetNS: tp.gw, DrainTimeout: drainTimeout})
	ctx := context.Background()
	base := nft.State{Sites: tp.sites}
	moved := nft.State{Sites: tp.sites, Moved: map[string][]netip.Prefix{"skm2": {mp("10.100.0.5/32")}}}

	// The table goes in before the cutover starts, so that conntrack tracks
	// the flows that are open when the batch moves their address.
	if _, err := dp.Apply(ctx, base); err != nil {
		t.Fatal(err)
	}
	old, site := dial(t, tp.hosp, tp.vm)
	if site != "skm1" {
		t.Fatalf("before the move a connection lands in %s, want skm1", site)
	}

	gen := nftGen(t, tp.gw)
	res, err := dp.Apply(ctx, moved)
	if err != nil {
		t.Fatal(err)
	}
	if got := nftGen(t, tp.gw); got != gen+1 {
		t.Errorf("the batch took %d nftables transactions, want 1", got-gen)
	}
	if res.Drain == nil || len(res.Drain.Prefixes) != 1 || res.Drain.Prefixes[0] != mp("10.100.0.5/32") {
		t.Fatalf("the batch started drain %+v, want one of 10.100.0.5/32", res.Drain)
	}

	// (1) A new connection lands in skm2.
	moving, site := dial(t, tp.hosp, tp.vm)
	if site != "skm2" {
		t.Fatalf("after the move a new connection lands in %s, want skm2", site)
	}
	// (2) The old connection still talks to skm1.
	for i := range 3 {
		if got, err := old.ask(fmt.Sprint("old", i)); err != nil || got != fmt.Sprint("skm1 old", i) {
			t.Fatalf("during the drain the old connection answers %q, %v; want skm1", got, err)
		}
	}
	if f := conntrackFlow(t, tp.gw, uint16(old.c.LocalAddr().(*net.TCPAddr).Port)); f == nil || f.Mark != 0 {
		t.Errorf("during the drain the old flow's conntrack entry is %v, want one with mark 0", f)
	}
	if f := conntrackFlow(t, tp.gw, uint16(moving.c.LocalAddr().(*net.TCPAddr).Port)); f == nil || f.Mark != 0xc02 {
		t.Errorf("the new flow's conntrack entry is %v, want one with skm2's mark 0xc02", f)
	}
	// (4) Counters: the new connection's packets are steered to skm2; the
	// old connection's go the old path.
	c1, err := dp.Counters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c1["skm2"].Packets == 0 || c1["skm2"].OldPathPackets == 0 || c1["skm2"].Draining != 1 {
		t.Errorf("skm2 counters %+v: want steered and old-path packets and one drain", c1["skm2"])
	}
	if got, err := moving.ask("hello"); err != nil || got != "skm2 hello" {
		t.Fatalf("the new connection answers %q, %v; want skm2", got, err)
	}
	c2, err := dp.Counters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c2["skm2"].Packets <= c1["skm2"].Packets || c2["skm2"].Bytes <= c1["skm2"].Bytes {
		t.Errorf("skm2 steered counters did not grow with traffic: %+v then %+v", c1["skm2"], c2["skm2"])
	}

	// (2) After the drain timeout the old flow is cut over: its next packet
	// reaches skm2, which does not know the connection and resets it.
	if st := waitDrained(t, dp, "skm2", drainTimeout+5*time.Second); st.ID != res.Drain.ID ||
		st.Reason != "timeout" || st.Flushed != 1 || st.Err != "" {
		t.Errorf("the drain finished as %+v, want drain %d by timeout with 1 flow cut over", st, res.Drain.ID)
	}
	oldPort := uint16(old.c.LocalAddr().(*net.TCPAddr).Port)
	if f := conntrackFlow(t, tp.gw, oldPort); f != nil {
		t.Errorf("after the drain the old flow's conntrack entry is still there: %s", f)
	}
	if got, err := old.ask("after-drain"); err == nil {
		t.Fatalf("after the drain the old connection still answers %q; want a reset from skm2", got)
	} else {
		t.Logf("after the drain the old connection fails as expected: %v", err)
	}

	// (3) Rollback: one transaction; new flows land in skm1, the skm2
	// connection keeps its path while the rollback drains.
	gen = nftGen(t, tp.gw)
	res, err = dp.Apply(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	if got := nftGen(t, tp.gw); got != gen+1 {
		t.Errorf("the rollback took %d nftables transactions, want 1", got-gen)
	}
	if len(res.Changes.Remove) != 1 || res.Changes.Remove[0] != (nft.Element{Set: "moved_skm2_v4", Prefix: mp("10.100.0.5/32")}) {
		t.Errorf("rollback changes %+v, want 10.100.0.5/32 removed from moved_skm2_v4", res.Changes)
	}
	if _, site := dial(t, tp.hosp, tp.vm); site != "skm1" {
		t.Fatalf("after the rollback a new connection lands in %s, want skm1", site)
	}
	if got, err := moving.ask("still"); err != nil || got != "skm2 still" {
		t.Fatalf("during the rollback's drain the skm2 connection answers %q, %v; want skm2", got, err)
	}
}

// TestHandEditIsDrift: (5) a hand edit of the table (an element added, a
// rule deleted) is reported by Drift, refused by Apply without Correct and
// fixed by Apply with Correct, after which steering works again.
func TestHandEditIsDrift(t *testing.T) {
	testenv.RequireRoot(t)
	tp := newTopology(t)
	ctx := context.Background()
	moved := nft.State{Sites: tp.sites, Moved: map[string][]netip.Prefix{"skm2": {mp("10.100.0.5/32")}}}
	dp := newKernel(t, nft.Config{NetNS: tp.gw, DrainTimeout: time.Second})
	if _, err := dp.Apply(ctx, moved); err != nil {
		t.Fatal(err)
	}
	if d, err := dp.Drift(ctx, moved); err != nil || !d.Empty() {
		t.Fatalf("drift right after Apply: %v, %v", d, err)
	}

	nsRun(t, tp.gw, "nft", "add", "element", "inet", nft.DefaultTable, "moved_skm2_v4", "{ 10.100.0.9 }")
	handle := ruleHandle(t, tp.gw, "steer", "cutover:new:skm2:v4:hosts")
	nsRun(t, tp.gw, "nft", "delete", "rule", "inet", nft.DefaultTable, "steer", "handle", handle)
	ipn(t, tp.gw, "rule", "del", "fwmark", "0xc01", "lookup", "101", "priority", "9000")
	if _, site := dial(t, tp.hosp, tp.vm); site != "skm1" {
		t.Fatalf("with the rule deleted a new connection lands in %s, want skm1 (not steered)", site)
	}

	d, err := dp.Drift(ctx, moved)
	if err != nil {
		t.Fatal(err)
	}
	want := nft.Drift{
		Extra: []nft.Element{{Set: "moved_skm2_v4", Prefix: mp("10.100.0.9/32")}},
		Objects: []string{
			`chain steer: rule "cutover:new:skm2:v4:hosts" missing`,
			"ip rule fwmark 0xc01 lookup 101 priority 9000: missing",
		},
	}
	if d.String() != want.String() {
		t.Errorf("drift:\n%s\nwant:\n%s", d, want)
	}

	var de *nft.DriftError
	if _, err := dp.Apply(ctx, moved); !errors.As(err, &de) || de.Drift.String() != want.String() {
		t.Fatalf("Apply without Correct: %v; want a DriftError with %s", err, want)
	}

	// A new dataplane (the daemon restarted with Correct) has applied
	// nothing yet: the objects are drift, the element is a change.
	fixer := newKernel(t, nft.Config{NetNS: tp.gw, Correct: true})
	res, err := fixer.Apply(ctx, moved)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Corrected, want.Objects) {
		t.Errorf("corrected %q, want %q", res.Corrected, want.Objects)
	}
	if !slices.Equal(res.Changes.Remove, want.Extra) || len(res.Changes.Add) != 0 {
		t.Errorf("changes %+v, want %s removed", res.Changes, want.Extra)
	}
	if d, err := fixer.Drift(ctx, moved); err != nil || !d.Empty() {
		t.Errorf("drift after the correction: %v, %v", d, err)
	}
	if _, site := dial(t, tp.hosp, tp.vm); site != "skm2" {
		t.Fatalf("after the correction a new connection lands in %s, want skm2", site)
	}
}

// ruleHandle returns the handle of the rule with comment tag in chain.
func ruleHandle(t *testing.T, ns, chain, tag string) string {
	t.Helper()
	out := nsRun(t, ns, "nft", "-a", "list", "chain", "inet", nft.DefaultTable, chain)
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, fmt.Sprintf("comment %q", tag)) {
			if i := strings.LastIndex(line, "# handle "); i >= 0 {
				return strings.TrimSpace(line[i+len("# handle "):])
			}
		}
	}
	t.Fatalf("no rule %q in:\n%s", tag, out)
	return ""
}

// conntrackFlow returns the conntrack entry in ns of the TCP flow from
// source port sport, or nil.
func conntrackFlow(t *testing.T, ns string, sport uint16) *vnl.ConntrackFlow {
	t.Helper()
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	nl, err := vnl.NewHandleAt(h, unix.NETLINK_NETFILTER)
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	flows, err := nl.ConntrackTableList(vnl.ConntrackTable, unix.AF_INET)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range flows {
		if f.Forward.Protocol == unix.IPPROTO_TCP && f.Forward.SrcPort == sport {
			return f
		}
	}
	return nil
}
