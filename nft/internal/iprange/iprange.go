// Package iprange is inclusive ranges of IP addresses, the form in which
// package nft and its kernel implementation (nft/kernel) compare and program
// the sets of moved addresses.
//
// The kernel's interval sets hold ranges, not prefixes: a prefix is a start
// element and an end element whose key is the last address + 1 (none when
// the last address is the family's highest). The tool merges the prefixes of
// a set into the fewest ranges (like nft's auto-merge): a batch of adjacent
// VM addresses then costs two kernel elements instead of two per address,
// which keeps the transaction and the read-back small. Everything that
// compares sets compares address ranges.
package iprange

import (
	"math/bits"
	"net/netip"
	"slices"
)

// Range is the inclusive range of addresses From..To, both of one family.
type Range struct {
	From, To netip.Addr
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

// FromPrefix returns the addresses of p (which must be valid).
func FromPrefix(p netip.Prefix) Range {
	if p.IsSingleIP() {
		return Range{p.Addr(), p.Addr()}
	}
	p = p.Masked()
	from := p.Addr()
	host := from.BitLen() - p.Bits()
	return Range{from, fromU128(toU128(from).add(lowMask(host)), from.Is4())}
}

// Prefix returns r as a prefix when it is exactly one.
func (r Range) Prefix() (netip.Prefix, bool) {
	ps := r.AppendPrefixes(nil)
	if len(ps) != 1 {
		return netip.Prefix{}, false
	}
	return ps[0], true
}

// AppendPrefixes appends to dst the fewest prefixes that cover exactly r.
func (r Range) AppendPrefixes(dst []netip.Prefix) []netip.Prefix {
	if r.From == r.To {
		return append(dst, netip.PrefixFrom(r.From, r.From.BitLen()))
	}
	v4 := r.From.Is4()
	width := r.From.BitLen()
	from, to := toU128(r.From), toU128(r.To)
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
func (r Range) String() string {
	if p, ok := r.Prefix(); ok {
		if p.IsSingleIP() {
			return p.Addr().String()
		}
		return p.String()
	}
	return r.From.String() + "-" + r.To.String()
}

// Compare orders ranges by their first, then their last address.
func Compare(a, b Range) int {
	if c := a.From.Compare(b.From); c != 0 {
		return c
	}
	return a.To.Compare(b.To)
}

// Merge sorts rs and merges overlapping and adjacent ranges, in place. The
// result is merged: sorted, disjoint and not adjacent.
func Merge(rs []Range) []Range {
	if len(rs) < 2 {
		return rs
	}
	if !slices.IsSortedFunc(rs, Compare) {
		slices.SortFunc(rs, Compare)
	}
	out := rs[:1]
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		// next is invalid when last runs to the highest address.
		if next := last.To.Next(); r.From.BitLen() == last.From.BitLen() &&
			(!next.IsValid() || r.From.Compare(next) <= 0) {
			if r.To.Compare(last.To) > 0 {
				last.To = r.To
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// Subtract returns the addresses of a that are not in b; both must be
// merged (sorted, disjoint, not adjacent).
func Subtract(a, b []Range) []Range {
	if len(b) == 0 {
		return slices.Clone(a)
	}
	out := make([]Range, 0, len(a))
	j := 0
	for _, r := range a {
		cur := r
		for j < len(b) && b[j].To.Compare(cur.From) < 0 {
			j++
		}
		k := j
		for ; k < len(b) && b[k].From.Compare(cur.To) <= 0; k++ {
			if b[k].From.Compare(cur.From) > 0 {
				out = append(out, Range{cur.From, b[k].From.Prev()})
			}
			if b[k].To.Compare(cur.To) >= 0 {
				cur.From = netip.Addr{}
				break
			}
			cur.From = b[k].To.Next()
		}
		if cur.From.IsValid() {
			out = append(out, cur)
		}
	}
	return out
}

// Locate places r against a for a binary search over sorted ranges: -1
// when r lies before a, 1 when after, 0 when r holds a.
func (r Range) Locate(a netip.Addr) int {
	if r.To.Compare(a) < 0 {
		return -1
	}
	if r.From.Compare(a) > 0 {
		return 1
	}
	return 0
}

// Contains reports whether a is in one of rs (merged).
func Contains(rs []Range, a netip.Addr) bool {
	i, _ := slices.BinarySearchFunc(rs, a, Range.Locate)
	return i < len(rs) && rs[i].From.Compare(a) <= 0 && a.Compare(rs[i].To) <= 0
}

// Prefixes returns the fewest prefixes that cover rs.
func Prefixes(rs []Range) []netip.Prefix {
	ps := make([]netip.Prefix, 0, len(rs))
	for _, r := range rs {
		ps = r.AppendPrefixes(ps)
	}
	return ps
}

// Hosts returns addrs (of one family, in any order, as a hash set lists
// them) as sorted single-address ranges, without duplicates.
func Hosts(addrs []netip.Addr) []Range {
	keys := make([]u128, len(addrs))
	for i, a := range addrs {
		keys[i] = toU128(a)
	}
	// One family: sort numbers, not netip.Addrs.
	slices.SortFunc(keys, func(a, b u128) int {
		if a.less(b) {
			return -1
		}
		if b.less(a) {
			return 1
		}
		return 0
	})
	keys = slices.Compact(keys)
	is4 := len(addrs) > 0 && addrs[0].Is4()
	rs := make([]Range, len(keys))
	for i, k := range keys {
		a := fromU128(k, is4)
		rs[i] = Range{a, a}
	}
	return rs
}

// Last returns the highest address of the family: 255.255.255.255 or
// ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff.
func Last(v4 bool) netip.Addr {
	if v4 {
		return netip.AddrFrom4([4]byte{255, 255, 255, 255})
	}
	return fromU128(u128{^uint64(0), ^uint64(0)}, false)
}
