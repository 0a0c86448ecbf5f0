package gobgp

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	api "github.com/osrg/gobgp/v3/api"
	gobgp "github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/cutover/cutover/bgp"
)

var (
	familyV4 = &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	familyV6 = &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
)

// famIndex is 0 for an IPv4 prefix, 1 for IPv6.
func famIndex(p netip.Prefix) int {
	if p.Addr().Is4() {
		return 0
	}
	return 1
}

func familyOf(p netip.Prefix) *api.Family {
	if p.Addr().Is4() {
		return familyV4
	}
	return familyV6
}

// sameAttrs reports whether a and b carry the same attributes (all but
// the prefix).
func sameAttrs(a, b bgp.Route) bool {
	return a.NextHop == b.NextHop && a.LocalPref == b.LocalPref &&
		(a.MED == nil) == (b.MED == nil) && (a.MED == nil || *a.MED == *b.MED) &&
		slices.Equal(a.Communities, b.Communities) && slices.Equal(a.LargeCommunities, b.LargeCommunities) &&
		a.Prepend == b.Prepend
}

// attrID names a distinct attribute set in the encoder's table.
type attrID uint32

// attrSet is one distinct attribute set: a route without its prefix, and
// its wire encoding.
type attrSet struct {
	route  bgp.Route // Prefix unset
	pattrs [][]byte
}

// encoder turns routes into GoBGP API paths in wire format (NlriBinary and
// PattrsBinary), which GoBGP decodes much faster than protobuf Any
// attributes. The routes of a run share a handful of attribute sets (one
// per site and family), so each set is interned once and a route is held
// as its prefix and the set's attrID: the speaker's table of 50,000
// routes costs a map of small values, and diffing compares two numbers.
// Not safe for concurrent use.
type encoder struct {
	localAS uint32
	ids     map[attrKey]attrID
	sets    []attrSet
	// last is the set of the route interned last: consecutive routes
	// mostly share it, and comparing is cheaper than building a key.
	last    attrID
	hasLast bool
}

// attrKey identifies the attributes of a route other than its prefix.
type attrKey struct {
	nextHop netip.Addr
	rest    string // local-pref, MED, communities, prepend, as text
}

func newEncoder(localAS uint32) *encoder {
	return &encoder{localAS: localAS, ids: map[attrKey]attrID{}}
}

func keyOf(r bgp.Route) attrKey {
	var b strings.Builder
	b.WriteString(strconv.FormatUint(uint64(r.LocalPref), 10))
	if r.MED != nil {
		b.WriteString(" m")
		b.WriteString(strconv.FormatUint(uint64(*r.MED), 10))
	}
	for _, c := range r.Communities {
		b.WriteString(" c")
		b.WriteString(strconv.FormatUint(uint64(c), 10))
	}
	for _, c := range r.LargeCommunities {
		fmt.Fprintf(&b, " l%d:%d:%d", c.Global, c.Local1, c.Local2)
	}
	b.WriteString(" p")
	b.WriteString(strconv.Itoa(int(r.Prepend)))
	return attrKey{nextHop: r.NextHop, rest: b.String()}
}

// intern returns the attrID of r's attributes, encoding them the first
// time they are seen.
func (e *encoder) intern(r bgp.Route) (attrID, error) {
	if e.hasLast && sameAttrs(e.sets[e.last].route, r) {
		return e.last, nil
	}
	k := keyOf(r)
	id, ok := e.ids[k]
	if !ok {
		pattrs, err := e.encodeAttrs(r)
		if err != nil {
			return 0, fmt.Errorf("encode attributes of %s: %w", r, err)
		}
		a := r
		a.Prefix = netip.Prefix{}
		a.Communities = slices.Clone(r.Communities)
		a.LargeCommunities = slices.Clone(r.LargeCommunities)
		if r.MED != nil {
			med := *r.MED
			a.MED = &med
		}
		id = attrID(len(e.sets))
		e.sets = append(e.sets, attrSet{route: a, pattrs: pattrs})
		e.ids[k] = id
	}
	e.last, e.hasLast = id, true
	return id, nil
}

// route returns the route of prefix p with the attributes id.
func (e *encoder) route(p netip.Prefix, id attrID) bgp.Route {
	r := e.sets[id].route
	r.Prefix = p
	return r
}

// path returns the API path that announces prefix p with the attributes
// id (or withdraws it).
func (e *encoder) path(p netip.Prefix, id attrID, withdraw bool) *api.Path {
	return &api.Path{
		Family:       familyOf(p),
		NlriBinary:   nlri(p),
		PattrsBinary: e.sets[id].pattrs,
		IsWithdraw:   withdraw,
	}
}

// encodeAttrs encodes ORIGIN IGP, AS_PATH (the local AS Prepend times; the
// speaker adds one more towards eBGP peers), NEXT_HOP (GoBGP turns an IPv6
// one into MP_REACH_NLRI), MED, LOCAL_PREF (GoBGP sends it to iBGP peers
// only), COMMUNITIES and LARGE_COMMUNITY.
func (e *encoder) encodeAttrs(r bgp.Route) ([][]byte, error) {
	var as []uint32
	for range r.Prepend {
		as = append(as, e.localAS)
	}
	var segs []gobgp.AsPathParamInterface
	if len(as) > 0 {
		segs = append(segs, gobgp.NewAs4PathParam(gobgp.BGP_ASPATH_ATTR_TYPE_SEQ, as))
	}
	list := []gobgp.PathAttributeInterface{
		gobgp.NewPathAttributeOrigin(gobgp.BGP_ORIGIN_ATTR_TYPE_IGP),
		gobgp.NewPathAttributeAsPath(segs),
		&gobgp.PathAttributeNextHop{
			PathAttribute: gobgp.PathAttribute{Flags: gobgp.PathAttrFlags[gobgp.BGP_ATTR_TYPE_NEXT_HOP], Type: gobgp.BGP_ATTR_TYPE_NEXT_HOP},
			Value:         net.IP(r.NextHop.AsSlice()),
		},
	}
	if r.MED != nil {
		list = append(list, gobgp.NewPathAttributeMultiExitDisc(*r.MED))
	}
	if r.LocalPref != 0 {
		list = append(list, gobgp.NewPathAttributeLocalPref(r.LocalPref))
	}
	if len(r.Communities) > 0 {
		cs := make([]uint32, len(r.Communities))
		for i, c := range r.Communities {
			cs[i] = uint32(c)
		}
		list = append(list, gobgp.NewPathAttributeCommunities(cs))
	}
	if len(r.LargeCommunities) > 0 {
		ls := make([]*gobgp.LargeCommunity, len(r.LargeCommunities))
		for i, c := range r.LargeCommunities {
			ls[i] = gobgp.NewLargeCommunity(c.Global, c.Local1, c.Local2)
		}
		list = append(list, gobgp.NewPathAttributeLargeCommunities(ls))
	}
	out := make([][]byte, len(list))
	for i, a := range list {
		b, err := a.Serialize()
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

// nlri encodes p as a BGP NLRI: length in bits, then the significant bytes.
func nlri(p netip.Prefix) []byte {
	n := (p.Bits() + 7) / 8
	b := make([]byte, 1+n)
	b[0] = byte(p.Bits())
	a := p.Addr().AsSlice()
	copy(b[1:], a[:n])
	return b
}

// heldFrom reads an Adj-RIB-In path as GoBGP's watch reports it: its
// prefix, next-hop, and whether localAS is on its AS_PATH. ok is false for
// paths it cannot read (other families).
func heldFrom(p *api.Path, localAS uint32) (netip.Prefix, bgp.Held, bool) {
	var n api.IPAddressPrefix
	if p.Nlri == nil || p.Nlri.UnmarshalTo(&n) != nil {
		return netip.Prefix{}, bgp.Held{}, false
	}
	a, err := netip.ParseAddr(n.Prefix)
	if err != nil {
		return netip.Prefix{}, bgp.Held{}, false
	}
	prefix := netip.PrefixFrom(a.Unmap(), int(n.PrefixLen))
	var h bgp.Held
	for _, raw := range p.Pattrs {
		var (
			nh    api.NextHopAttribute
			mp    api.MpReachNLRIAttribute
			aspth api.AsPathAttribute
		)
		switch {
		case raw.MessageIs(&nh):
			if raw.UnmarshalTo(&nh) == nil {
				h.NextHop, _ = netip.ParseAddr(nh.NextHop)
			}
		case raw.MessageIs(&mp):
			if raw.UnmarshalTo(&mp) == nil && len(mp.NextHops) > 0 && !h.NextHop.IsValid() {
				h.NextHop, _ = netip.ParseAddr(mp.NextHops[0])
			}
		case raw.MessageIs(&aspth):
			if raw.UnmarshalTo(&aspth) == nil {
				for _, seg := range aspth.Segments {
					if slices.Contains(seg.Numbers, localAS) {
						h.Ours = true
					}
				}
			}
		}
	}
	h.NextHop = h.NextHop.Unmap()
	return prefix, h, prefix.IsValid()
}
