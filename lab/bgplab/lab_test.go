package bgplab_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cutover/cutover/bgp"
	"github.com/cutover/cutover/internal/testenv"
	"github.com/cutover/cutover/lab"
	"github.com/cutover/cutover/lab/bgplab"
)

func TestMain(m *testing.M) {
	lab.MaybeRunResponder()
	bgplab.MaybeServeSpeaker()
	maybeRunBench()
	os.Exit(m.Run())
}

// upLab brings up a lab with n IPv4 and n6 IPv6 VMs under a name unique to
// this run, and takes it down at the end of the test.
func upLab(t testing.TB, n, n6 int) *lab.Lab {
	t.Helper()
	testenv.RequireFRR(t)
	name := fmt.Sprintf("b%d-%04x", os.Getpid()%100000, rand.IntN(0x10000))
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
	t.Cleanup(func() {
		if err := lab.Down(context.Background(), name, log); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The edge reports to a BMP station in ctl, as the bench measures
	// the gate's confirmation by BMP; tests that do not run one leave the
	// edge retrying.
	shape := lab.DefaultShape()
	shape.BMP = netip.AddrPortFrom(netip.IPv6Unspecified(), bgp.DefaultBMPPort)
	l, err := lab.Up(ctx, lab.Config{Name: name, VMs: append(lab.DefaultVMs(n), lab.DefaultVMs6(n6)...), Shape: &shape}, log)
	if err != nil {
		t.Fatalf("lab up: %v", err)
	}
	return l
}

// startSpeaker runs a speaker in the lab's ctl namespace.
func startSpeaker(t *testing.T, l *lab.Lab, cfg bgp.Config) *bgplab.Remote {
	t.Helper()
	r, err := bgplab.Start(l.Namespace(lab.NodeCtl), cfg, testLogWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Kill() })
	return r
}

// testLogWriter sends a child's log lines to t.Log.
type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

func watchEdge(t *testing.T, l *lab.Lab) *bgplab.FIBWatch {
	t.Helper()
	w, err := bgplab.WatchFIB(l.Namespace(lab.NodeEdge))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return w
}

func prefixes(rs []bgp.Route) []netip.Prefix {
	ps := make([]netip.Prefix, len(rs))
	for i, r := range rs {
		ps[i] = r.Prefix
	}
	return ps
}

// TestLabAnnounce is the acceptance path of issue 3: announce every VM
// (2,000 IPv4 and 20 IPv6) via skm2, see the edge's kernel FIB send each
// to skm2 and the VM answer "skm2" to hosp, then withdraw and see skm1 again.
func TestLabAnnounce(t *testing.T) {
	l := upLab(t, 2000, 20)
	topo := l.Topology()
	ctx := context.Background()
	sp := startSpeaker(t, l, bgplab.ControllerConfig(topo, 0))
	fib := watchEdge(t, l)

	to2, err := bgplab.SiteRoutes(topo, lab.NodeSKM2, topo.VMs)
	if err != nil {
		t.Fatal(err)
	}
	fib.Expect(bgplab.FIBFor(to2, nil))
	start := time.Now()
	if err := sp.Set(ctx, to2); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	at, err := fib.Wait(wctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("edge FIB holds all %d routes via skm2 %s after Set (includes session start)", len(to2), at.Sub(start).Round(time.Millisecond))
	c, err := sp.WaitConverged(to2, 30*time.Second)
	if err != nil || !c.Done() {
		t.Fatalf("convergence: %s, %v", c, err)
	}
	t.Logf("edge mirror confirms: %s", c)

	for _, vm := range []netip.Addr{topo.VMs[0].Addr(), topo.VMs[1999].Addr(), topo.VMs[2000].Addr()} {
		body, err := l.HTTPGet(ctx, lab.NodeHosp, vm, lab.HTTPPort)
		if err != nil || strings.TrimSpace(body) != "skm2" {
			t.Errorf("hosp GET %s: %q, %v; want skm2", vm, body, err)
		}
	}

	fib.Expect(bgplab.FIBFor(nil, topo.VMs))
	start = time.Now()
	if err := sp.Set(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if at, err = fib.Wait(wctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("edge FIB withdrew all %d routes %s after Set", len(to2), at.Sub(start).Round(time.Millisecond))
	if c, err := sp.WaitConverged(bgp.Withdrawals(topo.VMs), 30*time.Second); err != nil || !c.Done() {
		t.Errorf("withdrawal convergence: %s, %v", c, err)
	}
	for _, vm := range []netip.Addr{topo.VMs[0].Addr(), topo.VMs[2000].Addr()} {
		body, err := l.HTTPGet(ctx, lab.NodeHosp, vm, lab.HTTPPort)
		if err != nil || strings.TrimSpace(body) != "skm1" {
			t.Errorf("hosp GET %s after withdrawal: %q, %v; want skm1", vm, body, err)
		}
	}
	if err := sp.Close(); err != nil {
		t.Error(err)
	}
}

// benchEnv makes the test binary run bgplab.Bench (it is then inside the
// lab's ctl namespace): "lab-name sizes runs".
const benchEnv = "CUTOVER_BGPLAB_BENCH"

func maybeRunBench() {
	arg := os.Getenv(benchEnv)
	if arg == "" {
		return
	}
	var name, sizes string
	var runs int
	if _, err := fmt.Sscan(arg, &name, &sizes, &runs); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	var ns []int
	for _, s := range strings.Split(sizes, ",") {
		var n int
		fmt.Sscan(s, &n)
		ns = append(ns, n)
	}
	if f := os.Getenv("CUTOVER_BENCH_CPUPROFILE"); f != "" {
		out, err := os.Create(f)
		if err == nil {
			pprof.StartCPUProfile(out)
			defer pprof.StopCPUProfile()
		}
	}
	l, err := lab.Open(name)
	if err == nil {
		var rs []bgplab.BenchResult
		rs, err = bgplab.Bench(context.Background(), l, bgplab.BenchOptions{
			Sizes: ns, Runs: runs, Reference: os.Getenv("CUTOVER_BENCH_REFERENCE") != "",
			Log: zerolog.New(os.Stderr).Level(benchLevel()),
		})
		if err == nil {
			err = json.NewEncoder(os.Stdout).Encode(rs)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
	pprof.StopCPUProfile()
	os.Exit(0)
}

// BenchmarkLabAnnounce measures, against the lab's FRR edge, the time from
// Set until the edge's kernel FIB holds all prefixes (announce via skm2,
// switch to skm1's gateway, withdraw), median of 3 runs, for 2,000, 10,000
// and 50,000 /32s (CUTOVER_BENCH_SIZES overrides, e.g. "2000"). It needs
// root and FRR; the same table prints with `cutover bench bgp`.
func BenchmarkLabAnnounce(b *testing.B) {
	sizes := os.Getenv("CUTOVER_BENCH_SIZES")
	if sizes == "" {
		sizes = "2000,10000,50000"
	}
	l := upLab(b, 5, 0)
	cmd, err := bgplab.Command(l.Namespace(lab.NodeCtl))
	if err != nil {
		b.Fatal(err)
	}
	cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%s %s %d", benchEnv, l.Name(), sizes, 3))
	cmd.Stderr = testLogWriter{b}
	if os.Getenv("CUTOVER_BENCH_LOG") != "" {
		cmd.Stderr = os.Stderr
	}
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("bench in ctl: %v", err)
	}
	var rs []bgplab.BenchResult
	if err := json.Unmarshal(out, &rs); err != nil {
		b.Fatal(err)
	}
	var table strings.Builder
	bgplab.WriteBenchTable(&table, rs)
	b.Log("\n" + table.String())
	for _, r := range rs {
		b.ReportMetric(r.Announce.Seconds(), fmt.Sprintf("announce%d-s", r.Prefixes))
		b.ReportMetric(r.Switch.Seconds(), fmt.Sprintf("switch%d-s", r.Prefixes))
		b.ReportMetric(r.Withdraw.Seconds(), fmt.Sprintf("withdraw%d-s", r.Prefixes))
	}
}

func benchLevel() zerolog.Level {
	if l, err := zerolog.ParseLevel(os.Getenv("CUTOVER_BENCH_LOG")); err == nil && l != zerolog.NoLevel {
		return l
	}
	return zerolog.WarnLevel
}

// TestLabGracefulRestart kills the speaker process with SIGKILL while the
// edge forwards 2,000 VMs to skm2 on its routes: the edge's FIB must not
// lose a single one, neither while no speaker runs nor when a new speaker
// comes up and re-announces them (no flap). A third speaker that
// re-announces only half of them proves End-of-RIB semantics: the other
// half goes back to skm1 at once, the re-announced half never moves.
func TestLabGracefulRestart(t *testing.T) {
	l := upLab(t, 2000, 0)
	topo := l.Topology()
	ctx := context.Background()
	cfg := bgplab.ControllerConfig(topo, 0)
	fib := watchEdge(t, l)
	to2, err := bgplab.SiteRoutes(topo, lab.NodeSKM2, topo.VMs)
	if err != nil {
		t.Fatal(err)
	}
	want := bgplab.FIBFor(to2, nil)

	sp := startSpeaker(t, l, cfg)
	fib.Expect(want)
	if err := sp.Set(ctx, to2); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if _, err := fib.Wait(wctx); err != nil {
		t.Fatal(err)
	}
	if c, err := sp.WaitConverged(to2, 30*time.Second); err != nil {
		t.Fatalf("convergence: %s, %v", c, err)
	}

	// Sample the FIB every 100 ms as well: the watch sees every change,
	// the samples show it from outside.
	sample := func(d time.Duration) (lowest int) {
		lowest = len(to2)
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			snap := fib.Snapshot()
			n := 0
			for p, gw := range want {
				if snap[p] == gw {
					n++
				}
			}
			lowest = min(lowest, n)
		}
		return lowest
	}
	if err := sp.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	if low := sample(5 * time.Second); low != len(to2) {
		t.Errorf("after kill -9: %d of %d routes via skm2 at the lowest sample", low, len(to2))
	}
	if low, n := fib.Low(); low != n {
		t.Fatalf("after kill -9: the edge FIB dropped to %d of %d routes", low, n)
	}
	t.Logf("speaker killed: all %d routes stayed in the edge FIB for %s", len(to2), time.Since(killed).Round(time.Millisecond))

	sp2 := startSpeaker(t, l, cfg)
	start := time.Now()
	if err := sp2.Set(ctx, to2); err != nil {
		t.Fatal(err)
	}
	if c, err := sp2.WaitConverged(to2, 60*time.Second); err != nil {
		t.Fatalf("convergence after restart: %s, %v", c, err)
	}
	t.Logf("restarted speaker converged %s after its first Set", time.Since(start).Round(time.Millisecond))
	if low := sample(2 * time.Second); low != len(to2) {
		t.Errorf("after restart: %d of %d routes via skm2 at the lowest sample", low, len(to2))
	}
	if low, n := fib.Low(); low != n {
		t.Fatalf("across the restart the edge FIB dropped to %d of %d routes", low, n)
	}
	out, err := l.Vtysh(ctx, lab.NodeEdge, "show bgp ipv4 unicast "+topo.VMs[0].String()+" json")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, `"stale"`) || !strings.Contains(out, topo.SiteNextHop[lab.NodeSKM2].V4.String()) {
		t.Errorf("edge's path for %s after restart is stale or not via skm2:\n%s", topo.VMs[0], out)
	}

	// Kill again and restart with only the first half: End-of-RIB makes the
	// edge drop the rest, the first half never moves.
	if err := sp2.Kill(); err != nil {
		t.Fatal(err)
	}
	half := to2[:1000]
	fib.Expect(bgplab.FIBFor(half, prefixes(to2[1000:])))
	sp3 := startSpeaker(t, l, cfg)
	if err := sp3.Set(ctx, half); err != nil {
		t.Fatal(err)
	}
	if _, err := fib.Wait(wctx); err != nil {
		t.Fatal(err)
	}
	snap := fib.Snapshot()
	for _, r := range half {
		if snap[r.Prefix] != r.NextHop {
			t.Fatalf("after the half restart %s is via %s, want %s", r.Prefix, snap[r.Prefix], r.NextHop)
		}
	}
	if body, err := l.HTTPGet(ctx, lab.NodeHosp, to2[1500].Prefix.Addr(), lab.HTTPPort); err != nil || strings.TrimSpace(body) != "skm1" {
		t.Errorf("hosp GET %s (not re-announced): %q, %v; want skm1", to2[1500].Prefix.Addr(), body, err)
	}
	if body, err := l.HTTPGet(ctx, lab.NodeHosp, half[0].Prefix.Addr(), lab.HTTPPort); err != nil || strings.TrimSpace(body) != "skm2" {
		t.Errorf("hosp GET %s (re-announced): %q, %v; want skm2", half[0].Prefix.Addr(), body, err)
	}
	if err := sp3.Set(ctx, nil); err != nil {
		t.Error(err)
	}
	if err := sp3.Close(); err != nil {
		t.Error(err)
	}
}

// TestLabSessionLoss kills the speaker's TCP connection to the edge under
// the running speaker (`ss -K` in ctl: a reset, no NOTIFICATION, as a
// failing link would do). The edge keeps the routes as stale, the speaker
// reconnects as a restarting speaker, and the edge's FIB never loses one
// of the 2,000 routes.
func TestLabSessionLoss(t *testing.T) {
	testenv.RequireCommand(t, "ss")
	l := upLab(t, 2000, 0)
	topo := l.Topology()
	ctx := context.Background()
	fib := watchEdge(t, l)
	to2, err := bgplab.SiteRoutes(topo, lab.NodeSKM2, topo.VMs)
	if err != nil {
		t.Fatal(err)
	}
	sp := startSpeaker(t, l, bgplab.ControllerConfig(topo, 0))
	fib.Expect(bgplab.FIBFor(to2, nil))
	if err := sp.Set(ctx, to2); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if _, err := fib.Wait(wctx); err != nil {
		t.Fatal(err)
	}
	if c, err := sp.WaitConverged(to2, 30*time.Second); err != nil {
		t.Fatalf("convergence: %s, %v", c, err)
	}

	kill := lab.Exec(l.Namespace(lab.NodeCtl), "ss", "-K", "dst", topo.EdgeCtl4.String(), "dport", "=", "179")
	if out, err := kill.CombinedOutput(); err != nil {
		t.Fatalf("ss -K: %v\n%s", err, out)
	}
	lost := time.Now()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ps, err := sp.Peers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !ps[0].Established {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the session survived ss -K")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if c, err := sp.WaitConverged(to2, 60*time.Second); err != nil {
		t.Fatalf("convergence after the session loss: %s, %v", c, err)
	}
	t.Logf("session back and confirmed %s after the reset", time.Since(lost).Round(time.Millisecond))
	time.Sleep(time.Second)
	if low, n := fib.Low(); low != n {
		t.Errorf("across the session loss the edge FIB dropped to %d of %d routes", low, n)
	}
	if err := sp.Set(ctx, nil); err != nil {
		t.Error(err)
	}
	if err := sp.Close(); err != nil {
		t.Error(err)
	}
}
