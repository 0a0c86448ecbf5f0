package edge

import (
	"net/netip"
	"time"
)

// Junos limits (graceful restart, in seconds).
const (
	junosMaxRestart = 600 * time.Second
)

// renderJunos renders Junos curly-brace config to load with
// "load merge terminal" (or a file).
func renderJunos(in Input) (string, error) {
	w := &writer{}
	w.b.WriteString(header(in, "#"))
	w.l("# No mirror: Junos does not send a route back to the AS it came from (advertise-peer-as) and rewrites")
	w.l("# the next-hop toward a single-hop eBGP peer (no-nexthop-change is for multihop sessions only), so the")
	w.l("# controller cannot see this edge's view over BGP: give this peer observe: bmp (the BMP station below).")
	if in.Port != 0 && in.Port != 179 {
		w.l("# The controller dials port %d, but Junos accepts BGP on port 179 only: set the peer's port to 179.", in.Port)
	}
	junosPolicies(w, in)
	junosRoutingOptions(w, in)
	junosProtocols(w, in)
	return w.String(), nil
}

func junosPolicies(w *writer, in Input) {
	v4, v6 := SplitFamilies(in.Allowed)
	w.l("policy-options {")
	w.l("    /* Only prefixes inside the VM ranges are accepted from the controller. */")
	w.l("    policy-statement %s {", inPolicy)
	junosTerm(w, "vm-ranges-v4", afi4, v4)
	junosTerm(w, "vm-ranges-v6", afi6, v6)
	w.l("        then reject;")
	w.l("    }")
	w.l("    /* Nothing is sent to the controller. */")
	w.l("    policy-statement %s {", outPolicy)
	w.l("        then reject;")
	w.l("    }")
	w.l("}")
}

func junosTerm(w *writer, name string, af afi, ps []netip.Prefix) {
	if len(ps) == 0 {
		return
	}
	w.l("        term %s {", name)
	w.l("            from {")
	w.l("                family %s;", af.junos)
	for _, p := range ps {
		w.l("                route-filter %s orlonger;", p)
	}
	w.l("            }")
	w.l("            then accept;")
	w.l("        }")
}

func junosRoutingOptions(w *writer, in Input) {
	w.l("routing-options {")
	if in.RouterID.IsValid() {
		w.l("    router-id %s;", in.RouterID)
	}
	w.l("    autonomous-system %d;", in.RouterAS)
	junosStatic(w, in)
	if in.BMP.IsValid() {
		w.l("    bmp {")
		w.l("        station %s {", bmpStation)
		w.l("            connection-mode active;")
		w.l("            station-address %s;", in.BMP.Addr())
		w.l("            station-port %d;", in.BMP.Port())
		w.l("            route-monitoring {")
		w.l("                post-policy;")
		w.l("            }")
		w.l("        }")
		w.l("    }")
	}
	w.l("}")
}

func junosStatic(w *writer, in Input) {
	var v4, v6 []Covering
	for _, c := range in.Covering {
		if c.Prefix.Addr().Is4() {
			v4 = append(v4, c)
		} else {
			v6 = append(v6, c)
		}
	}
	if len(v4) > 0 {
		w.l("    /* Covering routes: every VM is reached this way until the controller announces a more specific route. */")
		w.l("    static {")
		for _, c := range v4 {
			w.l("        route %s next-hop %s;", c.Prefix, c.NextHop)
		}
		w.l("    }")
	}
	if len(v6) > 0 {
		w.l("    rib inet6.0 {")
		w.l("        static {")
		for _, c := range v6 {
			w.l("            route %s next-hop %s;", c.Prefix, c.NextHop)
		}
		w.l("        }")
		w.l("    }")
	}
}

func junosProtocols(w *writer, in Input) {
	w.l("protocols {")
	w.l("    bgp {")
	w.l("        group %s {", groupName)
	if in.ibgp() {
		w.l("            type internal;")
	} else {
		w.l("            type external;")
		w.l("            peer-as %d;", in.ControllerAS)
	}
	w.l("            description \"cutover controller\";")
	w.l("            /* Junos sends keepalives at a third of the hold time; the runbook's keepalive is %ds. */", secs(in.Keepalive))
	w.l("            hold-time %d;", secs(in.HoldTime))
	if in.Password != "" {
		w.l("            authentication-key \"%s\";", in.Password)
	}
	w.l("            import %s;", inPolicy)
	w.l("            export %s;", outPolicy)
	junosGR(w, in)
	for _, af := range families(in) {
		w.l("            family %s {", af.junos)
		w.l("                unicast {")
		w.l("                    /* More than max_prefixes from the controller is a fault: the session goes down, the network's own routes stay. */")
		w.l("                    prefix-limit {")
		w.l("                        maximum %d;", in.MaxPrefixes)
		w.l("                        teardown;")
		w.l("                    }")
		w.l("                }")
		w.l("            }")
	}
	for _, c := range in.Controllers {
		w.l("            neighbor %s;", c)
	}
	w.l("        }")
	w.l("    }")
	w.l("}")
}

func junosGR(w *writer, in Input) {
	if !in.GracefulRestart {
		w.l("            /* Graceful restart is off in the runbook: a restarting controller's routes go at once. */")
		w.l("            graceful-restart {")
		w.l("                disable;")
		w.l("            }")
		return
	}
	w.l("            /* The edge is a graceful-restart helper: a restarting controller keeps its routes. */")
	w.l("            graceful-restart {")
	w.l("                restart-time %d;", secs(min(in.RestartTime, junosMaxRestart)))
	w.l("                stale-routes-time %d;", secs(stalePath(in)))
	if in.LongLivedStale > 0 {
		w.l("                /* Long-lived graceful restart, the second line: the controller offers %ds of long-lived stale time. */", secs(in.LongLivedStale))
		w.l("                long-lived {")
		w.l("                    receiver {")
		w.l("                        enable;")
		w.l("                    }")
		w.l("                }")
	}
	w.l("            }")
}
