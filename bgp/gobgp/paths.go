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

func familyOf(p netip.Prefix) *api.Family {
	if p.Addr().Is4() {
		return familyV4
	}
	return familyV6
}

// sameRoute reports whether a and b would be announced identically.
func sameRoute(a, b bgp.Route) bool {
	return a.Prefix == b.Prefix && a.NextHop == b.NextHop && a.LocalPref == b.LocalPref &&
		(a.MED == nil) == (b.MED == nil) && (a.MED == nil || *a.MED == *b.MED) &&
		slices.Equal(a.Communities, b.Communities) && slices.Equal(a.LargeCommunities, b.LargeCommunities) &&
		a.Prepend == b.Prepend
}

// encoder turns routes into GoBGP API paths in wire format (NlriBinary and
// PattrsBinary), which GoBGP decodes much faster than protobuf Any
// attributes. Routes of a batch mostly share their attributes, so each
// distinct attribute set is encoded once. Not safe for concurrent use.
type encoder struct {
	localAS uint32
	attrs   map[attrKey][][]byte
}

// attrKey identifies the attributes of a route other than its prefix.
type attrKey struct {
	nextHop netip.Addr
	rest    string // local-pref, MED, communities, prepend, as text
}

func newEncoder(localAS uint32) *encoder {
	return &encoder{localAS: localAS, attrs: map[attrKey][][]byte{}}
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

// path returns the API path that announces r (or withdraws it).
func (e *encoder) path(r bgp.Route, withdraw bool) (*api.Path, error) {
	k := keyOf(r)
	attrs, ok := e.attrs[k]
	if !ok {
		var err error
		if attrs, err = e.encodeAttrs(r); err != nil {
			return nil, fmt.Errorf("encode attributes of %s: %w", r, err)
		}
		e.attrs[k] = attrs
	}
	return &api.Path{
		Family:       familyOf(r.Prefix),
		NlriBinary:   nlri(r.Prefix),
		PattrsBinary: attrs,
		IsWithdraw:   withdraw,
	}, nil
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
