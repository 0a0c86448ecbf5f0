package rehearse

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/internal/testenv"
	"github.com/cutover/cutover/lab"
)

// loseJournal kills the daemon with SIGKILL, empties its journal (the
// file truncated to 0 bytes, as a restore of the wrong backup or a hand
// edit would leave it) and starts it again. It returns the daemon's
// status afterwards.
func (r *rehearsal) loseJournal(ctx context.Context, t *testing.T) engine.Status {
	t.Helper()
	killPID(r.ld.PID, r.ld.Socket)
	if err := os.Truncate(filepath.Join(r.dir, "journal"), 0); err != nil {
		t.Fatal(err)
	}
	if err := startLabDaemon(ctx, r.l, r.ld); err != nil {
		t.Fatal(err)
	}
	st, err := r.cl.Status(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// edgeTable reports whether the edge holds the tool's nft table.
func edgeTable(ctx context.Context, l *lab.Lab) bool {
	err := exec.CommandContext(ctx, "ip", "netns", "exec", l.Namespace(lab.NodeEdge), "nft", "list", "table", "inet", "cutover").Run()
	return err == nil
}

// TestDaemonJournalLost is item 6 of issue "The emergency brake always
// works": a run has 200 VMs moved when the daemon dies and its journal is
// emptied. Started again, the daemon must not call itself idle: it says
// what it found (the nft table's moves, the run's snapshot), refuses a
// run, and the edge keeps every route while a person decides. Adopt
// takes the moves over as a finished run (the edge's routes are
// refreshed, never dropped); after a second loss, rollback --all (clear)
// takes them away: the edge drops the routes and the table is gone.
func TestDaemonJournalLost(t *testing.T) {
	testenv.RequireFRR(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	r, held := upPaused(ctx, t, 120*time.Second)
	peer := r.l.Topology().Ctl4
	abs, _ := filepath.Abs(r.o.Runbook)

	fib := sampleFIB(ctx, r.l)
	defer fib.Stop()
	lost := time.Now()
	st := r.loseJournal(ctx, t)
	u := st.Unreconciled
	if st.State.Phase != engine.PhaseUnreconciled || u == nil {
		t.Fatalf("after the journal was emptied the daemon is %s (unreconciled %v), want unreconciled", st.State.Phase, u)
	}
	for _, f := range u.Found {
		t.Log("found:", f)
	}
	t.Log("adopt would take:", u.Adopt)
	t.Log("clear would:", u.Clear)
	if !slices.ContainsFunc(u.Found, func(s string) bool {
		return strings.HasPrefix(s, "nft table inet cutover in netns "+r.l.Namespace(lab.NodeEdge)+" steers moved addresses (200 addresses in moved_skm2_v4)")
	}) {
		t.Errorf("found %q: want the edge's table with 200 moved addresses", u.Found)
	}
	if !strings.Contains(u.Adopt, "with 3 of 4 batches moved") || !strings.Contains(u.Adopt, "200 VMs at skm2") {
		t.Errorf("adopt %q: want batches 0-2, 200 VMs", u.Adopt)
	}
	if err := r.cl.Run(ctx, abs, true); err == nil || !strings.Contains(err.Error(), "cutover reconcile adopt") {
		t.Errorf("run while unreconciled: %v, want it refused", err)
	}
	time.Sleep(2 * time.Second) // a person reads the status
	if err := r.cl.Reconcile(ctx, "adopt"); err != nil {
		t.Fatal(err)
	}
	if _, err := waitSessionSince(ctx, r.l, peer, lost, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	settled := time.Now().Add(2 * time.Second)
	for fib.last().at.Before(settled) {
		time.Sleep(50 * time.Millisecond)
	}
	samples := fib.Stop()
	lowest := held
	for _, s := range samples {
		lowest = min(lowest, s.n)
	}
	t.Logf("journal emptied, daemon restarted, adopted: %d FIB samples over %s, lowest %d of %d controller routes",
		len(samples), time.Since(lost).Round(time.Millisecond), lowest, held)
	if lowest < held {
		t.Errorf("the edge FIB dropped to %d of %d controller routes while the journal was lost and adopted", lowest, held)
	}
	st, err := r.cl.Status(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if o := outcomeOf(st.State); st.State.Phase != engine.PhaseDone || len(o.Committed) != 3 || !slices.Equal(st.State.Applied, []int{0, 1, 2}) {
		t.Errorf("after adopt the run is %s, applied %v: want done with batches 0-2 moved", o, st.State.Applied)
	}
	t.Log("result:", st.State.Result)
	r.verify(ctx, st.State)
	for _, c := range r.res.Checked {
		t.Log("checked:", c)
	}
	for _, p := range r.res.Problems {
		t.Error(p)
	}

	// Lost again; this time the brake: rollback --all clears.
	cleared := time.Now()
	st = r.loseJournal(ctx, t)
	if st.State.Phase != engine.PhaseUnreconciled {
		t.Fatalf("after the second loss the daemon is %s, want unreconciled", st.State.Phase)
	}
	if n, err := heldRoutes(ctx, r.l); err != nil || n != held {
		t.Fatalf("before the decision the edge holds %d controller routes (%v), want %d", n, err, held)
	}
	if _, err := r.cl.Rollback(ctx, engine.AllBatches()); err != nil {
		t.Fatal(err)
	}
	for {
		n, err := heldRoutes(ctx, r.l)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Since(cleared) > 60*time.Second {
			t.Fatalf("%s after rollback --all the edge still holds %d controller routes", time.Since(cleared).Round(time.Millisecond), n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("rollback --all on the unreconciled daemon: the edge dropped every controller route %s after the journal was lost",
		time.Since(cleared).Round(time.Millisecond))
	if edgeTable(ctx, r.l) {
		t.Error("after rollback --all the edge still holds the nft table inet cutover")
	}
	st, err = r.cl.Status(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if st.State.Phase != engine.PhaseIdle || st.Unreconciled != nil {
		t.Errorf("after rollback --all the daemon is %s (unreconciled %v), want idle", st.State.Phase, st.Unreconciled)
	}
}
