package lab

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
)

// Node names of the lab topology.
const (
	NodeEdge = "edge" // FRR router where the hospitals' traffic enters
	NodeSKM1 = "skm1" // first datacenter's gateway; every VM reaches it at baseline
	NodeSKM2 = "skm2" // second datacenter's gateway; the cutover target
	NodeHosp = "hosp" // a client network behind the edge
	NodeCtl  = "ctl"  // where the cutover daemon runs and peers with the edge
)

// Nodes lists the lab's nodes in creation order.
var Nodes = []string{NodeEdge, NodeSKM1, NodeSKM2, NodeHosp, NodeCtl}

// Sites lists the datacenter nodes that hold the VMs.
var Sites = []string{NodeSKM1, NodeSKM2}

// BGP autonomous systems of the lab.
const (
	EdgeAS       uint32 = 65000
	ControllerAS uint32 = 65100
)

// HTTPPort is the port the site responders answer on.
const HTTPPort uint16 = 80

// Default ranges of the VM addresses; the edge's covering static routes send
// them to skm1 until the controller announces something more specific.
var (
	DefaultCovering4 = netip.MustParsePrefix("10.64.0.0/14")
	DefaultCovering6 = netip.MustParsePrefix("fd00:64::/48")
)

// DefaultVMs returns n IPv4 VM addresses counted up from 10.64.0.10, as /32s.
// Past the end of 10.64.0.0/14 they leave the default covering range, which
// Up rejects.
func DefaultVMs(n int) []netip.Prefix {
	return countUp(netip.MustParseAddr("10.64.0.10"), n)
}

// DefaultVMs6 returns n IPv6 VM addresses counted up from fd00:64::10, as
// /128s.
func DefaultVMs6(n int) []netip.Prefix {
	return countUp(netip.MustParseAddr("fd00:64::10"), n)
}

func countUp(a netip.Addr, n int) []netip.Prefix {
	out := make([]netip.Prefix, 0, max(n, 0))
	for range n {
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
		a = a.Next()
	}
	return out
}

// NextHop is a pair of addresses of one node, one per family.
type NextHop struct {
	V4 netip.Addr `json:"v4"`
	V6 netip.Addr `json:"v6"`
}

// Endpoint is one end of a link: an interface of a node with its addresses.
type Endpoint struct {
	Node  string         `json:"node"`
	Iface string         `json:"iface"`
	Addrs []netip.Prefix `json:"addrs"`
}

// String returns "node:iface", containerlab's endpoint notation.
func (e Endpoint) String() string { return e.Node + ":" + e.Iface }

// Link is a veth pair between the edge (A) and another node (B).
type Link struct {
	A Endpoint `json:"a"`
	B Endpoint `json:"b"`
}

// StaticRoute is a route a node gets at start: Dst via Via.
type StaticRoute struct {
	Dst netip.Prefix `json:"dst"`
	Via netip.Addr   `json:"via"`
}

// Topology is the lab's addressing plan (see the package documentation for
// the table). Every field is filled by Up and kept in the state file.
type Topology struct {
	Name         string `json:"name"`
	EdgeAS       uint32 `json:"edge_as"`       // 65000
	ControllerAS uint32 `json:"controller_as"` // 65100
	// EdgeRouterID is the edge's BGP router-id (its address toward ctl).
	EdgeRouterID netip.Addr `json:"edge_router_id"`
	// EdgeCtl4 and EdgeCtl6 are the edge's addresses on the ctl link: the
	// peer addresses the controller dials (the edge accepts both).
	EdgeCtl4 netip.Addr `json:"edge_ctl4"`
	EdgeCtl6 netip.Addr `json:"edge_ctl6"`
	// Ctl4 and Ctl6 are the controller's own addresses in ctl; Ctl4 is its
	// router-id. The edge peers with both.
	Ctl4 netip.Addr `json:"ctl4"`
	Ctl6 netip.Addr `json:"ctl6"`
	// SiteNextHop maps a site ("skm1", "skm2") to its gateway addresses: the
	// next-hop to announce to send a VM's traffic there.
	SiteNextHop map[string]NextHop `json:"site_next_hop"`
	// BaselineSite is where the covering routes send every VM ("skm1").
	BaselineSite string `json:"baseline_site"`
	// HospAddr and HospAddr6 are the client's addresses in hosp.
	HospAddr  netip.Addr `json:"hosp_addr"`
	HospAddr6 netip.Addr `json:"hosp_addr6"`
	// VMs are the VM addresses (/32 or /128), present at both sites.
	VMs []netip.Prefix `json:"vms"`
	// Covering are the ranges the edge routes to BaselineSite statically;
	// every VM is inside one, and the edge accepts from and mirrors to the
	// controller only prefixes inside them.
	Covering []netip.Prefix `json:"covering"`
	// Links are the veth pairs, edge side first.
	Links []Link `json:"links"`
	// Routes are each node's static routes (default routes toward the edge).
	Routes map[string][]StaticRoute `json:"routes"`
}

// Link returns the link between the edge and node.
func (t Topology) Link(node string) (Link, bool) {
	for _, l := range t.Links {
		if l.B.Node == node {
			return l, true
		}
	}
	return Link{}, false
}

var (
	v4Default = netip.MustParsePrefix("0.0.0.0/0")
	v6Default = netip.MustParsePrefix("::/0")
)

// linkPlan is the fixed part of the addressing plan: the edge's side of
// each link, the other side, and which node it goes to.
var linkPlan = []struct {
	node          string
	edge4, other4 string
	edge6, other6 string
	defaultToEdge bool
}{
	{NodeCtl, "10.255.0.1/30", "10.255.0.2/30", "fd00:255::1/64", "fd00:255::2/64", true},
	{NodeSKM1, "10.255.1.1/30", "10.255.1.2/30", "fd00:255:1::1/64", "fd00:255:1::2/64", true},
	{NodeSKM2, "10.255.2.1/30", "10.255.2.2/30", "fd00:255:2::1/64", "fd00:255:2::2/64", true},
	{NodeHosp, "10.255.3.1/24", "10.255.3.2/24", "fd00:255:3::1/64", "fd00:255:3::2/64", true},
}

// edgeIface is the edge's interface toward node: named after the node, so
// that `ip -n cutover-lab-edge route` reads "via 10.255.2.2 dev skm2".
func edgeIface(node string) string { return node }

// peerIface is every other node's interface toward the edge.
const peerIface = "edge"

// newTopology builds the topology for a validated config.
func newTopology(cfg Config) Topology {
	t := Topology{
		Name:         cfg.Name,
		EdgeAS:       EdgeAS,
		ControllerAS: ControllerAS,
		SiteNextHop:  map[string]NextHop{},
		BaselineSite: NodeSKM1,
		VMs:          cfg.VMs,
		Covering:     cfg.Covering,
		Routes:       map[string][]StaticRoute{},
	}
	for _, p := range linkPlan {
		e4, o4 := netip.MustParsePrefix(p.edge4), netip.MustParsePrefix(p.other4)
		e6, o6 := netip.MustParsePrefix(p.edge6), netip.MustParsePrefix(p.other6)
		t.Links = append(t.Links, Link{
			A: Endpoint{Node: NodeEdge, Iface: edgeIface(p.node), Addrs: []netip.Prefix{e4, e6}},
			B: Endpoint{Node: p.node, Iface: peerIface, Addrs: []netip.Prefix{o4, o6}},
		})
		if p.defaultToEdge {
			t.Routes[p.node] = []StaticRoute{{Dst: v4Default, Via: e4.Addr()}, {Dst: v6Default, Via: e6.Addr()}}
		}
		switch p.node {
		case NodeCtl:
			t.EdgeCtl4, t.EdgeCtl6 = e4.Addr(), e6.Addr()
			t.EdgeRouterID = e4.Addr()
			t.Ctl4, t.Ctl6 = o4.Addr(), o6.Addr()
		case NodeSKM1, NodeSKM2:
			t.SiteNextHop[p.node] = NextHop{V4: o4.Addr(), V6: o6.Addr()}
		case NodeHosp:
			t.HospAddr, t.HospAddr6 = o4.Addr(), o6.Addr()
		}
	}
	return t
}

// infraPrefixes are the link subnets; VM ranges must not overlap them.
func infraPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, p := range linkPlan {
		for _, s := range []string{p.edge4, p.edge6} {
			out = append(out, netip.MustParsePrefix(s).Masked())
		}
	}
	return out
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,30}$`)

// validate fills defaults and checks cfg; every problem is reported.
func (cfg *Config) validate() error {
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	if err := checkName(cfg.Name); err != nil {
		return err
	}
	if cfg.Dir == "" {
		cfg.Dir = DefaultDir(cfg.Name)
	}
	if len(cfg.Covering) == 0 {
		cfg.Covering = []netip.Prefix{DefaultCovering4, DefaultCovering6}
	}
	if cfg.VMs == nil {
		cfg.VMs = DefaultVMs(2000)
	}
	if cfg.FRRDir == "" {
		cfg.FRRDir = DefaultFRRDir
	}
	var errs []error
	for i, c := range cfg.Covering {
		switch {
		case !c.IsValid():
			errs = append(errs, fmt.Errorf("covering range %d: invalid prefix", i))
			continue
		case c != c.Masked():
			errs = append(errs, fmt.Errorf("covering range %s: host bits set (want %s)", c, c.Masked()))
		case c.Bits() == 0:
			errs = append(errs, fmt.Errorf("covering range %s: a default route cannot be a VM range", c))
		}
		for _, in := range infraPrefixes() {
			if c.Overlaps(in) {
				errs = append(errs, fmt.Errorf("covering range %s overlaps the lab's link subnet %s", c, in))
			}
		}
		for _, o := range cfg.Covering[:i] {
			if o.IsValid() && c.Overlaps(o) {
				errs = append(errs, fmt.Errorf("covering ranges %s and %s overlap", o, c))
			}
		}
	}
	seen := make(map[netip.Prefix]bool, len(cfg.VMs))
	const maxListed = 5
	listed := 0
	report := func(err error) {
		if listed < maxListed {
			errs = append(errs, err)
		}
		listed++
	}
	for _, vm := range cfg.VMs {
		switch {
		case !vm.IsValid():
			report(fmt.Errorf("VM %s: invalid prefix", vm))
			continue
		case vm.Bits() != vm.Addr().BitLen():
			report(fmt.Errorf("VM %s: want a host address (/32 or /128)", vm))
			continue
		case vm.Addr().Is4In6():
			report(fmt.Errorf("VM %s: IPv4-mapped IPv6 address, write it as IPv4", vm))
			continue
		case seen[vm]:
			report(fmt.Errorf("VM %s: listed twice", vm))
			continue
		}
		seen[vm] = true
		if !slices.ContainsFunc(cfg.Covering, func(c netip.Prefix) bool { return c.IsValid() && c.Contains(vm.Addr()) }) {
			report(fmt.Errorf("VM %s is outside the covering ranges %v", vm, cfg.Covering))
		}
	}
	if listed > maxListed {
		errs = append(errs, fmt.Errorf("%d more VM errors", listed-maxListed))
	}
	return joinErrs("lab config", errs)
}

func checkName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("lab name %q: want 1-31 characters of a-z, 0-9, '-' and '_', starting with a letter or digit", name)
	}
	return nil
}

// NewTopology checks cfg and returns the lab it describes: what `lab up`
// builds and `lab export` writes.
func NewTopology(cfg Config) (Topology, error) {
	if err := cfg.validate(); err != nil {
		return Topology{}, err
	}
	return newTopology(cfg), nil
}

// FRRConf is the edge router's configuration as one integrated frr.conf.
func (t Topology) FRRConf() string { return renderFRRConf(t) }

// Sysctls returns the sysctls the lab sets on a node.
func Sysctls(node string) [][2]string { return sysctls(node) }

// VMList is the lab's VM addresses, one a line: the responders' list.
func (t Topology) VMList() string {
	var b strings.Builder
	for _, vm := range t.VMs {
		b.WriteString(vm.String())
		b.WriteByte('\n')
	}
	return b.String()
}
