package bgp

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Config is what a Speaker needs to run: who it is, whom it talks to, and
// what it may announce. Build it, then call Validate (New does too).
type Config struct {
	LocalAS  uint32
	RouterID netip.Addr // IPv4; BGP identifier
	// ListenPort is the TCP port the speaker accepts sessions on: 0 means
	// 179, -1 means it does not listen (it only dials its peers).
	ListenPort int32
	// ListenAddresses are the local addresses to listen on; empty means all.
	ListenAddresses []netip.Addr
	Peers           []PeerConfig
	GracefulRestart GracefulRestart
	Limits          Limits
	// BMP is where the BMP station listens for the routers of the peers
	// with Observe ProofBMP (package bgp/bmp runs it; the speaker ignores
	// it); the station's owner requires it when a peer observes by BMP.
	BMP netip.AddrPort
}

// UsesBMP reports whether a peer observes by BMP.
func (c Config) UsesBMP() bool {
	for _, p := range c.Peers {
		if p.Observe == ProofBMP {
			return true
		}
	}
	return false
}

// PeerConfig is one BGP neighbor.
type PeerConfig struct {
	Address netip.Addr
	AS      uint32
	// Port is the peer's TCP port; 0 means 179.
	Port uint16
	// LocalAddress is the source address of the session; zero: the kernel's
	// choice.
	LocalAddress netip.Addr
	// Password enables TCP MD5 signatures (RFC 2385); empty: none.
	Password string
	// HoldTime and Keepalive; zero means 90 s and a third of the hold time.
	HoldTime, Keepalive time.Duration
	// Observe is how the peer's view of our routes is proven to the bgp
	// gate (see Proof); ProofNone: not observed. A Speaker judges
	// ProofMirror (what the peer sends back is never installed or
	// re-advertised) and ProofSent itself; ProofBMP is answered by a BMP
	// station (package bgp/bmp), and a Speaker leaves such a peer out of
	// Accepted unless ObserveFallback names a proof it judges.
	Observe Proof
	// ObserveFallback is the proof used, with Observe ProofBMP, while the
	// router has never opened a BMP session to the station: ProofMirror or
	// ProofSent. A router whose BMP session was up and went down is not
	// judged by the fallback: it waits for BMP.
	ObserveFallback Proof
	// Passive waits for the peer to connect instead of dialing it.
	Passive bool
}

// GracefulRestart configures RFC 4724 graceful restart towards every peer.
// With it, peers keep the routes while the speaker restarts (for up to
// RestartTime), and a restarted speaker re-announces them before it sends
// End-of-RIB, so nothing is withdrawn in between.
type GracefulRestart struct {
	Enabled bool
	// RestartTime is how long peers keep the routes of a speaker that went
	// away: 1 s to 4095 s (a 12-bit field in seconds). Zero means 120 s.
	RestartTime time.Duration
	// LongLivedStaleTime is offered to peers that support long-lived
	// graceful restart (RFC 9494) as the second line: once RestartTime has
	// run out without the speaker back, they keep its routes, marked
	// LLGR_STALE and least preferred, for this long more (a peer may cap
	// it: FRR keeps them for the smaller of this and its own
	// "bgp long-lived-graceful-restart stale-time"). Whole seconds up to
	// 16777215 s (24 bits). Zero means DefaultLongLivedStaleTime when
	// graceful restart is enabled; negative: not offered.
	LongLivedStaleTime time.Duration
}

// Defaults for zero values; see WithDefaults.
const (
	DefaultHoldTime    = 90 * time.Second
	DefaultRestartTime = 120 * time.Second
	maxRestartTime     = 4095 * time.Second
	// DefaultLongLivedStaleTime: an hour for someone to bring a dead
	// controller back (or to roll back) before the peers let go of routes
	// that the dataplane still steers by.
	DefaultLongLivedStaleTime = time.Hour
	maxLongLivedStaleTime     = 16777215 * time.Second
	maxMD5KeyLen              = 80 // TCP_MD5SIG_MAXKEYLEN
)

// WithDefaults returns c with the zero values that have a documented default
// replaced by it.
func (c Config) WithDefaults() Config {
	if c.ListenPort == 0 {
		c.ListenPort = 179
	}
	if c.GracefulRestart.Enabled && c.GracefulRestart.RestartTime == 0 {
		c.GracefulRestart.RestartTime = DefaultRestartTime
	}
	if c.GracefulRestart.Enabled && c.GracefulRestart.LongLivedStaleTime == 0 {
		c.GracefulRestart.LongLivedStaleTime = DefaultLongLivedStaleTime
	}
	peers := make([]PeerConfig, len(c.Peers))
	for i, p := range c.Peers {
		if p.Port == 0 {
			p.Port = 179
		}
		if p.HoldTime == 0 {
			p.HoldTime = DefaultHoldTime
		}
		if p.Keepalive == 0 {
			p.Keepalive = p.HoldTime / 3
		}
		peers[i] = p
	}
	c.Peers = peers
	return c
}

// Validate checks the configuration as a whole and returns every problem at
// once, each naming the field or peer at fault.
func (c Config) Validate() error {
	var errs []error
	if c.LocalAS == 0 {
		errs = append(errs, errors.New("local AS: must be set (1-4294967295)"))
	}
	if !c.RouterID.IsValid() || !c.RouterID.Is4() || c.RouterID.IsUnspecified() {
		errs = append(errs, fmt.Errorf("router ID %q: want a non-zero IPv4 address", addrString(c.RouterID)))
	}
	if c.ListenPort < -1 || c.ListenPort > 65535 {
		errs = append(errs, fmt.Errorf("listen port %d: want -1 (do not listen), 0 (179) or 1-65535", c.ListenPort))
	}
	for _, a := range c.ListenAddresses {
		if !a.IsValid() || a.Is4In6() {
			errs = append(errs, fmt.Errorf("listen address %q: want an IPv4 or IPv6 address", addrString(a)))
		}
	}
	if len(c.Peers) == 0 {
		errs = append(errs, errors.New("peers: at least one peer is needed"))
	}
	seen := make(map[netip.Addr]bool, len(c.Peers))
	for _, p := range c.Peers {
		if err := p.validate(); err != nil {
			errs = append(errs, err)
		}
		if seen[p.Address] {
			errs = append(errs, fmt.Errorf("peer %s: defined twice", p.Address))
		}
		seen[p.Address] = true
	}
	if gr := c.GracefulRestart; gr.RestartTime != 0 {
		if gr.RestartTime < time.Second || gr.RestartTime > maxRestartTime || gr.RestartTime%time.Second != 0 {
			errs = append(errs, fmt.Errorf("graceful restart: restart time %s: want whole seconds from 1s to %s", gr.RestartTime, maxRestartTime))
		}
		if !gr.Enabled {
			errs = append(errs, errors.New("graceful restart: restart time set but graceful restart not enabled"))
		}
	}
	if gr := c.GracefulRestart; gr.LongLivedStaleTime > 0 {
		if gr.LongLivedStaleTime < time.Second || gr.LongLivedStaleTime > maxLongLivedStaleTime || gr.LongLivedStaleTime%time.Second != 0 {
			errs = append(errs, fmt.Errorf("graceful restart: long-lived stale time %s: want whole seconds from 1s to %s", gr.LongLivedStaleTime, maxLongLivedStaleTime))
		}
		if !gr.Enabled {
			errs = append(errs, errors.New("graceful restart: long-lived stale time set but graceful restart not enabled"))
		}
	}
	if err := c.Limits.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.BMP.IsValid() && c.BMP.Port() == 0 {
		errs = append(errs, fmt.Errorf("BMP station %s: want a port", c.BMP))
	}
	return errors.Join(errs...)
}

func (p PeerConfig) validate() error {
	name := addrString(p.Address)
	if !p.Address.IsValid() || p.Address.IsUnspecified() || p.Address.Is4In6() {
		return fmt.Errorf("peer %q: address: want an IPv4 or IPv6 address", name)
	}
	if p.Address.Zone() != "" {
		return fmt.Errorf("peer %s: address: zones are not supported", name)
	}
	var errs []error
	if p.AS == 0 {
		errs = append(errs, fmt.Errorf("peer %s: AS: must be set (1-4294967295)", name))
	}
	if p.LocalAddress.IsValid() && p.LocalAddress.Is4() != p.Address.Is4() {
		errs = append(errs, fmt.Errorf("peer %s: local address %s: not the same address family", name, p.LocalAddress))
	}
	if len(p.Password) > maxMD5KeyLen {
		errs = append(errs, fmt.Errorf("peer %s: password: longer than %d bytes (TCP MD5 limit)", name, maxMD5KeyLen))
	}
	switch p.Observe {
	case ProofNone, ProofBMP, ProofMirror, ProofSent:
	default:
		errs = append(errs, fmt.Errorf("peer %s: observe %q: want bmp, mirror, sent or none", name, string(p.Observe)))
	}
	switch {
	case p.ObserveFallback == ProofNone:
	case p.Observe != ProofBMP:
		errs = append(errs, fmt.Errorf("peer %s: observe fallback %s: only a bmp peer has a fallback", name, p.ObserveFallback))
	case p.ObserveFallback != ProofMirror && p.ObserveFallback != ProofSent:
		errs = append(errs, fmt.Errorf("peer %s: observe fallback %q: want mirror or sent", name, string(p.ObserveFallback)))
	}
	hold, ka := p.HoldTime, p.Keepalive
	if hold != 0 && (hold < 3*time.Second || hold > 65535*time.Second || hold%time.Second != 0) {
		errs = append(errs, fmt.Errorf("peer %s: hold time %s: want whole seconds from 3s to 65535s (RFC 4271)", name, hold))
	}
	if ka != 0 {
		if ka < time.Second || ka%time.Second != 0 {
			errs = append(errs, fmt.Errorf("peer %s: keepalive %s: want whole seconds, at least 1s", name, ka))
		}
		if h := hold; h == 0 && ka >= DefaultHoldTime || h != 0 && ka >= h {
			errs = append(errs, fmt.Errorf("peer %s: keepalive %s: must be shorter than the hold time", name, ka))
		}
	}
	return errors.Join(errs...)
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
