package plan

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cutover/cutover/cutover/runbook"
)

// Snapshot is a runbook and its inventory exactly as they were read when a
// run started. The daemon keeps one per run in its state directory, so that
// after a restart it rebuilds the same plan even if the files were edited.
type Snapshot struct {
	RunbookName   string // path the runbook was read from
	Runbook       []byte
	InventoryName string // path the inventory was read from
	Inventory     []byte
}

// ReadSnapshot reads the runbook at path and the inventory it names.
func ReadSnapshot(path string) (Snapshot, error) {
	rb, _, err := runbook.LoadRunbook(path)
	if err != nil {
		return Snapshot{}, err
	}
	s := Snapshot{RunbookName: path, InventoryName: rb.InventoryPath}
	if s.Runbook, err = os.ReadFile(path); err != nil {
		return Snapshot{}, fmt.Errorf("read runbook: %w", err)
	}
	if s.Inventory, err = os.ReadFile(rb.InventoryPath); err != nil {
		return Snapshot{}, fmt.Errorf("read inventory: %w", err)
	}
	return s, nil
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
