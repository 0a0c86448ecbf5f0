package health

import (
	"context"
	"errors"
	"fmt"
	"math"
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

	wctx, cancel := context.WithTimeout(ctx, g.Within)
	defer cancel()
	var (
		last        round
		rounds      int
		rise, fall  int
		lastReasons []string
	)
	for {
		started := time.Now()
		res := RunRoundTimeout(wctx, g.Prober, in.Targets, g.Concurrency, g.Timeout)
		if wctx.Err() != nil {
			break // cut short: not judged
		}
		rounds++
		last = g.judge(in.Targets, base, res)
		if last.ok {
			rise, fall = rise+1, 0
		} else {
			rise, fall = 0, fall+1
		}
		lastReasons = last.reasons()
		switch {
		case rise >= g.Rise:
			return last.verdict(name, true, fmt.Sprintf("round %d: %s; held %s", rounds, last.summary(g), inARow(rise)), lastReasons)
		case fall >= g.Fall:
			return last.verdict(name, false, fmt.Sprintf("round %d: %s; failed %s", rounds, last.summary(g), inARow(fall)), lastReasons)
		}
		if in.Progress != nil {
			v := last.verdict(name, false, fmt.Sprintf("round %d: %s", rounds, last.summary(g)), lastReasons)
			v.Pending = true
			in.Progress(v)
		}
		wait := time.NewTimer(time.Until(started.Add(g.Interval)))
		select {
		case <-wait.C:
			continue
		case <-wctx.Done():
			wait.Stop()
		}
		break
	}
	if ctx.Err() != nil {
		v := pending(ctx, name, rounds, lastReasons)
		v.Healthy, v.Regressed, v.WasDown = last.healthy, last.regressed, last.wasDown
		return v
	}
	if rounds == 0 {
		return Verdict{Gate: name, Reasons: []string{fmt.Sprintf("no verdict within %v: no round of %d probes completed", g.Within, len(in.Targets))}}
	}
	state := fmt.Sprintf("held %d of %d rounds needed", rise, g.Rise)
	if !last.ok {
		state = fmt.Sprintf("failed %d of %d rounds to fail", fall, g.Fall)
	}
	return last.verdict(name, false, fmt.Sprintf("no verdict within %v: round %d: %s; %s", g.Within, rounds, last.summary(g), state), lastReasons)
}

func inARow(n int) string {
	if n == 1 {
		return "1 round"
	}
	return strconv.Itoa(n) + " rounds in a row"
}

// round is the judgement of one round of probes.
type round struct {
	healthy, regressed, wasDown int
	ok                          bool
	failing                     []string // "vm-0042 10.64.0.52: tcp 80: connection refused"
}

func (g ProbeGate) judge(targets []Target, base map[string]bool, res map[string]Result) round {
	var r round
	for _, t := range targets {
		if base != nil && !base[t.Name] {
			r.wasDown++
			continue
		}
		if res := res[t.Name]; res.OK {
			r.healthy++
		} else {
			r.regressed++
			r.failing = append(r.failing, fmt.Sprintf("%s %s: %s", t.Name, t.Addr, res.Err))
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
func (r round) summary(g ProbeGate) string {
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
func (r round) reasons() []string {
	if len(r.failing) <= MaxReasonTargets {
		return r.failing
	}
	out := append([]string(nil), r.failing[:MaxReasonTargets]...)
	return append(out, fmt.Sprintf("and %d more", len(r.failing)-MaxReasonTargets))
}

func (r round) verdict(name string, pass bool, head string, rest []string) Verdict {
	return Verdict{Gate: name, Pass: pass, Reasons: append([]string{head}, rest...),
		Healthy: r.healthy, Regressed: r.regressed, WasDown: r.wasDown}
}
