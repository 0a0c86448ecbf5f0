package edge

import (
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/cutover/cutover/bgp"
	"github.com/cutover/cutover/cutover/runbook"
)

// FromRunbook is the Input for the edge at runbook peer peer: the edge's
// AS and timers from the peer, the controller's AS and graceful restart
// from bgp, the filter and the limit from allowed_prefixes and
// max_prefixes. A session joins addresses of one family, so only the
// controllers of the peer's family are used; there must be one. The
// edge's router-id is the peer address when that is IPv4 (unknown
// otherwise). The mirror and the BMP station follow the peer's observe:
// the bgp gate needs the edge's view only of observed peers, and by the
// proof the peer is given. The station is bgp.bmp.listen, or, where that
// leaves the address unspecified, the first controller address with its
// port. No covering routes: a real
// edge has the network's own routes; the lab adds its statics itself.
func FromRunbook(rb *runbook.Runbook, peer netip.Addr, controllers []netip.Addr, flavor string) (Input, error) {
	p, err := findPeer(rb, peer)
	if err != nil {
		return Input{}, err
	}
	ctl := sameFamily(controllers, peer)
	if len(ctl) == 0 {
		return Input{}, fmt.Errorf("peer %s is %s, but no controller address is: name the controller's %s address this edge peers with",
			peer, familyName(peer), familyName(peer))
	}
	password, err := peerPassword(p)
	if err != nil {
		return Input{}, fmt.Errorf("runbook %s: %w", rb.Name, err)
	}
	in := Input{
		Flavor:          flavor,
		About:           fmt.Sprintf("runbook %s (%s), peer %s AS %d", rb.Name, rb.File, p.Address, p.AS),
		RouterAS:        p.AS,
		ControllerAS:    rb.BGP.LocalAS,
		Controllers:     ctl,
		Port:            p.Port,
		HoldTime:        p.HoldTime,
		Keepalive:       p.Keepalive,
		Password:        password,
		Allowed:         rb.AllowedPrefixes,
		MaxPrefixes:     rb.MaxPrefixes,
		GracefulRestart: rb.BGP.GracefulRestart.Enabled,
		RestartTime:     rb.BGP.GracefulRestart.RestartTime,
		Mirror:          p.Observe == bgp.ProofMirror || p.ObserveFallback == bgp.ProofMirror,
	}
	if p.Observe == bgp.ProofBMP {
		in.BMP = stationFor(rb.BGP.BMP.Listen, ctl[0])
	}
	if in.GracefulRestart {
		// What the controller offers (bgp.Config's default); the runbook
		// has no field for it.
		in.LongLivedStale = bgp.DefaultLongLivedStaleTime
	}
	if peer.Is4() {
		in.RouterID = peer
	}
	return in, nil
}

func findPeer(rb *runbook.Runbook, addr netip.Addr) (runbook.Peer, error) {
	var names []string
	for _, p := range rb.BGP.Peers {
		if p.Address == addr {
			return p, nil
		}
		names = append(names, p.Address.String())
	}
	return runbook.Peer{}, fmt.Errorf("runbook %s has no peer %s (peers: %s)", rb.Name, addr, strings.Join(names, ", "))
}

// sameFamily returns the addresses of as of a's family.
func sameFamily(as []netip.Addr, a netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, c := range as {
		if c.Unmap().Is4() == a.Unmap().Is4() {
			out = append(out, c.Unmap())
		}
	}
	return out
}

func familyName(a netip.Addr) string {
	if a.Unmap().Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// peerPassword is the peer's MD5 password, read from its environment
// variable when the runbook names one: the edge needs the same secret.
func peerPassword(p runbook.Peer) (string, error) {
	if p.PasswordEnv == "" {
		return p.Password, nil
	}
	v := os.Getenv(p.PasswordEnv)
	if v == "" {
		return "", fmt.Errorf("peer %s takes its password from $%s, which is not set here: the edge needs the same password", p.Address, p.PasswordEnv)
	}
	return v, nil
}

// stationFor is where an edge that peers with ctl reaches the BMP station
// that listens on listen: listen itself, or ctl at listen's port when
// listen is every address.
func stationFor(listen netip.AddrPort, ctl netip.Addr) netip.AddrPort {
	port := listen.Port()
	if port == 0 {
		port = bgp.DefaultBMPPort
	}
	if listen.Addr().IsValid() && !listen.Addr().IsUnspecified() {
		return netip.AddrPortFrom(listen.Addr().Unmap(), port)
	}
	return netip.AddrPortFrom(ctl, port)
}
