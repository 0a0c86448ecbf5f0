package edge

import "net/netip"

// renderEOS renders Arista EOS CLI config (multi-agent routing model).
func renderEOS(in Input) (string, error) {
	w := &writer{}
	w.b.WriteString(header(in, "!"))
	w.l("! No mirror: it is not verified that EOS sends a route back to the peer it came from with the")
	w.l("! next-hop unchanged, so the controller cannot count on this edge's view over BGP: give this peer")
	w.l("! observe: bmp (the BMP station below shows the edge's view).")
	if in.Port != 0 && in.Port != 179 {
		w.l("! The controller dials port %d, but EOS accepts BGP on port 179 only: set the peer's port to 179.", in.Port)
	}
	eosCovering(w, in)
	eosFilters(w, in)
	eosRouter(w, in)
	return w.String(), nil
}

func eosCovering(w *writer, in Input) {
	if len(in.Covering) == 0 {
		return
	}
	w.l("! Covering routes: every VM is reached this way until the controller announces a more specific route.")
	for _, c := range in.Covering {
		kw := "ip"
		if !c.Prefix.Addr().Is4() {
			kw = "ipv6"
		}
		w.l("%s route %s %s", kw, c.Prefix, c.NextHop)
	}
	w.l("!")
}

func eosFilters(w *writer, in Input) {
	v4, v6 := SplitFamilies(in.Allowed)
	w.l("! Only prefixes inside the VM ranges are accepted from the controller.")
	eosPrefixList(w, "ip", rangesV4, v4, 32)
	eosPrefixList(w, "ipv6", rangesV6, v6, 128)
	w.l("!")
	if len(v4) > 0 {
		w.l("route-map %s permit 10\n   match ip address prefix-list %s", inPolicy, rangesV4)
	}
	if len(v6) > 0 {
		w.l("route-map %s permit 20\n   match ipv6 address prefix-list %s", inPolicy, rangesV6)
	}
	w.l("route-map %s deny 100\n!", inPolicy)
	w.l("! Nothing is sent to the controller.")
	w.l("route-map %s deny 100\n!", outPolicy)
}

func eosPrefixList(w *writer, kw, name string, ps []netip.Prefix, bits int) {
	if len(ps) == 0 {
		return
	}
	w.l("%s prefix-list %s", kw, name)
	for i, p := range ps {
		w.l("   seq %d permit %s le %d", (i+1)*10, p, bits)
	}
}

func eosRouter(w *writer, in Input) {
	w.l("router bgp %d", in.RouterAS)
	if in.RouterID.IsValid() {
		w.l("   router-id %s", in.RouterID)
	}
	eosGR(w, in)
	w.l("   neighbor %s peer group", groupName)
	w.l("   neighbor %s remote-as %d", groupName, in.ControllerAS)
	w.l("   neighbor %s description cutover controller", groupName)
	w.l("   neighbor %s timers %d %d", groupName, secs(in.Keepalive), secs(in.HoldTime))
	if in.Password != "" {
		w.l("   neighbor %s password 0 %s", groupName, in.Password)
	}
	w.l("   neighbor %s route-map %s in", groupName, inPolicy)
	w.l("   neighbor %s route-map %s out", groupName, outPolicy)
	w.l("   ! More than max_prefixes from the controller is a fault: the session goes down, the network's own routes stay.")
	w.l("   neighbor %s maximum-routes %d", groupName, in.MaxPrefixes)
	for _, c := range in.Controllers {
		w.l("   neighbor %s peer group %s", c, groupName)
	}
	eosBMP(w, in)
	for _, af := range families(in) {
		w.l("   !")
		w.l("   address-family %s", af.eos)
		w.l("      neighbor %s activate", groupName)
	}
	w.l("!")
}

func eosGR(w *writer, in Input) {
	if !in.GracefulRestart {
		w.l("   ! Graceful restart is off in the runbook: a restarting controller's routes go at once.")
		w.l("   no graceful-restart-helper")
		return
	}
	w.l("   ! The edge is a graceful-restart helper: a restarting controller keeps its routes.")
	w.l("   graceful-restart restart-time %d", secs(in.RestartTime))
	w.l("   graceful-restart stalepath-time %d", secs(stalePath(in)))
	if in.LongLivedStale > 0 {
		w.l("   ! Long-lived graceful restart, the second line: the controller offers %ds of long-lived stale time.", secs(in.LongLivedStale))
		w.l("   graceful-restart-helper long-lived")
	} else {
		w.l("   graceful-restart-helper")
	}
}

func eosBMP(w *writer, in Input) {
	if !in.BMP.IsValid() {
		return
	}
	w.l("   ! BMP: every peer of this router is reported, post-policy.")
	w.l("   bgp monitoring")
	w.l("   monitoring station %s", bmpStation)
	w.l("      connection address %s", in.BMP.Addr())
	w.l("      connection mode active port %d", in.BMP.Port())
	w.l("      export-policy received routes post-policy")
}
