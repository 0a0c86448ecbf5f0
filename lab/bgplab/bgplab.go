// Package bgplab runs the BGP speaker against the lab's real FRR edge: the
// speaker configuration a controller in the ctl namespace uses, the routes
// that move the lab's VMs to a site, a netlink watch of the edge's FIB, a
// speaker in a child process for tests (Remote), and the announce benchmark
// behind `cutover bench bgp`.
//
// GoBGP opens its sockets from many goroutines, so a speaker cannot be moved
// into a namespace by switching one thread: the process that runs it is
// started inside ctl with `ip netns exec` (see Command).
package bgplab

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"time"

	"github.com/cutover/cutover/bgp"
	"github.com/cutover/cutover/lab"
)

// ControllerConfig is the speaker configuration of a controller in the
// lab's ctl namespace: AS 65100 with router-id Ctl4, dialing the edge over
// IPv4 (the session carries both families), with the edge as the observe
// peer (it mirrors its best paths for the VM ranges back), the lab's
// timers (keepalive 3 s, hold 9 s), graceful restart, and the VM ranges as
// the allowed prefixes. maxPrefixes 0 means the number of the lab's VMs.
func ControllerConfig(t lab.Topology, maxPrefixes int) bgp.Config {
	if maxPrefixes == 0 {
		maxPrefixes = max(len(t.VMs), 1)
	}
	return bgp.Config{
		LocalAS:    t.ControllerAS,
		RouterID:   t.Ctl4,
		ListenPort: -1,
		Peers: []bgp.PeerConfig{{
			Address: t.EdgeCtl4, AS: t.EdgeAS, LocalAddress: t.Ctl4,
			HoldTime: 9 * time.Second, Keepalive: 3 * time.Second, Observe: bgp.ProofMirror,
		}},
		GracefulRestart: bgp.GracefulRestart{Enabled: true, RestartTime: DefaultRestartTime},
		Limits:          bgp.Limits{Allowed: t.Covering, MaxPrefixes: maxPrefixes},
	}
}

// SiteRoutes returns one route per prefix via the site's gateway of the
// prefix's family.
func SiteRoutes(t lab.Topology, site string, prefixes []netip.Prefix) ([]bgp.Route, error) {
	nh, ok := t.SiteNextHop[site]
	if !ok {
		return nil, fmt.Errorf("site %q: not in the lab (sites: %v)", site, lab.Sites)
	}
	rs := make([]bgp.Route, len(prefixes))
	for i, p := range prefixes {
		gw := nh.V4
		if !p.Addr().Is4() {
			gw = nh.V6
		}
		if !gw.IsValid() {
			return nil, fmt.Errorf("site %s: no next-hop for %s", site, p)
		}
		rs[i] = bgp.Route{Prefix: p, NextHop: gw}
	}
	return rs, nil
}

// FIBFor is the edge FIB that routes rs make: each prefix via its
// next-hop. Withdrawn lists prefixes that must have no route of their own.
func FIBFor(rs []bgp.Route, withdrawn []netip.Prefix) map[netip.Prefix]netip.Addr {
	m := make(map[netip.Prefix]netip.Addr, len(rs)+len(withdrawn))
	for _, p := range withdrawn {
		m[p] = netip.Addr{}
	}
	for _, r := range rs {
		m[r.Prefix] = r.NextHop
	}
	return m
}

// NamespaceEnv is set in the environment of a process Command started
// inside a namespace, to the namespace's name: a re-executed command checks
// it to know it already runs there.
const NamespaceEnv = "CUTOVER_IN_NETNS"

// InNamespace reports whether this process was started by Command in ns.
func InNamespace(ns string) bool { return os.Getenv(NamespaceEnv) == ns }

// Command returns a command that runs this program again inside ns with
// args, marking it with NamespaceEnv.
func Command(ns string, args ...string) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own binary: %w", err)
	}
	cmd := lab.Exec(ns, append([]string{self}, args...)...)
	cmd.Env = append(os.Environ(), NamespaceEnv+"="+ns)
	return cmd, nil
}
