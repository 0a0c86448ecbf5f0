package bgplab

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/rs/zerolog"

	"github.com/cutover/cutover/bgp"
	"github.com/cutover/cutover/lab"
)

// ReferenceTimes is what the bare embedded GoBGP of Bench's reference took
// for one set of routes: from the call until the edge's kernel FIB held
// every route (Announce), and then held none of them (Withdraw).
type ReferenceTimes struct {
	Prefixes int
	Announce time.Duration
	Withdraw time.Duration
}

// MeasureReference times the bare embedded GoBGP of Bench's reference
// against the lab's first edge: it announces routes, then withdraws them,
// each timed from the call until the edge's kernel FIB holds the change.
// Before that, one route outside routes is announced and withdrawn, so
// that neither step waits for the session. It must run inside the lab's
// ctl namespace (see Command), with no other speaker holding the edge's
// session from there (a daemon of the lab stopped first). When the edge
// streams BMP, a station takes the stream for the measurement, as the
// daemon's does.
func MeasureReference(ctx context.Context, l *lab.Lab, routes []bgp.Route) (ReferenceTimes, error) {
	topo := l.Topology()
	probe, err := warmUpRoute(topo, routes)
	if err != nil {
		return ReferenceTimes{}, err
	}
	if topo.BMP.IsValid() {
		// The edge streams BMP to the lab's station while the daemon
		// runs, and that work is part of what the daemon's changes wait
		// for at the edge: the reference meets the same, as in Bench.
		sctx, stop := context.WithCancel(ctx)
		defer stop()
		if _, err := benchObserver(sctx, topo, BenchOptions{Observe: bgp.ProofBMP, Log: zerolog.Nop()}); err != nil {
			return ReferenceTimes{}, fmt.Errorf("reference: %w", err)
		}
	}
	fib, err := WatchFIB(l.Namespace(lab.NodeEdge))
	if err != nil {
		return ReferenceTimes{}, err
	}
	defer fib.Close()
	ref, err := newReference(ctx, topo)
	if err != nil {
		return ReferenceTimes{}, fmt.Errorf("reference: %w", err)
	}
	defer ref.Close()
	if _, err := change(ctx, ref, fib, []bgp.Route{probe}, FIBFor([]bgp.Route{probe}, nil)); err != nil {
		return ReferenceTimes{}, fmt.Errorf("reference: warm up: %w", err)
	}
	if _, err := change(ctx, ref, fib, nil, FIBFor(nil, []netip.Prefix{probe.Prefix})); err != nil {
		return ReferenceTimes{}, fmt.Errorf("reference: warm up: %w", err)
	}
	t := ReferenceTimes{Prefixes: len(routes)}
	if t.Announce, err = change(ctx, ref, fib, routes, FIBFor(routes, nil)); err != nil {
		return t, fmt.Errorf("reference: announce %d prefixes: %w", len(routes), err)
	}
	if t.Withdraw, err = change(ctx, ref, fib, nil, FIBFor(nil, prefixes(routes))); err != nil {
		return t, fmt.Errorf("reference: withdraw %d prefixes: %w", len(routes), err)
	}
	return t, nil
}

// warmUpRoute is a host route inside the lab's first IPv4 covering range
// that routes does not hold, via the IPv4 next-hop of routes (or of the
// lab's first site when routes have none).
func warmUpRoute(topo lab.Topology, routes []bgp.Route) (bgp.Route, error) {
	if len(routes) == 0 {
		return bgp.Route{}, fmt.Errorf("reference: no routes to measure")
	}
	var nh netip.Addr
	taken := make(map[netip.Prefix]bool, len(routes))
	for _, r := range routes {
		taken[r.Prefix] = true
		if !nh.IsValid() && r.NextHop.Is4() {
			nh = r.NextHop
		}
	}
	for _, s := range topo.Sites {
		if !nh.IsValid() {
			nh = s.NextHop.V4
		}
	}
	if !nh.IsValid() {
		return bgp.Route{}, fmt.Errorf("reference: no IPv4 next-hop for the warm-up route")
	}
	for _, c := range topo.Covering {
		if !c.Addr().Is4() {
			continue
		}
		for a := c.Addr(); c.Contains(a); a = a.Next() {
			if p := netip.PrefixFrom(a, 32); !taken[p] {
				return bgp.Route{Prefix: p, NextHop: nh}, nil
			}
		}
	}
	return bgp.Route{}, fmt.Errorf("reference: the lab has no free IPv4 address in its covering ranges for the warm-up route")
}
