//go:build !linux

package journal

import (
	"errors"
	"os"
)

// The daemon runs on Linux only (nftables, netlink); elsewhere the journal
// can be read by tests but not locked.
func lockFile(*os.File) error { return errors.New("journal locking is only implemented on linux") }

func syncFile(f *os.File) error { return f.Sync() }

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func allocate(f *os.File, off, n int64) error { return writeZeros(f, off, n) }

func freeBytes(*os.File) (int64, error) { return 0, errors.New("not implemented") }

func blockSize(*os.File) int64 { return 4096 }
