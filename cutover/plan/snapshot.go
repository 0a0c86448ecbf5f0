package plan

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cutover/cutover/cutover/runbook"
)

// Snapshot is a runbook and its inventory exactly as they were read when a
// run started. The daemon keeps one per run in its state directory, so that
// after a restart it rebuilds the same plan even if the files were edited.
//
// The names are where the files were read from (by the operator's client,
// for a run in the daemon); they serve messages only and are never opened
// again.
type Snapshot struct {
	RunbookName   string // path the runbook was read from
	Runbook       []byte
	InventoryName string // path the inventory was read from
	Inventory     []byte
}

// ReadSnapshot reads the runbook at path and the inventory it names, each
// file once and the way runbook.Load does (regular files only, within
// runbook.MaxRunbookSize and MaxInventorySize): the contents are exactly
// what Plan later parses. Call it in the process whose user may read the
// files (the operator's CLI), never in the daemon on a path that came over
// its API.
//
// A mistake in the runbook is a runbook.ValidationErrors; a file that
// cannot be read is one too (as Load reports it), and the error also
// unwraps to the *os.PathError, so errors.Is(err, fs.ErrNotExist) and
// errors.Is(err, fs.ErrPermission) work.
func ReadSnapshot(path string) (Snapshot, error) {
	data, err := runbook.ReadRunbookFile(path)
	if err != nil {
		return Snapshot{}, &readError{runbook.FieldError{File: path, Msg: "cannot read the runbook: " + pathErr(err)}, err}
	}
	rb, _, err := runbook.ParseRunbook(path, data)
	if err != nil {
		return Snapshot{}, err
	}
	if rb.InventoryPath == "" {
		return Snapshot{}, runbook.ValidationErrors{{File: path, Field: "inventory", Msg: "required: the inventory file, relative to the runbook"}}
	}
	inv, err := runbook.ReadInventoryFile(rb.InventoryPath)
	if err != nil {
		return Snapshot{}, &readError{runbook.FieldError{File: path, Line: rb.Line("inventory"), Field: "inventory", Value: rb.Inventory,
			Msg: fmt.Sprintf("cannot read the inventory %s: %s", rb.InventoryPath, pathErr(err))}, err}
	}
	return Snapshot{RunbookName: path, Runbook: data, InventoryName: rb.InventoryPath, Inventory: inv}, nil
}

// readError is a file ReadSnapshot could not read: the mistake as Load
// reports it, and the error of the file system underneath.
type readError struct {
	fe  runbook.FieldError
	err error
}

func (e *readError) Error() string { return e.fe.Error() }

// Unwrap gives a runbook.ValidationErrors and the file system's error.
func (e *readError) Unwrap() []error { return []error{runbook.ValidationErrors{e.fe}, e.err} }

// pathErr is err without the path an *os.PathError repeats.
func pathErr(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// Plan parses and checks the snapshot and plans it, like LoadPlan.
func (s Snapshot) Plan() (*Plan, []runbook.Warning, error) {
	return Parse(s.RunbookName, s.Runbook, s.InventoryName, s.Inventory)
}

// snapshot files inside a snapshot directory
const (
	snapRunbook   = "runbook.yaml"
	snapInventory = "inventory"
	snapNames     = "names"
)

// Save writes the snapshot into dir (created, mode 0700).
func (s Snapshot) Save(dir string) error {
	for _, n := range []string{s.RunbookName, s.InventoryName} {
		// The names are kept one per line (LoadSnapshot).
		if n == "" || strings.ContainsAny(n, "\n\r") {
			return fmt.Errorf("save snapshot: file name %q: empty or with a line break", n)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save snapshot: %w", err)
	}
	files := map[string][]byte{
		snapRunbook:   s.Runbook,
		snapInventory: s.Inventory,
		snapNames:     []byte(s.RunbookName + "\n" + s.InventoryName + "\n"),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return fmt.Errorf("save snapshot: %w", err)
		}
	}
	return nil
}

// LoadSnapshot reads a snapshot saved in dir.
func LoadSnapshot(dir string) (Snapshot, error) {
	var s Snapshot
	var names []byte
	var err error
	for name, dst := range map[string]*[]byte{snapRunbook: &s.Runbook, snapInventory: &s.Inventory, snapNames: &names} {
		if *dst, err = os.ReadFile(filepath.Join(dir, name)); err != nil {
			return Snapshot{}, fmt.Errorf("load snapshot: %w", err)
		}
	}
	parts := strings.Split(strings.TrimSuffix(string(names), "\n"), "\n")
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		return Snapshot{}, fmt.Errorf("load snapshot %s: %s is damaged", dir, snapNames)
	}
	s.RunbookName, s.InventoryName = parts[0], parts[1]
	return s, nil
}
