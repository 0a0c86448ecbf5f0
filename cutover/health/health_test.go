package health

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestProbeValidate(t *testing.T) {
	for _, tc := range []struct {
		p    Probe
		want string // "" for valid
		str  string
	}{
		{Probe{Kind: KindICMP}, "", "icmp"},
		{Probe{Kind: KindTCP, Port: 22}, "", "tcp 22"},
		{Probe{Kind: KindHTTP}, "", "http 80"},
		{Probe{Kind: KindHTTPS, Path: "/healthz"}, "", "https 443 /healthz"},
		{Probe{Kind: KindHTTP, Port: 8080, Path: "/"}, "", "http 8080"},
		{Probe{Kind: KindTCP}, "probe tcp: needs a port", ""},
		{Probe{Kind: KindTCP, Port: 1, Path: "/x"}, "probe tcp: takes no path", ""},
		{Probe{Kind: KindICMP, Port: 1}, "probe icmp: takes no port or path", ""},
		{Probe{Kind: KindHTTP, Path: "healthz"}, `probe http: path "healthz" must start with /`, ""},
		{Probe{}, "probe: no kind (want icmp, tcp, http or https)", ""},
		{Probe{Kind: "udp", Port: 53}, `probe: unknown kind "udp" (want icmp, tcp, http or https)`, ""},
	} {
		err := tc.p.Validate()
		if got := errString(err); got != tc.want {
			t.Errorf("%+v.Validate() = %q, want %q", tc.p, got, tc.want)
		}
		if tc.want == "" && tc.p.String() != tc.str {
			t.Errorf("%+v.String() = %q, want %q", tc.p, tc.p.String(), tc.str)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestValidateTargets(t *testing.T) {
	ok := vms(2)
	for _, tc := range []struct {
		name string
		ts   []Target
		want string
	}{
		{"ok", ok, ""},
		{"no name", []Target{{Addr: netip.MustParseAddr("10.0.0.1"), Probe: Probe{Kind: KindICMP}}}, "target 10.0.0.1: no name"},
		{"no addr", []Target{{Name: "vm-9", Probe: Probe{Kind: KindICMP}}}, "target vm-9: no address"},
		{"bad probe", []Target{{Name: "vm-9", Addr: netip.MustParseAddr("::1")}}, "target vm-9: probe: no kind (want icmp, tcp, http or https)"},
		{"duplicate", append(ok, ok[1]), "target vm-1: duplicate name"},
	} {
		if got := errString(ValidateTargets(tc.ts)); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestRunRoundConcurrencyBound(t *testing.T) {
	for _, conc := range []int{1, 7, 64} {
		f := &Fake{Delay: 20 * time.Millisecond}
		ts := vms(2*conc + 5)
		res := RunRound(context.Background(), f, ts, conc)
		if len(res) != len(ts) {
			t.Fatalf("%d results, want %d", len(res), len(ts))
		}
		for _, tg := range ts {
			if !res[tg.Name].OK || f.Calls(tg.Name) != 1 {
				t.Fatalf("%s: %+v, %d calls", tg.Name, res[tg.Name], f.Calls(tg.Name))
			}
		}
		if got := f.MaxInFlight(); got > conc || got < min(conc, 2) {
			t.Errorf("concurrency %d: %d probes in flight at most", conc, got)
		}
	}
}

func TestRunRoundTimeoutAndCancel(t *testing.T) {
	f := &Fake{Delay: time.Hour}
	ts := vms(3)
	start := time.Now()
	res := RunRoundTimeout(context.Background(), f, ts, 2, 20*time.Millisecond)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("round took %v with a 20ms timeout", took)
	}
	for _, tg := range ts {
		if r := res[tg.Name]; r.OK || !strings.HasPrefix(r.Err, "tcp 80: timeout after ") {
			t.Errorf("%s: %+v", tg.Name, r)
		}
	}

	// Canceled: targets not started are reported as not probed.
	ctx, cancel := context.WithCancel(context.Background())
	var n atomic.Int32
	fn := &Fake{Func: func(t Target, _ int) Result {
		if n.Add(1) == 2 {
			cancel()
		}
		return Result{OK: true}
	}}
	res = RunRound(ctx, fn, vms(50), 1)
	notProbed := 0
	for _, r := range res {
		if r.Err == "tcp 80: not probed: context canceled" {
			notProbed++
		}
	}
	if len(res) != 50 || notProbed < 40 {
		t.Errorf("%d results, %d not probed after cancel", len(res), notProbed)
	}
}

func TestTakeBaseline(t *testing.T) {
	ts := vms(4)
	f := &Fake{Func: script(map[string][]bool{"vm-1": {false}, "vm-3": {false, true}})}
	b, err := TakeBaseline(context.Background(), f, ts, BaselineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"vm-0", "vm-2", "vm-3"}; !slices.Equal(b.Healthy, want) || b.Probed != 4 {
		t.Errorf("healthy %v of %d, want %v of 4", b.Healthy, b.Probed, want)
	}
	if want := map[string]string{"vm-1": "tcp 80: connection refused"}; !reflect.DeepEqual(b.Down, want) {
		t.Errorf("down %v, want %v", b.Down, want)
	}
	if f.Calls("vm-0") != 1 || f.Calls("vm-1") != 2 || f.Calls("vm-3") != 2 {
		t.Errorf("calls vm-0 %d vm-1 %d vm-3 %d, want 1 2 2", f.Calls("vm-0"), f.Calls("vm-1"), f.Calls("vm-3"))
	}
	// Through JSON (the journal) and back.
	data, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	var back Baseline
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, b) {
		t.Errorf("JSON round trip:\n got %+v\nwant %+v", back, b)
	}

	// One try: the flaky VM counts as down.
	f = &Fake{Func: script(map[string][]bool{"vm-3": {false, true}})}
	b, _ = TakeBaseline(context.Background(), f, ts, BaselineOptions{Tries: 1})
	if !slices.Equal(b.Healthy, []string{"vm-0", "vm-1", "vm-2"}) {
		t.Errorf("Tries 1: healthy %v", b.Healthy)
	}

	_, err = TakeBaseline(context.Background(), f, append(ts, ts[0]), BaselineOptions{})
	if errString(err) != "take baseline: target vm-0: duplicate name" {
		t.Errorf("duplicate: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := TakeBaseline(ctx, f, ts, BaselineOptions{}); errString(err) != "take baseline: context canceled" {
		t.Errorf("canceled: %v", err)
	}
}

func TestBaselineOf(t *testing.T) {
	b := BaselineOf([]string{"vm-2", "vm-1", "vm-2"})
	if !slices.Equal(b.Healthy, []string{"vm-1", "vm-2"}) {
		t.Errorf("healthy %v", b.Healthy)
	}
	var nilb *Baseline
	if nilb.healthySet() != nil {
		t.Errorf("nil baseline has a set")
	}
}

// blockGate waits for ctx, then reports pending.
type blockGate struct {
	name    string
	started chan struct{}
}

func (g blockGate) Name() string { return g.name }
func (g blockGate) Check(ctx context.Context, in Input) Verdict {
	close(g.started)
	<-ctx.Done()
	return Verdict{Pending: true, Reasons: []string{"canceled"}}
}

func TestEvaluate(t *testing.T) {
	pass := FuncGate{GateName: "ok", Func: func(context.Context, Input) Verdict { return Verdict{Pass: true} }}

	t.Run("all pass", func(t *testing.T) {
		ok, vs := Evaluate(context.Background(), []Gate{pass, ErrorGate("bgp", func(context.Context, Input) error { return nil })}, Input{})
		if !ok || len(vs) != 2 || vs[0].Gate != "ok" || vs[1].Gate != "bgp" || !vs[1].Pass {
			t.Errorf("Evaluate = %v, %+v", ok, vs)
		}
	})
	t.Run("no gates", func(t *testing.T) {
		if ok, vs := Evaluate(context.Background(), nil, Input{}); !ok || len(vs) != 0 {
			t.Errorf("Evaluate = %v, %+v", ok, vs)
		}
	})
	t.Run("one fails: the rest are canceled", func(t *testing.T) {
		block := blockGate{name: "slow", started: make(chan struct{})}
		fail := ErrorGate("bgp", func(ctx context.Context, in Input) error {
			<-block.started // fail only once the other gate runs
			return errors.New("peer 10.0.0.1 has 1800 of 2000 prefixes")
		})
		done := make(chan struct{})
		var ok bool
		var vs []Verdict
		go func() {
			ok, vs = Evaluate(context.Background(), []Gate{block, pass, fail}, Input{})
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Evaluate did not return after a gate failed")
		}
		if ok {
			t.Fatal("Evaluate passed")
		}
		assertVerdict(t, vs[0], Verdict{Gate: "slow", Pending: true, Reasons: []string{"canceled", `stopped: gate "bgp" did not pass`}})
		assertVerdict(t, vs[2], Verdict{Gate: "bgp", Reasons: []string{"peer 10.0.0.1 has 1800 of 2000 prefixes"}})
	})
	t.Run("panic", func(t *testing.T) {
		boom := FuncGate{GateName: "boom", Func: func(context.Context, Input) Verdict { panic("nil map") }}
		ok, vs := Evaluate(context.Background(), []Gate{boom, nil}, Input{})
		if ok {
			t.Fatal("passed")
		}
		assertVerdict(t, vs[0], Verdict{Gate: "boom", Reasons: []string{"gate panicked: nil map"}})
		assertVerdict(t, vs[1], Verdict{Gate: "<nil>", Reasons: []string{"nil gate"}})
	})
	t.Run("pending is not a pass", func(t *testing.T) {
		half := FuncGate{GateName: "half", Func: func(context.Context, Input) Verdict { return Verdict{Pass: true, Pending: true} }}
		if ok, vs := Evaluate(context.Background(), []Gate{half}, Input{}); ok || vs[0].Pass {
			t.Errorf("Evaluate = %v, %+v", ok, vs)
		}
	})
	t.Run("parent canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		g := ErrorGate("bgp", func(ctx context.Context, in Input) error { <-ctx.Done(); return ctx.Err() })
		ok, vs := Evaluate(ctx, []Gate{g}, Input{})
		if ok {
			t.Fatal("passed")
		}
		assertVerdict(t, vs[0], Verdict{Gate: "bgp", Pending: true, Reasons: []string{"canceled: context canceled"}})
	})
	t.Run("probe gates in parallel", func(t *testing.T) {
		ts := vms(10)
		f := &Fake{Func: script(map[string][]bool{"vm-4": {false}})}
		gates := []Gate{
			ProbeGate{Prober: f, GateName: "strict"},
			ProbeGate{Prober: f, GateName: "lenient", MaxFailures: 1, Within: time.Hour},
		}
		ok, vs := Evaluate(context.Background(), gates, Input{Targets: ts, Baseline: allBut(ts)})
		if ok || vs[0].Pass || vs[0].Regressed != 1 {
			t.Errorf("Evaluate = %v, %+v", ok, vs)
		}
	})
}

// TestReady: the readiness check judges only the targets healthy at
// baseline, tries a failing one twice, and lists every one that does not
// answer.
func TestReady(t *testing.T) {
	targets := []Target{
		{Name: "vm-a", Addr: netip.MustParseAddr("10.64.0.1"), Probe: Probe{Kind: KindTCP, Port: 80}},
		{Name: "vm-b", Addr: netip.MustParseAddr("10.64.0.2"), Probe: Probe{Kind: KindTCP, Port: 80}},
		{Name: "vm-c", Addr: netip.MustParseAddr("10.64.0.3"), Probe: Probe{Kind: KindTCP, Port: 80}},
	}
	down := &Fake{Func: func(t Target, _ int) Result {
		if t.Name == "vm-b" || t.Name == "vm-c" {
			return Result{Err: "tcp 80: connection refused"}
		}
		return Result{OK: true}
	}}
	for _, tt := range []struct {
		name    string
		base    *Baseline
		pass    bool
		reasons []string
	}{
		{"no baseline: every target", nil, false, []string{"1/3 VMs answer at skm2",
			"vm-b 10.64.0.2: tcp 80: connection refused", "vm-c 10.64.0.3: tcp 80: connection refused"}},
		{"vm-c down at baseline", BaselineOf([]string{"vm-a", "vm-b"}), false, []string{"1/2 VMs answer at skm2 (1 down at baseline not checked)",
			"vm-b 10.64.0.2: tcp 80: connection refused"}},
		{"only vm-a healthy at baseline", BaselineOf([]string{"vm-a"}), true, []string{"1/1 VMs answer at skm2 (2 down at baseline not checked)"}},
		{"nothing healthy at baseline", BaselineOf(nil), true, []string{"no VM to check (3 down at baseline)"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := Ready(context.Background(), down, targets, tt.base, "skm2")
			if v.Gate != "ready" || v.Pass != tt.pass || !slices.Equal(v.Reasons, tt.reasons) {
				t.Errorf("Ready = %s pass %v %q, want pass %v %q", v.Gate, v.Pass, v.Reasons, tt.pass, tt.reasons)
			}
			if !tt.pass && !slices.Equal(v.Failed, tt.reasons[1:]) {
				t.Errorf("failed %q, want %q", v.Failed, tt.reasons[1:])
			}
		})
	}
	if n := down.Calls("vm-b"); n != 4 {
		t.Errorf("vm-b probed %d times in two checks, want 4 (two tries each)", n)
	}
}
