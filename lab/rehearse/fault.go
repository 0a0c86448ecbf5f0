// Package rehearse runs a runbook, unchanged, against the built-in lab:
// it brings the lab up sized and addressed from the runbook's inventory,
// starts the cutover daemon in the lab's controller namespace, runs the
// runbook with every go/no-go point answered, injects faults at chosen
// batches, checks that the outcome is what the runbook's failure policy
// promises, and writes the report. "A bad dress rehearsal makes a good
// premiere."
package rehearse

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Fault kinds.
const (
	VMDown     = "vm-down"     // stop the responders of some VMs of a batch at the target
	SlowVM     = "slow-vm"     // delay the responders of some VMs of a batch at the target
	BGPReset   = "bgp-reset"   // clear the edge's BGP session to the controller
	LinkDown   = "link-down"   // take the target site's link down while a batch is gated
	DaemonKill = "daemon-kill" // kill -9 the daemon in a batch and start it again
)

// Kinds lists the fault kinds.
var Kinds = []string{VMDown, SlowVM, BGPReset, LinkDown, DaemonKill}

// Fault is one fault to inject: KIND[:ARG][@WHEN].
//
//	vm-down[:SHARE|:COUNT]  share of the batch's probed VMs (default 10%, at least 1) or a count
//	slow-vm[:DELAY]         response delay (default 2s) of 10% of the batch's probed VMs
//	bgp-reset, link-down, daemon-kill
//
// WHEN is a batch index, a batch name ("canary", "batch-03") or "middle"
// (the default).
type Fault struct {
	Kind  string
	Share float64       // vm-down, slow-vm: share of the batch's probed VMs
	Count int           // vm-down: a fixed number of VMs instead
	Delay time.Duration // slow-vm
	When  string        // as written; resolved against the plan by Batch
}

func (f Fault) String() string {
	s := f.Kind
	switch {
	case f.Kind == SlowVM:
		s += ":" + f.Delay.String()
	case f.Kind != VMDown:
	case f.Count > 0:
		s += ":" + strconv.Itoa(f.Count)
	default:
		s += ":" + strconv.FormatFloat(f.Share*100, 'f', -1, 64) + "%"
	}
	return s + "@" + f.When
}

// ParseFault parses KIND[:ARG][@WHEN].
func ParseFault(s string) (Fault, error) {
	spec, when, _ := strings.Cut(s, "@")
	kind, arg, hasArg := strings.Cut(spec, ":")
	f := Fault{Kind: kind, When: when, Share: 0.10, Delay: 2 * time.Second}
	if f.When == "" {
		f.When = "middle"
	}
	switch kind {
	case VMDown:
		if hasArg {
			if pct, ok := strings.CutSuffix(arg, "%"); ok {
				v, err := strconv.ParseFloat(pct, 64)
				if err != nil || v <= 0 || v > 100 {
					return Fault{}, fmt.Errorf("fault %q: share %q: want 1%% to 100%%", s, arg)
				}
				f.Share = v / 100
			} else {
				n, err := strconv.Atoi(arg)
				if err != nil || n < 1 {
					return Fault{}, fmt.Errorf("fault %q: %q: want a share such as 10%% or a count of VMs", s, arg)
				}
				f.Count = n
			}
		}
	case SlowVM:
		if hasArg {
			d, err := time.ParseDuration(arg)
			if err != nil || d <= 0 {
				return Fault{}, fmt.Errorf("fault %q: delay %q: want a duration such as 2s", s, arg)
			}
			f.Delay = d
		}
	case BGPReset, LinkDown, DaemonKill:
		if hasArg {
			return Fault{}, fmt.Errorf("fault %q: %s takes no argument", s, kind)
		}
	default:
		return Fault{}, fmt.Errorf("fault %q: unknown kind %q (want one of %s)", s, kind, strings.Join(Kinds, ", "))
	}
	return f, nil
}

// batchIndex resolves WHEN against the batch names of a plan.
func (f Fault) batchIndex(names []string) (int, error) {
	if f.When == "middle" {
		return len(names) / 2, nil
	}
	if n, err := strconv.Atoi(f.When); err == nil {
		if n < 0 || n >= len(names) {
			return 0, fmt.Errorf("fault %s: batch %d: the plan has batches 0 to %d", f, n, len(names)-1)
		}
		return n, nil
	}
	for i, name := range names {
		if name == f.When {
			return i, nil
		}
	}
	return 0, fmt.Errorf("fault %s: no batch named %q", f, f.When)
}

// failsGate reports whether the fault must make its batch fail its gates
// given the probe gate's per-probe timeout.
func (f Fault) failsGate(probeTimeout time.Duration) bool {
	switch f.Kind {
	case VMDown, LinkDown:
		return true
	case SlowVM:
		return f.Delay >= probeTimeout
	}
	return false
}
