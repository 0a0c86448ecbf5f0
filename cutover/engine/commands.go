package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Operator commands. Each is journaled (audit) and then changes state; the
// Loop picks the change up. Rollback is handed to the Loop, which owns every
// change of BGP and nft. While the journal cannot be written, the commands
// that stop (pause, rollback) are taken and their records held in memory;
// the others are refused with ErrJournalUnusable.

func (e *Engine) auditLocked(cmd, args, operator string) error {
	rec := OperatorRecord{Command: cmd, Args: args, Operator: operator}
	if cmd == "pause" || cmd == "rollback" {
		return e.stopLocked(RecOperator, rec)
	}
	return e.recordLocked(RecOperator, rec)
}

// Pause stops the run before the next batch; a batch under way finishes.
func (e *Engine) Pause(operator string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.st.Active() {
		return fmt.Errorf("pause: %w active", ErrNoRun)
	}
	if e.st.Phase == PhasePaused {
		return nil
	}
	if err := e.auditLocked("pause", "", operator); err != nil {
		return err
	}
	pause := PhaseRecord{Phase: PhasePaused, Pause: "operator", Operator: operator}
	if err := e.stopLocked(RecPhase, pause); err != nil {
		return err
	}
	e.eventOfLocked(-1, "pause", RecPhase, pause)
	return nil
}

// Resume continues a paused run. A run paused at a go/no-go point needs
// Confirm instead.
func (e *Engine) Resume(operator string) error { return e.resume(operator, false) }

// Step runs one batch, then pauses.
func (e *Engine) Step(operator string) error { return e.resume(operator, true) }

func (e *Engine) resume(operator string, step bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	cmd := "resume"
	if step {
		cmd = "step"
	}
	switch {
	case e.spec == nil || !e.st.Active():
		return fmt.Errorf("%s: %w active", cmd, ErrNoRun)
	case e.st.Phase == PhasePrechecking:
		return fmt.Errorf("%s: the pre-check is still running", cmd)
	case e.st.Phase == PhaseRunning && !step:
		return nil
	case e.st.Confirm != "":
		return fmt.Errorf("%s: the run waits for go/no-go at %q: answer with cutover confirm %s", cmd, e.st.Confirm, e.st.Confirm)
	}
	if err := e.auditLocked(cmd, "", operator); err != nil {
		return err
	}
	if err := e.recordLocked(RecPhase, PhaseRecord{Phase: PhaseRunning, Step: step, Operator: operator}); err != nil {
		return err
	}
	e.stallUntil = time.Time{} // a person asked: try at once
	e.eventLocked(-1, cmd, "%s by %s", cmd, operator)
	e.poke()
	return nil
}

// Confirm answers the go/no-go point the run waits at. A no-go pauses the
// run for good at that point (rollback or a later confirm decide).
func (e *Engine) Confirm(point string, goAhead bool, operator string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.st.Active() {
		return fmt.Errorf("confirm: %w active", ErrNoRun)
	}
	if e.st.Confirm == "" {
		return fmt.Errorf("confirm: the run does not wait for a go/no-go now")
	}
	if point != "" && point != e.st.Confirm {
		return fmt.Errorf("confirm: the run waits at %q, not %q", e.st.Confirm, point)
	}
	p := e.st.Confirm
	answer := ConfirmRecord{Point: p, Go: goAhead, Operator: operator, By: OperatorIdentity(operator)}
	if goAhead {
		// Four eyes: a point may need several different operators' go.
		need := 1
		if e.spec != nil {
			need = e.spec.operators(p)
		}
		var said []string
		if e.st.ConfirmGoAt == p {
			said = e.st.ConfirmGo
		}
		if slices.Contains(said, answer.By) {
			return fmt.Errorf("confirm: %s already said go at %q, which needs %d different operators: another operator must say go", answer.By, p, need)
		}
		answer.Pending = max(need-len(said)-1, 0)
	}
	if err := e.recordLocked(RecConfirm, answer); err != nil {
		return err
	}
	if answer.Pending > 0 {
		e.eventOfLocked(-1, "confirm", RecConfirm, answer)
		e.notify("confirm", fmt.Sprintf("%s: go from %s; %s", p, answer.By, pendingText(answer.Pending)))
		return nil
	}
	if !goAhead {
		pause := PhaseRecord{Phase: PhasePaused, Pause: "no-go", Confirm: p, Operators: e.st.ConfirmOperators, Operator: operator}
		if err := e.recordLocked(RecPhase, pause); err != nil {
			return err
		}
		e.eventOfLocked(-1, "confirm", RecPhase, pause)
		return nil
	}
	if err := e.recordLocked(RecPhase, PhaseRecord{Phase: PhaseRunning, Operator: operator}); err != nil {
		return err
	}
	e.stallUntil = time.Time{}
	e.eventOfLocked(-1, "confirm", RecConfirm, answer)
	e.poke()
	return nil
}

// pendingText says how many more operators a point waits for.
func pendingText(n int) string {
	if n == 1 {
		return "one more operator must say go"
	}
	return fmt.Sprintf("%d more operators must say go", n)
}

// RollbackTarget selects what Rollback takes back. Make one with
// AllBatches, OnlyBatch or BatchesFrom: the zero value selects nothing and
// Rollback refuses it, so that no forgotten field ever stands for "every
// batch".
type RollbackTarget struct {
	Kind  RollbackKind
	Batch int // OnlyBatch: this batch; BatchesFrom: this one and every later one
	// Reason is the operator's why (rollback --reason), kept in the
	// journal and the report; optional.
	Reason string
}

// Because returns t with the operator's reason.
func (t RollbackTarget) Because(reason string) RollbackTarget {
	t.Reason = reason
	return t
}

// RollbackKind is what a RollbackTarget selects.
type RollbackKind int

// Rollback kinds; the zero kind selects nothing.
const (
	targetNone RollbackKind = iota
	TargetAll               // every batch; the run ends (rollback --all)
	TargetOnly              // one batch; the run pauses (rollback --batch N)
	TargetFrom              // a batch and every later one; the run pauses (rollback --to N)
)

// AllBatches selects every batch: rollback --all.
func AllBatches() RollbackTarget { return RollbackTarget{Kind: TargetAll} }

// OnlyBatch selects batch i: rollback --batch i.
func OnlyBatch(i int) RollbackTarget { return RollbackTarget{Kind: TargetOnly, Batch: i} }

// BatchesFrom selects batch i and every later one: rollback --to i.
func BatchesFrom(i int) RollbackTarget { return RollbackTarget{Kind: TargetFrom, Batch: i} }

// All reports whether t selects every batch.
func (t RollbackTarget) All() bool { return t.Kind == TargetAll }

func (t RollbackTarget) String() string {
	switch t.Kind {
	case TargetAll:
		return "--all"
	case TargetOnly:
		return fmt.Sprintf("--batch %d", t.Batch)
	case TargetFrom:
		return fmt.Sprintf("--to %d", t.Batch)
	}
	return "(no target)"
}

// Rollback moves the selected batches back to the source in one BGP change
// and one nft transaction, interrupting a batch under way.
func (e *Engine) Rollback(ctx context.Context, t RollbackTarget, operator string) error {
	_, err := e.RollbackMeasured(ctx, t, operator)
	return err
}

// RollbackMeasured is Rollback that also returns how long the change took
// (BGP and nft, as the engine measured it and journaled it: the rollback's
// one duration); zero when nothing was at the target.
func (e *Engine) RollbackMeasured(ctx context.Context, t RollbackTarget, operator string) (time.Duration, error) {
	e.mu.Lock()
	if e.spec == nil {
		e.mu.Unlock()
		return 0, fmt.Errorf("rollback: %w", ErrNoRun)
	}
	n := len(e.st.Batches)
	var sel func(int) bool
	switch t.Kind {
	case TargetAll:
		sel = func(int) bool { return true }
	case TargetOnly:
		sel = func(i int) bool { return i == t.Batch }
	case TargetFrom:
		sel = func(i int) bool { return i >= t.Batch }
	default:
		e.mu.Unlock()
		return 0, fmt.Errorf("rollback: no target: give all, one batch or a batch and every later one; nothing was rolled back")
	}
	if !t.All() && (t.Batch < 0 || t.Batch >= n) {
		e.mu.Unlock()
		return 0, fmt.Errorf("rollback %s: batches are numbered 0 to %d", t, n-1)
	}
	any := false
	for i, b := range e.st.Batches {
		if sel(i) && (b.Phase.moved() || slices.Contains(e.st.Applied, i)) {
			any = true
		}
	}
	if !any && !t.All() {
		e.mu.Unlock()
		return 0, fmt.Errorf("rollback %s: nothing of that is at the target", t)
	}
	args := t.String()
	if t.Reason != "" {
		args += ": " + t.Reason
	}
	why := "operator " + operator + " rollback " + args
	if err := e.auditLocked("rollback", args, operator); err != nil {
		e.mu.Unlock()
		return 0, err
	}
	var took time.Duration
	req := rollbackReq{sel: sel, why: why, operator: operator, all: t.All(), pause: !t.All(), done: make(chan error, 1), took: &took}
	e.pending = append(e.pending, req)
	if e.batchCancel != nil {
		e.batchCancel()
	}
	if e.jn.retrying() {
		// Records are held: the Loop tries the journal again right after
		// the rollback, then backs off again.
		e.jn.retryAt = e.now()
	}
	e.mu.Unlock()
	e.poke()
	select {
	case err := <-req.done:
		return took, err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// Retry takes rolled-back or held batches back to pending, so that the run
// moves them again through the same readiness check, gates and go/no-go
// points, and journals it like any batch. batches empty retries every
// rolled-back and held batch. It is for a run that is done, or paused; a
// run that was aborted (everything rolled back) is started again instead.
func (e *Engine) Retry(batches []int, operator string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.spec == nil || e.st.Phase == PhaseIdle:
		return fmt.Errorf("retry: %w", ErrNoRun)
	case e.st.Phase == PhaseAborted:
		return fmt.Errorf("retry: %w: the run was aborted (%s); start it again with cutover run", ErrNoRun, e.st.Result)
	case e.st.Phase == PhasePrechecking:
		return errors.New("retry: the pre-check is still running")
	case e.st.Phase == PhaseRunning:
		return errors.New("retry: the run is moving batches: pause it first, or retry when it is done")
	}
	n := len(e.st.Batches)
	var sel []int
	if len(batches) == 0 {
		_, sel = e.st.AtSource()
		if len(sel) == 0 {
			return errors.New("retry: no batch is rolled back or held")
		}
	}
	for _, i := range batches {
		if i < 0 || i >= n {
			return fmt.Errorf("retry: batch %d: batches are numbered 0 to %d", i, n-1)
		}
		if p := e.st.Batches[i].Phase; !p.AtSource() {
			return fmt.Errorf("retry: batch %d is %s: only rolled-back and held batches are retried", i, p)
		}
		if !slices.Contains(sel, i) {
			sel = append(sel, i)
		}
	}
	slices.Sort(sel)
	var again []string
	for _, i := range sel {
		if i < len(e.spec.Batches) {
			again = append(again, e.spec.Batches[i].Confirm...)
		}
	}
	again = append(again, e.spec.ConfirmEnd...)
	if err := e.auditLocked("retry", "--batch "+joinInts(sel, ","), operator); err != nil {
		return err
	}
	rec := RetryRecord{Batches: sel, Operator: operator, Unconfirm: again}
	if err := e.recordLocked(RecRetry, rec); err != nil {
		return err
	}
	e.stallUntil = time.Time{}
	e.eventOfLocked(-1, "retry", RecRetry, rec)
	e.poke()
	return nil
}

// notify tells the configured notifier, if any.
func (e *Engine) notify(kind, msg string) {
	if e.notifyf != nil {
		e.notifyf(kind, msg)
	}
}
