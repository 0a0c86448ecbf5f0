package health

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// scripted plays outcomes in turn, one a round, and words round n
// "r<n>" with the detail "d<n>" and counts Healthy n. Past the script it
// blocks until ctx ends and then says it held (which Run must not judge).
type scripted struct {
	outcomes []Outcome
	mu       sync.Mutex
	calls    []int // the n of each call
	// atEnd, when set, is called once the script has run out.
	atEnd func()
}

func (s *scripted) round(ctx context.Context, n int) Round {
	s.mu.Lock()
	i := len(s.calls)
	s.calls = append(s.calls, n)
	s.mu.Unlock()
	if i >= len(s.outcomes) {
		if s.atEnd != nil {
			s.atEnd()
		}
		<-ctx.Done()
		return Round{Outcome: RoundHeld, Verdict: Verdict{Reasons: []string{"cut short"}}}
	}
	return Round{Outcome: s.outcomes[i], Verdict: Verdict{
		Reasons: []string{fmt.Sprintf("r%d", n), fmt.Sprintf("d%d", n)}, Healthy: n}}
}

// progressLog records progress verdicts.
type progressLog struct {
	mu sync.Mutex
	vs []Verdict
}

func (p *progressLog) add(v Verdict) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.vs = append(p.vs, v)
}

const (
	undecided = RoundUndecided
	held      = RoundHeld
	failed    = RoundFailed
	fatal     = RoundFatal
)

func TestPollRun(t *testing.T) {
	for _, tc := range []struct {
		name       string
		poll       Poll
		outcomes   []Outcome
		want       Verdict
		decided    bool
		rounds     int
		rise, fall int
		progress   int // progress calls, one per undecisive round
	}{
		{
			name: "defaults: one held round passes", outcomes: []Outcome{held},
			want:    Verdict{Gate: "g", Pass: true, Healthy: 1, Reasons: []string{"r1; held 1 round", "d1"}},
			decided: true, rounds: 1, rise: 1,
		},
		{
			name: "defaults: one failed round fails", outcomes: []Outcome{failed},
			want:    Verdict{Gate: "g", Healthy: 1, Reasons: []string{"r1; failed 1 round", "d1"}},
			decided: true, rounds: 1, fall: 1,
		},
		{
			name: "rise 2: a failed round resets the rounds held", poll: Poll{Rise: 2, Fall: 3},
			outcomes: []Outcome{held, failed, held, held},
			want:     Verdict{Gate: "g", Pass: true, Healthy: 4, Reasons: []string{"r4; held 2 rounds in a row", "d4"}},
			decided:  true, rounds: 4, rise: 2, progress: 3,
		},
		{
			name: "fall 3: a held round resets the rounds failed", poll: Poll{Rise: 5, Fall: 3},
			outcomes: []Outcome{failed, failed, held, failed, failed, failed},
			want:     Verdict{Gate: "g", Healthy: 6, Reasons: []string{"r6; failed 3 rounds in a row", "d6"}},
			decided:  true, rounds: 6, fall: 3, progress: 5,
		},
		{
			name: "undecided rounds keep the rounds held", poll: Poll{Rise: 2},
			outcomes: []Outcome{held, undecided, undecided, held},
			want:     Verdict{Gate: "g", Pass: true, Healthy: 4, Reasons: []string{"r4; held 2 rounds in a row", "d4"}},
			decided:  true, rounds: 4, rise: 2, progress: 3,
		},
		{
			name: "undecided rounds keep the rounds failed", poll: Poll{Fall: 2},
			outcomes: []Outcome{failed, undecided, failed},
			want:     Verdict{Gate: "g", Healthy: 3, Reasons: []string{"r3; failed 2 rounds in a row", "d3"}},
			decided:  true, rounds: 3, fall: 2, progress: 2,
		},
		{
			name: "a fatal round fails at once with its own reasons", poll: Poll{Rise: 2, Fall: 2},
			outcomes: []Outcome{held, fatal},
			want:     Verdict{Gate: "g", Healthy: 2, Reasons: []string{"r2", "d2"}},
			decided:  true, rounds: 2, rise: 1, progress: 1,
		},
		{
			name: "within: the last round is the reason", poll: Poll{Rise: 3, Fall: 3, Within: 1500 * time.Millisecond},
			outcomes: []Outcome{held, undecided},
			want:     Verdict{Gate: "g", Healthy: 2, Reasons: []string{"no verdict within 1.5s after 2 polls", "r2", "d2"}},
			rounds:   2, rise: 1, progress: 2,
		},
		{
			name: "within without a round", poll: Poll{Within: 200 * time.Millisecond},
			want: Verdict{Gate: "g", Reasons: []string{"no verdict within 200ms after 0 polls"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &scripted{outcomes: tc.outcomes}
			var p progressLog
			tc.poll.Interval = time.Millisecond
			res := tc.poll.Run(context.Background(), "g", p.add, s.round)
			assertVerdict(t, res.Verdict, tc.want)
			if res.Decided != tc.decided || res.Rounds != tc.rounds || res.Rise != tc.rise || res.Fall != tc.fall {
				t.Errorf("decided %v, %d rounds, rise %d, fall %d; want %v, %d, %d, %d",
					res.Decided, res.Rounds, res.Rise, res.Fall, tc.decided, tc.rounds, tc.rise, tc.fall)
			}
			if tc.rounds > 0 && (res.Last.Outcome != tc.outcomes[tc.rounds-1] || res.Last.Verdict.Reasons[0] != fmt.Sprintf("r%d", tc.rounds)) {
				t.Errorf("last round %+v, want round %d", res.Last, tc.rounds)
			}
			// Rounds are numbered 1, 2, …; a cut short one gets the next number.
			calls := tc.rounds
			if !tc.decided {
				calls++
			}
			if want := seq(calls); !slices.Equal(s.calls, want) {
				t.Errorf("round numbers %v, want %v", s.calls, want)
			}
			if len(p.vs) != tc.progress {
				t.Fatalf("%d progress calls, want %d: %+v", len(p.vs), tc.progress, p.vs)
			}
			for i, v := range p.vs {
				n := i + 1
				assertVerdict(t, v, Verdict{Gate: "g", Pending: true, Healthy: n,
					Reasons: []string{fmt.Sprintf("r%d", n), fmt.Sprintf("d%d", n)}})
			}
		})
	}
}

func seq(n int) []int {
	out := []int{}
	for i := 1; i <= n; i++ {
		out = append(out, i)
	}
	return out
}

// TestPollRunCanceled: ctx ending during a round or between rounds gives a
// pending verdict with the last judged round's reasons and counts; the
// round cut short is not judged.
func TestPollRunCanceled(t *testing.T) {
	cause := errors.New("operator aborted")
	for _, tc := range []struct {
		name     string
		between  bool // cancel from progress, while waiting for the next round
		cause    error
		want     string
		progress int
	}{
		{name: "during a round", want: "not decided after 2 rounds: context canceled", progress: 2},
		{name: "between rounds", between: true, want: "not decided after 2 rounds: context canceled", progress: 2},
		{name: "with a cause", cause: cause, want: "not decided after 2 rounds: operator aborted", progress: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			s := &scripted{outcomes: []Outcome{failed, held}}
			var p progressLog
			poll := Poll{Rise: 2, Fall: 2, Interval: time.Millisecond, Within: time.Hour}
			progress := p.add
			if tc.between {
				// Round 3 would pass if it were judged; it is not run at
				// all when the wait sees ctx end first.
				s.outcomes = append(s.outcomes, held)
				progress = func(v Verdict) {
					p.add(v)
					if len(p.vs) == 2 {
						cancel(tc.cause)
					}
				}
			} else {
				s.atEnd = func() { cancel(tc.cause) }
			}
			res := poll.Run(ctx, "g", progress, s.round)
			assertVerdict(t, res.Verdict, Verdict{Gate: "g", Pending: true, Healthy: 2, Reasons: []string{tc.want, "r2", "d2"}})
			if res.Decided || res.Rounds != 2 || res.Rise != 1 || res.Fall != 0 {
				t.Errorf("result %+v", res)
			}
			if len(p.vs) != tc.progress {
				t.Errorf("%d progress calls, want %d", len(p.vs), tc.progress)
			}
		})
	}

	// Canceled before the first round: nothing judged.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := &scripted{}
	res := Poll{}.Run(ctx, "g", nil, s.round)
	assertVerdict(t, res.Verdict, Verdict{Gate: "g", Pending: true, Reasons: []string{"not decided after 0 rounds: context canceled"}})
	if res.Decided || res.Rounds != 0 {
		t.Errorf("result %+v", res)
	}
}

// TestPollRunInterval: rounds start Interval apart.
func TestPollRunInterval(t *testing.T) {
	s := &scripted{outcomes: []Outcome{undecided, undecided, held}}
	start := time.Now()
	res := Poll{Interval: 30 * time.Millisecond}.Run(context.Background(), "g", nil, s.round)
	if took := time.Since(start); took < 60*time.Millisecond {
		t.Errorf("3 rounds 30ms apart took %v", took)
	}
	if !res.Verdict.Pass || res.Rounds != 3 {
		t.Errorf("result %+v", res)
	}
}

// TestPollRunVerdictsAreCopies: the verdicts Run hands out do not share
// the round's reasons.
func TestPollRunVerdictsAreCopies(t *testing.T) {
	reasons := []string{"head", "detail"}
	var got []Verdict
	res := Poll{Rise: 2, Interval: time.Millisecond}.Run(context.Background(), "g", func(v Verdict) { got = append(got, v) },
		func(context.Context, int) Round {
			return Round{Outcome: RoundHeld, Verdict: Verdict{Reasons: reasons}}
		})
	if !slices.Equal(reasons, []string{"head", "detail"}) {
		t.Errorf("round's reasons changed to %q", reasons)
	}
	if len(got) != 1 || !slices.Equal(got[0].Reasons, reasons) ||
		!slices.Equal(res.Verdict.Reasons, []string{"head; held 2 rounds in a row", "detail"}) {
		t.Errorf("progress %+v, verdict %+v", got, res.Verdict)
	}

	// A round without reasons still says why the gate decided.
	res = Poll{}.Run(context.Background(), "g", nil, func(context.Context, int) Round { return Round{Outcome: RoundFailed} })
	assertVerdict(t, res.Verdict, Verdict{Gate: "g", Reasons: []string{"failed 1 round"}})
}
