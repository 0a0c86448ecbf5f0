package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cutover/cutover/internal/netnsrun"
	"github.com/cutover/cutover/internal/testenv"
)

func TestMain(m *testing.M) {
	MaybeRunResponder()
	if os.Getenv(speakerEnv) != "" {
		os.Exit(runTestSpeaker())
	}
	os.Exit(m.Run())
}

// testName is a lab name unique to this test run.
func testName() string {
	return fmt.Sprintf("t%d-%04x", os.Getpid()%100000, rand.IntN(0x10000))
}

// upTestLab brings up a lab with n IPv4 and n6 IPv6 VMs under a unique name
// and removes it when the test ends, checking that nothing is left.
func upTestLab(t *testing.T, n, n6 int) *Lab {
	t.Helper()
	testenv.RequireFRR(t)
	name := testName()
	log := zerolog.New(zerolog.NewTestWriter(t))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var daemons []Daemon
	t.Cleanup(func() {
		if err := Down(context.Background(), name, log); err != nil {
			t.Errorf("Down: %v", err)
		}
		assertGone(t, name, daemons)
	})
	l, err := Up(ctx, Config{Name: name, VMs: append(DefaultVMs(n), DefaultVMs6(n6)...)}, log)
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	daemons = l.Daemons()
	return l
}

// assertGone checks that nothing of the lab is left: no namespace, no
// directory, no daemon process.
func assertGone(t *testing.T, name string, daemons []Daemon) {
	t.Helper()
	nss, err := labNamespaces(name)
	if err != nil {
		t.Error(err)
	}
	if len(nss) > 0 {
		t.Errorf("namespaces left: %v", nss)
	}
	if _, err := os.Lstat(DefaultDir(name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state directory %s left (%v)", DefaultDir(name), err)
	}
	if pids := labProcesses(name); len(pids) > 0 {
		t.Errorf("processes of the lab left: %v", pids)
	}
	for _, d := range daemons {
		if alive(d.PID) {
			t.Errorf("%s/%s (pid %d) still running", d.Node, d.Name, d.PID)
		}
		if slices.Contains(frrDaemons, d.Name) {
			if _, err := os.Stat(fmt.Sprintf("/var/tmp/frr/%s.%d", d.Name, d.PID)); err == nil {
				t.Errorf("FRR temp directory of %s/%s left", d.Node, d.Name)
			}
		}
	}
}

// labProcesses lists live processes whose command line names the lab's
// directory (FRR daemons, responders).
func labProcesses(name string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err == nil && processMatches(pid, DefaultDir(name)+"/") {
			out = append(out, pid)
		}
	}
	return out
}

func vmAddr(l *Lab, i int) netip.Addr { return l.Topology().VMs[i].Addr() }

func TestUpBaseline(t *testing.T) {
	// More VMs than fit on lo: the rest are on veths vms1 and vms2.
	l := upTestLab(t, vmsOnLo+vmsPerIface+52, 5)
	ctx := context.Background()
	topo := l.Topology()
	skm1 := topo.SiteNextHop[NodeSKM1]

	fib, err := l.EdgeFIB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for c, want := range map[netip.Prefix]netip.Addr{DefaultCovering4: skm1.V4, DefaultCovering6: skm1.V6} {
		if got := fib[c]; got != want {
			t.Errorf("edge FIB %s via %v, want via %s (skm1)", c, got, want)
		}
	}
	n := vmsOnLo + vmsPerIface + 57
	if len(topo.VMs) != n {
		t.Errorf("topology has %d VMs, want %d", len(topo.VMs), n)
	}

	// Every VM answers from hosp with skm1, v4 and v6, on lo and beyond.
	for _, i := range []int{0, vmsOnLo - 1, vmsOnLo, vmsOnLo + vmsPerIface, n - 6, n - 5, n - 1} {
		body, err := l.HTTPGet(ctx, NodeHosp, vmAddr(l, i), HTTPPort)
		if err != nil || body != "skm1\n" {
			t.Errorf("GET %s from hosp = %q, %v; want \"skm1\\n\"", vmAddr(l, i), body, err)
		}
	}

	// Kernel settings of the edge.
	for key, want := range map[string]string{
		"net.ipv4.ip_forward":              "1",
		"net.ipv6.conf.all.forwarding":     "1",
		"net.ipv4.conf.all.rp_filter":      "0",
		"net.ipv4.conf.skm2.rp_filter":     "0",
		"net.ipv6.conf.default.accept_dad": "0",
	} {
		var got []byte
		err := netnsrun.Run(l.Namespace(NodeEdge), func() (err error) {
			got, err = os.ReadFile("/proc/sys/" + strings.ReplaceAll(key, ".", "/"))
			return err
		})
		if err != nil || strings.TrimSpace(string(got)) != want {
			t.Errorf("edge %s = %q, %v; want %s", key, got, err, want)
		}
	}

	if pids := labProcesses(l.Name()); len(pids) != 5 {
		t.Errorf("lab processes %v, want 5 (3 FRR daemons, 2 responders)", pids)
	}

	// Open finds the same lab.
	o, err := Open(l.Name())
	if err != nil {
		t.Fatal(err)
	}
	if o.Dir() != l.Dir() || len(o.Topology().VMs) != n || len(o.Daemons()) != 5 {
		t.Errorf("Open: dir %s, %d VMs, %d daemons; want %s, %d, 5", o.Dir(), len(o.Topology().VMs), len(o.Daemons()), l.Dir(), n)
	}
}

func TestVMDownAndSlow(t *testing.T) {
	l := upTestLab(t, 20, 2)
	ctx := context.Background()
	vm, other, vm6 := vmAddr(l, 0), vmAddr(l, 1), vmAddr(l, 20)

	if err := l.SetVMDown(NodeSKM1, []netip.Addr{vm, vm6}, true); err != nil {
		t.Fatal(err)
	}
	for _, a := range []netip.Addr{vm, vm6} {
		if body, err := l.HTTPGet(ctx, NodeHosp, a, HTTPPort); err == nil || !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("GET down VM %s = %q, %v; want connection refused", a, body, err)
		}
		// A bare TCP connect fails too, like for a VM that is off.
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		c, err := l.DialContext(dctx, NodeHosp, "tcp", netip.AddrPortFrom(a, HTTPPort).String())
		cancel()
		if err == nil {
			c.Close()
			t.Errorf("TCP connect to down VM %s:80 succeeded (the kernel should refuse it)", a)
		}
	}
	if body, err := l.HTTPGet(ctx, NodeHosp, other, HTTPPort); err != nil || body != "skm1\n" {
		t.Errorf("GET other VM %s = %q, %v; want skm1", other, body, err)
	}
	if err := l.SetVMDown(NodeSKM1, []netip.Addr{vm, vm6}, false); err != nil {
		t.Fatal(err)
	}
	for _, a := range []netip.Addr{vm, vm6} {
		if body, err := l.HTTPGet(ctx, NodeHosp, a, HTTPPort); err != nil || body != "skm1\n" {
			t.Errorf("GET VM %s back up = %q, %v; want skm1", a, body, err)
		}
	}

	const delay = 300 * time.Millisecond
	if err := l.SetVMDelay(NodeSKM1, []netip.Addr{vm}, delay); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if body, err := l.HTTPGet(ctx, NodeHosp, vm, HTTPPort); err != nil || body != "skm1\n" {
		t.Errorf("GET slow VM = %q, %v", body, err)
	}
	if took := time.Since(start); took < delay {
		t.Errorf("slow VM answered in %s, want >= %s", took, delay)
	}
	if err := l.SetVMDelay(NodeSKM1, []netip.Addr{vm}, 0); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"not a VM", l.SetVMDown(NodeSKM1, []netip.Addr{netip.MustParseAddr("10.99.0.1")}, true),
			"responder of skm1: down: 10.99.0.1 not a VM of skm1"},
		{"no site", l.SetVMDown("skm3", []netip.Addr{vm}, true), `site "skm3": no such site (want one of [skm1 skm2])`},
		{"no addrs", l.SetVMDelay(NodeSKM2, nil, time.Second), "set VM delay: no addresses"},
	} {
		if tc.err == nil || tc.err.Error() != tc.want {
			t.Errorf("%s: error %v, want %q", tc.name, tc.err, tc.want)
		}
	}
}

func TestStatusAndVtysh(t *testing.T) {
	l := upTestLab(t, 10, 0)
	ctx := context.Background()
	st, err := l.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Healthy() {
		t.Errorf("status problems: %v", st.Problems)
	}
	if len(st.Daemons) != 5 {
		t.Errorf("%d daemons, want 5 (zebra, staticd, bgpd, 2 responders)", len(st.Daemons))
	}
	for _, d := range st.Daemons {
		if !d.Alive {
			t.Errorf("%s/%s not alive", d.Node, d.Name)
		}
	}
	for _, lk := range st.Links {
		if !lk.Up {
			t.Errorf("link %s-%s down", lk.A, lk.B)
		}
	}
	topo := l.Topology()
	var peers []netip.Addr
	for _, s := range st.Sessions {
		peers = append(peers, s.Peer)
		if s.RemoteAS != ControllerAS || s.Established() {
			t.Errorf("session %s: AS %d, state %s; want AS %d, not established (no controller)", s.Peer, s.RemoteAS, s.State, ControllerAS)
		}
	}
	if want := []netip.Addr{topo.Ctl4, topo.Ctl6}; !slices.Equal(peers, want) {
		t.Errorf("BGP neighbors %v, want %v", peers, want)
	}
	if st.FIB.Static != 2 || st.FIB.BGP != 0 {
		t.Errorf("edge FIB counts %+v, want 2 static, 0 BGP", st.FIB)
	}

	// The neighbor's configuration as FRR reports it.
	out, err := l.Vtysh(ctx, NodeEdge, "show bgp neighbors "+topo.Ctl4.String()+" json")
	if err != nil {
		t.Fatal(err)
	}
	var nb map[string]struct {
		Hold      int    `json:"bgpTimerConfiguredHoldTimeMsecs"`
		Keepalive int    `json:"bgpTimerConfiguredKeepAliveIntervalMsecs"`
		PeerGroup string `json:"peerGroup"`
		MinAdv    int    `json:"minBtwnAdvertisementRunsTimerMsecs"`
	}
	if err := json.Unmarshal([]byte(out), &nb); err != nil {
		t.Fatalf("parse %q: %v", out, err)
	}
	n := nb[topo.Ctl4.String()]
	if n.Hold != 9000 || n.Keepalive != 3000 || n.PeerGroup != "CONTROLLER" || n.MinAdv != 0 {
		t.Errorf("neighbor %s: %+v; want hold 9000, keepalive 3000, peer-group CONTROLLER, advertisement-interval 0", topo.Ctl4, n)
	}
	if _, err := l.Vtysh(ctx, NodeSKM1, "show version"); err == nil || err.Error() != `vtysh: node "skm1" runs no FRR (the edges do: edge)` {
		t.Errorf("vtysh on skm1: %v", err)
	}
}

func TestUpTwiceDownTwice(t *testing.T) {
	testenv.RequireFRR(t)
	name := testName()
	log := zerolog.New(zerolog.NewTestWriter(t))
	ctx := context.Background()
	t.Cleanup(func() { Down(ctx, name, log) })
	first, err := Up(ctx, Config{Name: name, VMs: DefaultVMs(5)}, log)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Up(ctx, Config{Name: name, VMs: DefaultVMs(7)}, log)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range first.Daemons() {
		if alive(d.PID) {
			t.Errorf("first lab's %s/%s (pid %d) survived the second Up", d.Node, d.Name, d.PID)
		}
	}
	st, err := second.Status(ctx)
	if err != nil || !st.Healthy() || st.VMs != 7 {
		t.Errorf("second lab: %d VMs, problems %v, err %v; want 7, none", st.VMs, st.Problems, err)
	}
	if body, err := second.HTTPGet(ctx, NodeHosp, vmAddr(second, 6), HTTPPort); err != nil || body != "skm1\n" {
		t.Errorf("GET after second Up = %q, %v", body, err)
	}
	for i := range 2 {
		if err := Down(ctx, name, log); err != nil {
			t.Errorf("Down #%d: %v", i+1, err)
		}
	}
	assertGone(t, name, append(first.Daemons(), second.Daemons()...))
	if _, err := Open(name); !errors.Is(err, ErrNotUp) {
		t.Errorf("Open after Down: %v, want ErrNotUp", err)
	}
}

func TestDownAfterCrash(t *testing.T) {
	testenv.RequireFRR(t)
	name := testName()
	log := zerolog.New(zerolog.NewTestWriter(t))
	ctx := context.Background()
	t.Cleanup(func() { Down(ctx, name, log) })
	l, err := Up(ctx, Config{Name: name, VMs: DefaultVMs(5)}, log)
	if err != nil {
		t.Fatal(err)
	}
	// The crash: the state directory is gone, namespaces and processes stay.
	if err := os.RemoveAll(l.Dir()); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(name); !errors.Is(err, ErrNotUp) {
		t.Errorf("Open without state: %v, want ErrNotUp", err)
	}
	if nss, _ := labNamespaces(name); len(nss) != 5 {
		t.Fatalf("before Down: namespaces %v, want 5", nss)
	}
	if err := Down(ctx, name, log); err != nil {
		t.Fatal(err)
	}
	assertGone(t, name, l.Daemons())
}

func TestUpRejectsBadConfig(t *testing.T) {
	log := zerolog.New(zerolog.NewTestWriter(t))
	_, err := Up(context.Background(), Config{Name: "Bad Name"}, log)
	want := `lab name "Bad Name": want 1-31 characters of a-z, 0-9, '-' and '_', starting with a letter or digit`
	if err == nil || err.Error() != want {
		t.Errorf("Up: %v, want %q", err, want)
	}
}

// TestEdgePolicyWithSpeaker proves the edge's session toward the controller
// with a real speaker in ctl: in-range routes via skm2 reach the FIB and the
// hospital's traffic, out-of-range ones and a default route are refused,
// the edge mirrors its best paths back with the next-hop unchanged, and the
// routes go when the speaker does.
func TestEdgePolicyWithSpeaker(t *testing.T) {
	l := upTestLab(t, 20, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	topo := l.Topology()
	skm2 := topo.SiteNextHop[NodeSKM2]
	var inRange []speakerRoute
	for _, i := range []int{0, 1, 2, 3, 20} {
		vm := topo.VMs[i]
		nh := skm2.V4
		if vm.Addr().Is6() {
			nh = skm2.V6
		}
		inRange = append(inRange, speakerRoute{Prefix: vm, NextHop: nh})
	}
	refused := []speakerRoute{
		{Prefix: netip.MustParsePrefix("10.99.0.0/24"), NextHop: skm2.V4},
		{Prefix: netip.MustParsePrefix("0.0.0.0/0"), NextHop: skm2.V4},
		{Prefix: netip.MustParsePrefix("fd00:99::/64"), NextHop: skm2.V6},
	}
	sp := startSpeaker(t, l, speakerConfig{
		RouterID: topo.Ctl4, LocalAS: topo.ControllerAS, Peer: topo.EdgeCtl4, PeerAS: topo.EdgeAS,
		Announce: append(slices.Clone(inRange), refused...), WantMirrored: len(inRange),
	})
	next, stop := sp.next, sp.stop
	if ev := next(); ev.Event != "established" {
		t.Fatalf("speaker: %+v, want established", ev)
	}
	ev := next()

	// The mirror: exactly the in-range routes, next-hop unchanged.
	slices.SortFunc(ev.Mirrored, func(a, b speakerRoute) int { return a.Prefix.Addr().Compare(b.Prefix.Addr()) })
	if !slices.Equal(ev.Mirrored, inRange) {
		t.Errorf("mirrored by the edge:\n%v\nwant\n%v", ev.Mirrored, inRange)
	}

	// The FIB: in-range routes via skm2, nothing else from BGP.
	fib := waitFIB(t, l, func(fib map[netip.Prefix]netip.Addr) bool { return fib[inRange[0].Prefix] == skm2.V4 })
	for _, r := range inRange {
		if fib[r.Prefix] != r.NextHop {
			t.Errorf("edge FIB %s via %v, want %s", r.Prefix, fib[r.Prefix], r.NextHop)
		}
	}
	for _, r := range refused {
		if gw, ok := fib[r.Prefix]; ok {
			t.Errorf("edge FIB holds refused %s via %s", r.Prefix, gw)
		}
	}
	for _, a := range []netip.Addr{vmAddr(l, 0), vmAddr(l, 20)} {
		if body, err := l.HTTPGet(ctx, NodeHosp, a, HTTPPort); err != nil || body != "skm2\n" {
			t.Errorf("GET moved VM %s = %q, %v; want skm2", a, body, err)
		}
	}
	if body, err := l.HTTPGet(ctx, NodeHosp, vmAddr(l, 4), HTTPPort); err != nil || body != "skm1\n" {
		t.Errorf("GET unmoved VM = %q, %v; want skm1", body, err)
	}
	st, err := l.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Sessions[0].Peer != topo.Ctl4 || !st.Sessions[0].Established() ||
		st.Sessions[0].Received["ipv4Unicast"] != 4 || st.Sessions[0].Received["ipv6Unicast"] != 1 {
		t.Errorf("status session %+v; want %s established with 4 IPv4 and 1 IPv6 prefixes", st.Sessions[0], topo.Ctl4)
	}

	// Without graceful restart on the speaker, its routes go with it.
	stop()
	waitFIB(t, l, func(fib map[netip.Prefix]netip.Addr) bool {
		_, ok := fib[inRange[0].Prefix]
		return !ok
	})
	if body, err := l.HTTPGet(ctx, NodeHosp, vmAddr(l, 0), HTTPPort); err != nil || body != "skm1\n" {
		t.Errorf("GET after speaker stop = %q, %v; want skm1", body, err)
	}
}

// waitFIB polls the edge FIB until ok or 15 s pass.
func waitFIB(t *testing.T, l *Lab, ok func(map[netip.Prefix]netip.Addr) bool) map[netip.Prefix]netip.Addr {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		fib, err := l.EdgeFIB(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if ok(fib) {
			return fib
		}
		if time.Now().After(deadline) {
			t.Fatalf("edge FIB did not reach the wanted state in 15s: %v", fib)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCustomDir(t *testing.T) {
	testenv.RequireFRR(t)
	name := testName()
	log := zerolog.New(zerolog.NewTestWriter(t))
	ctx := context.Background()
	dir := filepath.Join(os.TempDir(), "cutover-lab-"+name) // /tmp is open to the frr user
	t.Cleanup(func() { Down(ctx, name, log); os.RemoveAll(dir) })
	l, err := Up(ctx, Config{Name: name, Dir: dir, VMs: DefaultVMs(3)}, log)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "edge", "bgpd.conf")); err != nil {
		t.Errorf("FRR config not in the custom directory: %v", err)
	}
	o, err := Open(name) // through the link at the default place
	if err != nil || o.Dir() != dir {
		t.Fatalf("Open: %v, dir %v; want %s", err, o, dir)
	}
	if body, err := o.HTTPGet(ctx, NodeHosp, vmAddr(o, 2), HTTPPort); err != nil || body != "skm1\n" {
		t.Errorf("GET = %q, %v", body, err)
	}
	if err := Down(ctx, name, log); err != nil {
		t.Fatal(err)
	}
	assertGone(t, name, l.Daemons())
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("custom directory left: %v", err)
	}

	// An existing directory is refused: Down would remove all of it.
	keep := t.TempDir()
	os.WriteFile(filepath.Join(keep, "precious"), nil, 0o644)
	_, err = Up(ctx, Config{Name: name, Dir: keep, VMs: DefaultVMs(1)}, log)
	if want := "lab up " + strconv.Quote(name) + ": state directory " + keep + " exists: choose a new directory"; err == nil || err.Error() != want {
		t.Errorf("Up into an existing directory: %v, want %q", err, want)
	}
	if _, err := os.Stat(filepath.Join(keep, "precious")); err != nil {
		t.Errorf("existing directory damaged: %v", err)
	}
	assertGone(t, name, nil)
}

func TestUpNeedsRoot(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("runs as root: the check for root cannot fail")
	}
	_, err := Up(context.Background(), Config{Name: "x"}, zerolog.New(zerolog.NewTestWriter(t)))
	if want := "lab up: needs root (network namespaces, veth links, FRR): run it as root"; err == nil || err.Error() != want {
		t.Errorf("Up as non-root: %v, want %q", err, want)
	}
}

// TestUpFailureCleansUp: an Up that fails half-way leaves nothing behind.
func TestUpFailureCleansUp(t *testing.T) {
	testenv.RequireFRR(t)
	fakeFRR := t.TempDir()
	for _, d := range frrDaemons {
		script := "#!/bin/sh\necho fake " + d + ": refusing to start >&2\nexit 3\n"
		if d != "zebra" {
			script = "#!/bin/sh\nexec " + filepath.Join(DefaultFRRDir, d) + ` "$@"` + "\n"
		}
		if err := os.WriteFile(filepath.Join(fakeFRR, d), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string // in the error
	}{
		{"zebra fails", Config{FRRDir: fakeFRR}, []string{"start zebra on edge: exited at start (exit status 3)", "fake zebra: refusing to start"}},
		{"responder fails", Config{Responder: "/bin/false"}, []string{"start responder in skm1: exited at start (exit status 1)", "lab.MaybeRunResponder"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := testName()
			log := zerolog.New(zerolog.NewTestWriter(t))
			cfg := tc.cfg
			cfg.Name, cfg.VMs = name, DefaultVMs(3)
			t.Cleanup(func() { Down(context.Background(), name, log) })
			_, err := Up(context.Background(), cfg, log)
			if err == nil {
				t.Fatal("Up succeeded")
			}
			for _, w := range append([]string{"lab up " + strconv.Quote(name) + ": "}, tc.want...) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			assertGone(t, name, nil)
		})
	}
}
