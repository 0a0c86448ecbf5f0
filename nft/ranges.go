package nft

import (
	"cmp"
	"math/bits"
	"net/netip"
	"slices"
)

// The kernel's interval sets hold ranges, not prefixes: a prefix is a start
// element and an end element whose key is the last address + 1 (none when
// the last address is the family's highest). The tool merges the prefixes of
// a set into the fewest ranges (like nft's auto-merge): a batch of adjacent
// VM addresses then costs two kernel elements instead of two per address,
// which keeps the transaction and the read-back small. Everything that
// compares sets compares address ranges.

// ipRange is the inclusive range of addresses from..to, both of one family.
type ipRange struct {
	from, to netip.Addr
}

// u128 is an address as a number; IPv4 uses the low 32 bits.
type u128 struct{ hi, lo uint64 }

func toU128(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u128{lo: uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])}
	}
	b := a.As16()
	var u u128
	for i := 0; i < 8; i++ {
		u.hi = u.hi<<8 | uint64(b[i])
		u.lo = u.lo<<8 | uint64(b[i+8])
	}
	return u
}

func fromU128(u u128, v4 bool) netip.Addr {
	if v4 {
		return netip.AddrFrom4([4]byte{byte(u.lo >> 24), byte(u.lo >> 16), byte(u.lo >> 8), byte(u.lo)})
	}
	var b [16]byte
	for i := 7; i >= 0; i-- {
		b[i] = byte(u.hi)
		b[i+8] = byte(u.lo)
		u.hi >>= 8
		u.lo >>= 8
	}
	return netip.AddrFrom16(b)
}

func (u u128) add(v u128) u128 {
	lo, c := bits.Add64(u.lo, v.lo, 0)
	hi, _ := bits.Add64(u.hi, v.hi, c)
	return u128{hi, lo}
}

func (u u128) less(v u128) bool { return u.hi < v.hi || (u.hi == v.hi && u.lo < v.lo) }

func (u u128) trailingZeros() int {
	if u.lo != 0 {
		return bits.TrailingZeros64(u.lo)
	}
	if u.hi != 0 {
		return 64 + bits.TrailingZeros64(u.hi)
	}
	return 128
}

// lowMask returns a number whose n low bits are set.
func lowMask(n int) u128 {
	switch {
	case n <= 0:
		return u128{}
	case n < 64:
		return u128{lo: 1<<n - 1}
	case n < 128:
		return u128{hi: 1<<(n-64) - 1, lo: ^uint64(0)}
	default:
		return u128{^uint64(0), ^uint64(0)}
	}
}

// prefixRange returns the addresses of p (which must be valid).
func prefixRange(p netip.Prefix) ipRange {
	if p.IsSingleIP() {
		return ipRange{p.Addr(), p.Addr()}
	}
	p = p.Masked()
	from := p.Addr()
	host := from.BitLen() - p.Bits()
	return ipRange{from, fromU128(toU128(from).add(lowMask(host)), from.Is4())}
}

// prefix returns r as a prefix when it is exactly one.
func (r ipRange) prefix() (netip.Prefix, bool) {
	ps := r.prefixes(nil)
	if len(ps) != 1 {
		return netip.Prefix{}, false
	}
	return ps[0], true
}

// prefixes appends to dst the fewest prefixes that cover exactly r.
func (r ipRange) prefixes(dst []netip.Prefix) []netip.Prefix {
	if r.from == r.to {
		return append(dst, netip.PrefixFrom(r.from, r.from.BitLen()))
	}
	v4 := r.from.Is4()
	width := r.from.BitLen()
	from, to := toU128(r.from), toU128(r.to)
	for !to.less(from) {
		// The largest block that starts at from and ends at or before to.
		host := min(from.trailingZeros(), width)
		for host > 0 && to.less(from.add(lowMask(host))) {
			host--
		}
		dst = append(dst, netip.PrefixFrom(fromU128(from, v4), width-host))
		next := from.add(lowMask(host)).add(u128{lo: 1})
		if host == width || (v4 && next.lo > 0xffffffff) || (!v4 && next == (u128{})) {
			break // wrapped past the highest address
		}
		from = next
	}
	return dst
}

// String returns r as nft writes an interval set element: "10.0.0.5",
// "10.0.0.0/24" or "10.0.0.1-10.0.0.5".
func (r ipRange) String() string {
	if p, ok := r.prefix(); ok {
		if p.IsSingleIP() {
			return p.Addr().String()
		}
		return p.String()
	}
	return r.from.String() + "-" + r.to.String()
}

func compareRanges(a, b ipRange) int {
	if c := a.from.Compare(b.from); c != 0 {
		return c
	}
	return a.to.Compare(b.to)
}

// mergeRanges sorts rs and merges overlapping and adjacent ranges, in place.
func mergeRanges(rs []ipRange) []ipRange {
	if len(rs) < 2 {
		return rs
	}
	if !slices.IsSortedFunc(rs, compareRanges) {
		slices.SortFunc(rs, compareRanges)
	}
	out := rs[:1]
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		// next is invalid when last runs to the highest address.
		if next := last.to.Next(); r.from.BitLen() == last.from.BitLen() &&
			(!next.IsValid() || r.from.Compare(next) <= 0) {
			if r.to.Compare(last.to) > 0 {
				last.to = r.to
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// subtractRanges returns the addresses of a that are not in b; both must be
// merged (sorted, disjoint, not adjacent).
func subtractRanges(a, b []ipRange) []ipRange {
	if len(b) == 0 {
		return slices.Clone(a)
	}
	out := make([]ipRange, 0, len(a))
	j := 0
	for _, r := range a {
		cur := r
		for j < len(b) && b[j].to.Compare(cur.from) < 0 {
			j++
		}
		k := j
		for ; k < len(b) && b[k].from.Compare(cur.to) <= 0; k++ {
			if b[k].from.Compare(cur.from) > 0 {
				out = append(out, ipRange{cur.from, b[k].from.Prev()})
			}
			if b[k].to.Compare(cur.to) >= 0 {
				cur.from = netip.Addr{}
				break
			}
			cur.from = b[k].to.Next()
		}
		if cur.from.IsValid() {
			out = append(out, cur)
		}
	}
	return out
}

// rangesContain reports whether a is in one of rs (merged).
func rangesContain(rs []ipRange, a netip.Addr) bool {
	i, _ := slices.BinarySearchFunc(rs, a, func(r ipRange, a netip.Addr) int {
		if r.to.Compare(a) < 0 {
			return -1
		}
		if r.from.Compare(a) > 0 {
			return 1
		}
		return 0
	})
	return i < len(rs) && rs[i].from.Compare(a) <= 0 && a.Compare(rs[i].to) <= 0
}

// rangesToElements appends to dst the prefixes that cover rs, as elements of
// set.
func rangesToElements(dst []Element, set string, rs []ipRange) []Element {
	dst = slices.Grow(dst, len(rs))
	var ps []netip.Prefix
	for _, r := range rs {
		ps = r.prefixes(ps[:0])
		for _, p := range ps {
			dst = append(dst, Element{Set: set, Prefix: p})
		}
	}
	return dst
}

// kernelElem is one element of an interval set as the kernel holds it.
type kernelElem struct {
	key netip.Addr
	end bool // NFT_SET_ELEM_INTERVAL_END
}

// rangeElements returns the kernel elements of r: a start element and, unless
// r ends at the family's highest address, an end element keyed last + 1.
func rangeElements(r ipRange) (start kernelElem, end kernelElem, hasEnd bool) {
	next := r.to.Next()
	return kernelElem{key: r.from}, kernelElem{key: next, end: true}, next.IsValid()
}

// elementsToRanges turns the elements of an interval set of one family, in any
// order, back into ranges. An end element with no start before it is skipped:
// nft adds one keyed 0.0.0.0 (or ::) to every interval set it writes. A
// start element with no end runs to the highest address. It reports the
// elements it could not pair.
func elementsToRanges(es []kernelElem) (rs []ipRange, stray []kernelElem) {
	byKey := func(a, b kernelElem) int {
		if c := a.key.Compare(b.key); c != 0 {
			return c
		}
		// At equal keys the end of one range comes before the start of the
		// next one.
		return cmp.Compare(btoi(!a.end), btoi(!b.end))
	}
	// The kernel lists an interval set in descending order.
	if slices.IsSortedFunc(es, func(a, b kernelElem) int { return byKey(b, a) }) {
		slices.Reverse(es)
	} else if !slices.IsSortedFunc(es, byKey) {
		slices.SortFunc(es, byKey)
	}
	var open netip.Addr
	for _, e := range es {
		switch {
		case !e.end && open.IsValid():
			stray = append(stray, kernelElem{key: open})
			open = e.key
		case !e.end:
			open = e.key
		case open.IsValid():
			if e.key.Compare(open) <= 0 {
				stray = append(stray, kernelElem{key: open}, e)
			} else {
				rs = append(rs, ipRange{open, e.key.Prev()})
			}
			open = netip.Addr{}
		case e.key.IsUnspecified():
			// nft's leading interval end.
		default:
			stray = append(stray, e)
		}
	}
	if open.IsValid() {
		rs = append(rs, ipRange{open, maxAddr(open.Is4())})
	}
	return rs, stray
}

// maxAddr returns 255.255.255.255 or ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff.
func maxAddr(v4 bool) netip.Addr {
	if v4 {
		return netip.AddrFrom4([4]byte{255, 255, 255, 255})
	}
	return fromU128(u128{^uint64(0), ^uint64(0)}, false)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
