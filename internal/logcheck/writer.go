package logcheck

import (
	"bytes"
	"io"
	"sync"

	"github.com/rs/zerolog"
)

// TB is the part of testing.TB that Writer uses (so that this package does
// not import testing into the binaries that use Log).
type TB interface {
	zerolog.TestingLog
	Errorf(format string, args ...any)
	Cleanup(func())
}

// Writer returns the writer for a test's logger: like
// zerolog.NewTestWriter(t) it logs each line with t.Log, and it fails the
// test (t.Errorf) for each line that Line rejects:
//
//	log := zerolog.New(logcheck.Writer(t))
//
// zerolog writes a whole line per Write, but Writer does not rely on it:
// it joins partial writes into lines, and checks a last line left without
// its newline when the test ends. It is safe for concurrent use.
func Writer(t TB) io.Writer {
	w := &writer{t: t, tw: zerolog.NewTestWriter(t)}
	t.Cleanup(w.flush)
	return w
}

type writer struct {
	t  TB
	tw zerolog.TestWriter

	mu      sync.Mutex
	pending []byte // a line not yet ended by a newline
}

func (w *writer) Write(p []byte) (int, error) {
	w.t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	rest := p
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		line := rest[:i]
		if len(w.pending) > 0 {
			line = append(w.pending, line...)
			w.pending = w.pending[:0]
		}
		w.line(line)
		rest = rest[i+1:]
	}
	w.pending = append(w.pending, rest...)
	return len(p), nil
}

// line logs and checks one line.
func (w *writer) line(b []byte) {
	w.t.Helper()
	if len(bytes.TrimSpace(b)) == 0 {
		return
	}
	_, _ = w.tw.Write(b)
	if err := Line(b); err != nil {
		w.t.Errorf("log line is not strict JSON with unique keys: %v: %s", err, b)
	}
}

// flush checks the line left without its newline, if any.
func (w *writer) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pending) > 0 {
		w.line(w.pending)
		w.pending = nil
	}
}
