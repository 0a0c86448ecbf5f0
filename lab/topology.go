package lab

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Node names of the default lab topology. A lab built from a runbook names
// its sites after the runbook's sites and its edges edge, edge2, edge3...
const (
	NodeEdge = "edge" // the first edge router, where the clients' traffic enters
	NodeSKM1 = "skm1" // the default lab's first site; every VM reaches it at baseline
	NodeSKM2 = "skm2" // the default lab's second site; the cutover target
	NodeHosp = "hosp" // the client network behind the edges
	NodeCtl  = "ctl"  // where the cutover daemon runs and peers with the edges
)

// Sites lists the default lab's sites.
var Sites = []string{NodeSKM1, NodeSKM2}

// BGP autonomous systems of the default lab.
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

// NextHop is a pair of addresses of one node, one per family; either may
// be the zero Addr.
type NextHop struct {
	V4 netip.Addr `json:"v4"`
	V6 netip.Addr `json:"v6"`
}

// For returns the address of a's family.
func (n NextHop) For(a netip.Addr) netip.Addr {
	if a.Is4() {
		return n.V4
	}
	return n.V6
}

// Shape is what a lab is built of: its sites with their gateways'
// addresses, its edge routers as the controller peers with them, and the
// site the network's own (covering) routes lead to. DefaultShape is the
// built-in lab; ShapeOf derives one from a runbook. Every other address
// (the links to the client network, a second family where the runbook
// gives one) the lab chooses itself, around the ones given here.
type Shape struct {
	ControllerAS uint32
	// ControllerID is the controller's BGP router-id (informational: the
	// lab puts no address on it).
	ControllerID netip.Addr
	Sites        []SiteSpec
	Edges        []EdgeSpec
	// Fallback names the site the edges' covering routes lead to.
	Fallback string
	// BMP is where the controller's BMP station listens (bgp.bmp.listen of
	// a runbook with a peer that observes by BMP); invalid: none. The
	// edges that can report to it: at their session's controller address
	// when its address is unspecified, else at that address, which must
	// be one of the controller's in ctl.
	BMP netip.AddrPort
	// MaxPrefixes is the edges' prefix limit toward the controller (the
	// runbooks' max_prefixes); 0: DefaultMaxPrefixes.
	MaxPrefixes int
}

// DefaultMaxPrefixes is the edges' prefix limit in a lab no runbook
// shapes: more than any bench announces.
const DefaultMaxPrefixes = 500_000

// SiteSpec is a site: its name and its gateway's addresses, the next-hops
// announced to send a VM's traffic there.
type SiteSpec struct {
	Name    string
	NextHop NextHop
}

// EdgeSpec is an edge router as the controller sees it.
type EdgeSpec struct {
	// Addrs are the edge's addresses the controller dials, at most one per
	// family (the default lab's edge has both; a runbook's peer one).
	Addrs []netip.Addr
	AS    uint32
	Port  uint16 // 0: 179
	// HoldTime and Keepalive of the edge's session; 0: the lab's 9 s / 3 s.
	HoldTime, Keepalive time.Duration
	Password            string // TCP MD5; "" none
	Description         string
}

// DefaultShape is the built-in lab: sites skm1 and skm2, one edge in AS
// 65000 that the controller (AS 65100) reaches over IPv4 and IPv6, and the
// covering routes leading to skm1.
func DefaultShape() Shape {
	a := netip.MustParseAddr
	return Shape{
		ControllerAS: ControllerAS,
		ControllerID: a("10.255.0.2"),
		Sites: []SiteSpec{
			{Name: NodeSKM1, NextHop: NextHop{V4: a("10.255.1.2"), V6: a("fd00:255:1::2")}},
			{Name: NodeSKM2, NextHop: NextHop{V4: a("10.255.2.2"), V6: a("fd00:255:2::2")}},
		},
		Edges:    []EdgeSpec{{Addrs: []netip.Addr{a("10.255.0.1"), a("fd00:255::1")}, AS: EdgeAS}},
		Fallback: NodeSKM1,
	}
}

// Endpoint is one end of a link: an interface of a node with its addresses.
// An interface enslaved to a bridge has its addresses on the bridge.
type Endpoint struct {
	Node  string         `json:"node"`
	Iface string         `json:"iface"`
	Addrs []netip.Prefix `json:"addrs,omitempty"`
	// Peers, when set, are aligned with Addrs: a valid one makes its
	// address point-to-point (a /32 or /128 with the other end's address
	// as its peer), which the lab uses where the shape's addresses are too
	// close together for a subnet each (a transit network that holds the
	// edge and the gateways, say).
	Peers  []netip.Addr `json:"peers,omitempty"`
	Bridge string       `json:"bridge,omitempty"`
}

// Peer returns the point-to-point peer of Addrs[i], or the zero Addr.
func (e Endpoint) Peer(i int) netip.Addr {
	if i < len(e.Peers) {
		return e.Peers[i]
	}
	return netip.Addr{}
}

// addP2P adds a point-to-point address a with peer to e.
func (e *Endpoint) addP2P(a, peer netip.Addr) {
	for len(e.Peers) < len(e.Addrs) {
		e.Peers = append(e.Peers, netip.Addr{})
	}
	e.Addrs = append(e.Addrs, netip.PrefixFrom(a, a.BitLen()))
	e.Peers = append(e.Peers, peer)
}

// String returns "node:iface", containerlab's endpoint notation.
func (e Endpoint) String() string { return e.Node + ":" + e.Iface }

// Link is a veth pair between an edge (A) and another node (B).
type Link struct {
	A Endpoint `json:"a"`
	B Endpoint `json:"b"`
}

// Bridge is a Linux bridge in a site's gateway: with two or more edges the
// site's gateway address sits on one segment shared by every edge, as a
// datacenter's gateway does.
type Bridge struct {
	Node  string         `json:"node"`
	Name  string         `json:"name"`
	Addrs []netip.Prefix `json:"addrs"`
}

// StaticRoute is a route a node gets at start: Dst via Via.
type StaticRoute struct {
	Dst netip.Prefix `json:"dst"`
	Via netip.Addr   `json:"via"`
	// Dev, when set, is the interface Via is on, and the route is
	// "onlink": a point-to-point peer needs no subnet route first.
	Dev string `json:"dev,omitempty"`
}

// Site is a site of the lab: the runbook's name, the node (namespace) of
// its gateway, and the gateway's addresses.
type Site struct {
	Name    string  `json:"name"`
	Node    string  `json:"node"`
	NextHop NextHop `json:"next_hop"`
}

// Edge is an edge router of the lab in its own namespace: FRR, BIRD or
// gobgpd (Flavor).
type Edge struct {
	Node string `json:"node"`
	// Flavor is the router the edge runs: FlavorFRR, FlavorBIRD or
	// FlavorGoBGP; "" in a state file of an older lab means FRR.
	Flavor   string     `json:"flavor,omitempty"`
	AS       uint32     `json:"as"`
	RouterID netip.Addr `json:"router_id"`
	// Sessions are the BGP sessions toward the controller: the edge's
	// address the controller dials and the controller's address on that
	// link, one per family the runbook (or the default lab) peers over.
	Sessions    []Session `json:"sessions"`
	Port        uint16    `json:"port,omitempty"`
	HoldTime    int       `json:"hold_time"` // seconds
	Keepalive   int       `json:"keepalive"` // seconds
	Description string    `json:"description,omitempty"`
	// Password is the TCP MD5 password; not kept in the state file (the
	// rendered configs, readable by frr only, hold it).
	Password string `json:"-"`
	// BMP is the BMP station the edge reports to (the controller's, in
	// ctl); invalid: none (no runbook of the lab observes by BMP, or the
	// flavour has no BMP).
	BMP netip.AddrPort `json:"bmp,omitempty"`
}

// FlavorOf is the edge's router, FRR when the state file predates
// flavours.
func (e Edge) FlavorOf() string {
	if e.Flavor == "" {
		return FlavorFRR
	}
	return e.Flavor
}

// Session is one BGP session between an edge and the controller.
type Session struct {
	Edge netip.Addr `json:"edge"`
	Ctl  netip.Addr `json:"ctl"`
}

// Topology is the lab's addressing plan (see the package documentation for
// the default one). Every field is filled by Up and kept in the state file.
type Topology struct {
	Name         string `json:"name"`
	EdgeAS       uint32 `json:"edge_as"`       // the first edge's AS
	ControllerAS uint32 `json:"controller_as"` // 65100 in the default lab
	// EdgeRouterID is the first edge's BGP router-id (its IPv4 address
	// toward ctl).
	EdgeRouterID netip.Addr `json:"edge_router_id"`
	// EdgeCtl4 and EdgeCtl6 are the first edge's addresses on its ctl link
	// that the controller peers with (zero when it does not over a family).
	EdgeCtl4 netip.Addr `json:"edge_ctl4"`
	EdgeCtl6 netip.Addr `json:"edge_ctl6"`
	// Ctl4 and Ctl6 are the controller's addresses on the first edge's
	// link; the routes out of ctl go through it.
	Ctl4 netip.Addr `json:"ctl4"`
	Ctl6 netip.Addr `json:"ctl6"`
	// SiteNextHop maps a site's node to its gateway addresses: the
	// next-hop to announce to send a VM's traffic there.
	SiteNextHop map[string]NextHop `json:"site_next_hop"`
	// BaselineSite is the node of the site the covering routes lead to
	// (the runbook's fallback).
	BaselineSite string `json:"baseline_site"`
	// HospAddr and HospAddr6 are the client's addresses toward the first
	// edge.
	HospAddr  netip.Addr `json:"hosp_addr"`
	HospAddr6 netip.Addr `json:"hosp_addr6"`
	// VMs are the VM prefixes, present at every site: host addresses on lo
	// (or veths), subnets made local as a whole.
	VMs []netip.Prefix `json:"vms"`
	// Covering are the ranges the edges route to BaselineSite statically;
	// every VM is inside one, and the edges accept from and mirror to the
	// controller only prefixes inside them.
	Covering []netip.Prefix `json:"covering"`
	// Sites and Edges in the order of the shape; Edges[0] is NodeEdge.
	Sites []Site `json:"sites"`
	Edges []Edge `json:"edges"`
	// Links are the veth pairs, edge side first.
	Links   []Link   `json:"links"`
	Bridges []Bridge `json:"bridges,omitempty"`
	// Routes are each node's static routes (default routes toward the
	// first edge).
	Routes map[string][]StaticRoute `json:"routes"`
	// MaxPrefixes is the edges' prefix limit toward the controller, per
	// address family: the runbooks' max_prefixes, else generous.
	MaxPrefixes int `json:"max_prefixes"`
	// BMP is where the controller's BMP station listens (the runbooks'
	// bgp.bmp.listen); invalid: no runbook observes by BMP.
	BMP netip.AddrPort `json:"bmp,omitempty"`
}

// Edge returns the edge router at node.
func (t Topology) Edge(node string) (Edge, bool) {
	for _, e := range t.Edges {
		if e.Node == node {
			return e, true
		}
	}
	return Edge{}, false
}

// Link returns the link between the first edge and node.
func (t Topology) Link(node string) (Link, bool) { return t.LinkOf(NodeEdge, node) }

// LinkOf returns the link between edge and node.
func (t Topology) LinkOf(edge, node string) (Link, bool) {
	for _, l := range t.Links {
		if l.A.Node == edge && l.B.Node == node {
			return l, true
		}
	}
	return Link{}, false
}

// Nodes lists the lab's nodes in creation order: edges, sites, hosp, ctl.
func (t Topology) Nodes() []string {
	out := t.EdgeNodes()
	out = append(out, t.SiteNodes()...)
	return append(out, NodeHosp, NodeCtl)
}

// EdgeNodes lists the edges' nodes, the first one NodeEdge.
func (t Topology) EdgeNodes() []string {
	var out []string
	for _, e := range t.Edges {
		out = append(out, e.Node)
	}
	return out
}

// SiteNodes lists the sites' nodes in the shape's order.
func (t Topology) SiteNodes() []string {
	var out []string
	for _, s := range t.Sites {
		out = append(out, s.Node)
	}
	return out
}

// SiteNode returns the node of the site called name (a runbook's site name).
func (t Topology) SiteNode(name string) (string, bool) {
	for _, s := range t.Sites {
		if s.Name == name {
			return s.Node, true
		}
	}
	return "", false
}

// SiteName returns the runbook's name of the site at node.
func (t Topology) SiteName(node string) string {
	for _, s := range t.Sites {
		if s.Node == node {
			return s.Name
		}
	}
	return node
}

// IsEdge reports whether node is one of the edges.
func (t Topology) IsEdge(node string) bool { return slices.Contains(t.EdgeNodes(), node) }

// edgeNode names the i-th edge: edge, edge2, edge3...
func edgeNode(i int) string {
	if i == 0 {
		return NodeEdge
	}
	return NodeEdge + strconv.Itoa(i+1)
}

var (
	v4Default  = netip.MustParsePrefix("0.0.0.0/0")
	v6Default  = netip.MustParsePrefix("::/0")
	nodeNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_]{0,14}$`)
	// host and macvlan mean something else in containerlab's endpoints
	reservedRE  = regexp.MustCompile(`^(edge[0-9]*|hosp|ctl|host|macvlan)$`)
	maxEdges    = 8
	maxSites    = 16
	lanPrefix4  = 24 // the client's links
	lanPrefix6  = 64
	linkPrefix4 = 30 // preferred for a site's or the controller's link
	linkPrefix6 = 64
)

// siteNode is the node of the i-th site called name: the name itself when
// it makes an interface name (at most 15 characters) and is no other
// node's name, else site1, site2...
func siteNode(i int, name string) string {
	if nodeNameRE.MatchString(name) && !reservedRE.MatchString(name) {
		return name
	}
	return "site" + strconv.Itoa(i+1)
}

// validateShape checks a shape before any address is chosen.
func validateShape(s Shape) error {
	var errs []error
	if s.ControllerAS == 0 {
		errs = append(errs, fmt.Errorf("controller AS missing"))
	}
	switch n := len(s.Sites); {
	case n < 2:
		errs = append(errs, fmt.Errorf("%d sites: a lab needs at least two", n))
	case n > maxSites:
		errs = append(errs, fmt.Errorf("%d sites: the lab builds at most %d", n, maxSites))
	}
	switch n := len(s.Edges); {
	case n == 0:
		errs = append(errs, fmt.Errorf("no edge router: the controller needs a peer"))
	case n > maxEdges:
		errs = append(errs, fmt.Errorf("%d edge routers: the lab builds at most %d", n, maxEdges))
	}
	names := map[string]bool{}
	for _, st := range s.Sites {
		if names[st.Name] {
			errs = append(errs, fmt.Errorf("site %s listed twice", st.Name))
		}
		names[st.Name] = true
		if !st.NextHop.V4.IsValid() && !st.NextHop.V6.IsValid() {
			errs = append(errs, fmt.Errorf("site %s has no next-hop", st.Name))
		}
		for _, a := range []netip.Addr{st.NextHop.V4, st.NextHop.V6} {
			if a.IsValid() && !usable(a) {
				errs = append(errs, fmt.Errorf("site %s next-hop %s: the lab needs a unicast, global or private address", st.Name, a))
			}
		}
	}
	owner := map[netip.Addr]string{}
	claim := func(a netip.Addr, who string) {
		if prev, ok := owner[a]; ok {
			errs = append(errs, fmt.Errorf("address %s is %s and %s: one address, one router", a, prev, who))
		}
		owner[a] = who
	}
	for _, st := range s.Sites {
		for _, a := range []netip.Addr{st.NextHop.V4, st.NextHop.V6} {
			if a.IsValid() {
				claim(a, "site "+st.Name+"'s next-hop")
			}
		}
	}
	for i, e := range s.Edges {
		for _, a := range e.Addrs {
			claim(a, fmt.Sprintf("edge %d's address", i+1))
		}
	}
	if !names[s.Fallback] {
		errs = append(errs, fmt.Errorf("fallback %q: not a site of the lab", s.Fallback))
	}
	for i, e := range s.Edges {
		if len(e.Addrs) == 0 {
			errs = append(errs, fmt.Errorf("edge %d has no address", i+1))
		}
		fam := map[bool]bool{}
		for _, a := range e.Addrs {
			if fam[a.Is4()] {
				errs = append(errs, fmt.Errorf("edge %d: two addresses of one family (%v): the lab builds one edge router per peer address", i+1, e.Addrs))
			}
			fam[a.Is4()] = true
			if !usable(a) {
				errs = append(errs, fmt.Errorf("edge %s: the lab needs a unicast, global or private address (no link-local, no zone)", a))
			}
		}
		if e.AS == 0 {
			errs = append(errs, fmt.Errorf("edge %v: AS missing", e.Addrs))
		}
	}
	return joinErrs("lab shape", errs)
}

func usable(a netip.Addr) bool {
	return a.IsValid() && a.Zone() == "" && !a.Is4In6() && !a.IsUnspecified() && !a.IsLoopback() &&
		!a.IsMulticast() && !a.IsLinkLocalUnicast() && !a.IsInterfaceLocalMulticast()
}

// newTopology builds the topology for a validated config: it places the
// shape's fixed addresses, chooses a subnet around each that holds the
// nodes on its link, and takes the rest from the lab's own ranges, never
// overlapping an address or range of the shape and the VMs.
func newTopology(cfg Config) (Topology, error) {
	sh := *cfg.Shape
	t := Topology{
		Name:         cfg.Name,
		ControllerAS: sh.ControllerAS,
		SiteNextHop:  map[string]NextHop{},
		VMs:          cfg.VMs,
		Covering:     cfg.Covering,
		Routes:       map[string][]StaticRoute{},
		MaxPrefixes:  sh.MaxPrefixes,
		BMP:          sh.BMP,
	}
	if t.MaxPrefixes == 0 {
		// No runbook says: the built-in lab also serves cutover bench
		// bgp, which announces up to 200,000 prefixes.
		t.MaxPrefixes = DefaultMaxPrefixes
	}
	al := newAllocator(sh, cfg.Covering, cfg.VMs)
	for i, s := range sh.Sites {
		node := siteNode(i, s.Name)
		t.Sites = append(t.Sites, Site{Name: s.Name, Node: node, NextHop: s.NextHop})
		t.SiteNextHop[node] = s.NextHop
		if s.Name == sh.Fallback {
			t.BaselineSite = node
		}
	}
	for i, e := range sh.Edges {
		edge := Edge{Node: edgeNode(i), Flavor: cfg.EdgeFlavors[i], AS: e.AS, Port: e.Port, Description: e.Description,
			Password: e.Password, HoldTime: ctlHold, Keepalive: ctlKeepalive}
		if e.HoldTime > 0 || e.Keepalive > 0 {
			edge.HoldTime, edge.Keepalive = int(e.HoldTime/time.Second), int(e.Keepalive/time.Second)
			if edge.Keepalive == 0 {
				edge.Keepalive = edge.HoldTime / 3
			}
		}
		t.Edges = append(t.Edges, edge)
	}
	nEdges := len(sh.Edges)
	// Sites: the gateway's address with every edge on its subnet, or
	// point-to-point links where no subnet fits.
	for _, s := range t.Sites {
		var gw []netip.Prefix
		edgeAddrs := make([][]netip.Prefix, nEdges)
		var fits []bool
		mark := al.mark()
		for _, a := range []netip.Addr{s.NextHop.V4, s.NextHop.V6} {
			if !a.IsValid() {
				continue
			}
			sub, hosts, err := al.around(a, nEdges)
			fits = append(fits, err == nil)
			if err != nil {
				continue
			}
			gw = append(gw, netip.PrefixFrom(a, sub.Bits()))
			for k := range nEdges {
				edgeAddrs[k] = append(edgeAddrs[k], netip.PrefixFrom(hosts[k], sub.Bits()))
			}
		}
		if slices.Contains(fits, false) {
			al.reset(mark) // one family point-to-point: both, and no bridge
			if err := t.p2pSite(al, s); err != nil {
				return Topology{}, err
			}
			continue
		}
		for k, e := range t.Edges {
			b := Endpoint{Node: s.Node, Iface: e.Node, Addrs: gw}
			if nEdges > 1 {
				b = Endpoint{Node: s.Node, Iface: e.Node, Bridge: siteBridge}
			}
			t.Links = append(t.Links, Link{A: Endpoint{Node: e.Node, Iface: s.Node, Addrs: edgeAddrs[k]}, B: b})
		}
		if nEdges > 1 {
			t.Bridges = append(t.Bridges, Bridge{Node: s.Node, Name: siteBridge, Addrs: gw})
		}
	}
	// The controller's links: the edge's given address, the controller on
	// the same subnet.
	ctlLinks := make([]Link, nEdges)
	for k, e := range sh.Edges {
		ln := Link{A: Endpoint{Node: t.Edges[k].Node, Iface: NodeCtl}, B: Endpoint{Node: NodeCtl, Iface: t.Edges[k].Node}}
		for _, a := range e.Addrs {
			sub, hosts, err := al.around(a, 1)
			if err != nil {
				c, err := al.p2pAddr(a.Is6())
				if err != nil {
					return Topology{}, fmt.Errorf("edge %s: %w", a, err)
				}
				ln.A.addP2P(a, c)
				ln.B.addP2P(c, a)
				t.Edges[k].Sessions = append(t.Edges[k].Sessions, Session{Edge: a, Ctl: c})
				continue
			}
			ln.A.Addrs = append(ln.A.Addrs, netip.PrefixFrom(a, sub.Bits()))
			ln.B.Addrs = append(ln.B.Addrs, netip.PrefixFrom(hosts[0], sub.Bits()))
			t.Edges[k].Sessions = append(t.Edges[k].Sessions, Session{Edge: a, Ctl: hosts[0]})
		}
		ctlLinks[k] = ln
	}
	// The client's links: from the lab's own ranges.
	for _, e := range t.Edges {
		ln := Link{A: Endpoint{Node: e.Node, Iface: NodeHosp}, B: Endpoint{Node: NodeHosp, Iface: e.Node}}
		for _, v6 := range []bool{false, true} {
			sub, err := al.internal(v6, map[bool]int{false: lanPrefix4, true: lanPrefix6}[v6])
			if err != nil {
				return Topology{}, err
			}
			ln.A.Addrs = append(ln.A.Addrs, netip.PrefixFrom(sub.Addr().Next(), sub.Bits()))
			ln.B.Addrs = append(ln.B.Addrs, netip.PrefixFrom(sub.Addr().Next().Next(), sub.Bits()))
		}
		t.Links = append(t.Links, ln)
	}
	// A family the controller does not peer over still gets addresses, so
	// that ctl routes both families and every edge has an IPv4 router-id.
	for k := range ctlLinks {
		ln := &ctlLinks[k]
		for _, v6 := range []bool{false, true} {
			if slices.ContainsFunc(ln.A.Addrs, func(p netip.Prefix) bool { return p.Addr().Is6() == v6 }) {
				continue
			}
			sub, err := al.internal(v6, map[bool]int{false: linkPrefix4, true: linkPrefix6}[v6])
			if err != nil {
				return Topology{}, err
			}
			ln.A.Addrs = append(ln.A.Addrs, netip.PrefixFrom(sub.Addr().Next(), sub.Bits()))
			ln.B.Addrs = append(ln.B.Addrs, netip.PrefixFrom(sub.Addr().Next().Next(), sub.Bits()))
		}
		ln.A.sortFamilies()
		ln.B.sortFamilies()
		for _, p := range ln.A.Addrs {
			if p.Addr().Is4() {
				t.Edges[k].RouterID = p.Addr()
				break
			}
		}
	}
	// The controller's link comes first, as in the default lab's plan.
	t.Links = append(ctlLinks, t.Links...)

	first := t.Edges[0]
	t.EdgeAS, t.EdgeRouterID = first.AS, first.RouterID
	for _, s := range first.Sessions {
		if s.Edge.Is4() {
			t.EdgeCtl4 = s.Edge
		} else {
			t.EdgeCtl6 = s.Edge
		}
	}
	t.Ctl4, t.Ctl6, t.Routes[NodeCtl] = towardEdge(ctlLinks[0])
	hosp, _ := t.LinkOf(NodeEdge, NodeHosp)
	t.HospAddr, t.HospAddr6, t.Routes[NodeHosp] = towardEdge(hosp)
	for _, s := range t.Sites {
		ln, _ := t.LinkOf(NodeEdge, s.Node)
		for _, p := range ln.A.Addrs {
			t.Routes[s.Node] = append(t.Routes[s.Node], defaultVia(p.Addr(), siteIface(ln)))
		}
	}
	for _, c := range t.Covering {
		if !t.SiteNextHop[t.BaselineSite].For(c.Addr()).IsValid() {
			return Topology{}, fmt.Errorf("covering range %s: the fallback site %s has no %s next-hop to route it to",
				c, t.SiteName(t.BaselineSite), family(c.Addr()))
		}
	}
	if err := t.placeBMP(); err != nil {
		return Topology{}, err
	}
	return t, nil
}

// p2pSite links every edge to site s point to point: the gateway's
// next-hops as /32 and /128 on each link, each edge with an address of the
// lab's own as their peer.
func (t *Topology) p2pSite(al *allocator, s Site) error {
	for _, e := range t.Edges {
		ln := Link{A: Endpoint{Node: e.Node, Iface: s.Node}, B: Endpoint{Node: s.Node, Iface: e.Node}}
		for _, gw := range []netip.Addr{s.NextHop.V4, s.NextHop.V6} {
			if !gw.IsValid() {
				continue
			}
			a, err := al.p2pAddr(gw.Is6())
			if err != nil {
				return fmt.Errorf("site %s: %w", s.Name, err)
			}
			ln.A.addP2P(a, gw)
			ln.B.addP2P(gw, a)
		}
		t.Links = append(t.Links, ln)
	}
	return nil
}

// towardEdge returns the other node's addresses on a link to the first
// edge, and its default routes through it.
func towardEdge(ln Link) (v4, v6 netip.Addr, routes []StaticRoute) {
	for i, p := range ln.B.Addrs {
		if p.Addr().Is4() {
			v4 = p.Addr()
		} else {
			v6 = p.Addr()
		}
		routes = append(routes, defaultVia(ln.A.Addrs[i].Addr(), ln.B.Iface))
	}
	return v4, v6, routes
}

// siteBridge is the bridge of a site's gateway with two or more edges.
const siteBridge = "edges"

func defaultVia(via netip.Addr, dev string) StaticRoute {
	if via.Is4() {
		return StaticRoute{Dst: v4Default, Via: via, Dev: dev}
	}
	return StaticRoute{Dst: v6Default, Via: via, Dev: dev}
}

// siteIface is the site's interface toward the first edge: the bridge
// when the link is enslaved to one.
func siteIface(ln Link) string {
	if ln.B.Bridge != "" {
		return ln.B.Bridge
	}
	return ln.B.Iface
}

// sortFamilies puts e's IPv4 addresses (with their peers) first.
func (e *Endpoint) sortFamilies() {
	type addr struct {
		p    netip.Prefix
		peer netip.Addr
	}
	as := make([]addr, len(e.Addrs))
	for i, p := range e.Addrs {
		as[i] = addr{p, e.Peer(i)}
	}
	slices.SortStableFunc(as, func(a, b addr) int {
		switch {
		case a.p.Addr().Is4() == b.p.Addr().Is4():
			return 0
		case a.p.Addr().Is4():
			return -1
		}
		return 1
	})
	p2p := false
	for i, a := range as {
		e.Addrs[i] = a.p
		p2p = p2p || a.peer.IsValid()
	}
	e.Peers = nil
	if p2p {
		for _, a := range as {
			e.Peers = append(e.Peers, a.peer)
		}
	}
}

func family(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// allocator places subnets: around the shape's fixed addresses, and from
// the lab's own ranges, so that no two overlap and none holds an address
// it must not. A subnet around a fixed address may lie inside a VM range
// (a network that numbers its routers and VMs from one 10/8, say: the
// link is more specific than the covering route) as long as it holds no
// VM; the lab's own subnets stay out of the VM ranges altogether.
type allocator struct {
	fixed    []netip.Addr   // the shape's addresses: each belongs to one subnet only
	vms      []netip.Addr   // the VMs' host addresses, sorted
	vmNets   []netip.Prefix // the VMs that are subnets
	covering []netip.Prefix // the VM ranges
	placed   []netip.Prefix // subnets already placed
	next     map[bool]int   // the next candidate of the lab's own ranges, per family
}

func newAllocator(sh Shape, covering, vms []netip.Prefix) *allocator {
	al := &allocator{fixed: shapeAddrs(sh), covering: covering, next: map[bool]int{}}
	for _, vm := range vms {
		if vm.IsSingleIP() {
			al.vms = append(al.vms, vm.Addr())
		} else {
			al.vmNets = append(al.vmNets, vm)
		}
	}
	slices.SortFunc(al.vms, netip.Addr.Compare)
	return al
}

// free reports whether sub may be placed: own is the fixed address it is
// placed around (the zero Addr for the lab's own subnets).
func (al *allocator) free(sub netip.Prefix, own netip.Addr) bool {
	for _, a := range al.fixed {
		if a != own && sub.Contains(a) {
			return false
		}
	}
	for _, p := range al.placed {
		if p.Overlaps(sub) {
			return false
		}
	}
	if i, _ := slices.BinarySearchFunc(al.vms, sub.Addr(), netip.Addr.Compare); i < len(al.vms) && sub.Contains(al.vms[i]) {
		return false
	}
	for _, n := range al.vmNets {
		if n.Overlaps(sub) {
			return false
		}
	}
	if !own.IsValid() {
		for _, c := range al.covering {
			if c.Overlaps(sub) {
				return false
			}
		}
	}
	return true
}

// mark and reset undo the subnets placed since mark.
func (al *allocator) mark() int      { return len(al.placed) }
func (al *allocator) reset(mark int) { al.placed = al.placed[:mark] }

// p2pAddr is an address of the lab's own for one end of a point-to-point
// link.
func (al *allocator) p2pAddr(v6 bool) (netip.Addr, error) {
	sub, err := al.internal(v6, map[bool]int{false: linkPrefix4, true: linkPrefix6}[v6])
	if err != nil {
		return netip.Addr{}, err
	}
	return sub.Addr().Next(), nil
}

// around places the smallest usual subnet around a that holds a and n more
// hosts and returns it with those n hosts.
func (al *allocator) around(a netip.Addr, n int) (netip.Prefix, []netip.Addr, error) {
	var tried []string
	for _, bits := range candidateBits(a.Is4(), n+1) {
		sub := netip.PrefixFrom(a, bits).Masked()
		hosts := hostsOf(sub, a, n)
		if len(hosts) < n {
			continue
		}
		if !al.free(sub, a) {
			tried = append(tried, sub.String())
			continue
		}
		al.placed = append(al.placed, sub)
		return sub, hosts, nil
	}
	return netip.Prefix{}, nil, fmt.Errorf("no subnet around %s holds %d more hosts without another lab address or a VM (tried %s)",
		a, n, strings.Join(tried, ", "))
}

// candidateBits are the prefix lengths tried for a link of n hosts, the
// usual one first (/30 or the /29... that holds them; /64), then smaller
// subnets down to /31 and /127 where another address is close.
func candidateBits(v4 bool, n int) []int {
	var out []int
	if v4 {
		for b := 30; b >= 24; b-- {
			if 1<<(32-b)-2 >= n {
				out = append(out, b)
				break
			}
		}
		if n <= 2 {
			out = append(out, 31)
		}
		return out
	}
	for _, b := range []int{64, 112, 120, 124, 125, 126, 127} {
		if b == 127 && n > 2 {
			continue
		}
		out = append(out, b)
	}
	return out
}

// hostsOf returns up to n addresses of sub other than own, skipping the
// network and broadcast addresses where they are not usable (/31 and /127
// use both).
func hostsOf(sub netip.Prefix, own netip.Addr, n int) []netip.Addr {
	pointToPoint := sub.Bits() == own.BitLen()-1
	var last netip.Addr
	if own.Is4() && !pointToPoint {
		last = lastAddr(sub)
	}
	var out []netip.Addr
	for a := sub.Addr(); sub.Contains(a) && len(out) < n; a = a.Next() {
		switch {
		case a == own:
		case a == sub.Addr() && !pointToPoint:
		case a == last:
		default:
			out = append(out, a)
		}
	}
	return out
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// ownPool is one of the lab's own address ranges: count subnets counted
// up from first in steps of one /24 (IPv4) or /64 (IPv6), all inside block.
type ownPool struct {
	block netip.Prefix
	first netip.Addr
	count int
}

// ownPools are the lab's own ranges per family, in the order they are
// used: 10.255.3.0 and up, then 100.64.0.0/10 (IPv4); fd00:255:3:: and
// up, then fd00:c07::/32 (IPv6).
var ownPools = map[bool][]ownPool{
	false: {
		{netip.MustParsePrefix("10.255.0.0/16"), netip.MustParseAddr("10.255.3.0"), 253},
		{netip.MustParsePrefix("100.64.0.0/10"), netip.MustParseAddr("100.64.0.0"), 1 << 14},
	},
	true: {
		{netip.MustParsePrefix("fd00:255::/32"), netip.MustParseAddr("fd00:255:3::"), 1<<16 - 3},
		{netip.MustParsePrefix("fd00:c07::/32"), netip.MustParseAddr("fd00:c07::"), 1 << 16},
	},
}

// nth is the n-th subnet of the pool, of length bits.
func (p ownPool) nth(n, bits int) netip.Prefix {
	if p.first.Is4() {
		b := p.first.As4()
		v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		v += uint32(n) << 8
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), bits)
	}
	b := p.first.As16()
	v := uint16(b[4])<<8 | uint16(b[5])
	v += uint16(n)
	b[4], b[5] = byte(v>>8), byte(v)
	return netip.PrefixFrom(netip.AddrFrom16(b), bits)
}

// internal places a subnet of the given length from the lab's own ranges
// (ownPools), skipping a whole range that a VM range covers.
func (al *allocator) internal(v6 bool, bits int) (netip.Prefix, error) {
	start := al.next[v6]
	for _, p := range ownPools[v6] {
		if start >= p.count {
			start -= p.count
			continue
		}
		if slices.ContainsFunc(al.covering, func(c netip.Prefix) bool { return c.Bits() <= p.block.Bits() && c.Contains(p.block.Addr()) }) {
			al.next[v6] += p.count - start
			start = 0
			continue
		}
		for n := start; n < p.count; n++ {
			al.next[v6]++
			if sub := p.nth(n, bits); al.free(sub, netip.Addr{}) {
				al.placed = append(al.placed, sub)
				return sub, nil
			}
		}
		start = 0
	}
	return netip.Prefix{}, fmt.Errorf("the lab's own address ranges are used up (they are inside the VM ranges or taken)")
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
	if cfg.Shape == nil {
		sh := DefaultShape()
		cfg.Shape = &sh
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
	if err := validateShape(*cfg.Shape); err != nil {
		errs = append(errs, err)
	}
	if fl, err := ExpandFlavors(cfg.EdgeFlavors, len(cfg.Shape.Edges)); err != nil {
		errs = append(errs, err)
	} else {
		cfg.EdgeFlavors = fl
	}
	fixed := shapeAddrs(*cfg.Shape)
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
		case vm != vm.Masked():
			report(fmt.Errorf("VM %s: host bits set (want %s)", vm, vm.Masked()))
			continue
		case vm.Addr().Is4In6():
			report(fmt.Errorf("VM %s: IPv4-mapped IPv6 address, write it as IPv4", vm))
			continue
		case seen[vm]:
			report(fmt.Errorf("VM %s: listed twice", vm))
			continue
		}
		seen[vm] = true
		if slices.Contains(fixed, vm.Addr()) {
			report(fmt.Errorf("VM %s has the address of a site's gateway or an edge router", vm))
		}
		if !slices.ContainsFunc(cfg.Covering, func(c netip.Prefix) bool { return c.IsValid() && c.Contains(vm.Addr()) }) {
			report(fmt.Errorf("VM %s is outside the covering ranges %v", vm, cfg.Covering))
		}
	}
	if listed > maxListed {
		errs = append(errs, fmt.Errorf("%d more VM errors", listed-maxListed))
	}
	return joinErrs("lab config", errs)
}

func shapeAddrs(sh Shape) []netip.Addr {
	var out []netip.Addr
	for _, s := range sh.Sites {
		for _, a := range []netip.Addr{s.NextHop.V4, s.NextHop.V6} {
			if a.IsValid() {
				out = append(out, a)
			}
		}
	}
	for _, e := range sh.Edges {
		out = append(out, e.Addrs...)
	}
	return out
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
	t, err := newTopology(cfg)
	if err != nil {
		return Topology{}, fmt.Errorf("lab config: %w", err)
	}
	return t, nil
}

// FRRConf is the first edge router's configuration as one integrated
// frr.conf.
func (t Topology) FRRConf() (string, error) { return renderFRRConf(t, t.Edges[0]) }

// FRRConfOf is edge's configuration as one integrated frr.conf.
func (t Topology) FRRConfOf(edge string) (string, error) {
	for _, e := range t.Edges {
		if e.Node == edge {
			return renderFRRConf(t, e)
		}
	}
	return "", fmt.Errorf("no edge %q (edges: %v)", edge, t.EdgeNodes())
}

// Sysctls returns the sysctls the lab sets on a node of t.
func (t Topology) Sysctls(node string) [][2]string { return sysctls(t.IsEdge(node)) }

// VMList is the lab's VM addresses, one a line: the responders' list.
func (t Topology) VMList() string {
	var b strings.Builder
	for _, vm := range t.VMs {
		b.WriteString(vm.String())
		b.WriteByte('\n')
	}
	return b.String()
}
