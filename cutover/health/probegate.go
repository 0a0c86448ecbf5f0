package health

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// NoLimit as ProbeGate.MaxFailures turns the count limit off.
const NoLimit = -1

// MaxReasonTargets is how many failing targets a verdict lists by name;
// the rest are counted ("and 12 more").
const MaxReasonTargets = 20

// Defaults of ProbeGate and PromGate for zero fields.
const (
	DefaultInterval = 2 * time.Second
	DefaultWithin   = time.Minute
)

// ProbeGate probes the batch's targets in rounds and judges each round
// against the baseline: a target down at baseline never counts; one that
// was healthy and is now down is regressed. A round holds when every limit
// that is set holds:
//
//   - MinHealthy > 0: healthy / healthy-at-baseline ≥ MinHealthy;
//   - MaxFailures ≥ 0: regressed ≤ MaxFailures (NoLimit turns it off).
//
// The zero values (MinHealthy 0, MaxFailures 0) allow no regression at all.
// To allow a share of failures set MinHealthy and MaxFailures: NoLimit.
//
// The gate passes once rounds held Rise times in a row, fails once they
// failed Fall times in a row, and fails when Within elapsed without a pass.
type ProbeGate struct {
	GateName    string  // "" means "probe"
	Prober      Prober  // required
	MinHealthy  float64 // 0..1
	MaxFailures int     // ≥ 0, or NoLimit
	Rise        int     // rounds in a row that must hold to pass (0: 1)
	Fall        int     // rounds in a row that must fail to fail (0: 1)
	// Interval is from the start of one round to the start of the next
	// (0: DefaultInterval); a round that takes longer is followed at once.
	Interval    time.Duration
	Timeout     time.Duration // per probe (0: DefaultTimeout); a shorter Options.Timeout of the prober wins
	Within      time.Duration // overall (0: DefaultWithin)
	Concurrency int           // probes in flight (0: DefaultConcurrency)
}

// Name returns the gate's name.
func (g ProbeGate) Name() string {
	if g.GateName == "" {
		return "probe"
	}
	return g.GateName
}

// Validate reports whether the settings make sense, naming the first one
// that does not.
func (g ProbeGate) Validate() error {
	var errs []error
	if g.Prober == nil {
		errs = append(errs, errors.New("no prober"))
	}
	if math.IsNaN(g.MinHealthy) || g.MinHealthy < 0 || g.MinHealthy > 1 {
		errs = append(errs, fmt.Errorf("min healthy %v not between 0 and 1", g.MinHealthy))
	}
	if g.MaxFailures < NoLimit {
		errs = append(errs, fmt.Errorf("max failures %d is negative (use %d for no limit)", g.MaxFailures, NoLimit))
	}
	if g.Rise < 0 || g.Fall < 0 {
		errs = append(errs, fmt.Errorf("rise %d and fall %d must not be negative", g.Rise, g.Fall))
	}
	if g.Interval < 0 || g.Timeout < 0 || g.Within < 0 {
		errs = append(errs, fmt.Errorf("interval %v, timeout %v and within %v must not be negative", g.Interval, g.Timeout, g.Within))
	}
	if g.Concurrency < 0 {
		errs = append(errs, fmt.Errorf("concurrency %d is negative", g.Concurrency))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("gate %s: %w", g.Name(), err)
	}
	return nil
}

func (g ProbeGate) withDefaults() ProbeGate {
	if g.Rise == 0 {
		g.Rise = 1
	}
	if g.Fall == 0 {
		g.Fall = 1
	}
	if g.Interval == 0 {
		g.Interval = DefaultInterval
	}
	if g.Timeout == 0 {
		g.Timeout = DefaultTimeout
	}
	if g.Within == 0 {
		g.Within = DefaultWithin
	}
	if g.Concurrency == 0 {
		g.Concurrency = DefaultConcurrency
	}
	return g
}

// Check runs rounds until the gate decides, Within elapses or ctx ends.
func (g ProbeGate) Check(ctx context.Context, in Input) Verdict {
	name := g.Name()
	if err := g.Validate(); err != nil {
		return Verdict{Gate: name, Reasons: []string{err.Error()}}
	}
	if err := ValidateTargets(in.Targets); err != nil {
		return Verdict{Gate: name, Reasons: []string{"batch " + strconv.Itoa(in.Batch) + ": " + err.Error()}}
	}
	if len(in.Targets) == 0 {
		return Verdict{Gate: name, Pass: true, Reasons: []string{"no targets to probe"}}
	}
	g = g.withDefaults()
	base := in.Baseline.healthySet()
	res := g.poll().Run(ctx, name, in.Progress, func(ctx context.Context, n int) Round {
		r := g.judge(in.Targets, base, RunRoundTimeout(ctx, g.Prober, in.Targets, g.Concurrency, g.Timeout))
		out := RoundFailed
		if r.ok {
			out = RoundHeld
		}
		return Round{Outcome: out, Verdict: r.verdict(name, false, fmt.Sprintf("round %d: %s", n, r.summary(g)), r.reasons())}
	})
	if res.Decided {
		return res.Verdict
	}
	last := res.Last.Verdict
	head, details := headAndDetails(last.Reasons)
	if res.Verdict.Pending {
		v := pending(ctx, name, res.Rounds, details)
		v.Healthy, v.Regressed, v.WasDown = last.Healthy, last.Regressed, last.WasDown
		return v
	}
	if res.Rounds == 0 {
		return Verdict{Gate: name, Reasons: []string{fmt.Sprintf("no verdict within %v: no round of %d probes completed", g.Within, len(in.Targets))}}
	}
	state := fmt.Sprintf("held %d of %d rounds needed", res.Rise, g.Rise)
	if res.Last.Outcome != RoundHeld {
		state = fmt.Sprintf("failed %d of %d rounds to fail", res.Fall, g.Fall)
	}
	last.Reasons = append([]string{fmt.Sprintf("no verdict within %v: %s; %s", g.Within, head, state)}, details...)
	return last
}

// poll is the gate's schedule.
func (g ProbeGate) poll() Poll {
	return Poll{Interval: g.Interval, Within: g.Within, Rise: g.Rise, Fall: g.Fall}
}

// probeRound is the judgement of one round of probes.
type probeRound struct {
	healthy, regressed, wasDown int
	ok                          bool
	failing                     []string // "vm-0042 10.64.0.52: tcp 80: connection refused"
}

func (g ProbeGate) judge(targets []Target, base map[string]bool, res map[string]Result) probeRound {
	var r probeRound
	for _, t := range targets {
		if base != nil && !base[t.Name] {
			r.wasDown++
			continue
		}
		if res := res[t.Name]; res.OK {
			r.healthy++
		} else {
			r.regressed++
			r.failing = append(r.failing, t.Failure(res.Err))
		}
	}
	r.ok = true
	if n := r.healthy + r.regressed; g.MinHealthy > 0 && n > 0 {
		need := int(math.Ceil(g.MinHealthy*float64(n) - 1e-9))
		r.ok = r.healthy >= need
	}
	if g.MaxFailures >= 0 && r.regressed > g.MaxFailures {
		r.ok = false
	}
	return r
}

// summary reads like "198/200 healthy (99%), 2 regressed, 3 down at
// baseline (need ≥ 99% healthy)".
func (r probeRound) summary(g ProbeGate) string {
	n := r.healthy + r.regressed
	var b strings.Builder
	if n == 0 {
		fmt.Fprintf(&b, "no target was healthy at baseline, %d down at baseline", r.wasDown)
		return b.String()
	}
	share := math.Floor(float64(r.healthy)*1000/float64(n)) / 10
	fmt.Fprintf(&b, "%d/%d healthy (%s%%), %d regressed, %d down at baseline", r.healthy, n,
		strconv.FormatFloat(share, 'f', -1, 64), r.regressed, r.wasDown)
	var need []string
	if g.MinHealthy > 0 {
		need = append(need, "≥ "+strconv.FormatFloat(math.Round(g.MinHealthy*1e4)/100, 'f', -1, 64)+"% healthy")
	}
	if g.MaxFailures >= 0 {
		need = append(need, "≤ "+strconv.Itoa(g.MaxFailures)+" regressed")
	}
	if len(need) > 0 {
		fmt.Fprintf(&b, " (need %s)", strings.Join(need, " and "))
	}
	return b.String()
}

// reasons lists the failing targets, at most MaxReasonTargets of them.
func (r probeRound) reasons() []string { return capReasons(r.failing) }

// capReasons returns at most MaxReasonTargets of list and counts the rest
// ("and 12 more").
func capReasons(list []string) []string {
	if len(list) <= MaxReasonTargets {
		return list
	}
	out := append([]string(nil), list[:MaxReasonTargets]...)
	return append(out, fmt.Sprintf("and %d more", len(list)-MaxReasonTargets))
}

func (r probeRound) verdict(name string, pass bool, head string, rest []string) Verdict {
	return Verdict{Gate: name, Pass: pass, Reasons: append([]string{head}, rest...),
		Healthy: r.healthy, Regressed: r.regressed, WasDown: r.wasDown, Failed: slices.Clone(r.failing)}
}
