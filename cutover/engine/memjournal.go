package engine

import (
	"encoding/json"
	"sync"
	"time"
)

// MemJournal is an in-memory Recorder for tests and dry runs.
type MemJournal struct {
	mu      sync.Mutex
	Now     func() time.Time
	entries []JournalEntry
}

// Record implements Recorder.
func (m *MemJournal) Record(typ string, v any) (time.Time, error) {
	return m.RecordAt(typ, v, time.Time{})
}

// RecordAt implements TimedRecorder: the record carries at (zero: now).
func (m *MemJournal) RecordAt(typ string, v any, at time.Time) (time.Time, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return time.Time{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := at
	if now.IsZero() {
		now = time.Now()
		if m.Now != nil {
			now = m.Now()
		}
	}
	now = now.Round(0) // as read back from JSON: no monotonic clock
	m.entries = append(m.entries, JournalEntry{Seq: uint64(len(m.entries) + 1), Time: now, Type: typ, Data: data})
	return now, nil
}

// Entries returns a copy of what was recorded.
func (m *MemJournal) Entries() []JournalEntry {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]JournalEntry(nil), m.entries...)
}
