//go:build unix

package runbook

import (
	"errors"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestOpenCheckedFIFO: should a named pipe take the place of the file
// between the look and the open, the open does not wait for a writer and
// the pipe is refused.
func TestOpenCheckedFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inventory.csv")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		f, err := openChecked(path, csvLimit)
		if f != nil {
			f.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		var nr *notRegularError
		if !errors.As(err, &nr) || err.Error() != "open "+path+": not a regular file (a named pipe)" {
			t.Errorf("err = %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the open blocks")
	}
}
