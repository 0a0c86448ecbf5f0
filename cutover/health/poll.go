package health

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Poll is the schedule of a gate that decides over rounds: it runs a round
// every Interval and passes once Rise rounds in a row held, fails once Fall
// rounds in a row failed, and fails when Within elapsed without either.
// Zero fields mean DefaultInterval, DefaultWithin, 1 and 1. A gate supplies
// the round (Run's round function) and its defaults; Poll does the rest, so
// every gate kind counts, times out, reports progress and words its
// verdicts the same way. Gates validate their settings before: Poll does
// not check for negative values.
type Poll struct {
	// Interval is from the start of one round to the start of the next; a
	// round that takes longer is followed at once.
	Interval time.Duration
	Within   time.Duration // overall
	Rise     int           // rounds in a row that must hold to pass
	Fall     int           // rounds in a row that must fail to fail
}

// Outcome is how one round came out.
type Outcome int

const (
	// RoundUndecided: the round could not be judged (no data yet, an error
	// worth retrying). The rounds held or failed in a row stay as they
	// were.
	RoundUndecided Outcome = iota
	RoundHeld              // the round met the gate's condition
	RoundFailed            // the round did not meet it
	// RoundFatal: the gate fails at once with the round's verdict, as
	// retrying will not help (e.g. the server rejected the query).
	RoundFatal
)

// Round is the judgement of one round. Verdict words it: Reasons[0] is a
// head line such as "poll 3: up == 1 holds for 2 series", to which Run
// appends "; held 2 rounds in a row" or "; failed 1 round" when the round
// decides; the other reasons are details. Healthy, Regressed and WasDown
// are carried into the gate's verdicts. Run sets Gate, Pass and Pending.
type Round struct {
	Outcome Outcome
	Verdict Verdict
}

// PollResult is how Run ended.
type PollResult struct {
	// Verdict is the gate's verdict: decided by a round (Decided), pending
	// when ctx ended first ("not decided after 3 rounds: context canceled"
	// and the last round's reasons), or failed when Within elapsed ("no
	// verdict within 1m0s after 30 polls" and the last round's reasons).
	Verdict Verdict
	// Decided is set when a round decided: Rise rounds held in a row, Fall
	// failed in a row, or one was fatal.
	Decided bool
	Rounds  int   // rounds judged; a round cut short by ctx or Within is not
	Rise    int   // rounds held in a row at the end
	Fall    int   // rounds failed in a row at the end
	Last    Round // the last judged round; zero when there was none
}

func (p Poll) withDefaults() Poll {
	if p.Interval == 0 {
		p.Interval = DefaultInterval
	}
	if p.Within == 0 {
		p.Within = DefaultWithin
	}
	if p.Rise == 0 {
		p.Rise = 1
	}
	if p.Fall == 0 {
		p.Fall = 1
	}
	return p
}

// Run runs rounds until one decides the gate, Within elapses or ctx ends.
// round gets a ctx that ends with Within or ctx and the number the round
// has if it is judged (1 for the first); a round that returns after that
// ctx ended is not judged. After each judged round that did not decide,
// progress (when not nil) gets the round's verdict marked pending. gate
// names the gate in every verdict.
func (p Poll) Run(ctx context.Context, gate string, progress func(Verdict), round func(ctx context.Context, n int) Round) PollResult {
	p = p.withDefaults()
	wctx, cancel := context.WithTimeout(ctx, p.Within)
	defer cancel()
	var res PollResult
	for {
		started := time.Now()
		r := round(wctx, res.Rounds+1)
		if wctx.Err() != nil {
			break // cut short: not judged
		}
		res.Rounds++
		res.Last = r
		switch r.Outcome {
		case RoundHeld:
			res.Rise, res.Fall = res.Rise+1, 0
			if res.Rise >= p.Rise {
				return res.decide(gate, true, "; held "+inARow(res.Rise))
			}
		case RoundFailed:
			res.Rise, res.Fall = 0, res.Fall+1
			if res.Fall >= p.Fall {
				return res.decide(gate, false, "; failed "+inARow(res.Fall))
			}
		case RoundFatal:
			return res.decide(gate, false, "")
		}
		if progress != nil {
			v := r.Verdict
			v.Gate, v.Pass, v.Pending, v.Reasons = gate, false, true, slices.Clone(v.Reasons)
			v.Round, v.RoundOK, v.Streak, v.Need = res.Rounds, r.Outcome == RoundHeld, res.Rise, p.Rise
			progress(v)
		}
		wait := time.NewTimer(time.Until(started.Add(p.Interval)))
		select {
		case <-wait.C:
			continue
		case <-wctx.Done():
			wait.Stop()
		}
		break
	}
	last := res.Last.Verdict
	if ctx.Err() != nil {
		res.Verdict = pending(ctx, gate, res.Rounds, last.Reasons)
	} else {
		head := fmt.Sprintf("no verdict within %v after %d polls", p.Within, res.Rounds)
		res.Verdict = Verdict{Gate: gate, Reasons: append([]string{head}, last.Reasons...)}
	}
	res.Verdict.Healthy, res.Verdict.Regressed, res.Verdict.WasDown = last.Healthy, last.Regressed, last.WasDown
	res.Verdict.Failed = last.Failed
	return res
}

// decide makes the last round's verdict the gate's, with suffix appended
// to its head line.
func (res PollResult) decide(gate string, pass bool, suffix string) PollResult {
	v := res.Last.Verdict
	v.Gate, v.Pass, v.Pending, v.Reasons = gate, pass, false, slices.Clone(v.Reasons)
	switch {
	case suffix == "":
	case len(v.Reasons) == 0:
		v.Reasons = []string{strings.TrimPrefix(suffix, "; ")}
	default:
		v.Reasons[0] += suffix
	}
	res.Verdict, res.Decided = v, true
	return res
}

// headAndDetails splits a round's reasons into its head line and the rest.
func headAndDetails(reasons []string) (string, []string) {
	if len(reasons) == 0 {
		return "", nil
	}
	return reasons[0], reasons[1:]
}

func inARow(n int) string {
	if n == 1 {
		return "1 round"
	}
	return strconv.Itoa(n) + " rounds in a row"
}
