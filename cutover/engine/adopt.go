package engine

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Adopt starts a journal over from what the network holds: the daemon
// found an earlier run's moves in the nft table while its journal held no
// run (it was lost, emptied or deleted), and a person chose to take them
// as they are. It journals found (what was found, for the audit trail),
// a run of spec with the batches moved committed and the rest pending,
// ended at once, and then re-applies exactly those batches to BGP and nft
// (so the speaker holds their routes again). A later rollback takes them
// back like any finished run's.
//
// It is refused when the journal holds a run.
func (e *Engine) Adopt(ctx context.Context, spec *Spec, moved []int, operator, found string) error {
	if err := spec.validate(); err != nil {
		return err
	}
	moved = slices.Clone(moved)
	slices.Sort(moved)
	moved = slices.Compact(moved)
	e.mu.Lock()
	if e.st.RunID != "" || e.st.Active() {
		e.mu.Unlock()
		return fmt.Errorf("adopt: the journal holds run %s (%s): nothing to adopt", e.st.RunID, e.st.Phase)
	}
	batches := make([]BatchState, len(spec.Batches))
	for i, b := range spec.Batches {
		batches[i] = BatchState{Index: i, Name: b.Name, VMs: b.VMs, Prefixes: len(b.Prefixes), Phase: BatchPending}
	}
	names := make([]string, 0, len(moved))
	for _, m := range moved {
		if m < 0 || m >= len(batches) {
			e.mu.Unlock()
			return fmt.Errorf("adopt: batch %d: the runbook has batches 0 to %d", m, len(batches)-1)
		}
		batches[m].Phase = BatchCommitted
		names = append(names, fmt.Sprintf("%d %s", m, batches[m].Name))
	}
	if err := e.stopLocked(RecOperator, OperatorRecord{Command: "adopt", Args: found, Operator: operator}); err != nil {
		e.mu.Unlock()
		return err
	}
	start := RunStartRecord{RunID: e.now().UTC().Format("20060102T150405Z"), Runbook: spec.Runbook, Digest: spec.Digest,
		Operator: operator, Batches: batches}
	if err := e.stopLocked(RecRunStart, start); err != nil {
		e.mu.Unlock()
		return err
	}
	e.eventOfLocked(-1, "adopt", RecRunStart, start)
	result := fmt.Sprintf("adopted by %s after the journal was lost: %d of %d batches found moved", operator, len(moved), len(batches))
	if len(names) > 0 {
		result += " (" + strings.Join(names, ", ") + ")"
	}
	// The run ends before its moves are re-applied: the Loop must never
	// take it for a run to pre-check.
	done := PhaseRecord{Phase: PhaseDone, Result: result, Operator: operator}
	if err := e.stopLocked(RecPhase, done); err != nil {
		e.mu.Unlock()
		return err
	}
	e.spec = spec
	e.recovering = false
	e.mu.Unlock()
	if err := e.change(ctx, moved, -1, "adopt", "adopted what the nft table held", true); err != nil {
		return fmt.Errorf("adopt: %w", err)
	}
	e.mu.Lock()
	e.eventOfLocked(-1, "done", RecPhase, done)
	e.mu.Unlock()
	return nil
}
