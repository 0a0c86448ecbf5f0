package serve

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/cutover/cutover/cutover/daemon"
	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/internal/fileinfo"
	"github.com/cutover/cutover/internal/memlimit"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// ServeOptions are the daemon's settings (cutover serve's flags).
type Options struct {
	Socket         string
	SocketGroup    string
	StateDir       string
	MetricsAddr    string // "": no metrics listener
	WithdrawOnStop bool
	IgnoreWindow   bool // see daemon.Config.IgnoreWindow
	Backends       LiveBackends
	Notify         func(kind, msg string)
	EvidenceDir    string // see daemon.Config.EvidenceDir
	Rehearsing     bool   // see daemon.Config.Rehearsing
	TenantNotify   string // see daemon.Config.TenantNotify
	OperatorGroup  string // see daemon.Config.OperatorGroup
}

// Serve runs the daemon until ctx ends: it opens the state (re-applying a
// journaled state at once), serves the local API and, if asked, metrics,
// and on the way out keeps or withdraws the routes.
func Run(ctx context.Context, o Options, log zerolog.Logger) error {
	dlog := log.With().Str("component", "daemon").Logger()
	mctx, stopMem := context.WithCancel(ctx)
	defer stopMem()
	go memlimit.Follow(mctx, time.Second)
	if err := checkStateDir(o.StateDir, os.Geteuid()); err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	start := time.Now()
	d, err := daemon.Open(ctx, daemon.Config{StateDir: o.StateDir, Backends: o.Backends, Log: log,
		Metrics: engine.NewMetrics(reg), Notify: o.Notify, IgnoreWindow: o.IgnoreWindow,
		EvidenceDir: o.EvidenceDir, Rehearsing: o.Rehearsing, TenantNotify: o.TenantNotify, OperatorGroup: o.OperatorGroup})
	if err != nil {
		return err
	}
	reg.MustRegister(d.Collector())
	st := d.Status(0).State
	dlog.Info().Str("op", "start").Dur("took", time.Since(start)).Str("phase", string(st.Phase)).
		Int("batches", len(st.Applied)).Msg("daemon ready")
	l, err := daemon.Listen(o.Socket, o.SocketGroup)
	if err != nil {
		_ = d.Close(false)
		return err
	}
	if o.MetricsAddr != "" {
		ml, err := net.Listen("tcp", o.MetricsAddr)
		if err != nil {
			l.Close()
			_ = d.Close(false)
			return fmt.Errorf("metrics: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		msrv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = msrv.Serve(ml) }()
		defer msrv.Close()
	}
	sdn := newNotifier(dlog)
	sdn.notify("READY=1\nSTATUS=" + statusLine(d.Status(0)))
	if iv := watchdogInterval(); iv > 0 {
		wctx, stop := context.WithCancel(ctx)
		defer stop()
		go sdn.watchdog(wctx, iv, func() engine.Status { return d.Status(0) })
	}
	serr := d.Serve(ctx, l)
	sdn.notify("STOPPING=1")
	dlog.Info().Str("op", "stop").Bool("withdraw", o.WithdrawOnStop).Msg("daemon stopping")
	cerr := d.Close(o.WithdrawOnStop)
	_ = os.Remove(o.Socket)
	if serr != nil && !errors.Is(serr, context.Canceled) {
		return serr
	}
	return cerr
}

// checkStateDir makes sure the state directory is the daemon's own before
// the daemon reads a journal from it and re-applies the state it holds:
// whoever can write there can change what the daemon announces. A missing
// directory is created with mode 0700 (its missing parents too); an
// existing one must be a real directory (not a symlink), owned by uid (the
// daemon's user, root) and writable by neither its group nor others.
// Otherwise the daemon refuses to start, and the error says how to fix it.
func checkStateDir(dir string, uid int) error {
	if dir == "" {
		return errors.New("state dir: not set: set --state-dir to a directory owned by the daemon's user with mode 0700")
	}
	dir = filepath.Clean(dir) // "link/" would name the directory the link points to
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := makeStateDir(dir); err != nil {
			return fmt.Errorf("state dir: %w", err)
		}
		fi, err = os.Lstat(dir)
	}
	if err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	want := fmt.Sprintf("a directory owned by uid %d with mode 0700", uid)
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(dir)
		if err != nil {
			target = "?"
		}
		return fmt.Errorf("state dir %s is a symlink to %s: the daemon does not follow it; fix: set --state-dir to %s", dir, target, want)
	case !fi.IsDir():
		return fmt.Errorf("state dir %s is %s, not a directory; fix: move it away, or set --state-dir to %s", dir, fileinfo.Kind(fi.Mode()), want)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("state dir %s: cannot read its owner and mode", dir)
	}
	var problems, fixes []string
	if int(st.Uid) != uid {
		problems = append(problems, fmt.Sprintf("owned by uid %d, not by uid %d that the daemon runs as", st.Uid, uid))
		fixes = append(fixes, fmt.Sprintf("chown %d %s", uid, shellQuote(dir)))
	}
	mode := st.Mode & 0o7777
	var writable []string
	if mode&0o020 != 0 {
		writable = append(writable, "group")
	}
	if mode&0o002 != 0 {
		writable = append(writable, "world")
	}
	if len(writable) > 0 {
		problems = append(problems, fmt.Sprintf("mode %04o (%s-writable)", mode, strings.Join(writable, "- and ")))
		fixes = append(fixes, "chmod 700 "+shellQuote(dir))
	}
	if len(problems) > 0 {
		return fmt.Errorf("state dir %s is not safe to use: %s; whoever can write there can change the journal "+
			"the daemon re-applies at start; fix: %s", dir, strings.Join(problems, ", "), strings.Join(fixes, " && "))
	}
	return nil
}

// makeStateDir creates dir with mode 0700, whatever the umask. A dir made
// by someone else meanwhile is left to the checks.
func makeStateDir(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); errors.Is(err, fs.ErrExist) {
		return nil
	} else if err != nil {
		return err
	}
	// Through the directory made, not its path: by now the path might
	// name something else, and chmod follows symlinks.
	f, err := os.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Chmod(0o700)
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_./:@%+=,-]+$`)

// shellQuote quotes a path for a fix to paste into a shell.
func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
