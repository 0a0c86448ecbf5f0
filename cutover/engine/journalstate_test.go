package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/bgp"
)

var t0 = time.Date(2026, 3, 14, 23, 0, 0, 0, time.UTC)

// errNoSpace is what a write to a full disk returns.
var errNoSpace = &fs.PathError{Op: "write", Path: "/var/lib/cutover/journal", Err: syscall.ENOSPC}

const noSpace = "write /var/lib/cutover/journal: no space left on device"

// fakeClock is the engine's clock and timers in simulated time: time
// stands still until the test advances it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	last   *fakeTimer // the timer asked for last: the one the Loop waits on
}

type fakeTimer struct {
	at    time.Time
	ch    chan time.Time
	fired bool
}

func newFakeClock(at time.Time) *fakeClock { return &fakeClock{now: at} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), ch: make(chan time.Time, 1)}
	c.last = t
	if d <= 0 {
		t.fired = true
		t.ch <- c.now
		return t.ch
	}
	c.timers = append(c.timers, t)
	return t.ch
}

// advance moves the clock on to at and fires the timers due.
func (c *fakeClock) advance(at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if at.After(c.now) {
		c.now = at
	}
	keep := c.timers[:0]
	for _, t := range c.timers {
		if t.at.After(c.now) {
			keep = append(keep, t)
			continue
		}
		t.fired = true
		t.ch <- c.now
	}
	c.timers = keep
}

// waiting waits until the Loop waits on a timer and returns when it
// fires.
func (c *fakeClock) waiting(t *testing.T) time.Time {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		if c.last != nil && !c.last.fired {
			at := c.last.at
			c.mu.Unlock()
			return at
		}
		c.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatal("the engine waits on no timer")
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// flakyJournal is a MemJournal on a disk that fails on demand: every
// write fails with err while it is set, and Low says low.
type flakyJournal struct {
	*MemJournal
	mu     sync.Mutex
	err    error
	low    string
	writes int
}

func (f *flakyJournal) failWith(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *flakyJournal) setLow(low string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.low = low
}

func (f *flakyJournal) Record(typ string, v any) (time.Time, error) {
	return f.RecordAt(typ, v, time.Time{})
}

func (f *flakyJournal) RecordAt(typ string, v any, at time.Time) (time.Time, error) {
	f.mu.Lock()
	f.writes++
	err := f.err
	f.mu.Unlock()
	if err != nil {
		return time.Time{}, err
	}
	return f.MemJournal.RecordAt(typ, v, at)
}

func (f *flakyJournal) Low(bool) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.low
}

// logLines is a log writer that keeps the lines.
type logLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logLines) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Split(strings.TrimSuffix(l.buf.String(), "\n"), "\n")
}

// count counts the lines that contain s.
func (l *logLines) count(s string) int {
	n := 0
	for _, line := range l.lines() {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}

// newFlakyHarness is a harness whose journal fails on demand, in
// simulated time, with its log kept.
func newFlakyHarness(t *testing.T, n int, policy FailurePolicy, setup func(h *harness)) (*harness, *flakyJournal, *fakeClock, *logLines) {
	t.Helper()
	clock := newFakeClock(t0)
	fj := &flakyJournal{MemJournal: &MemJournal{Now: clock.Now}}
	logs := &logLines{}
	h := newHarnessWith(t, n, policy, func(h *harness) {
		h.j, h.rec, h.clock, h.logw = fj.MemJournal, fj, clock, logs
		if setup != nil {
			setup(h)
		}
	})
	return h, fj, clock, logs
}

func (h *harness) waitStatus(what string, ok func(Status) bool) Status {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := h.e.Status(0)
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s; journal %+v state %+v", what, st.Journal, st.State)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// advanceUntil moves simulated time on, a second at a time, until ok
// holds: for a test in which the Loop may be poked while it waits, so that
// the timer it waits on is not known.
func (h *harness) advanceUntil(clock *fakeClock, what string, ok func(Status) bool) Status {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if st := h.e.Status(0); ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s at %s: journal %+v", what, clock.Now(), h.e.Status(0).Journal)
		}
		clock.advance(clock.Now().Add(time.Second))
		time.Sleep(time.Millisecond)
	}
}

func entryTypes(es []JournalEntry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Type)
	}
	return out
}

func hasEvent(st Status, msg string) bool {
	return slices.ContainsFunc(st.Events, func(e Event) bool { return e.Msg == msg })
}

// TestEngineRollbackWhileJournalFails: with the journal failing, rollback
// --all moves the speaker and the dataplane back at once; its records are
// held in memory, the status says so, no step forward is taken; once the
// journal takes writes again the records land in order, with the time they
// were made, and the fold of the journal is the engine's state.
func TestEngineRollbackWhileJournalFails(t *testing.T) {
	h, fj, clock, logs := newFlakyHarness(t, 4, RollbackBatch, func(h *harness) { h.block[2] = true })
	if err := h.e.Start(h.spec, "nina", false); err != nil {
		t.Fatal(err)
	}
	h.wait("batch 2 gating", func(s RunState) bool { return len(s.Batches) > 2 && s.Batches[2].Phase == BatchGating })
	written := len(h.j.Entries())
	fj.failWith(errNoSpace)

	if err := h.e.Rollback(context.Background(), AllBatches(), "nina"); err != nil {
		t.Fatalf("rollback --all with a failing journal: %v", err)
	}
	if got := announcedPrefixes(h.sp); len(got) != 0 {
		t.Errorf("after rollback --all the speaker still announces %v", got)
	}
	if sets := h.dp.moved(); len(sets) == 0 || len(sets[len(sets)-1]) != 0 {
		t.Errorf("the dataplane was not emptied: applies %v", sets)
	}
	// The Loop tried the journal once more right after the rollback and
	// now waits 2 s for the next try.
	retry := clock.waiting(t)
	st := h.e.Status(0)
	want := JournalStatus{Unusable: true, Error: noSpace, Since: t0, Held: 10, Retry: t0.Add(2 * time.Second)}
	if !reflect.DeepEqual(st.Journal, want) || !retry.Equal(want.Retry) {
		t.Fatalf("journal status %+v (timer at %s)\nwant %+v", st.Journal, retry, want)
	}
	if st.State.Phase != PhaseAborted || len(st.State.Applied) != 0 || !slices.Equal(phases(st.State),
		[]BatchPhase{BatchRolledBack, BatchRolledBack, BatchRolledBack, BatchPending}) {
		t.Fatalf("state after rollback: phase %s applied %v batches %v", st.State.Phase, st.State.Applied, phases(st.State))
	}
	if n := len(h.j.Entries()); n != written {
		t.Fatalf("%d records reached the failing journal", n-written)
	}
	// No step forward while records are held.
	err := h.e.Start(h.spec, "ola", false)
	wantErr := "journal run-start: journal unusable: writes fail since 23:00:00: " + noSpace +
		"; 10 records held in memory until it takes them: the run takes no step forward until the journal can be written; rollback and pause still work"
	if !errors.Is(err, ErrJournalUnusable) || err.Error() != wantErr {
		t.Fatalf("Start with records held:\n got %v\nwant %s", err, wantErr)
	}

	// The disk has room again: the next try writes the held records.
	fj.failWith(nil)
	clock.advance(retry)
	st = h.waitStatus("the held records written", func(s Status) bool { return s.Journal == (JournalStatus{}) })
	landed := h.j.Entries()[written:]
	wantTypes := []string{RecOperator, RecBatch, RecBatch, RecBatch, RecIntent, RecApplied, RecBatch, RecBatch, RecBatch, RecPhase}
	if got := entryTypes(landed); !slices.Equal(got, wantTypes) {
		t.Fatalf("records written after the journal came back: %v, want %v", got, wantTypes)
	}
	for _, e := range landed {
		if !e.Time.Equal(t0) {
			t.Errorf("record %d %s carries %s, not the time it was made (%s)", e.Seq, e.Type, e.Time, t0)
		}
	}
	h.checkFold()
	if !hasEvent(st, "the journal can be written again after 2s: the 10 records held in memory are written") {
		t.Errorf("no event for the journal coming back: %+v", st.Events)
	}
	if n := logs.count("the journal cannot be written"); n != 1 {
		t.Errorf("the journal's failure was logged %d times, want once", n)
	}
	// Steps forward are taken again.
	if err := h.e.Start(h.spec, "ola", false); err != nil {
		t.Fatalf("Start after the journal came back: %v", err)
	}
}

// retrySchedule is when the engine tries a failing journal within d after
// it failed: after 1 s, then after 2, 4, ... s, at most 1 min apart.
func retrySchedule(d time.Duration) []time.Duration {
	var out []time.Duration
	at, gap := retryMin, retryMin
	for at <= d {
		out = append(out, at)
		gap = min(2*gap, retryMax)
		at += gap
	}
	return out
}

// TestEngineStallsQuietly is the full state directory of the issue: the
// journal fails while a batch is under way. The batch is not committed,
// the run pauses at once, and over a simulated hour the engine neither
// tries the batch again nor logs more than one line per retry of the
// journal (backing off from 1 s to 1 min).
func TestEngineStallsQuietly(t *testing.T) {
	release := make(chan struct{})
	h, fj, clock, logs := newFlakyHarness(t, 3, RollbackBatch, func(h *harness) { h.release[1] = release })
	if err := h.e.Start(h.spec, "nina", false); err != nil {
		t.Fatal(err)
	}
	h.wait("batch 1 gating", func(s RunState) bool { return len(s.Batches) > 1 && s.Batches[1].Phase == BatchGating })
	fj.failWith(errNoSpace)
	sets, lines := len(h.sp.Calls()), len(logs.lines())
	h.mu.Lock()
	gated := len(h.gated)
	h.mu.Unlock()
	close(release) // the gate passes: its verdict is the first record the journal refuses

	st := h.waitStatus("the run paused", func(s Status) bool { return s.State.Phase == PhasePaused })
	if want := "journal unusable: " + noSpace; st.State.Pause != want {
		t.Errorf("pause %q, want %q", st.State.Pause, want)
	}
	if b := st.State.Batches[1]; b.Phase != BatchGating || !slices.Equal(st.State.Applied, []int{0, 1}) {
		t.Errorf("batch 1 %s, applied %v: want it gating (not committed without its record), applied [0 1]", b.Phase, st.State.Applied)
	}
	if want := (JournalStatus{Unusable: true, Error: noSpace, Since: t0, Held: 1, Retry: t0.Add(time.Second)}); st.Journal != want {
		t.Errorf("journal status %+v\nwant %+v", st.Journal, want)
	}

	// An hour in simulated time.
	tries := 0
	for {
		at := clock.waiting(t)
		if at.After(t0.Add(time.Hour)) {
			break
		}
		clock.advance(at)
		tries++
	}
	schedule := retrySchedule(time.Hour)
	if tries != len(schedule) {
		t.Errorf("%d tries of the journal in an hour, want %d (%v)", tries, len(schedule), schedule)
	}
	st = h.e.Status(0)
	if st.Journal.Held != 1 || !st.Journal.Retry.Equal(t0.Add(schedule[len(schedule)-1]+retryMax)) {
		t.Errorf("journal status after an hour: %+v", st.Journal)
	}
	if n := len(h.sp.Calls()); n != sets {
		t.Errorf("%d BGP changes while the journal failed, want none", n-sets)
	}
	h.mu.Lock()
	if n := len(h.gated); n != gated {
		t.Errorf("%d gate runs while the journal failed, want none", n-gated)
	}
	h.mu.Unlock()
	// What was logged: the failure, the pause, the stall (an event and an
	// error), then one line per try.
	logged := logs.lines()[lines:]
	if want := 4 + tries; len(logged) != want {
		t.Errorf("%d log lines over the hour, want %d:\n%s", len(logged), want, strings.Join(logged, "\n"))
	}
	t.Logf("an hour of a failing journal: %d tries, %d log lines", tries, len(logged))

	// Room again: the pause lands; the run stays paused until resumed,
	// then gates batch 1 again and goes on to the end.
	fj.failWith(nil)
	clock.advance(clock.waiting(t))
	h.waitStatus("the journal back", func(s Status) bool { return s.Journal == (JournalStatus{}) })
	if st := h.e.Status(0).State; st.Phase != PhasePaused {
		t.Fatalf("after the journal came back the run is %s, want paused", st.Phase)
	}
	h.checkFold()
	if err := h.e.Resume("nina"); err != nil {
		t.Fatal(err)
	}
	end := h.wait("done", ended)
	if !slices.Equal(phases(end), []BatchPhase{BatchCommitted, BatchCommitted, BatchCommitted}) || end.Batches[1].Attempts != 2 {
		t.Errorf("end: %v, batch 1 attempts %d", phases(end), end.Batches[1].Attempts)
	}
	h.checkFold()
}

// TestEngineJournalFull: the journal's file system is full (the journal
// writes into its reserve). The run pauses before the next record of the
// batch under way, steps forward are refused, and rollback writes its
// records at once; when the reserve is back, the run resumes.
func TestEngineJournalFull(t *testing.T) {
	release := make(chan struct{})
	h, fj, clock, _ := newFlakyHarness(t, 3, RollbackBatch, func(h *harness) { h.release[1] = release })
	if err := h.e.Start(h.spec, "nina", false); err != nil {
		t.Fatal(err)
	}
	h.wait("batch 1 gating", func(s RunState) bool { return len(s.Batches) > 1 && s.Batches[1].Phase == BatchGating })
	const full = "the file system of /var/lib/cutover is full: the journal writes into its reserve (12 KiB of 20 KiB left)"
	fj.setLow(full)
	close(release)
	st := h.waitStatus("the run paused", func(s Status) bool { return s.State.Phase == PhasePaused })
	if st.State.Pause != "journal unusable: "+full || st.State.Batches[1].Phase != BatchGating {
		t.Errorf("pause %q, batch 1 %s", st.State.Pause, st.State.Batches[1].Phase)
	}
	if want := (JournalStatus{Unusable: true, Full: full, Since: t0, Retry: t0.Add(time.Second)}); st.Journal != want {
		t.Errorf("journal status %+v\nwant %+v", st.Journal, want)
	}
	if err := h.e.Resume("nina"); !errors.Is(err, ErrJournalUnusable) {
		t.Errorf("Resume with the file system full: %v", err)
	}
	written := len(h.j.Entries())
	if err := h.e.Rollback(context.Background(), OnlyBatch(1), "nina"); err != nil {
		t.Fatal(err)
	}
	if got := announcedPrefixes(h.sp); !slices.Equal(got, []string{batchPrefix(0).String()}) {
		t.Errorf("announced %v after rollback --batch 1", got)
	}
	if n := len(h.j.Entries()) - written; n != 5 || h.e.Status(0).Journal.Held != 0 {
		t.Errorf("rollback wrote %d records (held %d), want 5 written", n, h.e.Status(0).Journal.Held)
	}
	h.checkFold()

	fj.setLow("")
	st = h.advanceUntil(clock, "room again", func(s Status) bool { return s.Journal == (JournalStatus{}) })
	if !slices.ContainsFunc(st.Events, func(e Event) bool {
		return strings.HasPrefix(e.Msg, "the journal can be written again after ") && strings.HasSuffix(e.Msg, "s; the run stays paused (cutover resume continues)")
	}) {
		t.Errorf("no event for the room found: %+v", st.Events)
	}
	if err := h.e.Resume("nina"); err != nil {
		t.Fatal(err)
	}
	end := h.wait("done", ended)
	if !slices.Equal(phases(end), []BatchPhase{BatchCommitted, BatchRolledBack, BatchCommitted}) {
		t.Errorf("end: %v", phases(end))
	}
	h.checkFold()
}

// TestEngineRecoversWithoutJournal: a restart on a disk that takes no
// write re-applies the journaled state, pauses the interrupted run,
// refuses to resume it, and rolls back.
func TestEngineRecoversWithoutJournal(t *testing.T) {
	h, fj, clock, _ := newFlakyHarness(t, 3, RollbackBatch, func(h *harness) { h.block[2] = true })
	if err := h.e.Start(h.spec, "nina", false); err != nil {
		t.Fatal(err)
	}
	h.wait("batch 2 gating", func(s RunState) bool { return len(s.Batches) > 2 && s.Batches[2].Phase == BatchGating })
	h.stop() // the crash
	st, err := Fold(h.j.Entries())
	if err != nil {
		t.Fatal(err)
	}
	written := len(h.j.Entries())
	fj.failWith(errNoSpace)
	h.sp = bgp.NewFake(bgp.Limits{Allowed: []netip.Prefix{netip.MustParsePrefix("10.64.0.0/14")}, MaxPrefixes: 1000})
	h.start(st)
	if err := h.e.Attach(h.spec); err != nil {
		t.Fatal(err)
	}
	if err := h.e.Recover(context.Background()); err != nil {
		t.Fatalf("Recover with a journal that takes no write: %v", err)
	}
	if got := announcedPrefixes(h.sp); len(got) != 3 {
		t.Fatalf("re-announced %v, want batches 0 to 2", got)
	}
	s := h.e.Status(0)
	if s.State.Phase != PhasePaused || s.State.Pause != "interrupted" || s.Journal.Held != 3 || !s.Journal.Unusable {
		t.Fatalf("after recovery: phase %s pause %q journal %+v", s.State.Phase, s.State.Pause, s.Journal)
	}
	if err := h.e.Resume("nina"); !errors.Is(err, ErrJournalUnusable) {
		t.Fatalf("Resume: %v", err)
	}
	if err := h.e.Rollback(context.Background(), AllBatches(), "nina"); err != nil {
		t.Fatal(err)
	}
	if got := announcedPrefixes(h.sp); len(got) != 0 {
		t.Fatalf("after rollback --all: %v", got)
	}
	if n := h.e.Status(0).Journal.Held; n != 13 {
		t.Errorf("%d records held, want 13 (recovery 3, rollback 10)", n)
	}
	fj.failWith(nil)
	h.advanceUntil(clock, "the held records written", func(s Status) bool { return s.Journal == (JournalStatus{}) })
	if n := len(h.j.Entries()) - written; n != 13 {
		t.Errorf("%d records written after the journal came back, want 13", n)
	}
	h.checkFold()
}

// TestLimiter: a line repeated every 10 ms for an hour is let through
// once per back-off step, and says how many it left out.
func TestLimiter(t *testing.T) {
	var l limiter
	now := t0
	const every, total = 10 * time.Millisecond, 360_000
	allowed, dropped := 0, 0
	for range total {
		ok, n := l.allow("batch 6 stalled", now)
		if ok {
			allowed++
			dropped += n
		}
		now = now.Add(every)
	}
	if want := len(retrySchedule(time.Hour)) + 1; allowed != want {
		t.Errorf("%d lines of %d let through, want %d", allowed, total, want)
	}
	// The lines left out since the last one let through (at most a
	// minute's) are told with the next.
	if allowed+dropped < total-int(time.Minute/every) {
		t.Errorf("the lines let through account for %d repeats, want about %d", allowed+dropped, total)
	}
	// Another line is not held back by the first; a line quiet for more
	// than a minute starts afresh.
	if ok, _ := l.allow("another", now); !ok {
		t.Error("another line was held back")
	}
	if ok, n := l.allow("batch 6 stalled", now.Add(2*time.Minute)); !ok || n != 0 {
		t.Errorf("a line quiet for 2 min: %v, %d", ok, n)
	}
}

// TestStallBacksOff: each stall in a row pushes the next try of the batch
// further out, 1 s doubling to 1 min, and logs its error with the same
// back-off.
func TestStallBacksOff(t *testing.T) {
	clock := newFakeClock(t0)
	logs := &logLines{}
	h := newHarnessWith(t, 2, RollbackBatch, func(h *harness) { h.clock, h.logw = clock, logs })
	boom := errors.New("nft: netlink: device or resource busy")
	var gaps []time.Duration
	for range 10 {
		h.e.stall(1, boom)
		h.e.mu.Lock()
		gaps = append(gaps, h.e.stallUntil.Sub(clock.Now()))
		h.e.mu.Unlock()
		clock.advance(clock.Now().Add(time.Second))
	}
	want := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60, 60, 60}
	for i := range want {
		want[i] *= time.Second
	}
	if !slices.Equal(gaps, want) {
		t.Errorf("stall back-off %v, want %v", gaps, want)
	}
	// Ten stalls 1 s apart: the error line is let through at 0, 1, 3, 7 s.
	if n := logs.count(`"op":"stall"`); n != 4 {
		t.Errorf("%d stall lines logged, want 4:\n%s", n, strings.Join(logs.lines(), "\n"))
	}
	var last map[string]any
	for _, line := range logs.lines() {
		if strings.Contains(line, `"op":"stall"`) {
			_ = json.Unmarshal([]byte(line), &last)
		}
	}
	if last["repeated"] != float64(3) {
		t.Errorf("the last stall line says repeated %v, want 3", last["repeated"])
	}
}
