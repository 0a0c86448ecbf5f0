package daemon

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/plan"
	"github.com/cutover/cutover/nft"
)

// The journal against the world. When the daemon starts with a journal
// that holds no run (new, emptied, lost, deleted) it looks for an earlier
// run's traces: the snapshots runs leave in the state directory, and the
// nft table the tool owns, read (never changed) with the table and
// namespace of every snapshot and the default table. Moves found there
// mean the network is not what an empty journal says: the daemon does not
// call itself idle (status "unreconciled") and starts no run until a
// person chooses:
//
//   - adopt: take the moves as they are. They must be exactly whole
//     batches of one snapshot's plan; the daemon journals a finished run
//     of that plan with those batches moved and announces their routes
//     again, so that rollback and a way back work as after any run.
//   - clear: take them away. Every table found is removed with its ip
//     rules and routes, and when a snapshot tells the BGP peers, the
//     speaker connects with an empty table, so the peers drop the routes
//     they kept for it (graceful restart). rollback --all does the same.
//
// The peers' own view is not read: without a journal the daemon cannot
// tell which of their routes came from it, short of a session that would
// flush them. Only the kernel's table counts as evidence of moves; a
// snapshot alone says that runs happened, and clear is then the only way.

// found is what Open found of earlier runs, and what each choice would do.
type found struct {
	lines   []string
	tables  []nft.Config // nft footprints found (table or its routing)
	latest  *plan.Plan   // newest readable snapshot's plan: the peers clear connects to
	adopt   *adoption    // nil: adopt is refused, for noAdopt
	noAdopt string
}

// adoption is what adopt takes over: batches of one snapshot's plan.
type adoption struct {
	pl    *plan.Plan
	moved []int
	text  string
}

func (f *found) status() *engine.Unreconciled {
	u := &engine.Unreconciled{Found: slices.Clone(f.lines), NoAdopt: f.noAdopt}
	if f.adopt != nil {
		u.Adopt = f.adopt.text
	}
	var clear []string
	for _, c := range f.tables {
		clear = append(clear, "remove "+tableName(c)+" with its ip rules and routes")
	}
	if f.latest != nil {
		var peers []string
		for _, p := range f.latest.Peers() {
			peers = append(peers, p.String())
		}
		clear = append(clear, fmt.Sprintf("connect to the peers of run %s (%s) with no routes, so they drop what they kept", f.latest.Runbook.Name, strings.Join(peers, ", ")))
	}
	u.Clear = strings.Join(clear, "; ")
	if u.Clear == "" {
		u.Clear = "nothing to take away: only record the decision"
	}
	return u
}

func tableName(c nft.Config) string {
	name := c.Table
	if name == "" {
		name = nft.DefaultTable
	}
	s := "nft table inet " + name
	if c.NetNS != "" {
		s += " in netns " + c.NetNS
	}
	return s
}

// snapshotInfo is a snapshot found in the state directory.
type snapshotInfo struct {
	digest string
	saved  time.Time
	pl     *plan.Plan // nil when it cannot be read
	err    error
}

// snapshots reads the runs' snapshots in the state directory, newest
// first.
func (d *Daemon) snapshots() ([]snapshotInfo, error) {
	dir := filepath.Join(d.cfg.StateDir, "runs")
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the runs' snapshots: %w", err)
	}
	var out []snapshotInfo
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		si := snapshotInfo{digest: e.Name()}
		if fi, err := e.Info(); err == nil {
			si.saved = fi.ModTime()
		}
		snap, err := plan.LoadSnapshot(filepath.Join(dir, e.Name()))
		if err == nil {
			si.pl, _, err = snap.Plan()
		}
		si.err = err
		out = append(out, si)
	}
	slices.SortStableFunc(out, func(a, b snapshotInfo) int { return b.saved.Compare(a.saved) })
	return out, nil
}

// survey looks for an earlier run's traces; nil when there are none.
func (d *Daemon) survey(ctx context.Context) (*found, error) {
	snaps, err := d.snapshots()
	if err != nil {
		return nil, err
	}
	f := &found{}
	type candidate struct {
		cfg nft.Config
		pl  *plan.Plan // nil: the default table, no runbook to read it with
	}
	var cands []candidate
	seen := map[nft.Config]bool{}
	for _, s := range snaps {
		if s.pl == nil {
			f.lines = append(f.lines, fmt.Sprintf("snapshot %s of an earlier run (saved %s): cannot be read: %v", engine.ShortDigest(s.digest), stamp(s.saved), s.err))
			continue
		}
		f.lines = append(f.lines, fmt.Sprintf("snapshot of run %s (%s, %d batches, saved %s)", s.pl.Runbook.Name, engine.ShortDigest(s.digest), len(s.pl.Batches), stamp(s.saved)))
		if f.latest == nil {
			f.latest = s.pl
		}
		if c := d.effective(s.pl.DataplaneConfig()); s.pl.Runbook.Dataplane.Enabled && !seen[c] {
			seen[c] = true
			cands = append(cands, candidate{c, s.pl})
		}
	}
	if def := d.effective(nft.Config{Table: nft.DefaultTable}); !seen[def] {
		cands = append(cands, candidate{cfg: def})
	}
	type moves struct {
		cfg nft.Config
		pl  *plan.Plan
		set map[string][]netip.Prefix // by set name
		n   int
	}
	var moved []moves
	unknown := false // a table found that no snapshot describes
	for _, c := range cands {
		dp, err := d.cfg.Backends.Dataplane(c.cfg)
		if err != nil {
			if c.pl != nil {
				f.lines = append(f.lines, fmt.Sprintf("%s of run %s: cannot be read: %v", tableName(c.cfg), c.pl.Runbook.Name, err))
			}
			continue
		}
		var want nft.State
		if c.pl != nil {
			want = c.pl.DataplaneOf(nil)
		}
		drift, err := driftOf(ctx, dp, want)
		_ = dp.Close()
		switch {
		case err != nil:
			f.lines = append(f.lines, fmt.Sprintf("%s: cannot be read: %v", tableName(c.cfg), err))
			continue
		case len(drift.Extra) > 0:
			m := moves{cfg: c.cfg, pl: c.pl, set: map[string][]netip.Prefix{}, n: len(drift.Extra)}
			var sets []string
			for _, e := range drift.Extra {
				if _, ok := m.set[e.Set]; !ok {
					sets = append(sets, e.Set)
				}
				m.set[e.Set] = append(m.set[e.Set], e.Prefix)
			}
			var parts []string
			for _, s := range sets {
				parts = append(parts, fmt.Sprintf("%s in %s", countAddresses(m.set[s]), s))
			}
			f.lines = append(f.lines, fmt.Sprintf("%s steers moved addresses (%s), sites of run %s", tableName(c.cfg), strings.Join(parts, ", "), c.pl.Runbook.Name))
			f.tables = append(f.tables, c.cfg)
			moved = append(moved, m)
		case present(drift, c.pl != nil):
			what := "exists (" + strings.Join(first(drift.Items(), 3), "; ") + ")"
			if c.pl != nil {
				what = "holds the sites of run " + c.pl.Runbook.Name + " with nothing moved"
			}
			f.lines = append(f.lines, tableName(c.cfg)+" "+what)
			f.tables = append(f.tables, c.cfg)
			unknown = unknown || c.pl == nil
		}
	}
	if len(f.lines) == 0 {
		return nil, nil
	}
	switch {
	case len(moved) == 0 && unknown:
		f.noAdopt = "no snapshot in the state directory describes the nft table found, so which batches it holds is unknown: nothing to adopt"
	case len(moved) == 0:
		f.noAdopt = "no moves were found in an nft table: nothing to adopt"
	case len(moved) > 1:
		f.noAdopt = fmt.Sprintf("moves were found in %d nft tables: adopt takes one run's", len(moved))
	default:
		m := moved[0]
		f.adopt, f.noAdopt = adoptionOf(m.pl, m.set)
		if f.adopt != nil {
			// The whole-batch test reads prefixes; the kernel's read-back
			// must agree exactly, or adopt would re-apply something else.
			if err := d.sameAsKernel(ctx, m.cfg, f.adopt); err != nil {
				f.adopt, f.noAdopt = nil, err.Error()
			}
		}
	}
	return f, nil
}

// effective is the table and namespace the backends open for c (the
// daemon's --dataplane-netns overrides a runbook's).
func (d *Daemon) effective(c nft.Config) nft.Config {
	if e, ok := d.cfg.Backends.(interface{ Effective(nft.Config) nft.Config }); ok {
		return e.Effective(c)
	}
	return c
}

func driftOf(ctx context.Context, dp DataplaneCloser, want nft.State) (nft.Drift, error) {
	dr, ok := dp.(drifter)
	if !ok {
		return nft.Drift{}, fmt.Errorf("the dataplane cannot be read back")
	}
	return dr.Drift(ctx, want)
}

// present reports whether a drift against a table's wanted state (with
// sites) or against nothing (without) shows the tool's footprint: with
// sites, anything but missing objects; without, anything.
func present(d nft.Drift, sites bool) bool {
	if !sites {
		return !d.Empty()
	}
	for _, o := range d.Objects {
		if !strings.Contains(o, "missing") {
			return true
		}
	}
	return false
}

// adoptionOf finds the batches of pl that the moved addresses in sets
// (by set name) are: whole batches, or an explanation of why not.
func adoptionOf(pl *plan.Plan, sets map[string][]netip.Prefix) (*adoption, string) {
	if pl == nil {
		return nil, "the moves are in a table no snapshot in the state directory describes"
	}
	to := pl.Runbook.Move.To
	have := map[netip.Prefix]bool{}
	for set, ps := range sets {
		if set != nft.SetName(to, false) && set != nft.SetName(to, true) {
			return nil, fmt.Sprintf("%s holds addresses, but run %s moves to site %s only", set, pl.Runbook.Name, to)
		}
		for _, p := range ps {
			have[p.Masked()] = true
		}
	}
	// covered: a set holds a prefix's addresses as the fewest prefixes
	// that cover a range, so a whole batch prefix lies inside one of them.
	covered := func(p netip.Prefix) bool {
		for bits := p.Bits(); bits >= 0; bits-- {
			if q, err := p.Addr().Prefix(bits); err == nil && have[q] {
				return true
			}
		}
		return false
	}
	var movedIdx []int
	var names []string
	vms := 0
	for i, b := range pl.Batches {
		n := 0
		for _, p := range b.Prefixes {
			if covered(p) {
				n++
			}
		}
		switch {
		case n == 0:
		case n == len(b.Prefixes):
			movedIdx = append(movedIdx, i)
			names = append(names, fmt.Sprintf("%d %s", i, b.Name))
			vms += len(b.VMs)
		default:
			return nil, fmt.Sprintf("batch %d %s of run %s is half moved (%d of %d prefixes): adopt takes whole batches only", i, b.Name, pl.Runbook.Name, n, len(b.Prefixes))
		}
	}
	if len(movedIdx) == 0 {
		return nil, fmt.Sprintf("the moved addresses are in no batch of run %s", pl.Runbook.Name)
	}
	text := fmt.Sprintf("run %s (%s) with %d of %d batches moved: %s; %d VMs at %s", pl.Runbook.Name, engine.ShortDigest(pl.Digest),
		len(movedIdx), len(pl.Batches), strings.Join(names, ", "), vms, to)
	return &adoption{pl: pl, moved: movedIdx, text: text}, ""
}

// sameAsKernel checks that the kernel's table holds exactly what the
// adoption would apply.
func (d *Daemon) sameAsKernel(ctx context.Context, c nft.Config, a *adoption) error {
	dp, err := d.cfg.Backends.Dataplane(c)
	if err != nil {
		return err
	}
	defer dp.Close()
	drift, err := driftOf(ctx, dp, a.pl.DataplaneOf(a.moved))
	if err != nil {
		return err
	}
	if n := len(drift.Missing) + len(drift.Extra); n > 0 {
		return fmt.Errorf("%s holds addresses that no whole batch of run %s explains (%s)", tableName(c), a.pl.Runbook.Name, strings.Join(first(drift.Items(), 3), "; "))
	}
	return nil
}

// countAddresses says how many addresses ps hold: "6 addresses".
func countAddresses(ps []netip.Prefix) string {
	switch n := addresses(ps); {
	case n == math.MaxUint64:
		return "more than 2^63 addresses"
	case n == 1:
		return "1 address"
	default:
		return fmt.Sprintf("%d addresses", n)
	}
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(slices.Clone(s[:n]), fmt.Sprintf("and %d more", len(s)-n))
	}
	return s
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "at an unknown time"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// Decisions a person takes on what Open found (cutover reconcile).
const (
	DecideAdopt = "adopt"
	DecideClear = "clear"
)

// ErrUnreconciled refuses what must wait for a person's decision on an
// earlier run's traces.
var ErrUnreconciled = errors.New("the journal holds no run, but the daemon found an earlier run's traces")

func (d *Daemon) foundTraces() *found {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.found
}

func unreconciledError(f *found) error {
	return fmt.Errorf("%w (%s): choose `cutover reconcile adopt` (take them as they are) or `cutover reconcile clear` (take them away); cutover status shows both",
		ErrUnreconciled, strings.Join(first(f.lines, 2), "; "))
}

// Reconcile carries out a person's decision on what Open found.
func (d *Daemon) Reconcile(ctx context.Context, decision, operator string) error {
	d.runMu.Lock()
	defer d.runMu.Unlock()
	f := d.foundTraces()
	if f == nil {
		return fmt.Errorf("reconcile %s: nothing to reconcile: the journal and the network agree as far as the daemon can see", decision)
	}
	var err error
	switch decision {
	case DecideAdopt:
		err = d.adoptFound(ctx, f, operator)
	case DecideClear:
		err = d.clearFound(ctx, f, operator)
	default:
		return fmt.Errorf("reconcile: unknown decision %q: adopt or clear", decision)
	}
	if err != nil {
		return fmt.Errorf("reconcile %s: %w", decision, err)
	}
	d.mu.Lock()
	d.found = nil
	d.unreconciled.Store(false)
	d.mu.Unlock()
	return nil
}

func (d *Daemon) adoptFound(ctx context.Context, f *found, operator string) error {
	if f.adopt == nil {
		return errors.New(f.noAdopt + ": clear is the only way")
	}
	a := f.adopt
	if err := d.j.Reserve(d.cfg.reserveFor(len(a.pl.Batches))); err != nil {
		return fmt.Errorf("no room in %s for the journal: %w", d.cfg.StateDir, err)
	}
	if err := d.ensureBackends(ctx, a.pl, true); err != nil {
		return err
	}
	d.cfg.Log.Warn().Str("op", "reconcile").Str("operator", operator).Str("reason", a.text).Msg("adopting what the nft table holds")
	return d.e.Adopt(ctx, d.spec(a.pl), a.moved, operator, strings.Join(f.lines, "; "))
}

// clearFound takes the traces away: the peers first (they send the
// traffic), then the nft tables.
func (d *Daemon) clearFound(ctx context.Context, f *found, operator string) error {
	var errs []error
	if f.latest != nil {
		if err := d.connectEmpty(ctx, f.latest); err != nil {
			errs = append(errs, err)
		}
	}
	for _, c := range f.tables {
		c.Correct = true // the table is not this daemon's to keep
		dp, err := d.cfg.Backends.Dataplane(c)
		if err == nil {
			err = dp.Apply(ctx, nft.State{})
			_ = dp.Close()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", tableName(c), err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	d.cfg.Log.Warn().Str("op", "reconcile").Str("operator", operator).Str("reason", strings.Join(f.lines, "; ")).Msg("cleared an earlier run's traces")
	return d.e.Record(engine.RecOperator, engine.OperatorRecord{Command: "clear", Args: strings.Join(f.lines, "; "), Operator: operator})
}

// connectEmpty starts the speaker for pl's peers with no routes: when the
// sessions come up it sends its empty table and End-of-RIB, and the peers
// drop the routes they kept for it.
func (d *Daemon) connectEmpty(ctx context.Context, pl *plan.Plan) error {
	bc, err := pl.SpeakerConfig()
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.speakerLocked(ctx, bc, true); err != nil {
		return err
	}
	if err := d.speaker.Set(ctx, nil); err != nil {
		return fmt.Errorf("bgp: %w", err)
	}
	return nil
}
