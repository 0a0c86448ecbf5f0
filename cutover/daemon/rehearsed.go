package daemon

import (
	"fmt"

	"github.com/cutover/cutover/cutover/evidence"
	"github.com/cutover/cutover/cutover/plan"
)

// evidenceDir is the store of rehearsal records the daemon checks
// require_rehearsal against: from its configuration only, never from a
// request.
func (d *Daemon) evidenceDir() string {
	if d.cfg.EvidenceDir != "" {
		return d.cfg.EvidenceDir
	}
	return evidence.DefaultDir
}

// rehearsed is the green rehearsal of exactly pl's bytes (runbook and
// inventory) that a runbook with require_rehearsal rests on; without
// require_rehearsal it is nil and the store is not read (a missing or
// unreadable store is then no error). file is the runbook's path as the
// client sent it, for the command that rehearses it.
func (d *Daemon) rehearsed(pl *plan.Plan, file string) (*evidence.Record, error) {
	if !pl.Runbook.RequireRehearsal {
		return nil, nil
	}
	if d.cfg.Rehearsing {
		d.cfg.Log.Info().Str("op", "run").Str("runbook", pl.Runbook.Name).
			Msg("require_rehearsal does not apply: this daemon runs a lab rehearsal (--rehearsing)")
		return nil, nil
	}
	rec, err := d.lastGreen(pl, file)
	if err != nil {
		// The refusal goes back to the operator; the log keeps it for
		// whoever asks in the morning why the night did not start.
		d.cfg.Log.Warn().Str("op", "run").Str("runbook", pl.Runbook.Name).Str("reason", err.Error()).
			Msg("refused a run that requires a green rehearsal")
	}
	return rec, err
}

// lastGreen looks in the store for the green rehearsal of exactly pl's
// bytes. Its refusal says what an operator needs at the night's start:
// where the daemon looked, the last green rehearsal of the runbook and
// which of its bytes differ, and how to rehearse these.
func (d *Daemon) lastGreen(pl *plan.Plan, file string) (*evidence.Record, error) {
	dir := d.evidenceDir()
	st, err := evidence.Store{Dir: dir}.Lookup(pl.Runbook.Name, pl.Runbook.Digest, pl.Inventory.Digest)
	if err != nil {
		return nil, fmt.Errorf("runbook requires a green rehearsal of exactly these bytes, and the daemon cannot read its records: %w", err)
	}
	if st.Green == nil {
		return nil, fmt.Errorf("runbook requires a green rehearsal of exactly these bytes: none on record in %s (%s); rehearse it: cutover lab rehearse %s",
			dir, st.Why(), file)
	}
	return st.Green, nil
}
