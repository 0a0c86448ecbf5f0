// Package evidence keeps what a lab rehearsal proved: which bytes of a
// runbook and its inventory were rehearsed, how the run ended, with which
// faults, and the rehearsed run's report, batch by batch. A Store is a
// directory of records; the night's run asks it for the last green
// rehearsal of exactly its bytes (runbook.require_rehearsal), the plan reads
// the rehearsal's batch timings for the tenants' schedules, and the report
// puts the night beside its rehearsal.
package evidence

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cutover/cutover/cutover/report"
)

// Version is the record format's version; a record of another version is
// refused, not guessed at.
const Version = 1

// DefaultDir is where rehearsals leave their records and where run, plan
// and the daemon look for them, unless told otherwise.
const DefaultDir = "/var/lib/cutover/rehearsals"

// MaxRecordSize bounds a record file read from a store or given on the
// command line: a 50,000-VM rehearsal's report is a few MiB.
const MaxRecordSize = 64 << 20

// Record is one rehearsal of one runbook (one step of a chained drill is
// one record).
type Record struct {
	Version int `json:"version"`
	// RehearsalRecord is what the record says of the rehearsal beside its
	// report: which bytes (the digests require_rehearsal compares), when
	// and how long (lab up, run, checks), green (the run ended as the
	// runbook's policies promise; a rehearsal that found a problem is
	// kept too, but never satisfies require_rehearsal), the outcome after
	// any --retry, and the faults as given to --inject. Its fields are
	// the record's own in JSON.
	report.RehearsalRecord
	// Host is the machine the lab ran on.
	Host string `json:"host,omitempty"`
	// Edges are the lab's edge flavours, one per bgp.peers entry.
	Edges []string `json:"edges,omitempty"`
	// Problems are what the rehearsal found wrong (empty when Green).
	Problems []string `json:"problems,omitempty"`
	// Report is the rehearsed run's report, built from its journal: its
	// batches' timelines, gate rounds and rollbacks.
	Report *report.Report `json:"report,omitempty"`
}

// Matches reports whether r rehearsed exactly these bytes.
func (r *Record) Matches(runbookDigest, inventoryDigest string) bool {
	return r.RunbookDigest == runbookDigest && r.InventoryDigest == inventoryDigest
}

// check refuses a record that cannot be what a rehearsal wrote.
func (r *Record) check() error {
	switch {
	case r.Version != Version:
		return fmt.Errorf("record version %d: this cutover reads version %d", r.Version, Version)
	case !isDigest(r.RunbookDigest):
		return fmt.Errorf("runbook_digest %q: want 64 hex digits", r.RunbookDigest)
	case !isDigest(r.InventoryDigest):
		return fmt.Errorf("inventory_digest %q: want 64 hex digits", r.InventoryDigest)
	case r.Runbook == "":
		return errors.New("runbook: missing")
	case r.Rehearsed.IsZero():
		return errors.New("rehearsed: missing")
	}
	return nil
}

func isDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Decode reads a record strictly: unknown fields and trailing data are
// errors, and so is a record that fails its checks.
func Decode(data []byte) (*Record, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var r Record
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("decode rehearsal record: %w", err)
	}
	if dec.More() {
		return nil, errors.New("decode rehearsal record: data after the record")
	}
	if err := r.check(); err != nil {
		return nil, fmt.Errorf("rehearsal record: %w", err)
	}
	return &r, nil
}

// Load reads the record in file.
func Load(file string) (*Record, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", file)
	}
	if st.Size() > MaxRecordSize {
		return nil, fmt.Errorf("%s: %d bytes, more than a rehearsal record may hold (%d)", file, st.Size(), MaxRecordSize)
	}
	data := make([]byte, st.Size())
	if _, err := f.ReadAt(data, 0); err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	r, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return r, nil
}

// Store is a directory of records, one file each.
type Store struct {
	Dir string
}

// FileName is the name Write gives r: when, and which bytes.
func FileName(r *Record) string {
	return fmt.Sprintf("%s-%s-%s.json", r.Rehearsed.UTC().Format("20060102T150405.000Z"), r.RunbookDigest[:12], r.InventoryDigest[:12])
}

// Write adds r to the store (creating its directory, mode 0755: the
// records hold no secret, and operators who are not root read them) and
// returns the file's path. The file is written whole or not at all.
func (s Store) Write(r *Record) (string, error) {
	if r.Version == 0 {
		r.Version = Version
	}
	if err := r.check(); err != nil {
		return "", fmt.Errorf("rehearsal record: %w", err)
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	data = append(data, '\n')
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return "", fmt.Errorf("rehearsal records: %w", err)
	}
	file := filepath.Join(s.Dir, FileName(r))
	tmp, err := os.CreateTemp(s.Dir, ".record-*")
	if err != nil {
		return "", fmt.Errorf("rehearsal records: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return "", fmt.Errorf("write %s: %w", file, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", fmt.Errorf("write %s: %w", file, err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("write %s: %w", file, err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return "", fmt.Errorf("write %s: %w", file, err)
	}
	return file, nil
}

// All returns the store's records, newest first, with the files that could
// not be read as problems (one line each). A store that does not exist
// holds no record.
func (s Store) All() ([]*Record, []string, error) {
	ents, err := os.ReadDir(s.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("rehearsal records: %w", err)
	}
	var out []*Record
	var bad []string
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		r, err := Load(filepath.Join(s.Dir, e.Name()))
		if err != nil {
			bad = append(bad, err.Error())
			continue
		}
		out = append(out, r)
	}
	slices.SortStableFunc(out, func(a, b *Record) int { return b.Rehearsed.Compare(a.Rehearsed) })
	return out, bad, nil
}

// Differs names which of the two digests differ from r's: "runbook",
// "inventory", "runbook and inventory", or "" when r matches.
func (r *Record) Differs(runbookDigest, inventoryDigest string) string {
	var d []string
	if r.RunbookDigest != runbookDigest {
		d = append(d, "runbook")
	}
	if r.InventoryDigest != inventoryDigest {
		d = append(d, "inventory")
	}
	return strings.Join(d, " and ")
}
