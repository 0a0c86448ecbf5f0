// Package report builds the evidence of a cutover run from its journal:
// who ran what and when, each batch's timeline (announce, converge, gate,
// commit or rollback) with durations, gate reasons, rollbacks, totals,
// before/after snapshots and a timeline picture. It renders the same model
// as Markdown, as one self-contained HTML page (inline CSS and SVG, no
// scripts, nothing fetched), as SVG and as JSON.
//
// The journal is the only source of what happened: a report built twice
// from the same journal is the same report.
package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cutover/cutover/cutover/engine"
)

// Input is what a report is built from. Only Entries is required.
type Input struct {
	// Entries is the daemon's journal (client.Client.Journal, or
	// MemJournal.Entries in tests).
	Entries []engine.JournalEntry
	// Run selects the run by id when the journal holds several; empty:
	// the last one.
	Run             string
	RunbookPath     string
	RunbookDigest   string
	InventoryDigest string
	// Snapshots are texts the caller captured, such as the edge's routes
	// and the nft table before and after. Pairs named "X before" and
	// "X after" are also shown as a diff.
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
	Faults   []Fault       `json:"faults,omitempty"`
	Expected string        `json:"expected"`
	Actual   string        `json:"actual"`
	Passed   bool          `json:"passed"`
	Took     time.Duration `json:"took"`
}

// Fault is one injected fault.
type Fault struct {
	Fault  string    `json:"fault"` // e.g. "vm-down"
	When   string    `json:"when"`  // e.g. "batch 3"
	At     time.Time `json:"at,omitzero"`
	Result string    `json:"result"` // what it did, e.g. "stopped 12 responders"
}

// Report is the model every rendering is made from.
type Report struct {
	RunID           string `json:"run_id"`
	Runbook         string `json:"runbook"`
	RunbookDigest   string `json:"runbook_digest,omitempty"`
	InventoryDigest string `json:"inventory_digest,omitempty"`
	// RunDigest is the digest of runbook and inventory the daemon
	// journaled when the run started.
	RunDigest string    `json:"run_digest,omitempty"`
	Operator  string    `json:"operator"`
	Started   time.Time `json:"started"`
	Ended     time.Time `json:"ended,omitzero"`
	// Until is the end of the picture: Ended, or the last journal record
	// of a run still under way.
	Until   time.Time       `json:"until"`
	Phase   engine.RunPhase `json:"phase"`
	Result  string          `json:"result,omitempty"`
	Outcome string          `json:"outcome"`

	Totals    Totals     `json:"totals"`
	Commands  []Command  `json:"commands"`
	Events    []Event    `json:"events"`
	Batches   []Batch    `json:"batches"`
	Rollbacks []Rollback `json:"rollbacks"`
	// Moved is the number of VMs at the target over time, one point per
	// applied change, starting at Started.
	Moved     []Point    `json:"moved"`
	Snapshots []Snapshot `json:"snapshots,omitempty"`
	Diffs     []Diff     `json:"diffs,omitempty"`
	Rehearsal *Rehearsal `json:"rehearsal,omitempty"`
}

// Totals counts the run's result.
type Totals struct {
	VMs           int `json:"vms"`
	MovedVMs      int `json:"moved_vms"`
	Prefixes      int `json:"prefixes"`
	MovedPrefixes int `json:"moved_prefixes"`
	Batches       int `json:"batches"`
	Committed     int `json:"committed"`
	RolledBack    int `json:"rolled_back"`
	Pending       int `json:"pending"`
	// Other counts batches caught between phases (run still under way).
	Other     int `json:"other"`
	Rollbacks int `json:"rollbacks"`
	Restarts  int `json:"restarts"`
}

// Command is one thing a person (or --yes in their name) did.
type Command struct {
	Time     time.Time `json:"time"`
	Operator string    `json:"operator"`
	Command  string    `json:"command"`
	Args     string    `json:"args,omitempty"`
}

// Event is a run-level fact worth a line: pre-check, pauses, restarts, end.
type Event struct {
	Time time.Time `json:"time"`
	Text string    `json:"text"`
}

// Batch is one batch's timeline. Zero times were not reached; durations
// are those the engine measured (apply, gate) or the time between phases.
type Batch struct {
	Index    int               `json:"index"`
	Name     string            `json:"name"`
	VMs      int               `json:"vms"`
	Prefixes int               `json:"prefixes"`
	Phase    engine.BatchPhase `json:"phase"`
	Attempts int               `json:"attempts,omitempty"`
	Reason   string            `json:"reason,omitempty"`
	// Earlier is set for a batch an earlier run of the same runbook had
	// already moved: it is at the target from the start of this run.
	Earlier bool `json:"earlier,omitempty"`

	Started       time.Time `json:"started,omitzero"`
	Announced     time.Time `json:"announced,omitzero"`
	Converged     time.Time `json:"converged,omitzero"`
	Decided       time.Time `json:"decided,omitzero"`
	RollbackStart time.Time `json:"rollback_start,omitzero"`
	RolledBack    time.Time `json:"rolled_back,omitzero"`

	ApplyTook    time.Duration `json:"apply_took,omitempty"`
	ConvergeTook time.Duration `json:"converge_took,omitempty"`
	GateTook     time.Duration `json:"gate_took,omitempty"`
	RollbackTook time.Duration `json:"rollback_took,omitempty"`

	// Gates are every gate evaluation of the batch, in order.
	Gates []GateRun `json:"gates,omitempty"`
}

// GateRun is one evaluation of a batch's gates.
type GateRun struct {
	Time     time.Time              `json:"time"`
	Pass     bool                   `json:"pass"`
	Took     time.Duration          `json:"took"`
	Verdicts []engine.VerdictRecord `json:"verdicts"`
}

// Rollback is one change that took batches back to the source.
type Rollback struct {
	Time    time.Time     `json:"time"`
	Batches []int         `json:"batches"`
	Names   []string      `json:"names"`
	By      string        `json:"by"` // operator, "policy" or "recover"
	Reason  string        `json:"reason"`
	Took    time.Duration `json:"took,omitempty"` // zero: not completed
}

// Point is the number of VMs at the target from Time on.
type Point struct {
	Time time.Time `json:"time"`
	VMs  int       `json:"vms"`
}

// Diff is what changed between the snapshots "Name before" and "Name after",
// compared as sets of lines.
type Diff struct {
	Name    string   `json:"name"`
	Added   []string `json:"added"`
	Removed []string `json:"removed"`
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
	r.Until = r.Ended
	if r.Until.IsZero() {
		r.Until = es[end-1].Time
	}
	for i, b := range st.Batches {
		x := &r.Batches[i]
		x.Phase, x.Attempts, x.Reason = b.Phase, b.Attempts, b.Reason
		x.Started, x.Announced, x.Converged, x.Decided, x.RolledBack = b.Started, b.Announced, b.Converged, b.Decided, b.RolledBack
		x.ApplyTook, x.GateTook = b.ApplyTook, b.GateTook
	}
	r.finish(st)
	r.Diffs = diffs(in.Snapshots)
	return r, nil
}

// walker reads one run's records in order, as the fold decodes them.
type walker struct {
	r   *Report
	vms map[int]int // VMs per batch index
	// openRollback is the rollback whose change is not applied yet.
	openRollback *Rollback
	// rollbackBy is the operator of the last rollback command not yet
	// matched to its rollback.
	rollbackBy string
	// openIntent is the change journaled but not yet applied, since openAt.
	openIntent *engine.ChangeRecord
	openAt     time.Time
}

// newWalker starts the report of the run that e, whose record is rs,
// starts; st is the state after it, before the batches at the target
// before it.
func newWalker(in Input, e engine.JournalEntry, rs engine.RunStartRecord, st *engine.RunState, before []int) *walker {
	r := &Report{
		RunID: rs.RunID, Runbook: rs.Runbook, RunDigest: rs.Digest, Operator: rs.Operator,
		RunbookDigest: in.RunbookDigest, InventoryDigest: in.InventoryDigest,
		Started:   e.Time,
		Snapshots: in.Snapshots, Rehearsal: in.Rehearsal,
		Commands: []Command{}, Events: []Event{}, Rollbacks: []Rollback{},
	}
	if in.RunbookPath != "" {
		r.Runbook = in.RunbookPath
	}
	w := &walker{r: r, vms: map[int]int{}}
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
	case engine.BaselineRecord, engine.PhaseRecord:
		w.event(e, rec, st)
	case engine.ChangeRecord:
		if e.Type == engine.RecIntent {
			if o := w.openIntent; o != nil && v.Op == "recover" {
				what := o.Op
				if b := w.batch(o.Batch); b != nil {
					what += " of batch " + fmt.Sprint(b.Index) + " " + b.Name
				}
				r.Events = append(r.Events, Event{w.openAt, "the daemon stopped during the " + what + " (journaled, not completed); the restart re-applied it"})
			}
			w.openIntent, w.openAt = &v, e.Time
			break
		}
		w.openIntent = nil
		if n := w.count(v.Moved); r.Moved[len(r.Moved)-1].VMs != n {
			r.Moved = append(r.Moved, Point{Time: e.Time, VMs: n})
		}
		w.event(e, rec, st)
		switch v.Op {
		case "recover":
			r.Totals.Restarts++
		case "rollback":
			if rb := w.openRollback; rb != nil {
				rb.Took = e.Time.Sub(rb.Time)
				w.openRollback = nil
				for _, i := range rb.Batches {
					if b := w.batch(i); b != nil {
						b.RollbackTook = rb.Took
					}
				}
			}
		}
	case engine.BatchRecord:
		b := w.batch(v.Batch)
		if b == nil || v.Phase != engine.BatchRollingBack {
			break // the fold has rejected a batch out of range
		}
		b.RollbackStart = e.Time
		rb := w.openRollback
		if rb == nil || rb.Reason != v.Reason {
			by := "policy"
			switch {
			case w.rollbackBy != "":
				by, w.rollbackBy = w.rollbackBy, ""
			case strings.HasPrefix(v.Reason, "completing an interrupted"):
				by = "recover"
			}
			r.Rollbacks = append(r.Rollbacks, Rollback{Time: e.Time, By: by, Reason: v.Reason})
			rb = &r.Rollbacks[len(r.Rollbacks)-1]
			w.openRollback = rb
		}
		rb.Batches = append(rb.Batches, v.Batch)
		rb.Names = append(rb.Names, b.Name)
	case engine.GatesRecord:
		if b := w.batch(v.Batch); b != nil {
			b.Gates = append(b.Gates, GateRun{Time: e.Time, Pass: v.Pass, Took: v.Took, Verdicts: v.Verdicts})
		}
	case engine.ConfirmRecord:
		answer := "go"
		if !v.Go {
			answer = "no-go"
		}
		r.Commands = append(r.Commands, Command{Time: e.Time, Operator: v.Operator, Command: "confirm", Args: v.Point + " " + answer})
	case engine.OperatorRecord:
		r.Commands = append(r.Commands, Command{Time: e.Time, Operator: v.Operator, Command: v.Command, Args: v.Args})
		if v.Command == "rollback" {
			w.rollbackBy = v.Operator
		}
	}
	// Other records (recovered) carry nothing for the report.
}

// finish fills what needs the whole run: durations between phases,
// totals and the outcome.
func (r *Report) finish(st *engine.RunState) {
	t := &r.Totals
	t.Batches = len(r.Batches)
	t.Rollbacks = len(r.Rollbacks)
	for i := range r.Batches {
		b := &r.Batches[i]
		t.VMs += b.VMs
		t.Prefixes += b.Prefixes
		if !b.Converged.IsZero() && !b.Announced.IsZero() && !b.Converged.Before(b.Announced) {
			b.ConvergeTook = b.Converged.Sub(b.Announced)
		}
		switch b.Phase {
		case engine.BatchCommitted:
			t.Committed++
		case engine.BatchRolledBack:
			t.RolledBack++
		case engine.BatchPending:
			t.Pending++
		default:
			t.Other++
		}
	}
	t.MovedVMs, t.MovedPrefixes = st.Moved()
	pct := 0.0
	if t.VMs > 0 {
		pct = 100 * float64(t.MovedVMs) / float64(t.VMs)
	}
	moved := fmt.Sprintf("%d of %d VMs at the target (%.0f%%)", t.MovedVMs, t.VMs, pct)
	switch st.Phase {
	case engine.PhaseDone:
		r.Outcome = fmt.Sprintf("done: %s; %s", r.Result, moved)
	case engine.PhaseAborted:
		r.Outcome = fmt.Sprintf("aborted: %s; %s", r.Result, moved)
	case engine.PhasePaused:
		why := st.Pause
		if st.Confirm != "" {
			why = "waiting for go/no-go at " + st.Confirm
		}
		r.Outcome = fmt.Sprintf("under way, paused (%s); %s", why, moved)
	default:
		r.Outcome = fmt.Sprintf("under way (%s); %s", st.Phase, moved)
	}
}

// diffs pairs "X before" with "X after" snapshots.
func diffs(snaps []Snapshot) []Diff {
	var out []Diff
	for _, b := range snaps {
		stem, ok := strings.CutSuffix(b.Name, " before")
		if !ok {
			continue
		}
		i := slices.IndexFunc(snaps, func(s Snapshot) bool { return s.Name == stem+" after" })
		if i < 0 {
			continue
		}
		before, after := lineSet(b.Text), lineSet(snaps[i].Text)
		d := Diff{Name: stem, Added: []string{}, Removed: []string{}}
		for _, l := range lines(snaps[i].Text) {
			if !before[l] {
				d.Added = append(d.Added, l)
			}
		}
		for _, l := range lines(b.Text) {
			if !after[l] {
				d.Removed = append(d.Removed, l)
			}
		}
		out = append(out, d)
	}
	return out
}

func lines(s string) []string {
	var out []string
	seen := map[string]bool{}
	for l := range strings.SplitSeq(s, "\n") {
		l = strings.TrimRight(l, " \t\r")
		if strings.TrimSpace(l) == "" || seen[l] {
			continue
		}
		seen[l] = true
		out = append(out, l)
	}
	return out
}

func lineSet(s string) map[string]bool {
	m := map[string]bool{}
	for _, l := range lines(s) {
		m[l] = true
	}
	return m
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

// gateSummary is the verdict of a batch's last gate run in one phrase.
func (b *Batch) gateSummary() string {
	if len(b.Gates) == 0 {
		return ""
	}
	g := b.Gates[len(b.Gates)-1]
	var pass, fail []string
	for _, v := range g.Verdicts {
		if v.Pass {
			pass = append(pass, v.Gate)
		} else {
			fail = append(fail, v.Gate)
		}
	}
	if g.Pass {
		return "pass (" + strings.Join(pass, ", ") + ")"
	}
	return "FAIL (" + strings.Join(fail, ", ") + ")"
}

// decision is how the batch ended, with the time.
func (b *Batch) decision() string {
	switch b.Phase {
	case engine.BatchCommitted:
		if b.Decided.IsZero() {
			return "committed by an earlier run"
		}
		return "commit " + clock(b.Decided)
	case engine.BatchRolledBack:
		if b.Earlier && b.Started.IsZero() {
			return "rollback " + clock(b.RolledBack) + " (moved by an earlier run)"
		}
		return "rollback " + clock(b.RolledBack)
	case engine.BatchRollingBack:
		return "rolling back since " + clock(b.RollbackStart)
	}
	return ""
}

// total is the time from the batch's start to its decision.
func (b *Batch) total() time.Duration {
	end := b.Decided
	if !b.RolledBack.IsZero() {
		end = b.RolledBack
	}
	if b.Started.IsZero() || end.Before(b.Started) {
		return 0
	}
	return end.Sub(b.Started)
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
