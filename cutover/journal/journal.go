// Package journal is the cutover daemon's append-only, fsync'd, checksummed
// record of every intent and every completed change. The daemon's state after
// a restart is the fold of the records Open returns.
//
// # File format
//
// All integers are little-endian.
//
//	file   = header record*
//	header = magic "CUTOVERJ" (8 bytes) | version uint32 (= 1)
//	record = n uint32 | crc uint32 | body (n bytes)
//	body   = seq uint64 | time int64 (unix nanoseconds) | tlen uint16 | type (tlen bytes) | data (JSON)
//
// crc is the CRC-32C (Castagnoli) of body, so it covers the sequence number,
// the time and the type as well as the JSON payload: a bit flip anywhere in
// a record other than in n is caught by the checksum, and one in n makes the
// record run past the end of the file or fail its checksum. Sequence numbers
// start at 1 and grow by exactly one; Open checks that.
//
// # Recovery
//
// A crash during Append leaves at most one incomplete record at the end of the
// file (a prefix of it, or, on some file systems, a block of zeros). Open
// detects such a torn or corrupt tail, drops it, truncates the file back to the
// last good record so that the next Append is clean, and reports what it
// dropped through Journal.Recovered.
//
// A bad record followed by good ones is different: the loss of a record in the
// middle means the fold of the journal no longer describes what was applied,
// so Open fails with ErrCorrupt and leaves the file alone for a person to look
// at. Open tells the two cases apart by searching the bytes after the bad
// record for any well-formed record (length in range, checksum matches,
// sequence number after the last good one); the chance that damaged bytes
// pass that by accident is about 2^-32 per candidate position.
//
// # A full file system
//
// A write that fails for want of space (ENOSPC, EDQUOT) does not make the
// journal unusable: Append cuts the partial record off again and returns
// the error, and a later Append may succeed once there is room. (A failed
// fsync for any other reason still is sticky, see Append.)
//
// Reserve keeps disk space for the journal in a second file, the reserve
// (<journal>.reserve), allocated with fallocate(2): when an append finds
// the file system full, the journal gives back as much of the reserve as
// the record needs and writes it there. A run that could reserve its space
// when it started can therefore always journal its rollback. While the
// reserve is short of its size, or the file system has no free block, Low
// says so: the engine then takes no step forward, only rollback and
// pauses, whose records the reserve is for.
package journal

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Version is the file format version this package writes and reads.
const Version = 1

// MaxRecord is the largest record body (sequence number, time, type and data)
// Append writes and Open accepts.
const MaxRecord = 64 << 20

// MaxType is the longest record type.
const MaxType = 255

const (
	magic      = "CUTOVERJ"
	headerSize = len(magic) + 4
	prefixSize = 8                 // n, crc
	fixedBody  = 8 + 8 + 2         // seq, time, tlen
	minBody    = fixedBody + 1 + 1 // a type of one byte and one byte of JSON
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors callers branch on (with errors.Is).
var (
	// ErrCorrupt means the file is damaged in a way Open must not repair:
	// a bad header, a bad record followed by good ones, or a sequence gap.
	ErrCorrupt = errors.New("journal corrupt")
	// ErrLocked means another process (or another Open in this one) holds
	// the journal.
	ErrLocked = errors.New("journal locked")
	// ErrClosed is returned by Append after Close.
	ErrClosed = errors.New("journal closed")
)

// Record is one journal entry.
type Record struct {
	Seq  uint64          // 1, 2, 3, ...
	Time time.Time       // when it was appended (wall clock, UTC)
	Type string          // what Data holds, e.g. "intent"
	Data json.RawMessage // the JSON encoding of the appended value
}

// Recovered describes a torn or corrupt tail that Open dropped.
type Recovered struct {
	Offset  int64  // file offset of the first dropped byte (where the file now ends)
	Dropped int64  // how many bytes were dropped
	Reason  string // e.g. "record at offset 4096 runs past the end of the file (torn write)"
}

// String describes the recovery for a log line.
func (r Recovered) String() string {
	return fmt.Sprintf("dropped %d bytes at offset %d: %s", r.Dropped, r.Offset, r.Reason)
}

// Journal is an open journal file, held under an exclusive lock. It is safe
// for concurrent use; records are numbered in the order Append is called.
type Journal struct {
	path      string
	recovered *Recovered

	mu   sync.Mutex
	f    *os.File // nil after Close
	seq  uint64   // of the last record
	size int64    // bytes of good data in the file; 0: the header is still to be written
	err  error    // sticky: set when an append failed in a way a retry cannot mend
	now  func() time.Time
	res  reserve

	// failWrite and failSync, when set, stand for the disk in tests:
	// they are asked before each write and sync, and an error they return
	// is that write's or sync's.
	failWrite func(b []byte) error
	failSync  func() error
}

func (j *Journal) writeAt(b []byte, off int64) (int, error) {
	if j.failWrite != nil {
		if err := j.failWrite(b); err != nil {
			return 0, err
		}
	}
	return j.f.WriteAt(b, off)
}

func (j *Journal) sync() error {
	if j.failSync != nil {
		if err := j.failSync(); err != nil {
			return err
		}
	}
	return syncFile(j.f)
}

// Open opens the journal at path, creating it (mode 0600) when it does not
// exist, takes an exclusive lock on it, and returns every record in order.
// A torn or corrupt tail is dropped (see Recovered); any other damage is an
// error wrapping ErrCorrupt, and a journal held by another process an error
// wrapping ErrLocked.
func Open(path string) (*Journal, []Record, error) {
	f, err := openFile(path)
	if err != nil {
		return nil, nil, err
	}
	j, recs, err := open(f, path)
	if err != nil {
		f.Close() // releases the lock
		return nil, nil, err
	}
	return j, recs, nil
}

func openFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	return f, nil
}

func open(f *os.File, path string) (*Journal, []Record, error) {
	if err := lockFile(f); err != nil {
		if errors.Is(err, ErrLocked) {
			return nil, nil, fmt.Errorf("open journal %s: %w", path, err)
		}
		return nil, nil, fmt.Errorf("lock journal %s: %w", path, err)
	}
	buf, err := readAll(f)
	if err != nil {
		return nil, nil, fmt.Errorf("read journal %s: %w", path, err)
	}
	j := &Journal{path: path, f: f, now: time.Now}
	recs, good, rec, err := scan(buf)
	if err != nil {
		return nil, nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	j.size, j.recovered = int64(good), rec
	if len(recs) > 0 {
		j.seq = recs[len(recs)-1].Seq
	}

	if j.size == 0 {
		// Write (or rewrite) the header. On a full file system the journal
		// opens without it (it holds no record): the first Append that
		// finds room writes it.
		if err := j.writeHeader(); err != nil && !NoSpace(err) {
			return nil, nil, err
		}
	} else if j.recovered != nil {
		if err := f.Truncate(j.size); err != nil {
			return nil, nil, fmt.Errorf("truncate torn tail of journal %s: %w", path, err)
		}
		if err := syncFile(f); err != nil {
			return nil, nil, fmt.Errorf("sync journal %s: %w", path, err)
		}
	}
	if _, err := f.Seek(j.size, io.SeekStart); err != nil {
		return nil, nil, fmt.Errorf("seek journal %s: %w", path, err)
	}
	if err := j.res.open(path + reserveSuffix); err != nil {
		return nil, nil, err
	}
	return j, recs, nil
}

// writeHeader writes the header into the empty (or torn) file. On an
// error the file is cut back to nothing and j.size stays 0.
func (j *Journal) writeHeader() error {
	if err := j.f.Truncate(0); err != nil {
		return fmt.Errorf("truncate journal %s: %w", j.path, err)
	}
	if _, err := j.writeAt(header(), 0); err != nil {
		_ = j.f.Truncate(0)
		return fmt.Errorf("write journal header %s: %w", j.path, err)
	}
	if err := j.sync(); err != nil {
		_ = j.f.Truncate(0)
		return fmt.Errorf("sync journal %s: %w", j.path, err)
	}
	// The file may be new: make its directory entry durable too.
	if err := syncDir(filepath.Dir(j.path)); err != nil {
		return fmt.Errorf("sync journal directory: %w", err)
	}
	j.size = int64(headerSize)
	return nil
}

// NoSpace reports whether err is the file system's "no space left on
// device" or "disk quota exceeded": an error a later retry may not get.
func NoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

func readAll(f *os.File) ([]byte, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, fi.Size())
	n, err := f.ReadAt(buf, 0)
	if err != nil && n != len(buf) {
		return nil, err
	}
	return buf, nil
}

func header() []byte {
	h := make([]byte, headerSize)
	copy(h, magic)
	binary.LittleEndian.PutUint32(h[len(magic):], Version)
	return h
}

// scan parses buf, the whole file. It returns the good records, the length
// of the good prefix of buf (0: the file needs a header), and a non-nil
// Recovered when it dropped a bad tail. Damage it must not repair is an
// error wrapping ErrCorrupt.
func scan(buf []byte) (recs []Record, good int, rec *Recovered, err error) {
	switch {
	case len(buf) == 0:
		// New, or created by a process that died before writing the header.
		return nil, 0, nil, nil
	case len(buf) < headerSize && bytes.HasPrefix(header(), buf):
		return nil, 0, &Recovered{Dropped: int64(len(buf)), Reason: "incomplete file header (torn write)"}, nil
	}
	return replay(buf)
}

// replay parses buf, a whole file that starts with a header.
func replay(buf []byte) (recs []Record, good int, rec *Recovered, err error) {
	if len(buf) < headerSize || string(buf[:len(magic)]) != magic {
		return nil, 0, nil, fmt.Errorf("%w: not a cutover journal (bad magic)", ErrCorrupt)
	}
	if v := binary.LittleEndian.Uint32(buf[len(magic):]); v != Version {
		return nil, 0, nil, fmt.Errorf("%w: unsupported format version %d (this build reads %d)", ErrCorrupt, v, Version)
	}
	off := headerSize
	var last uint64
	for off < len(buf) {
		r, n, why := parse(buf[off:])
		if why != "" {
			if at, ok := findRecord(buf, off+1, last); ok {
				return nil, 0, nil, fmt.Errorf("%w: record at offset %d after seq %d: %s, but a good record follows at offset %d; refusing to drop it",
					ErrCorrupt, off, last, why, at)
			}
			return recs, off, &Recovered{Offset: int64(off), Dropped: int64(len(buf) - off),
				Reason: fmt.Sprintf("record at offset %d after seq %d: %s", off, last, why)}, nil
		}
		if r.Seq != last+1 {
			return nil, 0, nil, fmt.Errorf("%w: record at offset %d has seq %d after seq %d", ErrCorrupt, off, r.Seq, last)
		}
		last = r.Seq
		recs = append(recs, r)
		off += n
	}
	return recs, off, nil, nil
}

// parse decodes the record at the start of b. It returns the record and its
// size, or why the bytes are not a good record.
func parse(b []byte) (r Record, size int, why string) {
	if len(b) < prefixSize {
		return r, 0, fmt.Sprintf("%d bytes left, less than a record header (torn write)", len(b))
	}
	n := int(binary.LittleEndian.Uint32(b))
	if n < minBody || n > MaxRecord {
		return r, 0, fmt.Sprintf("bad length %d", n)
	}
	if prefixSize+n > len(b) {
		return r, 0, fmt.Sprintf("length %d runs past the end of the file by %d bytes (torn write)", n, prefixSize+n-len(b))
	}
	body := b[prefixSize : prefixSize+n]
	if got, want := crc32.Checksum(body, castagnoli), binary.LittleEndian.Uint32(b[4:]); got != want {
		return r, 0, fmt.Sprintf("checksum mismatch (crc32c %08x, want %08x)", got, want)
	}
	tlen := int(binary.LittleEndian.Uint16(body[16:]))
	if tlen == 0 || fixedBody+tlen >= n {
		return r, 0, fmt.Sprintf("bad type length %d", tlen)
	}
	data := body[fixedBody+tlen:]
	if !json.Valid(data) {
		return r, 0, "data is not valid JSON"
	}
	r = Record{
		Seq:  binary.LittleEndian.Uint64(body),
		Time: time.Unix(0, int64(binary.LittleEndian.Uint64(body[8:]))).UTC(),
		Type: string(body[fixedBody : fixedBody+tlen]),
		Data: json.RawMessage(data),
	}
	return r, prefixSize + n, ""
}

// findRecord reports whether a good record with a sequence number after last
// starts anywhere in buf at or after from, and where.
func findRecord(buf []byte, from int, last uint64) (int, bool) {
	for p := from; p+prefixSize+minBody <= len(buf); p++ {
		n := int(binary.LittleEndian.Uint32(buf[p:]))
		if n < minBody || n > MaxRecord || p+prefixSize+n > len(buf) {
			continue
		}
		// Cheap filter before the checksum: a later record's seq is above
		// last and at most one per minimal record further on.
		seq := binary.LittleEndian.Uint64(buf[p+prefixSize:])
		if seq <= last || seq-last > uint64(len(buf)-from)/uint64(prefixSize+minBody)+1 {
			continue
		}
		if _, _, why := parse(buf[p:]); why == "" {
			return p, true
		}
	}
	return 0, false
}

// encode frames one record.
func encode(seq uint64, at time.Time, typ string, data []byte) []byte {
	n := fixedBody + len(typ) + len(data)
	b := make([]byte, prefixSize+n)
	body := b[prefixSize:]
	binary.LittleEndian.PutUint64(body, seq)
	binary.LittleEndian.PutUint64(body[8:], uint64(at.UnixNano()))
	binary.LittleEndian.PutUint16(body[16:], uint16(len(typ)))
	copy(body[fixedBody:], typ)
	copy(body[fixedBody+len(typ):], data)
	binary.LittleEndian.PutUint32(b, uint32(n))
	binary.LittleEndian.PutUint32(b[4:], crc32.Checksum(body, castagnoli))
	return b
}

// Path returns the journal's file name.
func (j *Journal) Path() string { return j.path }

// Recovered returns what Open dropped from the end of the file, or nil when
// the file ended cleanly.
func (j *Journal) Recovered() *Recovered {
	if j.recovered == nil {
		return nil
	}
	r := *j.recovered
	return &r
}

// LastSeq returns the sequence number of the last record (0: none).
func (j *Journal) LastSeq() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.seq
}

// Size returns the length of the journal file in bytes.
func (j *Journal) Size() int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.size
}

// Append marshals v to JSON and appends it as a record of type typ: one
// write(2), then fdatasync(2). It returns the record once it is on disk.
// The record carries the time of the journal's clock.
//
// When the file system is full, Append writes the record into space it
// takes back from the reserve (see Reserve); without reserve left it
// returns an error for which NoSpace is true, and the journal stays usable:
// the partial record is cut off, and a later Append may find room.
//
// Any other failed write whose partial record cannot be cut off again, and
// a failed sync for any reason but a full file system, make the journal
// refuse every later Append with the same error: after a failed fsync the
// kernel may have dropped the dirty pages, so what is on disk is unknown
// until the journal is opened again (which replays and, if needed,
// truncates the tail). A sync that failed for want of space concerns only
// blocks the record needed beyond the end of the good data, which is
// therefore cut back to its last synced length and synced again.
func (j *Journal) Append(typ string, v any) (Record, error) {
	return j.append(typ, v, time.Time{})
}

// AppendAt is Append for a record that carries the time at instead of the
// journal's clock: a record written later than the event it describes (it
// was held in memory while the journal could not be written).
func (j *Journal) AppendAt(typ string, v any, at time.Time) (Record, error) {
	if at.IsZero() {
		return Record{}, fmt.Errorf("append %s: no time", typ)
	}
	return j.append(typ, v, at)
}

func (j *Journal) append(typ string, v any, at time.Time) (Record, error) {
	if typ == "" || len(typ) > MaxType {
		return Record{}, fmt.Errorf("append %q: type must be 1 to %d bytes", typ, MaxType)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return Record{}, fmt.Errorf("append %s: marshal: %w", typ, err)
	}
	if n := fixedBody + len(typ) + len(data); n > MaxRecord {
		return Record{}, fmt.Errorf("append %s: record of %d bytes exceeds the limit of %d", typ, n, MaxRecord)
	}

	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return Record{}, fmt.Errorf("append %s: %w", typ, ErrClosed)
	}
	if j.err != nil {
		return Record{}, fmt.Errorf("append %s: journal unusable after earlier failure: %w", typ, j.err)
	}
	if at.IsZero() {
		at = j.now()
	}
	// Time as stored: nanosecond wall clock, no monotonic reading.
	r := Record{Seq: j.seq + 1, Time: time.Unix(0, at.UnixNano()).UTC(), Type: typ, Data: json.RawMessage(data)}
	frame := encode(r.Seq, r.Time, typ, data)
	for {
		err := j.writeFrame(frame)
		if err == nil {
			break
		}
		if j.err == nil && NoSpace(err) && j.res.release(len(frame)+headerSize) {
			continue // room made from the reserve: again
		}
		return Record{}, fmt.Errorf("append %s: %w", typ, err)
	}
	j.seq = r.Seq
	return r, nil
}

// writeFrame writes one record after the good data (after the header,
// when that is still to be written) and syncs it. On a failure it cuts the
// file back to the good data, or, when it cannot, sets the sticky error.
func (j *Journal) writeFrame(frame []byte) error {
	first := j.size == 0
	if first {
		frame = append(header(), frame...)
	}
	if _, err := j.writeAt(frame, j.size); err != nil {
		err = fmt.Errorf("write: %w", err)
		// Cut the partial record so the file stays clean.
		if terr := j.f.Truncate(j.size); terr != nil {
			j.err = err
		}
		return err
	}
	if err := j.sync(); err != nil {
		err = fmt.Errorf("sync: %w", err)
		if !NoSpace(err) {
			j.err = err
			return err
		}
		// The blocks the record needed could not be allocated: the data
		// synced before is intact. Cut the record off and make the cut
		// durable, or give up on the journal.
		if terr := j.f.Truncate(j.size); terr != nil {
			j.err = err
		} else if serr := j.sync(); serr != nil {
			j.err = err
		}
		return err
	}
	if first {
		if err := syncDir(filepath.Dir(j.path)); err != nil {
			j.err = fmt.Errorf("sync journal directory: %w", err)
			return j.err
		}
	}
	j.size += int64(len(frame))
	return nil
}

// Record appends v like Append and returns the time the record carries. It
// lets a *Journal serve as the engine's cutover.Recorder.
func (j *Journal) Record(typ string, v any) (time.Time, error) {
	r, err := j.Append(typ, v)
	return r.Time, err
}

// RecordAt appends v like AppendAt and returns the time the record
// carries: the engine's way to write a record it held in memory.
func (j *Journal) RecordAt(typ string, v any, at time.Time) (time.Time, error) {
	r, err := j.AppendAt(typ, v, at)
	return r.Time, err
}

// Close releases the lock and closes the file and the reserve (which
// stays on disk). Further Appends fail with ErrClosed; closing twice is a
// no-op.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	j.res.close()
	if err != nil {
		return fmt.Errorf("close journal: %w", err)
	}
	return nil
}
