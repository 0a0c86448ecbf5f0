package report_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cutover/cutover/bgp"
	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/nft"
)

// fakeClock only moves when told to, so that a run journals the same
// times on every test run.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// run is an engine with a fake speaker, a spy dataplane and a scripted
// gate, on a fake clock: every journal record takes 10ms, every dataplane
// change 200ms, convergence 700ms, a gate 3s and a readiness check 1s.
type run struct {
	t     *testing.T
	clock *fakeClock
	j     *engine.MemJournal
	sp    *bgp.Fake
	spec  *engine.Spec
	e     *engine.Engine
	stop  func()

	mu      sync.Mutex
	applied [][]netip.Prefix // every dataplane change
	// gateFails counts the gate evaluations of a batch still to fail
	// (negative: every one); notReady the readiness checks still to find
	// its VMs down at the target.
	gateFails map[int]int
	notReady  map[int]int
}

var testBatches = []struct {
	name string
	vms  int
}{{"b00-canary", 10}, {"b01-unn", 200}, {"b02-hsyk", 150}, {"b03-nlsh", 140}}

func batchPrefix(b int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 64, byte(b), 0}), 24)
}

// The runbook and inventory the test runs read, and the plan digest the
// daemon journals for them (plan.New).
var (
	runbookFile   = []byte("name: helse-nord\nmove: {from: skm1, to: skm2}\ninventory: inventory.csv\n")
	inventoryFile = []byte("name,address,tenant\nvm-a,10.64.0.10,unn\n")
	planDigest    = sha256Hex(sha256Hex(runbookFile) + "\n" + sha256Hex(inventoryFile) + "\n")
)

func sha256Hex[T string | []byte](b T) string {
	sum := sha256.Sum256([]byte(b))
	return hex.EncodeToString(sum[:])
}

// newRun builds the engine; batches in failing fail every gate evaluation
// with the reason the test checks for.
func newRun(t *testing.T, failing ...int) *run {
	t.Helper()
	r := &run{t: t, clock: &fakeClock{t: time.Date(2026, 3, 14, 23, 0, 0, 0, time.UTC)}, gateFails: map[int]int{}, notReady: map[int]int{}}
	r.j = &engine.MemJournal{Now: func() time.Time { return r.clock.Advance(10 * time.Millisecond) }}
	r.sp = bgp.NewFake(bgp.Limits{Allowed: []netip.Prefix{netip.MustParsePrefix("10.64.0.0/14")}, MaxPrefixes: 100})
	nh := netip.MustParseAddr("10.255.2.2")
	r.spec = &engine.Spec{Runbook: "runbooks/helse-nord/runbook.yaml", Digest: planDigest, RunbookDigest: runbookDigest, InventoryDigest: inventoryDigest, Policy: engine.RollbackBatch,
		Source: "skm1", Target: "skm2"}
	for i, b := range testBatches {
		sb := engine.SpecBatch{Name: b.name, VMs: b.vms, Prefixes: []netip.Prefix{batchPrefix(i)}}
		if i == 1 {
			sb.Confirm = []string{"after-canary"}
		}
		r.spec.Batches = append(r.spec.Batches, sb)
	}
	r.spec.Routes = func(moved []int) []bgp.Route {
		var rs []bgp.Route
		for _, m := range moved {
			rs = append(rs, bgp.Route{Prefix: batchPrefix(m), NextHop: nh})
		}
		return rs
	}
	r.spec.Dataplane = func(moved []int) nft.State {
		var ps []netip.Prefix
		for _, m := range moved {
			ps = append(ps, batchPrefix(m))
		}
		return nft.State{Moved: map[string][]netip.Prefix{"skm2": ps}}
	}
	r.spec.Converge = func(ctx context.Context, routes []bgp.Route) (string, error) {
		_, err := bgp.WaitConverged(ctx, r.sp, routes, time.Millisecond)
		r.clock.Advance(700 * time.Millisecond)
		return "", err
	}
	r.spec.Baseline = func(context.Context) (engine.BaselineRecord, error) {
		return engine.BaselineRecord{Healthy: []string{"vm-a", "vm-b", "vm-c"}, Probed: 4, Down: []string{"vm-d 10.0.0.4: tcp 80: connection refused"}}, nil
	}
	for _, f := range failing {
		r.gateFails[f] = -1
	}
	r.spec.Gate = func(_ context.Context, b int, _ []string) (bool, []engine.VerdictRecord) {
		r.clock.Advance(3 * time.Second)
		if r.take(r.gateFails, b) {
			return false, []engine.VerdictRecord{
				{Gate: "bgp", Pass: true},
				{Gate: "probe", Reasons: []string{
					fmt.Sprintf("vm-%da (10.64.%d.10): tcp/443 connect: connection refused", b, b),
					fmt.Sprintf("vm-%db (10.64.%d.11): http 503 from /health", b, b),
				}},
			}
		}
		return true, []engine.VerdictRecord{{Gate: "bgp", Pass: true}, {Gate: "probe", Pass: true}}
	}
	r.start(engine.RunState{})
	return r
}

// take reports whether batch b has a failure left in counts, and uses it.
func (r *run) take(counts map[int]int, b int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch n := counts[b]; {
	case n < 0:
		return true
	case n > 0:
		counts[b] = n - 1
		return true
	}
	return false
}

// checkReady gives the run a readiness check before each move; batch b
// is not ready at the target the first times times.
func (r *run) checkReady(b, times int) {
	r.mu.Lock()
	r.notReady[b] = times
	r.mu.Unlock()
	r.spec.ReadyPolicy = engine.ReadySkip
	r.spec.Ready = func(_ context.Context, i int, _ []string) (bool, engine.VerdictRecord) {
		r.clock.Advance(time.Second)
		if r.take(r.notReady, i) {
			return false, engine.VerdictRecord{Gate: "ready", Reasons: []string{"0/2 VMs answer at skm2"},
				Failed: []string{fmt.Sprintf("vm-%da 10.64.%d.10: tcp 443: i/o timeout", i, i), fmt.Sprintf("vm-%db 10.64.%d.11: tcp 443: i/o timeout", i, i)}}
		}
		return true, engine.VerdictRecord{Gate: "ready"}
	}
}

// start (re)creates the engine with state st and runs its loop.
func (r *run) start(st engine.RunState) {
	dp := engine.DataplaneFunc(func(_ context.Context, s nft.State) error {
		r.clock.Advance(200 * time.Millisecond)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.applied = append(r.applied, s.Moved["skm2"])
		return nil
	})
	r.e = engine.New(engine.Config{Speaker: r.sp, Dataplane: dp, Journal: r.j,
		Log: zerolog.New(zerolog.NewTestWriter(r.t)), Now: r.clock.Now, State: st})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.e.Loop(ctx) }()
	r.stop = func() { cancel(); <-done }
	r.t.Cleanup(r.stop)
}

// wait polls the engine's state until ok.
func (r *run) wait(what string, ok func(engine.RunState) bool) engine.RunState {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := r.e.Status(0).State
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for %s; state %+v", what, st)
		}
		time.Sleep(time.Millisecond)
	}
}

func ended(s engine.RunState) bool {
	return s.Phase == engine.PhaseDone || s.Phase == engine.PhaseAborted
}

// runToEnd starts the run as alice, has bob answer the go/no-go points
// (the VM down at pre-check after 30s, the canary after a minute), and
// waits for the end.
func (r *run) runToEnd() engine.RunState {
	r.t.Helper()
	if err := r.e.Start(r.spec, "alice", false); err != nil {
		r.t.Fatalf("Start: %v", err)
	}
	r.answer(engine.ConfirmBaselineDown, 30*time.Second)
	r.answer("after-canary", time.Minute)
	return r.wait("the end of the run", ended)
}

// answer waits for the go/no-go at point and has bob say go after d.
func (r *run) answer(point string, d time.Duration) {
	r.t.Helper()
	r.wait("the go/no-go at "+point, func(s engine.RunState) bool { return s.Confirm == point })
	r.clock.Advance(d)
	if err := r.e.Confirm(point, true, "bob"); err != nil {
		r.t.Fatalf("Confirm %s: %v", point, err)
	}
}
