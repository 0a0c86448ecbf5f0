package rehearse

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/journal"
	"github.com/cutover/cutover/internal/testenv"
	"github.com/cutover/cutover/lab"
)

// copyTree copies the regular files and directories under src into dst,
// with their modes.
func copyTree(src, dst string) (int64, error) {
	var total int64
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(to, info.Mode().Perm())
		case info.Mode().IsRegular():
			in, err := os.Open(p)
			if err != nil {
				return err
			}
			defer in.Close()
			out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, info.Mode().Perm())
			if err != nil {
				return err
			}
			n, err := io.Copy(out, in)
			total += n
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			return err
		}
		return nil // the socket and the lock live elsewhere or are made again
	})
	return total, err
}

// moveStateToTmpfs kills the daemon, moves its state directory onto a
// tmpfs that holds what is there and room more, and starts it again.
func (r *rehearsal) moveStateToTmpfs(ctx context.Context, t *testing.T, room int64) {
	t.Helper()
	killPID(r.ld.PID, r.ld.Socket)
	keep := t.TempDir()
	used, err := copyTree(r.dir, keep)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(r.dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(r.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	size := (used + room + 4095) &^ 4095
	if err := syscall.Mount("tmpfs", r.dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		t.Skipf("mount tmpfs: %v", err)
	}
	// Runs before the lab's teardown (cleanups run last first): the daemon
	// may still hold the journal open, so detach.
	t.Cleanup(func() { _ = syscall.Unmount(r.dir, syscall.MNT_DETACH) })
	if _, err := copyTree(keep, r.dir); err != nil {
		t.Fatal(err)
	}
	t.Logf("state directory moved onto a tmpfs of %d KiB (%d KiB in use)", size>>10, used>>10)
}

// padJournal appends audit records to the (dead) daemon's journal until
// its last page is all but full: the next record the daemon writes needs
// a new page, which a full file system does not have.
func (r *rehearsal) padJournal(t *testing.T) {
	t.Helper()
	j, _, err := journal.Open(filepath.Join(r.dir, "journal"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	for j.Size()%4096 < 4096-160 {
		if _, err := j.Append(engine.RecOperator, engine.OperatorRecord{Command: "padding", Operator: "TestDaemonFullDiskLab"}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDaemonFullDiskLab is item 2 of issue "The emergency brake always
// works" against the lab's real edge: a run has 200 VMs moved when the
// daemon's state directory fills up. rollback --all must bring the edge's
// FIB back to the source at once, the daemon must say the journal is
// unusable, and its log must stay small.
func TestDaemonFullDiskLab(t *testing.T) {
	testenv.RequireFRR(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	r, held := upPaused(ctx, t, 120*time.Second)
	killed := time.Now()
	r.moveStateToTmpfs(ctx, t, 64<<10)
	r.padJournal(t)
	testenv.FillDisk(t, r.dir)
	logPath := filepath.Join(r.l.Dir(), "daemon.log")
	logBefore := fileSize(t, logPath)
	// The daemon starts on the full disk: its recovery's records go into
	// the journal's reserve.
	if err := startLabDaemon(ctx, r.l, r.ld); err != nil {
		t.Fatal(err)
	}
	if _, err := waitSessionSince(ctx, r.l, r.l.Topology().Ctl4, killed, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // the edge has the restarted speaker's End-of-RIB
	if n, err := heldRoutes(ctx, r.l); err != nil || n != held {
		t.Fatalf("after the restart on the full disk the edge holds %d controller routes (%v), want %d", n, err, held)
	}
	st, err := r.cl.Status(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("restarted on the full disk: phase %s (pause %q), journal %+v", st.State.Phase, st.State.Pause, st.Journal)
	if !st.Journal.Unusable {
		t.Errorf("after a restart on the full disk the status does not say the journal is unusable: %+v", st.Journal)
	}

	start := time.Now()
	took, err := r.cl.Rollback(ctx, engine.AllBatches())
	if err != nil {
		t.Fatalf("rollback --all on a full state directory: %v", err)
	}
	var back time.Duration
	for {
		n, err := heldRoutes(ctx, r.l)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			back = time.Since(start)
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("%s after rollback --all on a full disk the edge still holds %d controller routes", time.Since(start).Round(time.Millisecond), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("rollback --all on a full state directory: the daemon took %s, the edge FIB held no controller route %s after the command",
		took, back.Round(time.Millisecond))
	st, err = r.cl.Status(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("journal: %+v", st.Journal)
	if len(st.State.Applied) != 0 {
		t.Errorf("after rollback --all the journal's state has batches %v moved", st.State.Applied)
	}
	if !st.Journal.Unusable || !strings.Contains(st.Journal.Full, "is full") {
		t.Errorf("the status does not say the journal is unusable on the full disk: %+v", st.Journal)
	}
	if edgeTableSteers(ctx, t, r.l) {
		t.Error("after rollback --all the edge's nft table still steers addresses")
	}
	r.verify(ctx, st.State)
	for _, c := range r.res.Checked {
		t.Log("checked:", c)
	}
	for _, p := range r.res.Problems {
		t.Error(p)
	}

	// The log while the disk stays full: no line repeats without back-off.
	time.Sleep(10 * time.Second)
	grew := fileSize(t, logPath) - logBefore
	lines := 0
	if b, err := os.ReadFile(logPath); err == nil && int64(len(b)) >= logBefore {
		lines = bytes.Count(b[logBefore:], []byte("\n"))
	}
	t.Logf("the daemon's log grew by %d bytes, %d lines, from its start on the full disk to 10 s after the rollback", grew, lines)
	if lines > 200 {
		t.Errorf("the daemon logged %d lines in 10 s on a full disk", lines)
	}
}

func fileSize(t *testing.T, p string) int64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// edgeTableSteers reports whether the edge's nft table holds moved
// addresses.
func edgeTableSteers(ctx context.Context, t *testing.T, l *lab.Lab) bool {
	t.Helper()
	out, err := lab.Exec(l.Namespace(lab.NodeEdge), "nft", "list", "set", "inet", "cutover", "moved_skm2_v4").CombinedOutput()
	if err != nil {
		return false // no table, no set: nothing steered
	}
	return strings.Contains(string(out), "elements")
}
