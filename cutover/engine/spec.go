package engine

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/cutover/cutover/bgp"
	"github.com/cutover/cutover/nft"
)

// FailurePolicy says what the engine does when a batch fails its gates.
type FailurePolicy string

// Failure policies.
const (
	// RollbackBatch rolls the failed batch back to the source and goes on
	// with the next batch; the failed batch's VMs stay at the source.
	RollbackBatch FailurePolicy = "rollback-batch"
	// RollbackAll rolls every batch back and ends the run.
	RollbackAll FailurePolicy = "rollback-all"
	// Pause leaves the failed batch where it is and waits for a person:
	// resume re-runs its gates, rollback --batch takes it back.
	Pause FailurePolicy = "pause"
)

// Spec is what the engine runs: the batches of a plan, and the functions
// that turn a set of moved batches into BGP routes and nft state, check
// the window, take the health baseline and judge a batch. Building a Spec
// from a runbook is the adapter's job (see FromPlan); tests build it by hand.
type Spec struct {
	Runbook string // path, for people
	Digest  string // of runbook and inventory
	// Source and Target name the sites the run moves from and to.
	Source, Target string
	// RunbookDigest and InventoryDigest are the SHA-256 (hex) of the
	// files, journaled at run start for the report.
	RunbookDigest, InventoryDigest string
	// Rehearsal names the lab rehearsal the run rests on, for its
	// run-start record; "" when the runbook does not require one.
	Rehearsal string
	// Adopts is the digest of a finished run whose moved batches this run
	// takes over as its baseline (its Routes(nil) announces exactly what
	// that run left); "" for none.
	Adopts  string
	Batches []SpecBatch
	// ConfirmEnd are go/no-go points asked after the last batch.
	ConfirmEnd []string
	// ConfirmOperators is how many different operators must say go at a
	// point; a point not in it needs one. Rollback never needs more than
	// one person.
	ConfirmOperators map[string]int
	Policy           FailurePolicy
	// Hold is the minimum time from one batch's decision to the next batch.
	Hold time.Duration

	// Routes returns every route the controller announces when the given
	// batches are at the target (sorted batch indices; empty: baseline).
	Routes func(moved []int) []bgp.Route
	// Dataplane returns the nft state for the same.
	Dataplane func(moved []int) nft.State
	// Window reports nil while the change window is open.
	Window func(now time.Time) error
	// Precheck checks what must hold before the first batch (peers up).
	Precheck func(ctx context.Context) error
	// Baseline probes every VM before the first batch and returns the names
	// of the healthy ones, how many were probed, and the ones found down
	// with why ("vm-0042: tcp 80: connection refused").
	Baseline func(ctx context.Context) (BaselineRecord, error)
	// Converge waits until the peers hold routes (nil: skip), and says
	// how each observed peer proved it (for the journal's event).
	Converge func(ctx context.Context, routes []bgp.Route) (string, error)
	// Gate judges batch b against the baseline.
	Gate func(ctx context.Context, b int, baseline []string) (pass bool, verdicts []VerdictRecord)
	// Ready probes batch b's VMs at the target before the batch is
	// announced, without moving a route (nil: no readiness check). The
	// batch is moved only when every VM healthy at baseline answers there;
	// otherwise ReadyPolicy decides.
	Ready       func(ctx context.Context, b int, baseline []string) (ready bool, verdict VerdictRecord)
	ReadyPolicy ReadyPolicy
}

// ReadyPolicy says what the engine does with a batch whose VMs do not
// answer at the target before the move.
type ReadyPolicy string

// Readiness policies.
const (
	// ReadySkip holds the batch at the source (phase held) and goes on with
	// the next one; retry moves it once its VMs answer.
	ReadySkip ReadyPolicy = "skip"
	// ReadyPause pauses the run before the batch; resume checks again.
	ReadyPause ReadyPolicy = "pause"
	// ReadyOff moves batches without the check.
	ReadyOff ReadyPolicy = "off"
)

// SpecBatch is one batch as the engine sees it.
type SpecBatch struct {
	Name     string
	VMs      int
	Prefixes []netip.Prefix
	// Confirm are go/no-go points asked before this batch starts.
	Confirm []string
}

func (s *Spec) validate() error {
	if len(s.Batches) == 0 {
		return fmt.Errorf("spec: no batches")
	}
	if s.Routes == nil || s.Dataplane == nil || s.Gate == nil {
		return fmt.Errorf("spec: Routes, Dataplane and Gate are required")
	}
	switch s.Policy {
	case RollbackBatch, RollbackAll, Pause:
	case "":
		s.Policy = RollbackBatch
	default:
		return fmt.Errorf("spec: unknown failure policy %q", s.Policy)
	}
	switch s.ReadyPolicy {
	case ReadySkip, ReadyPause, ReadyOff:
	case "":
		s.ReadyPolicy = ReadySkip
	default:
		return fmt.Errorf("spec: unknown readiness policy %q", s.ReadyPolicy)
	}
	return nil
}

// action is what the engine does next, decided from the state alone.
type action struct {
	kind  actionKind
	batch int
	point string    // actConfirm
	until time.Time // actWait
	why   string
}

type actionKind int

const (
	actNone     actionKind = iota // nothing to do until something changes
	actPrecheck                   // take the baseline and check peers
	actConfirm                    // stop at a go/no-go point
	actWait                       // hold time between batches
	actWindow                     // the change window is closed: pause
	actMove                       // run batch .batch (announce → converge → gate → commit)
	actRollback                   // finish rolling batch .batch back
	actFinish                     // every batch decided
)

// decide returns the next action for s. It is a pure function of the
// state, the spec and the clock; all side effects are the engine's.
func decide(s *RunState, sp *Spec, now time.Time) action {
	switch s.Phase {
	case PhasePrechecking:
		return action{kind: actPrecheck}
	case PhaseRunning:
	default:
		return action{kind: actNone}
	}
	var last time.Time
	for i := range s.Batches {
		b := &s.Batches[i]
		if b.Decided.After(last) {
			last = b.Decided
		}
		if b.RolledBack.After(last) {
			last = b.RolledBack
		}
	}
	// VMs already down at pre-check: a person decides whether the run goes
	// on without them (run --yes answers go).
	if len(s.BaselineDown) > 0 && !slices.Contains(s.Confirmed, ConfirmBaselineDown) {
		return action{kind: actConfirm, point: ConfirmBaselineDown, batch: -1}
	}
	for i := range s.Batches {
		b := &s.Batches[i]
		switch b.Phase {
		case BatchAnnouncing, BatchGating:
			return action{kind: actMove, batch: i}
		case BatchRollingBack:
			return action{kind: actRollback, batch: i}
		case BatchPending:
			if i < len(sp.Batches) {
				for _, p := range sp.Batches[i].Confirm {
					if !slices.Contains(s.Confirmed, p) {
						return action{kind: actConfirm, point: p, batch: i}
					}
				}
			}
			if sp.Window != nil {
				if err := sp.Window(now); err != nil {
					return action{kind: actWindow, batch: i, why: err.Error()}
				}
			}
			if !last.IsZero() && sp.Hold > 0 && now.Before(last.Add(sp.Hold)) {
				return action{kind: actWait, batch: i, until: last.Add(sp.Hold)}
			}
			return action{kind: actMove, batch: i}
		}
	}
	for _, p := range sp.ConfirmEnd {
		if !slices.Contains(s.Confirmed, p) {
			return action{kind: actConfirm, point: p, batch: -1}
		}
	}
	return action{kind: actFinish}
}

// operators returns how many different operators must say go at point.
func (sp *Spec) operators(point string) int {
	if n := sp.ConfirmOperators[point]; n > 1 {
		return n
	}
	return 1
}

// OperatorIdentity is who an operator string (as the daemon writes it:
// "alice", "root (alice)" for sudo, "alice (bob)" when alice's client
// claimed bob) names, as four eyes count people: the unix user, or the
// person root acts for. A user's claim never makes a second person.
func OperatorIdentity(operator string) string {
	i := strings.Index(operator, " (")
	if i <= 0 || !strings.HasSuffix(operator, ")") {
		return operator
	}
	if user := operator[:i]; user != "root" {
		return user
	}
	return operator[i+2 : len(operator)-1]
}

// ConfirmBaselineDown is the go/no-go point the run stops at when the
// pre-check found VMs down: they move with their batches, and neither the
// readiness check nor the gates hold a batch for them.
const ConfirmBaselineDown = "baseline-down"

// withBatch returns the sorted set moved plus b.
func withBatch(moved []int, b int) []int {
	if slices.Contains(moved, b) {
		return slices.Clone(moved)
	}
	out := append(slices.Clone(moved), b)
	slices.Sort(out)
	return out
}

// without returns moved minus every batch for which drop is true.
func without(moved []int, drop func(int) bool) []int {
	out := make([]int, 0, len(moved))
	for _, m := range moved {
		if !drop(m) {
			out = append(out, m)
		}
	}
	return out
}
