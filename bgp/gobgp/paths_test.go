package gobgp

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/cutover/cutover/bgp"
)

func TestEncoderInterns(t *testing.T) {
	med1, med1b, med2 := uint32(1), uint32(1), uint32(2)
	nh1, nh2 := netip.MustParseAddr("10.255.1.2"), netip.MustParseAddr("10.255.2.2")
	rt := func(p string, nh netip.Addr, mod func(*bgp.Route)) bgp.Route {
		r := bgp.Route{Prefix: netip.MustParsePrefix(p), NextHop: nh, LocalPref: 100, Communities: []bgp.Community{65100<<16 | 2}}
		if mod != nil {
			mod(&r)
		}
		return r
	}
	routes := []bgp.Route{
		rt("10.64.0.1/32", nh2, nil),
		rt("10.64.0.2/32", nh2, nil),                                   // same set as the first
		rt("10.64.0.3/32", nh1, nil),                                   // other next-hop
		rt("10.64.0.4/32", nh2, func(r *bgp.Route) { r.MED = &med1 }),  // MED
		rt("10.64.0.5/32", nh2, func(r *bgp.Route) { r.MED = &med1b }), // equal MED, other pointer
		rt("10.64.0.6/32", nh2, func(r *bgp.Route) { r.MED = &med2 }),  // other MED
		rt("10.64.0.7/32", nh2, func(r *bgp.Route) { r.Prepend = 2 }),  // prepend
		rt("10.64.0.8/32", nh2, func(r *bgp.Route) { r.Communities = nil }),
		rt("10.64.0.9/32", nh2, nil), // back to the first set, after others
	}
	want := []attrID{0, 0, 1, 2, 2, 3, 4, 5, 0}
	e := newEncoder(65100)
	for i, r := range routes {
		id, err := e.intern(r)
		if err != nil {
			t.Fatal(err)
		}
		if id != want[i] {
			t.Errorf("route %d (%s): set %d, want %d", i, r, id, want[i])
		}
		if got := e.route(r.Prefix, id); !reflect.DeepEqual(got, r) {
			t.Errorf("route %d: read back %+v, want %+v", i, got, r)
		}
		p := e.path(r.Prefix, id, false)
		if !reflect.DeepEqual(p.NlriBinary, nlri(r.Prefix)) || len(p.PattrsBinary) == 0 || p.IsWithdraw {
			t.Errorf("route %d: path %+v", i, p)
		}
	}
	// The interned set owns its slices: changing the caller's does not
	// change what is announced.
	routes[0].Communities[0] = 1
	if got := e.route(routes[0].Prefix, 0).Communities[0]; got != 65100<<16|2 {
		t.Errorf("community of set 0 changed with the caller's slice: %d", got)
	}
}
