//go:build linux

package journal

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// lockFile takes an exclusive, non-blocking flock(2) on f. The lock belongs
// to the open file description, so a second Open of the same path fails even
// inside one process, and the kernel releases it when the process dies.
func lockFile(f *os.File) error {
	err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EWOULDBLOCK) {
		return fmt.Errorf("flock: %w", err)
	}
	if pid := lockHolder(f); pid > 0 {
		return fmt.Errorf("%w by pid %d%s: is another cutover daemon running?", ErrLocked, pid, procName(pid))
	}
	return fmt.Errorf("%w by another process: is another cutover daemon running?", ErrLocked)
}

// lockHolder returns the pid that holds a FLOCK on f's inode according to
// /proc/locks, or 0 when it cannot tell (the pid may also be one seen from
// another pid namespace).
func lockHolder(f *os.File) int {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return 0
	}
	want := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	pl, err := os.Open("/proc/locks")
	if err != nil {
		return 0
	}
	defer pl.Close()
	sc := bufio.NewScanner(pl)
	for sc.Scan() {
		// 1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF
		// 1: -> FLOCK  ADVISORY  WRITE 1235 08:01:5678 0 EOF   (a waiter)
		fs := strings.Fields(sc.Text())
		if len(fs) < 6 || fs[1] != "FLOCK" || fs[5] != want {
			continue
		}
		if pid, err := strconv.Atoi(fs[4]); err == nil && pid > 0 {
			return pid
		}
	}
	return 0
}

// procName returns " (name)" for pid, or "" when it cannot be read.
func procName(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return ""
	}
	return " (" + strings.TrimSpace(string(b)) + ")"
}

// syncFile flushes f's data with fdatasync(2): enough for an append-only
// file, whose size change it includes, without forcing other metadata.
func syncFile(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if err != unix.EINTR {
			return err
		}
	}
}

// syncDir fsyncs a directory so that a new entry in it survives a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// allocate allocates n bytes of f from off on, growing the file: with
// fallocate(2), or by writing zeros where the file system has no
// fallocate. A sparse file would reserve nothing.
func allocate(f *os.File, off, n int64) error {
	for {
		err := unix.Fallocate(int(f.Fd()), 0, off, n)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EOPNOTSUPP:
			return writeZeros(f, off, n)
		case err != nil:
			return &os.PathError{Op: "fallocate", Path: f.Name(), Err: err}
		}
		return nil
	}
}

// freeBytes is the space left on f's file system for this process (root
// may use the blocks kept for it).
func freeBytes(f *os.File) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		return 0, err
	}
	blocks := st.Bavail
	if os.Geteuid() == 0 {
		blocks = st.Bfree
	}
	return int64(blocks) * st.Bsize, nil
}

// blockSize is the block size of f's file system.
func blockSize(f *os.File) int64 {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil || st.Blksize <= 0 {
		return 4096
	}
	return int64(st.Blksize)
}
