package lab

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/cutover/cutover/internal/netnsrun"
)

// nodeHandles are netlink handles into each node's namespace.
type nodeHandles struct {
	ns map[string]netns.NsHandle
	nl map[string]*netlink.Handle
}

func (l *Lab) openHandles(nodes ...string) (*nodeHandles, error) {
	h := &nodeHandles{ns: map[string]netns.NsHandle{}, nl: map[string]*netlink.Handle{}}
	for _, node := range nodes {
		ns, err := netns.GetFromName(l.Namespace(node))
		if err != nil {
			h.close()
			return nil, fmt.Errorf("open namespace %s: %w", l.Namespace(node), err)
		}
		h.ns[node] = ns
		nl, err := netlink.NewHandleAt(ns)
		if err != nil {
			h.close()
			return nil, fmt.Errorf("netlink in %s: %w", l.Namespace(node), err)
		}
		h.nl[node] = nl
	}
	return h, nil
}

func (h *nodeHandles) close() {
	for _, nl := range h.nl {
		nl.Close()
	}
	for _, ns := range h.ns {
		ns.Close()
	}
}

// sysctls returns the sysctls of a node (an edge router or not), set
// before its links exist so that new interfaces inherit the defaults.
func sysctls(edge bool) [][2]string {
	s := [][2]string{
		// No duplicate address detection: addresses are usable at once.
		{"net.ipv6.conf.all.accept_dad", "0"},
		{"net.ipv6.conf.default.accept_dad", "0"},
	}
	if edge {
		s = append(s,
			[2]string{"net.ipv4.ip_forward", "1"},
			[2]string{"net.ipv6.conf.all.forwarding", "1"},
			// rp_filter=1 drops the replies of fwmark-steered flows: they come
			// back from the new site while the main table still points at the old.
			[2]string{"net.ipv4.conf.all.rp_filter", "0"},
			[2]string{"net.ipv4.conf.default.rp_filter", "0"},
		)
	}
	return s
}

func writeSysctls(kv [][2]string) error {
	for _, s := range kv {
		p := "/proc/sys/" + strings.ReplaceAll(s[0], ".", "/")
		if err := os.WriteFile(p, []byte(s[1]), 0o644); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", s[0], s[1], err)
		}
	}
	return nil
}

// setupNetwork creates the links, bridges, addresses and routes of topo in
// the (existing, empty) namespaces, without ever touching the host
// namespace: each veth pair is created from inside its edge's namespace
// with its peer placed directly in the other node's.
func (l *Lab) setupNetwork(topo Topology) error {
	nodes := topo.Nodes()
	for _, node := range nodes {
		if err := netnsrun.Run(l.Namespace(node), func() error { return writeSysctls(topo.Sysctls(node)) }); err != nil {
			return fmt.Errorf("set up %s: %w", node, err)
		}
	}
	h, err := l.openHandles(nodes...)
	if err != nil {
		return err
	}
	defer h.close()
	for _, lk := range topo.Links {
		veth := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: lk.A.Iface},
			PeerName:      lk.B.Iface,
			PeerNamespace: netlink.NsFd(int(h.ns[lk.B.Node])),
		}
		if err := h.nl[lk.A.Node].LinkAdd(veth); err != nil {
			return fmt.Errorf("add link %s-%s: %w", lk.A, lk.B, err)
		}
	}
	for _, br := range topo.Bridges {
		if err := addBridge(h.nl[br.Node], br); err != nil {
			return err
		}
	}
	for _, node := range nodes {
		nl := h.nl[node]
		lo, err := nl.LinkByName("lo")
		if err != nil {
			return fmt.Errorf("find lo in %s: %w", node, err)
		}
		if err := nl.LinkSetUp(lo); err != nil {
			return fmt.Errorf("set lo up in %s: %w", node, err)
		}
	}
	rp := map[string][][2]string{}
	for _, lk := range topo.Links {
		for _, ep := range []Endpoint{lk.A, lk.B} {
			if err := setupIface(h.nl[ep.Node], ep); err != nil {
				return err
			}
		}
		rp[lk.A.Node] = append(rp[lk.A.Node], [2]string{"net.ipv4.conf." + lk.A.Iface + ".rp_filter", "0"})
	}
	for _, e := range topo.EdgeNodes() {
		if err := netnsrun.Run(l.Namespace(e), func() error { return writeSysctls(rp[e]) }); err != nil {
			return fmt.Errorf("set up %s: %w", e, err)
		}
	}
	for _, site := range topo.SiteNodes() {
		if err := addVMs(h.nl[site], topo.VMs); err != nil {
			return fmt.Errorf("add VM addresses in %s: %w", site, err)
		}
	}
	for _, node := range nodes {
		for _, r := range topo.Routes[node] {
			route := &netlink.Route{Dst: ipNet(r.Dst), Gw: r.Via.AsSlice()}
			if r.Dev != "" {
				dev, err := h.nl[node].LinkByName(r.Dev)
				if err != nil {
					return fmt.Errorf("route %s via %s in %s: find %s: %w", r.Dst, r.Via, node, r.Dev, err)
				}
				route.LinkIndex, route.Flags = dev.Attrs().Index, int(netlink.FLAG_ONLINK)
			}
			if err := h.nl[node].RouteAdd(route); err != nil {
				return fmt.Errorf("add route %s via %s in %s: %w", r.Dst, r.Via, node, err)
			}
		}
	}
	return nil
}

// addBridge creates a site's bridge with the gateway's addresses; the
// edges' links are enslaved to it by setupIface.
func addBridge(nl *netlink.Handle, br Bridge) error {
	if err := nl.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: br.Name}}); err != nil {
		return fmt.Errorf("add bridge %s:%s: %w", br.Node, br.Name, err)
	}
	return setupIface(nl, Endpoint{Node: br.Node, Iface: br.Name, Addrs: br.Addrs})
}

func setupIface(nl *netlink.Handle, ep Endpoint) error {
	link, err := nl.LinkByName(ep.Iface)
	if err != nil {
		return fmt.Errorf("find %s: %w", ep, err)
	}
	if ep.Bridge != "" {
		br, err := nl.LinkByName(ep.Bridge)
		if err != nil {
			return fmt.Errorf("find bridge %s of %s: %w", ep.Bridge, ep, err)
		}
		if err := nl.LinkSetMaster(link, br); err != nil {
			return fmt.Errorf("enslave %s to %s: %w", ep, ep.Bridge, err)
		}
	}
	for i, a := range ep.Addrs {
		na := nlAddr(a)
		if peer := ep.Peer(i); peer.IsValid() {
			na.Peer = ipNet(netip.PrefixFrom(peer, peer.BitLen()))
		}
		if err := nl.AddrAdd(link, na); err != nil {
			return fmt.Errorf("add %s to %s: %w", a, ep, err)
		}
	}
	if err := nl.LinkSetUp(link); err != nil {
		return fmt.Errorf("set %s up: %w", ep, err)
	}
	return nil
}

// Adding an IPv4 address scans the interface's address list, so n
// addresses on one interface cost O(n²): 20,000 on lo take 8 s, 50,000 six
// minutes. lo takes the first vmsOnLo VMs (all of the default 2,000); the
// rest go on veth pairs of vmsPerIface each (50,000 VMs: about 1.5 s a site).
const (
	vmsOnLo     = 2048
	vmsPerIface = 512
)

// addVMs puts the VM addresses on lo (this kernel has no dummy driver),
// the first vmsOnLo of them; the rest go on veth pairs vms1/vms1p,
// vms2/vms2p... in the same namespace, vmsPerIface each. Local addresses
// answer on any interface, so the VMs behave the same.
func addVMs(nl *netlink.Handle, vms []netip.Prefix) error {
	var hosts []netip.Prefix
	for _, vm := range vms {
		if vm.IsSingleIP() {
			hosts = append(hosts, vm)
		} else if err := addLocalRange(nl, vm); err != nil {
			return err
		}
	}
	vms = hosts
	for i := 0; len(vms) > 0; i++ {
		n := vmsPerIface
		if i == 0 {
			n = vmsOnLo
		}
		n = min(len(vms), n)
		link, err := vmIface(nl, i)
		if err != nil {
			return err
		}
		for _, vm := range vms[:n] {
			if err := nl.AddrAdd(link, nlAddr(vm)); err != nil && !errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("add %s to %s: %w", vm, link.Attrs().Name, err)
			}
		}
		vms = vms[n:]
	}
	return nil
}

// addLocalRange makes every address of a VM that is a subnet local (a
// "local" route on lo in the local table, AnyIP): the responder, listening
// on every address, answers for all of them.
func addLocalRange(nl *netlink.Handle, p netip.Prefix) error {
	lo, err := nl.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	r := &netlink.Route{Dst: ipNet(p), LinkIndex: lo.Attrs().Index, Table: unix.RT_TABLE_LOCAL,
		Type: unix.RTN_LOCAL, Scope: netlink.SCOPE_HOST}
	if err := nl.RouteAdd(r); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("make %s local: %w", p, err)
	}
	return nil
}

// vmIface returns lo for i = 0, else creates and sets up veth pair vms<i>.
func vmIface(nl *netlink.Handle, i int) (netlink.Link, error) {
	if i == 0 {
		lo, err := nl.LinkByName("lo")
		if err != nil {
			return nil, fmt.Errorf("find lo: %w", err)
		}
		return lo, nil
	}
	name := fmt.Sprintf("vms%d", i)
	if err := nl.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}); err != nil {
		return nil, fmt.Errorf("add VM interface %s: %w", name, err)
	}
	var link netlink.Link
	for _, n := range []string{name + "p", name} {
		l, err := nl.LinkByName(n)
		if err != nil {
			return nil, fmt.Errorf("find %s: %w", n, err)
		}
		if err := nl.LinkSetUp(l); err != nil {
			return nil, fmt.Errorf("set %s up: %w", n, err)
		}
		link = l
	}
	return link, nil
}

func nlAddr(p netip.Prefix) *netlink.Addr {
	a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	return a
}

func ipNet(p netip.Prefix) *net.IPNet {
	p = p.Masked()
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
