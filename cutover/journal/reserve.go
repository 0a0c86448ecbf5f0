package journal

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// reserveSuffix names the reserve beside the journal: journal.reserve.
const reserveSuffix = ".reserve"

// allocChunk is how much of the reserve one fallocate(2) asks for: a file
// system short of room keeps what the chunks before got.
const allocChunk = 64 << 10

// reserve is the file that holds disk space for the journal's records:
// allocated blocks, given back (truncated) a few at a time when an append
// finds the file system full.
type reserve struct {
	path string
	f    *os.File // nil: there is none
	have int64    // bytes allocated: the file's length
	want int64    // bytes asked for by Reserve (or found at Open)
	blk  int64    // the file system's block size
}

// open opens the reserve at path if there is one; its length is what it
// holds and what it should hold until Reserve says otherwise.
func (r *reserve) open(path string) error {
	r.path, r.blk = path, 4096
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open journal reserve: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open journal reserve: %w", err)
	}
	r.f, r.have, r.want = f, fi.Size(), fi.Size()
	r.blk = blockSize(f)
	return nil
}

func (r *reserve) close() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
}

func (r *reserve) roundUp(n int64) int64 {
	return (n + r.blk - 1) / r.blk * r.blk
}

// fill allocates the reserve up to want, or gives back what is above it.
// Short of room, it keeps what it got and returns the error.
func (r *reserve) fill() error {
	if r.have > r.want {
		if err := r.f.Truncate(r.want); err != nil {
			return fmt.Errorf("shrink the journal reserve: %w", err)
		}
		r.have = r.want
		return nil
	}
	var err error
	for off := r.have; off < r.want && err == nil; off += allocChunk {
		err = allocate(r.f, off, min(allocChunk, r.want-off))
	}
	if fi, serr := r.f.Stat(); serr == nil {
		r.have = fi.Size()
	}
	if err == nil {
		err = syncFile(r.f)
	}
	if err != nil {
		return fmt.Errorf("reserve %d bytes for the journal in %s (%d held): %w", r.want, filepath.Dir(r.path), r.have, err)
	}
	return nil
}

// release gives back enough of the reserve for need more bytes of journal
// (at least one block), and reports whether it gave back anything.
func (r *reserve) release(need int) bool {
	if r.f == nil || r.have == 0 {
		return false
	}
	n := max(r.have-r.roundUp(max(int64(need), 1)), 0)
	if err := r.f.Truncate(n); err != nil {
		return false
	}
	// ext4 reuses the blocks a truncate freed only once the transaction
	// that freed them has committed; the sync commits it.
	_ = syncFile(r.f)
	r.have = n
	return true
}

// Reserve makes the reserve (the file <journal>.reserve) hold n bytes of
// allocated disk space, rounded up to whole blocks: it creates the file,
// or grows or shrinks it. n is also the size Low compares the reserve
// with. When the file system has not room for all of it, the reserve keeps
// what it could get and Reserve returns the error (NoSpace is true for it).
// The reserve stays on disk when the journal is closed; Open takes it up
// again at the size it has then.
func (j *Journal) Reserve(n int64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return fmt.Errorf("reserve: %w", ErrClosed)
	}
	r := &j.res
	if r.f == nil {
		if n <= 0 {
			return nil
		}
		f, err := os.OpenFile(r.path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("create the journal reserve: %w", err)
		}
		r.f, r.blk = f, blockSize(f)
		if err := syncDir(filepath.Dir(r.path)); err != nil {
			return fmt.Errorf("create the journal reserve: sync directory: %w", err)
		}
	}
	r.want = r.roundUp(max(n, 0))
	return r.fill()
}

// Reserved returns how many bytes the reserve holds and how many it should
// hold.
func (j *Journal) Reserved() (have, want int64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.res.have, j.res.want
}

// Low says why the journal is short of room, or "" when it is not: its
// reserve holds less than it should (an append found the file system full
// and wrote into the reserve, or the reserve could not be allocated), or
// the file system has no free block left. With refill it first tries to
// allocate what is missing from the reserve.
func (j *Journal) Low(refill bool) string {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return ""
	}
	r := &j.res
	dir := filepath.Dir(j.path)
	if refill && r.f != nil && r.have < r.want {
		_ = r.fill()
	}
	if r.have < r.want {
		return fmt.Sprintf("the file system of %s is full: the journal writes into its reserve (%s of %s left)", dir, kib(r.have), kib(r.want))
	}
	if free, err := freeBytes(j.f); err == nil && free == 0 {
		return fmt.Sprintf("the file system of %s is full", dir)
	}
	return ""
}

func kib(n int64) string {
	return fmt.Sprintf("%d KiB", (n+1023)/1024)
}

// writeZeros allocates by writing zeros.
func writeZeros(f *os.File, off, n int64) error {
	zeros := make([]byte, min(n, allocChunk))
	for n > 0 {
		k := min(n, int64(len(zeros)))
		if _, err := f.WriteAt(zeros[:k], off); err != nil {
			return err
		}
		off, n = off+k, n-k
	}
	return nil
}
