//go:build linux

package kernel

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/cutover/cutover/nft/internal/layout"
)

// kernelRouting is what the kernel holds of the tool's ip rules (every rule
// at nft.Config.RulePriority) and routes (every route in the routing table
// of a site, or of a rule at that priority).
type kernelRouting struct {
	rules  []layout.IPRule
	routes []kernelRoute
}

// kernelRoute is a route in a site's routing table.
type kernelRoute struct {
	v6    bool
	table int
	dst   netip.Prefix
	via   netip.Addr
	raw   netlink.Route
}

func (r kernelRoute) String() string {
	s := fmt.Sprintf("%s route %s", layout.IPCommand(r.v6), r.dst)
	if r.via.IsValid() {
		s += " via " + r.via.String()
	}
	return fmt.Sprintf("%s table %d", s, r.table)
}

func (r kernelRoute) is(w layout.Route) bool {
	return r.v6 == w.V6 && r.table == w.Table && r.dst.Bits() == 0 && r.via == w.Via
}

func families() []int { return []int{netlink.FAMILY_V4, netlink.FAMILY_V6} }

// readRouting reads the ip rules at priority and the routes in tables and in
// the tables those rules point to.
func readRouting(h *netlink.Handle, priority int, tables []int) (kernelRouting, error) {
	var k kernelRouting
	for _, fam := range families() {
		filter := netlink.NewRule()
		filter.Priority = priority
		rules, err := h.RuleListFiltered(fam, filter, netlink.RT_FILTER_PRIORITY)
		if err != nil {
			return k, fmt.Errorf("list ip rules: %w", err)
		}
		for _, r := range rules {
			k.rules = append(k.rules, layout.IPRule{V6: fam == netlink.FAMILY_V6, Mark: r.Mark, Table: r.Table, Priority: r.Priority})
			tables = append(tables, r.Table)
		}
	}
	// Only the steering tables are read. Without strict checking the
	// kernel answers a route dump with every route of every table and
	// the library drops what does not match: on an edge or gateway that
	// carries the moved prefixes, tens of thousands of routes parsed and
	// dropped for each change. Kernels before 4.20 do not know the option
	// and dump everything, which is slower but still correct. It is off
	// again afterwards: the library's rule dump request does not pass the
	// kernel's strict check.
	if err := h.SetStrictCheck(true); err != nil && !errors.Is(err, unix.ENOPROTOOPT) {
		return k, fmt.Errorf("route netlink: set NETLINK_GET_STRICT_CHK: %w", err)
	}
	defer func() { _ = h.SetStrictCheck(false) }()
	slices.Sort(tables)
	for _, t := range slices.Compact(tables) {
		for _, fam := range families() {
			routes, err := h.RouteListFiltered(fam, &netlink.Route{Table: t}, netlink.RT_FILTER_TABLE)
			if errors.Is(err, unix.ENOENT) {
				continue // strict: a table that does not exist (yet) has no routes
			}
			if err != nil {
				return k, fmt.Errorf("list routes of table %d: %w", t, err)
			}
			for _, r := range routes {
				kr := kernelRoute{v6: fam == netlink.FAMILY_V6, table: r.Table, raw: r}
				bits := 0
				if kr.v6 {
					kr.dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
				} else {
					kr.dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
				}
				if r.Dst != nil {
					if a, ok := netip.AddrFromSlice(r.Dst.IP); ok {
						bits, _ = r.Dst.Mask.Size()
						kr.dst = netip.PrefixFrom(a.Unmap(), bits)
					}
				}
				if a, ok := netip.AddrFromSlice(r.Gw); ok {
					kr.via = a.Unmap()
				}
				k.routes = append(k.routes, kr)
			}
		}
	}
	return k, nil
}

// routingDrift lists the differences between k and the wanted rules and
// routes. Routes k lacks are listed only with withMissingRoutes: Apply
// adds them back without calling that drift (missingRoutes).
func routingDrift(k kernelRouting, rules []layout.IPRule, routes []layout.Route, withMissingRoutes bool) (missing, unexpected []string) {
	for _, w := range rules {
		if !slices.Contains(k.rules, w) {
			missing = append(missing, w.String()+": missing")
		}
	}
	for _, r := range k.rules {
		if !slices.Contains(rules, r) {
			unexpected = append(unexpected, r.String()+": unexpected")
		}
	}
	if withMissingRoutes {
		for _, w := range missingRoutes(k, routes) {
			missing = append(missing, w.String()+": missing")
		}
	}
	for _, r := range k.routes {
		if !slices.ContainsFunc(routes, func(w layout.Route) bool { return r.is(w) }) {
			unexpected = append(unexpected, r.String()+": unexpected")
		}
	}
	return missing, unexpected
}

// missingRoutes is the wanted routes k lacks. The tool's own default
// routes in the site tables go missing without anyone editing them: the
// kernel deletes a route when the link to its next-hop goes down, and does
// not bring it back with the link. So they are not drift that stops Apply
// (which would stop the brake after a link flap): Apply adds them back.
func missingRoutes(k kernelRouting, routes []layout.Route) []layout.Route {
	var out []layout.Route
	for _, w := range routes {
		if !slices.ContainsFunc(k.routes, func(r kernelRoute) bool { return r.is(w) }) {
			out = append(out, w)
		}
	}
	return out
}

// unreachable reports whether adding a route failed because its next-hop
// cannot be reached now (the link to it is down).
func unreachable(err error) bool {
	return errors.Is(err, unix.ENETUNREACH) || errors.Is(err, unix.EHOSTUNREACH)
}

// addRouting adds the wanted rules and routes k lacks (before the steering
// that needs them), and reports what it did. A route whose next-hop is
// unreachable is skipped and reported in skipped, not an error: marked
// packets of that site then fall through to the main table (their old
// path), and a rollback away from a site whose link is down still works.
func addRouting(h *netlink.Handle, k kernelRouting, rules []layout.IPRule, routes []layout.Route) (done, skipped []string, err error) {
	for _, w := range routes {
		if slices.ContainsFunc(k.routes, func(r kernelRoute) bool { return r.is(w) }) {
			continue
		}
		dst := &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
		fam := netlink.FAMILY_V4
		if w.V6 {
			dst, fam = &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}, netlink.FAMILY_V6
		}
		// Replace: a default route via another next-hop is switched atomically.
		r := &netlink.Route{Family: fam, Table: w.Table, Dst: dst, Gw: w.Via.AsSlice()}
		if err := h.RouteReplace(r); err != nil {
			if unreachable(err) {
				skipped = append(skipped, fmt.Sprintf("%s: not added: %v", w, err))
				continue
			}
			return done, skipped, fmt.Errorf("add %s: %w", w, err)
		}
		done = append(done, w.String())
	}
	for _, w := range rules {
		if slices.Contains(k.rules, w) {
			continue
		}
		r := netlink.NewRule()
		r.Family = netlink.FAMILY_V4
		if w.V6 {
			r.Family = netlink.FAMILY_V6
		}
		r.Priority, r.Mark, r.Table = w.Priority, w.Mark, w.Table
		if err := h.RuleAdd(r); err != nil && !errors.Is(err, unix.EEXIST) {
			return done, skipped, fmt.Errorf("add %s: %w", w, err)
		}
		done = append(done, w.String())
	}
	return done, skipped, nil
}

// removeRouting deletes the rules and routes in k that are not wanted
// (after the steering that used them is gone). All are tried; the errors are
// joined.
func removeRouting(h *netlink.Handle, k kernelRouting, rules []layout.IPRule, routes []layout.Route) error {
	var errs []error
	for _, r := range k.rules {
		if slices.Contains(rules, r) {
			continue
		}
		nr := netlink.NewRule()
		nr.Family = netlink.FAMILY_V4
		if r.V6 {
			nr.Family = netlink.FAMILY_V6
		}
		nr.Priority, nr.Mark, nr.Table = r.Priority, r.Mark, r.Table
		if err := h.RuleDel(nr); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("delete %s: %w", r, err))
		}
	}
	for _, r := range k.routes {
		if slices.ContainsFunc(routes, func(w layout.Route) bool { return r.is(w) }) {
			continue
		}
		// A default route that addRouting replaced is gone already: ESRCH
		// (the kernel matches the gateway too, so the new route stays).
		raw := r.raw
		if err := h.RouteDel(&raw); err != nil && !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("delete %s: %w", r, err))
		}
	}
	return errors.Join(errs...)
}
