package report

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/internal/words"
)

// A duration differs from the rehearsal's when the longer of the two is
// more than durationRatio times the shorter AND more than durationSlack
// longer. Both: a 0.4s announce against 0.2s is twice as long but noise,
// and 3m10s against 3m0s is 10s longer but noise; 41s against 12s is a
// difference someone should look at.
const (
	durationRatio = 1.5
	durationSlack = 5 * time.Second
)

// durationRule says in words when Compare calls two durations different.
var durationRule = fmt.Sprintf("durations count as different when the longer is more than %.1f× the shorter and more than %s longer", durationRatio, engine.Human(durationSlack))

// RehearsalRecord is what the record of a lab rehearsal says beside the
// rehearsed run's report (package evidence's Record, which imports this
// package and so cannot be imported by it).
type RehearsalRecord struct {
	// Runbook is the runbook's name, File the path it was rehearsed from.
	Runbook string `json:"runbook"`
	File    string `json:"file,omitempty"`
	// RunbookDigest and InventoryDigest are the SHA-256 (hex) of the
	// rehearsed files.
	RunbookDigest   string         `json:"runbook_digest"`
	InventoryDigest string         `json:"inventory_digest"`
	Rehearsed       time.Time      `json:"rehearsed"`
	Took            time.Duration  `json:"took,omitempty"`
	Green           bool           `json:"green"`
	Outcome         engine.Outcome `json:"outcome"`
	// Faults are the faults injected, as given to --inject
	// ("daemon-kill@3").
	Faults []string `json:"faults,omitempty"`
}

// String names the rehearsal in one line: "green rehearsal of helse-nord
// on 2026-03-13 22:10 UTC (all-moved, faults vm-down@2, took 1m48s)".
func (rr RehearsalRecord) String() string {
	color := "green"
	if !rr.Green {
		color = "failed"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s rehearsal of %s on %s (%s", color, rr.Runbook, rr.Rehearsed.UTC().Format("2006-01-02 15:04 MST"), outcomeWords(rr.Outcome))
	if len(rr.Faults) > 0 {
		fmt.Fprintf(&b, ", faults %s", strings.Join(rr.Faults, " "))
	}
	if rr.Took > 0 {
		fmt.Fprintf(&b, ", took %s", engine.Human(rr.Took))
	}
	b.WriteString(")")
	return b.String()
}

// Comparison puts a run beside its rehearsal, batch by batch, and names
// what differed. Report.Comparison carries it into every rendering.
type Comparison struct {
	Record RehearsalRecord `json:"record"`
	// RunbookDigest and InventoryDigest say whether the run read the
	// rehearsed files: DigestsMatch, DigestsDiffer, or "" when the run's
	// report lacks the digest.
	RunbookDigest   string `json:"runbook_digest,omitempty"`
	InventoryDigest string `json:"inventory_digest,omitempty"`
	// SameBatches is set when both runs have the same batches, index by
	// index and name by name. Only batches of the same index and name are
	// compared.
	SameBatches bool    `json:"same_batches"`
	Tonight     RunSide `json:"tonight"`
	// Rehearsal is nil when the record holds no report: then only the
	// digests and the outcome are compared.
	Rehearsal *RunSide        `json:"rehearsal,omitempty"`
	Faults    []InjectedFault `json:"faults,omitempty"`
	Batches   []BatchCompared `json:"batches,omitempty"`
	// Differences are what differed, one plain sentence each: the run's
	// first, then batch by batch. None: nothing differed beyond noise.
	Differences []string `json:"differences,omitempty"`
}

// RunSide is one run's totals as compared.
type RunSide struct {
	Outcome engine.Outcome `json:"outcome,omitempty"`
	// Took is from start to end; zero while the run is under way. Waited
	// is the part of it spent waiting for people (go/no-go points and
	// pauses), which a rehearsal answers at once and so is not compared.
	Took       time.Duration `json:"took,omitempty"`
	Waited     time.Duration `json:"waited,omitempty"`
	Batches    int           `json:"batches"`
	Committed  int           `json:"committed"`
	RolledBack int           `json:"rolled_back"`
	Held       int           `json:"held"`
	Restarts   int           `json:"restarts,omitempty"`
}

// InjectedFault is a fault the rehearsal injected, placed at its batch.
type InjectedFault struct {
	Fault string `json:"fault"` // as given: "vm-down@3"
	// Batch is the index of the rehearsal's batch it was injected at; -1
	// when the record does not say which (no report, unknown batch).
	Batch int    `json:"batch"`
	Name  string `json:"name,omitempty"`
}

// BatchCompared is one batch index of both runs.
type BatchCompared struct {
	Index int `json:"index"`
	// Tonight and Rehearsal are the batch in each run; nil when that run
	// has no batch of this index.
	Tonight   *BatchSide `json:"tonight,omitempty"`
	Rehearsal *BatchSide `json:"rehearsal,omitempty"`
	// Compared is set when both runs have this batch under the same name
	// and it moved in both (not at the target from an earlier run).
	Compared bool `json:"compared"`
	// Notes say what differed at this batch, one sentence each without
	// the batch's name; the faults the rehearsal injected here are in
	// Faults, not in the notes.
	Notes  []string `json:"notes,omitempty"`
	Faults []string `json:"faults,omitempty"`
}

// BatchSide is one batch of one run as compared.
type BatchSide struct {
	Name  string            `json:"name"`
	Phase engine.BatchPhase `json:"phase"`
	// Took is the time from the start of the announce to the commit or
	// the end of the rollback, summed over the batch's tries (the waits
	// between a rollback and the retry are not in it); zero: never moved.
	Took time.Duration `json:"took,omitempty"`
	// GateRounds counts the gate evaluations after the move, FailedRounds
	// those that failed, FirstFailure the reason of the first.
	GateRounds   int    `json:"gate_rounds"`
	FailedRounds int    `json:"failed_rounds"`
	FirstFailure string `json:"first_failure,omitempty"`
	// ReadyChecks counts the readiness checks before the move, NotReady
	// those that found VMs not answering at the target.
	ReadyChecks   int      `json:"ready_checks,omitempty"`
	NotReady      int      `json:"not_ready,omitempty"`
	FirstNotReady string   `json:"first_not_ready,omitempty"`
	Rollbacks     int      `json:"rollbacks"`
	RollbackBy    []string `json:"rollback_by,omitempty"`
	Attempts      int      `json:"attempts"`
	Retries       int      `json:"retries"`
	// Earlier is set for a batch an earlier run had moved: it is at the
	// target from the start and was not moved by this run.
	Earlier bool `json:"earlier,omitempty"`
}

// Compare puts night, a run's report, beside rehearsal, the report of the
// rehearsal that rec describes (nil when the record holds none). Batches
// are matched by index and compared when they have the same name; a
// difference in the batch lists (the runbook or inventory changed) is
// itself named. Durations are compared by durationRule; counts (gate
// rounds, failed rounds, readiness checks, rollbacks, retries, attempts)
// differ when they are not equal. A difference at a batch the rehearsal
// injected a fault into says so.
func Compare(night, rehearsal *Report, rec RehearsalRecord) *Comparison {
	c := &Comparison{Record: rec, Tonight: runSide(night)}
	c.RunbookDigest = digestCheck(night.RunbookDigest, rec.RunbookDigest)
	c.InventoryDigest = digestCheck(night.InventoryDigest, rec.InventoryDigest)
	c.Faults = placeFaults(rec.Faults, rehearsal)
	c.digestNotes()
	if rehearsal == nil {
		c.Differences = append(c.Differences, "the rehearsal's record holds no report of the rehearsed run: only digests and outcome are compared")
		if night.Outcome != rec.Outcome {
			c.Differences = append(c.Differences, outcomeSentence(night.Outcome, rec.Outcome))
		}
		return c
	}
	rs := runSide(rehearsal)
	c.Rehearsal = &rs
	c.SameBatches = sameBatches(night, rehearsal)
	if !c.SameBatches {
		c.Differences = append(c.Differences, batchListSentence(night, rehearsal))
	}
	c.runNotes()
	for i := range max(len(night.Batches), len(rehearsal.Batches)) {
		c.Batches = append(c.Batches, c.compareBatch(i, night.batchAt(i), rehearsal.batchAt(i)))
	}
	for _, b := range c.Batches {
		ref := b.ref()
		for _, n := range b.Notes {
			s := ref + ": " + n
			if len(b.Faults) > 0 {
				s += "; the rehearsal injected " + strings.Join(b.Faults, " and ") + " here"
			}
			c.Differences = append(c.Differences, s)
		}
	}
	return c
}

// runSide sums up one run.
func runSide(r *Report) RunSide {
	s := RunSide{Outcome: r.Outcome, Batches: r.Totals.Batches, Committed: r.Totals.Committed,
		RolledBack: r.Totals.RolledBack, Held: r.Totals.Held, Restarts: r.Totals.Restarts}
	if !r.Ended.IsZero() && r.Ended.After(r.Started) {
		s.Took = r.Ended.Sub(r.Started)
	}
	for _, wt := range r.Waits {
		s.Waited += wt.took(r.Until)
	}
	return s
}

// digestCheck compares a digest of the run with the rehearsed one.
func digestCheck(night, rehearsed string) string {
	bare := func(d string) string { return strings.ToLower(strings.TrimPrefix(d, "sha256:")) }
	switch {
	case night == "" || rehearsed == "":
		return ""
	case bare(night) == bare(rehearsed):
		return DigestsMatch
	}
	return DigestsDiffer
}

// digestNotes names the files that are not the rehearsed ones, and those
// the run's report cannot tell about.
func (c *Comparison) digestNotes() {
	var differ, unknown []string
	for _, d := range []struct{ what, check string }{{"runbook", c.RunbookDigest}, {"inventory", c.InventoryDigest}} {
		switch d.check {
		case DigestsDiffer:
			differ = append(differ, d.what)
		case "":
			unknown = append(unknown, d.what)
		}
	}
	switch len(differ) {
	case 1:
		c.Differences = append(c.Differences, "the "+differ[0]+" differs from the rehearsed one")
	case 2:
		c.Differences = append(c.Differences, "the runbook and the inventory differ from the rehearsed ones")
	}
	switch len(unknown) {
	case 1:
		c.Differences = append(c.Differences, "the run's report has no "+unknown[0]+" digest: whether the rehearsed "+unknown[0]+" ran is not known")
	case 2:
		c.Differences = append(c.Differences, "the run's report has no runbook or inventory digest: whether the rehearsed files ran is not known")
	}
}

// sameBatches reports whether both runs have the same batches by index
// and name.
func sameBatches(a, b *Report) bool {
	if len(a.Batches) != len(b.Batches) {
		return false
	}
	for i := range a.Batches {
		if a.Batches[i].Name != b.Batches[i].Name {
			return false
		}
	}
	return true
}

// maxRenamed bounds the batches named in the sentence about the batch
// lists: a runbook cut into other batches renames nearly all of them.
const maxRenamed = 3

// batchListSentence says how the batch lists differ.
func batchListSentence(night, rh *Report) string {
	var parts []string
	if n, r := len(night.Batches), len(rh.Batches); n != r {
		parts = append(parts, fmt.Sprintf("%s tonight, %d at the rehearsal", words.Plural(n, "batch"), r))
	}
	var renamed []string
	for i := range min(len(night.Batches), len(rh.Batches)) {
		if a, b := night.Batches[i].Name, rh.Batches[i].Name; a != b {
			renamed = append(renamed, fmt.Sprintf("batch %d is %s tonight, %s at the rehearsal", i, a, b))
		}
	}
	if len(renamed) > maxRenamed {
		renamed = append(renamed[:maxRenamed], fmt.Sprintf("%d more renamed", len(renamed)-maxRenamed))
	}
	parts = append(parts, renamed...)
	return "the batches differ from the rehearsed ones (the runbook or inventory changed?): " + strings.Join(parts, "; ") + "; only batches of the same index and name are compared"
}

// runNotes names the differences of the runs as a whole.
func (c *Comparison) runNotes() {
	t, r := c.Tonight, *c.Rehearsal
	add := func(s string) { c.Differences = append(c.Differences, s) }
	if t.Outcome != r.Outcome {
		add(outcomeSentence(t.Outcome, r.Outcome))
	}
	if t.Committed != r.Committed {
		add(fmt.Sprintf("%d of %s committed tonight, %d of %d at the rehearsal", t.Committed, words.Plural(t.Batches, "batch"), r.Committed, r.Batches))
	}
	if t.RolledBack != r.RolledBack {
		add(countSentence("rolled back", t.RolledBack, r.RolledBack))
	}
	if t.Held != r.Held {
		add(countSentence("held (not ready at the target)", t.Held, r.Held))
	}
	if t.Took > 0 && r.Took > 0 {
		ta, ra := t.Took-t.Waited, r.Took-r.Waited
		if ta > 0 && ra > 0 && durationsDiffer(ta, ra) {
			add(fmt.Sprintf("the run took %s tonight, %s at the rehearsal (%s), not counting waits for people", engine.Human(ta), engine.Human(ra), ratio(ta, ra)))
		}
	}
	switch {
	case t.Restarts == r.Restarts:
	case t.Restarts == 0:
		add("the daemon did not restart tonight, restarted " + times(r.Restarts) + " at the rehearsal")
	default:
		add("the daemon " + timesSentence("restarted", t.Restarts, "", r.Restarts, ""))
	}
}

// outcomeSentence says how the runs ended differently.
func outcomeSentence(night, rehearsed engine.Outcome) string {
	if night == engine.OutcomeNone {
		return "the run is still under way tonight; the rehearsal ended " + outcomeWords(rehearsed)
	}
	return fmt.Sprintf("the run ended %s tonight, %s at the rehearsal", outcomeWords(night), outcomeWords(rehearsed))
}

func outcomeWords(o engine.Outcome) string {
	if o == engine.OutcomeNone {
		return "under way"
	}
	return string(o)
}

// compareBatch compares the batch of index i of both runs (nil: the run
// has none).
func (c *Comparison) compareBatch(i int, nb, rb *Batch) BatchCompared {
	bc := BatchCompared{Index: i}
	if nb != nil {
		bc.Tonight = batchSide(nb)
	}
	if rb != nil {
		bc.Rehearsal = batchSide(rb)
	}
	for _, f := range c.Faults {
		if f.Batch == i {
			bc.Faults = append(bc.Faults, f.Fault)
		}
	}
	t, r := bc.Tonight, bc.Rehearsal
	switch {
	case t == nil || r == nil || t.Name != r.Name:
		// Named once, in the sentence about the batch lists.
		return bc
	case t.Earlier && r.Earlier:
		return bc
	case t.Earlier:
		bc.Notes = []string{"at the target from an earlier run tonight, so not compared"}
		return bc
	case r.Earlier:
		bc.Notes = []string{"at the target from an earlier run at the rehearsal, so not compared"}
		return bc
	}
	bc.Compared = true
	bc.Notes = batchNotes(t, r)
	return bc
}

// batchNotes says what differed at one batch, most telling first: how it
// ended, its rollbacks, failed gates and readiness checks, gate rounds,
// retries or attempts, then its duration.
func batchNotes(t, r *BatchSide) []string {
	var notes []string
	add := func(format string, args ...any) { notes = append(notes, fmt.Sprintf(format, args...)) }
	ended := t.Phase != r.Phase
	if ended {
		add("%s tonight, %s at the rehearsal", t.phaseWords(), r.phaseWords())
	}
	switch {
	case t.Rollbacks != r.Rollbacks && !(ended && rollbackSaid(t, r)):
		add("%s", timesSentence("rolled back", t.Rollbacks, byWhom(t.RollbackBy), r.Rollbacks, byWhom(r.RollbackBy)))
	case t.Rollbacks == r.Rollbacks && t.Rollbacks > 0 && strings.Join(t.RollbackBy, ",") != strings.Join(r.RollbackBy, ","):
		add("rolled back by %s tonight, by %s at the rehearsal", byList(t.RollbackBy), byList(r.RollbackBy))
	}
	// A batch that never moved on one side (held, pending) has no gate
	// rounds or announces there: how it ended says so already.
	moved := t.Attempts > 0 && r.Attempts > 0
	if t.FailedRounds != r.FailedRounds {
		add("%s", failedSentence("gate round", t.FailedRounds, t.FirstFailure, r.FailedRounds, r.FirstFailure))
	} else if t.GateRounds != r.GateRounds && moved {
		add("%s tonight, %d at the rehearsal", words.Plural(t.GateRounds, "gate round"), r.GateRounds)
	}
	if t.NotReady != r.NotReady {
		add("%s", failedSentence("readiness check", t.NotReady, t.FirstNotReady, r.NotReady, r.FirstNotReady))
	}
	switch {
	case t.Retries != r.Retries:
		add("%s", timesSentence("retried", t.Retries, "", r.Retries, ""))
	case t.Attempts != r.Attempts && moved:
		add("%s", timesSentence("announced", t.Attempts, "", r.Attempts, ""))
	}
	if t.Took > 0 && r.Took > 0 && durationsDiffer(t.Took, r.Took) {
		add("took %s tonight, %s at the rehearsal (%s)", engine.Human(t.Took), engine.Human(r.Took), ratio(t.Took, r.Took))
	}
	return notes
}

// rollbackSaid reports whether the sentence about how the batch ended
// already says all there is about its rollbacks: one rollback, on the side
// that ended rolled back, none on the other.
func rollbackSaid(t, r *BatchSide) bool {
	one, none := t, r
	if r.Rollbacks > t.Rollbacks {
		one, none = r, t
	}
	return one.Rollbacks == 1 && none.Rollbacks == 0 && (one.Phase == engine.BatchRolledBack || one.Phase == engine.BatchRollingBack)
}

// failedSentence says how many rounds of what failed on each side, each
// with its first reason: "2 gate rounds failed tonight (probe: …), none
// at the rehearsal".
func failedSentence(what string, t int, tWhy string, r int, rWhy string) string {
	why := func(n int, s string) string {
		if n == 0 || s == "" {
			return ""
		}
		return " (" + s + ")"
	}
	if t == 0 {
		return fmt.Sprintf("no %s failed tonight, %d at the rehearsal%s", what, r, why(r, rWhy))
	}
	rs := "none"
	if r > 0 {
		rs = strconv.Itoa(r)
	}
	return fmt.Sprintf("%s failed tonight%s, %s at the rehearsal%s", words.Plural(t, what), why(t, tWhy), rs, why(r, rWhy))
}

// batchSide sums up one batch of one run.
func batchSide(b *Batch) *BatchSide {
	s := &BatchSide{Name: b.Name, Phase: b.Phase, Attempts: b.Attempts, Retries: len(b.Retries)}
	s.Earlier = b.Earlier && b.Started.IsZero() && len(b.Retries) == 0 && len(b.Gates) == 0
	s.Took = b.Try.total()
	for _, t := range b.Retries {
		s.Took += t.Try.total()
		if t.Phase == engine.BatchRolledBack {
			s.rolledBack(t.RollbackBy)
		}
	}
	if b.Phase == engine.BatchRolledBack || b.Phase == engine.BatchRollingBack {
		s.rolledBack(b.RollbackBy)
	}
	for _, g := range b.Gates {
		if g.Ready {
			s.ReadyChecks++
			if !g.Pass {
				s.NotReady++
				if s.FirstNotReady == "" {
					s.FirstNotReady = failedWhy(g)
				}
			}
			continue
		}
		s.GateRounds++
		if !g.Pass {
			s.FailedRounds++
			if s.FirstFailure == "" {
				s.FirstFailure = failedWhy(g)
			}
		}
	}
	return s
}

func (s *BatchSide) rolledBack(by string) {
	s.Rollbacks++
	if by == "" {
		by = "unknown"
	}
	s.RollbackBy = append(s.RollbackBy, by)
}

// failedWhy is the reason of a failed gate evaluation in one phrase.
func failedWhy(g GateRun) string {
	if s := engine.FailedGates(g.Verdicts); s != "" {
		return s
	}
	return "no reason journaled"
}

// phaseWords says how the batch ended: "committed", "rolled back by
// policy", "held (not ready at the target)".
func (s *BatchSide) phaseWords() string {
	switch s.Phase {
	case engine.BatchRolledBack, engine.BatchRollingBack:
		w := phaseWords(s.Phase)
		if n := len(s.RollbackBy); n > 0 && s.RollbackBy[n-1] != "unknown" {
			w += " by " + s.RollbackBy[n-1]
		}
		return w
	case engine.BatchHeld:
		return "held (not ready at the target)"
	case engine.BatchPending:
		return "not moved (pending)"
	case engine.BatchCommitted:
		if s.Earlier {
			return "committed by an earlier run"
		}
	}
	return string(s.Phase)
}

// ref names the batch in sentences: "batch 2 b02-hsyk".
func (bc BatchCompared) ref() string { return "batch " + bc.label() }

// durationsDiffer reports whether a and b differ by durationRule.
func durationsDiffer(a, b time.Duration) bool {
	lo, hi := min(a, b), max(a, b)
	return hi-lo > durationSlack && float64(hi) > durationRatio*float64(lo)
}

// ratio is tonight's duration over the rehearsal's: "3.4×", "0.29×".
func ratio(t, r time.Duration) string {
	x := float64(t) / float64(r)
	if x >= 1 {
		return strconv.FormatFloat(x, 'f', 1, 64) + "×"
	}
	return strconv.FormatFloat(x, 'f', 2, 64) + "×"
}

// times is "never", "once", "twice", "3 times".
func times(n int) string {
	switch n {
	case 0:
		return "never"
	case 1:
		return "once"
	case 2:
		return "twice"
	}
	return fmt.Sprintf("%d times", n)
}

// timesSentence says how often something happened on each side, each
// count with its detail: "rolled back twice (by policy, by alice)
// tonight, not at the rehearsal", "not retried tonight, retried once at
// the rehearsal".
func timesSentence(verb string, t int, tDetail string, r int, rDetail string) string {
	switch {
	case t == 0:
		return fmt.Sprintf("not %s tonight, %s %s%s at the rehearsal", verb, verb, times(r), rDetail)
	case r == 0:
		return fmt.Sprintf("%s %s%s tonight, not at the rehearsal", verb, times(t), tDetail)
	}
	return fmt.Sprintf("%s %s%s tonight, %s%s at the rehearsal", verb, times(t), tDetail, times(r), rDetail)
}

// byWhom is " (by policy, by alice)", or "" for nobody.
func byWhom(by []string) string {
	if len(by) == 0 {
		return ""
	}
	return " (by " + byList(by) + ")"
}

func byList(by []string) string { return strings.Join(by, ", by ") }

// countSentence says how many batches ended how on each side: "1 batch
// rolled back tonight, none at the rehearsal", "no batch held … tonight,
// 2 at the rehearsal".
func countSentence(how string, t, r int) string {
	if t == 0 {
		return fmt.Sprintf("no batch %s tonight, %d at the rehearsal", how, r)
	}
	rs := "none"
	if r > 0 {
		rs = strconv.Itoa(r)
	}
	return fmt.Sprintf("%s %s tonight, %s at the rehearsal", words.Plural(t, "batch"), how, rs)
}

// placeFaults places the faults the rehearsal injected at its batches.
// WHEN in KIND[:ARG][@WHEN] is read as the lab reads it: a batch index, a
// batch name, or "middle" (the default), the batch at half the list.
// Without faults as given, those the rehearsal's report lists at a batch
// ("batch 2") are taken.
func placeFaults(given []string, rh *Report) []InjectedFault {
	var names []string
	if rh != nil {
		for _, b := range rh.Batches {
			names = append(names, b.Name)
		}
	}
	if len(given) == 0 && rh != nil && rh.Rehearsal != nil {
		for _, f := range rh.Rehearsal.Faults {
			if n, ok := strings.CutPrefix(f.When, "batch "); ok {
				given = append(given, f.Fault+"@"+n)
			}
		}
	}
	var out []InjectedFault
	for _, g := range given {
		f := InjectedFault{Fault: g, Batch: faultBatch(g, names)}
		if f.Batch >= 0 {
			f.Name = names[f.Batch]
		}
		out = append(out, f)
	}
	return out
}

// faultBatch is the index of the batch fault was injected at; -1 when
// names does not say.
func faultBatch(fault string, names []string) int {
	_, when, _ := strings.Cut(fault, "@")
	if len(names) == 0 {
		return -1
	}
	if when == "" || when == "middle" {
		return len(names) / 2
	}
	if n, err := strconv.Atoi(when); err == nil {
		if n < 0 || n >= len(names) {
			return -1
		}
		return n
	}
	for i, name := range names {
		if name == when {
			return i
		}
	}
	return -1
}

// faultsLine lists the faults injected with their batches: "vm-down@2
// (batch 2 b02-hsyk), bgp-reset@x (batch not known)".
func (c *Comparison) faultsLine() string {
	var parts []string
	for _, f := range c.Faults {
		if f.Batch < 0 {
			parts = append(parts, f.Fault+" (batch not known)")
			continue
		}
		parts = append(parts, fmt.Sprintf("%s (batch %d %s)", f.Fault, f.Batch, f.Name))
	}
	return strings.Join(parts, ", ")
}

// The words and cells the renderings share.

// digestWords says whether a file is the rehearsed one.
func digestWords(check string) string {
	switch check {
	case DigestsMatch:
		return "the rehearsed one"
	case DigestsDiffer:
		return "differs from the rehearsed one"
	}
	return "not known (no digest in this report)"
}

// tookWords is how long a run took, with the part spent waiting for
// people.
func (s RunSide) tookWords() string {
	if s.Took == 0 {
		return "under way"
	}
	w := engine.Human(s.Took)
	if s.Waited > 0 {
		w += " (" + engine.Human(s.Waited) + " of it waiting for people)"
	}
	return w
}

// endedWords is how many batches ended how: "3 committed, 1 rolled back,
// 0 held of 4".
func (s RunSide) endedWords() string {
	return fmt.Sprintf("%d committed, %d rolled back, %d held of %d", s.Committed, s.RolledBack, s.Held, s.Batches)
}

// label names the row: "2 b02-hsyk", "3 b03-nlsh / b03-x" when the
// rehearsal's batch of this index has another name.
func (bc BatchCompared) label() string {
	t, r := bc.Tonight, bc.Rehearsal
	switch {
	case t == nil && r == nil:
		return strconv.Itoa(bc.Index)
	case t == nil:
		return fmt.Sprintf("%d %s", bc.Index, r.Name)
	case r == nil || r.Name == t.Name:
		return fmt.Sprintf("%d %s", bc.Index, t.Name)
	}
	return fmt.Sprintf("%d %s / %s", bc.Index, t.Name, r.Name)
}

// cell is how a batch ended in one run and how long it took: "committed
// in 4.2s"; "—" when the run has no such batch.
func (s *BatchSide) cell() string {
	if s == nil {
		return "—"
	}
	w := s.phaseWords()
	if s.Took > 0 {
		w += " in " + engine.Human(s.Took)
	}
	return w
}

// pair is "t/r" of a count of both sides, "–" for a side without the
// batch.
func (bc BatchCompared) pair(count func(*BatchSide) int) string {
	side := func(s *BatchSide) string {
		if s == nil {
			return "–"
		}
		return strconv.Itoa(count(s))
	}
	return side(bc.Tonight) + "/" + side(bc.Rehearsal)
}

// either reports whether count is non-zero on either side.
func (bc BatchCompared) either(count func(*BatchSide) int) bool {
	return bc.Tonight != nil && count(bc.Tonight) > 0 || bc.Rehearsal != nil && count(bc.Rehearsal) > 0
}

// gateCell is the gate rounds of both runs, with the readiness checks
// when there were any: "2/1 (ready 1/1)".
func (bc BatchCompared) gateCell() string {
	s := bc.pair(func(s *BatchSide) int { return s.GateRounds })
	if bc.either(func(s *BatchSide) int { return s.ReadyChecks }) {
		s += " (ready " + bc.pair(func(s *BatchSide) int { return s.ReadyChecks }) + ")"
	}
	return s
}

// failedCell is the failed gate rounds of both runs, with the readiness
// checks that failed when there were any: "2/0 (not ready 1/0)".
func (bc BatchCompared) failedCell() string {
	s := bc.pair(func(s *BatchSide) int { return s.FailedRounds })
	if bc.either(func(s *BatchSide) int { return s.NotReady }) {
		s += " (not ready " + bc.pair(func(s *BatchSide) int { return s.NotReady }) + ")"
	}
	return s
}

func (bc BatchCompared) rollbackCell() string {
	return bc.pair(func(s *BatchSide) int { return s.Rollbacks })
}

// note is what differed at the batch, or why it was not compared, and
// the faults the rehearsal injected here.
func (bc BatchCompared) note() string {
	notes := bc.Notes
	switch t, r := bc.Tonight, bc.Rehearsal; {
	case t == nil && r == nil:
	case t == nil:
		notes = []string{"not in tonight's run"}
	case r == nil:
		notes = []string{"not in the rehearsal"}
	case t.Name != r.Name:
		notes = []string{"another batch at the rehearsal: not compared"}
	}
	if len(bc.Faults) > 0 {
		notes = append(slices.Clone(notes), "the rehearsal injected "+strings.Join(bc.Faults, " and ")+" here")
	}
	return strings.Join(notes, "; ")
}
