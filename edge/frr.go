package edge

import "net/netip"

// FRR settings that are no runbook field, as the lab's edge has them.
const (
	frrConnectRetry = 5 // s; the edge retries quickly when it dials first
)

// renderFRR renders an frr.conf fragment (vtysh syntax): the lab's edge
// config, lab/frr.go's bgpBody, with the prefix limit and BMP added.
func renderFRR(in Input) (string, error) {
	w := &writer{}
	w.b.WriteString(header(in, "!"))
	frrCovering(w, in)
	frrFilters(w, in)
	frrRouter(w, in)
	return w.String(), nil
}

func frrCovering(w *writer, in Input) {
	if len(in.Covering) == 0 {
		return
	}
	for i, c := range in.Covering {
		if i == 0 || c.Via != in.Covering[i-1].Via {
			w.l("! Covering routes: every VM reaches %s until the controller announces a more specific route.", coveringVia(c))
		}
		kw := "ip"
		if !c.Prefix.Addr().Is4() {
			kw = "ipv6"
		}
		w.l("%s route %s %s", kw, c.Prefix, c.NextHop)
	}
	w.l("!")
}

func frrFilters(w *writer, in Input) {
	v4, v6 := SplitFamilies(in.Allowed)
	if in.mirrors() {
		w.l("! Only prefixes inside the VM ranges are accepted from the controller and mirrored back to it.")
	} else {
		w.l("! Only prefixes inside the VM ranges are accepted from the controller.")
	}
	for i, p := range v4 {
		w.l("ip prefix-list %s seq %d permit %s le 32", rangesV4, (i+1)*10, p)
	}
	for i, p := range v6 {
		w.l("ipv6 prefix-list %s seq %d permit %s le 128", rangesV6, (i+1)*10, p)
	}
	w.l("!")
	frrRouteMap(w, inPolicy, v4, v6)
	if in.mirrors() {
		frrRouteMap(w, outPolicy, v4, v6)
		return
	}
	w.l("! Nothing is sent to the controller: %s.", noMirrorReason(in))
	w.l("route-map %s deny 100\nexit\n!", outPolicy)
}

func frrRouteMap(w *writer, name string, v4, v6 []netip.Prefix) {
	if len(v4) > 0 {
		w.l("route-map %s permit 10\n match ip address prefix-list %s\nexit", name, rangesV4)
	}
	if len(v6) > 0 {
		w.l("route-map %s permit 20\n match ipv6 address prefix-list %s\nexit", name, rangesV6)
	}
	w.l("route-map %s deny 100\nexit\n!", name)
}

func frrRouter(w *writer, in Input) {
	w.l("router bgp %d", in.RouterAS)
	if in.RouterID.IsValid() {
		w.l(" bgp router-id %s", in.RouterID)
	} else {
		w.l(" ! bgp router-id: the edge's own (not known here: its session address is IPv6).")
	}
	w.l(" bgp log-neighbor-changes")
	w.l(" no bgp ebgp-requires-policy")
	w.l(" no bgp default ipv4-unicast")
	frrGR(w, in)
	if in.Port != 0 && in.Port != 179 {
		w.l(" ! The controller dials port %d: start bgpd with -p %d (the port is a daemon option, not config).", in.Port, in.Port)
	}
	w.l(" neighbor %s peer-group", groupName)
	w.l(" neighbor %s remote-as %d", groupName, in.ControllerAS)
	w.l(" neighbor %s description cutover controller", groupName)
	w.l(" neighbor %s timers %d %d", groupName, secs(in.Keepalive), secs(in.HoldTime))
	w.l(" neighbor %s timers connect %d", groupName, frrConnectRetry)
	w.l(" neighbor %s advertisement-interval 0", groupName)
	if in.Password != "" {
		w.l(" neighbor %s password %s", groupName, in.Password)
	}
	for _, c := range in.Controllers {
		w.l(" neighbor %s peer-group %s", c, groupName)
	}
	for _, af := range families(in) {
		frrAF(w, in, af)
	}
	frrBMP(w, in)
	w.l("exit")
	w.l("!")
}

func frrGR(w *writer, in Input) {
	if !in.GracefulRestart {
		w.l(" ! Graceful restart is off in the runbook: a restarting controller's routes go at once.")
		return
	}
	w.l(" ! The edge is a graceful-restart helper: a restarting controller keeps its routes.")
	w.l(" bgp graceful-restart")
	w.l(" bgp graceful-restart restart-time %d", secs(in.RestartTime))
	w.l(" bgp graceful-restart stalepath-time %d", secs(stalePath(in)))
	if in.LongLivedStale > 0 {
		w.l(" ! Long-lived graceful restart, the second line: past the restart time the paths stay, least preferred.")
		w.l(" bgp long-lived-graceful-restart stale-time %d", secs(in.LongLivedStale))
	}
}

// afi is an address family as the flavours name it.
type afi struct {
	frr   string // ipv4
	bird  string // ipv4
	gobgp string // ipv4-unicast
	junos string // inet
	eos   string // ipv4
	bits  int    // host route length
}

var (
	afi4 = afi{"ipv4", "ipv4", "ipv4-unicast", "inet", "ipv4", 32}
	afi6 = afi{"ipv6", "ipv6", "ipv6-unicast", "inet6", "ipv6", 128}
)

// families are the address families of the allowed ranges: the only ones
// the sessions carry.
func families(in Input) []afi {
	v4, v6 := SplitFamilies(in.Allowed)
	var fs []afi
	if len(v4) > 0 {
		fs = append(fs, afi4)
	}
	if len(v6) > 0 {
		fs = append(fs, afi6)
	}
	return fs
}

func frrAF(w *writer, in Input, af afi) {
	w.l(" !")
	w.l(" address-family %s unicast", af.frr)
	w.l("  neighbor %s activate", groupName)
	w.l("  neighbor %s route-map %s in", groupName, inPolicy)
	w.l("  neighbor %s route-map %s out", groupName, outPolicy)
	w.l("  ! More than max_prefixes from the controller is a fault: the session goes down, the network's own routes stay.")
	w.l("  neighbor %s maximum-prefix %d", groupName, in.MaxPrefixes)
	switch {
	case in.ibgp():
		w.l("  ! iBGP: the edge sends a peer's routes back to nobody of its AS, so nothing mirrors them.")
	case in.Mirror:
		w.l("  ! Mirror the edge's best paths with the next-hop the edge uses.")
		w.l("  neighbor %s attribute-unchanged next-hop", groupName)
	}
	w.l(" exit-address-family")
}

func frrBMP(w *writer, in Input) {
	if !in.BMP.IsValid() {
		return
	}
	w.l(" !")
	w.l(" ! BMP: bgpd must load its module (-M bmp) for these lines.")
	w.l(" bmp targets %s", bmpStation)
	w.l("  bmp connect %s port %d min-retry 1000 max-retry 30000", in.BMP.Addr(), in.BMP.Port())
	for _, af := range families(in) {
		w.l("  bmp monitor %s unicast post-policy", af.frr)
	}
	w.l(" exit")
}

// coveringVia names where a covering route leads, for its comment.
func coveringVia(c Covering) string {
	if c.Via != "" {
		return c.Via
	}
	return c.NextHop.String()
}

// noMirrorReason says why the output sends nothing to the controller.
func noMirrorReason(in Input) string {
	if in.ibgp() {
		return "the sessions are iBGP, and a router sends a peer's routes back to nobody of its AS"
	}
	return "the mirror is off (the peer's observe is not mirror)"
}
