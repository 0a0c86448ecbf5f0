package edge

import (
	"net/netip"
	"strings"
)

// renderBIRD renders a BIRD 2 fragment to include from bird.conf: it
// declares no router id and no device protocol, which bird.conf has once.
func renderBIRD(in Input) (string, error) {
	w := &writer{}
	w.b.WriteString(header(in, "#"))
	w.l("# Include it from bird.conf, which sets the router id%s.", birdRouterID(in))
	w.l("#")
	w.l("# No mirror: BIRD never exports a route back to the protocol (the session) it came from,")
	w.l("# and BIRD 2.0 has no BMP, so the controller cannot see this edge's view: give this peer")
	w.l("# observe: sent (the weak proof), or observe: bmp with observe_fallback: sent.")
	if in.BMP.IsValid() {
		w.l("# No BMP: BIRD 2.0 has no BMP; station %s is not configured.", in.BMP)
	}
	if in.Port != 0 && in.Port != 179 {
		w.l("# The controller dials port %d: the sessions listen there (local port).", in.Port)
	}
	w.l("")
	birdCovering(w, in)
	birdFilters(w, in)
	for i, c := range in.Controllers {
		birdProtocol(w, in, i, c)
	}
	return w.String(), nil
}

func birdRouterID(in Input) string {
	if in.RouterID.IsValid() {
		return " (" + in.RouterID.String() + ")"
	}
	return ""
}

func birdCovering(w *writer, in Input) {
	for _, af := range []afi{afi4, afi6} {
		var routes []Covering
		for _, c := range in.Covering {
			if (af.bits == 32) == c.Prefix.Addr().Is4() {
				routes = append(routes, c)
			}
		}
		if len(routes) == 0 {
			continue
		}
		w.l("# Covering routes: every VM is reached this way until the controller announces a more specific route.")
		w.l("protocol static cutover_covering_%s {", af.bird)
		w.l("\t%s;", af.bird)
		for _, c := range routes {
			w.l("\troute %s via %s;\t# %s", c.Prefix, c.NextHop, coveringVia(c))
		}
		w.l("}")
		w.l("")
	}
}

func birdFilters(w *writer, in Input) {
	v4, v6 := SplitFamilies(in.Allowed)
	w.l("# Only prefixes inside the VM ranges are accepted from the controller.")
	for _, f := range []struct {
		af  afi
		set string
		ps  []netip.Prefix
	}{{afi4, rangesV4, v4}, {afi6, rangesV6, v6}} {
		if len(f.ps) == 0 {
			continue
		}
		name := birdName(f.set)
		w.l("define %s = [ %s ];", name, birdSet(f.ps))
		w.l("filter %s_%s {", birdName(inPolicy), f.af.bird)
		w.l("\tif net ~ %s then accept;", name)
		w.l("\treject;")
		w.l("}")
	}
	w.l("")
}

// birdName turns CONTROLLER-IN into controller_in: BIRD symbols take no
// '-'.
func birdName(s string) string { return strings.ToLower(strings.ReplaceAll(s, "-", "_")) }

// birdSet writes a prefix set: every range with all its more specifics.
func birdSet(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String() + "+"
	}
	return strings.Join(s, ", ")
}

func birdProtocol(w *writer, in Input, i int, c netip.Addr) {
	w.l("protocol bgp controller_%d {", i+1)
	w.l("\tdescription \"cutover controller %s\";", c)
	if in.Port != 0 && in.Port != 179 {
		w.l("\tlocal port %d as %d;", in.Port, in.RouterAS)
	} else {
		w.l("\tlocal as %d;", in.RouterAS)
	}
	w.l("\tneighbor %s as %d;", c, in.ControllerAS)
	w.l("\thold time %d;", secs(in.HoldTime))
	w.l("\tkeepalive time %d;", secs(in.Keepalive))
	w.l("\tconnect retry time %d;", frrConnectRetry)
	if in.Password != "" {
		w.l("\tpassword \"%s\";", in.Password)
	}
	birdGR(w, in)
	for _, af := range families(in) {
		w.l("\t%s {", af.bird)
		w.l("\t\timport filter %s_%s;", birdName(inPolicy), af.bird)
		w.l("\t\t# More than max_prefixes from the controller is a fault: the session goes down, the network's own routes stay.")
		w.l("\t\timport limit %d action disable;", in.MaxPrefixes)
		w.l("\t\texport none;")
		w.l("\t};")
	}
	w.l("}")
	w.l("")
}

func birdGR(w *writer, in Input) {
	if !in.GracefulRestart {
		w.l("\t# Graceful restart is off in the runbook: a restarting controller's routes go at once.")
		w.l("\tgraceful restart off;")
		return
	}
	w.l("\t# The edge is a graceful-restart helper: a restarting controller keeps its routes.")
	w.l("\tgraceful restart aware;")
	w.l("\tgraceful restart time %d;", secs(in.RestartTime))
	if in.LongLivedStale > 0 {
		w.l("\t# Long-lived graceful restart, the second line: past the restart time the paths stay, least preferred.")
		w.l("\tlong lived graceful restart aware;")
		w.l("\tlong lived stale time %d;", secs(in.LongLivedStale))
	}
}
