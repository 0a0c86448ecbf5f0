package schedule

import (
	"fmt"
	"strings"
	"time"

	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/health"
	"github.com/cutover/cutover/cutover/runbook"
)

// Estimate is how long a batch takes by the runbook alone, for a schedule
// without a rehearsal that measured it. Bounds, not a guess: a batch that
// passes its gates takes between Least and Ready+Converge+Gates, and the
// next starts Hold after it ends.
//
// The rule, batch by batch from the run's start (pre-check and applying
// the routes and nft elements count as nothing, go/no-go points are
// answered at once):
//
//	start earliest = end earliest of the batch before + Hold   (0 for the first)
//	start latest   = end latest of the batch before + Hold + Ready
//	end earliest   = start earliest + Least
//	end latest     = start latest + Converge + Gates
//
// and the batch's window is [start earliest, end latest].
type Estimate struct {
	// Least is the shortest pass of the gates, which run side by side
	// after convergence: the slowest gate's rise rounds, the first at
	// once, (rise−1)×interval (runbook.GateConfig.Least, the dry run's
	// figure); convergence may be at once.
	Least time.Duration
	// Ready is the longest readiness check before the announce: its two
	// tries of health.DefaultTimeout; 0 with readiness off.
	Ready time.Duration
	// Converge is the bgp gate's timeout: the longest the peers may take
	// to hold a batch's routes and still pass; 0 without a bgp gate.
	Converge time.Duration
	// Gates is the longest within of the health gates (probe,
	// prometheus): the longest a gate may take and still pass.
	Gates time.Duration
	// Hold is the runbook's hold between one batch's end and the next
	// one's start.
	Hold time.Duration
}

// readyTries is how often the readiness check probes a VM that does not
// answer (health.Ready takes a baseline of two tries).
const readyTries = 2

// NewEstimate reads the estimate's figures from the runbook.
func NewEstimate(rb *runbook.Runbook) Estimate {
	e := Estimate{Converge: rb.ConvergeTimeout(), Hold: rb.Hold}
	for _, g := range rb.Gates {
		e.Least = max(e.Least, g.Least())
		if g.Kind != runbook.GateBGP {
			e.Gates = max(e.Gates, g.Within)
		}
	}
	if rb.Readiness != engine.ReadyOff {
		e.Ready = readyTries * health.DefaultTimeout
	}
	return e
}

// Most is the longest a batch that passes can take, its readiness check
// included.
func (e Estimate) Most() time.Duration { return e.Ready + e.Converge + e.Gates }

// String states the rule with the runbook's figures, in one line.
func (e Estimate) String() string {
	var most []string
	if e.Ready > 0 {
		most = append(most, "readiness check "+e.Ready.String())
	}
	if e.Converge > 0 {
		most = append(most, "bgp timeout "+e.Converge.String())
	}
	if e.Gates > 0 {
		most = append(most, "longest within "+e.Gates.String())
	}
	why := "no gate"
	if len(most) > 0 {
		why = strings.Join(most, " + ")
	}
	return fmt.Sprintf("a batch takes %s to %s (slowest gate's (rise-1)×interval; %s), hold %s between batches; pre-check and applying count as nothing",
		e.Least, e.Most(), why, e.Hold)
}
