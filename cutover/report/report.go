// Package report builds the evidence of a cutover run from its journal:
// who ran what and when, each batch's timeline (readiness, announce,
// converge, gate, commit, rollback or hold, and retries) with durations,
// gate reasons, rollbacks, waits at go/no-go points and pauses, totals,
// digests of the runbook, the inventory and the journal, before/after
// snapshots and a timeline picture. It renders the same model as Markdown,
// as one self-contained HTML page (inline CSS and SVG, no scripts, nothing
// fetched), as SVG and as JSON.
//
// The journal is the only source of what happened: a report built twice
// from the same journal is the same report.
package report

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/plan"
	"github.com/cutover/cutover/internal/words"
)

// Input is what a report is built from. Only Entries is required.
type Input struct {
	// Entries is the daemon's journal (client.Client.Journal, or
	// MemJournal.Entries in tests).
	Entries []engine.JournalEntry
	// Run selects the run by id when the journal holds several; empty:
	// the last one.
	Run         string
	RunbookPath string
	// Files are the runbook and the inventory exactly as the run read
	// them (the daemon keeps them per run, plan.LoadSnapshot). When set,
	// the report takes their SHA-256 as RunbookDigest and InventoryDigest
	// and checks them against the digest the run journaled.
	Files *plan.Snapshot
	// RunbookDigest and InventoryDigest are the SHA-256 (hex) of the
	// runbook and inventory files, for a caller that has the digests but
	// not the files (plan.Plan's Runbook.Digest and Inventory.Digest).
	// Files, when set, takes precedence.
	RunbookDigest   string
	InventoryDigest string
	// Snapshots are texts the caller captured, such as the edge's routes
	// and the nft table before and after. Pairs named "X before" and
	// "X after" are also shown as a diff: set by set for nft tables, line
	// by line for other texts.
	Snapshots []Snapshot
	// Rehearsal describes a lab rehearsal; nil for a real run.
	Rehearsal *Rehearsal
}

// Snapshot is a named text captured around the run.
type Snapshot struct {
	Name string `json:"name"`
	Text string `json:"text"`
}

// Rehearsal is what a lab rehearsal adds: the faults it injected and
// whether the run ended as the runbook's policy promises.
type Rehearsal struct {
	Faults   []Fault `json:"faults,omitempty"`
	Expected string  `json:"expected"`
	Actual   string  `json:"actual"`
	Passed   bool    `json:"passed"`
	// Took is how long the rehearsal took; zero: not known when the report
	// was written, and then not shown.
	Took time.Duration `json:"took,omitempty"`
}

// Fault is one injected fault.
type Fault struct {
	Fault string `json:"fault"` // e.g. "vm-down"
	When  string `json:"when"`  // e.g. "batch 3"
	// At is when it was injected; zero: not recorded, and then not shown.
	At     time.Time `json:"at,omitzero"`
	Result string    `json:"result"` // what it did, e.g. "stopped 12 responders"
}

// Tones of the banner: the colour the outcome is shown in.
const (
	ToneOK   = "ok"   // done, every VM moved
	ToneWarn = "warn" // done, VMs left at the source
	ToneBad  = "bad"  // aborted
	ToneBusy = "busy" // still under way
)

// Report is the model every rendering is made from.
type Report struct {
	RunID   string `json:"run_id"`
	Runbook string `json:"runbook"`
	// RunbookDigest and InventoryDigest are the SHA-256 (hex) of the
	// runbook and inventory files; empty when the input had neither the
	// files nor their digests.
	RunbookDigest   string `json:"runbook_digest,omitempty"`
	InventoryDigest string `json:"inventory_digest,omitempty"`
	// PlanDigest is the digest the daemon journaled when the run started:
	// SHA-256 over the runbook's and the inventory's digests (plan.Plan's
	// Digest; the daemon keeps the run's files under it).
	PlanDigest string `json:"plan_digest,omitempty"`
	// DigestCheck says whether RunbookDigest and InventoryDigest give
	// PlanDigest: DigestsMatch, DigestsDiffer, or "" when one is missing.
	DigestCheck string `json:"digest_check,omitempty"`
	// Journal identifies the journal records the report was built from.
	Journal JournalSum `json:"journal"`
	// Operator started the run.
	Operator string `json:"operator"`
	// Source and Target name the sites the run moves from and to; empty
	// when the journal does not name them.
	Source  string    `json:"source,omitempty"`
	Target  string    `json:"target,omitempty"`
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended,omitzero"`
	// Until is the end of the picture: Ended, or the last journal record
	// of a run still under way.
	Until time.Time       `json:"until"`
	Phase engine.RunPhase `json:"phase"`
	// Result is the run's result as the engine journaled it.
	Result string `json:"result,omitempty"`
	// Outcome is how the run ended ("" while it is under way).
	Outcome engine.Outcome `json:"outcome,omitempty"`
	// Banner says the outcome in one line, naming every batch left at the
	// source; Tone is its colour (ToneOK, ToneWarn, ToneBad, ToneBusy).
	Banner string `json:"banner"`
	Tone   string `json:"tone"`
	// AtSource are the batches decided and left at the source (rolled
	// back or held), by index.
	AtSource []int `json:"at_source,omitempty"`
	// BaselineDown are the VMs the pre-check found down, before any move,
	// with why ("vm-01 10.64.0.1: tcp 80: refused").
	BaselineDown []string `json:"baseline_down,omitempty"`

	Totals    Totals     `json:"totals"`
	Commands  []Command  `json:"commands"`
	Events    []Event    `json:"events"`
	Waits     []Wait     `json:"waits"`
	Batches   []Batch    `json:"batches"`
	Rollbacks []Rollback `json:"rollbacks"`
	// Moved is the number of VMs at the target over time, one point per
	// applied change, starting at Started.
	Moved []Point `json:"moved"`
	// Snapshots are the input's as the report shows them: a route without
	// a next hop says "connected", a table nft did not find "no table".
	Snapshots []Snapshot `json:"snapshots,omitempty"`
	Diffs     []Diff     `json:"diffs,omitempty"`
	Rehearsal *Rehearsal `json:"rehearsal,omitempty"`
	// Comparison puts the run beside its rehearsal (cutover report
	// --compare); nil when not asked for. Build never sets it: see Compare.
	Comparison *Comparison `json:"comparison,omitempty"`
}

// Values of Report.DigestCheck.
const (
	DigestsMatch  = "match"
	DigestsDiffer = "differ"
)

// JournalSum identifies the journal records a report was built from, so
// that anyone holding the journal can check the report against it.
type JournalSum struct {
	// Digest is JournalDigest of the records First to Last.
	Digest  string `json:"digest"`
	Records int    `json:"records"`
	First   uint64 `json:"first_seq"`
	Last    uint64 `json:"last_seq"`
}

// Totals counts the run's result. Rolled-back and held batches are also
// named one by one in Report.AtSource and every rendering.
type Totals struct {
	VMs           int `json:"vms"`
	MovedVMs      int `json:"moved_vms"`
	Prefixes      int `json:"prefixes"`
	MovedPrefixes int `json:"moved_prefixes"`
	// AtSourceVMs are the VMs of the batches rolled back or held.
	AtSourceVMs int `json:"at_source_vms"`
	Batches     int `json:"batches"`
	Committed   int `json:"committed"`
	RolledBack  int `json:"rolled_back"`
	Held        int `json:"held"`
	Pending     int `json:"pending"`
	// Other counts batches caught between phases (run still under way).
	Other     int `json:"other"`
	Rollbacks int `json:"rollbacks"`
	Retries   int `json:"retries"`
	Restarts  int `json:"restarts"`
}

// Command is one thing a person (or --yes in their name) did.
type Command struct {
	Time     time.Time `json:"time"`
	Operator string    `json:"operator"`
	Command  string    `json:"command"`
	Args     string    `json:"args,omitempty"`
	// Reason is the why the operator gave (rollback --reason).
	Reason string `json:"reason,omitempty"`
}

// Event is a run-level fact worth a line: pre-check, pauses, restarts,
// retries, end.
type Event struct {
	Time time.Time `json:"time"`
	Text string    `json:"text"`
}

// Wait is a stretch of the run spent waiting for a person: at a go/no-go
// point, or paused.
type Wait struct {
	From time.Time `json:"from"`
	// To is when the wait ended; zero: still waiting at the last record.
	To time.Time `json:"to,omitzero"`
	// Point is the go/no-go point waited at; "" for a pause.
	Point string `json:"point,omitempty"`
	// Why says what the run waited for: "go/no-go at after-canary",
	// "paused by alice".
	Why string `json:"why"`
	// Answer is who ended it how: "go by bob", "no-go by bob",
	// "resume by alice"; "" when the journal does not say.
	Answer string `json:"answer,omitempty"`
}

// Try is one pass of a batch through the move: its start, announce,
// convergence, gates and decision, and the rollback that took it back.
// Zero times were not reached; durations are those the engine measured
// (apply, gate, rollback) or the time between phases (converge).
type Try struct {
	Started       time.Time `json:"started,omitzero"`
	Announced     time.Time `json:"announced,omitzero"`
	Converged     time.Time `json:"converged,omitzero"`
	Decided       time.Time `json:"decided,omitzero"`
	RollbackStart time.Time `json:"rollback_start,omitzero"`
	RolledBack    time.Time `json:"rolled_back,omitzero"`

	ApplyTook    time.Duration `json:"apply_took,omitempty"`
	ConvergeTook time.Duration `json:"converge_took,omitempty"`
	GateTook     time.Duration `json:"gate_took,omitempty"`
	// RollbackTook is how long the change that took the batch back to the
	// source took (BGP and nft, as the engine measured it): the one
	// rollback duration the report shows.
	RollbackTook time.Duration `json:"rollback_took,omitempty"`
	// RollbackBy is who rolled it back: "policy", "recover" or the
	// operator's name.
	RollbackBy string `json:"rollback_by,omitempty"`
	// Reruns are the earlier starts of this try: the engine announces and
	// gates a batch again after a daemon restart, or on resume after a
	// failed gate under the pause policy. Started and the times above are
	// of the last start.
	Reruns []Rerun `json:"reruns,omitempty"`
}

// Rerun is an earlier start of a try that the batch was started again
// from.
type Rerun struct {
	Started   time.Time `json:"started"`
	Announced time.Time `json:"announced,omitzero"`
	Converged time.Time `json:"converged,omitzero"`
	// Failed is when its gates failed; zero: they were not decided (the
	// daemon stopped).
	Failed time.Time `json:"failed,omitzero"`
}

// Retried is a try of a batch that ended at the source (rolled back or
// held) before retry took the batch back to pending.
type Retried struct {
	Try
	Phase   engine.BatchPhase `json:"phase"`
	Reason  string            `json:"reason,omitempty"`
	RetryAt time.Time         `json:"retry_at"`
	RetryBy string            `json:"retry_by"`
}

// Batch is one batch's timeline: its last try, and the tries before each
// retry.
type Batch struct {
	Index    int               `json:"index"`
	Name     string            `json:"name"`
	VMs      int               `json:"vms"`
	Prefixes int               `json:"prefixes"`
	Phase    engine.BatchPhase `json:"phase"`
	// Attempts counts the times the batch was announced, retries included.
	Attempts int    `json:"attempts,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// Earlier is set for a batch an earlier run of the same runbook had
	// already moved: it is at the target from the start of this run.
	Earlier bool `json:"earlier,omitempty"`

	// Try is the batch's last try (since its last retry).
	Try
	// Retries are the tries that retry sent back, oldest first.
	Retries []Retried `json:"retries,omitempty"`

	// Gates are every gate evaluation of the batch, in order, readiness
	// checks included.
	Gates []GateRun `json:"gates,omitempty"`
}

// GateRun is one evaluation of a batch's gates.
type GateRun struct {
	Time time.Time     `json:"time"`
	Pass bool          `json:"pass"`
	Took time.Duration `json:"took"`
	// Ready marks the readiness check before the move: its VMs probed at
	// the target, no route moved.
	Ready    bool                   `json:"ready,omitempty"`
	Verdicts []engine.VerdictRecord `json:"verdicts"`
}

// Rollback is one change that took batches back to the source.
type Rollback struct {
	Time    time.Time `json:"time"`
	Batches []int     `json:"batches"`
	Names   []string  `json:"names"`
	By      string    `json:"by"` // operator, "policy" or "recover"
	// Command is an operator's command ("rollback --batch 2"); "" for the
	// policy and a recovery.
	Command string `json:"command,omitempty"`
	// Reason is why: the failed gate for the policy, the reason the
	// operator gave ("" when none).
	Reason string        `json:"reason"`
	Took   time.Duration `json:"took,omitempty"` // zero: not completed
}

// Point is the number of VMs at the target from Time on.
type Point struct {
	Time time.Time `json:"time"`
	VMs  int       `json:"vms"`
}

// Errors Build returns for a journal without the run asked for.
var (
	ErrNoRun = errors.New("the journal holds no run")
)

// Build reads the run out of the journal.
func Build(in Input) (*Report, error) {
	es := in.Entries
	var (
		f   engine.Folder // the one fold of the journal, up to the run's end
		w   *walker       // the run asked for, from its run-start on
		end = len(es)
	)
	for i, e := range es {
		var before []int // the batches at the target before a run starts
		if e.Type == engine.RecRunStart {
			if w != nil && in.Run != "" {
				end = i // the run asked for ends where the next begins
				break
			}
			before = slices.Clone(f.State().Applied)
		}
		rec, err := f.Apply(e)
		if err != nil {
			return nil, fmt.Errorf("build report: %w", err)
		}
		if rs, ok := rec.(engine.RunStartRecord); ok {
			if in.Run == "" || rs.RunID == in.Run {
				w = newWalker(in, e, rs, f.State(), before)
			}
			continue
		}
		if w != nil {
			w.entry(e, rec, f.State())
		}
	}
	switch {
	case w == nil && in.Run != "":
		return nil, fmt.Errorf("build report: %w with id %q", ErrNoRun, in.Run)
	case w == nil:
		return nil, fmt.Errorf("build report: %w", ErrNoRun)
	}
	st := f.State()
	r := w.r
	r.Ended, r.Phase, r.Result = st.Ended, st.Phase, st.Result
	r.Source, r.Target = st.Source, st.Target
	r.Until = r.Ended
	if r.Until.IsZero() {
		r.Until = es[end-1].Time
	}
	for i, b := range st.Batches {
		x := &r.Batches[i]
		x.Phase, x.Attempts, x.Reason = b.Phase, b.Attempts, b.Reason
	}
	r.finish(st)
	var err error
	if r.Journal, err = journalSum(es[:end]); err != nil {
		return nil, fmt.Errorf("build report: %w", err)
	}
	if in.RunbookDigest == "" && in.InventoryDigest == "" {
		in.RunbookDigest, in.InventoryDigest = st.RunbookDigest, st.InventoryDigest
	}
	r.digests(in)
	snaps := routesConnected(in.Snapshots)
	r.Diffs = diffs(snaps)
	r.Snapshots = tablesShown(snaps)
	return r, nil
}

// walker reads one run's records in order, as the fold decodes them.
type walker struct {
	r   *Report
	vms map[int]int // VMs per batch index
	// openRollback is the index in r.Rollbacks of the rollback whose
	// change is not applied yet (-1: none), openWhy its engine reason.
	openRollback int
	openWhy      string
	// rollbackBy is the operator of the last rollback command not yet
	// matched to its rollback.
	rollbackBy string
	// openIntent is the change journaled but not yet applied, since openAt.
	openIntent *engine.ChangeRecord
	openAt     time.Time
	// openWait is the index in r.Waits of the wait not yet over (-1: none).
	openWait int
	// goes are the operators who said go at a point that needs several
	// and still waits for the others (four eyes), by point.
	goes map[string][]string
}

// newWalker starts the report of the run that e, whose record is rs,
// starts; st is the state after it, before the batches at the target
// before it.
func newWalker(in Input, e engine.JournalEntry, rs engine.RunStartRecord, st *engine.RunState, before []int) *walker {
	r := &Report{
		RunID: rs.RunID, Runbook: rs.Runbook, PlanDigest: rs.Digest, Operator: rs.Operator,
		Started:   e.Time,
		Rehearsal: in.Rehearsal,
		Commands:  []Command{}, Events: []Event{}, Waits: []Wait{}, Rollbacks: []Rollback{},
	}
	if in.RunbookPath != "" {
		r.Runbook = in.RunbookPath
	}
	w := &walker{r: r, vms: map[int]int{}, openRollback: -1, openWait: -1}
	for _, b := range st.Batches {
		r.Batches = append(r.Batches, Batch{Index: b.Index, Name: b.Name, VMs: b.VMs, Prefixes: b.Prefixes,
			Phase: b.Phase, Earlier: b.Phase == engine.BatchCommitted})
		w.vms[b.Index] = b.VMs
	}
	cmd := "run"
	if rs.AutoConfirm {
		cmd = "run --yes"
	}
	r.Commands = append(r.Commands, Command{Time: r.Started, Operator: rs.Operator, Command: cmd, Args: rs.Runbook})
	r.Moved = append(r.Moved, Point{Time: r.Started, VMs: w.count(before)})
	return w
}

func (w *walker) count(moved []int) int {
	n := 0
	for _, m := range moved {
		n += w.vms[m]
	}
	return n
}

func (w *walker) batch(i int) *Batch {
	if i < 0 || i >= len(w.r.Batches) {
		return nil
	}
	return &w.r.Batches[i]
}

// event adds the record's line, in the words the engine used live.
func (w *walker) event(e engine.JournalEntry, rec engine.Record, st *engine.RunState) {
	if text := engine.EventText(e.Type, rec, st); text != "" {
		w.r.Events = append(w.r.Events, Event{e.Time, text})
	}
}

// entry reads one record of the run; st is the state after it.
func (w *walker) entry(e engine.JournalEntry, rec engine.Record, st *engine.RunState) {
	r := w.r
	switch v := rec.(type) {
	case engine.BaselineRecord:
		r.BaselineDown = slices.Clone(v.Down)
		w.event(e, rec, st)
	case engine.PhaseRecord:
		w.event(e, rec, st)
		w.phase(e.Time, v)
	case engine.ChangeRecord:
		w.change(e, v, st)
	case engine.BatchRecord:
		w.batchPhase(e.Time, v)
	case engine.GatesRecord:
		if b := w.batch(v.Batch); b != nil {
			// A readiness check runs before the move: its verdict is no gate's.
			ready := b.Phase == engine.BatchPending
			if !ready {
				b.GateTook = v.Took
			}
			b.Gates = append(b.Gates, GateRun{Time: e.Time, Pass: v.Pass, Took: v.Took, Verdicts: v.Verdicts, Ready: ready})
		}
	case engine.ConfirmRecord:
		answer := "go"
		if !v.Go {
			answer = "no-go"
		}
		args := v.Point + " " + answer
		switch {
		case v.Go && v.Pending == 1:
			args += " (one more operator needed)"
		case v.Go && v.Pending > 1:
			args += fmt.Sprintf(" (%d more operators needed)", v.Pending)
		}
		r.Commands = append(r.Commands, Command{Time: e.Time, Operator: v.Operator, Command: "confirm", Args: args})
		// Four eyes: the answer that ends a wait names everyone whose go it
		// took; a no-go starts the count again.
		who := []string{v.Operator}
		switch {
		case v.Go && v.Pending > 0:
			if w.goes == nil {
				w.goes = map[string][]string{}
			}
			w.goes[v.Point] = append(w.goes[v.Point], v.Operator)
		case v.Go:
			who = append(w.goes[v.Point], v.Operator)
			delete(w.goes, v.Point)
		default:
			delete(w.goes, v.Point)
		}
		if w.openWait >= 0 && r.Waits[w.openWait].Point == v.Point {
			r.Waits[w.openWait].Answer = answer + " by " + strings.Join(who, " and ")
			if v.Go && v.Pending == 0 {
				w.closeWait(e.Time)
			}
		}
	case engine.OperatorRecord:
		c := Command{Time: e.Time, Operator: v.Operator, Command: v.Command, Args: v.Args}
		if v.Command == "rollback" {
			w.rollbackBy = v.Operator
			c.Args, c.Reason, _ = strings.Cut(v.Args, ": ")
		}
		r.Commands = append(r.Commands, c)
	case engine.RetryRecord:
		w.event(e, rec, st)
		w.retry(e.Time, v)
	}
	// Other records (recovered) carry nothing for the report.
}

// change reads a change of the moved set, intended or applied.
func (w *walker) change(e engine.JournalEntry, v engine.ChangeRecord, st *engine.RunState) {
	r := w.r
	if e.Type == engine.RecIntent {
		if o := w.openIntent; o != nil && v.Op == "recover" {
			what := o.Op
			if b := w.batch(o.Batch); b != nil {
				what += " of batch " + fmt.Sprint(b.Index) + " " + b.Name
			}
			r.Events = append(r.Events, Event{w.openAt, "the daemon stopped during the " + what + " (journaled, not completed); the restart re-applied it"})
		}
		w.openIntent, w.openAt = &v, e.Time
		return
	}
	w.openIntent = nil
	if n := w.count(v.Moved); r.Moved[len(r.Moved)-1].VMs != n {
		r.Moved = append(r.Moved, Point{Time: e.Time, VMs: n})
	}
	w.event(e, v, st)
	switch v.Op {
	case "announce":
		if b := w.batch(v.Batch); b != nil {
			b.Announced, b.ApplyTook = e.Time, v.Took
		}
	case "recover":
		r.Totals.Restarts++
	case "rollback":
		// Journals written before the engine measured its rollbacks: the
		// time from the first rolling-back record to the applied change.
		if w.openRollback >= 0 {
			rb := &r.Rollbacks[w.openRollback]
			if rb.Took == 0 {
				rb.Took = e.Time.Sub(rb.Time)
			}
			for _, i := range rb.Batches {
				if b := w.batch(i); b != nil && b.RollbackTook == 0 {
					b.RollbackTook = rb.Took
				}
			}
		}
		w.openRollback, w.openWhy = -1, ""
	}
}

// batchPhase reads a batch's change of phase, as the fold does, into the
// batch's try.
func (w *walker) batchPhase(at time.Time, v engine.BatchRecord) {
	b := w.batch(v.Batch)
	if b == nil {
		return // the fold has rejected a batch out of range
	}
	prev := b.Phase
	b.Phase = v.Phase
	switch v.Phase {
	case engine.BatchAnnouncing:
		if prev == engine.BatchAnnouncing || prev == engine.BatchGating {
			b.Reruns = append(b.Reruns, b.rerun())
			b.Announced, b.Converged = time.Time{}, time.Time{}
		}
		b.Started, b.Reason = at, ""
	case engine.BatchGating:
		b.Converged = at
	case engine.BatchCommitted:
		b.Decided = at
	case engine.BatchHeld:
		b.Decided, b.Reason = at, v.Reason
	case engine.BatchRollingBack:
		b.Reason = v.Reason
		if prev != engine.BatchRollingBack { // not a restart completing it
			b.RollbackStart = at
		}
		if b.Decided.IsZero() || b.Decided.Before(b.Started) {
			b.Decided = at
		}
		w.rollingBack(at, b, v.Reason)
	case engine.BatchRolledBack:
		b.RolledBack = at
		if v.Reason != "" {
			b.Reason = v.Reason
		}
		w.rolledBack(b, v)
	}
}

// rerun is the batch's current start, as it is started again.
func (b *Batch) rerun() Rerun {
	rr := Rerun{Started: b.Started, Announced: b.Announced, Converged: b.Converged}
	if g, ok := b.lastGates(); ok && !g.Pass && !g.Ready && !g.Time.Before(b.Started) {
		rr.Failed = g.Time
	}
	return rr
}

// rollingBack adds batch b to the rollback its reason belongs to.
func (w *walker) rollingBack(at time.Time, b *Batch, why string) {
	r := w.r
	if w.openRollback < 0 || w.openWhy != why {
		rb := Rollback{Time: at, By: "policy", Reason: why}
		switch {
		case w.rollbackBy != "":
			rb.By, w.rollbackBy = w.rollbackBy, ""
		case strings.HasPrefix(why, "completing an interrupted"):
			rb.By = "recover"
		}
		if by, cmd, reason, ok := operatorWhy(why); ok {
			rb.By, rb.Command, rb.Reason = by, cmd, reason
		}
		r.Rollbacks = append(r.Rollbacks, rb)
		w.openRollback, w.openWhy = len(r.Rollbacks)-1, why
	}
	rb := &r.Rollbacks[w.openRollback]
	rb.Batches = append(rb.Batches, b.Index)
	rb.Names = append(rb.Names, b.Name)
}

// rolledBack reads who rolled batch b back and how long it took, from its
// rolled-back record.
func (w *walker) rolledBack(b *Batch, v engine.BatchRecord) {
	var rb *Rollback
	for k := len(w.r.Rollbacks) - 1; k >= 0 && rb == nil; k-- {
		if slices.Contains(w.r.Rollbacks[k].Batches, b.Index) {
			rb = &w.r.Rollbacks[k]
		}
	}
	if v.By != "" {
		b.RollbackBy = v.By
	} else if rb != nil {
		b.RollbackBy = rb.By
	}
	if v.Took > 0 {
		b.RollbackTook = v.Took
	}
	if rb != nil {
		if v.By != "" {
			rb.By = v.By
		}
		if v.Took > 0 {
			rb.Took = v.Took
		}
	}
}

// operatorWhy reads the engine's reason of an operator's rollback,
// "operator dave rollback --batch 2: vm-07 crashed", into who, the
// command ("rollback --batch 2") and the operator's reason.
func operatorWhy(why string) (by, cmd, reason string, ok bool) {
	rest, ok := strings.CutPrefix(why, "operator ")
	if !ok {
		return "", "", "", false
	}
	by, target, ok := strings.Cut(rest, " rollback ")
	if !ok || by == "" {
		return "", "", "", false
	}
	target, reason, _ = strings.Cut(target, ": ")
	return by, "rollback " + target, reason, true
}

// retry sends the retried batches' tries to their history.
func (w *walker) retry(at time.Time, v engine.RetryRecord) {
	w.answer("retry by " + v.Operator)
	w.closeWait(at)
	w.r.Totals.Retries++
	for _, i := range v.Batches {
		b := w.batch(i)
		if b == nil {
			continue
		}
		b.Retries = append(b.Retries, Retried{Try: b.Try, Phase: b.Phase, Reason: b.Reason, RetryAt: at, RetryBy: v.Operator})
		b.Try, b.Phase = Try{}, engine.BatchPending
	}
}

// phase reads a change of the run's phase: a pause opens a wait, anything
// else ends it.
func (w *walker) phase(at time.Time, v engine.PhaseRecord) {
	r := w.r
	if v.Phase == engine.PhaseRunning && v.Operator != "" {
		how := "resumed by "
		if v.Step {
			how = "one step by "
		}
		w.answer(how + v.Operator)
	}
	w.closeWait(at)
	if v.Phase != engine.PhasePaused {
		return
	}
	wt := Wait{From: at, Why: pauseWhy(v)}
	if v.Pause == "confirm" {
		wt.Point = v.Confirm
	}
	r.Waits = append(r.Waits, wt)
	w.openWait = len(r.Waits) - 1
}

// answer says how the open wait ended, unless the journal said so already.
func (w *walker) answer(how string) {
	if w.openWait >= 0 && w.r.Waits[w.openWait].Answer == "" {
		w.r.Waits[w.openWait].Answer = how
	}
}

func (w *walker) closeWait(at time.Time) {
	if w.openWait >= 0 {
		w.r.Waits[w.openWait].To = at
		w.openWait = -1
	}
}

// pauseWhy says in a few words what a paused run waits for.
func pauseWhy(v engine.PhaseRecord) string {
	p := v.Pause
	switch {
	case p == "confirm":
		return "go/no-go at " + v.Confirm
	case p == "no-go":
		return "no-go at " + v.Confirm + ": paused"
	case p == "operator" && v.Operator != "":
		return "paused by " + v.Operator
	case p == "step":
		return "paused after one step"
	case p == "interrupted":
		return "paused: daemon restart"
	case p == "gate-failed":
		return "paused: gate failed"
	case p == "not-ready":
		return "paused: not ready at the target"
	case strings.HasPrefix(p, "window: "):
		return "paused: change window closed"
	case strings.HasPrefix(p, "journal unusable: "):
		return "paused: journal unusable"
	case strings.HasPrefix(p, "rollback by "):
		return "paused after " + p
	case strings.HasPrefix(p, "error: "):
		return "paused: " + p
	}
	return "paused: " + p
}

// finish fills what needs the whole run: durations between phases,
// totals, the outcome and its banner.
func (r *Report) finish(st *engine.RunState) {
	t := &r.Totals
	t.Batches = len(r.Batches)
	t.Rollbacks = len(r.Rollbacks)
	for i := range r.Batches {
		b := &r.Batches[i]
		t.VMs += b.VMs
		t.Prefixes += b.Prefixes
		b.Try.converge()
		for k := range b.Retries {
			b.Retries[k].Try.converge()
		}
		switch b.Phase {
		case engine.BatchCommitted:
			t.Committed++
		case engine.BatchRolledBack:
			t.RolledBack++
		case engine.BatchHeld:
			t.Held++
		case engine.BatchPending:
			t.Pending++
		default:
			t.Other++
		}
	}
	t.MovedVMs, t.MovedPrefixes = st.Moved()
	t.AtSourceVMs, r.AtSource = st.AtSource()
	r.Outcome = st.Outcome()
	r.Banner, r.Tone = r.banner(st)
}

// converge is the time from the announce to the peers holding the routes.
func (t *Try) converge() {
	if !t.Converged.IsZero() && !t.Announced.IsZero() && !t.Converged.Before(t.Announced) {
		t.ConvergeTook = t.Converged.Sub(t.Announced)
	}
}

// banner says the outcome in one line with its tone.
func (r *Report) banner(st *engine.RunState) (string, string) {
	t := r.Totals
	target, source := siteOr(r.Target, "the target"), siteOr(r.Source, "the source")
	pct := 0.0
	if t.VMs > 0 {
		pct = 100 * float64(t.MovedVMs) / float64(t.VMs)
	}
	moved := fmt.Sprintf("%d of %d VMs at %s (%.0f%%)", t.MovedVMs, t.VMs, target, pct)
	left := r.atSourceList()
	switch r.Outcome {
	case engine.OutcomeAllMoved:
		return "done — all moved: " + moved, ToneOK
	case engine.OutcomePartial:
		return fmt.Sprintf("done — partial: %d VMs (%s) still at %s; cutover retry moves them. %s.",
			t.AtSourceVMs, left, source, moved), ToneWarn
	case engine.OutcomeAborted:
		s := fmt.Sprintf("aborted — %s; %s", r.Result, moved)
		if left != "" {
			s += fmt.Sprintf("; %d VMs (%s) back at %s", t.AtSourceVMs, left, source)
		}
		return s, ToneBad
	}
	s := fmt.Sprintf("under way (%s); %s", st.Phase, moved)
	if st.Phase == engine.PhasePaused {
		why := st.Pause
		if st.Confirm != "" {
			why = "waiting for go/no-go at " + st.Confirm
		}
		s = fmt.Sprintf("under way, paused (%s); %s", why, moved)
	}
	if left != "" {
		s += fmt.Sprintf("; so far %d VMs (%s) at %s", t.AtSourceVMs, left, source)
	}
	return s, ToneBusy
}

// atSourceList names the batches left at the source, each with how:
// "batch 2 b02-hsyk rolled back, batch 3 b03-nlsh held".
func (r *Report) atSourceList() string {
	var parts []string
	for _, i := range r.AtSource {
		if b := r.batchAt(i); b != nil {
			parts = append(parts, b.ref()+" "+phaseWords(b.Phase))
		}
	}
	return strings.Join(parts, ", ")
}

// batchesIn names the batches in phase p: "batch 2 b02-hsyk, batch 3
// b03-nlsh"; "none" when there are none.
func (r *Report) batchesIn(p engine.BatchPhase) string {
	var parts []string
	for _, b := range r.Batches {
		if b.Phase == p {
			parts = append(parts, fmt.Sprintf("%s (%d VMs)", b.ref(), b.VMs))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func (r *Report) batchAt(i int) *Batch {
	if i < 0 || i >= len(r.Batches) {
		return nil
	}
	return &r.Batches[i]
}

// ref is "batch 2 b02-hsyk".
func (b *Batch) ref() string { return fmt.Sprintf("batch %d %s", b.Index, b.Name) }

// phaseWords is a batch phase in words.
func phaseWords(p engine.BatchPhase) string {
	switch p {
	case engine.BatchRolledBack:
		return "rolled back"
	case engine.BatchRollingBack:
		return "rolling back"
	}
	return string(p)
}

func siteOr(site, unnamed string) string {
	if site == "" {
		return unnamed
	}
	return site
}

// digests fills the runbook's and the inventory's digests from the input
// and checks them against the plan digest the run journaled.
func (r *Report) digests(in Input) {
	r.RunbookDigest, r.InventoryDigest = in.RunbookDigest, in.InventoryDigest
	if f := in.Files; f != nil {
		r.RunbookDigest, r.InventoryDigest = sha256Hex(f.Runbook), sha256Hex(f.Inventory)
	}
	if r.RunbookDigest == "" || r.InventoryDigest == "" || r.PlanDigest == "" {
		return
	}
	// plan.New: SHA-256 of "<runbook digest>\n<inventory digest>\n".
	bare := func(d string) string { return strings.TrimPrefix(d, "sha256:") }
	r.DigestCheck = DigestsDiffer
	if sha256Hex([]byte(bare(r.RunbookDigest)+"\n"+bare(r.InventoryDigest)+"\n")) == bare(r.PlanDigest) {
		r.DigestCheck = DigestsMatch
	}
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// JournalDigest is the SHA-256 (hex) over journal entries as read, each
// written as one line of compact JSON, {"seq":…,"time":…,"type":…,"data":…}
// with the time in RFC 3339 UTC, ending in a newline: the form the
// daemon's /v1/journal gives them, whatever the daemon's time zone.
func JournalDigest(entries []engine.JournalEntry) (string, error) {
	h := sha256.New()
	for _, e := range entries {
		e.Time = e.Time.UTC()
		line, err := json.Marshal(e)
		if err != nil {
			return "", fmt.Errorf("journal digest: record %d: %w", e.Seq, err)
		}
		h.Write(append(line, '\n'))
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// journalForm says what JournalDigest is computed over.
const journalForm = `each one line of compact JSON {"seq","time" (RFC 3339, UTC),"type","data"} ending in a newline`

func journalSum(es []engine.JournalEntry) (JournalSum, error) {
	d, err := JournalDigest(es)
	if err != nil {
		return JournalSum{}, err
	}
	s := JournalSum{Digest: d, Records: len(es)}
	if len(es) > 0 {
		s.First, s.Last = es[0].Seq, es[len(es)-1].Seq
	}
	return s, nil
}

// planNote says what the plan digest is and whether the runbook and
// inventory digests give it.
func (r *Report) planNote() string {
	s := "journaled at run start: SHA-256 of the runbook and inventory digests"
	switch r.DigestCheck {
	case DigestsMatch:
		s += "; the digests above give it"
	case DigestsDiffer:
		s += "; the digests above do NOT give it: these are not the files the run read"
	}
	return s
}

// journalNote says what the journal digest is over.
func (r *Report) journalNote() string {
	j := r.Journal
	return fmt.Sprintf("SHA-256 over the %s %d to %d as read, %s", words.Plural(j.Records, "journal record"), j.First, j.Last, journalForm)
}

// JSON returns the report as indented JSON (cutover report -o json).
// Durations are in nanoseconds, times in RFC 3339.
func (r *Report) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode report: %w", err)
	}
	return append(b, '\n'), nil
}

// clock formats a time of day in UTC.
func clock(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("15:04:05")
}

// stamp formats a full UTC timestamp.
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 MST")
}

// lastGates is the batch's last gate evaluation, if any.
func (b *Batch) lastGates() (GateRun, bool) {
	if len(b.Gates) == 0 {
		return GateRun{}, false
	}
	return b.Gates[len(b.Gates)-1], true
}

// gateSummary is the verdict of a batch's last gate evaluation in one
// phrase: "pass (2 gates)", "FAIL probe: 2 failing (1 of 2 gates)", or for
// a readiness check that held the batch "not ready: 3 failing".
func (b *Batch) gateSummary() string {
	g, ok := b.lastGates()
	if !ok {
		return ""
	}
	n := len(g.Verdicts)
	if g.Pass {
		if g.Ready {
			return "ready (" + words.Plural(n, "check") + ")"
		}
		return "pass (" + words.Plural(n, "gate") + ")"
	}
	var parts []string
	for _, v := range g.Verdicts {
		if v.Pass {
			continue
		}
		p := v.Gate
		if len(v.Failed) > 0 {
			p += fmt.Sprintf(": %d failing", len(v.Failed))
		}
		parts = append(parts, p)
	}
	if g.Ready {
		s := strings.Join(parts, "; ")
		if rest, ok := strings.CutPrefix(s, readyGate+": "); ok {
			return "not ready: " + rest
		}
		if s == readyGate || s == "" {
			return "not ready"
		}
		return "not ready: " + s
	}
	s := "FAIL " + strings.Join(parts, "; ")
	if len(parts) < n {
		s += fmt.Sprintf(" (%d of %s)", len(parts), words.Plural(n, "gate"))
	}
	return s
}

// readyGate is the name the engine gives the readiness check when the
// check names none.
const readyGate = "ready"

// decision is how the batch's last try ended, with the time.
func (b *Batch) decision() string {
	switch b.Phase {
	case engine.BatchCommitted:
		if b.Decided.IsZero() {
			return "committed by an earlier run"
		}
		return "commit " + clock(b.Decided)
	case engine.BatchRolledBack:
		s := "rollback " + clock(b.RolledBack)
		if b.RollbackBy != "" {
			s += " by " + b.RollbackBy
		}
		if b.Earlier && b.Started.IsZero() && len(b.Retries) == 0 {
			s += " (moved by an earlier run)"
		}
		return s
	case engine.BatchRollingBack:
		return "rolling back since " + clock(b.RollbackStart)
	case engine.BatchHeld:
		return "held " + clock(b.Decided) + " (not ready at the target)"
	}
	return ""
}

// total is the time from the try's first start to its decision: its
// commit, or the end of the rollback that decided it.
func (t *Try) total() time.Duration {
	end := t.Decided
	if !t.RolledBack.IsZero() && !t.Decided.Before(t.RollbackStart) {
		end = t.RolledBack
	}
	start := t.Started
	if len(t.Reruns) > 0 {
		start = t.Reruns[0].Started
	}
	if start.IsZero() || end.Before(start) {
		return 0
	}
	return end.Sub(start)
}

// gated reports whether the batch's last try had its gates evaluated.
func (b *Batch) gated() bool {
	for _, g := range b.Gates {
		if !g.Ready && !b.Started.IsZero() && !g.Time.Before(b.Started) {
			return true
		}
	}
	return false
}

// failedGates are the gate runs that failed.
func (b *Batch) failedGates() []GateRun {
	var out []GateRun
	for _, g := range b.Gates {
		if !g.Pass {
			out = append(out, g)
		}
	}
	return out
}

// took is how long a wait lasted, up to until for one not over.
func (wt Wait) took(until time.Time) time.Duration {
	end := wt.To
	if end.IsZero() {
		end = until
	}
	if end.Before(wt.From) {
		return 0
	}
	return end.Sub(wt.From)
}

// label is the wait in a few words with its answer.
func (wt Wait) label() string {
	if wt.Answer == "" {
		return wt.Why
	}
	return wt.Why + ": " + wt.Answer
}

// Formats are the names Render takes.
var Formats = []string{"md", "html", "json", "svg"}

// Render writes the report in one of Formats ("markdown" is md).
func (r *Report) Render(format string) ([]byte, error) {
	switch format {
	case "md", "markdown":
		return r.Markdown(), nil
	case "html":
		return r.HTML(), nil
	case "svg":
		return r.SVG(), nil
	case "json":
		return r.JSON()
	}
	return nil, &FormatError{Format: format}
}

// FormatError is a format Render does not know.
type FormatError struct{ Format string }

func (e *FormatError) Error() string {
	return fmt.Sprintf("-o %q: want %s", e.Format, strings.Join(Formats, ", "))
}
