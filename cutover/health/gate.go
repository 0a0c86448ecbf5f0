package health

import (
	"context"
	"fmt"
)

// Gate judges one batch. Check blocks until it has decided or ctx ends; a
// Verdict decided neither way (ctx ended first) has Pending set. Check must
// be safe to call concurrently with other gates' Checks.
type Gate interface {
	Name() string
	Check(ctx context.Context, in Input) Verdict
}

// Input is what a gate judges.
type Input struct {
	Batch   int      // index of the batch, for reasons
	Targets []Target // the batch's probe targets
	// Baseline says which targets were healthy before the cutover; nil:
	// every target counts as healthy at baseline.
	Baseline *Baseline
	// Progress, when set, is called with a pending verdict after each
	// round of a gate that takes several (for status displays). Gates run
	// concurrently, so it must be safe for concurrent use.
	Progress func(Verdict)
}

// Verdict is a gate's decision and why.
type Verdict struct {
	Gate    string   `json:"gate"`
	Pass    bool     `json:"pass"`
	Pending bool     `json:"pending,omitempty"` // not decided (canceled or still running)
	Reasons []string `json:"reasons,omitempty"` // e.g. "vm-0042 10.64.0.52: tcp 80: connection refused"
	// Counts of the probe gate's last round: healthy now and at baseline,
	// healthy at baseline but down now, down at baseline (ignored).
	Healthy   int `json:"healthy,omitempty"`
	Regressed int `json:"regressed,omitempty"`
	WasDown   int `json:"was_down,omitempty"`
	// Failed lists every failing target of the last round, in full;
	// Reasons holds only the first MaxReasonTargets of them.
	Failed []string `json:"failed,omitempty"`
	// Progress of a pending verdict: the last round's number, whether it
	// held, the rounds held in a row and the rounds in a row it takes.
	Round   int  `json:"round,omitempty"`
	RoundOK bool `json:"round_ok,omitempty"`
	Streak  int  `json:"streak,omitempty"`
	Need    int  `json:"need,omitempty"`
}

// Evaluate runs the gates concurrently on in. It returns as soon as one
// gate does not pass, after canceling the others (whose verdicts are then
// pending), or when all have passed. No gates pass. Verdicts are in the
// order of gates. A gate that panics fails with the panic as its reason.
func Evaluate(ctx context.Context, gates []Gate, in Input) (pass bool, verdicts []Verdict) {
	verdicts = make([]Verdict, len(gates))
	if len(gates) == 0 {
		return true, verdicts
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type done struct {
		i int
		v Verdict
	}
	ch := make(chan done)
	for i, g := range gates {
		go func() { ch <- done{i, check(ctx, g, in)} }()
	}
	pass = true
	failed := ""
	for range gates {
		d := <-ch
		verdicts[d.i] = d.v
		if pass && !d.v.Pass {
			pass, failed = false, d.v.Gate
			cancel()
		}
	}
	if failed != "" {
		for i, v := range verdicts {
			if v.Pending && v.Gate != failed {
				verdicts[i].Reasons = append(v.Reasons, fmt.Sprintf("stopped: gate %q did not pass", failed))
			}
		}
	}
	return pass, verdicts
}

// check runs one gate and normalises its verdict.
func check(ctx context.Context, g Gate, in Input) (v Verdict) {
	if g == nil {
		return Verdict{Gate: "<nil>", Reasons: []string{"nil gate"}}
	}
	name := g.Name()
	defer func() {
		if r := recover(); r != nil {
			v = Verdict{Gate: name, Reasons: []string{fmt.Sprintf("gate panicked: %v", r)}}
		}
	}()
	v = g.Check(ctx, in)
	if v.Gate == "" {
		v.Gate = name
	}
	if v.Pending {
		v.Pass = false
	}
	return v
}

// FuncGate adapts a function to a Gate, e.g. the engine's BGP convergence
// check. Func's verdict gets GateName when it names no gate.
type FuncGate struct {
	GateName string
	Func     func(ctx context.Context, in Input) Verdict
}

// Name returns GateName.
func (g FuncGate) Name() string { return g.GateName }

// Check calls Func.
func (g FuncGate) Check(ctx context.Context, in Input) Verdict {
	v := g.Func(ctx, in)
	if v.Gate == "" {
		v.Gate = g.GateName
	}
	return v
}

// ErrorGate adapts a function that returns nil for pass and an error for
// fail: the error is the reason. An error after ctx ended gives a pending
// verdict.
func ErrorGate(name string, f func(ctx context.Context, in Input) error) FuncGate {
	return FuncGate{GateName: name, Func: func(ctx context.Context, in Input) Verdict {
		err := f(ctx, in)
		switch {
		case err == nil:
			return Verdict{Gate: name, Pass: true}
		case ctx.Err() != nil:
			return Verdict{Gate: name, Pending: true, Reasons: []string{"canceled: " + err.Error()}}
		}
		return Verdict{Gate: name, Reasons: []string{err.Error()}}
	}}
}

// pending is the verdict of a gate whose ctx ended before it decided.
func pending(ctx context.Context, name string, rounds int, last []string) Verdict {
	r := []string{fmt.Sprintf("not decided after %d rounds: %v", rounds, context.Cause(ctx))}
	return Verdict{Gate: name, Pending: true, Reasons: append(r, last...)}
}
