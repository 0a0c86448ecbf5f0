package engine

import (
	"errors"
	"fmt"
)

// Folder folds journal entries into the state they describe, one at a
// time, and hands each entry's decoded record to its reader: the one
// decode and the one fold of the journal, for the engine (Fold) and for
// every reader of a run (Walk, the report). The zero Folder starts from
// no run (PhaseIdle).
type Folder struct {
	s     RunState
	ready bool
}

func (f *Folder) state() *RunState {
	if !f.ready {
		f.s, f.ready = RunState{Phase: PhaseIdle}, true
	}
	return &f.s
}

// Apply decodes e into its record, folds it into the state and returns
// the record. On an error (a payload that does not decode, an unknown
// record type, a batch that does not exist) the state stays as it was;
// the error names the record: "journal record 12: batch: no batch 7".
func (f *Folder) Apply(e JournalEntry) (Record, error) {
	rec, err := decode(e.Type, e.Data)
	if err == nil {
		err = f.state().fold(e.Type, e.Time, rec)
	}
	if err != nil {
		return nil, fmt.Errorf("journal record %d: %w", e.Seq, err)
	}
	return rec, nil
}

// State is the state after the entries applied so far. It is the
// folder's own: read it, but neither change it nor keep it past the next
// Apply (copy what you keep).
func (f *Folder) State() *RunState { return f.state() }

// Walk folds entries in order and calls fn, if not nil, after each with
// the entry, its decoded record and the state after it (the folder's own,
// as Folder.State). It returns the state after the last entry, or stops
// at the first error of the fold or of fn and returns it with the state
// before the entry that failed to fold. Unlike Fold it also stops at an
// audit record it cannot read: its reader wants the audit trail.
func Walk(entries []JournalEntry, fn func(e JournalEntry, rec Record, st *RunState) error) (RunState, error) {
	var f Folder
	for _, e := range entries {
		rec, err := f.Apply(e)
		if err != nil {
			return *f.State(), err
		}
		if fn != nil {
			if err := fn(e, rec, f.State()); err != nil {
				return *f.State(), err
			}
		}
	}
	return *f.State(), nil
}

// Fold replays journal entries into the state they describe. It goes on
// past an audit record whose payload does not decode: no state depends
// on it, and a daemon must recover its routes from such a journal.
func Fold(entries []JournalEntry) (RunState, error) {
	var f Folder
	for _, e := range entries {
		if _, err := f.Apply(e); err != nil && !errors.As(err, new(auditError)) {
			return *f.State(), err
		}
	}
	return *f.State(), nil
}
