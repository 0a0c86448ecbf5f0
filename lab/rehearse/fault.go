// Package rehearse runs a runbook, unchanged, against the built-in lab:
// it brings the lab up sized and addressed from the runbook's inventory,
// starts the cutover daemon in the lab's controller namespace, runs the
// runbook with every go/no-go point answered, injects faults at chosen
// batches, checks that the outcome is what the runbook's failure and
// readiness policies promise, optionally retries what was left at the
// source, and writes the report. "A bad dress rehearsal makes a good
// premiere."
//
// The fault kinds are declared once, in Kinds: their name, argument,
// help texts, how a rehearsal schedules them, what they do to a batch's
// readiness check and gates, and their injection, which `cutover lab
// fault KIND` calls by hand on a running lab.
package rehearse

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/cutover/cutover/lab"
)

// Fault kinds.
const (
	VMDown     = "vm-down"     // stop the responders of some VMs of a batch at the target once it moves
	TargetDown = "target-down" // stop them before the batch: its readiness check must hold it
	SlowVM     = "slow-vm"     // delay the responders of some VMs of a batch at the target once it moves
	HTTP5xx    = "http-5xx"    // make the responders of some VMs of a batch answer 503 at the target once it moves
	BGPReset   = "bgp-reset"   // clear the edge's BGP session to the controller
	LinkDown   = "link-down"   // take the target site's link down while a batch is gated
	DaemonKill = "daemon-kill" // kill -9 the daemon in a batch and start it again
)

// Kind is one kind of fault: everything about it in one place.
type Kind struct {
	Name string
	// Arg is the synopsis of the argument a rehearsal's --inject takes
	// (KIND[:ARG]), such as "[:10%|:N]"; empty: the kind takes none.
	Arg string
	// Help says in one line what the fault does to a batch in a rehearsal.
	Help string
	// Usage is the synopsis of `cutover lab fault KIND`'s flags, and
	// ByHand what it does there (lines separated by "\n").
	Usage  string
	ByHand string
	// NeedsVMs: the fault acts on VM addresses (Injection.VMs), at
	// Injection.Site.
	NeedsVMs bool
	// Early faults are put in place before the run starts, so that they
	// are there when their batch's readiness check probes the VMs at the
	// target (target-down). The others are injected the moment a
	// rehearsal sees their batch announcing (or gated): after its
	// readiness check passed, before its gates decide.
	Early bool
	// AfterReady faults must be in place before the batch's gates look at
	// the VMs (vm-down, slow-vm: VMs fail at the target after the move): a
	// rehearsal polls the daemon quickly while one is armed, so that it
	// lands while the batch is announcing.
	AfterReady bool
	// UndoWhenDecided faults are undone by a rehearsal once their batch is
	// committed, rolled back or held (a link comes back up, responders
	// start again).
	UndoWhenDecided bool

	parse     func(f *Fault, arg string) error               // nil: takes no argument
	format    func(f Fault) string                           // ":ARG" of String, or ""
	failsGate func(f Fault, probeTimeout time.Duration) bool // nil: never
	// failsReady: the fault makes its batch fail the readiness check
	// (what then happens is the runbook's readiness policy).
	failsReady bool
	// undoable: Inject with Injection.Undo takes the fault away again.
	undoable bool
	inject   func(ctx context.Context, in Injection) ([]string, error)
	describe func(in Injection) string
}

// Kinds is every fault kind, in the order help texts list them.
var Kinds = []Kind{
	{
		Name: VMDown, Arg: "[:10%|:N]",
		Help:     "stop a share (or N) of the batch's VMs at the target once it moves",
		Usage:    "--addrs A,B [--site skm2] [--up]",
		ByHand:   "stop (or, with --up, restart) VM responders",
		NeedsVMs: true, AfterReady: true, undoable: true,
		parse:     parseShare,
		format:    formatShare,
		failsGate: func(Fault, time.Duration) bool { return true },
		inject:    setVMsDown,
		describe:  describeVMsDown,
	},
	{
		Name: TargetDown, Arg: "[:10%|:N]",
		Help:  "as vm-down, before the batch starts: the readiness check must hold it",
		Usage: "--addrs A,B [--site skm2] [--up]",
		ByHand: "as vm-down, before the VMs' batch starts: its\n" +
			"readiness check must hold it (or pause the run)",
		NeedsVMs: true, Early: true, UndoWhenDecided: true, undoable: true,
		parse:  parseShare,
		format: formatShare,
		// With the readiness check off, the VMs are down when the gates
		// look at them.
		failsGate:  func(Fault, time.Duration) bool { return true },
		failsReady: true,
		inject:     setVMsDown,
		describe:   describeVMsDown,
	},
	{
		Name: SlowVM, Arg: "[:2s]",
		Help:     "delay 10% of the batch's VMs at the target once it moves",
		Usage:    "--addrs A,B [--site skm2] --delay 2s",
		ByHand:   "delay VM responders (0 undoes it)",
		NeedsVMs: true, AfterReady: true, undoable: true,
		parse:     parseDelay,
		format:    func(f Fault) string { return ":" + f.Delay.String() },
		failsGate: func(f Fault, probeTimeout time.Duration) bool { return f.Delay >= probeTimeout },
		inject: func(_ context.Context, in Injection) ([]string, error) {
			if in.Undo {
				in.Delay = 0
			}
			return nil, in.Lab.SetVMDelay(in.Site, in.VMs, in.Delay)
		},
		describe: func(in Injection) string {
			if in.Delay == 0 || in.Undo {
				return fmt.Sprintf("responders of %d VM addresses at %s no longer delayed", len(in.VMs), in.Site)
			}
			return fmt.Sprintf("responders of %d VM addresses at %s delayed by %s", len(in.VMs), in.Site, in.Delay)
		},
	},
	{
		Name: HTTP5xx, Arg: "[:10%|:N]",
		Help:     "make a share of the batch's VMs answer HTTP 503 at the target once it moves",
		Usage:    "--addrs A,B [--site skm2] [--up]",
		ByHand:   "make VM responders answer HTTP 503 (--up: 200 again)",
		NeedsVMs: true, AfterReady: true, undoable: true,
		parse:  parseShare,
		format: formatShare,
		// A 503 is unhealthy to an http or https probe (2xx and 3xx are
		// healthy) and counts in the responders' 5xx rate a prometheus
		// gate watches; a tcp or icmp probe still passes.
		failsGate: func(Fault, time.Duration) bool { return true },
		inject:    setVMs5xx,
		describe:  describeVMs5xx,
	},
	{
		Name:   BGPReset,
		Help:   "clear the edge's BGP sessions while the batch runs",
		ByHand: "clear the edge's BGP sessions",
		inject: func(ctx context.Context, in Injection) ([]string, error) {
			return nil, in.Lab.ResetBGP(ctx, lab.NodeEdge)
		},
		describe: func(Injection) string { return "the edge cleared its BGP sessions" },
	},
	{
		Name:            LinkDown,
		Help:            "take the target site's link down while the batch runs",
		Usage:           "[--site skm2] [--up]",
		ByHand:          "take a site's link at the edge down (or up)",
		UndoWhenDecided: true,
		undoable:        true,
		failsGate:       func(Fault, time.Duration) bool { return true },
		inject: func(ctx context.Context, in Injection) ([]string, error) {
			return nil, setSiteLink(ctx, in.Lab, in.Site, in.Undo)
		},
		describe: func(in Injection) string {
			if in.Undo {
				return fmt.Sprintf("the edge's link to %s up", in.Site)
			}
			return fmt.Sprintf("the edge's link to %s down", in.Site)
		},
	},
	{
		Name:  DaemonKill,
		Help:  "kill -9 the daemon in the batch, sample the edge FIB, restart, resume",
		Usage: "[--gap 3s]",
		ByHand: "kill -9 the daemon a rehearsal left up (--keep), sample\n" +
			"the edge FIB while it is dead, start it again the same way;\n" +
			"the run then waits for 'cutover resume'",
		inject:   killDaemon,
		describe: func(Injection) string { return "the daemon was killed with kill -9 and started again" },
	},
}

// setVMsDown stops (or, undone, starts again) the responders of in.VMs at
// in.Site: vm-down and target-down.
func setVMsDown(_ context.Context, in Injection) ([]string, error) {
	return nil, in.Lab.SetVMDown(in.Site, in.VMs, !in.Undo)
}

func describeVMsDown(in Injection) string {
	if in.Undo {
		return fmt.Sprintf("responders of %d VM addresses at %s started again", len(in.VMs), in.Site)
	}
	return fmt.Sprintf("responders of %d VM addresses at %s stopped", len(in.VMs), in.Site)
}

// failingStatus is what http-5xx makes VMs answer: what a load balancer
// or an application with a dead backend answers.
const failingStatus = 503

// setVMs5xx makes the responders of in.VMs at in.Site answer HTTP 503
// (or, undone, 200 again): http-5xx.
func setVMs5xx(_ context.Context, in Injection) ([]string, error) {
	code := failingStatus
	if in.Undo {
		code = 0
	}
	return nil, in.Lab.SetVMStatus(in.Site, in.VMs, code)
}

func describeVMs5xx(in Injection) string {
	if in.Undo {
		return fmt.Sprintf("responders of %d VM addresses at %s answer 200 again", len(in.VMs), in.Site)
	}
	return fmt.Sprintf("responders of %d VM addresses at %s answer HTTP %d", len(in.VMs), in.Site, failingStatus)
}

// Injection is where and how a fault is put on a lab: by a rehearsal at a
// batch, or by hand (cutover lab fault).
type Injection struct {
	Lab *lab.Lab
	// Site is the site of the VMs (vm-down, target-down, slow-vm,
	// http-5xx) or whose link at the edge goes down (link-down).
	Site string
	VMs  []netip.Addr // vm-down, target-down, slow-vm, http-5xx
	// Undo starts the responders again (vm-down, target-down), takes the
	// delay away (slow-vm), makes them answer 200 again (http-5xx) or
	// brings the link up (link-down).
	Undo  bool
	Delay time.Duration // slow-vm: response delay; 0 undoes it
	Gap   time.Duration // daemon-kill: how long the daemon stays dead (default 3s)
	// Withdrawn holds the prefixes the daemon withdrew before a
	// daemon-kill (its rolled-back batches): the edge dropping them while
	// the daemon is dead is the withdrawal landing, not a failure.
	Withdrawn map[netip.Prefix]bool

	daemon *labDaemon // daemon-kill in a rehearsal: its daemon; nil: the one recorded in the lab
}

// KindNames returns the names of the fault kinds.
func KindNames() []string {
	names := make([]string, len(Kinds))
	for i, k := range Kinds {
		names[i] = k.Name
	}
	return names
}

// UnknownKindError is a fault kind that is not in Kinds.
type UnknownKindError struct{ Kind string }

func (e *UnknownKindError) Error() string {
	return fmt.Sprintf("unknown kind %q (want one of %s)", e.Kind, strings.Join(KindNames(), ", "))
}

// LookupKind returns the fault kind named name; the error is an
// *UnknownKindError.
func LookupKind(name string) (*Kind, error) {
	for i := range Kinds {
		if Kinds[i].Name == name {
			return &Kinds[i], nil
		}
	}
	return nil, &UnknownKindError{Kind: name}
}

// Inject puts the fault on in.Lab and returns what it saw (daemon-kill:
// the edge's FIB while the daemon was dead). A daemon-kill whose edge
// dropped routes returns the evidence and a *RoutesDroppedError.
func (k *Kind) Inject(ctx context.Context, in Injection) ([]string, error) {
	if in.Lab == nil {
		return nil, fmt.Errorf("%s: no lab", k.Name)
	}
	if k.NeedsVMs && len(in.VMs) == 0 {
		return nil, fmt.Errorf("%s: no VM addresses", k.Name)
	}
	return k.inject(ctx, in)
}

// Describe says in one line what Inject did.
func (k *Kind) Describe(in Injection) string { return k.describe(in) }

// InjectHelp lists the kinds as a rehearsal's --inject takes them, one
// line each, indented for a command's help.
func InjectHelp() string {
	width := 18
	for _, k := range Kinds {
		width = max(width, len(k.Name+k.Arg)+2)
	}
	var b strings.Builder
	for i, k := range Kinds {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "  %-*s %s", width, k.Name+k.Arg, k.Help)
	}
	return b.String()
}

// ByHandHelp lists the kinds as `cutover lab fault KIND` injects them,
// with their flags, indented for a command's help.
func ByHandHelp() string {
	var b strings.Builder
	for i, k := range Kinds {
		if i > 0 {
			b.WriteByte('\n')
		}
		use := fmt.Sprintf("%-9s %s", k.Name, k.Usage)
		for j, line := range strings.Split(k.ByHand, "\n") {
			if j > 0 {
				use = ""
				b.WriteByte('\n')
			}
			fmt.Fprintf(&b, "  %-46s %s", use, line)
		}
	}
	return b.String()
}

// Fault is one fault to inject: KIND[:ARG][@WHEN].
//
//	vm-down[:SHARE|:COUNT]      share of the batch's probed VMs (default 10%, at least 1) or a count
//	target-down[:SHARE|:COUNT]  the same, stopped before the batch starts
//	slow-vm[:DELAY]             response delay (default 2s) of 10% of the batch's probed VMs
//	http-5xx[:SHARE|:COUNT]     as vm-down, the VMs answer HTTP 503 instead
//	bgp-reset, link-down, daemon-kill
//
// WHEN is a batch index, a batch name ("canary", "batch-03") or "middle"
// (the default).
type Fault struct {
	Kind  string
	Share float64       // vm-down, target-down, slow-vm, http-5xx: share of the batch's probed VMs
	Count int           // vm-down, target-down, http-5xx: a fixed number of VMs instead
	Delay time.Duration // slow-vm
	When  string        // as written; resolved against the plan by Batch
}

// kind returns f's entry in Kinds (ParseFault and Run made sure there is
// one).
func (f Fault) kind() *Kind {
	k, err := LookupKind(f.Kind)
	if err != nil {
		panic(err)
	}
	return k
}

func (f Fault) String() string {
	s := f.Kind
	if k, err := LookupKind(f.Kind); err == nil && k.format != nil {
		s += k.format(f)
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
	k, err := LookupKind(kind)
	if err != nil {
		return Fault{}, fmt.Errorf("fault %q: %w", s, err)
	}
	switch {
	case !hasArg:
	case k.parse == nil:
		return Fault{}, fmt.Errorf("fault %q: %s takes no argument", s, kind)
	default:
		if err := k.parse(&f, arg); err != nil {
			return Fault{}, fmt.Errorf("fault %q: %w", s, err)
		}
	}
	return f, nil
}

// parseShare parses the SHARE% or COUNT of vm-down, target-down and
// http-5xx.
func parseShare(f *Fault, arg string) error {
	if pct, ok := strings.CutSuffix(arg, "%"); ok {
		v, err := strconv.ParseFloat(pct, 64)
		if err != nil || v <= 0 || v > 100 {
			return fmt.Errorf("share %q: want 1%% to 100%%", arg)
		}
		f.Share = v / 100
		return nil
	}
	n, err := strconv.Atoi(arg)
	if err != nil || n < 1 {
		return fmt.Errorf("%q: want a share such as 10%% or a count of VMs", arg)
	}
	f.Count = n
	return nil
}

func formatShare(f Fault) string {
	if f.Count > 0 {
		return ":" + strconv.Itoa(f.Count)
	}
	return ":" + strconv.FormatFloat(f.Share*100, 'f', -1, 64) + "%"
}

// parseDelay parses slow-vm's DELAY.
func parseDelay(f *Fault, arg string) error {
	d, err := time.ParseDuration(arg)
	if err != nil || d <= 0 {
		return fmt.Errorf("delay %q: want a duration such as 2s", arg)
	}
	f.Delay = d
	return nil
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
	k := f.kind()
	return k.failsGate != nil && k.failsGate(f, probeTimeout)
}

// failsReady reports whether the fault must make its batch fail the
// readiness check before the move.
func (f Fault) failsReady() bool { return f.kind().failsReady }

// setSiteLink takes the edge's link to site down or up.
func setSiteLink(ctx context.Context, l *lab.Lab, site string, up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	ln, ok := l.Topology().Link(site)
	if !ok {
		return fmt.Errorf("link %s: the lab has no link to %q", state, site)
	}
	if out, err := exec.CommandContext(ctx, "ip", "-n", l.Namespace(lab.NodeEdge), "link", "set", ln.A.Iface, state).CombinedOutput(); err != nil {
		return fmt.Errorf("link %s %s: %w %s", ln.A.Iface, state, err, out)
	}
	return nil
}

// RoutesDroppedError is a daemon-kill during which the edge dropped
// routes: graceful restart did not hold them.
type RoutesDroppedError struct {
	Evidence string // what the edge's FIB held while the daemon was dead
}

func (e *RoutesDroppedError) Error() string {
	return "daemon-kill: the edge dropped routes while the daemon was dead: graceful restart did not hold them (" + e.Evidence + ")"
}
