package view

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/cutover/engine"
)

// TestGateCell: a gate still rising is progress, never FAIL; a decided
// failure is FAIL; a batch held by the readiness check is not ready.
func TestGateCell(t *testing.T) {
	rising := func(round int, ok bool, streak, need int) engine.VerdictRecord {
		return engine.VerdictRecord{Gate: "probe", Pending: true, Round: round, RoundOK: ok, Streak: streak, Need: need}
	}
	failed := engine.VerdictRecord{Gate: "probe", Failed: vmsDown(30, "tcp 80: connection refused"), Reasons: []string{"vm-0001"}}
	tests := []struct {
		name     string
		phase    engine.BatchPhase
		verdicts []engine.VerdictRecord
		want     string
		kind     string
	}{
		{"round held", engine.BatchGating, []engine.VerdictRecord{rising(2, true, 1, 2)}, "probe round 2 ✓ (1/2 in a row)", kBusy},
		{"round failed", engine.BatchGating, []engine.VerdictRecord{rising(1, false, 0, 2)}, "probe round 1 ✗ (0/2)", kBusy},
		{"no rounds needed", engine.BatchGating, []engine.VerdictRecord{rising(3, true, 3, 0)}, "probe round 3 ✓", kBusy},
		{"older daemon: name ends in (running)", engine.BatchGating,
			[]engine.VerdictRecord{{Gate: "probe (running)", Reasons: []string{"round 1: 191/191 healthy"}}},
			"probe running: round 1: 191/191 healthy", kBusy},
		{"older daemon with rounds", engine.BatchGating,
			[]engine.VerdictRecord{{Gate: "probe (running)", Round: 1, RoundOK: true, Streak: 1, Need: 3}},
			"probe round 1 ✓ (1/3 in a row)", kBusy},
		{"an earlier attempt's failure beside a rising gate", engine.BatchGating,
			[]engine.VerdictRecord{{Gate: "bgp", Pass: true}, failed, rising(1, true, 1, 2)}, "probe round 1 ✓ (1/2 in a row)", kBusy},
		{"passed", engine.BatchCommitted, pass, "pass (2 gates)", kOK},
		{"failed", engine.BatchRolledBack, []engine.VerdictRecord{{Gate: "bgp", Pass: true}, failed}, "FAIL probe: 30 failing", kBad},
		{"failed without targets", engine.BatchRolledBack, []engine.VerdictRecord{{Gate: "bgp", Reasons: []string{"peer down"}}}, "FAIL bgp", kBad},
		{"held", engine.BatchHeld, []engine.VerdictRecord{{Gate: "ready", Failed: vmsDown(3, "tcp 80: i/o timeout")}}, "not ready: 3 failing", kWarn},
		{"held by a named check", engine.BatchHeld, []engine.VerdictRecord{{Gate: "http", Reasons: []string{"x"}}}, "not ready: http", kWarn},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, kind := gateCell(engine.BatchState{Phase: tt.phase, Verdicts: tt.verdicts})
			if got != tt.want || kind != tt.kind {
				t.Errorf("gateCell = %q (%s), want %q (%s)", got, kind, tt.want, tt.kind)
			}
		})
	}
}

// TestRisingGateRow: the row of a batch whose gate is rising, all healthy,
// never says FAIL, has no why line, and the run's view says nothing bad.
func TestRisingGateRow(t *testing.T) {
	for _, tt := range []struct {
		name string
		v    engine.VerdictRecord
		want string
	}{
		{"pending", engine.VerdictRecord{Gate: "probe", Pending: true, Round: 1, RoundOK: true, Streak: 1, Need: 2,
			Reasons: []string{"round 1: 191/191 healthy"}},
			"1  b01-unn     200  [######----]  gating        probe round 1 ✓ (1/2 in a row)            running 2s\n"},
		{"older daemon", engine.VerdictRecord{Gate: "probe (running)", Reasons: []string{"round 1: 191/191 healthy, 0 regressed, 0 down at baseline"}},
			"1  b01-unn     200  [######----]  gating        probe running: round 1: 191/191 healthy…  running 2s\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := *steps()[5] // b1 gating
			b := &st.State.Batches[1]
			b.Verdicts = []engine.VerdictRecord{{Gate: "bgp", Pass: true}, tt.v}
			var out bytes.Buffer
			if err := Render(&out, st, utc); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), "\n"+tt.want) {
				t.Errorf("view lacks the row %q:\n%s", tt.want, out.String())
			}
			if strings.Contains(out.String(), "FAIL") || strings.Contains(out.String(), "why:") {
				t.Errorf("a rising gate renders as a failure:\n%s", out.String())
			}
		})
	}
}

// TestGatedAgain: a batch the run gates again after a failed attempt
// (resume after the pause policy stopped it) shows its gate running, not
// the earlier attempt's failure; paused, it shows the failure.
func TestGatedAgain(t *testing.T) {
	st := *steps()[5] // b1 gating
	b := &st.State.Batches[1]
	b.Verdicts = []engine.VerdictRecord{{Gate: "probe", Failed: vmsDown(3, "http 503")}}
	for _, tt := range []struct {
		run  engine.RunPhase
		want string
	}{
		{engine.PhaseRunning, "\n1  b01-unn     200  [######----]  gating                                                  running 2s\n2  "},
		{engine.PhasePaused, "\n1  b01-unn     200  [######----]  gating        FAIL probe: 3 failing                     running 2s\n" +
			"   why: probe: vm-0001 10.64.0.10: http 503 (+2 more: cutover status --batch 1)\n2  "},
	} {
		st.State.Phase = tt.run
		var out bytes.Buffer
		if err := Render(&out, st, utc); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), tt.want) {
			t.Errorf("%s: view lacks %q:\n%s", tt.run, tt.want, out.String())
		}
	}
}

// TestTiming: a rollback's duration is the one the engine measured, with
// who rolled back, never the time since the commit.
func TestTiming(t *testing.T) {
	base := engine.BatchState{Phase: engine.BatchRolledBack, Started: at(0), Decided: at(4 * s), RolledBack: at(4*s + 18700*time.Millisecond)}
	tests := []struct {
		name string
		by   string
		took time.Duration
		want string
	}{
		{"policy", "policy", 20 * time.Millisecond, "4s (rollback 20ms by policy)"},
		{"operator", "alice", 1500 * time.Millisecond, "4s (rollback 1.5s by alice)"},
		{"recovery", "recover", 30 * time.Millisecond, "4s (rollback 30ms on recovery)"},
		{"no duration journaled", "alice", 0, "4s (rolled back by alice)"},
		{"nothing journaled", "", 0, "4s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := base
			x.RollbackBy, x.RollbackTook = tt.by, tt.took
			if got := timing(x, at(time.Minute)); got != tt.want {
				t.Errorf("timing = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestMoreLeadsSomewhere: every "(+N more)" says where the rest is, and a
// why line cut to the terminal's width keeps that pointer.
func TestMoreLeadsSomewhere(t *testing.T) {
	failed := engine.VerdictRecord{Gate: "probe", Failed: vmsDown(20, "tcp 80: connection refused")}
	x := engine.BatchState{Index: 3, Phase: engine.BatchRolledBack, Verdicts: []engine.VerdictRecord{failed}}
	tests := []struct {
		name, got, want string
	}{
		{"why", whyText(x, "skm2"), "probe: vm-0001 10.64.0.10: tcp 80: connection refused (+19 more: cutover status --batch 3)"},
		{"engine's words", moreHint("b03 failed its gates: probe: vm-0001 (+2 more)", 3), "b03 failed its gates: probe: vm-0001 (+2 more: cutover status --batch 3)"},
		{"the run's words", moreHint("4 down: vm-1; vm-2 (+2 more)", -1), "4 down: vm-1; vm-2 (+2 more: cutover status -o json)"},
		{"cut to the width", fit("   why: "+whyText(x, "skm2"), 80, 3), "   why: probe: vm-0001 10.64.0.10: tcp 80:… (+19 more: cutover status --batch 3)"},
		{"cut without a count", fit("   why: operator alice rollback --batch 3: the application team asked for it at 03:00", 60, 3),
			"   why: operator alice rollbac… (… cutover status --batch 3)"},
		{"fits", fit("   why: short", 60, 3), "   why: short"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, tt.got, tt.want)
		}
	}
}
