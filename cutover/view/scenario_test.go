package view

import (
	"fmt"
	"time"

	"github.com/cutover/cutover/cutover/engine"
)

// ended is a run of n batches of 10 VMs, each committed in 4s, that ended
// (done) at 23:10; the test changes batches before it renders.
func ended(n int) engine.Status {
	st := engine.Status{Now: at(10 * time.Minute), State: engine.RunState{
		RunID: "20260314T230000Z", Runbook: "runbooks/helse-nord/runbook.yaml", Operator: "alice",
		Source: "skm1", Target: "skm2", Phase: engine.PhaseDone, Started: t0, Ended: at(10 * time.Minute), Applied: []int{},
	}}
	for i := range n {
		start := time.Duration(i) * 10 * s
		st.State.Batches = append(st.State.Batches, engine.BatchState{Index: i, Name: fmt.Sprintf("batch-%02d", i), VMs: 10, Prefixes: 1,
			Phase: engine.BatchCommitted, Attempts: 1, Started: at(start), Converged: at(start + s), Decided: at(start + 4*s),
			GateTook: 3 * s, Verdicts: pass})
	}
	return st
}

// rollBack makes batch i of st rolled back by policy after a failed probe
// gate with the given failing targets (the first three as its reasons).
func rollBack(st *engine.Status, i int, failed []string) {
	b := &st.State.Batches[i]
	v := engine.VerdictRecord{Gate: "probe", Failed: failed, Reasons: failed[:min(3, len(failed))]}
	b.Phase, b.Verdicts = engine.BatchRolledBack, []engine.VerdictRecord{{Gate: "bgp", Pass: true}, v}
	b.Reason = "gate failed: " + engine.FailedGates(b.Verdicts)
	b.RolledBack, b.RollbackBy, b.RollbackTook = b.Decided.Add(18700*time.Millisecond), "policy", 20*time.Millisecond
}

// hold makes batch i of st held: its VMs did not answer at the target.
func hold(st *engine.Status, i int, failed []string) {
	b := &st.State.Batches[i]
	v := engine.VerdictRecord{Gate: "ready", Failed: failed, Reasons: failed[:min(3, len(failed))]}
	*b = engine.BatchState{Index: b.Index, Name: b.Name, VMs: b.VMs, Prefixes: b.Prefixes, Phase: engine.BatchHeld,
		Decided: b.Started, GateTook: 1200 * time.Millisecond, Verdicts: []engine.VerdictRecord{v},
		Reason: "not ready at skm2: " + engine.FailedGates([]engine.VerdictRecord{v})}
}

// settle sets the counts the daemon sends with a status.
func settle(st *engine.Status) {
	rs := &st.State
	rs.Applied = rs.Applied[:0]
	st.TotalVMs = 0
	for i, b := range rs.Batches {
		st.TotalVMs += b.VMs
		if b.Phase == engine.BatchCommitted || b.Phase == engine.BatchAnnouncing || b.Phase == engine.BatchGating {
			rs.Applied = append(rs.Applied, i)
		}
	}
	st.MovedVMs, _ = rs.Moved()
	st.Outcome = rs.Outcome()
	st.AtSourceVMs, st.AtSourceBatches = rs.AtSource()
}

// vmsDown is n failing targets as a probe words them.
func vmsDown(n int, why string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("vm-%04d 10.64.0.%d: %s", i+1, i+10, why)
	}
	return out
}
