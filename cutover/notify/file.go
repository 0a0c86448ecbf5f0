package notify

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// FileMode is the mode of a notice file the router creates; a file that
// exists keeps its own.
const FileMode = 0o640

// fileSink appends one JSON line per notice to a file. The file is opened
// for each line, so that log rotation needs no signal: after a rename
// the next notice creates the file anew. One goroutine (its outbox's)
// appends, so lines never interleave.
type fileSink struct {
	path    string
	size    int
	backoff time.Duration
	log     zerolog.Logger

	once sync.Once
	ob   outbox
}

func (f *fileSink) start() {
	f.once.Do(func() { f.ob.start(f.size, f.backoff, f.log, f.append) })
}

func (f *fileSink) send(kind, tenant string, v any) {
	f.start()
	f.ob.put(kind, tenant, v)
}

// append writes body and a newline in one write, at the end of the file.
func (f *fileSink) append(_ context.Context, body []byte) error {
	file, err := openAppend(f.path)
	if err != nil {
		return fmt.Errorf("append notice: %w", err)
	}
	_, err = file.Write(append(body, '\n'))
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("append notice to %s: %w", f.path, err)
	}
	return nil
}

func (f *fileSink) close(ctx context.Context) error {
	f.start()
	if err := f.ob.close(ctx); err != nil {
		return fmt.Errorf("close notice file %s: %w", f.path, err)
	}
	return nil
}

func (f *fileSink) stats() (sent, dropped, failed uint64) { return f.ob.stats() }

// openAppend opens path for appending, creating it with FileMode (whatever
// the umask) when it does not exist. It does not follow a symbolic link:
// the daemon runs with privileges, and a link planted in a log directory
// must not send its writes elsewhere.
func openAppend(path string) (*os.File, error) {
	// O_NONBLOCK: opening a named pipe without a reader fails (and is
	// refused below) instead of blocking.
	const flags = os.O_WRONLY | os.O_APPEND | syscall.O_NOFOLLOW | syscall.O_CLOEXEC | syscall.O_NONBLOCK
	f, err := os.OpenFile(path, flags|os.O_CREATE|os.O_EXCL, FileMode)
	switch {
	case err == nil:
		if err := f.Chmod(FileMode); err != nil {
			f.Close()
			return nil, err
		}
		return f, nil
	case errors.Is(err, fs.ErrExist):
		f, err = os.OpenFile(path, flags, 0)
	}
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = &os.PathError{Op: "open", Path: path, Err: errors.New("not a regular file")}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
