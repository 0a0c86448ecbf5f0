//go:build unix

package runbook_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/cutover/runbook"
	"github.com/cutover/cutover/cutover/runbook/runbooktest"
)

// within fails the test when f has not returned after a while: what
// used to happen with a named pipe.
func within(t *testing.T, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("still reading after 20s")
		return nil
	}
}

func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
}

// sparse makes a file of size bytes that takes no room on disk.
func sparse(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
}

func needDevice(t *testing.T, path string) {
	t.Helper()
	if fi, err := os.Stat(path); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Skipf("no %s here", path)
	}
}

// TestInputFiles: runbooks and inventories are read only from regular
// files under a size cap; anything else is refused at once, in the usual
// format, instead of hanging (a named pipe) or filling memory (/dev/zero,
// /dev/urandom, a huge file).
func TestInputFiles(t *testing.T) {
	tests := []struct {
		name      string
		inventory string                         // the runbook's inventory field
		setup     func(t *testing.T, dir string) // makes the files
		load      func(dir string) error         // what is loaded; default runbook.Load of runbook.yaml
		want      []string
	}{
		{name: "inventory is a named pipe", inventory: "fifo.csv",
			setup: func(t *testing.T, dir string) { mkfifo(t, filepath.Join(dir, "fifo.csv")) },
			want:  []string{`runbook.yaml:3: inventory: cannot read the inventory fifo.csv: not a regular file (a named pipe) (value "fifo.csv")`}},
		{name: "inventory is /dev/zero", inventory: "/dev/zero",
			setup: func(t *testing.T, dir string) { needDevice(t, "/dev/zero") },
			want:  []string{`runbook.yaml:3: inventory: cannot read the inventory /dev/zero: not a regular file (a character device) (value "/dev/zero")`}},
		{name: "inventory is /dev/urandom", inventory: "/dev/urandom",
			setup: func(t *testing.T, dir string) { needDevice(t, "/dev/urandom") },
			want:  []string{`runbook.yaml:3: inventory: cannot read the inventory /dev/urandom: not a regular file (a character device) (value "/dev/urandom")`}},
		{name: "inventory is a link to /dev/zero", inventory: "zero.csv",
			setup: func(t *testing.T, dir string) {
				needDevice(t, "/dev/zero")
				if err := os.Symlink("/dev/zero", filepath.Join(dir, "zero.csv")); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{`runbook.yaml:3: inventory: cannot read the inventory zero.csv: not a regular file (a character device) (value "zero.csv")`}},
		{name: "inventory is a directory", inventory: "vms.csv",
			setup: func(t *testing.T, dir string) {
				if err := os.Mkdir(filepath.Join(dir, "vms.csv"), 0o755); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{`runbook.yaml:3: inventory: cannot read the inventory vms.csv: not a regular file (a directory) (value "vms.csv")`}},
		{name: "CSV inventory over 64 MiB", inventory: "big.csv",
			setup: func(t *testing.T, dir string) { sparse(t, filepath.Join(dir, "big.csv"), runbook.MaxInventorySize+1) },
			want:  []string{`runbook.yaml:3: inventory: cannot read the inventory big.csv: larger than 64 MiB, the most an inventory may be: split the move into several runbooks (value "big.csv")`}},
		{name: "YAML inventory over 8 MiB", inventory: "big.yaml",
			setup: func(t *testing.T, dir string) {
				sparse(t, filepath.Join(dir, "big.yaml"), runbook.MaxInventoryYAMLSize+1)
			},
			want: []string{`runbook.yaml:3: inventory: cannot read the inventory big.yaml: larger than 8 MiB, the most a YAML or JSON inventory may be: write it as CSV (up to 64 MiB) or split the move into several runbooks (value "big.yaml")`}},
		{name: "runbook is a named pipe",
			setup: func(t *testing.T, dir string) { mkfifo(t, filepath.Join(dir, "fifo.yaml")) },
			load: func(dir string) error {
				return lastErr(runbook.Load(filepath.Join(dir, "fifo.yaml")))
			},
			want: []string{`fifo.yaml: cannot read the runbook: not a regular file (a named pipe)`}},
		{name: "runbook is /dev/zero",
			setup: func(t *testing.T, dir string) { needDevice(t, "/dev/zero") },
			load: func(dir string) error {
				return lastErr(runbook.Load("/dev/zero"))
			},
			want: []string{`/dev/zero: cannot read the runbook: not a regular file (a character device)`}},
		{name: "runbook over 1 MiB",
			setup: func(t *testing.T, dir string) { sparse(t, filepath.Join(dir, "big.yaml"), runbook.MaxRunbookSize+1) },
			load: func(dir string) error {
				return lastErr(runbook.LoadRunbook(filepath.Join(dir, "big.yaml")))
			},
			want: []string{`big.yaml: cannot read the runbook: larger than 1 MiB, the most a runbook may be: is it the right file?`}},
		{name: "LoadInventory of a named pipe",
			setup: func(t *testing.T, dir string) { mkfifo(t, filepath.Join(dir, "fifo.csv")) },
			load: func(dir string) error {
				return lastErr(runbook.LoadInventory(filepath.Join(dir, "fifo.csv")))
			},
			want: []string{`fifo.csv: cannot read the inventory: not a regular file (a named pipe)`}},
		{name: "LoadInventory of /dev/urandom",
			setup: func(t *testing.T, dir string) { needDevice(t, "/dev/urandom") },
			load: func(dir string) error {
				return lastErr(runbook.LoadInventory("/dev/urandom"))
			},
			want: []string{`/dev/urandom: cannot read the inventory: not a regular file (a character device)`}},
		{name: "ReadInventoryFile of a named pipe",
			setup: func(t *testing.T, dir string) { mkfifo(t, filepath.Join(dir, "fifo.json")) },
			load: func(dir string) error {
				return lastErr(runbook.ReadInventoryFile(filepath.Join(dir, "fifo.json")))
			},
			want: []string{`open fifo.json: not a regular file (a named pipe)`}},
		{name: "ReadRunbookFile of /dev/zero",
			setup: func(t *testing.T, dir string) { needDevice(t, "/dev/zero") },
			load: func(dir string) error {
				return lastErr(runbook.ReadRunbookFile("/dev/zero"))
			},
			want: []string{`open /dev/zero: not a regular file (a character device)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var edits []runbooktest.Edit
			if tt.inventory != "" {
				edits = []runbooktest.Edit{{"inventory: inventory.csv", "inventory: " + tt.inventory}}
			}
			path := runbooktest.WriteCase(t, "testdata/base", edits, "")
			dir := filepath.Dir(path)
			tt.setup(t, dir)
			load := tt.load
			if load == nil {
				load = func(string) error {
					return lastErr(runbook.Load(path))
				}
			}
			err := within(t, func() error { return load(dir) })
			if err == nil {
				t.Fatal("accepted")
			}
			if got := errLines(err, dir); !slices.Equal(got, tt.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}
