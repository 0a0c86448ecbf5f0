package evidence

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// WriteFile writes r to file as Store.Write writes a record (checked,
// indented JSON, mode 0644), whole or not at all: the copy a rehearsal
// leaves beside its report (evidence.json), which Load reads back. The
// file's directory must exist.
func WriteFile(file string, r *Record) error {
	if r.Version == 0 {
		r.Version = Version
	}
	if err := r.check(); err != nil {
		return fmt.Errorf("rehearsal record: %w", err)
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode rehearsal record: %w", err)
	}
	data = append(data, '\n')
	// A temporary file renamed over file: a reader never sees half a
	// record, and an old evidence.json stays until the new one is whole.
	tmp, err := os.CreateTemp(filepath.Dir(file), ".record-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", file, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", file, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", file, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	return nil
}
