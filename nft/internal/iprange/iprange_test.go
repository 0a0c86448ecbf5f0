package iprange

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func ma(s string) netip.Addr { return netip.MustParseAddr(s) }

func rng(from, to string) Range { return Range{ma(from), ma(to)} }

func rangesString(rs []Range) string {
	var ss []string
	for _, r := range rs {
		ss = append(ss, r.String())
	}
	return strings.Join(ss, " ")
}

func TestPrefixRange(t *testing.T) {
	for _, tt := range []struct{ p, want string }{
		{"10.0.0.5/32", "10.0.0.5"},
		{"10.0.0.0/24", "10.0.0.0/24"},
		{"0.0.0.0/0", "0.0.0.0/0"},
		{"255.255.255.255/32", "255.255.255.255"},
		{"2001:db8::/64", "2001:db8::/64"},
		{"::/0", "::/0"},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
	} {
		r := FromPrefix(netip.MustParsePrefix(tt.p))
		if r.String() != tt.want {
			t.Errorf("FromPrefix(%s) = %s (%s-%s), want %s", tt.p, r, r.From, r.To, tt.want)
		}
	}
	if r := FromPrefix(netip.MustParsePrefix("10.1.2.0/23")); r != rng("10.1.2.0", "10.1.3.255") {
		t.Errorf("FromPrefix(10.1.2.0/23) = %s-%s", r.From, r.To)
	}
}

func TestRangePrefixes(t *testing.T) {
	for _, tt := range []struct {
		r    Range
		want string
	}{
		{rng("10.0.0.1", "10.0.0.5"), "[10.0.0.1/32 10.0.0.2/31 10.0.0.4/31]"},
		{rng("10.0.0.0", "10.0.0.255"), "[10.0.0.0/24]"},
		{rng("0.0.0.0", "255.255.255.255"), "[0.0.0.0/0]"},
		{rng("255.255.255.254", "255.255.255.255"), "[255.255.255.254/31]"},
		{rng("255.255.255.255", "255.255.255.255"), "[255.255.255.255/32]"},
		{rng("0.0.0.1", "255.255.255.255"), "[0.0.0.1/32 0.0.0.2/31 0.0.0.4/30 0.0.0.8/29 0.0.0.16/28 0.0.0.32/27 " +
			"0.0.0.64/26 0.0.0.128/25 0.0.1.0/24 0.0.2.0/23 0.0.4.0/22 0.0.8.0/21 0.0.16.0/20 0.0.32.0/19 0.0.64.0/18 " +
			"0.0.128.0/17 0.1.0.0/16 0.2.0.0/15 0.4.0.0/14 0.8.0.0/13 0.16.0.0/12 0.32.0.0/11 0.64.0.0/10 0.128.0.0/9 " +
			"1.0.0.0/8 2.0.0.0/7 4.0.0.0/6 8.0.0.0/5 16.0.0.0/4 32.0.0.0/3 64.0.0.0/2 128.0.0.0/1]"},
		{rng("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), "[::/0]"},
		{rng("2001:db8::ffff", "2001:db8::1:0"), "[2001:db8::ffff/128 2001:db8::1:0/128]"},
		{rng("2001:db8::", "2001:db8:0:1:ffff:ffff:ffff:ffff"), "[2001:db8::/63]"},
	} {
		if got := fmt.Sprint(tt.r.AppendPrefixes(nil)); got != tt.want {
			t.Errorf("%s-%s prefixes = %s, want %s", tt.r.From, tt.r.To, got, tt.want)
		}
	}
}

func TestMergeRanges(t *testing.T) {
	for _, tt := range []struct {
		in   []Range
		want string
	}{
		{nil, ""},
		{[]Range{rng("10.0.0.2", "10.0.0.2"), rng("10.0.0.1", "10.0.0.1"), rng("10.0.0.3", "10.0.0.3")}, "10.0.0.1-10.0.0.3"},
		{[]Range{rng("10.0.0.0", "10.0.0.255"), rng("10.0.0.5", "10.0.0.5"), rng("10.0.2.0", "10.0.2.0")}, "10.0.0.0/24 10.0.2.0"},
		{[]Range{rng("10.0.0.0", "10.0.0.127"), rng("10.0.0.128", "10.0.0.255")}, "10.0.0.0/24"},
		// The highest IPv4 address is not adjacent to ::.
		{[]Range{rng("::", "::"), rng("255.255.255.255", "255.255.255.255")}, "255.255.255.255 ::"},
		{[]Range{rng("255.255.255.254", "255.255.255.254"), rng("255.255.255.255", "255.255.255.255")}, "255.255.255.254/31"},
	} {
		if got := rangesString(Merge(slices.Clone(tt.in))); got != tt.want {
			t.Errorf("Merge(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSubtractRanges(t *testing.T) {
	a := []Range{rng("10.0.0.0", "10.0.0.255"), rng("10.0.2.0", "10.0.2.9"), rng("2001:db8::", "2001:db8::ff")}
	for _, tt := range []struct {
		b    []Range
		want string
	}{
		{nil, "10.0.0.0/24 10.0.2.0-10.0.2.9 2001:db8::/120"},
		{a, ""},
		{[]Range{rng("10.0.0.5", "10.0.0.5")}, "10.0.0.0-10.0.0.4 10.0.0.6-10.0.0.255 10.0.2.0-10.0.2.9 2001:db8::/120"},
		{[]Range{rng("9.0.0.0", "10.0.0.127"), rng("10.0.2.5", "10.0.3.0")}, "10.0.0.128/25 10.0.2.0-10.0.2.4 2001:db8::/120"},
		{[]Range{rng("10.0.0.0", "10.0.0.0"), rng("10.0.0.255", "10.0.0.255"), rng("::", "2001:db8::7f")},
			"10.0.0.1-10.0.0.254 10.0.2.0-10.0.2.9 2001:db8::80/121"},
	} {
		if got := rangesString(Subtract(a, tt.b)); got != tt.want {
			t.Errorf("a - %v = %q, want %q", tt.b, got, tt.want)
		}
	}
}

// TestRangesProperties checks merge, subtract and prefixes against a bitmap
// of the 512 addresses 10.0.0.0-10.0.1.255 with random prefixes.
func TestRangesProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	base := toU128(ma("10.0.0.0"))
	randomPrefixes := func() ([]Range, [512]bool) {
		var bits [512]bool
		var rs []Range
		for range r.IntN(12) {
			plen := 23 + r.IntN(10)
			a := fromU128(base.add(u128{lo: uint64(r.IntN(512))}), true)
			p, _ := a.Prefix(plen)
			pr := FromPrefix(p)
			rs = append(rs, pr)
			for x := toU128(pr.From).lo - base.lo; x <= toU128(pr.To).lo-base.lo; x++ {
				bits[x] = true
			}
		}
		return rs, bits
	}
	toBits := func(rs []Range) [512]bool {
		var bits [512]bool
		for _, pr := range rs {
			for x := toU128(pr.From).lo - base.lo; x <= toU128(pr.To).lo-base.lo; x++ {
				bits[x] = true
			}
		}
		return bits
	}
	for i := range 2000 {
		a, abits := randomPrefixes()
		b, bbits := randomPrefixes()
		ma, mb := Merge(slices.Clone(a)), Merge(slices.Clone(b))
		if toBits(ma) != abits {
			t.Fatalf("case %d: merge(%v) = %v changes the addresses", i, a, ma)
		}
		for j := 1; j < len(ma); j++ {
			if ma[j-1].To.Next().Compare(ma[j].From) >= 0 {
				t.Fatalf("case %d: merge(%v) = %v leaves adjacent or overlapping ranges", i, a, ma)
			}
		}
		var want [512]bool
		for x := range want {
			want[x] = abits[x] && !bbits[x]
		}
		if got := Subtract(ma, mb); toBits(got) != want {
			t.Fatalf("case %d: %v - %v = %v", i, ma, mb, got)
		}
		var ps []Range
		for _, p := range Prefixes(ma) {
			ps = append(ps, FromPrefix(p))
		}
		if toBits(ps) != abits {
			t.Fatalf("case %d: prefixes of %v = %v", i, ma, ps)
		}
	}
}

func TestHosts(t *testing.T) {
	for _, tt := range []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{"10.0.0.9", "10.0.0.1", "10.0.0.9", "10.0.0.2", "255.255.255.255"}, "10.0.0.1 10.0.0.2 10.0.0.9 255.255.255.255"},
		{[]string{"2001:db8::2", "2001:db8::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}, "2001:db8::1 2001:db8::2 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
	} {
		var addrs []netip.Addr
		for _, a := range tt.in {
			addrs = append(addrs, ma(a))
		}
		if got := rangesString(Hosts(addrs)); got != tt.want {
			t.Errorf("Hosts(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if Last(true) != ma("255.255.255.255") || Last(false) != ma("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff") {
		t.Errorf("Last = %s, %s", Last(true), Last(false))
	}
}
