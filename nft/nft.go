// Package nft states what the cutover engine needs from the Linux gateway's
// dataplane, and plans it without touching the kernel. The dataplane is an
// nftables table the tool owns (default "inet cutover") with one set per
// target site and address family holding the moved prefixes, marks for new
// flows to those addresses, ip rules and per-site routing tables that send
// marked packets to the site's next-hop, and draining of flows that were open
// before a move.
//
// Everything the engine needs is the Dataplane interface and its types;
// Validate checks a State, Render prints the ruleset it needs and Diff
// compares two. The kernel implementation, which talks netlink
// (google/nftables, vishvananda/netlink) in the current or a given network
// namespace, is package nft/kernel; fake.go holds a fake. This package
// imports neither netlink library, so what only needs the types stays free
// of them.
package nft

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/cutover/cutover/nft/internal/layout"
)

// DefaultTable is the name of the inet table the tool owns.
const DefaultTable = "cutover"

// Site is one steering target.
type Site struct {
	Name     string     // runbook site name: [a-z0-9_]{1,24}
	Mark     uint32     // firewall mark for new flows to this site's addresses; non-zero, unique
	Table    int        // routing table that marked packets are looked up in; unique
	NextHop4 netip.Addr // IPv4 next-hop of the site; zero value: v4 not steered
	NextHop6 netip.Addr // IPv6 next-hop of the site; zero value: v6 not steered
}

// State is the dataplane state that is wanted (or that was read back):
// which prefixes are steered to which site.
type State struct {
	Sites []Site
	// Moved maps a site name to the prefixes steered to it. A prefix is in at
	// most one site. nil and empty both mean "nothing moved".
	Moved map[string][]netip.Prefix
}

// SetName is the name of the set that holds the prefixes moved to site, for
// IPv6 when v6 is true: "moved_<site>_v4" or "moved_<site>_v6".
func SetName(site string, v6 bool) string { return layout.SetName(site, v6) }

// Element is one set element change.
type Element struct {
	Set    string
	Prefix netip.Prefix
}

func (e Element) String() string { return fmt.Sprintf("%s %s", e.Set, e.Prefix) }

// Changes is what turns one State into another, in set elements.
type Changes struct {
	Add    []Element
	Remove []Element
}

// Diff returns the set element changes that turn from into to, sorted by set
// and prefix so that equal inputs give equal output.
func Diff(from, to State) Changes {
	have := elements(from)
	want := elements(to)
	var c Changes
	for e := range want {
		if _, ok := have[e]; !ok {
			c.Add = append(c.Add, e)
		}
	}
	for e := range have {
		if _, ok := want[e]; !ok {
			c.Remove = append(c.Remove, e)
		}
	}
	sortElements(c.Add)
	sortElements(c.Remove)
	return c
}

func elements(s State) map[Element]struct{} {
	m := make(map[Element]struct{})
	for site, ps := range s.Moved {
		for _, p := range ps {
			m[Element{SetName(site, p.Addr().Is6()), p.Masked()}] = struct{}{}
		}
	}
	return m
}

func sortElements(es []Element) {
	slices.SortFunc(es, func(a, b Element) int {
		if a.Set != b.Set {
			if a.Set < b.Set {
				return -1
			}
			return 1
		}
		return a.Prefix.Addr().Compare(b.Prefix.Addr())
	})
}

// Dataplane is what the engine needs from the gateway's dataplane. An
// implementation is safe for concurrent use.
type Dataplane interface {
	// Apply makes the kernel hold desired: set elements, rules, ip rules and
	// routes, all set elements in one nftables transaction. desired is
	// validated first (nothing is changed when it is invalid) and the kernel is
	// read back afterwards; a difference is an error. Addresses whose site
	// changed start a drain (see Result.Drain). Drift found before the change
	// (a hand edit since this Dataplane's last Apply; before its first one,
	// of everything but the set elements: call Drift at start) is corrected
	// with Config.Correct, otherwise Apply returns a *DriftError and changes
	// nothing. Apply the sites without moves before the first batch, so that
	// conntrack tracks the flows a batch must drain. A State without Sites
	// removes the table, the ip rules and the routes: the tool's whole
	// footprint.
	Apply(ctx context.Context, desired State) (Result, error)
	// Drift compares the kernel with desired (normally the state last applied,
	// e.g. from the journal at start) without changing anything.
	Drift(ctx context.Context, desired State) (Drift, error)
	// Counters returns per site the traffic steered to it and its drains.
	Counters(ctx context.Context) (map[string]Counter, error)
	// Close stops the drain timers; the kernel keeps the table, ip rules and
	// routes, and flows keep their connection marks.
	Close() error
}

// Defaults for Config.
const (
	DefaultDrainTimeout = 5 * time.Minute
	DefaultRulePriority = 9000
)

// Config configures a Dataplane: the kernel one (nft/kernel.New) and the
// Fake (NewFake). The zero value is usable.
type Config struct {
	// Table is the name of the inet table the tool owns; "" means DefaultTable.
	Table string
	// NetNS is the name of a network namespace under /run/netns to work in;
	// "" means the current one.
	NetNS string
	// DrainTimeout is how long flows that were open before their address
	// changed site keep their old path; 0 means DefaultDrainTimeout.
	DrainTimeout time.Duration
	// Correct makes Apply correct drift (hand edits of the table, missing ip
	// rules or routes) instead of failing with a *DriftError.
	Correct bool
	// RulePriority is the priority of the fwmark ip rules; every rule at this
	// priority belongs to the tool. 0 means DefaultRulePriority.
	RulePriority int
}

// Result is what one Apply did.
type Result struct {
	// Changes lists the addresses added to and removed from each set, as
	// the fewest prefixes that cover them.
	Changes Changes
	// Corrected lists the drift that Apply corrected (Config.Correct).
	Corrected []string
	// Drain is the drain this Apply started, as it was when Apply returned;
	// nil when no address changed site.
	Drain *DrainStatus
	// Took is the duration of the whole Apply; Timings splits it.
	Took    time.Duration
	Timings Timings
}

// Timings splits the duration of an Apply into its phases.
type Timings struct {
	Validate time.Duration // validate and compile desired
	Read     time.Duration // read the kernel before the change
	Plan     time.Duration // compare, plan the transaction, start the drain
	Flush    time.Duration // queue and flush the nftables transaction
	ReadBack time.Duration // read the kernel again and compare
	Routes   time.Duration // ip rules and routes
}

// DrainStatus describes one drain: flows to Prefixes that were open before
// an Apply changed the prefixes' site keep their old path until they end or
// Deadline passes; then their conntrack entries are deleted, so their next
// packet is a new flow and is steered (a TCP connection moved to a site that
// does not know it is reset).
type DrainStatus struct {
	ID       uint64         // counts up per Apply that started a drain
	Prefixes []netip.Prefix // the addresses whose site changed
	Started  time.Time
	Deadline time.Time
	Done     bool
	Finished time.Time
	// Reason says why the drain finished: "timeout", "no-old-flows",
	// "superseded" (a later Apply moved all its addresses again) or "closed".
	Reason string
	// Flushed is the number of conntrack entries deleted when it finished.
	Flushed int
	// Err is set when deleting the conntrack entries failed.
	Err string
}

// Counter is the traffic of one site, read from the kernel's counters.
type Counter struct {
	// Packets and Bytes count packets steered to the site: new flows to its
	// moved addresses and every later packet of those flows.
	Packets, Bytes uint64
	// OldPathPackets and OldPathBytes count packets to the site's moved
	// addresses that still take their old path (flows open before the move).
	OldPathPackets, OldPathBytes uint64
	// Draining is the number of unfinished drains that involve addresses
	// moved to or away from the site, and DrainDeadline the latest of their
	// deadlines.
	Draining      int
	DrainDeadline time.Time
	// Drains are those drains, after the last 16 finished drains (of all
	// sites) that involved the site, oldest first.
	Drains []DrainStatus
}

// Drift is the difference between the kernel and a desired State.
type Drift struct {
	Missing []Element // addresses the kernel's sets lack, as prefixes
	Extra   []Element // addresses the kernel's sets hold but should not
	Objects []string  // tables, sets, counters, chains, rules, ip rules, routes
}

// Empty reports whether there is no drift.
func (d Drift) Empty() bool {
	return len(d.Missing) == 0 && len(d.Extra) == 0 && len(d.Objects) == 0
}

// Items returns the drift as lines such as "missing element moved_skm2_v4
// 10.0.0.5/32", objects first.
func (d Drift) Items() []string {
	items := slices.Clone(d.Objects)
	for _, e := range d.Missing {
		items = append(items, "missing element "+e.String())
	}
	for _, e := range d.Extra {
		items = append(items, "unexpected element "+e.String())
	}
	return items
}

// String returns the first items of the drift on one line.
func (d Drift) String() string {
	const show = 10
	items := d.Items()
	if len(items) == 0 {
		return "no drift"
	}
	s := strings.Join(items[:min(show, len(items))], "; ")
	if len(items) > show {
		s += fmt.Sprintf("; and %d more", len(items)-show)
	}
	return s
}

// DriftError is returned by Apply when the kernel drifted from the state last
// applied and Config.Correct is false; nothing was changed.
type DriftError struct {
	Drift Drift
}

func (e *DriftError) Error() string {
	return "kernel drifted from the desired state (set Correct to fix): " + e.Drift.String()
}
