package bgplab

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/cutover/cutover/bgp"
	"github.com/cutover/cutover/bgp/bmp"
	"github.com/cutover/cutover/bgp/gobgp"
	"github.com/cutover/cutover/lab"
)

// DefaultBenchSizes are the batch sizes of the reference timings.
var DefaultBenchSizes = []int{2000, 10000, 50000}

// BenchOptions say what Bench measures.
type BenchOptions struct {
	Sizes []int // default DefaultBenchSizes
	Runs  int   // per size; default 3
	// Reference also measures a bare embedded GoBGP (many paths per
	// AddPathStream call, nothing else) for each size, run by run in turn
	// with the speaker, so both meet the same machine load.
	Reference bool
	// Observe is how each change is confirmed, for the speaker and the
	// reference alike: bgp.ProofBMP (the default; the edge streams to a
	// station the bench runs in ctl, on the lab's BMP port) or
	// bgp.ProofMirror (the edge sends its best paths back).
	Observe bgp.Proof
	Log     zerolog.Logger
}

// BenchResult is what one batch size measured, as medians over the runs:
// the time from the Set call until the edge's kernel FIB holds the whole
// change, for announcing N /32s via skm2, switching them to skm1's gateway,
// and withdrawing them; and until the edge confirms each change over BMP
// or its mirror (bgp.WaitConverged, as the bgp gate waits).
type BenchResult struct {
	Prefixes                   int
	Announce, Switch, Withdraw time.Duration
	Confirm                    [3]time.Duration // announce, switch, withdraw
	Runs                       int
	RSS                        int64        // bytes, after the first announce of this size
	Reference                  *BenchResult `json:",omitempty"`
}

// Bench measures the speaker against the lab's edge for each size and
// returns medians. It must run inside the lab's ctl namespace (see
// Command). Every run gets a fresh speaker (and, with Reference, a fresh
// reference right before or after it, alternating), so that runs do not
// inherit each other's state and a burst of load from elsewhere on the
// machine falls on both alike rather than on whichever ran at the time.
func Bench(ctx context.Context, l *lab.Lab, o BenchOptions) ([]BenchResult, error) {
	if len(o.Sizes) == 0 {
		o.Sizes = DefaultBenchSizes
	}
	if o.Runs < 1 {
		o.Runs = 3
	}
	topo := l.Topology()
	fib, err := WatchFIB(l.Namespace(lab.NodeEdge))
	if err != nil {
		return nil, err
	}
	defer fib.Close()
	if o.Observe == bgp.ProofNone {
		o.Observe = bgp.ProofBMP
	}
	observer, err := benchObserver(ctx, topo, o)
	if err != nil {
		return nil, err
	}
	newSpeaker := func(n int) func() (bgp.Speaker, error) {
		return func() (bgp.Speaker, error) {
			c := ControllerConfig(topo, n+1)
			c.Peers[0].Observe = o.Observe
			if o.Observe == bgp.ProofBMP {
				c.BMP = topo.BMP
			}
			return gobgp.New(ctx, c, o.Log)
		}
	}
	newRef := func() (bgp.Speaker, error) {
		r, err := newReference(ctx, topo)
		if err != nil {
			return nil, fmt.Errorf("reference: %w", err)
		}
		return r, nil
	}
	var out []BenchResult
	for _, n := range o.Sizes {
		sp, ref := &benchRuns{}, &benchRuns{}
		for run := range o.Runs {
			sides := []func() error{
				func() error { return benchRun(ctx, topo, newSpeaker(n), observer, fib, n, run, sp, o) },
			}
			if o.Reference {
				r := func() error { return benchRun(ctx, topo, newRef, observer, fib, n, run, ref, o) }
				if run%2 == 1 {
					sides = []func() error{r, sides[0]}
				} else {
					sides = append(sides, r)
				}
			}
			for _, side := range sides {
				if err := side(); err != nil {
					return nil, err
				}
			}
		}
		res := sp.result(n, o.Runs)
		if o.Reference {
			rr := ref.result(n, o.Runs)
			res.Reference = &rr
		}
		out = append(out, res)
	}
	return out, nil
}

// benchRuns collects the runs of one size and one side.
type benchRuns struct {
	fib, confirm [3][]time.Duration
	rss          int64
}

func (b *benchRuns) result(n, runs int) BenchResult {
	r := BenchResult{Prefixes: n, Runs: runs, RSS: b.rss}
	r.Announce, r.Switch, r.Withdraw = median(b.fib[0]), median(b.fib[1]), median(b.fib[2])
	for i := range b.confirm {
		r.Confirm[i] = median(b.confirm[i])
	}
	return r
}

// benchRun measures one run of n prefixes with a fresh speaker from
// newSpeaker into into, then withdraws everything and closes the speaker.
func benchRun(ctx context.Context, topo lab.Topology, newSpeaker func() (bgp.Speaker, error), observer func(bgp.Speaker) bgp.Observer,
	fib *FIBWatch, n, run int, into *benchRuns, o BenchOptions) (err error) {
	sp, err := newSpeaker()
	if err != nil {
		return err
	}
	defer func() {
		sp.Set(context.Background(), nil)
		if cerr := sp.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	// Warm up: bring the session up and through its graceful-restart sync
	// with one route, so that no step waits for the session.
	probe := []bgp.Route{{Prefix: netip.PrefixFrom(topo.Covering[0].Addr(), 32), NextHop: topo.SiteNextHop[lab.NodeSKM2].V4}}
	if _, err := change(ctx, sp, fib, probe, FIBFor(probe, nil)); err != nil {
		return fmt.Errorf("warm up: %w", err)
	}
	if _, err := change(ctx, sp, fib, nil, FIBFor(nil, prefixes(probe))); err != nil {
		return fmt.Errorf("warm up: %w", err)
	}
	ps, err := benchPrefixes(topo, n)
	if err != nil {
		return err
	}
	to2, _ := SiteRoutes(topo, lab.NodeSKM2, ps)
	to1, _ := SiteRoutes(topo, lab.NodeSKM1, ps)
	steps := []struct {
		routes []bgp.Route
		fib    map[netip.Prefix]netip.Addr
		want   []bgp.Route
	}{
		{to2, FIBFor(to2, nil), to2},
		{to1, FIBFor(to1, nil), to1},
		{nil, FIBFor(nil, ps), bgp.Withdrawals(ps)},
	}
	for i, st := range steps {
		took, err := change(ctx, sp, fib, st.routes, st.fib)
		if err != nil {
			return fmt.Errorf("%d prefixes, run %d: %w", n, run+1, err)
		}
		into.fib[i] = append(into.fib[i], took)
		// Let the edge's view catch up before the next step, and time
		// the confirmation a gate would wait for.
		start := time.Now()
		wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		_, err = bgp.WaitConverged(wctx, observer(sp), st.want, 20*time.Millisecond)
		cancel()
		if err != nil {
			return fmt.Errorf("%d prefixes, run %d: %w", n, run+1, err)
		}
		into.confirm[i] = append(into.confirm[i], took+time.Since(start))
		if i == 0 && run == 0 {
			into.rss = rss()
		}
		o.Log.Debug().Str("op", "bench").Int("prefixes", n).Int("run", run+1).Int("step", i).Dur("took", took).Msg("step done")
	}
	return nil
}

// change sets routes and returns how long the edge FIB took to look like
// want.
func change(ctx context.Context, sp bgp.Speaker, fib *FIBWatch, routes []bgp.Route, want map[netip.Prefix]netip.Addr) (time.Duration, error) {
	fib.Expect(want)
	start := time.Now()
	if err := sp.Set(ctx, routes); err != nil {
		return 0, err
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	at, err := fib.Wait(wctx)
	if err != nil {
		return 0, err
	}
	return at.Sub(start), nil
}

// benchPrefixes returns n /32s inside the lab's first IPv4 covering range,
// starting past the lab's own VMs' block.
func benchPrefixes(t lab.Topology, n int) ([]netip.Prefix, error) {
	var cover netip.Prefix
	for _, c := range t.Covering {
		if c.Addr().Is4() {
			cover = c
			break
		}
	}
	if !cover.IsValid() || cover.Bits() > 32-17 {
		return nil, fmt.Errorf("bench: the lab needs an IPv4 covering range of /15 or wider for %d prefixes", n)
	}
	a := cover.Addr().Next()
	out := make([]netip.Prefix, n)
	for i := range out {
		out[i] = netip.PrefixFrom(a, 32)
		a = a.Next()
	}
	if !cover.Contains(out[n-1].Addr()) {
		return nil, fmt.Errorf("bench: %d prefixes do not fit in %s", n, cover)
	}
	return out, nil
}

func prefixes(rs []bgp.Route) []netip.Prefix {
	out := make([]netip.Prefix, len(rs))
	for i, r := range rs {
		out[i] = r.Prefix
	}
	return out
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// rss is this process's resident set size in bytes, or 0.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// WriteBenchTable prints results as a table.
func WriteBenchTable(w io.Writer, rs []BenchResult) error {
	var b strings.Builder
	ref := len(rs) > 0 && rs[0].Reference != nil
	fmt.Fprintf(&b, "%-8s  %-26s  %-26s", "prefixes", "edge FIB: announce/switch/withdraw", "  gate confirms")
	if ref {
		fmt.Fprintf(&b, "  %-26s  %6s", "bare GoBGP (reference)", "ratio")
	}
	fmt.Fprintf(&b, "  %6s\n", "rss")
	for _, r := range rs {
		fmt.Fprintf(&b, "%-8d  %-26s  %-26s", r.Prefixes, triple(r.Announce, r.Switch, r.Withdraw), triple(r.Confirm[0], r.Confirm[1], r.Confirm[2]))
		if rr := r.Reference; rr != nil {
			ratio := max(ratioOf(r.Announce, rr.Announce), ratioOf(r.Switch, rr.Switch), ratioOf(r.Withdraw, rr.Withdraw))
			fmt.Fprintf(&b, "  %-26s  %5.2fx", triple(rr.Announce, rr.Switch, rr.Withdraw), ratio)
		}
		fmt.Fprintf(&b, "  %4dMB\n", r.RSS>>20)
	}
	if len(rs) > 0 {
		fmt.Fprintf(&b, "median of %d runs; time from Set until the edge's kernel FIB holds the change (switch: skm2 -> skm1 gateway)", rs[0].Runs)
		if ref {
			b.WriteString("; ratio: worst of the three against the reference")
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func triple(a, b, c time.Duration) string {
	return fmt.Sprintf("%.3f / %.3f / %.3f s", a.Seconds(), b.Seconds(), c.Seconds())
}

func ratioOf(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// benchObserver returns how a change by a speaker is confirmed: by the
// speaker's own mirror, or by a BMP station the bench starts here (in
// ctl) on the lab's BMP port, once the edge's BMP session is up. The
// station lives as long as ctx.
func benchObserver(ctx context.Context, topo lab.Topology, o BenchOptions) (func(bgp.Speaker) bgp.Observer, error) {
	if o.Observe != bgp.ProofBMP {
		return func(sp bgp.Speaker) bgp.Observer { return sp }, nil
	}
	if !topo.BMP.IsValid() {
		return nil, fmt.Errorf("bench: the lab has no BMP station for its edge (bring it up with one, or measure with the mirror)")
	}
	ln, err := net.Listen("tcp", topo.BMP.String())
	if err != nil {
		return nil, fmt.Errorf("bench: BMP station: %w", err)
	}
	st := bmp.New(o.Log, bmp.Options{})
	go func() { _ = st.Serve(ctx, ln) }()
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		if slices.ContainsFunc(st.Routers(), func(r bmp.RouterInfo) bool { return r.Up }) {
			break
		}
		select {
		case <-wctx.Done():
			return nil, fmt.Errorf("bench: the edge opened no BMP session to %s: %w", topo.BMP, wctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	peers := []bgp.PeerConfig{{Address: topo.EdgeCtl4, LocalAddress: topo.Ctl4, Observe: bgp.ProofBMP}}
	// As the daemon does: FRR 8 reports the first paths of a next-hop it
	// has not resolved yet as withdrawn, and only an UPDATE again makes it
	// report them (see bmp.Nudger).
	return func(sp bgp.Speaker) bgp.Observer {
		return bmp.Observer{Station: st, Speaker: sp, Peers: peers, Nudge: &bmp.Nudger{Log: o.Log}}
	}, nil
}
