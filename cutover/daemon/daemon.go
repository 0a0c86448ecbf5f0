package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cutover/cutover/cutover/daemon/client"
	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/plan"

	"github.com/rs/zerolog"

	"github.com/cutover/cutover/bgp"
	"github.com/cutover/cutover/bgp/bmp"
	"github.com/cutover/cutover/cutover/health"
	"github.com/cutover/cutover/cutover/journal"
	"github.com/cutover/cutover/nft"
)

// Backends build the live parts the daemon drives: the BGP speaker, the
// nft dataplane and the prober. The real ones are in NewLiveBackends; tests
// and dry runs use fakes.
type Backends interface {
	Speaker(ctx context.Context, c bgp.Config) (bgp.Speaker, error)
	Dataplane(c nft.Config) (DataplaneCloser, error)
	Prober() (health.Prober, error)
	// TargetProber probes through site's steering table of the dataplane
	// c (its netns, the site's mark): the readiness check.
	TargetProber(c nft.Config, site nft.Site) (health.Prober, error)
}

// DataplaneCloser is a Dataplane that holds resources.
type DataplaneCloser interface {
	engine.Dataplane
	Close() error
}

// DaemonConfig configures a Daemon.
type Config struct {
	StateDir string // journal and runbook snapshots; created 0700
	Backends Backends
	Log      zerolog.Logger
	Metrics  *engine.Metrics
	Notify   func(kind, msg string)
	Now      func() time.Time
	// IgnoreWindow runs runbooks outside their change window: for
	// rehearsals in the lab, which run at any time of day. Set from the
	// command line only, never over the API.
	IgnoreWindow bool
	// EvidenceDir is the store of lab rehearsal records (package
	// evidence) that a runbook with require_rehearsal is checked against;
	// "": evidence.DefaultDir. From the command line only.
	EvidenceDir string
	// Rehearsing marks the daemon of a lab rehearsal: require_rehearsal
	// does not apply, the rehearsal is how a runbook earns it. From the
	// command line only.
	Rehearsing bool
	// TenantNotify is the file that routes tenant notices (which tenant's
	// webhook or file hears about its batches); "": none. From the command
	// line only: the daemon never opens a path or a URL that came over its
	// API.
	TenantNotify string
	// OperatorGroup is the unix group whose members may change a run (run,
	// confirm, rollback...); the socket's other users only observe
	// (status, report, watch). "": every user of the socket operates. Root
	// always operates.
	OperatorGroup string

	// reserve is the journal's reserve for a run of n batches (nil:
	// reserveBytes); tests shrink it.
	reserve func(batches int) int64
}

// reserveBytes is the disk space the journal keeps in reserve (the file
// journal.reserve in the state directory) for a run of n batches: room for
// the records that stop it when the file system is full. A rollback --all
// writes an audit record, a rolling-back and a rolled-back record per
// batch, an intent, an applied and a phase record: about 600 bytes and 250
// per batch; a restart's recovery writes an intent, an applied record, a
// pause and a drift note of up to a few KiB. 16 KiB and 1 KiB per batch
// hold all of that several times over.
func reserveBytes(batches int) int64 { return 16<<10 + int64(batches)<<10 }

func (c Config) reserveFor(batches int) int64 {
	if c.reserve != nil {
		return c.reserve(batches)
	}
	return reserveBytes(batches)
}

// Daemon owns the journal, the engine, the speaker and the dataplane, and
// serves the local API. There is one per state directory (the journal's
// lock enforces it).
type Daemon struct {
	roles  *roles // who may change a run; nil: every user of the socket
	cfg    Config
	j      *journal.Journal
	e      *engine.Engine
	ctx    context.Context
	cancel context.CancelFunc
	loop   chan struct{}

	runMu sync.Mutex // serializes Run

	mu      sync.Mutex // guards what follows
	entries []engine.JournalEntry
	speaker bgp.Speaker
	bgpConf bgp.Config
	station *station // with speaker, when a peer observes by BMP
	// stationNow mirrors station for the metrics, which must not wait
	// for mu (held while a speaker starts).
	stationNow atomic.Pointer[station]
	dp         DataplaneCloser
	dpConf     nft.Config
	prober     health.Prober
	ready      health.Prober // through the target's steering table; nil: no readiness check
	progress   map[int]health.Verdict
	// found is an earlier run's traces that the journal does not hold,
	// until a person reconciles them (found.go); nil: none. unreconciled
	// mirrors found != nil for the metrics, which take no lock.
	found        *found
	unreconciled atomic.Bool
	// tenants tells tenants about their batches (tenants.go); nil: no
	// routing file.
	tenants *tenants
}

// OpenDaemon opens the journal in cfg.StateDir, folds it, and when it
// holds moved batches or an active run, rebuilds the plan from the run's
// snapshot, starts the speaker and the dataplane and re-applies the state
// (before the peers' graceful-restart timers run out).
//
// It starts on a full file system too, as long as it can read the journal:
// the records of the recovery go into the journal's reserve, or are held
// in memory until the journal takes them; the status says the journal is
// unusable, rollback works, and a run is refused.
func Open(ctx context.Context, cfg Config) (*Daemon, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	rl, err := newRoles(cfg.OperatorGroup)
	if err != nil {
		return nil, err
	}
	tn, err := openTenants(cfg)
	if err != nil {
		return nil, err
	}
	j, recs, err := journal.Open(filepath.Join(cfg.StateDir, "journal"))
	if err != nil {
		return nil, err
	}
	d := &Daemon{cfg: cfg, j: j, loop: make(chan struct{}), progress: map[int]health.Verdict{}, roles: rl, tenants: tn}
	if r := j.Recovered(); r != nil {
		cfg.Log.Warn().Str("op", "journal").Str("reason", r.String()).Msg("dropped a torn journal tail")
	}
	for _, r := range recs {
		d.entries = append(d.entries, engine.JournalEntry{Seq: r.Seq, Time: r.Time, Type: r.Type, Data: r.Data})
	}
	st, err := engine.Fold(d.entries)
	if err != nil {
		j.Close()
		return nil, err
	}
	if st.Active() || len(st.Applied) > 0 || st.Intent != nil {
		// The reserve this run had (a full file system may have eaten
		// into it): short of it, the engine takes no step forward.
		if err := j.Reserve(cfg.reserveFor(len(st.Batches))); err != nil {
			cfg.Log.Error().Err(err).Str("op", "journal").Msg("cannot restore the journal's reserve: rollback works, the run takes no step forward")
		}
	}
	d.e = engine.New(engine.Config{Journal: d.recorder(), Log: cfg.Log.With().Str("component", "engine").Logger(),
		Metrics: cfg.Metrics, Notify: cfg.Notify, Now: cfg.Now, State: st,
		Speaker: lazySpeaker{d}, Dataplane: lazyDataplane{d}})
	d.ctx, d.cancel = context.WithCancel(context.Background())
	if d.e.Recovering() {
		if err := d.recover(ctx, st); err != nil {
			d.closeBackends()
			j.Close()
			return nil, fmt.Errorf("recover run %s: %w", st.RunID, err)
		}
	}
	if st.RunID == "" && !decided(d.entries) {
		f, err := d.survey(ctx)
		if err != nil {
			j.Close()
			return nil, err
		}
		if f != nil {
			d.found = f
			d.unreconciled.Store(true)
			cfg.Log.Error().Str("op", "reconcile").Strs("reason", f.lines).
				Msg("the journal holds no run, but an earlier run left traces: not idle until a person chooses cutover reconcile adopt or clear")
		}
	}
	d.tenants.start(d, len(recs))
	go func() { defer close(d.loop); d.e.Loop(d.ctx) }()
	return d, nil
}

// decided reports whether the journal records a person's decision on an
// earlier run's traces (cutover reconcile).
func decided(entries []engine.JournalEntry) bool {
	for _, e := range entries {
		if e.Type != engine.RecOperator {
			continue
		}
		var r engine.OperatorRecord
		if json.Unmarshal(e.Data, &r) == nil && (r.Command == DecideAdopt || r.Command == DecideClear) {
			return true
		}
	}
	return false
}

// Record implements Recorder: the journal, teed into memory for the API.
func (d *Daemon) Record(typ string, v any) (time.Time, error) {
	return d.tee(d.j.Append(typ, v))
}

// RecordAt implements engine.TimedRecorder: a record the engine held in
// memory while the journal could not take it, with the time it was made.
func (d *Daemon) RecordAt(typ string, v any, at time.Time) (time.Time, error) {
	return d.tee(d.j.AppendAt(typ, v, at))
}

func (d *Daemon) tee(r journal.Record, err error) (time.Time, error) {
	if err != nil {
		return time.Time{}, err
	}
	d.mu.Lock()
	d.entries = append(d.entries, engine.JournalEntry{Seq: r.Seq, Time: r.Time, Type: r.Type, Data: r.Data})
	d.mu.Unlock()
	return r.Time, nil
}

// Low implements engine.SpaceReporter with the journal's reserve.
func (d *Daemon) Low(refill bool) string { return d.j.Low(refill) }

func (d *Daemon) snapshotDir(digest string) string {
	return filepath.Join(d.cfg.StateDir, "runs", digest)
}

func (d *Daemon) recover(ctx context.Context, st engine.RunState) error {
	snap, err := plan.LoadSnapshot(d.snapshotDir(st.Digest))
	if err != nil {
		return err
	}
	pl, _, err := snap.Plan()
	if err != nil {
		return err
	}
	if err := d.ensureBackends(ctx, pl, false); err != nil {
		return err
	}
	if err := d.e.Attach(d.spec(pl)); err != nil {
		return err
	}
	d.reportDrift(ctx, pl, st)
	start := d.cfg.Now()
	if err := d.e.Recover(ctx); err != nil {
		return err
	}
	d.cfg.Log.Info().Str("op", "recover").Dur("took", d.cfg.Now().Sub(start)).Int("prefixes", len(pl.RoutesOf(st.Applied))).
		Msg("re-applied the journaled state")
	return nil
}

// drifter is the part of nft.Dataplane that compares the kernel with a
// state without changing anything.
type drifter interface {
	Drift(ctx context.Context, desired nft.State) (nft.Drift, error)
}

// reportDrift compares the kernel's table with what the journal says it
// holds, before recovery re-applies it: a hand edit while the daemon was
// down is reported (and journaled), and corrected only with
// --correct-drift (otherwise the re-apply refuses it).
func (d *Daemon) reportDrift(ctx context.Context, pl *plan.Plan, st engine.RunState) {
	d.mu.Lock()
	dr, ok := d.dp.(drifter)
	d.mu.Unlock()
	if !ok {
		return
	}
	moved := st.Applied
	if st.Intent != nil {
		moved = st.Intent
	}
	drift, err := dr.Drift(ctx, pl.DataplaneOf(moved))
	switch {
	case err != nil:
		d.cfg.Log.Warn().Err(err).Str("op", "drift").Msg("could not compare the nft table with the journal")
	case !drift.Empty():
		d.cfg.Log.Warn().Str("op", "drift").Strs("reason", drift.Items()).Msg("the nft table differs from the journal")
		_ = d.e.Record(engine.RecOperator, engine.OperatorRecord{Command: "drift", Args: drift.String(), Operator: "daemon"})
	}
}

func (d *Daemon) spec(pl *plan.Plan) *engine.Spec {
	d.mu.Lock()
	sp, pr, rp := d.speaker, d.prober, d.ready
	d.mu.Unlock()
	spec := NewSpec(pl, SpecOptions{Speaker: sp, Observer: lazySpeaker{d}, Prober: pr, Ready: rp, Progress: func(b int, v health.Verdict) {
		d.cfg.Metrics.GateRound(v.Gate)
		d.mu.Lock()
		d.progress[b] = v
		d.mu.Unlock()
	}})
	if d.cfg.IgnoreWindow && spec.Window != nil {
		d.cfg.Log.Warn().Str("op", "window").Str("runbook", pl.Runbook.Name).Str("window", pl.Runbook.Window.String()).
			Msg("the change window is ignored (--ignore-window): a rehearsal runs at any time of day")
		spec.Window = nil
	}
	return spec
}

// ensureBackends starts the speaker, dataplane and prober for pl, or
// checks that the running ones fit it. With fresh true, a speaker whose
// configuration differs is replaced (only when nothing is moved).
func (d *Daemon) ensureBackends(ctx context.Context, pl *plan.Plan, fresh bool) error {
	bc, err := pl.SpeakerConfig()
	if err != nil {
		return err
	}
	nc := pl.DataplaneConfig()
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.speakerLocked(ctx, bc, fresh); err != nil {
		return err
	}
	if d.dp != nil && d.dpConf != nc {
		if err := d.dp.Close(); err != nil {
			return fmt.Errorf("close the previous dataplane: %w", err)
		}
		d.dp = nil
	}
	if d.dp == nil && pl.Runbook.Dataplane.Enabled {
		dp, err := d.cfg.Backends.Dataplane(nc)
		if err != nil {
			return fmt.Errorf("open nft dataplane: %w", err)
		}
		d.dp, d.dpConf = dp, nc
	}
	if d.prober == nil {
		p, err := d.cfg.Backends.Prober()
		if err != nil {
			return fmt.Errorf("prober: %w", err)
		}
		d.prober = p
	}
	d.ready = nil
	if rb := pl.Runbook; rb.Dataplane.Enabled && rb.Readiness != engine.ReadyOff {
		for _, s := range pl.DataplaneOf(nil).Sites {
			if s.Name != rb.Move.To {
				continue
			}
			p, err := d.cfg.Backends.TargetProber(nc, s)
			if err != nil {
				return fmt.Errorf("readiness prober through %s: %w", s.Name, err)
			}
			d.ready = p
		}
	}
	return nil
}

// speakerLocked starts the speaker for bc, or checks that the running one
// has bc; with replace true, one with another configuration is replaced.
// The caller holds d.mu.
func (d *Daemon) speakerLocked(ctx context.Context, bc bgp.Config, replace bool) error {
	if d.speaker != nil && !reflect.DeepEqual(d.bgpConf, bc) {
		if !replace {
			return fmt.Errorf("the running speaker's BGP configuration differs from the runbook's")
		}
		if err := d.speaker.Close(); err != nil {
			return fmt.Errorf("stop the previous speaker: %w", err)
		}
		d.speaker = nil
		d.closeStationLocked()
	}
	if d.speaker == nil {
		// The station first: the edges' BMP sessions may take a while to
		// come back, and the speaker's first Set starts the gate's clock.
		var st *station
		if bc.UsesBMP() {
			var err error
			if st, err = d.startStation(bc); err != nil {
				return err
			}
		}
		s, err := d.cfg.Backends.Speaker(ctx, bc)
		if err != nil {
			if st != nil {
				st.close()
			}
			return fmt.Errorf("start BGP speaker: %w", err)
		}
		d.speaker, d.bgpConf, d.station = s, bc, st
		d.stationNow.Store(st)
	}
	return nil
}

// closeStationLocked stops the BMP station, if one runs. The caller holds
// d.mu.
func (d *Daemon) closeStationLocked() {
	if d.station != nil {
		d.station.close()
		d.station = nil
		d.stationNow.Store(nil)
	}
}

// Run implements Control: it plans the runbook and inventory the client
// sent (their contents: the daemon opens no file by the names, which are
// for messages), makes sure the speaker and dataplane fit the plan, keeps
// exactly those contents as the run's snapshot, and starts the engine.
// A runbook with require_rehearsal starts only on a green lab rehearsal
// of exactly its bytes (see rehearsed). Runs are started one at a time.
func (d *Daemon) Run(ctx context.Context, req client.RunRequest) error {
	d.runMu.Lock()
	defer d.runMu.Unlock()
	if f := d.foundTraces(); f != nil {
		return unreconciledError(f)
	}
	if st := d.e.Status(0).State; st.Active() {
		return fmt.Errorf("%w: %s (%s): one runbook at a time", engine.ErrRunActive, st.Runbook, st.Phase)
	}
	snap := plan.Snapshot{RunbookName: req.Runbook.Name, Runbook: req.Runbook.Content,
		InventoryName: req.Inventory.Name, Inventory: req.Inventory.Content}
	pl, _, err := snap.Plan()
	if err != nil {
		return err
	}
	// require_rehearsal refuses before anything is touched.
	rests, err := d.rehearsed(pl, req.Runbook.Name)
	if err != nil {
		return err
	}
	// Room for the records that stop the run, before anything starts:
	// a run that starts can always journal its rollback.
	if err := d.j.Reserve(d.cfg.reserveFor(len(pl.Batches))); err != nil {
		return fmt.Errorf("no room in %s for the run's journal: %w", d.cfg.StateDir, err)
	}
	prev := d.e.Status(0).State
	moved := len(prev.Applied) > 0
	adopts := ""
	if moved && prev.Digest != pl.Digest {
		if err := d.canAdopt(prev, pl); err != nil {
			return err
		}
		adopts = prev.Digest
	}
	if err := d.ensureBackends(ctx, pl, !moved); err != nil {
		return err
	}
	dir := d.snapshotDir(pl.Digest)
	_, statErr := os.Stat(dir)
	if err := snap.Save(dir); err != nil {
		return err
	}
	sp := d.spec(pl)
	sp.Adopts = adopts
	if rests != nil {
		sp.Rehearsal = rests.String()
	}
	if err := d.e.Start(sp, req.Operator, req.Yes); err != nil {
		if errors.Is(statErr, os.ErrNotExist) {
			// A snapshot without a run in the journal would be taken
			// for an earlier run's trace at the next start.
			_ = os.RemoveAll(dir)
		}
		return err
	}
	if rests != nil {
		d.cfg.Log.Info().Str("op", "rehearsal").Str("runbook", rests.Runbook).Str("rehearsal", rests.String()).
			Msg("the run rests on a green rehearsal of exactly its bytes")
	}
	return nil
}

// canAdopt reports whether a new plan may take over what a finished run
// left moved: its baseline must announce exactly the same prefixes via the
// same next-hops (drain out, then back; failover, then failback). Anything
// else would move traffic before the first gate.
func (d *Daemon) canAdopt(prev engine.RunState, pl *plan.Plan) error {
	snap, err := plan.LoadSnapshot(d.snapshotDir(prev.Digest))
	if err != nil {
		return fmt.Errorf("the previous run (%s) left %d batches moved, and its snapshot cannot be read: %w", prev.Runbook, len(prev.Applied), err)
	}
	old, _, err := snap.Plan()
	if err != nil {
		return fmt.Errorf("the previous run's snapshot: %w", err)
	}
	left := old.RoutesOf(prev.Applied)
	have := map[netip.Prefix]netip.Addr{}
	for _, r := range left {
		have[r.Prefix] = r.NextHop
	}
	base := pl.Routes(0)
	differ := 0
	example := ""
	for _, r := range base {
		if nh, ok := have[r.Prefix]; !ok || nh != r.NextHop {
			differ++
			if example == "" {
				example = fmt.Sprintf("%s via %s (now %s)", r.Prefix, r.NextHop, nh)
			}
		}
		delete(have, r.Prefix)
	}
	differ += len(have)
	if differ > 0 {
		for _, r := range left {
			if _, ok := have[r.Prefix]; ok && example == "" {
				example = fmt.Sprintf("%s via %s would be withdrawn", r.Prefix, r.NextHop)
			}
		}
		return fmt.Errorf("the previous run (%s) left %d batches moved, and this runbook's baseline differs from what is announced in %d routes (e.g. %s): it would move traffic before the first gate; roll the previous run back (cutover rollback --all) or use a runbook whose baseline (announce_source) takes over exactly",
			prev.Runbook, len(prev.Applied), differ, example)
	}
	return nil
}

// Status implements Control; it adds the pending verdicts of the gates
// that are running.
func (d *Daemon) Status(since int) engine.Status {
	st := d.e.Status(since)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.found != nil {
		st.State.Phase = engine.PhaseUnreconciled
		st.Unreconciled = d.found.status()
	}
	for i := range st.State.Batches {
		b := &st.State.Batches[i]
		if v, ok := d.progress[i]; ok && b.Phase == engine.BatchGating {
			b.Verdicts = append(b.Verdicts, engine.VerdictRecord{Gate: v.Gate, Reasons: v.Reasons, Failed: v.Failed,
				Pending: true, Round: v.Round, RoundOK: v.RoundOK, Streak: v.Streak, Need: v.Need})
		}
	}
	return st
}

// Pause implements Control.
func (d *Daemon) Pause(op string) error { return d.e.Pause(op) }

// Resume implements Control.
func (d *Daemon) Resume(op string) error { return d.e.Resume(op) }

// Step implements Control.
func (d *Daemon) Step(op string) error { return d.e.Step(op) }

// Confirm implements Control.
func (d *Daemon) Confirm(point string, goAhead bool, op string) error {
	return d.e.Confirm(point, goAhead, op)
}

// Rollback implements Control.
// While an earlier run's traces wait for a decision, rollback --all is
// reconcile clear (the brake takes away what was found) and the others
// are refused.
func (d *Daemon) Rollback(ctx context.Context, t engine.RollbackTarget, op string) (time.Duration, error) {
	if f := d.foundTraces(); f != nil {
		if !t.All() {
			return 0, fmt.Errorf("rollback %s: %w", t, unreconciledError(f))
		}
		start := time.Now()
		err := d.Reconcile(ctx, DecideClear, op)
		return time.Since(start), err
	}
	return d.e.RollbackMeasured(ctx, t, op)
}

// Retry implements Control.
func (d *Daemon) Retry(batches []int, op string) error {
	if f := d.foundTraces(); f != nil {
		return fmt.Errorf("retry: %w", unreconciledError(f))
	}
	return d.e.Retry(batches, op)
}

// Journal implements Control.
func (d *Daemon) Journal(context.Context) ([]engine.JournalEntry, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]engine.JournalEntry(nil), d.entries...), nil
}

// Serve serves the API on l until ctx ends, at most 32 connections at a
// time (idle ones make room for new ones), each with timeouts for its
// requests and while it idles (see defaultLimits).
func (d *Daemon) Serve(ctx context.Context, l net.Listener) error {
	return serve(ctx, l, newAPI(d, d.cfg.Log.With().Str("component", "api").Logger(), defaultLimits, d.roles), defaultLimits)
}

func serve(ctx context.Context, l net.Listener, h http.Handler, lim apiLimits) error {
	ll := newLimitListener(l, lim.MaxConns)
	srv := newServer(h, lim)
	srv.ConnState = ll.connState
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ll) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}

// Close stops the engine. With withdraw, every route is withdrawn and the
// nft table emptied first; without, the speaker stops so that peers keep
// the routes by graceful restart until the daemon is back.
func (d *Daemon) Close(withdraw bool) error {
	d.cancel()
	<-d.loop
	var errs []error
	d.mu.Lock()
	sp, dp := d.speaker, d.dp
	d.mu.Unlock()
	if withdraw {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if sp != nil {
			if err := sp.Set(ctx, nil); err != nil {
				errs = append(errs, fmt.Errorf("withdraw: %w", err))
			}
		}
		if dp != nil {
			if err := dp.Apply(ctx, nft.State{}); err != nil {
				errs = append(errs, fmt.Errorf("empty nft table: %w", err))
			}
		}
		if len(errs) == 0 {
			errs = append(errs, d.e.Record(engine.RecOperator, engine.OperatorRecord{Command: "stop", Args: "--withdraw", Operator: "daemon"}),
				d.e.Record(engine.RecApplied, engine.ChangeRecord{Moved: []int{}, Batch: -1, Op: "withdraw"}))
		}
	}
	if err := d.e.Flush(); err != nil {
		// They are lost: the journal says less than the network holds.
		d.cfg.Log.Error().Err(err).Str("op", "journal").Msg("stopping with records the journal never took")
		errs = append(errs, err)
	}
	d.tenants.close()
	errs = append(errs, d.closeBackends(), d.j.Close())
	return errors.Join(errs...)
}

func (d *Daemon) closeBackends() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	if d.speaker != nil {
		errs = append(errs, d.speaker.Close())
		d.speaker = nil
	}
	d.closeStationLocked()
	if d.dp != nil {
		errs = append(errs, d.dp.Close())
		d.dp = nil
	}
	return errors.Join(errs...)
}

// lazySpeaker and lazyDataplane let the engine reach whatever backends the
// daemon has started for the current runbook.
type lazySpeaker struct{ d *Daemon }

func (l lazySpeaker) get() (bgp.Speaker, error) {
	l.d.mu.Lock()
	defer l.d.mu.Unlock()
	if l.d.speaker == nil {
		return nil, fmt.Errorf("no BGP speaker running")
	}
	return l.d.speaker, nil
}

func (l lazySpeaker) Set(ctx context.Context, rs []bgp.Route) error {
	s, err := l.get()
	if err != nil {
		return err
	}
	return s.Set(ctx, rs)
}

// Accepted answers for every observed peer by its proof: the BMP station
// for bmp peers, the speaker for the others.
func (l lazySpeaker) Accepted(ctx context.Context, want []bgp.Route) (bgp.Convergence, error) {
	l.d.mu.Lock()
	s, st, peers := l.d.speaker, l.d.station, l.d.bgpConf.Peers
	l.d.mu.Unlock()
	if s == nil {
		return bgp.Convergence{}, fmt.Errorf("no BGP speaker running")
	}
	if st == nil {
		return s.Accepted(ctx, want)
	}
	c, err := bmp.Observer{Station: st.st, Speaker: s, Peers: peers, Nudge: st.nudge}.Accepted(ctx, want)
	if err == nil {
		st.noteFallbacks(l.d.cfg.Log, c)
	}
	return c, err
}

func (l lazySpeaker) Peers(ctx context.Context) ([]bgp.PeerStatus, error) {
	s, err := l.get()
	if err != nil {
		return nil, err
	}
	return s.Peers(ctx)
}

func (l lazySpeaker) Close() error { return nil } // the daemon closes the real one

type lazyDataplane struct{ d *Daemon }

func (l lazyDataplane) Apply(ctx context.Context, s nft.State) error {
	l.d.mu.Lock()
	dp := l.d.dp
	l.d.mu.Unlock()
	if dp == nil {
		return nil // the runbook turned the dataplane off
	}
	return dp.Apply(ctx, s)
}
