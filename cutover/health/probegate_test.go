package health

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"
)

// vms returns n tcp-80 targets vm-0.. at 10.0.0.1...
func vms(n int) []Target {
	ts := make([]Target, n)
	for i := range ts {
		ts[i] = Target{
			Name:  fmt.Sprintf("vm-%d", i),
			Addr:  netip.AddrFrom4([4]byte{10, 0, byte((i + 1) >> 8), byte(i + 1)}),
			Probe: Probe{Kind: KindTCP, Port: 80},
		}
	}
	return ts
}

var refused = Result{Err: "tcp 80: connection refused"}

// script answers by target name: each name's list of results is played in
// order (the last one repeats); names not listed are healthy.
func script(s map[string][]bool) func(Target, int) Result {
	return func(t Target, n int) Result {
		seq, ok := s[t.Name]
		if !ok {
			return Result{OK: true}
		}
		if seq[min(n, len(seq)-1)] {
			return Result{OK: true}
		}
		return refused
	}
}

// allBut returns a baseline in which every target but the named ones was healthy.
func allBut(ts []Target, down ...string) *Baseline {
	var h []string
	for _, t := range ts {
		if !slices.Contains(down, t.Name) {
			h = append(h, t.Name)
		}
	}
	return BaselineOf(h)
}

func TestProbeGate(t *testing.T) {
	three := vms(3)
	two00 := vms(200)
	many := vms(30)
	for _, tc := range []struct {
		name     string
		targets  []Target
		baseline *Baseline
		probes   map[string][]bool
		gate     ProbeGate
		want     Verdict
		rounds   int // probes of targets[0]
	}{
		{
			name: "all healthy", targets: three, baseline: allBut(three),
			want: Verdict{Gate: "probe", Pass: true, Healthy: 3, Reasons: []string{
				"round 1: 3/3 healthy (100%), 0 regressed, 0 down at baseline (need ≤ 0 regressed); held 1 round"}},
			rounds: 1,
		},
		{
			name: "down at baseline is ignored", targets: three, baseline: allBut(three, "vm-2"),
			probes: map[string][]bool{"vm-2": {false}},
			want: Verdict{Gate: "probe", Pass: true, Healthy: 2, WasDown: 1, Reasons: []string{
				"round 1: 2/2 healthy (100%), 0 regressed, 1 down at baseline (need ≤ 0 regressed); held 1 round"}},
			rounds: 1,
		},
		{
			name: "nil baseline counts every target", targets: three,
			probes: map[string][]bool{"vm-2": {false}},
			want: Verdict{Gate: "probe", Healthy: 2, Regressed: 1, Reasons: []string{
				"round 1: 2/3 healthy (66.6%), 1 regressed, 0 down at baseline (need ≤ 0 regressed); failed 1 round",
				"vm-2 10.0.0.3: tcp 80: connection refused"}},
			rounds: 1,
		},
		{
			name: "regression fails after Fall rounds", targets: three, baseline: allBut(three),
			probes: map[string][]bool{"vm-1": {false}},
			gate:   ProbeGate{Fall: 3, Rise: 2},
			want: Verdict{Gate: "probe", Healthy: 2, Regressed: 1, Reasons: []string{
				"round 3: 2/3 healthy (66.6%), 1 regressed, 0 down at baseline (need ≤ 0 regressed); failed 3 rounds in a row",
				"vm-1 10.0.0.2: tcp 80: connection refused"}},
			rounds: 3,
		},
		{
			name: "a VM that comes back passes after Rise rounds", targets: three, baseline: allBut(three),
			probes: map[string][]bool{"vm-1": {false, true}},
			gate:   ProbeGate{Fall: 2, Rise: 2},
			want: Verdict{Gate: "probe", Pass: true, Healthy: 3, Reasons: []string{
				"round 3: 3/3 healthy (100%), 0 regressed, 0 down at baseline (need ≤ 0 regressed); held 2 rounds in a row"}},
			rounds: 3,
		},
		{
			name: "flapping VM with Rise=2 does not pass early", targets: three, baseline: allBut(three),
			probes: map[string][]bool{"vm-0": {true, false, true, false, true, true}},
			gate:   ProbeGate{Fall: 3, Rise: 2},
			want: Verdict{Gate: "probe", Pass: true, Healthy: 3, Reasons: []string{
				"round 6: 3/3 healthy (100%), 0 regressed, 0 down at baseline (need ≤ 0 regressed); held 2 rounds in a row"}},
			rounds: 6,
		},
		{
			name: "99% of 200 allows one failure", targets: two00, baseline: allBut(two00),
			probes: map[string][]bool{"vm-150": {false}},
			gate:   ProbeGate{MinHealthy: 0.99, MaxFailures: NoLimit},
			want: Verdict{Gate: "probe", Pass: true, Healthy: 199, Regressed: 1, Reasons: []string{
				"round 1: 199/200 healthy (99.5%), 1 regressed, 0 down at baseline (need ≥ 99% healthy); held 1 round",
				"vm-150 10.0.0.151: tcp 80: connection refused"}},
			rounds: 1,
		},
		{
			name: "99% of 200 with three failures fails", targets: two00, baseline: allBut(two00),
			probes: map[string][]bool{"vm-1": {false}, "vm-2": {false}, "vm-199": {false}},
			gate:   ProbeGate{MinHealthy: 0.99, MaxFailures: NoLimit},
			want: Verdict{Gate: "probe", Healthy: 197, Regressed: 3, Reasons: []string{
				"round 1: 197/200 healthy (98.5%), 3 regressed, 0 down at baseline (need ≥ 99% healthy); failed 1 round",
				"vm-1 10.0.0.2: tcp 80: connection refused",
				"vm-2 10.0.0.3: tcp 80: connection refused",
				"vm-199 10.0.0.200: tcp 80: connection refused"}},
			rounds: 1,
		},
		{
			name: "99% and at most 0 failures: the count limit fails it", targets: two00, baseline: allBut(two00),
			probes: map[string][]bool{"vm-150": {false}},
			gate:   ProbeGate{MinHealthy: 0.99},
			want: Verdict{Gate: "probe", Healthy: 199, Regressed: 1, Reasons: []string{
				"round 1: 199/200 healthy (99.5%), 1 regressed, 0 down at baseline (need ≥ 99% healthy and ≤ 0 regressed); failed 1 round",
				"vm-150 10.0.0.151: tcp 80: connection refused"}},
			rounds: 1,
		},
		{
			name: "99% of 100 is exactly 99", targets: vms(100), baseline: nil,
			probes: map[string][]bool{"vm-7": {false}},
			gate:   ProbeGate{MinHealthy: 0.99, MaxFailures: NoLimit},
			want: Verdict{Gate: "probe", Pass: true, Healthy: 99, Regressed: 1, Reasons: []string{
				"round 1: 99/100 healthy (99%), 1 regressed, 0 down at baseline (need ≥ 99% healthy); held 1 round",
				"vm-7 10.0.0.8: tcp 80: connection refused"}},
			rounds: 1,
		},
		{
			name: "max failures 2", targets: three, baseline: allBut(three),
			probes: map[string][]bool{"vm-0": {false}, "vm-1": {false}},
			gate:   ProbeGate{MaxFailures: 2, GateName: "vm-probes"},
			want: Verdict{Gate: "vm-probes", Pass: true, Healthy: 1, Regressed: 2, Reasons: []string{
				"round 1: 1/3 healthy (33.3%), 2 regressed, 0 down at baseline (need ≤ 2 regressed); held 1 round",
				"vm-0 10.0.0.1: tcp 80: connection refused",
				"vm-1 10.0.0.2: tcp 80: connection refused"}},
			rounds: 1,
		},
		{
			name: "every VM down at baseline: nothing to judge", targets: three, baseline: BaselineOf(nil),
			probes: map[string][]bool{"vm-0": {false}, "vm-1": {false}, "vm-2": {false}},
			want: Verdict{Gate: "probe", Pass: true, WasDown: 3, Reasons: []string{
				"round 1: no target was healthy at baseline, 3 down at baseline; held 1 round"}},
			rounds: 1,
		},
		{
			name: "reasons list 20 targets and count the rest", targets: many, baseline: allBut(many, "vm-0"),
			probes: func() map[string][]bool {
				m := map[string][]bool{}
				for i := 1; i <= 25; i++ {
					m[fmt.Sprintf("vm-%d", i)] = []bool{false}
				}
				return m
			}(),
			want: func() Verdict {
				v := Verdict{Gate: "probe", Healthy: 4, Regressed: 25, WasDown: 1, Reasons: []string{
					"round 1: 4/29 healthy (13.7%), 25 regressed, 1 down at baseline (need ≤ 0 regressed); failed 1 round"}}
				for i := 1; i <= 20; i++ {
					v.Reasons = append(v.Reasons, fmt.Sprintf("vm-%d 10.0.0.%d: tcp 80: connection refused", i, i+1))
				}
				v.Reasons = append(v.Reasons, "and 5 more")
				return v
			}(),
			rounds: 1,
		},
		{
			name: "no targets", targets: nil,
			want: Verdict{Gate: "probe", Pass: true, Reasons: []string{"no targets to probe"}},
		},
		{
			name: "duplicate target", targets: append(vms(2), vms(1)...),
			want: Verdict{Gate: "probe", Reasons: []string{"batch 4: target vm-0: duplicate name"}},
		},
		{
			name: "bad settings", targets: three,
			gate: ProbeGate{MinHealthy: 1.5, MaxFailures: -2, Rise: -1},
			want: Verdict{Gate: "probe", Reasons: []string{"gate probe: min healthy 1.5 not between 0 and 1\n" +
				"max failures -2 is negative (use -1 for no limit)\nrise -1 and fall 0 must not be negative"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &Fake{Func: script(tc.probes)}
			g := tc.gate
			g.Prober = f
			g.Interval = time.Millisecond
			g.Within = time.Minute
			got := g.Check(context.Background(), Input{Batch: 4, Targets: tc.targets, Baseline: tc.baseline})
			assertVerdict(t, got, tc.want)
			if len(tc.targets) > 0 {
				if n := f.Calls(tc.targets[0].Name); n != tc.rounds {
					t.Errorf("%d rounds, want %d", n, tc.rounds)
				}
			}
		})
	}
}

func assertVerdict(t *testing.T, got, want Verdict) {
	t.Helper()
	if got.Gate != want.Gate || got.Pass != want.Pass || got.Pending != want.Pending ||
		got.Healthy != want.Healthy || got.Regressed != want.Regressed || got.WasDown != want.WasDown {
		t.Errorf("verdict %+v\n   want %+v", got, want)
	}
	if !slices.Equal(got.Reasons, want.Reasons) {
		t.Errorf("reasons:\n got %q\nwant %q", got.Reasons, want.Reasons)
	}
}

// TestProbeGateWithin: a flapping VM never holds Rise rounds or fails Fall
// rounds in a row, so the gate fails when Within runs out.
func TestProbeGateWithin(t *testing.T) {
	ts := vms(3)
	f := &Fake{Func: func(t Target, n int) Result {
		if t.Name == "vm-1" && n%2 == 1 {
			return refused
		}
		return Result{OK: true}
	}}
	g := ProbeGate{Prober: f, Rise: 2, Fall: 2, Interval: 5 * time.Millisecond, Within: 100 * time.Millisecond}
	start := time.Now()
	v := g.Check(context.Background(), Input{Targets: ts, Baseline: allBut(ts)})
	took := time.Since(start)
	if v.Pass || v.Pending {
		t.Fatalf("verdict %+v, want a failure", v)
	}
	re := regexp.MustCompile(`^no verdict within 100ms: round (\d+): (3/3 healthy \(100%\), 0 regressed, 0 down at baseline \(need ≤ 0 regressed\); held 1 of 2 rounds needed|2/3 healthy \(66.6%\), 1 regressed, 0 down at baseline \(need ≤ 0 regressed\); failed 1 of 2 rounds to fail)$`)
	if len(v.Reasons) == 0 || !re.MatchString(v.Reasons[0]) {
		t.Errorf("reasons %q", v.Reasons)
	}
	if n := f.Calls("vm-1"); n < 3 {
		t.Errorf("only %d rounds in 100ms at a 5ms interval", n)
	}
	if took < 100*time.Millisecond || took > 2*time.Second {
		t.Errorf("took %v, want about 100ms", took)
	}
}

func TestProbeGateWithinNoRound(t *testing.T) {
	f := &Fake{Delay: time.Hour}
	g := ProbeGate{Prober: f, Within: 30 * time.Millisecond}
	v := g.Check(context.Background(), Input{Targets: vms(3)})
	assertVerdict(t, v, Verdict{Gate: "probe", Reasons: []string{"no verdict within 30ms: no round of 3 probes completed"}})
}

func TestProbeGateCanceled(t *testing.T) {
	ts := vms(3)
	f := &Fake{Func: script(map[string][]bool{"vm-0": {false}})}
	g := ProbeGate{Prober: f, Fall: 1000, Interval: time.Millisecond, Within: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var progress []Verdict
	in := Input{Targets: ts, Progress: func(v Verdict) {
		mu.Lock()
		defer mu.Unlock()
		progress = append(progress, v)
		if len(progress) == 3 {
			cancel()
		}
	}}
	v := g.Check(ctx, in)
	if v.Pass || !v.Pending || v.Healthy != 2 || v.Regressed != 1 {
		t.Errorf("verdict %+v, want pending with the last counts", v)
	}
	want := []string{"not decided after 3 rounds: context canceled", "vm-0 10.0.0.1: tcp 80: connection refused"}
	if !slices.Equal(v.Reasons, want) {
		t.Errorf("reasons %q\n   want %q", v.Reasons, want)
	}
	if len(progress) != 3 || !progress[1].Pending ||
		progress[1].Reasons[0] != "round 2: 2/3 healthy (66.6%), 1 regressed, 0 down at baseline (need ≤ 0 regressed)" {
		t.Errorf("progress %+v", progress)
	}
}
