package journal

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/testenv"
)

var errNoSpace = &fs.PathError{Op: "write", Path: "journal", Err: syscall.ENOSPC}

// TestAppendNoSpaceIsNotSticky: a write that fails for want of space (after
// writing part of the record) leaves the file as it was, and the next
// Append, once there is room, goes on without a hole.
func TestAppendNoSpaceIsNotSticky(t *testing.T) {
	path := newPath(t)
	j, _ := mustOpen(t, path)
	if _, err := j.Append("a", 1); err != nil {
		t.Fatal(err)
	}
	size := j.Size()
	j.failWrite = func(b []byte) error {
		j.failWrite = nil
		_, _ = j.f.WriteAt(b[:len(b)/2], j.size) // a short write
		return errNoSpace
	}
	_, err := j.Append("b", 2)
	if !NoSpace(err) || err.Error() != "append b: write: write journal: no space left on device" {
		t.Fatalf("Append on a full disk: %v", err)
	}
	if j.LastSeq() != 1 || j.Size() != size || fileSize(t, path) != size {
		t.Fatalf("after the failed append: seq %d, size %d, file %d; want 1, %d, %d", j.LastSeq(), j.Size(), fileSize(t, path), size, size)
	}
	if r, err := j.Append("c", 3); err != nil || r.Seq != 2 {
		t.Fatalf("Append once there is room: %+v, %v", r, err)
	}
	j.Close()
	_, recs := mustOpen(t, path)
	if len(recs) != 2 || recs[1].Type != "c" {
		t.Fatalf("reopened: %+v", recs)
	}
}

// TestSyncNoSpace: a sync that fails for want of space cuts the record
// off and leaves the journal usable; any other failed sync is sticky.
func TestSyncNoSpace(t *testing.T) {
	path := newPath(t)
	j, _ := mustOpen(t, path)
	size := j.Size()
	j.failSync = func() error { j.failSync = nil; return syscall.ENOSPC }
	if _, err := j.Append("a", 1); !NoSpace(err) || err.Error() != "append a: sync: no space left on device" {
		t.Fatalf("Append whose sync finds no space: %v", err)
	}
	if j.Size() != size || fileSize(t, path) != size {
		t.Fatalf("size %d, file %d after the failed sync, want %d", j.Size(), fileSize(t, path), size)
	}
	if _, err := j.Append("b", 2); err != nil {
		t.Fatal(err)
	}
	j.failSync = func() error { return syscall.EIO }
	_, err1 := j.Append("c", 3)
	j.failSync = nil
	_, err2 := j.Append("d", 4)
	if err1 == nil || err2 == nil || err2.Error() != "append d: journal unusable after earlier failure: sync: input/output error" {
		t.Fatalf("appends after a failed sync (EIO): %v / %v", err1, err2)
	}
}

// TestReserve: the reserve is allocated on disk; an append that finds the
// file system full writes into it, and Low says so until it is refilled;
// with the reserve used up, Append fails with NoSpace.
func TestReserve(t *testing.T) {
	path := newPath(t)
	j, _ := mustOpen(t, path)
	if err := j.Reserve(62 << 10); err != nil {
		t.Fatal(err)
	}
	const size = 64 << 10 // whole blocks (4 KiB) of 64 KiB
	if have, want := j.Reserved(); have != size || want != size || fileSize(t, path+".reserve") != size {
		t.Fatalf("reserved %d of %d (file %d), want %d", have, want, fileSize(t, path+".reserve"), size)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(path+".reserve", &st); err != nil || st.Blocks*512 < size {
		t.Fatalf("the reserve is not allocated: %d blocks of 512 bytes (%v)", st.Blocks, err)
	}
	if low := j.Low(false); low != "" {
		t.Fatalf("Low with the reserve full: %q", low)
	}

	// The file system is full until the reserve gives a block back.
	j.failWrite = func([]byte) error {
		if j.res.have == size {
			return errNoSpace
		}
		return nil
	}
	if _, err := j.Append("a", 1); err != nil {
		t.Fatalf("Append into the reserve: %v", err)
	}
	if have, _ := j.Reserved(); have != size-4096 {
		t.Fatalf("the reserve holds %d after one append, want %d", have, size-4096)
	}
	dir := filepath.Dir(path)
	if low, want := j.Low(false), "the file system of "+dir+" is full: the journal writes into its reserve (60 KiB of 64 KiB left)"; low != want {
		t.Fatalf("Low:\n got %q\nwant %q", low, want)
	}
	j.failWrite = nil
	if low := j.Low(true); low != "" {
		t.Fatalf("Low after the refill: %q", low)
	}
	if have, _ := j.Reserved(); have != size {
		t.Fatalf("refilled to %d, want %d", have, size)
	}

	// No room at all: the reserve is given back block by block, then
	// Append gives up.
	writes := 0
	j.failWrite = func([]byte) error { writes++; return errNoSpace }
	if _, err := j.Append("b", 2); !NoSpace(err) {
		t.Fatalf("Append with the reserve used up: %v", err)
	}
	if have, want := j.Reserved(); have != 0 || want != size || writes != 1+size/4096 {
		t.Fatalf("reserve %d of %d after %d writes, want 0 of %d after %d", have, want, writes, size, 1+size/4096)
	}
	j.failWrite = nil
	j.Close()
	j, recs := mustOpen(t, path)
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	// Open takes the reserve up as it finds it.
	if have, want := j.Reserved(); have != 0 || want != 0 {
		t.Fatalf("reopened reserve %d of %d", have, want)
	}
	if err := j.Reserve(8 << 10); err != nil {
		t.Fatal(err)
	}
	if have, want := j.Reserved(); have != 8<<10 || want != 8<<10 {
		t.Fatalf("reserve %d of %d, want 8 KiB", have, want)
	}
}

func TestAppendAt(t *testing.T) {
	j, _ := mustOpen(t, newPath(t))
	at := time.Date(2026, 3, 14, 23, 0, 0, 123456789, time.FixedZone("CET", 3600))
	r, err := j.AppendAt("held", 1, at)
	if err != nil || !r.Time.Equal(at) || r.Time.Location() != time.UTC {
		t.Fatalf("AppendAt: %+v, %v", r, err)
	}
	if _, err := j.AppendAt("held", 1, time.Time{}); err == nil {
		t.Fatal("AppendAt without a time succeeded")
	}
}

// TestFullTmpfs runs the journal on a real tmpfs of 64 KiB: filled up,
// the journal writes into its reserve; with that used up too, appends
// fail and leave the journal usable; once there is room again they go on;
// a journal created on the full file system opens (without its header).
func TestFullTmpfs(t *testing.T) {
	dir := testenv.MountTmpfs(t, 64<<10)
	path := filepath.Join(dir, "journal")
	j, _, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if err := j.Reserve(16 << 10); err != nil {
		t.Fatal(err)
	}
	filler := testenv.FillDisk(t, dir)
	if low := j.Low(false); low != "the file system of "+dir+" is full" {
		t.Fatalf("Low on a full file system: %q", low)
	}
	payload := strings.Repeat("x", 400)
	n := 0
	for ; ; n++ {
		if _, err = j.Append("rec", payload); err != nil {
			break
		}
	}
	if !NoSpace(err) {
		t.Fatalf("the append that found no room: %v", err)
	}
	if have, _ := j.Reserved(); have != 0 || n < (16<<10)/450 {
		t.Fatalf("%d records of about 440 bytes written on the full file system, reserve left %d", n, have)
	}
	t.Logf("%d records of about 440 bytes went into the 16 KiB reserve and the journal's last page", n)
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Append("rec", "room again"); err != nil {
		t.Fatalf("Append once there is room: %v", err)
	}
	if low := j.Low(true); low != "" {
		t.Fatalf("Low after the refill: %q", low)
	}
	j.Close()
	j, recs, err := Open(path)
	if err != nil || len(recs) != n+1 || recs[n].Seq != uint64(n+1) {
		t.Fatalf("reopened: %d records, %v", len(recs), err)
	}
	j.Close()

	// A new journal on a full file system opens without its header.
	testenv.FillDisk(t, dir)
	other := filepath.Join(dir, "other")
	j2, recs, err := Open(other)
	if err != nil {
		t.Fatalf("Open of a new journal on a full file system: %v", err)
	}
	if len(recs) != 0 || j2.Size() != 0 {
		t.Fatalf("a new journal on a full file system: %d records, size %d", len(recs), j2.Size())
	}
	defer j2.Close()
	if _, err := j2.Append("first", 1); !NoSpace(err) {
		t.Fatalf("Append without room: %v", err)
	}
	if err := os.Remove(filepath.Join(dir, "filler")); err != nil {
		t.Fatal(err)
	}
	if _, err := j2.Append("first", 1); err != nil {
		t.Fatal(err)
	}
	j2.Close()
	j3, recs, err := Open(other)
	if err != nil {
		t.Fatal(err)
	}
	j3.Close()
	if len(recs) != 1 || recs[0].Type != "first" {
		t.Fatalf("reopened: %+v", recs)
	}
}
