package daemon

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/notify"
	"github.com/cutover/cutover/cutover/plan"
	"github.com/cutover/cutover/internal/words"
)

// Tenant notices: each tenant hears about the batches that hold its VMs
// (start, commit, rollback) and about the end of the run, through the
// route that the daemon's routing file (Config.TenantNotify) gives it.
//
// The notices follow the journal, the one account of a run: a goroutine
// of their own reads the records the engine journals, in order, folds them
// the way the engine does (engine.Folder), and turns batch and run phase
// changes into notices; the run's snapshot says which tenant's VMs each
// batch holds. So the engine never waits for a tenant, and what a tenant
// is told is what the journal says. What the journal held when the daemon
// started is history, folded but never told again. A record the engine
// holds in memory while the journal cannot take it is told once it is
// written.

// tenantsCloseTimeout bounds the wait for the last notices when the
// daemon stops.
const tenantsCloseTimeout = 5 * time.Second

// tenants turns journal records into tenant notices for its router.
type tenants struct {
	router *notify.Router
	log    zerolog.Logger
	// entries returns the journal's records from index from on; plan
	// returns the plan of a run's snapshot.
	entries func(from int) []engine.JournalEntry
	plan    func(digest string) (*plan.Plan, error)

	wake chan struct{}
	quit chan struct{}
	done chan struct{}

	// The goroutine's own.
	fold  engine.Folder
	next  int          // index of the next record to read
	index *tenantIndex // of the current run's plan
}

// tenantIndex is where each tenant's VMs are in a run's plan.
type tenantIndex struct {
	digest  string
	runbook string                // the runbook's name
	batches []map[string][]string // per batch: tenant → its VM names, sorted
	tenants []string              // sorted
	err     error                 // the plan could not be made: no notices
}

// openTenants loads the routing file of cfg; nil when there is none.
func openTenants(cfg Config) (*tenants, error) {
	if cfg.TenantNotify == "" {
		return nil, nil
	}
	log := cfg.Log.With().Str("component", "tenants").Logger()
	r, err := notify.Load(cfg.TenantNotify, notify.Options{Log: log})
	if err != nil {
		return nil, err
	}
	log.Info().Str("op", "start").Strs("tenants", r.Tenants()).Msg("tenant notices routed as " + cfg.TenantNotify + " says")
	return &tenants{router: r, log: log, wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}, nil
}

// start reads d's journal from its record history on (those before are
// folded, not told). Nil-safe.
func (t *tenants) start(d *Daemon, history int) {
	if t == nil {
		return
	}
	t.entries = func(from int) []engine.JournalEntry {
		d.mu.Lock()
		defer d.mu.Unlock()
		return slices.Clone(d.entries[from:])
	}
	t.plan = func(digest string) (*plan.Plan, error) {
		snap, err := plan.LoadSnapshot(d.snapshotDir(digest))
		if err != nil {
			return nil, err
		}
		pl, _, err := snap.Plan()
		return pl, err
	}
	go t.run(history)
}

// poke says that the journal took a record. Nil-safe; never waits.
func (t *tenants) poke() {
	if t == nil {
		return
	}
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// close tells what the journal took last, then waits a while for the
// notices to be delivered. Nil-safe; call it once, after start.
func (t *tenants) close() {
	if t == nil {
		return
	}
	close(t.quit)
	<-t.done
	ctx, cancel := context.WithTimeout(context.Background(), tenantsCloseTimeout)
	defer cancel()
	if err := t.router.Close(ctx); err != nil {
		t.log.Warn().Err(err).Str("op", "stop").Msg("tenant notices not all delivered")
	}
	s := t.router.Stats()
	t.log.Info().Str("op", "stop").Uint64("sent", s.Sent).Uint64("dropped", s.Dropped).Uint64("failed", s.Failed).
		Uint64("unrouted", s.Unrouted).Msg("tenant notices")
}

func (t *tenants) run(history int) {
	defer close(t.done)
	for _, e := range t.entries(0)[:history] {
		_, _ = t.fold.Apply(e) // what the daemon started with: Open folded it already
	}
	t.next = history
	for {
		t.read()
		select {
		case <-t.wake:
		case <-t.quit:
			t.read()
			return
		}
	}
}

// read tells the records the journal took since the last read.
func (t *tenants) read() {
	for _, e := range t.entries(t.next) {
		t.next++
		t.observe(e)
	}
}

// observe folds one new record and tells the tenants what it changed.
func (t *tenants) observe(e engine.JournalEntry) {
	var before []engine.BatchPhase
	if e.Type == engine.RecBatch {
		for _, b := range t.fold.State().Batches {
			before = append(before, b.Phase)
		}
	}
	rec, err := t.fold.Apply(e)
	if err != nil {
		return // an audit record that does not decode; the engine folded past it too
	}
	st := t.fold.State()
	switch r := rec.(type) {
	case engine.BatchRecord:
		switch {
		case r.Phase == engine.BatchAnnouncing && r.Batch < len(before) && before[r.Batch] == engine.BatchPending:
			// A batch announced again (after a restart, or a failed gate
			// under the pause policy) has been told about already.
			t.batch(notify.BatchStart, st, r.Batch, e.Time)
		case r.Phase == engine.BatchCommitted:
			t.batch(notify.BatchCommit, st, r.Batch, e.Time)
		case r.Phase == engine.BatchRolledBack:
			t.batch(notify.BatchRollback, st, r.Batch, e.Time)
		}
	case engine.PhaseRecord:
		if r.Phase == engine.PhaseDone || r.Phase == engine.PhaseAborted {
			t.end(st, e.Time)
		}
	}
}

// batch tells each tenant with VMs in batch b about it.
func (t *tenants) batch(kind notify.Kind, st *engine.RunState, b int, at time.Time) {
	ix := t.indexOf(st.Digest)
	if ix == nil || b < 0 || b >= len(ix.batches) || b >= len(st.Batches) {
		return
	}
	bs := st.Batches[b]
	for _, tenant := range slices.Sorted(maps.Keys(ix.batches[b])) {
		vms := ix.batches[b][tenant]
		var msg string
		switch kind {
		case notify.BatchStart:
			msg = fmt.Sprintf("%s starts: the traffic of %s moves from %s to %s", bs.Name, vmsText(vms), st.Source, st.Target)
		case notify.BatchCommit:
			msg = fmt.Sprintf("%s committed: the traffic of %s stays at %s", bs.Name, vmsText(vms), st.Target)
		case notify.BatchRollback:
			msg = fmt.Sprintf("%s rolled back: the traffic of %s is back at %s (%s)", bs.Name, vmsText(vms), st.Source, rollbackWhy(bs.RollbackBy))
		}
		t.router.Notify(notify.Notice{Kind: kind, Tenant: tenant, Run: st.RunID, Runbook: ix.runbook,
			Batch: &notify.BatchRef{Index: b, Name: bs.Name}, VMs: slices.Clone(vms), Count: len(vms), Time: at, Message: msg})
	}
}

// rollbackWhy says why a batch was rolled back in words for a tenant:
// the engine's reason names VMs and addresses of any tenant, and the
// operator's name is the operator's.
func rollbackWhy(by string) string {
	switch by {
	case "policy":
		return "it failed its health gates"
	case "recover":
		return "an interrupted rollback was completed"
	}
	return "an operator rolled it back"
}

// end tells every tenant of the run where its VMs ended.
func (t *tenants) end(st *engine.RunState, at time.Time) {
	ix := t.indexOf(st.Digest)
	if ix == nil {
		return
	}
	moved := make([]bool, len(ix.batches))
	for _, b := range st.Applied {
		if b >= 0 && b < len(moved) {
			moved[b] = true
		}
	}
	outcome := st.Outcome()
	for _, tenant := range ix.tenants {
		var atTarget int
		var atSource []string
		for b, byTenant := range ix.batches {
			if moved[b] {
				atTarget += len(byTenant[tenant])
			} else {
				atSource = append(atSource, byTenant[tenant]...)
			}
		}
		slices.Sort(atSource)
		total := atTarget + len(atSource)
		var msg string
		switch {
		case len(atSource) == 0:
			msg = fmt.Sprintf("the run ended (%s): the traffic of all %s is at %s", outcome, words.Plural(total, "VM"), st.Target)
		case atTarget == 0:
			msg = fmt.Sprintf("the run ended (%s): the traffic of all %s is at %s", outcome, vmsText(atSource), st.Source)
		default:
			msg = fmt.Sprintf("the run ended (%s): the traffic of %s is at %s, of %s at %s",
				outcome, words.Plural(atTarget, "VM"), st.Target, vmsText(atSource), st.Source)
		}
		t.router.Notify(notify.Notice{Kind: notify.RunEnd, Tenant: tenant, Run: st.RunID, Runbook: ix.runbook,
			VMs: atSource, Count: total, End: &notify.EndCount{AtTarget: atTarget, AtSource: len(atSource), Outcome: string(outcome)},
			Time: at, Message: msg})
	}
}

// indexOf returns the index of the run with plan digest, making it from
// the run's snapshot the first time; nil when it cannot be made (logged
// once per run).
func (t *tenants) indexOf(digest string) *tenantIndex {
	if t.index == nil || t.index.digest != digest {
		t.index = newTenantIndex(digest, t.plan)
		if t.index.err != nil {
			t.log.Error().Err(t.index.err).Str("op", "notify").Str("reason", "no-plan").
				Msg("tenant notices of this run cannot be told: its plan cannot be read")
		}
	}
	if t.index.err != nil {
		return nil
	}
	return t.index
}

func newTenantIndex(digest string, load func(string) (*plan.Plan, error)) *tenantIndex {
	ix := &tenantIndex{digest: digest}
	pl, err := load(digest)
	if err != nil {
		ix.err = fmt.Errorf("plan %s: %w", engine.ShortDigest(digest), err)
		return ix
	}
	ix.runbook = pl.Runbook.Name
	seen := map[string]bool{}
	for _, b := range pl.Batches {
		byTenant := map[string][]string{}
		for _, vm := range b.VMs {
			byTenant[vm.Tenant] = append(byTenant[vm.Tenant], vm.Name)
			seen[vm.Tenant] = true
		}
		for _, vms := range byTenant {
			slices.Sort(vms)
		}
		ix.batches = append(ix.batches, byTenant)
	}
	ix.tenants = slices.Sorted(maps.Keys(seen))
	return ix
}

// maxNamed is how many VMs a notice's message names; the notice's VMs
// list them all.
const maxNamed = 10

// vmsText is "1 VM (a)" or "3 VMs (a, b, c)", naming at most maxNamed.
func vmsText(vms []string) string {
	named := vms
	more := ""
	if len(vms) > maxNamed {
		named, more = vms[:maxNamed], fmt.Sprintf(" and %d more", len(vms)-maxNamed)
	}
	return fmt.Sprintf("%s (%s%s)", words.Plural(len(vms), "VM"), strings.Join(named, ", "), more)
}

// noticeRecorder is the engine's journal when tenants hear of the run:
// the daemon's, and a wake-up for the tenant notices after each record.
type noticeRecorder struct{ *Daemon }

// Record implements engine.Recorder.
func (r noticeRecorder) Record(typ string, v any) (time.Time, error) {
	defer r.tenants.poke()
	return r.Daemon.Record(typ, v)
}

// RecordAt implements engine.TimedRecorder.
func (r noticeRecorder) RecordAt(typ string, v any, at time.Time) (time.Time, error) {
	defer r.tenants.poke()
	return r.Daemon.RecordAt(typ, v, at)
}

// recorder is the engine's journal: the daemon itself, or with tenant
// notices the noticeRecorder.
func (d *Daemon) recorder() engine.Recorder {
	if d.tenants == nil {
		return d
	}
	return noticeRecorder{d}
}
