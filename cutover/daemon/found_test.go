package daemon

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cutover/cutover/cutover/daemon/client"
	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/plan"
	"github.com/cutover/cutover/internal/logcheck"
	"github.com/cutover/cutover/nft"
)

// kernelBackends are fakes for one daemon process, over an nft table that
// outlives it (the kernel's): each Open gets a fresh speaker, and the
// same table.
type kernelBackends struct {
	FakeBackends
	kernel *nft.Fake
}

// lasting is the kernel's table: closing a handle leaves it as it is.
type lasting struct{ *nft.Fake }

func (lasting) Close() error { return nil }

func (k *kernelBackends) Dataplane(nft.Config) (DataplaneCloser, error) {
	return nftDataplane{lasting{k.kernel}}, nil
}

func openOver(t *testing.T, dir string, kernel *nft.Fake) (*Daemon, *kernelBackends) {
	t.Helper()
	kb := &kernelBackends{kernel: kernel}
	d, err := Open(context.Background(), Config{StateDir: dir, Backends: kb, Log: zerolog.New(logcheck.Writer(t))})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = d.Close(false) })
	return d, kb
}

func waitPhase(t *testing.T, d *Daemon, want engine.RunPhase) engine.Status {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := d.Status(0)
		if st.State.Phase == engine.PhasePaused && st.State.Confirm == "before-start" {
			if err := d.Confirm("before-start", true, "alice"); err != nil {
				t.Fatal(err)
			}
		}
		if st.State.Phase == want {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("phase %s (pause %q), want %s", st.State.Phase, st.State.Pause, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// movedState runs the daemon test runbook until batches 0 and 1 are
// committed, stops the daemon as a crash would, and loses its journal
// (lose: truncate or remove). It returns the plan and the kernel's table.
func movedState(t *testing.T, dir string, lose func(path string) error) (*plan.Plan, *nft.Fake) {
	t.Helper()
	abs, _ := filepath.Abs(daemonRunbook)
	snap, err := plan.ReadSnapshot(abs)
	if err != nil {
		t.Fatal(err)
	}
	pl, _, err := snap.Plan()
	if err != nil {
		t.Fatal(err)
	}
	kernel := nft.NewFake(nft.Config{})
	d, _ := openOver(t, dir, kernel)
	req := client.RunRequest{Runbook: client.File{Name: snap.RunbookName, Content: snap.Runbook},
		Inventory: client.File{Name: snap.InventoryName, Content: snap.Inventory}, Operator: "alice"}
	if err := d.Run(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, d, engine.PhaseDone)
	// Take batches 2 and 3 back: two of four stay moved.
	if _, err := d.Rollback(context.Background(), engine.BatchesFrom(2), "alice"); err != nil {
		t.Fatal(err)
	}
	if got := d.Status(0).State.Applied; !slices.Equal(got, []int{0, 1}) {
		t.Fatalf("applied %v after rollback --to 2", got)
	}
	if err := d.Close(false); err != nil {
		t.Fatal(err)
	}
	if err := lose(filepath.Join(dir, "journal")); err != nil {
		t.Fatal(err)
	}
	return pl, kernel
}

func truncate(path string) error { return os.Truncate(path, 0) }

// TestDaemonJournalLostAdopt: a journal emptied while the nft table
// steers two batches: the daemon says what it found, is not idle and
// starts no run; adopt takes the two batches as a finished run and
// announces their routes; the next start recovers them from the journal.
func TestDaemonJournalLostAdopt(t *testing.T) {
	for _, tc := range []struct {
		name string
		lose func(string) error
	}{
		{"truncated to 0 bytes", truncate},
		{"deleted", os.Remove},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ctx := context.Background()
			pl, kernel := movedState(t, dir, tc.lose)
			held := kernel.State()

			d, kb := openOver(t, dir, kernel)
			st := d.Status(0)
			if st.State.Phase != engine.PhaseUnreconciled || st.Unreconciled == nil {
				t.Fatalf("phase %s, unreconciled %v: want unreconciled", st.State.Phase, st.Unreconciled)
			}
			u := st.Unreconciled
			wantFound := []string{"nft table inet cutover steers moved addresses (6 addresses in moved_skm2_v4), sites of run daemon-test"}
			if !slices.Contains(u.Found, wantFound[0]) {
				t.Errorf("found %q, want a line %q", u.Found, wantFound[0])
			}
			if !strings.HasPrefix(u.Adopt, "run daemon-test (") || !strings.Contains(u.Adopt, "with 2 of 4 batches moved: 0 canary, 1 ") {
				t.Errorf("adopt %q", u.Adopt)
			}
			if !strings.Contains(u.Clear, "remove nft table inet cutover with its ip rules and routes") || !strings.Contains(u.Clear, "10.255.0.1") {
				t.Errorf("clear %q", u.Clear)
			}
			if got := scrape(t, d.Collector()); !slices.Contains(got, "cutover_unreconciled{} 1") {
				t.Errorf("metrics while unreconciled: %q", got)
			}
			// Nothing moved while it waits: no speaker, the table as it was.
			if kb.BGP != nil {
				t.Errorf("a speaker was started before a decision")
			}
			if diff := nft.Diff(held, kernel.State()); len(diff.Add)+len(diff.Remove) > 0 {
				t.Errorf("the table changed before a decision: %+v", diff)
			}

			abs, _ := filepath.Abs(daemonRunbook)
			snap, _ := plan.ReadSnapshot(abs)
			err := d.Run(ctx, client.RunRequest{Runbook: client.File{Name: snap.RunbookName, Content: snap.Runbook},
				Inventory: client.File{Name: snap.InventoryName, Content: snap.Inventory}, Operator: "bob"})
			if !errors.Is(err, ErrUnreconciled) || !strings.Contains(err.Error(), "cutover reconcile adopt") {
				t.Errorf("run while unreconciled: %v", err)
			}
			if _, err := d.Rollback(ctx, engine.OnlyBatch(1), "bob"); !errors.Is(err, ErrUnreconciled) {
				t.Errorf("rollback --batch 1 while unreconciled: %v", err)
			}

			if err := d.Reconcile(ctx, DecideAdopt, "carol"); err != nil {
				t.Fatal(err)
			}
			st = d.Status(0)
			if st.Unreconciled != nil || st.State.Phase != engine.PhaseDone || !slices.Equal(st.State.Applied, []int{0, 1}) {
				t.Fatalf("after adopt: phase %s applied %v unreconciled %v", st.State.Phase, st.State.Applied, st.Unreconciled)
			}
			if !strings.HasPrefix(st.State.Result, "adopted by carol after the journal was lost: 2 of 4 batches found moved") {
				t.Errorf("result %q", st.State.Result)
			}
			if got, want := routeSet(kb.BGP.Announced()), routeSet(pl.RoutesOf([]int{0, 1})); !slices.Equal(got, want) {
				t.Errorf("announced %v, want %v", got, want)
			}
			if diff := nft.Diff(held, kernel.State()); len(diff.Add)+len(diff.Remove) > 0 {
				t.Errorf("adopt changed the table: %+v", diff)
			}
			if got := scrape(t, d.Collector()); !slices.Contains(got, "cutover_unreconciled{} 0") {
				t.Errorf("metrics after adopt: %q", got)
			}
			if err := d.Reconcile(ctx, DecideClear, "carol"); err == nil || !strings.Contains(err.Error(), "nothing to reconcile") {
				t.Errorf("a second decision: %v", err)
			}
			if err := d.Close(false); err != nil {
				t.Fatal(err)
			}

			// The journal now holds the adopted run: a restart recovers it.
			d, kb = openOver(t, dir, kernel)
			st = d.Status(0)
			if st.Unreconciled != nil || st.State.Phase != engine.PhaseDone || !slices.Equal(st.State.Applied, []int{0, 1}) {
				t.Fatalf("after a restart: phase %s applied %v unreconciled %v", st.State.Phase, st.State.Applied, st.Unreconciled)
			}
			if got := len(kb.BGP.Announced()); got != len(pl.RoutesOf([]int{0, 1})) {
				t.Errorf("after a restart %d routes announced", got)
			}
			// And the brake works as after any run.
			if _, err := d.Rollback(ctx, engine.AllBatches(), "carol"); err != nil {
				t.Fatal(err)
			}
			if got := kernel.State().Moved["skm2"]; len(got) != 0 {
				t.Errorf("after rollback --all the table still steers %v", got)
			}
		})
	}
}

func routeSet[R interface{ String() string }](rs []R) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.String())
	}
	slices.Sort(out)
	return out
}

// TestDaemonJournalLostClear: clear, or rollback --all, takes the traces
// away: the table goes, the speaker connects with no routes, and the
// decision is journaled, so the next start is idle.
func TestDaemonJournalLostClear(t *testing.T) {
	for _, tc := range []struct {
		name  string
		clear func(d *Daemon) error
		audit string
	}{
		{"reconcile clear", func(d *Daemon) error { return d.Reconcile(context.Background(), DecideClear, "dave") }, "clear"},
		{"rollback --all", func(d *Daemon) error {
			_, err := d.Rollback(context.Background(), engine.AllBatches(), "dave")
			return err
		}, "clear"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			_, kernel := movedState(t, dir, truncate)
			d, kb := openOver(t, dir, kernel)
			if d.Status(0).Unreconciled == nil {
				t.Fatal("not unreconciled")
			}
			if err := tc.clear(d); err != nil {
				t.Fatal(err)
			}
			st := d.Status(0)
			if st.Unreconciled != nil || st.State.Phase != engine.PhaseIdle {
				t.Fatalf("after clear: phase %s unreconciled %v", st.State.Phase, st.Unreconciled)
			}
			if s := kernel.State(); len(s.Sites) != 0 || len(s.Moved) != 0 {
				t.Errorf("after clear the table holds %+v", s)
			}
			if kb.BGP == nil || len(kb.BGP.Announced()) != 0 || len(kb.BGP.Calls()) == 0 {
				t.Errorf("after clear the speaker was not connected with no routes")
			}
			es, _ := d.Journal(context.Background())
			if len(es) != 1 || es[0].Type != engine.RecOperator || !strings.Contains(string(es[0].Data), `"command":"`+tc.audit+`"`) ||
				!strings.Contains(string(es[0].Data), `"operator":"dave"`) {
				t.Errorf("journal after clear: %+v", es)
			}
			if err := d.Close(false); err != nil {
				t.Fatal(err)
			}
			d, _ = openOver(t, dir, kernel)
			if st := d.Status(0); st.Unreconciled != nil || st.State.Phase != engine.PhaseIdle {
				t.Errorf("after a restart: phase %s unreconciled %v", st.State.Phase, st.Unreconciled)
			}
		})
	}
}

// TestDaemonJournalLostRefusesAdopt: adopt takes whole batches of one
// snapshot's plan, or nothing.
func TestDaemonJournalLostRefusesAdopt(t *testing.T) {
	for _, tc := range []struct {
		name   string
		edit   func(t *testing.T, dir string, k *nft.Fake)
		noAdop string
	}{
		{"half a batch", func(t *testing.T, _ string, k *nft.Fake) {
			st := k.State()
			k.RemoveElement("moved_skm2_v4", st.Moved["skm2"][len(st.Moved["skm2"])-1])
		}, "is half moved"},
		{"an address of no batch", func(t *testing.T, _ string, k *nft.Fake) {
			k.AddElement("moved_skm2_v4", netip.MustParsePrefix("10.64.3.3/32"))
		}, "holds addresses that no whole batch of run daemon-test explains (unexpected element moved_skm2_v4 10.64.3.3/32)"},
		{"no snapshot", func(t *testing.T, dir string, _ *nft.Fake) {
			if err := os.RemoveAll(filepath.Join(dir, "runs")); err != nil {
				t.Fatal(err)
			}
		}, "no snapshot in the state directory describes the nft table found"},
		{"nothing moved", func(t *testing.T, _ string, k *nft.Fake) {
			for _, p := range k.State().Moved["skm2"] {
				k.RemoveElement("moved_skm2_v4", p)
			}
		}, "no moves were found in an nft table: nothing to adopt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			_, kernel := movedState(t, dir, truncate)
			tc.edit(t, dir, kernel)
			d, _ := openOver(t, dir, kernel)
			u := d.Status(0).Unreconciled
			if u == nil {
				t.Fatal("not unreconciled")
			}
			if u.Adopt != "" || !strings.Contains(u.NoAdopt, tc.noAdop) {
				t.Errorf("adopt %q, no adopt %q: want it refused for %q", u.Adopt, u.NoAdopt, tc.noAdop)
			}
			err := d.Reconcile(context.Background(), DecideAdopt, "erin")
			if err == nil || !strings.Contains(err.Error(), tc.noAdop) || !strings.Contains(err.Error(), "clear is the only way") {
				t.Errorf("adopt: %v", err)
			}
			if d.Status(0).Unreconciled == nil {
				t.Error("a refused adopt reconciled")
			}
		})
	}
}

// TestDaemonFreshIsIdle: a new state directory over an untouched kernel
// is idle; a table of the tool's with no snapshot to read it by is a
// trace.
func TestDaemonFreshIsIdle(t *testing.T) {
	kernel := nft.NewFake(nft.Config{})
	d, _ := openOver(t, t.TempDir(), kernel)
	if st := d.Status(0); st.Unreconciled != nil || st.State.Phase != engine.PhaseIdle {
		t.Fatalf("fresh: phase %s unreconciled %v", st.State.Phase, st.Unreconciled)
	}
	if _, err := kernel.Apply(context.Background(), nft.State{Sites: []nft.Site{{Name: "dr", Mark: 0x100, Table: 7000,
		NextHop4: netip.MustParseAddr("10.255.9.2")}}}); err != nil {
		t.Fatal(err)
	}
	d, _ = openOver(t, t.TempDir(), kernel)
	u := d.Status(0).Unreconciled
	if u == nil || len(u.Found) != 1 || !strings.HasPrefix(u.Found[0], "nft table inet cutover exists (") {
		t.Fatalf("a table without a snapshot: %+v", u)
	}
	if u.NoAdopt != "no snapshot in the state directory describes the nft table found, so which batches it holds is unknown: nothing to adopt" || u.Clear != "remove nft table inet cutover with its ip rules and routes" {
		t.Errorf("choices: %+v", u)
	}
}
