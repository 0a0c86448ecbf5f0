package bmp

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/cutover/cutover/bgp"
)

// Sources of a Holding: which of the router's tables answered.
const (
	SourceLocRIB   = "loc-rib"
	SourceAdjRIBIn = "adj-rib-in post-policy"
)

// Holding is a router's view of the wanted routes, the BMP counterpart of
// one bgp.PeerConvergence.
type Holding struct {
	Router netip.Addr     // as asked
	Source string         // SourceLocRIB or SourceAdjRIBIn; "" with a Reason
	BMP    netip.AddrPort // the router's BMP session; zero when unknown
	// Controller is the peer (the controller's session on the router)
	// whose Adj-RIB-In answered, or whose AS told its Loc-RIB paths from
	// others'; zero when it could not be identified.
	Controller netip.Addr
	Want       int
	Matched    int
	Missing    []netip.Prefix // first bgp.MaxMissing that do not match, in want order
	// Reason says why nothing can be judged (router unknown or down, no
	// usable table); Matched is then 0.
	Reason string
	// NoSession is set when the station has no BMP session, up or down,
	// from the router: it never connected (or was forgotten long ago).
	NoSession bool
}

// Done reports whether the router holds every wanted route.
func (h Holding) Done() bool { return h.Reason == "" && h.Matched == h.Want }

// PeerConvergence returns h in the form bgp.Convergence lists peers in,
// its proof "bmp" and the table that answered.
func (h Holding) PeerConvergence() bgp.PeerConvergence {
	proof := string(bgp.ProofBMP)
	if h.Source != "" {
		proof += " " + h.Source
	}
	return bgp.PeerConvergence{Peer: h.Router, Proof: proof, Matched: h.Matched, Missing: h.Missing, Reason: h.Reason}
}

// String summarises h for logs and errors, e.g.
// "10.255.0.1 loc-rib 1998/2000 (missing 10.64.0.10/32, 10.64.0.11/32)".
func (h Holding) String() string {
	if h.Reason != "" {
		return fmt.Sprintf("%s 0/%d: %s", h.Router, h.Want, h.Reason)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %d/%d", h.Router, h.Source, h.Matched, h.Want)
	bgp.WriteMissing(&b, h.Missing, h.Want-h.Matched)
	return b.String()
}

// Holds reports whether router holds each wanted route with its next-hop.
//
// router is the address the controller peers with: the local address, in
// the router's Peer Up, of its BGP session with the controller. The source
// address of the BMP session is accepted too. controller is the
// controller's address as the router sees it (the peer address of that
// session); it may be left zero when only one of the router's sessions has
// local address router.
//
// The Loc-RIB (RFC 9069) answers when the router sends one: it is what
// the router actually uses. There a wanted withdrawal (a Route without
// NextHop, see bgp.Withdrawals) matches when the best path for the prefix
// is absent or not from the controller, judged by AS_PATH: eBGP, its first
// AS is not the controller's; iBGP, it is not empty. Without a Loc-RIB the
// post-policy Adj-RIB-In of the controller's session answers, where every
// path is the controller's.
//
// Absence proves nothing while a table is still in its initial dump: a
// wanted withdrawal matches only once the router sent End-of-RIB for the
// family or Options.SyncDelay passed since the table started.
func (s *Station) Holds(router, controller netip.Addr, want []bgp.Route) Holding {
	h := Holding{Router: router, Want: len(want)}
	router, controller = router.Unmap(), controller.Unmap()
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, bySource := s.findLocked(router)
	if r == nil {
		h.Reason = "no BMP session from this router"
		h.NoSession = true
		return h
	}
	h.BMP = r.src
	if !r.up {
		h.Reason = fmt.Sprintf("BMP session down since %s: %s", r.downAt.Format(time.RFC3339), r.down)
		return h
	}
	ctl, why := controllerPeer(r, router, controller, bySource)
	if ctl != nil {
		h.Controller = ctl.key.addr
	}
	now := s.now()
	if loc, lwhy := locRIB(r); loc != nil || lwhy != "" {
		if lwhy != "" {
			h.Reason = lwhy
			return h
		}
		h.Source = SourceLocRIB
		ours := func(entry) bool { return true } // cannot tell: any path counts as ours
		if ctl != nil && ctl.as != 0 && ctl.localAS != 0 {
			if ctl.as == ctl.localAS {
				ours = func(e entry) bool { return e.firstAS == 0 }
			} else {
				as := ctl.as
				ours = func(e entry) bool { return e.firstAS == as }
			}
		}
		s.compare(&h, loc.rib, want, ours, now)
		return h
	}
	switch {
	case ctl == nil:
		h.Reason = "no Loc-RIB, and " + why
	case !ctl.up:
		h.Reason = fmt.Sprintf("no Loc-RIB, and the session with %s is down: %s", ctl.key.addr, ctl.down)
	case !ctl.postSeen && ctl.prePolicy:
		h.Reason = fmt.Sprintf("router sends only pre-policy Adj-RIB-In for %s: monitor post-policy or loc-rib", ctl.key.addr)
	default:
		h.Source = SourceAdjRIBIn
		s.compare(&h, ctl.rib, want, func(entry) bool { return true }, now)
	}
	return h
}

func (s *Station) compare(h *Holding, t *table, want []bgp.Route, ours func(entry) bool, now time.Time) {
	settled := now.Sub(t.start) >= s.opts.SyncDelay
	for _, w := range want {
		e, ok := t.routes[w.Prefix]
		var match bool
		if w.NextHop.IsValid() {
			match = ok && e.nextHop == w.NextHop
		} else {
			synced := settled || (w.Prefix.Addr().Is4() && t.eor4) || (w.Prefix.Addr().Is6() && t.eor6)
			match = synced && (!ok || !ours(e))
		}
		if match {
			h.Matched++
		} else if len(h.Missing) < bgp.MaxMissing {
			h.Missing = append(h.Missing, w.Prefix)
		}
	}
}

// findLocked finds the router's BMP state: an up session before a down one,
// then the newest. bySource tells whether it matched by the BMP session's
// source address only.
func (s *Station) findLocked(addr netip.Addr) (best *router, bySource bool) {
	better := func(r *router) bool {
		return best == nil || (r.up && !best.up) || (r.up == best.up && r.since.After(best.since))
	}
	for _, r := range s.routers {
		byLocal := false
		for _, p := range r.peers {
			if p.key.typ != peerTypeLocRIB && p.peerUp && p.local == addr {
				byLocal = true
				break
			}
		}
		if (byLocal || r.src.Addr() == addr) && better(r) {
			best, bySource = r, !byLocal
		}
	}
	return best, bySource
}

// controllerPeer picks the router's session with the controller, or says
// why none can be picked.
func controllerPeer(r *router, router, controller netip.Addr, bySource bool) (*peer, string) {
	var cands []*peer
	for _, p := range r.peers {
		if p.key.typ == peerTypeLocRIB {
			continue
		}
		if controller.IsValid() && p.key.addr == controller ||
			!controller.IsValid() && p.peerUp && p.local == router {
			cands = append(cands, p)
		}
	}
	if len(cands) > 1 {
		var up []*peer
		for _, p := range cands {
			if p.up {
				up = append(up, p)
			}
		}
		if len(up) > 0 {
			cands = up
		}
	}
	switch {
	case len(cands) == 1:
		return cands[0], ""
	case len(cands) > 1:
		addrs := make([]string, len(cands))
		for i, p := range cands {
			addrs[i] = p.key.addr.String()
		}
		slices.Sort(addrs)
		return nil, fmt.Sprintf("%d sessions match (peers %s): give the controller address", len(cands), strings.Join(addrs, ", "))
	case controller.IsValid():
		return nil, fmt.Sprintf("router reports no session with %s", controller)
	case bySource:
		return nil, fmt.Sprintf("router reports no session with local address %s: give the controller address", router)
	}
	return nil, fmt.Sprintf("router reports no session with local address %s", router)
}

// locRIB picks the Loc-RIB instance of the default table (distinguisher 0)
// or the only one; nil with no reason when the router sends none.
func locRIB(r *router) (*peer, string) {
	var all []*peer
	for _, p := range r.peers {
		if p.key.typ == peerTypeLocRIB {
			if p.key.dist == 0 {
				all = []*peer{p}
				break
			}
			all = append(all, p)
		}
	}
	switch {
	case len(all) == 0:
		return nil, ""
	case len(all) > 1:
		return nil, fmt.Sprintf("%d Loc-RIB instances and none for the default table", len(all))
	case !all[0].up || all[0].rib == nil:
		return nil, "Loc-RIB instance down: " + all[0].down
	}
	return all[0], ""
}

// RouterInfo describes one router the station knows.
type RouterInfo struct {
	Source   netip.AddrPort // of the BMP session
	SysName  string
	SysDescr string
	Up       bool
	Since    time.Time // the session's start
	Down     string    // why the session ended, when !Up
	Prefixes int       // stored over all tables
	Peers    []PeerInfo
}

// PeerInfo describes a monitored peer, or a Loc-RIB instance.
type PeerInfo struct {
	Type          string // "global", "rd", "local" or "loc-rib"
	Distinguisher uint64
	Address       netip.Addr // the peer; zero for Loc-RIB
	AS            uint32
	BGPID         netip.Addr
	// The router's end of the session, from Peer Up; zero without one.
	LocalAddress netip.Addr
	LocalPort    uint16
	RemotePort   uint16
	Up           bool
	Since        time.Time
	Down         string // Peer Down reason, when !Up
	// Routes in the post-policy Adj-RIB-In, or in the Loc-RIB.
	Routes int
	// PrePolicyOnly: the router monitors this peer pre-policy only, which
	// the station does not keep.
	PrePolicyOnly bool
}

func peerTypeName(t uint8) string {
	switch t {
	case peerTypeGlobal:
		return "global"
	case peerTypeRD:
		return "rd"
	case peerTypeLocal:
		return "local"
	case peerTypeLocRIB:
		return "loc-rib"
	}
	return fmt.Sprintf("type %d", t)
}

// Routers lists the routers the station knows, by source address.
func (s *Station) Routers() []RouterInfo {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]RouterInfo, 0, len(s.routers))
	for _, r := range s.routers {
		ri := RouterInfo{
			Source: r.src, SysName: r.sysName, SysDescr: r.sysDescr,
			Up: r.up, Since: r.since, Down: r.down, Prefixes: r.prefixes,
		}
		for _, p := range r.peers {
			pi := PeerInfo{
				Type: peerTypeName(p.key.typ), Distinguisher: p.key.dist, Address: p.key.addr,
				AS: p.as, BGPID: p.bgpID, LocalAddress: p.local, LocalPort: p.localPort, RemotePort: p.remotePort,
				Up: p.up, Since: p.since, Down: p.down, PrePolicyOnly: p.prePolicy && !p.postSeen,
			}
			if p.rib != nil {
				pi.Routes = len(p.rib.routes)
			}
			ri.Peers = append(ri.Peers, pi)
		}
		slices.SortFunc(ri.Peers, func(a, b PeerInfo) int {
			return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.Distinguisher, b.Distinguisher), a.Address.Compare(b.Address))
		})
		out = append(out, ri)
	}
	slices.SortFunc(out, func(a, b RouterInfo) int { return a.Source.Compare(b.Source) })
	return out
}
