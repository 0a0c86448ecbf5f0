package health

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Baseline is which targets were healthy before the cutover. Gates judge a
// batch against it: a target down at baseline never blocks a batch, one
// that was healthy and is now down is a regression. It is stored in the
// journal as JSON.
type Baseline struct {
	Taken   time.Time `json:"taken"`
	Probed  int       `json:"probed"`
	Healthy []string  `json:"healthy"` // target names, sorted
	// Down holds the error of the last try for each target that was not
	// healthy.
	Down map[string]string `json:"down,omitempty"`
}

// BaselineOptions tune TakeBaseline; zero values take the defaults.
type BaselineOptions struct {
	Concurrency int           // probes in flight (0: DefaultConcurrency)
	Timeout     time.Duration // per probe (0: DefaultTimeout)
	// Tries is how often a failing target is probed in all before it
	// counts as down (0: 2). A target healthy in any try is healthy: a
	// flaky VM then gets judged, which can fail a gate but never hides a
	// regression.
	Tries int
}

// TakeBaseline probes every target and returns which were healthy. It
// fails when the targets are invalid or ctx ends before every target was
// probed: a partial baseline would let regressions pass as "down before".
func TakeBaseline(ctx context.Context, p Prober, targets []Target, o BaselineOptions) (Baseline, error) {
	if err := ValidateTargets(targets); err != nil {
		return Baseline{}, fmt.Errorf("take baseline: %w", err)
	}
	if o.Tries <= 0 {
		o.Tries = 2
	}
	b := Baseline{Taken: time.Now().UTC(), Probed: len(targets), Healthy: []string{}, Down: map[string]string{}}
	todo := targets
	for try := 0; try < o.Tries && len(todo) > 0; try++ {
		res := RunRoundTimeout(ctx, p, todo, o.Concurrency, o.Timeout)
		if err := ctx.Err(); err != nil {
			return Baseline{}, fmt.Errorf("take baseline: %w", err)
		}
		var again []Target
		for _, t := range todo {
			if r := res[t.Name]; r.OK {
				b.Healthy = append(b.Healthy, t.Name)
				delete(b.Down, t.Name)
			} else {
				b.Down[t.Name] = r.Err
				again = append(again, t)
			}
		}
		todo = again
	}
	slices.Sort(b.Healthy)
	if len(b.Down) == 0 {
		b.Down = nil
	}
	return b, nil
}

// BaselineOf returns a baseline in which exactly the named targets were
// healthy, for callers that keep only the names (as the engine's journal
// does).
func BaselineOf(healthy []string) *Baseline {
	h := slices.Clone(healthy)
	slices.Sort(h)
	return &Baseline{Probed: len(h), Healthy: slices.Compact(h)}
}

// healthySet returns the healthy names as a set; nil for a nil baseline.
func (b *Baseline) healthySet() map[string]bool {
	if b == nil {
		return nil
	}
	s := make(map[string]bool, len(b.Healthy))
	for _, n := range b.Healthy {
		s[n] = true
	}
	return s
}

// Ready probes the targets that were healthy at base (every target when
// base is nil) through p, twice for one that does not answer, and judges
// them as the readiness check before a batch moves: every one must answer.
// site names where they were probed, for the verdict's head line. The
// verdict is gate "ready"; Failed lists every target that did not answer.
func Ready(ctx context.Context, p Prober, targets []Target, base *Baseline, site string) Verdict {
	v := Verdict{Gate: "ready"}
	healthy := base.healthySet()
	var check []Target
	skipped := 0
	for _, t := range targets {
		if healthy != nil && !healthy[t.Name] {
			skipped++
			continue
		}
		check = append(check, t)
	}
	if len(check) == 0 {
		v.Pass = true
		v.Reasons = []string{fmt.Sprintf("no VM to check (%d down at baseline)", skipped)}
		return v
	}
	b, err := TakeBaseline(ctx, p, check, BaselineOptions{})
	if err != nil {
		v.Reasons = []string{err.Error()}
		return v
	}
	for _, t := range check {
		if why, down := b.Down[t.Name]; down {
			v.Failed = append(v.Failed, t.Failure(why))
		}
	}
	head := fmt.Sprintf("%d/%d VMs answer at %s", len(check)-len(v.Failed), len(check), site)
	if skipped > 0 {
		head += fmt.Sprintf(" (%d down at baseline not checked)", skipped)
	}
	v.Reasons = append([]string{head}, capReasons(v.Failed)...)
	v.Pass = len(v.Failed) == 0
	return v
}
