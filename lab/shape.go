package lab

import (
	"fmt"
	"maps"
	"net/netip"
	"os"
	"slices"

	"github.com/cutover/cutover/bgp"
	"github.com/cutover/cutover/cutover/runbook"
)

// ShapeOf is the lab a runbook runs against: a site per runbook site with
// that site's next-hops, an edge router per bgp.peers entry (its address,
// AS, port, timers and MD5 password), and the edges' covering routes
// leading to fallback — the runbook's fallback site when fallback is "".
// A runbook that announces its source (bgp.announce_source) and names no
// fallback site leaves the network's own routes unknown: ShapeOf refuses
// to guess.
func ShapeOf(rb *runbook.Runbook, fallback string) (Shape, error) {
	sh := Shape{ControllerAS: rb.BGP.LocalAS, ControllerID: rb.BGP.RouterID, MaxPrefixes: rb.MaxPrefixes}
	if rb.BGP.UsesBMP() {
		sh.BMP = rb.BGP.BMP.Listen
		if sh.BMP.Port() == 0 {
			sh.BMP = netip.AddrPortFrom(sh.BMP.Addr(), bgp.DefaultBMPPort)
		}
		if !sh.BMP.Addr().IsValid() {
			sh.BMP = netip.AddrPortFrom(netip.IPv6Unspecified(), sh.BMP.Port())
		}
	}
	for _, name := range rb.SiteNames() {
		s := rb.Sites[name]
		sh.Sites = append(sh.Sites, SiteSpec{Name: name, NextHop: NextHop{V4: s.NextHop.IPv4, V6: s.NextHop.IPv6}})
	}
	// The move's sites first, source then target, so that a lab's
	// sites read in the runbook's order of events.
	order := map[string]int{rb.Move.From: -2, rb.Move.To: -1}
	slices.SortStableFunc(sh.Sites, func(a, b SiteSpec) int { return order[a.Name] - order[b.Name] })
	gated := slices.ContainsFunc(rb.Gates, func(g runbook.GateConfig) bool { return g.Kind == runbook.GateBGP })
	for _, p := range rb.BGP.Peers {
		if p.AS == rb.BGP.LocalAS && p.Observe == bgp.ProofMirror && gated {
			return Shape{}, fmt.Errorf("runbook %s: peer %s is iBGP (AS %d, the controller's) and observed by the bgp gate, "+
				"but a router sends a peer's routes back to no iBGP peer, so the gate could never see its view: "+
				"set observe: bmp (or false) for it to rehearse", rb.Name, p.Address, p.AS)
		}
		e := EdgeSpec{Addrs: []netip.Addr{p.Address}, AS: p.AS, Port: p.Port, HoldTime: p.HoldTime,
			Keepalive: p.Keepalive, Password: p.Password, Description: p.Description}
		if p.PasswordEnv != "" {
			e.Password = os.Getenv(p.PasswordEnv)
			if e.Password == "" {
				return Shape{}, fmt.Errorf("runbook %s: peer %s takes its password from $%s, which is not set here", rb.Name, p.Address, p.PasswordEnv)
			}
		}
		sh.Edges = append(sh.Edges, e)
	}
	switch {
	case fallback != "":
		if rb.Sites[fallback] == nil {
			return Shape{}, fmt.Errorf("fallback %q: not a site of runbook %s (sites: %v)", fallback, rb.Name, rb.SiteNames())
		}
		if want := rb.FallbackSite(); want != "" && want != fallback {
			return Shape{}, fmt.Errorf("fallback %q: runbook %s says the network's own routes lead to %s", fallback, rb.Name, want)
		}
		sh.Fallback = fallback
	case rb.FallbackSite() != "":
		sh.Fallback = rb.FallbackSite()
	default:
		return Shape{}, fmt.Errorf("runbook %s announces its source (bgp.announce_source: true) and names no fallback site: "+
			"the lab cannot tell where the network's own routes lead; write `fallback: SITE` in the runbook (or pass --fallback SITE)", rb.Name)
	}
	if err := validateShape(sh); err != nil {
		return Shape{}, fmt.Errorf("runbook %s: %w", rb.Name, err)
	}
	return sh, nil
}

// Merge is the lab that holds both shapes: for drills that chain runbooks
// (drain out, then back) in one lab. The sites and edges of b are added to
// a's; a site or edge in both must be the same in both.
func (a Shape) Merge(b Shape) (Shape, error) {
	if a.ControllerAS != b.ControllerAS {
		return Shape{}, fmt.Errorf("the controller is AS %d in one runbook and AS %d in another: one lab has one controller", a.ControllerAS, b.ControllerAS)
	}
	if a.Fallback != b.Fallback {
		return Shape{}, fmt.Errorf("the network's own routes lead to %s in one runbook and to %s in another: one lab has one fallback", a.Fallback, b.Fallback)
	}
	if a.BMP.IsValid() && b.BMP.IsValid() && a.BMP != b.BMP {
		return Shape{}, fmt.Errorf("the BMP station listens on %s in one runbook and on %s in another: one lab has one controller", a.BMP, b.BMP)
	}
	out := a
	if !out.BMP.IsValid() {
		out.BMP = b.BMP
	}
	// One lab's edges take every runbook's routes (a chain's steps
	// start where the one before left them).
	out.MaxPrefixes = a.MaxPrefixes + b.MaxPrefixes
	out.Sites = slices.Clone(a.Sites)
	out.Edges = slices.Clone(a.Edges)
	for _, s := range b.Sites {
		i := slices.IndexFunc(out.Sites, func(o SiteSpec) bool { return o.Name == s.Name })
		switch {
		case i < 0:
			out.Sites = append(out.Sites, s)
		case out.Sites[i].NextHop != s.NextHop:
			return Shape{}, fmt.Errorf("site %s has next-hops %s/%s in one runbook and %s/%s in another",
				s.Name, out.Sites[i].NextHop.V4, out.Sites[i].NextHop.V6, s.NextHop.V4, s.NextHop.V6)
		}
	}
	for _, e := range b.Edges {
		i := slices.IndexFunc(out.Edges, func(o EdgeSpec) bool { return slices.Equal(o.Addrs, e.Addrs) })
		switch {
		case i < 0:
			out.Edges = append(out.Edges, e)
		case out.Edges[i].AS != e.AS || out.Edges[i].Port != e.Port || out.Edges[i].Password != e.Password:
			return Shape{}, fmt.Errorf("peer %v differs between the runbooks (AS, port or password): one lab has one router there", e.Addrs)
		}
		// Timers differing is fine: they are negotiated; the first
		// runbook's stay.
	}
	return out, validateShape(out)
}

// Book is a runbook with its inventory, as plan.Load reads them.
type Book struct {
	Runbook   *runbook.Runbook
	Inventory *runbook.Inventory
}

// ConfigFor is the lab that rehearses books (one runbook, or a chain run
// one after the other in one lab): their shapes merged (ShapeOf, Merge),
// every inventory address at every site, the covering routes from
// allowed_prefixes, the responders answering every port the inventories
// probe, and a Prometheus for every prometheus gate's URL, with the
// clients' traffic (every http and https probe's URL) for it to see.
func ConfigFor(name, fallback string, books ...Book) (Config, error) {
	cfg := Config{Name: name, VMs: []netip.Prefix{}}
	var sh Shape
	seenVM := map[netip.Prefix]bool{}
	seenCov := map[netip.Prefix]bool{}
	http, https := map[uint16]bool{HTTPPort: true}, map[uint16]bool{}
	prom := map[string]bool{}
	seenURL := map[string]bool{}
	for i, b := range books {
		s, err := ShapeOf(b.Runbook, fallback)
		if err != nil {
			return Config{}, err
		}
		if i == 0 {
			sh = s
		} else if sh, err = sh.Merge(s); err != nil {
			return Config{}, fmt.Errorf("runbook %s in the same lab as %s: %w", b.Runbook.Name, books[0].Runbook.Name, err)
		}
		for _, c := range b.Runbook.AllowedPrefixes {
			if !seenCov[c] {
				seenCov[c] = true
				cfg.Covering = append(cfg.Covering, c)
			}
		}
		for _, vm := range b.Inventory.VMs {
			for _, p := range vm.Prefixes {
				if !seenVM[p] {
					seenVM[p] = true
					cfg.VMs = append(cfg.VMs, p)
				}
			}
			switch vm.Probe.Kind {
			case runbook.ProbeHTTP, runbook.ProbeTCP:
				http[vm.Probe.Port] = true
			case runbook.ProbeHTTPS:
				https[vm.Probe.Port] = true
			}
			if vm.Probe.Kind == runbook.ProbeHTTP || vm.Probe.Kind == runbook.ProbeHTTPS {
				for _, p := range vm.Prefixes {
					u := fmt.Sprintf("%s://%s%s", vm.Probe.Kind, netip.AddrPortFrom(p.Addr(), vm.Probe.Port), vm.Probe.Path)
					if !seenURL[u] {
						seenURL[u] = true
						cfg.Clients = append(cfg.Clients, u)
					}
				}
			}
		}
		for _, g := range b.Runbook.Gates {
			if g.Kind == runbook.GatePrometheus && g.URL != "" {
				prom[g.URL] = true
			}
		}
	}
	delete(http, 0)
	delete(https, 0)
	for p := range https {
		delete(http, p) // a port answers one protocol; TLS wins
	}
	slices.SortFunc(cfg.VMs, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	cfg.Shape = &sh
	cfg.HTTPPorts = slices.Sorted(maps.Keys(http))
	cfg.TLSPorts = slices.Sorted(maps.Keys(https))
	cfg.Prometheus = slices.Sorted(maps.Keys(prom))
	return cfg, nil
}
