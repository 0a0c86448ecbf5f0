package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// When the journal cannot be written (a full disk, a failing one), the
// emergency brake must still work. Records come in two kinds:
//
//   - a step forward (a run starts, a batch is announced, gated or
//     committed, a go/no-go is answered, a run resumes) is taken only once
//     its record is on disk: when the journal cannot take it, the step is
//     not taken, and a running run pauses;
//   - a stop (rollback, pause, abort, what a change already did to the
//     network, the daemon's notes) never waits for the journal: when the
//     journal cannot take its record, the engine acts anyway, holds the
//     record in memory and folds it into its state, and writes the held
//     records, in order and before any later record, as soon as the journal
//     takes them again (retrying with back-off, 1 s doubling to 1 min).
//
// While records are held or the journal's file system is full (it writes
// into the reserve kept for rollback, see SpaceReporter), the journal is
// unusable: Status says so, and the run takes no step forward.

// ErrJournalUnusable is the error of a step forward refused because the
// journal cannot be written.
var ErrJournalUnusable = errors.New("journal unusable")

// TimedRecorder is a Recorder that can write a record with the time it
// was made: a record held in memory while the journal could not be written
// then lands with the time of the event, not the time it was written.
type TimedRecorder interface {
	RecordAt(typ string, v any, at time.Time) (time.Time, error)
}

// SpaceReporter is a Recorder that keeps a reserve of disk space for the
// records of a rollback (the journal's reserve file).
type SpaceReporter interface {
	// Low says why the journal is short of room ("" when it is not): its
	// file system is full, and records go into the reserve. With refill it
	// first tries to allocate the reserve again.
	Low(refill bool) string
}

// Back-off of the journal's retries and of a stalled run.
const (
	retryMin = time.Second
	retryMax = time.Minute
)

// JournalStatus says whether the journal can be written. Its zero value:
// it can.
type JournalStatus struct {
	// Unusable is set while the journal takes no step of a run forward:
	// its writes fail (Error), or its file system is full (Full). The run
	// is paused; rollback still acts on the network at once.
	Unusable bool `json:"unusable,omitempty"`
	// Error is why the last write failed ("" once one succeeds).
	Error string `json:"error,omitempty"`
	// Full is why the journal is short of room: its file system is full,
	// and the journal writes into the reserve kept for rollback.
	Full string `json:"full,omitempty"`
	// Since is when the journal became unusable.
	Since time.Time `json:"since,omitzero"`
	// Held counts the records held in memory, not yet written: the state
	// includes them; they are written in order as soon as the journal
	// takes them (a daemon that stops before loses them).
	Held int `json:"held,omitempty"`
	// Retry is when the engine tries the journal again.
	Retry time.Time `json:"retry,omitzero"`
}

// heldRecord is a record the journal could not take yet.
type heldRecord struct {
	typ  string
	data []byte
	at   time.Time
}

// journalState is how the engine's journal stands. The engine's state is
// base (the fold of what was written) with the held records folded in.
type journalState struct {
	err     error     // why the last write failed; nil once one succeeds
	low     string    // SpaceReporter.Low, "" while there is room
	since   time.Time // when the journal became unusable
	held    []heldRecord
	base    RunState      // while records are held: the fold of the journal
	retryAt time.Time     // the next attempt (while held or low)
	gap     time.Duration // the wait after the attempt at retryAt
	tries   int           // attempts since it became unusable
}

func (j *journalState) unusable() bool { return j.err != nil || j.low != "" }

// blocked reports whether the run may take no step forward.
func (j *journalState) blocked() bool { return len(j.held) > 0 || j.low != "" }

// retrying reports whether the engine waits to try the journal again.
func (j *journalState) retrying() bool { return j.blocked() && !j.retryAt.IsZero() }

// record journals a step forward (see above) under the engine's lock.
func (e *Engine) record(typ string, v any) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.recordLocked(typ, v)
}

// recordLocked journals a step forward and folds it into the state: when
// the journal cannot take it, the step must not be taken. The caller holds
// e.mu.
func (e *Engine) recordLocked(typ string, v any) error { return e.writeLocked(typ, v, false) }

// stopLocked journals a stop and folds it into the state: when the journal
// cannot take it, it is held in memory until it can. The caller holds e.mu.
func (e *Engine) stopLocked(typ string, v any) error { return e.writeLocked(typ, v, true) }

func (e *Engine) writeLocked(typ string, v any, stop bool) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("journal %s: %w", typ, err)
	}
	if !stop {
		if err := e.forwardLocked(); err != nil {
			return fmt.Errorf("journal %s: %w", typ, err)
		}
	}
	if len(e.jn.held) > 0 {
		// Records wait: this one goes after them.
		return e.holdLocked(typ, data)
	}
	at, err := e.j.Record(typ, json.RawMessage(data))
	if err != nil {
		e.writeFailedLocked(err)
		if !stop {
			e.pauseForJournalLocked()
			return fmt.Errorf("journal %s: %w", typ, err)
		}
		return e.holdLocked(typ, data)
	}
	if err := e.st.apply(typ, at, data); err != nil {
		return fmt.Errorf("fold %s: %w", typ, err)
	}
	e.metrics.observe(&e.st, at)
	if e.jn.err != nil {
		e.jn.err = nil
		e.journalBackLocked(0)
	}
	return nil
}

// forwardLocked refuses a step forward while the journal is unusable.
func (e *Engine) forwardLocked() error {
	if len(e.jn.held) == 0 {
		if sr, ok := e.j.(SpaceReporter); ok {
			was := e.jn.low
			e.jn.low = sr.Low(was != "")
			switch {
			case was == "" && e.jn.low != "":
				e.becameUnusableLocked()
				e.logLimited(zerolog.ErrorLevel, "journal-full").Str("op", "journal").Str("reason", e.jn.low).
					Msg("the journal's file system is full: the run pauses and takes no step forward; rollback still works, its records go into the reserve")
				e.pauseForJournalLocked()
			case was != "" && e.jn.low == "":
				e.journalBackLocked(0)
			}
		}
	}
	if !e.jn.blocked() {
		return nil
	}
	return e.unusableErrorLocked()
}

// unusableErrorLocked says why the journal takes no step forward.
func (e *Engine) unusableErrorLocked() error {
	var why []string
	if e.jn.err != nil {
		why = append(why, fmt.Sprintf("writes fail since %s: %v", e.jn.since.UTC().Format(time.TimeOnly), e.jn.err))
	}
	if n := len(e.jn.held); n > 0 {
		why = append(why, fmt.Sprintf("%d records held in memory until it takes them", n))
	}
	if e.jn.low != "" {
		why = append(why, e.jn.low)
	}
	return fmt.Errorf("%w: %s: the run takes no step forward until the journal can be written; rollback and pause still work",
		ErrJournalUnusable, strings.Join(why, "; "))
}

// becameUnusableLocked starts the back-off when the journal has just
// become unusable.
func (e *Engine) becameUnusableLocked() {
	defer func() { e.metrics.observeJournal(e.journalStatusLocked()) }()
	if !e.jn.since.IsZero() {
		return
	}
	now := e.now()
	e.jn.since, e.jn.tries = now, 0
	e.jn.gap = retryMin
	e.jn.retryAt = now.Add(e.jn.gap)
	e.poke()
}

// writeFailedLocked notes a write the journal refused.
func (e *Engine) writeFailedLocked(err error) {
	first := !e.jn.unusable()
	e.jn.err = err
	e.becameUnusableLocked()
	if first {
		e.logLimited(zerolog.ErrorLevel, "journal-failed").Err(err).Str("op", "journal").
			Msg("the journal cannot be written: the run pauses and takes no step forward; rollback still acts on the network, and its records are held in memory until the journal takes them")
	}
}

// holdLocked holds a record the journal cannot take now and folds it into
// the state.
func (e *Engine) holdLocked(typ string, data []byte) error {
	at := e.now()
	if len(e.jn.held) == 0 {
		e.jn.base = e.st.clone()
	}
	if err := e.st.apply(typ, at, data); err != nil {
		if len(e.jn.held) == 0 {
			e.jn.base = RunState{}
		}
		return fmt.Errorf("fold %s: %w", typ, err)
	}
	e.jn.held = append(e.jn.held, heldRecord{typ: typ, data: data, at: at})
	e.metrics.observeState(&e.st, at)
	e.metrics.observeJournal(e.journalStatusLocked())
	return nil
}

// pauseForJournalLocked stops a run that the journal cannot follow: a
// running run pauses, a pre-check is aborted (a paused pre-check would
// resume without its baseline).
func (e *Engine) pauseForJournalLocked() {
	why := e.jn.low
	if e.jn.err != nil {
		why = e.jn.err.Error()
	}
	switch e.st.Phase {
	case PhaseRunning:
		pause := PhaseRecord{Phase: PhasePaused, Pause: "journal unusable: " + why}
		if err := e.stopLocked(RecPhase, pause); err == nil {
			e.eventOfLocked(-1, "pause", RecPhase, pause)
		}
	case PhasePrechecking:
		abort := PhaseRecord{Phase: PhaseAborted, Result: "pre-check failed: journal unusable: " + why}
		if err := e.stopLocked(RecPhase, abort); err == nil {
			e.eventOfLocked(-1, "precheck", RecPhase, abort)
		}
	}
}

// flushLocked writes the held records in order, as far as the journal
// takes them.
func (e *Engine) flushLocked() error {
	landed := 0
	defer func() {
		if landed == 0 {
			return
		}
		// The state is the fold of what was written and what is held.
		if len(e.jn.held) == 0 {
			e.st, e.jn.base = e.jn.base, RunState{}
			return
		}
		st := e.jn.base.clone()
		for _, h := range e.jn.held {
			_ = st.apply(h.typ, h.at, h.data) // it folded when it was held
		}
		e.st = st
	}()
	for len(e.jn.held) > 0 {
		h := e.jn.held[0]
		var (
			at  time.Time
			err error
		)
		if tr, ok := e.j.(TimedRecorder); ok {
			at, err = tr.RecordAt(h.typ, json.RawMessage(h.data), h.at)
		} else {
			at, err = e.j.Record(h.typ, json.RawMessage(h.data))
		}
		if err != nil {
			e.jn.err = err
			return err
		}
		if err := e.jn.base.apply(h.typ, at, h.data); err != nil {
			e.log.Error().Err(err).Str("op", "journal").Msg("a held record written to the journal does not fold")
		}
		e.jn.held = e.jn.held[1:]
		e.metrics.observe(&e.jn.base, at)
		landed++
	}
	e.jn.held = nil
	e.jn.err = nil
	return nil
}

// retryJournalLocked is the retry at jn.retryAt: write the held records,
// look for room, and back off further when the journal is still
// unusable.
func (e *Engine) retryJournalLocked() {
	e.jn.tries++
	held := len(e.jn.held)
	err := e.flushLocked()
	if err == nil {
		if sr, ok := e.j.(SpaceReporter); ok {
			e.jn.low = sr.Low(true)
		}
	}
	if !e.jn.blocked() {
		e.journalBackLocked(held)
		return
	}
	now := e.now()
	e.jn.gap = min(2*e.jn.gap, retryMax)
	e.jn.retryAt = now.Add(e.jn.gap)
	e.metrics.observeJournal(e.journalStatusLocked())
	ev := e.logLimited(zerolog.ErrorLevel, "journal-retry").Str("op", "journal").Int("attempt", e.jn.tries).
		Int("held", len(e.jn.held)).Dur("next", e.jn.gap)
	if err != nil {
		ev = ev.Err(err)
	}
	if e.jn.low != "" {
		ev = ev.Str("reason", e.jn.low)
	}
	ev.Msg("the journal is still unusable: the run takes no step forward; rollback still works")
}

// journalBackLocked notes that the journal is usable again after held
// records were written.
func (e *Engine) journalBackLocked(written int) {
	if e.jn.blocked() || e.jn.err != nil {
		return
	}
	since := e.jn.since
	e.jn = journalState{}
	e.metrics.observeJournal(JournalStatus{})
	if since.IsZero() {
		return
	}
	msg := fmt.Sprintf("the journal can be written again after %s", Human(e.now().Sub(since)))
	if written > 0 {
		msg += fmt.Sprintf(": the %d records held in memory are written", written)
	}
	if e.st.Phase == PhasePaused {
		msg += "; the run stays paused (cutover resume continues)"
	}
	e.eventLocked(-1, "journal", "%s", msg)
}

// journalStatusLocked is the journal's part of Status.
func (e *Engine) journalStatusLocked() JournalStatus {
	if !e.jn.unusable() && len(e.jn.held) == 0 {
		return JournalStatus{}
	}
	js := JournalStatus{Unusable: true, Full: e.jn.low, Since: e.jn.since, Held: len(e.jn.held)}
	if e.jn.err != nil {
		js.Error = e.jn.err.Error()
	}
	if e.jn.retrying() {
		js.Retry = e.jn.retryAt
	}
	return js
}

// Flush tries once to write the records held in memory (the daemon calls
// it when it stops). It returns an error when records are still held.
func (e *Engine) Flush() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := len(e.jn.held)
	if n == 0 {
		return nil
	}
	if err := e.flushLocked(); err != nil {
		types := make([]string, len(e.jn.held))
		for i, h := range e.jn.held {
			types[i] = h.typ
		}
		return fmt.Errorf("%d records held in memory could not be written (%s): %w", len(e.jn.held), strings.Join(types, ", "), err)
	}
	e.journalBackLocked(n)
	return nil
}

// limiter lets a log line through the first time, and while the same line
// repeats, once per gap, the gap doubling from 1 s to 1 min; the line then
// says how many were left out. A line not seen for a minute starts afresh.
type limiter struct {
	mu   sync.Mutex
	seen map[string]*limited
}

type limited struct {
	last    time.Time // seen last
	next    time.Time // let through again from then on
	gap     time.Duration
	dropped int
}

// allow reports whether the line key may be logged at now, and how many
// were left out before it.
func (l *limiter) allow(key string, now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen == nil {
		l.seen = map[string]*limited{}
	}
	s := l.seen[key]
	if s == nil || now.Sub(s.last) > retryMax {
		if len(l.seen) >= 256 {
			for k, v := range l.seen {
				if now.Sub(v.last) > retryMax {
					delete(l.seen, k)
				}
			}
		}
		l.seen[key] = &limited{last: now, next: now.Add(retryMin), gap: retryMin}
		return true, 0
	}
	s.last = now
	if now.Before(s.next) {
		s.dropped++
		return false, 0
	}
	n := s.dropped
	s.dropped = 0
	s.gap = min(2*s.gap, retryMax)
	s.next = now.Add(s.gap)
	return true, n
}

// logLimited returns the log event for a line that may repeat (key), or
// nil (on which zerolog does nothing) while the limiter holds it back.
func (e *Engine) logLimited(lvl zerolog.Level, key string) *zerolog.Event {
	ok, dropped := e.limit.allow(key, e.now())
	if !ok {
		return nil
	}
	ev := e.log.WithLevel(lvl)
	if dropped > 0 {
		ev = ev.Int("repeated", dropped)
	}
	return ev
}
