// Package layout is what package nft and its kernel implementation
// (nft/kernel) share about the dataplane a State needs, without the kernel:
// Compile validates a State's sites and moved prefixes into merged address
// ranges per set; KernelSets, Chains and Routing give the owned nftables
// table's sets, chains and rules and the ip rules and routes, which nft's
// Render prints and the kernel implementation programs; SetChanges and
// SetDrift compare sets. Being internal, it keeps nft's exported API to
// what the engine needs.
package layout

import (
	"fmt"
	"net/netip"
	"strings"
)

// The owned table, for sites skm1 and skm2 (nft.Render prints it in full):
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
// main table still routes the address to the old one, and rp_filter 1
// drops them). Apply the
// sites before the first batch: conntrack then tracks the flows that are
// open when a batch moves their address, and they drain instead of being
// steered mid-flow.

// Site is one steering target, as nft.Site documents it. The two types
// convert into each other with a plain conversion, which stops compiling
// when their fields differ.
type Site struct {
	Name     string
	Mark     uint32
	Table    int
	NextHop4 netip.Addr
	NextHop6 netip.Addr
}

// SetName is the name of the set that holds the prefixes moved to site, for
// IPv6 when v6 is true: "moved_<site>_v4" or "moved_<site>_v6" (nft.SetName).
func SetName(site string, v6 bool) string {
	if v6 {
		return "moved_" + site + "_v6"
	}
	return "moved_" + site + "_v4"
}

// Names of the chains and objects in the owned table.
const (
	chainPrerouting = "prerouting"
	chainOutput     = "output"
	ChainSteer      = "steer" // the regular chain the base chains jump to
	tagPrefix       = "cutover:"
)

// SteeredCounter is the name of the counter of the packets steered to site.
func SteeredCounter(site string) string { return "steered_" + site }

// OldPathCounter is the name of the counter of the packets to site's moved
// addresses that still take their old path.
func OldPathCounter(site string) string { return "oldpath_" + site }

// RuleKind says what a rule of the owned table does.
type RuleKind int

// The kinds of rules.
const (
	RuleJump    RuleKind = iota // base chain → steer
	RuleRestore                 // established flow marked for the site
	RuleNew                     // new flow to a moved address
	RuleOldPath                 // flow to a moved address that began before the move
)

// KernelSet is one set in the kernel. The addresses moved to a site of one
// family (the set SetName names) live in two kernel sets: the interval set
// SetName holds ranges of two or more addresses (adjacent addresses merge,
// like nft's auto-merge), the hash set SetName+"_hosts" single addresses. A
// hash element costs the kernel half of what a range does (one element
// instead of a start and an end) and is listed twice as fast: 50,000
// scattered /32s flush in about 66 ms instead of 150 ms and read back in 25
// ms instead of 50 ms; 50,000 adjacent ones are a single range.
type KernelSet struct {
	Name    string // kernel name
	Logical string // SetName
	V6      bool
	Hosts   bool
}

// hostsSuffix ends the name of a hash set of single addresses.
const hostsSuffix = "_hosts"

// LogicalSet returns the name (SetName) of the set that the kernel set name
// is part of.
func LogicalSet(name string) string { return strings.TrimSuffix(name, hostsSuffix) }

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
// again, larger, with all its elements, in the same transaction (the kernel
// implementation's plan). So the size is HostsCapacity: a power of two with
// room to double, at least minHostsCapacity. It never shrinks. Kernel memory
// of the table: 8 bytes a bucket, size×4/3 buckets rounded up to a power of
// two: 64 KiB for the smallest size, 2 MiB for size 131,072 (50,000
// addresses), besides the elements.
const minHostsCapacity = 1 << 12

// HostsCapacity returns the size a hash set of n single addresses is created
// with: the smallest power of two of at least 2n and minHostsCapacity.
func HostsCapacity(n int) uint32 {
	c := uint64(minHostsCapacity)
	for c < 2*uint64(n) && c < 1<<31 {
		c <<= 1
	}
	return uint32(c)
}

// KernelSets returns the kernel sets of a site.
func KernelSets(site string) []KernelSet {
	var out []KernelSet
	for _, v6 := range []bool{false, true} {
		name := SetName(site, v6)
		out = append(out,
			KernelSet{Name: name, Logical: name, V6: v6},
			KernelSet{Name: name + hostsSuffix, Logical: name, V6: v6, Hosts: true})
	}
	return out
}

// Rule is one rule of the owned table.
type Rule struct {
	Kind RuleKind
	Site Site
	Set  KernelSet // RuleNew, RuleOldPath
}

// Tag is the rule's comment, unique in its chain.
func (r Rule) Tag() string {
	fam := "v4"
	if r.Set.V6 {
		fam = "v6"
	}
	if r.Set.Hosts {
		fam += ":hosts"
	}
	switch r.Kind {
	case RuleJump:
		return tagPrefix + "jump"
	case RuleRestore:
		return tagPrefix + "restore:" + r.Site.Name
	case RuleNew:
		return tagPrefix + "new:" + r.Site.Name + ":" + fam
	default:
		return tagPrefix + "oldpath:" + r.Site.Name + ":" + fam
	}
}

// Text returns the rule as nft lists it.
func (r Rule) Text() string {
	ip := "ip"
	if r.Set.V6 {
		ip = "ip6"
	}
	var s string
	switch r.Kind {
	case RuleJump:
		s = "jump " + ChainSteer
	case RuleRestore:
		s = fmt.Sprintf("ct direction original ct mark 0x%08x meta mark set 0x%08x counter name %q return",
			r.Site.Mark, r.Site.Mark, SteeredCounter(r.Site.Name))
	case RuleNew:
		s = fmt.Sprintf("ct state new %s daddr @%s meta mark set 0x%08x ct mark set 0x%08x counter name %q return",
			ip, r.Set.Name, r.Site.Mark, r.Site.Mark, SteeredCounter(r.Site.Name))
	case RuleOldPath:
		s = fmt.Sprintf("ct direction original %s daddr @%s counter name %q", ip, r.Set.Name, OldPathCounter(r.Site.Name))
	}
	return fmt.Sprintf("%s comment %q", s, r.Tag())
}

// Chain is one chain of the owned table.
type Chain struct {
	Name  string
	Base  bool
	Type  string // base chains: "filter" or "route"
	Hook  string // base chains: "prerouting" or "output"
	Rules []Rule
}

// Chains returns the chains for sites (sorted by name).
func Chains(sites []Site) []Chain {
	jump := []Rule{{Kind: RuleJump}}
	steer := Chain{Name: ChainSteer}
	for _, s := range sites {
		steer.Rules = append(steer.Rules, Rule{Kind: RuleRestore, Site: s})
		for _, kind := range []RuleKind{RuleNew, RuleOldPath} {
			for _, set := range KernelSets(s.Name) {
				steer.Rules = append(steer.Rules, Rule{Kind: kind, Site: s, Set: set})
			}
		}
	}
	return []Chain{
		{Name: chainPrerouting, Base: true, Type: "filter", Hook: "prerouting", Rules: jump},
		{Name: chainOutput, Base: true, Type: "route", Hook: "output", Rules: jump},
		steer,
	}
}

// IPRule is one fwmark ip rule.
type IPRule struct {
	V6       bool
	Mark     uint32
	Table    int
	Priority int
}

func (r IPRule) String() string {
	return fmt.Sprintf("%s rule fwmark %#x lookup %d priority %d", IPCommand(r.V6), r.Mark, r.Table, r.Priority)
}

// Route is the default route of a site's routing table.
type Route struct {
	V6    bool
	Table int
	Via   netip.Addr
}

func (r Route) String() string {
	return fmt.Sprintf("%s route default via %s table %d", IPCommand(r.V6), r.Via, r.Table)
}

// IPCommand returns the ip command of a family, as ip rules and routes are
// written: "ip" or "ip -6".
func IPCommand(v6 bool) string {
	if v6 {
		return "ip -6"
	}
	return "ip"
}

// Routing returns the ip rules and routes for sites: per site and family
// with a next-hop, "fwmark <mark> lookup <table>" at priority and a default
// route via the next-hop in that table.
func Routing(sites []Site, priority int) ([]IPRule, []Route) {
	var rules []IPRule
	var routes []Route
	for _, s := range sites {
		for _, nh := range []netip.Addr{s.NextHop4, s.NextHop6} {
			if !nh.IsValid() {
				continue
			}
			rules = append(rules, IPRule{V6: nh.Is6(), Mark: s.Mark, Table: s.Table, Priority: priority})
			routes = append(routes, Route{V6: nh.Is6(), Table: s.Table, Via: nh})
		}
	}
	return rules, routes
}
