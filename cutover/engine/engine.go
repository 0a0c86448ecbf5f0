package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/cutover/cutover/bgp"
	"github.com/cutover/cutover/nft"
)

// Recorder appends records durably (the journal) and returns the time
// each record carries, so that the engine's state stays the fold of what
// was written.
type Recorder interface {
	Record(typ string, v any) (time.Time, error)
}

// Dataplane is what the engine needs of the gateway's dataplane (package
// nft): make the kernel hold desired, in one transaction.
type Dataplane interface {
	Apply(ctx context.Context, desired nft.State) error
}

// DataplaneFunc adapts a function to Dataplane.
type DataplaneFunc func(ctx context.Context, desired nft.State) error

// Apply calls f.
func (f DataplaneFunc) Apply(ctx context.Context, desired nft.State) error { return f(ctx, desired) }

// Errors callers branch on.
var (
	ErrRunActive = errors.New("a run is already active")
	ErrNoRun     = errors.New("no run")
)

// EngineConfig is what an Engine is built from.
type Config struct {
	Speaker   bgp.Speaker
	Dataplane Dataplane
	Journal   Recorder
	Log       zerolog.Logger
	Metrics   *Metrics // nil: no metrics
	// Notify is told about go/no-go points, failed gates and the end of a
	// run (kind "confirm", "gate-failed", "done"); nil: nobody.
	Notify func(kind, msg string)
	Now    func() time.Time
	// After is the Loop's timer (hold time, the journal's retries, the
	// back-off of a stalled run); nil: time.After. Tests simulate time
	// with it and Now.
	After func(time.Duration) <-chan time.Time
	// State is the fold of the journal so far (from Replay); zero: fresh.
	State RunState
}

// Engine runs one cutover at a time: batch after batch through gates, with
// every step journaled before and after it is applied. All changes of BGP
// and nft happen on the engine's own goroutine (Loop); commands from
// operators change state and wake it, or, for rollback, hand it the work.
type Engine struct {
	bgp     bgp.Speaker
	dp      Dataplane
	j       Recorder
	log     zerolog.Logger
	metrics *Metrics
	notifyf func(kind, msg string)
	now     func() time.Time
	after   func(time.Duration) <-chan time.Time
	limit   limiter // of log lines that repeat

	wake chan struct{}

	mu          sync.Mutex
	st          RunState
	spec        *Spec
	batchCancel context.CancelFunc // cancels the running batch's gates
	pending     []rollbackReq      // operator rollbacks for the Loop
	// recovering is true from NewEngine with a journaled state until
	// Recover has re-applied it: the Loop must not act before.
	recovering bool
	events     []Event
	eventSeq   int
	// jn is how the journal stands: held records, retries (journalstate.go).
	jn journalState
	// A stalled batch is tried again, on a person's resume, no sooner than
	// stallUntil; stallGap doubles from 1 s to 1 min with each stall in a
	// row, so that nothing loops.
	stallUntil time.Time
	stallGap   time.Duration
}

// Event is one line of the run's history for people (status --watch).
type Event struct {
	Seq   int       `json:"seq"`
	Time  time.Time `json:"time"`
	Batch int       `json:"batch"` // -1: the run
	Op    string    `json:"op"`
	Msg   string    `json:"msg"`
}

const maxEvents = 500

type rollbackReq struct {
	sel      func(b int) bool
	why      string
	operator string
	all      bool // ends the run
	pause    bool // pauses a running run afterwards (an operator's partial rollback)
	done     chan error
	// took receives the measured duration of the rollback's change (BGP
	// and nft) before done; nil: not wanted.
	took *time.Duration
}

// NewEngine returns an engine whose state is cfg.State.
func New(cfg Config) *Engine {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.After == nil {
		cfg.After = time.After
	}
	st := cfg.State
	if st.Phase == "" {
		st.Phase = PhaseIdle
	}
	e := &Engine{
		bgp: cfg.Speaker, dp: cfg.Dataplane, j: cfg.Journal,
		log: cfg.Log, metrics: cfg.Metrics, notifyf: cfg.Notify, now: cfg.Now, after: cfg.After,
		wake:       make(chan struct{}, 1),
		st:         st,
		recovering: st.Active() || len(st.Applied) > 0 || st.Intent != nil,
	}
	// The metrics show the journaled state from the start, not from the
	// next record on.
	e.metrics.observeState(&e.st, e.now())
	return e
}

// Record appends a record to the journal under the engine's lock: for what
// the daemon notes outside a run's steps (drift found, a withdrawing
// stop). When the journal cannot take it, it is held in memory until it
// can (see journalstate.go).
func (e *Engine) Record(typ string, v any) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stopLocked(typ, v)
}

func (e *Engine) eventLocked(batch int, op, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	e.eventSeq++
	e.events = append(e.events, Event{Seq: e.eventSeq, Time: e.now(), Batch: batch, Op: op, Msg: msg})
	if len(e.events) > maxEvents {
		e.events = slices.Delete(e.events, 0, len(e.events)-maxEvents)
	}
	ev := e.logLimited(zerolog.InfoLevel, fmt.Sprintf("event %d %s %s", batch, op, msg))
	if ev == nil {
		return
	}
	ev = ev.Str("op", op)
	if batch >= 0 {
		ev = ev.Int("batch", batch)
	}
	ev.Msg(msg)
}

func (e *Engine) event(batch int, op, format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.eventLocked(batch, op, format, args...)
}

func (e *Engine) poke() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Status is a snapshot of the state and the recent events.
type Status struct {
	State  RunState `json:"state"`
	Events []Event  `json:"events"`
	// Counts for people.
	MovedVMs   int           `json:"moved_vms"`
	TotalVMs   int           `json:"total_vms"`
	ETA        time.Duration `json:"eta,omitempty"`
	Now        time.Time     `json:"now"`
	Converging bool          `json:"converging,omitempty"`
	// Outcome is how the run ended ("" while under way); AtSourceVMs and
	// AtSourceBatches are the VMs and batches it left at the source
	// (rolled back or held).
	Outcome         Outcome `json:"outcome,omitempty"`
	AtSourceVMs     int     `json:"at_source_vms,omitempty"`
	AtSourceBatches []int   `json:"at_source_batches,omitempty"`
	// Journal says whether the journal can be written (zero: it can).
	Journal JournalStatus `json:"journal,omitzero"`
	// Unreconciled is set while the journal holds no run but the daemon
	// found an earlier run's traces (the phase is then "unreconciled").
	Unreconciled *Unreconciled `json:"unreconciled,omitempty"`
}

// Unreconciled is what the daemon found when it started with a journal
// that holds no run (empty, lost or deleted) but the world shows an
// earlier run: moves in the nft table it owns, or the snapshots earlier
// runs left in its state directory. Until a person chooses (cutover
// reconcile adopt, or clear) the daemon does not call itself idle and
// starts no run.
type Unreconciled struct {
	// Found says what was found, a line each.
	Found []string `json:"found"`
	// Adopt says what adopt would take over; empty when it cannot, and
	// then NoAdopt says why.
	Adopt   string `json:"adopt,omitempty"`
	NoAdopt string `json:"no_adopt,omitempty"`
	// Clear says what clear would take away.
	Clear string `json:"clear"`
}

// Status returns a copy of the state, the events after seq, and an ETA.
func (e *Engine) Status(sinceEvent int) Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := Status{State: e.st.clone(), Now: e.now(), Journal: e.journalStatusLocked()}
	for _, ev := range e.events {
		if ev.Seq > sinceEvent {
			st.Events = append(st.Events, ev)
		}
	}
	st.MovedVMs, _ = e.st.Moved()
	st.Outcome = e.st.Outcome()
	st.AtSourceVMs, st.AtSourceBatches = e.st.AtSource()
	var done, left int
	var spent time.Duration
	for _, b := range e.st.Batches {
		st.TotalVMs += b.VMs
		switch b.Phase {
		case BatchCommitted, BatchRolledBack, BatchHeld:
			done++
			if !b.Started.IsZero() && !b.Decided.IsZero() {
				spent += b.Decided.Sub(b.Started)
			}
		default:
			left++
		}
	}
	if done > 0 && left > 0 && e.st.Active() {
		hold := time.Duration(0)
		if e.spec != nil {
			hold = e.spec.Hold
		}
		st.ETA = time.Duration(left) * (spent/time.Duration(done) + hold)
	}
	return st
}

// Start begins a run of spec. It is refused while another run is active.
// With autoConfirm every go/no-go point is answered "go" in the operator's
// name (cutover run --yes).
func (e *Engine) Start(spec *Spec, operator string, autoConfirm bool) error {
	if err := spec.validate(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.st.Active() {
		return fmt.Errorf("%w: %s (%s); pause it and roll it back, or wait for it to end", ErrRunActive, e.st.Runbook, e.st.Phase)
	}
	adopt := len(e.st.Applied) > 0 && e.st.Digest != spec.Digest
	if adopt && spec.Adopts != e.st.Digest {
		return fmt.Errorf("the previous run (%s) still has %d batches moved: roll it back (cutover rollback --all) before starting another runbook", e.st.Runbook, len(e.st.Applied))
	}
	batches := make([]BatchState, len(spec.Batches))
	for i, b := range spec.Batches {
		batches[i] = BatchState{Index: i, Name: b.Name, VMs: b.VMs, Prefixes: len(b.Prefixes), Phase: BatchPending}
	}
	// A rerun of the same runbook keeps the batches already moved; an
	// adopted run's moved batches are this run's baseline.
	if !adopt {
		for _, m := range e.st.Applied {
			if m < len(batches) {
				batches[m].Phase = BatchCommitted
			}
		}
	}
	e.spec = spec
	id := e.now().UTC().Format("20060102T150405Z")
	start := RunStartRecord{RunID: id, Runbook: spec.Runbook, Digest: spec.Digest, Source: spec.Source, Target: spec.Target,
		RunbookDigest: spec.RunbookDigest, InventoryDigest: spec.InventoryDigest,
		Operator: operator, AutoConfirm: autoConfirm, Batches: batches, Adopted: adoptedFrom(adopt, e.st.Digest),
		Rehearsal: spec.Rehearsal}
	if err := e.recordLocked(RecRunStart, start); err != nil {
		return err
	}
	e.eventOfLocked(-1, "run", RecRunStart, start)
	e.poke()
	return nil
}

func adoptedFrom(adopt bool, digest string) string {
	if adopt {
		return digest
	}
	return ""
}

// Attach gives a recovered engine its spec back (rebuilt from the journaled
// runbook) without starting anything.
func (e *Engine) Attach(spec *Spec) error {
	if err := spec.validate(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.st.Digest != "" && spec.Digest != e.st.Digest {
		return fmt.Errorf("runbook digest %s differs from the journal's %s", ShortDigest(spec.Digest), ShortDigest(e.st.Digest))
	}
	if len(spec.Batches) != len(e.st.Batches) {
		return fmt.Errorf("runbook has %d batches, the journal %d", len(spec.Batches), len(e.st.Batches))
	}
	e.spec = spec
	return nil
}

// Recovering reports whether the engine holds a journaled state that it
// has not re-applied yet (Recover has not run).
func (e *Engine) Recovering() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.recovering
}

// ShortDigest is the first 12 characters of a runbook digest, as people
// see it in messages.
func ShortDigest(d string) string {
	if len(d) > 12 {
		return d[:12]
	}
	return d
}

// Recover re-applies what the journal says the peers and the kernel hold
// (the last intent if one was not completed, else the last applied set),
// and pauses an interrupted run. Call it right after the speaker is up, so
// the routes are back before the peers' graceful-restart timers run out.
func (e *Engine) Recover(ctx context.Context) error {
	e.mu.Lock()
	moved := e.st.Applied
	if e.st.Intent != nil {
		moved = e.st.Intent
	}
	moved = slices.Clone(moved)
	active := e.st.Active()
	e.mu.Unlock()
	if e.spec == nil {
		if len(moved) == 0 {
			e.mu.Lock()
			e.recovering = false
			e.mu.Unlock()
			return nil
		}
		return fmt.Errorf("recover: %d batches moved but no runbook attached", len(moved))
	}
	if err := e.change(ctx, moved, -1, "recover", "daemon restart", true); err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.recovering = false
	// change told about the re-applied state; an active run also pauses.
	if active {
		pause := PhaseRecord{Phase: PhasePaused, Pause: "interrupted"}
		if err := e.stopLocked(RecPhase, pause); err != nil {
			return err
		}
		e.eventOfLocked(-1, "pause", RecPhase, pause)
	}
	e.poke()
	return nil
}

// change applies the moved set to BGP and nft as one change each, with an
// intent record before and an applied record after. BGP goes first: it is
// the network's view; nft follows at once. A rollback applies both at the
// same time (see below). Make-before-break holds at the
// peers because the speaker replaces a prefix's path in one UPDATE.
//
// A stop (rollback, recovery) changes the network even when the journal
// cannot take its records (they are held); a step forward does not start
// without its intent on disk. The applied record always follows the
// network: it says what the peers and the kernel hold.
func (e *Engine) change(ctx context.Context, moved []int, batch int, op, why string, stop bool) error {
	e.mu.Lock()
	if err := e.writeLocked(RecIntent, ChangeRecord{Moved: moved, Batch: batch, Op: op}, stop); err != nil {
		e.mu.Unlock()
		return err
	}
	spec := e.spec
	e.mu.Unlock()

	start := e.now()
	routes := spec.Routes(moved)
	var bgpErr, nftErr error
	if op == "rollback" {
		// Back to the source: both halves head for the state the run
		// started from, so neither waits for the other. In sequence,
		// the window where BGP and nft disagree (BGP back, nft still
		// steering to the target) lasts as long as the nft change;
		// side by side it is shorter, and the brake takes the longer
		// of the two instead of their sum.
		done := make(chan struct{})
		go func() {
			defer close(done)
			nftErr = e.dp.Apply(ctx, spec.Dataplane(moved))
		}()
		bgpErr = e.bgp.Set(ctx, routes)
		<-done
	} else {
		bgpErr = e.bgp.Set(ctx, routes)
		nftErr = e.dp.Apply(ctx, spec.Dataplane(moved))
	}
	var errs []error
	if bgpErr != nil {
		errs = append(errs, fmt.Errorf("bgp: %w", bgpErr))
	}
	if nftErr != nil {
		errs = append(errs, fmt.Errorf("nft: %w", nftErr))
	}
	took := e.now().Sub(start)
	if err := errors.Join(errs...); err != nil {
		e.event(batch, op, "%s failed after %s: %v", op, took.Round(time.Millisecond), err)
		return err
	}
	e.metrics.observeChange(op, took)
	e.mu.Lock()
	defer e.mu.Unlock()
	applied := ChangeRecord{Moved: moved, Batch: batch, Op: op, Took: took, Routes: len(routes)}
	if err := e.stopLocked(RecApplied, applied); err != nil {
		return err
	}
	e.eventOfLocked(batch, op, RecApplied, applied) // the baseline and a recovery
	e.log.Info().Int("batch", batch).Str("op", op).Str("reason", why).Int("prefixes", len(routes)).
		Dur("took", took).Msg("applied")
	return nil
}

// Loop runs the engine until ctx ends. There is exactly one Loop per Engine.
func (e *Engine) Loop(ctx context.Context) {
	e.mu.Lock()
	if !e.recovering {
		_ = e.forwardLocked() // a journal short of room pauses the run at once
	}
	e.mu.Unlock()
	for ctx.Err() == nil {
		e.mu.Lock()
		if len(e.pending) > 0 {
			r := e.pending[0]
			e.pending = e.pending[1:]
			e.mu.Unlock()
			r.done <- e.rollback(ctx, r)
			continue
		}
		now := e.now()
		if e.jn.retrying() && !now.Before(e.jn.retryAt) {
			e.retryJournalLocked()
		}
		var a action
		if e.spec != nil && !e.recovering {
			a = decide(&e.st, e.spec, now)
			switch a.kind {
			case actNone, actWait, actRollback:
				// Waiting, and finishing a rollback, are no step forward.
			default:
				if e.jn.blocked() {
					// The journal cannot follow: no step forward. The run
					// paused when the journal became unusable; a run that
					// is still running pauses now.
					e.pauseForJournalLocked()
					a = action{}
				} else if now.Before(e.stallUntil) {
					a = action{kind: actWait, until: e.stallUntil}
				}
			}
		}
		var retry time.Time
		if e.jn.retrying() {
			retry = e.jn.retryAt
		}
		e.mu.Unlock()

		until := time.Time{}
		switch a.kind {
		case actPrecheck:
			e.precheck(ctx)
			continue
		case actConfirm:
			e.pauseAt(a)
			continue
		case actWindow:
			e.mu.Lock()
			pause := PhaseRecord{Phase: PhasePaused, Pause: "window: " + a.why}
			if err := e.stopLocked(RecPhase, pause); err == nil {
				e.eventOfLocked(a.batch, "pause", RecPhase, pause)
			}
			e.mu.Unlock()
			continue
		case actMove:
			e.runBatch(ctx, a.batch)
			continue
		case actRollback:
			e.finishRollback(ctx, a.batch)
			continue
		case actFinish:
			e.finish()
			continue
		case actWait:
			until = a.until
		}
		if !retry.IsZero() && (until.IsZero() || retry.Before(until)) {
			until = retry
		}
		var timer <-chan time.Time
		if !until.IsZero() {
			timer = e.after(until.Sub(e.now()))
		}
		select {
		case <-ctx.Done():
			return
		case <-e.wake:
		case <-timer:
		}
	}
}

func (e *Engine) precheck(ctx context.Context) {
	e.mu.Lock()
	spec := e.spec
	e.mu.Unlock()
	fail := func(err error) {
		e.mu.Lock()
		defer e.mu.Unlock()
		abort := PhaseRecord{Phase: PhaseAborted, Result: "pre-check failed: " + err.Error()}
		if !e.st.Active() {
			return // already ended (the journal's failure aborted the pre-check)
		}
		_ = e.stopLocked(RecPhase, abort)
		e.eventOfLocked(-1, "precheck", RecPhase, abort)
	}
	if spec.Window != nil {
		if err := spec.Window(e.now()); err != nil {
			fail(fmt.Errorf("change window: %w", err))
			return
		}
	}
	// Announce what should be announced now (the baseline, or the batches
	// a previous run of this runbook left moved): the speaker opens its
	// sessions with it, and the peers are then checked.
	e.mu.Lock()
	applied := slices.Clone(e.st.Applied)
	e.mu.Unlock()
	if err := e.change(ctx, applied, -1, "baseline", "run start", false); err != nil {
		fail(fmt.Errorf("announce the baseline: %w", err))
		return
	}
	if spec.Precheck != nil {
		if err := spec.Precheck(ctx); err != nil {
			fail(err)
			return
		}
	}
	var baseline BaselineRecord
	if spec.Baseline != nil {
		var err error
		if baseline, err = spec.Baseline(ctx); err != nil {
			fail(fmt.Errorf("baseline: %w", err))
			return
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.recordLocked(RecBaseline, baseline); err != nil {
		return
	}
	e.eventOfLocked(-1, "precheck", RecBaseline, baseline)
	if len(baseline.Down) > 0 {
		e.notify("baseline-down", fmt.Sprintf("%d VMs down before the first batch: %s", len(baseline.Down), strings.Join(firstN(baseline.Down, 5), "; ")))
	}
	_ = e.recordLocked(RecPhase, PhaseRecord{Phase: PhaseRunning})
}

func (e *Engine) pauseAt(a action) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.st.AutoConfirm {
		// run --yes is the go of the operator who started the run: at a
		// point that needs several operators, the others still must say go.
		by := OperatorIdentity(e.st.Operator)
		answer := ConfirmRecord{Point: a.point, Go: true, Operator: e.st.Operator + " (--yes)", By: by,
			Pending: e.spec.operators(a.point) - 1}
		if answer.Pending == 0 {
			if err := e.recordLocked(RecConfirm, answer); err == nil {
				e.eventOfLocked(a.batch, "confirm", RecConfirm, answer)
			}
			return
		}
		if e.st.ConfirmGoAt != a.point || !slices.Contains(e.st.ConfirmGo, by) {
			if err := e.recordLocked(RecConfirm, answer); err != nil {
				return
			}
			e.eventOfLocked(a.batch, "confirm", RecConfirm, answer)
		}
	}
	pause := PhaseRecord{Phase: PhasePaused, Pause: "confirm", Confirm: a.point}
	if n := e.spec.operators(a.point); n > 1 {
		pause.Operators = n
	}
	if err := e.stopLocked(RecPhase, pause); err != nil {
		return
	}
	e.eventOfLocked(a.batch, "confirm", RecPhase, pause)
	e.notify("confirm", a.point)
}

func (e *Engine) finish() {
	e.mu.Lock()
	defer e.mu.Unlock()
	result := e.resultLocked()
	done := PhaseRecord{Phase: PhaseDone, Result: result}
	if err := e.recordLocked(RecPhase, done); err != nil {
		return
	}
	e.eventOfLocked(-1, "done", RecPhase, done)
	e.notify("done", result)
}

// runBatch takes batch b from wherever it stands to committed or, by
// policy, rolled back.
func (e *Engine) runBatch(ctx context.Context, b int) {
	e.mu.Lock()
	spec := e.spec
	phase := e.st.Batches[b].Phase
	applied := slices.Clone(e.st.Applied)
	bctx, cancel := context.WithCancel(ctx)
	e.batchCancel = cancel
	if len(e.pending) > 0 {
		cancel()
	}
	e.mu.Unlock()
	defer func() {
		cancel()
		e.mu.Lock()
		e.batchCancel = nil
		e.mu.Unlock()
	}()

	// A batch not yet moved is first probed at the target: one whose VMs
	// do not answer there is held, never announced.
	if phase == BatchPending && spec.Ready != nil && spec.ReadyPolicy != ReadyOff {
		if !e.ready(bctx, ctx, b) {
			return
		}
	}
	// Every (re)start of a batch is recorded: after a restart or a failed
	// gate under the pause policy the batch is announced and gated again.
	if err := e.record(RecBatch, BatchRecord{Batch: b, Phase: BatchAnnouncing}); err != nil {
		e.stall(b, err)
		return
	}
	if phase == BatchPending {
		e.event(b, "announce", "announcing %s (%d VMs, %d prefixes)", spec.Batches[b].Name, spec.Batches[b].VMs, len(spec.Batches[b].Prefixes))
	} else {
		e.event(b, "announce", "resuming %s from %s: announcing again (idempotent), then converge and gates", spec.Batches[b].Name, phase)
	}
	// Announce (again, after a restart: Set is idempotent).
	moved := withBatch(applied, b)
	if err := e.change(bctx, moved, b, "announce", "batch", false); err != nil {
		if bctx.Err() == nil {
			e.stall(b, err)
		}
		return
	}
	if spec.Converge != nil {
		start := e.now()
		proof, err := spec.Converge(bctx, spec.Routes(moved))
		if err != nil {
			if bctx.Err() != nil {
				return // an operator's rollback took over
			}
			verdicts := []VerdictRecord{{Gate: "bgp", Reasons: []string{err.Error()}}}
			e.metrics.gateVerdicts(verdicts)
			e.fail(ctx, b, verdicts, e.now().Sub(start))
			return
		}
		e.metrics.gateVerdicts([]VerdictRecord{{Gate: "bgp", Pass: true}})
		if proof != "" {
			proof = " (" + proof + ")"
		}
		e.event(b, "converge", "peers hold the batch's routes after %s%s", e.now().Sub(start).Round(time.Millisecond), proof)
	}
	if err := e.record(RecBatch, BatchRecord{Batch: b, Phase: BatchGating}); err != nil {
		e.stall(b, err)
		return
	}
	e.mu.Lock()
	baseline := slices.Clone(e.st.Baseline)
	e.mu.Unlock()
	start := e.now()
	pass, verdicts := spec.Gate(bctx, b, baseline)
	took := e.now().Sub(start)
	if bctx.Err() != nil && ctx.Err() == nil {
		return // an operator's rollback took over
	}
	if ctx.Err() != nil {
		return
	}
	e.metrics.gateVerdicts(verdicts)
	if !pass {
		e.fail(ctx, b, verdicts, took)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	// The batch is committed only with its records on disk.
	if err := e.recordLocked(RecGates, GatesRecord{Batch: b, Pass: true, Took: took, Verdicts: verdicts}); err != nil {
		e.stallLocked(b, err)
		return
	}
	if err := e.recordLocked(RecBatch, BatchRecord{Batch: b, Phase: BatchCommitted}); err != nil {
		e.stallLocked(b, err)
		return
	}
	e.stallGap = 0
	e.eventLocked(b, "commit", "%s committed: gates passed in %s", spec.Batches[b].Name, took.Round(time.Millisecond))
	if e.st.Step && e.st.Phase == PhaseRunning {
		pause := PhaseRecord{Phase: PhasePaused, Pause: "step"}
		_ = e.stopLocked(RecPhase, pause)
		e.eventOfLocked(b, "pause", RecPhase, pause)
	}
}

// ready runs the readiness check of pending batch b and reports whether
// the batch may be moved. A batch that is not ready is held at the source
// (ReadySkip) or the run pauses before it (ReadyPause).
func (e *Engine) ready(bctx, ctx context.Context, b int) bool {
	e.mu.Lock()
	spec := e.spec
	baseline := slices.Clone(e.st.Baseline)
	e.mu.Unlock()
	start := e.now()
	ok, v := spec.Ready(bctx, b, baseline)
	took := e.now().Sub(start)
	if bctx.Err() != nil || ctx.Err() != nil {
		return false // an operator's rollback took over, or the daemon stops
	}
	if v.Gate == "" {
		v.Gate = "ready"
	}
	v.Pass = ok
	e.metrics.gateVerdicts([]VerdictRecord{v})
	e.mu.Lock()
	defer e.mu.Unlock()
	name := spec.Batches[b].Name
	if ok {
		e.eventLocked(b, "ready", "%s ready: its VMs answer at %s (%s)", name, spec.Target, Human(took))
		return true
	}
	reason := "not ready"
	if len(v.Reasons) > 0 {
		reason += ": " + v.Reasons[0]
	}
	if len(v.Failed) > 0 {
		reason += ": " + v.Failed[0]
	}
	if len(v.Failed) > 1 {
		reason += fmt.Sprintf(" (+%d more: cutover status --batch %d)", len(v.Failed)-1, b)
	}
	if err := e.recordLocked(RecGates, GatesRecord{Batch: b, Pass: false, Took: took, Verdicts: []VerdictRecord{v}}); err != nil {
		e.stallLocked(b, err)
		return false
	}
	e.notify("not-ready", fmt.Sprintf("%s: %s", name, reason))
	if spec.ReadyPolicy == ReadyPause {
		pause := PhaseRecord{Phase: PhasePaused, Pause: "not-ready"}
		if err := e.stopLocked(RecPhase, pause); err == nil {
			e.eventLocked(b, "pause", "%s %s; paused before moving it: resume checks again", name, reason)
		}
		return false
	}
	if err := e.recordLocked(RecBatch, BatchRecord{Batch: b, Phase: BatchHeld, Reason: reason}); err != nil {
		e.stallLocked(b, err)
		return false
	}
	e.eventLocked(b, "held", "%s held at %s, never announced: %s", name, spec.Source, reason)
	return false
}

// stall pauses the run after an error the engine cannot decide about
// (journal or apply failure): a person must look. The pause is held in
// memory when the journal cannot take it, so the run stops either way;
// and the batch is not tried again before a back-off (1 s doubling to
// 1 min with each stall in a row) has passed, nor is the same line logged
// more often.
func (e *Engine) stall(b int, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stallLocked(b, err)
}

func (e *Engine) stallLocked(b int, err error) {
	e.stallGap = min(max(2*e.stallGap, retryMin), retryMax)
	e.stallUntil = e.now().Add(e.stallGap)
	e.eventLocked(b, "error", "batch %d stalled: %v", b, err)
	e.logLimited(zerolog.ErrorLevel, fmt.Sprintf("stall %d %v", b, err)).Err(err).Int("batch", b).Str("op", "stall").
		Dur("backoff", e.stallGap).Msg("paused for a person")
	if e.st.Phase == PhaseRunning {
		_ = e.stopLocked(RecPhase, PhaseRecord{Phase: PhasePaused, Pause: "error: " + err.Error()})
	}
}

// fail applies the failure policy to batch b.
func (e *Engine) fail(ctx context.Context, b int, verdicts []VerdictRecord, took time.Duration) {
	e.mu.Lock()
	spec := e.spec
	reason := summarize(verdicts)
	// A failed gate is acted upon whether or not the journal takes its
	// verdict: the policy's rollback is the brake.
	if err := e.stopLocked(RecGates, GatesRecord{Batch: b, Pass: false, Took: took, Verdicts: verdicts}); err != nil {
		e.mu.Unlock()
		return
	}
	e.eventLocked(b, "gate", "%s failed its gates: %s", spec.Batches[b].Name, reason)
	e.notify("gate-failed", fmt.Sprintf("%s: %s", spec.Batches[b].Name, reason))
	e.mu.Unlock()

	switch spec.Policy {
	case Pause:
		e.mu.Lock()
		pause := PhaseRecord{Phase: PhasePaused, Pause: "gate-failed"}
		_ = e.stopLocked(RecPhase, pause)
		e.eventOfLocked(b, "pause", RecPhase, pause)
		e.mu.Unlock()
	case RollbackAll:
		if err := e.rollback(ctx, rollbackReq{sel: func(int) bool { return true }, why: "gate failed: " + reason, all: true, operator: "policy"}); err != nil {
			e.stall(b, err)
		}
	default:
		if err := e.rollback(ctx, rollbackReq{sel: func(i int) bool { return i == b }, why: "gate failed: " + reason, operator: "policy"}); err != nil {
			e.stall(b, err)
		}
	}
}

// firstN is at most n items of list, and "(+k more)" for the rest.
func firstN(list []string, n int) []string {
	if len(list) <= n {
		return list
	}
	return append(slices.Clone(list[:n]), fmt.Sprintf("(+%d more)", len(list)-n))
}

func summarize(vs []VerdictRecord) string {
	if s := FailedGates(vs); s != "" {
		return s
	}
	return "no verdict"
}

// rollback moves the selected batches back to the source as one change.
// It runs on the Loop goroutine. It is the brake: it acts on the network
// whether or not the journal takes its records (they are held in memory
// until it does).
func (e *Engine) rollback(ctx context.Context, r rollbackReq) error {
	e.mu.Lock()
	var sel []int
	for i, b := range e.st.Batches {
		if r.sel(i) && (b.Phase.moved() || b.Phase == BatchRollingBack || slices.Contains(e.st.Applied, i)) {
			sel = append(sel, i)
		}
	}
	for _, i := range sel {
		if err := e.stopLocked(RecBatch, BatchRecord{Batch: i, Phase: BatchRollingBack, Reason: r.why}); err != nil {
			e.mu.Unlock()
			return err
		}
	}
	moved := without(e.st.Applied, func(i int) bool { return slices.Contains(sel, i) })
	e.mu.Unlock()

	start := e.now()
	one := -1
	if len(sel) == 1 {
		one = sel[0]
	}
	if err := e.change(ctx, moved, one, "rollback", r.why, true); err != nil {
		return err
	}
	took := e.now().Sub(start)
	if r.took != nil {
		*r.took = took
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, i := range sel {
		if err := e.stopLocked(RecBatch, BatchRecord{Batch: i, Phase: BatchRolledBack, By: r.operator, Took: took}); err != nil {
			return err
		}
	}
	what := fmt.Sprintf("%d batches", len(sel))
	if one >= 0 && one < len(e.st.Batches) {
		what = fmt.Sprintf("batch %d %s", one, e.st.Batches[one].Name)
	}
	e.eventLocked(one, "rollback", "rolled back %s in %s (%s)", what, took.Round(time.Millisecond), r.why)
	e.metrics.rollbacks(len(sel))
	if r.all {
		res := "rolled back: " + r.why
		if r.operator != "policy" {
			res = "rolled back by " + r.operator
		}
		if e.st.Active() || e.st.Phase == PhaseDone {
			_ = e.stopLocked(RecPhase, PhaseRecord{Phase: PhaseAborted, Result: res, Operator: r.operator})
		}
	} else if r.pause && e.st.Phase == PhaseRunning {
		_ = e.stopLocked(RecPhase, PhaseRecord{Phase: PhasePaused, Pause: "rollback by " + r.operator})
	} else if e.st.Phase == PhaseDone {
		// A finished run's result must say what is true now.
		_ = e.stopLocked(RecPhase, PhaseRecord{Phase: PhaseDone, Result: e.resultLocked() + " (after rollback by " + r.operator + ")", Operator: r.operator})
	}
	if n := len(e.jn.held); n > 0 {
		e.logLimited(zerolog.ErrorLevel, "rollback-held").Str("op", "rollback").Int("held", n).Err(e.jn.err).
			Msg("rolled back on the network; the journal cannot take the records yet: they are held in memory and written as soon as it does")
	}
	return nil
}

// resultLocked sums the batches up for a run's result line.
func (e *Engine) resultLocked() string {
	var committed, rolled, held int
	for _, b := range e.st.Batches {
		switch b.Phase {
		case BatchCommitted:
			committed++
		case BatchRolledBack:
			rolled++
		case BatchHeld:
			held++
		}
	}
	res := fmt.Sprintf("%d batches committed, %d rolled back", committed, rolled)
	if held > 0 {
		res += fmt.Sprintf(", %d held at the source (not ready at the target)", held)
	}
	return res
}

// finishRollback completes a rollback that a crash interrupted.
func (e *Engine) finishRollback(ctx context.Context, b int) {
	if err := e.rollback(ctx, rollbackReq{sel: func(i int) bool { return i == b }, why: "completing an interrupted rollback", operator: "recover"}); err != nil {
		e.stall(b, err)
	}
}
