package lab

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/rs/zerolog"
	"github.com/vishvananda/netlink"

	"github.com/cutover/cutover/internal/testenv"
)

// BenchmarkEdgeFIB reads the edge's FIB holding n more-specific routes, as
// a convergence check polls it.
func BenchmarkEdgeFIB(b *testing.B) {
	testenv.RequireFRR(b)
	name := testName()
	log := zerolog.New(zerolog.NewTestWriter(b))
	ctx := context.Background()
	b.Cleanup(func() { Down(ctx, name, log) })
	l, err := Up(ctx, Config{Name: name, VMs: []netip.Prefix{}}, log)
	if err != nil {
		b.Fatal(err)
	}
	h, err := l.openHandles(NodeEdge)
	if err != nil {
		b.Fatal(err)
	}
	defer h.close()
	gw := l.Topology().SiteNextHop[NodeSKM2].V4.AsSlice()
	added := 0
	for _, n := range []int{2000, 10000, 50000} {
		for _, p := range DefaultVMs(n)[added:] {
			if err := h.nl[NodeEdge].RouteAdd(&netlink.Route{Dst: ipNet(p), Gw: gw}); err != nil {
				b.Fatal(err)
			}
		}
		added = n
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			for b.Loop() {
				fib, err := l.EdgeFIB(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if len(fib) < n {
					b.Fatalf("%d routes, want >= %d", len(fib), n)
				}
			}
		})
	}
}
