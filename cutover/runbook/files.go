package runbook

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/cutover/cutover/internal/fileinfo"
)

// Runbooks and inventories are read only from regular files, and only up
// to a size: a runbook or inventory pointed at /dev/zero, /dev/urandom, a
// named pipe or a huge file is refused at once instead of filling memory
// or waiting forever.
const (
	// MaxRunbookSize is the largest runbook file read: runbooks are a few
	// kilobytes.
	MaxRunbookSize = 1 << 20 // 1 MiB
	// MaxInventorySize is the largest CSV inventory read. CSV is read as
	// a stream; 64 MiB is well over a million rows.
	MaxInventorySize = 64 << 20 // 64 MiB
	// MaxInventoryYAMLSize is the largest YAML or JSON inventory read.
	// Those are parsed whole, into a tree some 25 times the file's size,
	// so they get a smaller cap (8 MiB is some 60,000 VMs).
	MaxInventoryYAMLSize = 8 << 20 // 8 MiB
)

// notRegularError refuses a path that is not a regular file.
type notRegularError struct{ kind string }

func (e *notRegularError) Error() string { return "not a regular file (" + e.kind + ")" }

// tooLargeError refuses a file over its size cap.
type tooLargeError struct {
	max  int64
	what string // "a runbook", "an inventory", ...
	hint string
}

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("larger than %d MiB, the most %s may be: %s", e.max>>20, e.what, e.hint)
}

// fileLimit is the size cap of a kind of file and what to say when a file
// is over it.
type fileLimit struct {
	max        int64
	what, hint string
}

var (
	runbookLimit = fileLimit{MaxRunbookSize, "a runbook", "is it the right file?"}
	csvLimit     = fileLimit{MaxInventorySize, "an inventory", "split the move into several runbooks"}
	yamlLimit    = fileLimit{MaxInventoryYAMLSize, "a YAML or JSON inventory",
		"write it as CSV (up to 64 MiB) or split the move into several runbooks"}
)

func (l fileLimit) err() error { return &tooLargeError{max: l.max, what: l.what, hint: l.hint} }

// inventoryLimit returns the size cap of the inventory at name, by its
// extension.
func inventoryLimit(name string) fileLimit {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return yamlLimit
	}
	return csvLimit
}

// openRegular opens path for reading if it is a regular file of at most
// lim.max bytes. Errors are *os.PathError.
//
// It looks before it opens, so that devices are never opened (opening
// some has side effects) and a named pipe never blocks the open; then it
// opens without blocking (should the path have been swapped for a pipe in
// between) and checks again what it opened, which is what counts.
func openRegular(path string, lim fileLimit) (*os.File, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &os.PathError{Op: "open", Path: path, Err: &notRegularError{fileinfo.Kind(fi.Mode())}}
	}
	if fi.Size() > lim.max {
		return nil, &os.PathError{Op: "open", Path: path, Err: lim.err()}
	}
	return openChecked(path, lim)
}

// openChecked is the second half of openRegular: it opens path without
// blocking and checks the file it opened.
func openChecked(path string, lim fileLimit) (*os.File, error) {
	f, err := openNonblock(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	switch {
	case err != nil:
	case !fi.Mode().IsRegular():
		err = &os.PathError{Op: "open", Path: path, Err: &notRegularError{fileinfo.Kind(fi.Mode())}}
	case fi.Size() > lim.max:
		err = &os.PathError{Op: "open", Path: path, Err: lim.err()}
	default:
		err = setBlocking(f)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// readRegular reads a whole regular file of at most lim.max bytes.
func readRegular(path string, lim fileLimit) ([]byte, error) {
	f, err := openRegular(path, lim)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(&capReader{r: f, lim: lim})
	if err != nil {
		return nil, &os.PathError{Op: "read", Path: path, Err: unwrapPath(err)}
	}
	return data, nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// capReader reads r and fails once more than lim.max bytes came: a
// regular file may still grow while it is read, and some (in /proc)
// claim to be empty.
type capReader struct {
	r   io.Reader
	lim fileLimit
	n   int64
}

func (c *capReader) Read(b []byte) (int, error) {
	if c.n > c.lim.max {
		return 0, c.lim.err()
	}
	if rest := c.lim.max + 1 - c.n; int64(len(b)) > rest {
		b = b[:rest]
	}
	n, err := c.r.Read(b)
	c.n += int64(n)
	if c.n > c.lim.max {
		return n, c.lim.err()
	}
	return n, err
}

// checkSize refuses data over lim: what Parse and friends apply to
// contents read by someone else.
func checkSize(data []byte, lim fileLimit) error {
	if int64(len(data)) > lim.max {
		return lim.err()
	}
	return nil
}

// ReadRunbookFile reads a runbook file the way Load does: only a regular
// file (never a device or a named pipe) of at most MaxRunbookSize bytes.
// Errors are *os.PathError; use it to take a snapshot of the files that
// Parse is later given.
func ReadRunbookFile(path string) ([]byte, error) { return readRegular(path, runbookLimit) }

// ReadInventoryFile reads an inventory file the way Load does: only a
// regular file of at most MaxInventorySize bytes (MaxInventoryYAMLSize
// for .yaml, .yml and .json). Errors are *os.PathError.
func ReadInventoryFile(path string) ([]byte, error) {
	return readRegular(path, inventoryLimit(path))
}

// switchWriter writes to w until it is switched off: the digest of an
// inventory stops once the inventory is only counted.
type switchWriter struct{ w io.Writer }

func (s *switchWriter) Write(b []byte) (int, error) {
	if s.w == nil {
		return len(b), nil
	}
	return s.w.Write(b)
}

var utf8BOM = []byte("\ufeff")

// hasUTF16BOM reports whether b starts with a UTF-16 byte-order mark.
func hasUTF16BOM(b []byte) bool {
	return bytes.HasPrefix(b, []byte{0xff, 0xfe}) || bytes.HasPrefix(b, []byte{0xfe, 0xff})
}
