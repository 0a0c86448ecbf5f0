package evidence

import (
	"fmt"
	"strings"
	"time"
)

// Standing is what a store holds for one runbook's bytes: the green
// rehearsal they rest on or, when there is none, what comes nearest, so
// that a refusal at 23:00 can say which bytes differ from the ones that
// were rehearsed.
type Standing struct {
	// Dir is the store that was read.
	Dir string
	// Runbook is the runbook's name; RunbookDigest and InventoryDigest are
	// the bytes asked about.
	Runbook                        string
	RunbookDigest, InventoryDigest string
	// Green is the newest green rehearsal of exactly these bytes; nil:
	// none on record.
	Green *Record
	// Nearest is the newest green rehearsal of a runbook of this name
	// whose bytes differ; nil when Green is set or there is none.
	Nearest *Record
	// Failed is the newest rehearsal of exactly these bytes when it was
	// not green (a later green one makes it history); nil: none.
	Failed *Record
	// OfName counts the records of a runbook of this name, green or not,
	// whatever their bytes.
	OfName int
	// Unreadable are the files of the store that could not be read, one
	// line each: a record among them may be the missing one.
	Unreadable []string
}

// Lookup reads the store once and tells where these bytes of the runbook
// named runbook stand. A store that does not exist holds no record; an
// error is a store that could not be read.
func (s Store) Lookup(runbook, runbookDigest, inventoryDigest string) (*Standing, error) {
	all, bad, err := s.All()
	if err != nil {
		return nil, err
	}
	st := &Standing{Dir: s.Dir, Runbook: runbook, RunbookDigest: runbookDigest, InventoryDigest: inventoryDigest, Unreadable: bad}
	sameSeen := false // all is newest first: only the newest rehearsal of these bytes counts as failed
	for _, r := range all {
		same := r.Matches(runbookDigest, inventoryDigest)
		if same {
			if !sameSeen && !r.Green {
				st.Failed = r
			}
			sameSeen = true
			if r.Green && st.Green == nil {
				st.Green = r
			}
		}
		if r.Runbook != runbook {
			continue
		}
		st.OfName++
		if r.Green && !same && st.Nearest == nil {
			st.Nearest = r
		}
	}
	if st.Green != nil {
		st.Nearest, st.Failed = nil, nil
	}
	return st, nil
}

// Why says why no green rehearsal of exactly these bytes is on record:
// the last green rehearsal of the runbook and which of its digests differ
// ("last green rehearsal of helse-nord: 2026-12-01 22:10 UTC, its
// inventory differs: rehearsed sha256 ab12…, now cd34…"), or that there
// is none; then a failed rehearsal of these very bytes, and the records
// that could not be read. It is "" when Green is set.
func (st *Standing) Why() string {
	if st.Green != nil {
		return ""
	}
	var parts []string
	switch n := st.Nearest; {
	case n != nil:
		parts = append(parts, fmt.Sprintf("last green rehearsal of %s: %s, %s", st.Runbook, when(n.Rehearsed), st.differs(n)))
	case st.OfName > 0:
		// Any green one would be Green or Nearest: these all failed.
		parts = append(parts, fmt.Sprintf("no green rehearsal of %s on record (%d failed)", st.Runbook, st.OfName))
	default:
		parts = append(parts, fmt.Sprintf("no rehearsal of %s on record", st.Runbook))
	}
	if f := st.Failed; f != nil {
		why := "outcome " + string(f.Outcome)
		if len(f.Problems) > 0 {
			why = f.Problems[0]
		}
		parts = append(parts, fmt.Sprintf("the rehearsal of these bytes on %s failed: %s", when(f.Rehearsed), why))
	}
	switch n := len(st.Unreadable); {
	case n == 1:
		parts = append(parts, fmt.Sprintf("1 record could not be read (%s)", st.Unreadable[0]))
	case n > 1:
		parts = append(parts, fmt.Sprintf("%d records could not be read (the first: %s)", n, st.Unreadable[0]))
	}
	return strings.Join(parts, "; ")
}

// differs names which digests of r differ from the ones asked about, each
// with both short digests.
func (st *Standing) differs(r *Record) string {
	rb, inv := r.RunbookDigest != st.RunbookDigest, r.InventoryDigest != st.InventoryDigest
	switch {
	case rb && inv:
		return fmt.Sprintf("its runbook and inventory differ: runbook rehearsed sha256 %s, now %s; inventory rehearsed sha256 %s, now %s",
			Short(r.RunbookDigest), Short(st.RunbookDigest), Short(r.InventoryDigest), Short(st.InventoryDigest))
	case rb:
		return fmt.Sprintf("its runbook differs: rehearsed sha256 %s, now %s", Short(r.RunbookDigest), Short(st.RunbookDigest))
	default:
		return fmt.Sprintf("its inventory differs: rehearsed sha256 %s, now %s", Short(r.InventoryDigest), Short(st.InventoryDigest))
	}
}

// Short is a digest as people compare it: its first 12 hex digits (as in
// the store's file names) and an ellipsis.
func Short(digest string) string {
	if len(digest) > 12 {
		return digest[:12] + "…"
	}
	return digest
}

// when is a rehearsal's time as Record.String writes it.
func when(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 MST") }
