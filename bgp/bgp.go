// Package bgp states what the cutover engine needs from BGP: announce a
// desired set of routes, learn whether the peers accepted them, and stop
// without taking the routes away. The GoBGP implementation lives in
// bgp/gobgp; a fake for tests is in fake.go.
package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Route is one path the speaker announces.
type Route struct {
	Prefix  netip.Prefix // canonical (masked); v4 or v6
	NextHop netip.Addr   // same family as Prefix
	// LocalPref is sent to iBGP peers; 0 means "not set" (peer default).
	LocalPref uint32
	// MED; nil means no MULTI_EXIT_DISC attribute.
	MED              *uint32
	Communities      []Community
	LargeCommunities []LargeCommunity
	// Prepend is how many extra times the local AS is prepended.
	Prepend uint8
}

func (r Route) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s via %s", r.Prefix, r.NextHop)
	if r.LocalPref != 0 {
		fmt.Fprintf(&b, " local-pref %d", r.LocalPref)
	}
	if r.MED != nil {
		fmt.Fprintf(&b, " med %d", *r.MED)
	}
	for _, c := range r.Communities {
		fmt.Fprintf(&b, " community %s", c)
	}
	for _, c := range r.LargeCommunities {
		fmt.Fprintf(&b, " large-community %s", c)
	}
	if r.Prepend > 0 {
		fmt.Fprintf(&b, " prepend %d", r.Prepend)
	}
	return b.String()
}

// Community is an RFC 1997 community, ASN:VALUE in its two 16-bit halves.
type Community uint32

func (c Community) String() string { return fmt.Sprintf("%d:%d", uint32(c)>>16, uint32(c)&0xffff) }

// ParseCommunity parses "65000:100".
func ParseCommunity(s string) (Community, error) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return 0, fmt.Errorf("community %q: want ASN:VALUE", s)
	}
	hi, err1 := strconv.ParseUint(a, 10, 16)
	lo, err2 := strconv.ParseUint(b, 10, 16)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("community %q: both halves must be 0-65535", s)
	}
	return Community(hi<<16 | lo), nil
}

// MarshalText and UnmarshalText let communities appear as text in YAML and JSON.
func (c Community) MarshalText() ([]byte, error) { return []byte(c.String()), nil }
func (c *Community) UnmarshalText(b []byte) error {
	v, err := ParseCommunity(string(b))
	*c = v
	return err
}

// LargeCommunity is an RFC 8092 large community GLOBAL:LOCAL1:LOCAL2.
type LargeCommunity struct{ Global, Local1, Local2 uint32 }

func (c LargeCommunity) String() string { return fmt.Sprintf("%d:%d:%d", c.Global, c.Local1, c.Local2) }

// ParseLargeCommunity parses "65000:1:2".
func ParseLargeCommunity(s string) (LargeCommunity, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return LargeCommunity{}, fmt.Errorf("large community %q: want GLOBAL:LOCAL1:LOCAL2", s)
	}
	var v [3]uint32
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return LargeCommunity{}, fmt.Errorf("large community %q: each part must be 0-4294967295", s)
		}
		v[i] = uint32(n)
	}
	return LargeCommunity{v[0], v[1], v[2]}, nil
}

func (c LargeCommunity) MarshalText() ([]byte, error) { return []byte(c.String()), nil }
func (c *LargeCommunity) UnmarshalText(b []byte) error {
	v, err := ParseLargeCommunity(string(b))
	*c = v
	return err
}

// Speaker announces routes to its peers.
type Speaker interface {
	// Set makes the announced routes equal to desired. Routes that are new or
	// whose attributes changed are sent first, withdrawals last, so that a
	// prefix never disappears while its next-hop changes. Set may be called
	// repeatedly with the same routes; nil or empty withdraws everything.
	// Routes outside the configured Limits are refused before anything is sent.
	Set(ctx context.Context, desired []Route) error
	// Accepted reports how far the observed peers' view matches want, for
	// the peers whose proof (PeerConfig.Observe, or its ObserveFallback)
	// the speaker judges itself: mirror and sent. A wanted route without a
	// next-hop asks for a withdrawal: it matches when the peer holds no
	// path from us for the prefix (see Withdrawals).
	Accepted(ctx context.Context, want []Route) (Convergence, error)
	// Peers reports each configured peer and its session state.
	Peers(ctx context.Context) ([]PeerStatus, error)
	// Close stops the speaker without withdrawing: peers that negotiated
	// graceful restart keep the routes for the restart time. Call Set(ctx, nil)
	// first to withdraw.
	Close() error
}

// Refresher is a Speaker that can send one peer every announced route
// again (a soft reset out), for a peer whose view missed some.
type Refresher interface {
	Refresh(ctx context.Context, peer netip.Addr) error
}

// Convergence is the answer of Accepted.
type Convergence struct {
	Want  int // routes asked about
	Peers []PeerConvergence
}

// PeerConvergence is one observed peer's view of the wanted routes.
type PeerConvergence struct {
	Peer netip.Addr
	// Proof is how the view was learned: the peer's Proof, with detail
	// where there is some ("bmp loc-rib", "sent, no BMP session").
	Proof   string
	Matched int            // routes the peer holds with the wanted next-hop
	Missing []netip.Prefix // first few routes the peer lacks or holds differently
	// Reason says why nothing could be judged (the session is down, no
	// BMP session, ...); Matched is then 0 and Missing lists nothing.
	Reason string
}

// Done reports whether every observed peer holds every wanted route.
// With no observed peers it is false: nothing proves convergence.
func (c Convergence) Done() bool {
	if len(c.Peers) == 0 {
		return false
	}
	for _, p := range c.Peers {
		if p.Matched != c.Want || p.Reason != "" {
			return false
		}
	}
	return true
}

// PeerStatus is the state of one BGP session.
type PeerStatus struct {
	Address     netip.Addr
	AS          uint32
	State       string // "established", "active", "idle", ...
	Established bool
	Uptime      time.Duration
	Received    int // prefixes received
	Advertised  int // prefixes advertised
	// Observe is the peer's proof (PeerConfig.Observe).
	Observe Proof
	// Accepted counts the prefixes for which a mirror peer's best path is
	// ours (our AS in its AS_PATH), as it mirrors them back: what it took
	// of Advertised. 0 for a peer that does not mirror.
	Accepted int
}
