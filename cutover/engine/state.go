package engine

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// RunPhase is where a run stands as a whole.
type RunPhase string

// Run phases.
const (
	PhaseIdle        RunPhase = "idle"        // no run
	PhasePrechecking RunPhase = "prechecking" // peers, window, baseline health
	PhaseRunning     RunPhase = "running"     // moving batches
	PhasePaused      RunPhase = "paused"      // waiting for a person (pause, step, confirmation, failure)
	PhaseDone        RunPhase = "done"        // every batch decided
	PhaseAborted     RunPhase = "aborted"     // stopped for good (rollback-all policy, or pre-check failed)
	// PhaseUnreconciled is the daemon's, never the journal's: it found an
	// earlier run's traces that its journal does not hold (see
	// Status.Unreconciled).
	PhaseUnreconciled RunPhase = "unreconciled"
)

// BatchPhase is where one batch stands.
type BatchPhase string

// Batch phases: pending → announcing → gating → committed, or → rolling-back
// → rolled-back; or pending → held when its VMs do not answer at the target
// before the move (readiness). retry takes rolled-back and held batches back
// to pending.
const (
	BatchPending     BatchPhase = "pending"
	BatchAnnouncing  BatchPhase = "announcing"
	BatchGating      BatchPhase = "gating"
	BatchCommitted   BatchPhase = "committed"
	BatchRollingBack BatchPhase = "rolling-back"
	BatchRolledBack  BatchPhase = "rolled-back"
	// BatchHeld was never moved: the readiness check at the target found
	// VMs that did not answer there (Reason and Verdicts say which).
	BatchHeld BatchPhase = "held"
)

// AtSource reports whether a decided batch in phase p left its VMs at the
// source: rolled back, or held by the readiness check.
func (p BatchPhase) AtSource() bool { return p == BatchRolledBack || p == BatchHeld }

// moved reports whether a batch in phase p has its prefixes at the target.
func (p BatchPhase) moved() bool {
	return p == BatchAnnouncing || p == BatchGating || p == BatchCommitted
}

// BatchState is the engine's record of one batch.
type BatchState struct {
	Index    int        `json:"index"`
	Name     string     `json:"name"`
	VMs      int        `json:"vms"`
	Prefixes int        `json:"prefixes"`
	Phase    BatchPhase `json:"phase"`
	Reason   string     `json:"reason,omitempty"` // why it was rolled back or held
	// RollbackBy is who rolled it back: "policy", "recover" or the
	// operator's name; RollbackTook is how long the change that took it
	// back to the source took (BGP and nft, as the engine measured it:
	// the one rollback duration every view shows).
	RollbackBy   string        `json:"rollback_by,omitempty"`
	RollbackTook time.Duration `json:"rollback_took,omitempty"`
	// Retries counts the times retry took it back to pending.
	Retries int `json:"retries,omitempty"`
	// Verdicts of the last gate evaluation.
	Verdicts []VerdictRecord `json:"verdicts,omitempty"`
	// Timestamps of the phases (zero: not reached).
	Started    time.Time     `json:"started,omitzero"`
	Announced  time.Time     `json:"announced,omitzero"`
	Converged  time.Time     `json:"converged,omitzero"`
	Decided    time.Time     `json:"decided,omitzero"`
	ApplyTook  time.Duration `json:"apply_took,omitempty"`
	GateTook   time.Duration `json:"gate_took,omitempty"`
	Attempts   int           `json:"attempts,omitempty"`
	RolledBack time.Time     `json:"rolled_back,omitzero"`
}

// PhaseTime is when the batch entered its phase, as far as the fold keeps
// it: zero for a pending batch; for a batch rolling back after it was
// committed, the time of the commit.
func (b *BatchState) PhaseTime() time.Time {
	switch b.Phase {
	case BatchAnnouncing:
		return b.Started
	case BatchGating:
		return b.Converged
	case BatchCommitted, BatchRollingBack:
		return b.Decided
	case BatchRolledBack:
		return b.RolledBack
	case BatchHeld:
		return b.Decided
	}
	return time.Time{}
}

// VerdictRecord is a gate verdict as journaled and shown.
type VerdictRecord struct {
	Gate    string   `json:"gate"`
	Pass    bool     `json:"pass"`
	Reasons []string `json:"reasons,omitempty"`
	// Failed lists every failing target of the gate's last round, in full
	// ("vm-0042 10.64.0.52: tcp 80: connection refused"); Reasons holds
	// only the first few.
	Failed []string `json:"failed,omitempty"`
	// Pending marks a gate still running (status only, never journaled):
	// Round is its last round, RoundOK whether that round held, Streak the
	// rounds held in a row and Need the rounds in a row it takes to pass.
	Pending bool `json:"pending,omitempty"`
	Round   int  `json:"round,omitempty"`
	RoundOK bool `json:"round_ok,omitempty"`
	Streak  int  `json:"streak,omitempty"`
	Need    int  `json:"need,omitempty"`
}

// Failures are the verdict's failing targets in full, or its reasons when
// it names no targets.
func (v VerdictRecord) Failures() []string {
	if len(v.Failed) > 0 {
		return v.Failed
	}
	return v.Reasons
}

// RunState is the engine's whole state. It is a fold over the journal:
// Apply(record) for each record in order gives the state after them.
type RunState struct {
	RunID    string `json:"run_id,omitempty"`
	Runbook  string `json:"runbook,omitempty"`
	Digest   string `json:"digest,omitempty"`
	Operator string `json:"operator,omitempty"`
	// Source and Target are the sites the run moves from and to.
	Source string `json:"source,omitempty"`
	Target string `json:"target,omitempty"`
	// RunbookDigest and InventoryDigest are the SHA-256 (hex) of the
	// files the run read; Digest is the plan's, made of both.
	RunbookDigest   string `json:"runbook_digest,omitempty"`
	InventoryDigest string `json:"inventory_digest,omitempty"`
	// AutoConfirm answers every go/no-go point with go (run --yes).
	AutoConfirm bool         `json:"auto_confirm,omitempty"`
	Phase       RunPhase     `json:"phase"`
	Batches     []BatchState `json:"batches,omitempty"`
	// Pause says why the run is paused ("operator", "step", "confirm:after-canary",
	// "gate-failed", "interrupted"); empty when not paused.
	Pause string `json:"pause,omitempty"`
	// Confirm is the go/no-go point the run waits at, if any.
	Confirm string `json:"confirm,omitempty"`
	// Confirmed lists the points already answered with go.
	Confirmed []string `json:"confirmed,omitempty"`
	// ConfirmOperators is how many different operators must say go at
	// Confirm, when more than one.
	ConfirmOperators int `json:"confirm_operators,omitempty"`
	// ConfirmGo are the operators (ConfirmRecord.By) who said go at the
	// point ConfirmGoAt that needs more than one; they wait for the others.
	ConfirmGo   []string `json:"confirm_go,omitempty"`
	ConfirmGoAt string   `json:"confirm_go_at,omitempty"`
	// Step is set when the operator asked for one batch, then pause.
	Step bool `json:"step,omitempty"`
	// Applied is the set of batches whose prefixes the last completed
	// change put at the target: the desired state of BGP and nft.
	Applied []int `json:"applied"`
	// Intent is a change that was started but not recorded as completed
	// (nil when none). After a crash the daemon re-applies it: it is what
	// the peers and the kernel may already hold.
	Intent []int `json:"intent,omitempty"`
	// Baseline holds the names of the VMs that were healthy at pre-check,
	// BaselineDown those probed and found down then. The healthy names
	// stay in the daemon (the gates judge against them): the API says how
	// many there are (BaselineHealthy), so that a status poll of a run of
	// 50,000 VMs does not carry 50,000 names.
	Baseline        []string  `json:"-"`
	BaselineHealthy int       `json:"baseline_healthy,omitempty"`
	BaselineDown    []string  `json:"baseline_down,omitempty"`
	Started         time.Time `json:"started,omitzero"`
	Ended           time.Time `json:"ended,omitzero"`
	Result          string    `json:"result,omitempty"`
}

// Record types of the journal; the payload of each is the *Record type of
// the same name.
const (
	RecRunStart  = "run-start"
	RecBaseline  = "baseline"
	RecPhase     = "phase"    // run phase change (pause, resume, done, aborted)
	RecIntent    = "intent"   // a change of the moved set is about to be applied
	RecApplied   = "applied"  // it was applied to BGP and nft
	RecBatch     = "batch"    // a batch changed phase
	RecGates     = "verdict"  // gate verdicts of a batch
	RecConfirm   = "confirm"  // a go/no-go point was answered
	RecOperator  = "operator" // an operator command (audit)
	RecRecovered = "recovered"
	RecRetry     = "retry" // rolled-back or held batches go back to pending
)

// RunStartRecord starts a run: its batches and who started it.
type RunStartRecord struct {
	RunID    string `json:"run_id"`
	Runbook  string `json:"runbook"`
	Digest   string `json:"digest"`
	Operator string `json:"operator"`
	Source   string `json:"source,omitempty"`
	Target   string `json:"target,omitempty"`
	// RunbookDigest and InventoryDigest: SHA-256 (hex) of the files.
	RunbookDigest   string       `json:"runbook_digest,omitempty"`
	InventoryDigest string       `json:"inventory_digest,omitempty"`
	AutoConfirm     bool         `json:"auto_confirm,omitempty"`
	Batches         []BatchState `json:"batches"`
	// Adopted is the digest of the finished run whose moved batches this
	// run takes as its baseline.
	Adopted string `json:"adopted,omitempty"`
	// Rehearsal names the green lab rehearsal of exactly these bytes the
	// run rests on (runbook.require_rehearsal); "" for none asked.
	Rehearsal string `json:"rehearsal,omitempty"`
}

// BaselineRecord is the health baseline taken at pre-check.
type BaselineRecord struct {
	Healthy []string `json:"healthy"`
	Probed  int      `json:"probed"`
	// Down names the probed VMs that were not healthy.
	Down []string `json:"down,omitempty"`
}

// PhaseRecord changes the run's phase (pause, resume, done, aborted).
type PhaseRecord struct {
	Phase   RunPhase `json:"phase"`
	Pause   string   `json:"pause,omitempty"`
	Confirm string   `json:"confirm,omitempty"`
	// Operators is how many different operators must say go at Confirm,
	// when more than one.
	Operators int    `json:"operators,omitempty"`
	Step      bool   `json:"step,omitempty"`
	Result    string `json:"result,omitempty"`
	Operator  string `json:"operator,omitempty"`
}

// ChangeRecord is a change of the moved set: intended (RecIntent) or
// applied to BGP and nft (RecApplied).
type ChangeRecord struct {
	Moved  []int         `json:"moved"`
	Batch  int           `json:"batch"` // the batch that caused it, -1 for several
	Op     string        `json:"op"`    // announce, rollback, recover
	Took   time.Duration `json:"took,omitempty"`
	Routes int           `json:"routes,omitempty"`
}

// BatchRecord moves a batch to another phase.
type BatchRecord struct {
	Batch  int        `json:"batch"`
	Phase  BatchPhase `json:"phase"`
	Reason string     `json:"reason,omitempty"`
	// By and Took, of a rolled-back batch: who rolled it back ("policy",
	// "recover" or an operator) and how long the change took.
	By   string        `json:"by,omitempty"`
	Took time.Duration `json:"took,omitempty"`
}

// RetryRecord takes rolled-back or held batches back to pending: the run
// runs them again through the same gates and go/no-go points.
type RetryRecord struct {
	Batches  []int  `json:"batches"`
	Operator string `json:"operator"`
	// Unconfirm are the go/no-go points asked again (those before the
	// retried batches, and after the last batch).
	Unconfirm []string `json:"unconfirm,omitempty"`
}

// GatesRecord holds the verdicts of one gate evaluation of a batch.
type GatesRecord struct {
	Batch    int             `json:"batch"`
	Pass     bool            `json:"pass"`
	Took     time.Duration   `json:"took"`
	Verdicts []VerdictRecord `json:"verdicts"`
}

// ConfirmRecord answers a go/no-go point.
type ConfirmRecord struct {
	Point    string `json:"point"`
	Go       bool   `json:"go"`
	Operator string `json:"operator"`
	// By is who answered, as four eyes count people (OperatorIdentity of
	// Operator); empty in records of older runs.
	By string `json:"by,omitempty"`
	// Pending is how many more different operators must still say go at
	// a point that needs several; 0 when this answer decides it.
	Pending int `json:"pending,omitempty"`
}

// OperatorRecord is an operator's command, for the audit trail.
type OperatorRecord struct {
	Command  string `json:"command"`
	Args     string `json:"args,omitempty"`
	Operator string `json:"operator"`
}

// RecoveredRecord is the payload of a "recovered" record, an audit note
// that no version writes any more; its content is not read.
type RecoveredRecord struct{}

// Record is a journal record's payload as decoded: a RunStartRecord,
// BaselineRecord, PhaseRecord, ChangeRecord (of an intent and of an
// applied record alike), BatchRecord, GatesRecord, ConfirmRecord,
// OperatorRecord or RecoveredRecord, always as a value. Folder.Apply and
// Walk hand it to readers of the journal, EventText turns it into the line
// people read.
type Record interface{ journalRecord() }

func (RunStartRecord) journalRecord()  {}
func (BaselineRecord) journalRecord()  {}
func (PhaseRecord) journalRecord()     {}
func (ChangeRecord) journalRecord()    {}
func (BatchRecord) journalRecord()     {}
func (GatesRecord) journalRecord()     {}
func (ConfirmRecord) journalRecord()   {}
func (OperatorRecord) journalRecord()  {}
func (RecoveredRecord) journalRecord() {}
func (RetryRecord) journalRecord()     {}

// decode reads the payload of a journal record of type typ into its
// record type: the one place where the journal's JSON is read. Unknown
// record types are an error: a journal written by a newer version must
// not be half-understood. A payload of an audit record that does not
// decode is an auditError: the state does not depend on it.
func decode(typ string, data []byte) (Record, error) {
	var (
		rec Record
		err error
	)
	switch typ {
	case RecRunStart:
		rec, err = decodeAs[RunStartRecord](data)
	case RecBaseline:
		rec, err = decodeAs[BaselineRecord](data)
	case RecPhase:
		rec, err = decodeAs[PhaseRecord](data)
	case RecIntent, RecApplied:
		rec, err = decodeAs[ChangeRecord](data)
	case RecBatch:
		rec, err = decodeAs[BatchRecord](data)
	case RecGates:
		rec, err = decodeAs[GatesRecord](data)
	case RecConfirm:
		rec, err = decodeAs[ConfirmRecord](data)
	case RecOperator:
		if rec, err = decodeAs[OperatorRecord](data); err != nil {
			return nil, auditError{fmt.Errorf("%s: %w", typ, err)}
		}
	case RecRecovered:
		rec = RecoveredRecord{}
	case RecRetry:
		rec, err = decodeAs[RetryRecord](data)
	default:
		return nil, fmt.Errorf("unknown journal record type %q", typ)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", typ, err)
	}
	return rec, nil
}

func decodeAs[T Record](data []byte) (Record, error) {
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	return v, nil
}

// auditError is an audit record (operator) whose payload does not decode.
// No state depends on such a record: Fold goes on past it, so that a
// daemon still recovers from a journal whose audit trail is damaged;
// readers of the audit trail (Walk, the report) stop at it.
type auditError struct{ err error }

func (e auditError) Error() string { return e.err.Error() }
func (e auditError) Unwrap() error { return e.err }

// apply decodes one journal record and folds it into s.
func (s *RunState) apply(typ string, at time.Time, data []byte) error {
	rec, err := decode(typ, data)
	if err != nil {
		return err
	}
	return s.fold(typ, at, rec)
}

// fold folds one decoded journal record of type typ, written at at, into
// s. On an error s is left as it was.
func (s *RunState) fold(typ string, at time.Time, rec Record) error {
	switch r := rec.(type) {
	case RunStartRecord:
		applied := s.Applied
		if r.Adopted != "" {
			applied = []int{} // the previous run's batches are this run's baseline
		}
		*s = RunState{RunID: r.RunID, Runbook: r.Runbook, Digest: r.Digest, Operator: r.Operator, Source: r.Source, Target: r.Target,
			RunbookDigest: r.RunbookDigest, InventoryDigest: r.InventoryDigest,
			AutoConfirm: r.AutoConfirm, Phase: PhasePrechecking, Batches: slices.Clone(r.Batches), Started: at, Applied: applied}
	case BaselineRecord:
		s.Baseline, s.BaselineDown, s.BaselineHealthy = slices.Clip(r.Healthy), slices.Clip(r.Down), len(r.Healthy)
	case PhaseRecord:
		s.Phase, s.Pause, s.Confirm, s.ConfirmOperators, s.Step = r.Phase, r.Pause, r.Confirm, r.Operators, r.Step
		if r.Phase == PhaseDone || r.Phase == PhaseAborted {
			s.Ended, s.Result = at, r.Result
		}
	case ChangeRecord:
		if typ == RecIntent {
			s.Intent = slices.Clone(r.Moved)
			if s.Intent == nil {
				s.Intent = []int{}
			}
			break
		}
		s.Applied, s.Intent = slices.Clone(r.Moved), nil
		if b := s.batch(r.Batch); b != nil && r.Op == "announce" {
			b.Announced, b.ApplyTook = at, r.Took
		}
	case BatchRecord:
		b := s.batch(r.Batch)
		if b == nil {
			return fmt.Errorf("%s: no batch %d", typ, r.Batch)
		}
		b.Phase = r.Phase
		switch r.Phase {
		case BatchAnnouncing:
			b.Started, b.Attempts, b.Reason = at, b.Attempts+1, ""
		case BatchGating:
			b.Converged = at
		case BatchCommitted:
			b.Decided = at
		case BatchRollingBack:
			b.Reason = r.Reason
			if b.Decided.IsZero() || b.Decided.Before(b.Started) {
				b.Decided = at
			}
		case BatchRolledBack:
			b.RolledBack, b.RollbackBy, b.RollbackTook = at, r.By, r.Took
			if r.Reason != "" {
				b.Reason = r.Reason
			}
		case BatchHeld:
			b.Decided, b.Reason = at, r.Reason
		}
	case GatesRecord:
		if b := s.batch(r.Batch); b != nil {
			b.Verdicts, b.GateTook = r.Verdicts, r.Took
		}
	case ConfirmRecord:
		if r.Go && r.Pending > 0 {
			// One of several: the point still waits for the others.
			if s.ConfirmGoAt != r.Point {
				s.ConfirmGo, s.ConfirmGoAt = nil, r.Point
			}
			s.ConfirmGo = append(s.ConfirmGo, r.By)
			break
		}
		if s.ConfirmGoAt == r.Point {
			s.ConfirmGo, s.ConfirmGoAt = nil, ""
		}
		if r.Go && !slices.Contains(s.Confirmed, r.Point) {
			s.Confirmed = append(s.Confirmed, r.Point)
		}
		if s.Confirm == r.Point {
			s.Confirm, s.ConfirmOperators = "", 0
		}
	case RetryRecord:
		for _, i := range r.Batches {
			b := s.batch(i)
			if b == nil {
				return fmt.Errorf("%s: no batch %d", typ, i)
			}
			if !b.Phase.AtSource() {
				return fmt.Errorf("%s: batch %d is %s, not rolled back or held", typ, i, b.Phase)
			}
		}
		for _, i := range r.Batches {
			b := s.batch(i)
			b.Phase, b.Retries = BatchPending, b.Retries+1
		}
		s.Confirmed = slices.DeleteFunc(s.Confirmed, func(p string) bool { return slices.Contains(r.Unconfirm, p) })
		s.Phase, s.Pause, s.Confirm, s.Step = PhaseRunning, "", "", false
		s.Ended, s.Result = time.Time{}, ""
	case OperatorRecord, RecoveredRecord:
		// audit only
	default:
		return fmt.Errorf("%s: cannot fold a %T", typ, rec)
	}
	return nil
}

func (s *RunState) batch(i int) *BatchState {
	if i < 0 || i >= len(s.Batches) {
		return nil
	}
	return &s.Batches[i]
}

// Moved counts the VMs and prefixes at the target.
func (s *RunState) Moved() (vms, prefixes int) {
	for _, i := range s.Applied {
		if b := s.batch(i); b != nil {
			vms += b.VMs
			prefixes += b.Prefixes
		}
	}
	return vms, prefixes
}

// Outcome is how a run ended, for people and scripts (exit codes).
type Outcome string

// Outcomes.
const (
	OutcomeNone     Outcome = ""          // no run, or still under way
	OutcomeAllMoved Outcome = "all-moved" // done: every batch committed
	OutcomePartial  Outcome = "partial"   // done: VMs left at the source (batches rolled back or held)
	OutcomeAborted  Outcome = "aborted"   // aborted: everything rolled back, or the pre-check failed
)

// Outcome is how the run ended; OutcomeNone while it is under way.
func (s *RunState) Outcome() Outcome {
	switch s.Phase {
	case PhaseAborted:
		return OutcomeAborted
	case PhaseDone:
		for _, b := range s.Batches {
			if b.Phase.AtSource() {
				return OutcomePartial
			}
		}
		return OutcomeAllMoved
	}
	return OutcomeNone
}

// AtSource counts the VMs of the batches that were decided and left at
// the source (rolled back or held), and lists those batches.
func (s *RunState) AtSource() (vms int, batches []int) {
	for i, b := range s.Batches {
		if b.Phase.AtSource() {
			vms += b.VMs
			batches = append(batches, i)
		}
	}
	return vms, batches
}

// Active reports whether a run is under way (not idle, done or aborted).
func (s *RunState) Active() bool {
	switch s.Phase {
	case PhasePrechecking, PhaseRunning, PhasePaused:
		return true
	}
	return false
}

// clone returns a deep copy for readers outside the engine's lock.
func (s *RunState) clone() RunState {
	c := *s
	c.Batches = slices.Clone(s.Batches)
	for i := range c.Batches {
		c.Batches[i].Verdicts = slices.Clone(s.Batches[i].Verdicts)
	}
	c.Confirmed = slices.Clone(s.Confirmed)
	c.Applied = slices.Clone(s.Applied)
	c.Intent = slices.Clone(s.Intent)
	// Baseline and BaselineDown are shared: they are replaced whole,
	// never changed in place, and clipped so that an append copies.
	return c
}

// JournalEntry is one journal record as the API and the report see it.
type JournalEntry struct {
	Seq  uint64          `json:"seq"`
	Time time.Time       `json:"time"`
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}
