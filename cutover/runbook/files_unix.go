//go:build unix

package runbook

import (
	"os"
	"syscall"
)

// openNonblock opens path for reading without blocking: opening a named
// pipe for reading otherwise waits for a writer, forever.
func openNonblock(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
}

// setBlocking clears O_NONBLOCK on a regular file opened by openNonblock
// (reads of regular files do not heed it, but nothing should inherit it).
func setBlocking(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.SetNonblock(int(fd), false) }); err != nil {
		return err
	}
	if serr != nil {
		return &os.PathError{Op: "open", Path: f.Name(), Err: serr}
	}
	return nil
}
