//go:build !linux

package gobgp

import (
	"net"
	"net/netip"
)

// shutdownSessions is Linux-only; elsewhere, peers that did not negotiate
// RFC 8538 see the Cease GoBGP sends on stop and withdraw our routes.
func shutdownSessions([]netip.Addr) error { return nil }

// checkMD5 cannot tell elsewhere; GoBGP warns if it fails to set a key.
func checkMD5(netip.Addr, bool) error { return nil }

// checkPeerIsSelf relies on the socket directory's permissions elsewhere.
func checkPeerIsSelf(net.Conn) error { return nil }
