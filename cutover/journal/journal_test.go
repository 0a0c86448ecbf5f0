package journal

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

type testRec struct {
	Batch int    `json:"batch"`
	Op    string `json:"op"`
	Moved []int  `json:"moved,omitempty"`
}

func newPath(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "journal")
}

func mustOpen(t *testing.T, path string) (*Journal, []Record) {
	t.Helper()
	j, recs, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { j.Close() })
	return j, recs
}

// writeJournal appends n records to a new journal at path and returns them
// and the file offsets where each record starts (plus the end of file).
func writeJournal(t *testing.T, path string, n int) ([]Record, []int64) {
	t.Helper()
	j, _ := mustOpen(t, path)
	var recs []Record
	offs := []int64{j.Size()}
	for i := range n {
		r, err := j.Append("batch", testRec{Batch: i, Op: "announce", Moved: []int{0, i}})
		if err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		recs = append(recs, r)
		offs = append(offs, j.Size())
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	return recs, offs
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func equalRecords(a, b []Record) bool {
	return slices.EqualFunc(a, b, func(x, y Record) bool {
		return x.Seq == y.Seq && x.Time.Equal(y.Time) && x.Type == y.Type && bytes.Equal(x.Data, y.Data)
	})
}

func TestRoundTrip(t *testing.T) {
	path := newPath(t)
	j, recs := mustOpen(t, path)
	if len(recs) != 0 || j.Recovered() != nil {
		t.Fatalf("new journal: %d records, recovered %v", len(recs), j.Recovered())
	}
	var want []Record
	for i, v := range []any{
		testRec{Batch: 0, Op: "announce", Moved: []int{0}},
		map[string]string{"reason": "gate \"probe\" failed: vm-0042 10.64.0.52: tcp 80: connection refused"},
		[]string{"vm-0001", "vm-0002"},
		json.RawMessage(`{"raw":true}`),
		"a string",
		42,
	} {
		r, err := j.Append(fmt.Sprintf("type-%d", i), v)
		if err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		if r.Seq != uint64(i+1) {
			t.Errorf("Append %d: seq %d, want %d", i, r.Seq, i+1)
		}
		wantData, _ := json.Marshal(v)
		if !bytes.Equal(r.Data, wantData) {
			t.Errorf("Append %d: data %s, want %s", i, r.Data, wantData)
		}
		want = append(want, r)
	}
	if got := j.LastSeq(); got != 6 {
		t.Errorf("LastSeq = %d, want 6", got)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}

	j2, got := mustOpen(t, path)
	if !equalRecords(got, want) {
		t.Fatalf("replayed records differ:\n got %+v\nwant %+v", got, want)
	}
	if j2.Recovered() != nil {
		t.Errorf("clean file reported recovery: %v", j2.Recovered())
	}
	r, err := j2.Append("next", 1)
	if err != nil || r.Seq != 7 {
		t.Fatalf("Append after reopen: seq %d, %v; want 7", r.Seq, err)
	}
}

func TestRecordTime(t *testing.T) {
	path := newPath(t)
	j, _ := mustOpen(t, path)
	at := time.Date(2026, 3, 1, 23, 0, 0, 123456789, time.FixedZone("CET", 3600))
	j.now = func() time.Time { return at }
	got, err := j.Record("phase", map[string]string{"phase": "running"})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(at) || got.Location() != time.UTC {
		t.Errorf("Record time %v, want %v in UTC", got, at)
	}
	j.Close()
	_, recs := mustOpen(t, path)
	if len(recs) != 1 || !recs[0].Time.Equal(at) {
		t.Fatalf("replayed %+v, want time %v", recs, at)
	}
}

// TestTornTail cuts the last record at every byte offset, as a crash during
// write(2) may: the earlier records come back, the file is truncated to
// them, and the next append is clean.
func TestTornTail(t *testing.T) {
	dir := t.TempDir()
	orig := filepath.Join(dir, "orig")
	want, offs := writeJournal(t, orig, 3)
	full, err := os.ReadFile(orig)
	if err != nil {
		t.Fatal(err)
	}
	lastStart, end := offs[2], offs[3]
	for cut := lastStart; cut < end; cut++ {
		path := filepath.Join(dir, fmt.Sprintf("cut-%d", cut))
		if err := os.WriteFile(path, full[:cut], 0o600); err != nil {
			t.Fatal(err)
		}
		j, got, err := Open(path)
		if err != nil {
			t.Fatalf("cut at %d: Open: %v", cut, err)
		}
		if !equalRecords(got, want[:2]) {
			t.Errorf("cut at %d: got %d records, want the first 2", cut, len(got))
		}
		rec := j.Recovered()
		switch {
		case cut == lastStart && rec != nil:
			t.Errorf("cut at a record boundary: recovered %v, want nil", rec)
		case cut > lastStart && (rec == nil || rec.Offset != lastStart || rec.Dropped != cut-lastStart):
			t.Errorf("cut at %d: recovered %v, want %d bytes dropped at offset %d", cut, rec, cut-lastStart, lastStart)
		}
		if sz := fileSize(t, path); sz != lastStart {
			t.Errorf("cut at %d: file is %d bytes after Open, want %d", cut, sz, lastStart)
		}
		r, err := j.Append("after", testRec{Op: "recover"})
		if err != nil || r.Seq != 3 {
			t.Fatalf("cut at %d: Append: seq %d, %v", cut, r.Seq, err)
		}
		j.Close()
		j, got, err = Open(path)
		if err != nil {
			t.Fatalf("cut at %d: reopen: %v", cut, err)
		}
		if len(got) != 3 || got[2].Type != "after" || j.Recovered() != nil {
			t.Errorf("cut at %d: reopen: %d records, recovered %v", cut, len(got), j.Recovered())
		}
		j.Close()
	}
}

func TestTornTailMessages(t *testing.T) {
	dir := t.TempDir()
	orig := filepath.Join(dir, "orig")
	_, offs := writeJournal(t, orig, 2)
	full, _ := os.ReadFile(orig)
	last := offs[1]
	zeroed := slices.Clone(full)
	clear(zeroed[last:])
	for _, tc := range []struct {
		name string
		data []byte
		want Recovered
	}{
		{"short header", full[:last+5], Recovered{Offset: last, Dropped: 5,
			Reason: fmt.Sprintf("record at offset %d after seq 1: 5 bytes left, less than a record header (torn write)", last)}},
		{"short body", full[:offs[2]-1], Recovered{Offset: last, Dropped: offs[2] - 1 - last,
			Reason: fmt.Sprintf("record at offset %d after seq 1: length %d runs past the end of the file by 1 bytes (torn write)", last, offs[2]-last-8)}},
		{"zero filled", zeroed, Recovered{Offset: last, Dropped: offs[2] - last,
			Reason: fmt.Sprintf("record at offset %d after seq 1: bad length 0", last)}},
		{"torn file header", full[:5], Recovered{Offset: 0, Dropped: 5, Reason: "incomplete file header (torn write)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			os.WriteFile(path, tc.data, 0o600)
			j, _, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			if got := j.Recovered(); got == nil || *got != tc.want {
				t.Errorf("Recovered = %+v\n         want %+v", got, tc.want)
			}
			if _, err := j.Append("ok", 1); err != nil {
				t.Errorf("Append: %v", err)
			}
		})
	}
}

// TestBitFlipLastRecord flips one bit in every byte of the last record: the
// record is dropped as a corrupt tail, never returned and never an error.
func TestBitFlipLastRecord(t *testing.T) {
	dir := t.TempDir()
	orig := filepath.Join(dir, "orig")
	want, offs := writeJournal(t, orig, 3)
	full, _ := os.ReadFile(orig)
	for at := offs[2]; at < offs[3]; at++ {
		for _, bit := range []byte{0x01, 0x80} {
			bad := slices.Clone(full)
			bad[at] ^= bit
			recs, good, rec, err := scan(bad)
			if err != nil {
				t.Fatalf("flip %#x at %d: %v", bit, at, err)
			}
			if !equalRecords(recs, want[:2]) || int64(good) != offs[2] || rec == nil {
				t.Errorf("flip %#x at %d: %d records, good %d, recovered %v; want 2, %d, a recovery",
					bit, at, len(recs), good, rec, offs[2])
			}
		}
	}
	// And once through Open, with the exact reason.
	path := filepath.Join(dir, "flipped")
	bad := slices.Clone(full)
	bad[offs[3]-2] ^= 0x01 // in the JSON
	os.WriteFile(path, bad, 0o600)
	j, recs, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if len(recs) != 2 {
		t.Errorf("%d records, want 2", len(recs))
	}
	rec := j.Recovered()
	if rec == nil || rec.Offset != offs[2] || !strings.HasPrefix(rec.Reason,
		fmt.Sprintf("record at offset %d after seq 2: checksum mismatch (crc32c ", offs[2])) {
		t.Errorf("Recovered = %+v", rec)
	}
}

// TestBitFlipMiddleRecord flips one bit in every byte of a record that has a
// good record after it: always an error, never silently skipped.
func TestBitFlipMiddleRecord(t *testing.T) {
	dir := t.TempDir()
	orig := filepath.Join(dir, "orig")
	_, offs := writeJournal(t, orig, 3)
	full, _ := os.ReadFile(orig)
	for at := offs[1]; at < offs[2]; at++ {
		bad := slices.Clone(full)
		bad[at] ^= 0x04
		_, _, _, err := scan(bad)
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("flip at %d: err %v, want ErrCorrupt", at, err)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	orig := filepath.Join(dir, "orig")
	_, offs := writeJournal(t, orig, 3)
	full, _ := os.ReadFile(orig)

	middle := slices.Clone(full)
	middle[offs[2]-2] ^= 0x01 // JSON of record 2

	// A valid file whose second record claims seq 3.
	gap := slices.Clone(full[:offs[1]])
	gap = append(gap, encode(3, time.Unix(0, 0), "batch", []byte(`{}`))...)

	repeat := slices.Clone(full[:offs[1]])
	repeat = append(repeat, full[offs[0]:offs[1]]...)

	version := slices.Clone(full)
	version[8] = 2

	for _, tc := range []struct {
		name string
		data []byte
		want string // after "open journal PATH: "
	}{
		{"wrong magic", append([]byte("NOTAJRNL"), full[8:]...), "journal corrupt: not a cutover journal (bad magic)"},
		{"text file", []byte("hello, this is not a journal\n"), "journal corrupt: not a cutover journal (bad magic)"},
		{"short non-header", []byte("CUTX"), "journal corrupt: not a cutover journal (bad magic)"},
		{"version", version, "journal corrupt: unsupported format version 2 (this build reads 1)"},
		{"middle record", middle, fmt.Sprintf("journal corrupt: record at offset %d after seq 1: checksum mismatch (crc32c %08x, want %08x), but a good record follows at offset %d; refusing to drop it",
			offs[1], crcOf(middle[offs[1]:offs[2]]), crcField(middle[offs[1]:]), offs[2])},
		{"seq gap", gap, fmt.Sprintf("journal corrupt: record at offset %d has seq 3 after seq 1", offs[1])},
		{"seq repeated", repeat, fmt.Sprintf("journal corrupt: record at offset %d has seq 1 after seq 1", offs[1])},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			if err := os.WriteFile(path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			j, _, err := Open(path)
			if err == nil {
				j.Close()
				t.Fatal("Open succeeded")
			}
			if want := "open journal " + path + ": " + tc.want; err.Error() != want {
				t.Errorf("error\n got %s\nwant %s", err, want)
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("error does not wrap ErrCorrupt")
			}
			// The damaged file is left alone for a person to look at.
			if got, _ := os.ReadFile(path); !bytes.Equal(got, tc.data) {
				t.Errorf("Open changed a corrupt file")
			}
		})
	}
}

// crcOf returns the checksum of a whole record's body; crcField the one
// stored in its prefix.
func crcOf(rec []byte) uint32    { return crc32.Checksum(rec[8:], castagnoli) }
func crcField(rec []byte) uint32 { return binary.LittleEndian.Uint32(rec[4:]) }

func TestAppendErrors(t *testing.T) {
	j, _ := mustOpen(t, newPath(t))
	for _, tc := range []struct {
		typ  string
		v    any
		want string
	}{
		{"", 1, `append "": type must be 1 to 255 bytes`},
		{strings.Repeat("x", 256), 1, `append "` + strings.Repeat("x", 256) + `": type must be 1 to 255 bytes`},
		{"chan", make(chan int), "append chan: marshal: json: unsupported type: chan int"},
	} {
		if _, err := j.Append(tc.typ, tc.v); err == nil || err.Error() != tc.want {
			t.Errorf("Append(%.10q): %v, want %s", tc.typ, err, tc.want)
		}
	}
	if j.LastSeq() != 0 {
		t.Errorf("failed appends used sequence numbers: %d", j.LastSeq())
	}
	j.Close()
	if _, err := j.Append("late", 1); !errors.Is(err, ErrClosed) || err.Error() != "append late: journal closed" {
		t.Errorf("Append after Close: %v", err)
	}
	if err := j.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestConcurrentAppend(t *testing.T) {
	path := newPath(t)
	j, _ := mustOpen(t, path)
	const writers, each = 8, 40
	type entry struct{ W, I int }
	var wg sync.WaitGroup
	returned := make([][]uint64, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				r, err := j.Append("entry", entry{w, i})
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				returned[w] = append(returned[w], r.Seq)
			}
		}()
	}
	wg.Wait()
	j.Close()

	_, recs := mustOpen(t, path)
	if len(recs) != writers*each {
		t.Fatalf("%d records, want %d", len(recs), writers*each)
	}
	next := make([]int, writers)
	for k, r := range recs {
		if r.Seq != uint64(k+1) {
			t.Fatalf("record %d has seq %d", k, r.Seq)
		}
		var e entry
		if err := json.Unmarshal(r.Data, &e); err != nil {
			t.Fatal(err)
		}
		// Each writer's records are in its own order and carry the
		// sequence numbers Append returned to it.
		if e.I != next[e.W] || returned[e.W][e.I] != r.Seq {
			t.Fatalf("record seq %d: writer %d entry %d, want entry %d (returned seq %d)", r.Seq, e.W, e.I, next[e.W], returned[e.W][e.I])
		}
		next[e.W]++
	}
}

func TestLock(t *testing.T) {
	path := newPath(t)
	j, _ := mustOpen(t, path)
	if _, err := j.Append("x", 1); err != nil {
		t.Fatal(err)
	}
	j2, _, err := Open(path)
	if err == nil {
		j2.Close()
		t.Fatal("second Open succeeded while the first holds the lock")
	}
	comm, _ := os.ReadFile("/proc/self/comm")
	want := fmt.Sprintf("open journal %s: journal locked by pid %d (%s): is another cutover daemon running?",
		path, os.Getpid(), strings.TrimSpace(string(comm)))
	if err.Error() != want || !errors.Is(err, ErrLocked) {
		t.Errorf("second Open:\n got %v\nwant %s", err, want)
	}
	// The failed Open did not touch the file.
	if _, err := j.Append("y", 2); err != nil {
		t.Fatal(err)
	}
	j.Close()
	j3, recs := mustOpen(t, path)
	if len(recs) != 2 {
		t.Errorf("after the first closed: %d records, want 2", len(recs))
	}
	j3.Close()
}

// TestAppendFailureIsSticky shows that after a failed write the journal
// refuses further appends instead of writing after a hole.
func TestAppendFailureIsSticky(t *testing.T) {
	j, _ := mustOpen(t, newPath(t))
	if _, err := j.Append("a", 1); err != nil {
		t.Fatal(err)
	}
	// Make write(2) fail: swap the file for a read-only descriptor.
	ro, err := os.Open(j.path)
	if err != nil {
		t.Fatal(err)
	}
	j.mu.Lock()
	rw := j.f
	j.f = ro
	j.mu.Unlock()
	defer rw.Close()
	_, err1 := j.Append("b", 2)
	_, err2 := j.Append("c", 3)
	if err1 == nil || err2 == nil || !strings.HasPrefix(err2.Error(), "append c: journal unusable after earlier failure: write: ") {
		t.Errorf("appends after a failed write: %v / %v", err1, err2)
	}
	if j.LastSeq() != 1 {
		t.Errorf("LastSeq %d after failed appends, want 1", j.LastSeq())
	}
}

// FuzzReplay feeds arbitrary file contents to the replay: it must never
// panic, and what it accepts must be a clean journal on its own.
func FuzzReplay(f *testing.F) {
	dir := f.TempDir()
	path := filepath.Join(dir, "seed")
	j, _, err := Open(path)
	if err != nil {
		f.Fatal(err)
	}
	for i := range 3 {
		j.Append("batch", testRec{Batch: i, Op: "announce"})
	}
	j.Close()
	good, _ := os.ReadFile(path)
	f.Add(good)                       // a clean journal
	f.Add(good[:len(good)-7])         // a torn last record
	f.Add(good[:headerSize])          // only the header
	f.Add(good[:3])                   // a torn header
	f.Add([]byte{})                   // empty
	f.Add([]byte("CUTOVERJ\x01\x00")) // short header
	bad := slices.Clone(good)
	bad[headerSize+20] ^= 1
	f.Add(bad) // corrupt first record with good ones after it

	f.Fuzz(func(t *testing.T, data []byte) {
		recs, n, rec, err := scan(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error without ErrCorrupt: %v", err)
			}
			return
		}
		if n > len(data) || (rec == nil && n != len(data) && len(data) != 0) {
			t.Fatalf("good prefix %d of %d bytes, recovered %v", n, len(data), rec)
		}
		if n == 0 {
			return
		}
		// The good prefix replays to the same records, cleanly, and is
		// exactly the records re-encoded.
		recs2, n2, rec2, err := scan(data[:n])
		if err != nil || n2 != n || rec2 != nil || !equalRecords(recs, recs2) {
			t.Fatalf("good prefix does not replay cleanly: %v %d %v", err, n2, rec2)
		}
		enc := header()
		for _, r := range recs {
			enc = append(enc, encode(r.Seq, r.Time, r.Type, r.Data)...)
		}
		if !bytes.Equal(enc, data[:n]) {
			t.Fatalf("re-encoded records differ from the good prefix")
		}
	})
}

func BenchmarkAppend(b *testing.B) {
	dir := b.TempDir()
	j, _, err := Open(filepath.Join(dir, "bench"))
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	v := testRec{Batch: 7, Op: "announce", Moved: []int{0, 1, 2, 3, 4, 5, 6, 7}}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		if _, err := j.Append("applied", v); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// TestLockOtherProcess holds the journal in a child process: Open names the
// child's pid, and succeeds once the child is killed (as after kill -9 of
// the daemon, the kernel drops the lock with the process).
func TestLockOtherProcess(t *testing.T) {
	if p := os.Getenv("JOURNAL_TEST_HOLD"); p != "" {
		j, _, err := Open(p)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("locked")
		// Hold the lock until stdin closes or the parent kills us.
		buf := make([]byte, 1)
		os.Stdin.Read(buf)
		j.Close()
		os.Exit(0)
	}
	path := newPath(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockOtherProcess$")
	cmd.Env = append(os.Environ(), "JOURNAL_TEST_HOLD="+path)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("child: %q, %v", line, err)
	}
	_, _, err = Open(path)
	comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", cmd.Process.Pid))
	want := fmt.Sprintf("open journal %s: journal locked by pid %d (%s): is another cutover daemon running?",
		path, cmd.Process.Pid, strings.TrimSpace(string(comm)))
	if err == nil || err.Error() != want {
		t.Fatalf("Open while the child holds the lock:\n got %v\nwant %s", err, want)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	j, _, err := Open(path)
	if err != nil {
		t.Fatalf("Open after the holder was killed: %v", err)
	}
	j.Close()
}
