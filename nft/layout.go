package nft

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// The owned table, for sites skm1 and skm2 (Render prints it in full):
//
//	counter steered_<site>   packets steered to the site
//	counter oldpath_<site>   packets to its moved addresses still on their old path
//	set moved_<site>_v4/_v6  interval sets of the moved address ranges
//	set moved_<site>_v4_hosts/_v6_hosts  hash sets of single moved addresses
//	chain prerouting         filter hook prerouting priority mangle: jump steer
//	chain output             route hook output priority mangle: jump steer
//	chain steer              per site, O(1) in the number of addresses:
//	  restore: a flow marked for the site at its start keeps the mark
//	  new:     a new flow to a moved address gets the site's mark (packet and
//	           connection)
//	  oldpath: any other packet to a moved address is a flow that began
//	           before the move: it is counted and keeps its old path (drain)
//
// Packets of the reply direction are not marked (the restore rule checks
// the direction), so replies follow the main routing table.
//
// Every rule carries a comment "cutover:<purpose>" (rule user data) so that
// the tool recognises its own rules; the table is found by name.
//
// What the gateway needs besides: IP forwarding, and rp_filter 0 or 2 on its
// interfaces (replies of steered flows come back from the new site while the
// main table still routes the address to the old one, LAB-NOTES). Apply the
// sites before the first batch: conntrack then tracks the flows that are
// open when a batch moves their address, and they drain instead of being
// steered mid-flow.

// Names of the chains and objects in the owned table.
const (
	chainPrerouting = "prerouting"
	chainOutput     = "output"
	chainSteer      = "steer"
	tagPrefix       = "cutover:"
)

func steeredCounter(site string) string { return "steered_" + site }
func oldpathCounter(site string) string { return "oldpath_" + site }

type ruleKind int

const (
	ruleJump    ruleKind = iota // base chain → steer
	ruleRestore                 // established flow marked for the site
	ruleNew                     // new flow to a moved address
	ruleOldPath                 // flow to a moved address that began before the move
)

// physSet is one set in the kernel. The addresses moved to a site of one
// family (the set SetName names) live in two kernel sets: the interval set
// SetName holds ranges of two or more addresses (adjacent addresses merge,
// like nft's auto-merge), the hash set SetName+"_hosts" single addresses. A
// hash element costs the kernel half of what a range does (one element
// instead of a start and an end) and is listed twice as fast: 50,000
// scattered /32s flush in about 66 ms instead of 150 ms and read back in 25
// ms instead of 50 ms; 50,000 adjacent ones are a single range.
type physSet struct {
	name    string // kernel name
	logical string // SetName
	v6      bool
	hosts   bool
}

// hostsSuffix ends the name of a hash set of single addresses.
const hostsSuffix = "_hosts"

// A hash set of single addresses is created with a size
// (NFTA_SET_DESC_SIZE, nft's "size"). Given a size, the kernel picks its
// fixed-size hash table (nft_hash) instead of the resizable rhashtable. An
// rhashtable grows while a batch adds thousands of addresses, and a dump
// during the resize misses elements: the read-back after adding 50,000
// needed a second dump 4 times in 5, and took 80 ms instead of 35. The fixed
// table never resizes, so the first dump is whole.
//
// The size is also the most elements the kernel accepts (ENFILE beyond it,
// after counting the deletes of the same transaction), and a set's size
// cannot change: when a state needs more, the set is deleted and created
// again, larger, with all its elements, in the same transaction (plan). So
// the size is hostsCapacity: a power of two with room to double, at least
// minHostsCapacity. It never shrinks. Kernel memory of the table: 8 bytes a
// bucket, size×4/3 buckets rounded up to a power of two: 64 KiB for the
// smallest size, 2 MiB for size 131,072 (50,000 addresses), besides the
// elements.
const minHostsCapacity = 1 << 12

// hostsCapacity returns the size a hash set of n single addresses is created
// with: the smallest power of two of at least 2n and minHostsCapacity.
func hostsCapacity(n int) uint32 {
	c := uint64(minHostsCapacity)
	for c < 2*uint64(n) && c < 1<<31 {
		c <<= 1
	}
	return uint32(c)
}

// physSets returns the kernel sets of a site.
func physSets(site string) []physSet {
	var out []physSet
	for _, v6 := range []bool{false, true} {
		name := SetName(site, v6)
		out = append(out,
			physSet{name: name, logical: name, v6: v6},
			physSet{name: name + hostsSuffix, logical: name, v6: v6, hosts: true})
	}
	return out
}

// splitHosts splits merged ranges into those of two or more addresses and
// single addresses.
func splitHosts(rs []ipRange) (ranges, hosts []ipRange) {
	n := 0
	for _, r := range rs {
		if r.from == r.to {
			n++
		}
	}
	ranges, hosts = make([]ipRange, 0, len(rs)-n), make([]ipRange, 0, n)
	for _, r := range rs {
		if r.from == r.to {
			hosts = append(hosts, r)
		} else {
			ranges = append(ranges, r)
		}
	}
	return ranges, hosts
}

// ruleSpec is one rule of the owned table.
type ruleSpec struct {
	kind ruleKind
	site Site
	set  physSet // ruleNew, ruleOldPath
}

// tag is the rule's comment, unique in its chain.
func (r ruleSpec) tag() string {
	fam := "v4"
	if r.set.v6 {
		fam = "v6"
	}
	if r.set.hosts {
		fam += ":hosts"
	}
	switch r.kind {
	case ruleJump:
		return tagPrefix + "jump"
	case ruleRestore:
		return tagPrefix + "restore:" + r.site.Name
	case ruleNew:
		return tagPrefix + "new:" + r.site.Name + ":" + fam
	default:
		return tagPrefix + "oldpath:" + r.site.Name + ":" + fam
	}
}

// text returns the rule as nft lists it.
func (r ruleSpec) text() string {
	ip := "ip"
	if r.set.v6 {
		ip = "ip6"
	}
	var s string
	switch r.kind {
	case ruleJump:
		s = "jump " + chainSteer
	case ruleRestore:
		s = fmt.Sprintf("ct direction original ct mark 0x%08x meta mark set 0x%08x counter name %q return",
			r.site.Mark, r.site.Mark, steeredCounter(r.site.Name))
	case ruleNew:
		s = fmt.Sprintf("ct state new %s daddr @%s meta mark set 0x%08x ct mark set 0x%08x counter name %q return",
			ip, r.set.name, r.site.Mark, r.site.Mark, steeredCounter(r.site.Name))
	case ruleOldPath:
		s = fmt.Sprintf("ct direction original %s daddr @%s counter name %q", ip, r.set.name, oldpathCounter(r.site.Name))
	}
	return fmt.Sprintf("%s comment %q", s, r.tag())
}

// chainSpec is one chain of the owned table.
type chainSpec struct {
	name  string
	base  bool
	typ   string // base chains: "filter" or "route"
	hook  string // base chains: "prerouting" or "output"
	rules []ruleSpec
}

// chainSpecs returns the chains for sites (sorted by name).
func chainSpecs(sites []Site) []chainSpec {
	jump := []ruleSpec{{kind: ruleJump}}
	steer := chainSpec{name: chainSteer}
	for _, s := range sites {
		steer.rules = append(steer.rules, ruleSpec{kind: ruleRestore, site: s})
		for _, kind := range []ruleKind{ruleNew, ruleOldPath} {
			for _, set := range physSets(s.Name) {
				steer.rules = append(steer.rules, ruleSpec{kind: kind, site: s, set: set})
			}
		}
	}
	return []chainSpec{
		{name: chainPrerouting, base: true, typ: "filter", hook: "prerouting", rules: jump},
		{name: chainOutput, base: true, typ: "route", hook: "output", rules: jump},
		steer,
	}
}

// ipRuleSpec is one fwmark ip rule.
type ipRuleSpec struct {
	v6       bool
	mark     uint32
	table    int
	priority int
}

func (r ipRuleSpec) String() string {
	return fmt.Sprintf("%s rule fwmark %#x lookup %d priority %d", ipCmd(r.v6), r.mark, r.table, r.priority)
}

// routeSpec is the default route of a site's routing table.
type routeSpec struct {
	v6    bool
	table int
	via   netip.Addr
}

func (r routeSpec) String() string {
	return fmt.Sprintf("%s route default via %s table %d", ipCmd(r.v6), r.via, r.table)
}

func ipCmd(v6 bool) string {
	if v6 {
		return "ip -6"
	}
	return "ip"
}

// routingSpecs returns the ip rules and routes for sites: per site and
// family with a next-hop, "fwmark <mark> lookup <table>" and a default
// route via the next-hop in that table.
func routingSpecs(sites []Site, priority int) ([]ipRuleSpec, []routeSpec) {
	var rules []ipRuleSpec
	var routes []routeSpec
	for _, s := range sites {
		for _, nh := range []netip.Addr{s.NextHop4, s.NextHop6} {
			if !nh.IsValid() {
				continue
			}
			rules = append(rules, ipRuleSpec{v6: nh.Is6(), mark: s.Mark, table: s.Table, priority: priority})
			routes = append(routes, routeSpec{v6: nh.Is6(), table: s.Table, via: nh})
		}
	}
	return rules, routes
}

// withDefaults returns c with its zero fields set to the defaults.
func (c Config) withDefaults() Config {
	if c.Table == "" {
		c.Table = DefaultTable
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.RulePriority == 0 {
		c.RulePriority = DefaultRulePriority
	}
	return c
}

// Validate checks c (after defaults).
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if len(c.Table) > 64 || strings.IndexFunc(c.Table, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
	}) >= 0 {
		errs = append(errs, fmt.Errorf("table %q: want 1 to 64 of a-z, A-Z, 0-9, _ and -", c.Table))
	}
	if c.NetNS != "" && (strings.Contains(c.NetNS, "/") || c.NetNS == "." || c.NetNS == "..") {
		errs = append(errs, fmt.Errorf("netns %q: want a name under /run/netns", c.NetNS))
	}
	if c.DrainTimeout < 0 {
		errs = append(errs, fmt.Errorf("drain timeout %s is negative", c.DrainTimeout))
	}
	if c.RulePriority < 1 || c.RulePriority > 32765 {
		errs = append(errs, fmt.Errorf("rule priority %d is out of range 1-32765", c.RulePriority))
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid dataplane config: %w", errors.Join(errs...))
	}
	return nil
}
