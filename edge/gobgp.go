package edge

import (
	"errors"
	"net/netip"
	"strconv"
)

// renderGoBGP renders a gobgpd.toml. gobgpd's policies are global (they
// apply to every peer that is no route-server client), so each statement
// matches the controllers' neighbor-set and leaves the edge's other peers
// alone; a prefix-set holds one family, so there is one per family.
func renderGoBGP(in Input) (string, error) {
	if !in.RouterID.IsValid() {
		return "", errors.New("gobgpd needs the edge's router-id (global.config.router-id), and it is not known: give it (an IPv6 peer's address cannot be one)")
	}
	w := &writer{}
	w.b.WriteString(header(in, "#"))
	w.l("# No mirror: gobgpd never sends a path back to the peer it came from, so the controller cannot")
	w.l("# see this edge's view over BGP: give this peer observe: bmp (the BMP station below shows it).")
	if len(in.Covering) > 0 {
		w.l("# Covering routes are not config in gobgpd: add them with gobgp global rib add, or in the kernel:")
		for _, c := range in.Covering {
			w.l("#   %s via %s (%s)", c.Prefix, c.NextHop, coveringVia(c))
		}
	}
	w.l("")
	gobgpGlobal(w, in)
	for _, c := range in.Controllers {
		gobgpNeighbor(w, in, c)
	}
	gobgpSets(w, in)
	gobgpPolicies(w, in)
	gobgpBMP(w, in)
	return w.String(), nil
}

func gobgpGlobal(w *writer, in Input) {
	w.l("[global.config]")
	w.l("  as = %d", in.RouterAS)
	w.l("  router-id = %q", in.RouterID.String())
	if in.Port != 0 && in.Port != 179 {
		w.l("  # The controller dials this port.")
		w.l("  port = %d", in.Port)
	}
	w.l("[global.apply-policy.config]")
	w.l("  import-policy-list = [%q]", inPolicy)
	w.l("  export-policy-list = [%q]", outPolicy)
	w.l("  # The edge's other peers: as without these policies.")
	w.l("  default-import-policy = \"accept-route\"")
	w.l("  default-export-policy = \"accept-route\"")
	w.l("")
}

func gobgpNeighbor(w *writer, in Input, c netip.Addr) {
	w.l("[[neighbors]]")
	w.l("  [neighbors.config]")
	w.l("    neighbor-address = %q", c.String())
	w.l("    peer-as = %d", in.ControllerAS)
	w.l("    description = \"cutover controller\"")
	if in.Password != "" {
		w.l("    auth-password = %q", in.Password)
	}
	w.l("  [neighbors.timers.config]")
	w.l("    hold-time = %d", secs(in.HoldTime))
	w.l("    keepalive-interval = %d", secs(in.Keepalive))
	w.l("    connect-retry = %d", frrConnectRetry)
	if in.GracefulRestart {
		w.l("  # The edge is a graceful-restart helper only: a restarting controller keeps its routes.")
		w.l("  [neighbors.graceful-restart.config]")
		w.l("    enabled = true")
		w.l("    helper-only = true")
		w.l("    restart-time = %d", secs(in.RestartTime))
		w.l("    long-lived-enabled = %t", in.LongLivedStale > 0)
	} else {
		w.l("  # Graceful restart is off in the runbook: a restarting controller's routes go at once.")
	}
	for _, af := range families(in) {
		gobgpAfiSafi(w, in, af)
	}
	w.l("")
}

func gobgpAfiSafi(w *writer, in Input, af afi) {
	w.l("  [[neighbors.afi-safis]]")
	w.l("    [neighbors.afi-safis.config]")
	w.l("      afi-safi-name = %q", af.gobgp)
	w.l("    # More than max_prefixes from the controller is a fault: the session goes down, the network's own routes stay.")
	w.l("    # gobgpd 3 counts the peer's whole Adj-RIB-In on every UPDATE while a limit is set, and a GoBGP controller")
	w.l("    # sends one UPDATE per prefix: a change of 10,000 prefixes takes this edge about twice as long as without it.")
	w.l("    [neighbors.afi-safis.prefix-limit.config]")
	w.l("      max-prefixes = %d", in.MaxPrefixes)
	if !in.GracefulRestart {
		return
	}
	w.l("    [neighbors.afi-safis.mp-graceful-restart.config]")
	w.l("      enabled = true")
	if in.LongLivedStale > 0 {
		w.l("    [neighbors.afi-safis.long-lived-graceful-restart.config]")
		w.l("      enabled = true")
		w.l("      restart-time = %d", secs(in.LongLivedStale))
	}
}

func gobgpSets(w *writer, in Input) {
	w.l("[[defined-sets.neighbor-sets]]")
	w.l("  neighbor-set-name = %q", groupName)
	list := ""
	for i, c := range in.Controllers {
		if i > 0 {
			list += ", "
		}
		list += strconv.Quote(c.String())
	}
	w.l("  neighbor-info-list = [%s]", list)
	w.l("")
	v4, v6 := SplitFamilies(in.Allowed)
	for _, f := range []struct {
		name string
		bits int
		ps   []netip.Prefix
	}{{rangesV4, 32, v4}, {rangesV6, 128, v6}} {
		if len(f.ps) == 0 {
			continue
		}
		w.l("[[defined-sets.prefix-sets]]")
		w.l("  prefix-set-name = %q", f.name)
		for _, p := range f.ps {
			w.l("  [[defined-sets.prefix-sets.prefix-list]]")
			w.l("    ip-prefix = %q", p.String())
			w.l("    masklength-range = \"%d..%d\"", p.Bits(), f.bits)
		}
		w.l("")
	}
}

func gobgpPolicies(w *writer, in Input) {
	v4, v6 := SplitFamilies(in.Allowed)
	w.l("# Only prefixes inside the VM ranges are accepted from the controller.")
	w.l("[[policy-definitions]]")
	w.l("  name = %q", inPolicy)
	if len(v4) > 0 {
		gobgpStatement(w, "vm-ranges-v4", rangesV4, "accept-route")
	}
	if len(v6) > 0 {
		gobgpStatement(w, "vm-ranges-v6", rangesV6, "accept-route")
	}
	gobgpStatement(w, "reject-the-rest", "", "reject-route")
	w.l("")
	w.l("# Nothing is sent to the controller.")
	w.l("[[policy-definitions]]")
	w.l("  name = %q", outPolicy)
	gobgpStatement(w, "reject-all", "", "reject-route")
	w.l("")
}

func gobgpStatement(w *writer, name, prefixSet, disposition string) {
	w.l("  [[policy-definitions.statements]]")
	w.l("    name = %q", name)
	w.l("    [policy-definitions.statements.conditions.match-neighbor-set]")
	w.l("      neighbor-set = %q", groupName)
	if prefixSet != "" {
		w.l("    [policy-definitions.statements.conditions.match-prefix-set]")
		w.l("      prefix-set = %q", prefixSet)
	}
	w.l("    [policy-definitions.statements.actions]")
	w.l("      route-disposition = %q", disposition)
}

func gobgpBMP(w *writer, in Input) {
	if !in.BMP.IsValid() {
		return
	}
	w.l("# BMP: the Loc-RIB (RFC 9069), what the edge uses. Not post-policy: gobgpd remembers what it sent")
	w.l("# to the station in a cache that outlives the BMP session, and does not send a route again that a")
	w.l("# restarted controller re-announces unchanged, so a new station would never learn it.")
	w.l("[[bmp-servers]]")
	w.l("  [bmp-servers.config]")
	w.l("    address = %q", in.BMP.Addr().String())
	w.l("    port = %d", in.BMP.Port())
	w.l("    route-monitoring-policy = \"local-rib\"")
}
