package nft

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func ma(s string) netip.Addr { return netip.MustParseAddr(s) }

func rng(from, to string) ipRange { return ipRange{ma(from), ma(to)} }

func rangesString(rs []ipRange) string {
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
		r := prefixRange(netip.MustParsePrefix(tt.p))
		if r.String() != tt.want {
			t.Errorf("prefixRange(%s) = %s (%s-%s), want %s", tt.p, r, r.from, r.to, tt.want)
		}
	}
	if r := prefixRange(netip.MustParsePrefix("10.1.2.0/23")); r != rng("10.1.2.0", "10.1.3.255") {
		t.Errorf("prefixRange(10.1.2.0/23) = %s-%s", r.from, r.to)
	}
}

func TestRangePrefixes(t *testing.T) {
	for _, tt := range []struct {
		r    ipRange
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
		if got := fmt.Sprint(tt.r.prefixes(nil)); got != tt.want {
			t.Errorf("%s-%s prefixes = %s, want %s", tt.r.from, tt.r.to, got, tt.want)
		}
	}
}

func TestMergeRanges(t *testing.T) {
	for _, tt := range []struct {
		in   []ipRange
		want string
	}{
		{nil, ""},
		{[]ipRange{rng("10.0.0.2", "10.0.0.2"), rng("10.0.0.1", "10.0.0.1"), rng("10.0.0.3", "10.0.0.3")}, "10.0.0.1-10.0.0.3"},
		{[]ipRange{rng("10.0.0.0", "10.0.0.255"), rng("10.0.0.5", "10.0.0.5"), rng("10.0.2.0", "10.0.2.0")}, "10.0.0.0/24 10.0.2.0"},
		{[]ipRange{rng("10.0.0.0", "10.0.0.127"), rng("10.0.0.128", "10.0.0.255")}, "10.0.0.0/24"},
		// The highest IPv4 address is not adjacent to ::.
		{[]ipRange{rng("::", "::"), rng("255.255.255.255", "255.255.255.255")}, "255.255.255.255 ::"},
		{[]ipRange{rng("255.255.255.254", "255.255.255.254"), rng("255.255.255.255", "255.255.255.255")}, "255.255.255.254/31"},
	} {
		if got := rangesString(mergeRanges(slices.Clone(tt.in))); got != tt.want {
			t.Errorf("mergeRanges(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSubtractRanges(t *testing.T) {
	a := []ipRange{rng("10.0.0.0", "10.0.0.255"), rng("10.0.2.0", "10.0.2.9"), rng("2001:db8::", "2001:db8::ff")}
	for _, tt := range []struct {
		b    []ipRange
		want string
	}{
		{nil, "10.0.0.0/24 10.0.2.0-10.0.2.9 2001:db8::/120"},
		{a, ""},
		{[]ipRange{rng("10.0.0.5", "10.0.0.5")}, "10.0.0.0-10.0.0.4 10.0.0.6-10.0.0.255 10.0.2.0-10.0.2.9 2001:db8::/120"},
		{[]ipRange{rng("9.0.0.0", "10.0.0.127"), rng("10.0.2.5", "10.0.3.0")}, "10.0.0.128/25 10.0.2.0-10.0.2.4 2001:db8::/120"},
		{[]ipRange{rng("10.0.0.0", "10.0.0.0"), rng("10.0.0.255", "10.0.0.255"), rng("::", "2001:db8::7f")},
			"10.0.0.1-10.0.0.254 10.0.2.0-10.0.2.9 2001:db8::80/121"},
	} {
		if got := rangesString(subtractRanges(a, tt.b)); got != tt.want {
			t.Errorf("a - %v = %q, want %q", tt.b, got, tt.want)
		}
	}
}

func TestRangeElements(t *testing.T) {
	for _, tt := range []struct {
		p      string
		start  string
		end    string // "" for none
		hasEnd bool
	}{
		{"10.0.0.0/24", "10.0.0.0", "10.0.1.0", true},
		{"255.255.255.0/24", "255.255.255.0", "", false},
		{"255.255.255.255/32", "255.255.255.255", "", false},
		{"2001:db8::/64", "2001:db8::", "2001:db8:0:1::", true},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", "", false},
	} {
		start, end, hasEnd := rangeElements(prefixRange(netip.MustParsePrefix(tt.p)))
		if start.key != ma(tt.start) || start.end || hasEnd != tt.hasEnd || (hasEnd && (end.key != ma(tt.end) || !end.end)) {
			t.Errorf("%s: elements %v %v %v, want start %s end %q", tt.p, start, end, hasEnd, tt.start, tt.end)
		}
	}
}

func TestElementsToRanges(t *testing.T) {
	e := func(a string, end bool) kernelElem { return kernelElem{ma(a), end} }
	for _, tt := range []struct {
		name      string
		in        []kernelElem
		want      string
		wantStray int
	}{
		{
			name: "descending as the kernel lists, with nft's 0.0.0.0 end",
			in: []kernelElem{e("255.255.255.255", false), e("10.1.1.0", true), e("10.1.0.0", false),
				e("10.0.0.3", true), e("10.0.0.2", false), e("10.0.0.2", true), e("10.0.0.1", false), e("0.0.0.0", true)},
			want: "10.0.0.1 10.0.0.2 10.1.0.0/24 255.255.255.255",
		},
		{
			name: "shuffled",
			in:   []kernelElem{e("10.0.0.2", true), e("10.0.0.2", false), e("10.0.0.3", true), e("10.0.0.1", false)},
			want: "10.0.0.1 10.0.0.2",
		},
		{
			name: "a start without an end runs to the highest address",
			in:   []kernelElem{e("ffff::", false)},
			want: "ffff::/16",
		},
		{
			name:      "an end without a start is stray",
			in:        []kernelElem{e("10.0.0.9", true), e("10.0.1.0", false), e("10.0.1.1", true)},
			want:      "10.0.1.0",
			wantStray: 1,
		},
		{
			name:      "two starts in a row",
			in:        []kernelElem{e("10.0.0.1", false), e("10.0.0.5", false), e("10.0.0.6", true)},
			want:      "10.0.0.5",
			wantStray: 1,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rs, stray := elementsToRanges(slices.Clone(tt.in))
			if got := rangesString(rs); got != tt.want || len(stray) != tt.wantStray {
				t.Errorf("elementsToRanges = %q, %d stray (%v); want %q, %d stray", got, len(stray), stray, tt.want, tt.wantStray)
			}
		})
	}
}

// TestRangesProperties checks merge, subtract, prefixes and the kernel
// element encoding against a bitmap of the 512 addresses 10.0.0.0-10.0.1.255
// with random prefixes.
func TestRangesProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	base := toU128(ma("10.0.0.0"))
	randomPrefixes := func() ([]ipRange, [512]bool) {
		var bits [512]bool
		var rs []ipRange
		for range r.IntN(12) {
			plen := 23 + r.IntN(10)
			a := fromU128(base.add(u128{lo: uint64(r.IntN(512))}), true)
			p, _ := a.Prefix(plen)
			pr := prefixRange(p)
			rs = append(rs, pr)
			for x := toU128(pr.from).lo - base.lo; x <= toU128(pr.to).lo-base.lo; x++ {
				bits[x] = true
			}
		}
		return rs, bits
	}
	toBits := func(rs []ipRange) [512]bool {
		var bits [512]bool
		for _, pr := range rs {
			for x := toU128(pr.from).lo - base.lo; x <= toU128(pr.to).lo-base.lo; x++ {
				bits[x] = true
			}
		}
		return bits
	}
	for i := range 2000 {
		a, abits := randomPrefixes()
		b, bbits := randomPrefixes()
		ma, mb := mergeRanges(slices.Clone(a)), mergeRanges(slices.Clone(b))
		if toBits(ma) != abits {
			t.Fatalf("case %d: merge(%v) = %v changes the addresses", i, a, ma)
		}
		for j := 1; j < len(ma); j++ {
			if ma[j-1].to.Next().Compare(ma[j].from) >= 0 {
				t.Fatalf("case %d: merge(%v) = %v leaves adjacent or overlapping ranges", i, a, ma)
			}
		}
		var want [512]bool
		for x := range want {
			want[x] = abits[x] && !bbits[x]
		}
		if got := subtractRanges(ma, mb); toBits(got) != want {
			t.Fatalf("case %d: %v - %v = %v", i, ma, mb, got)
		}
		var ps []ipRange
		for _, p := range rangesPrefixes(ma) {
			ps = append(ps, prefixRange(p))
		}
		if toBits(ps) != abits {
			t.Fatalf("case %d: prefixes of %v = %v", i, ma, ps)
		}
		var es []kernelElem
		for _, rg := range ma {
			start, end, hasEnd := rangeElements(rg)
			es = append(es, start)
			if hasEnd {
				es = append(es, end)
			}
		}
		r.Shuffle(len(es), func(i, j int) { es[i], es[j] = es[j], es[i] })
		back, stray := elementsToRanges(es)
		if !slices.Equal(back, ma) || len(stray) > 0 {
			t.Fatalf("case %d: elements of %v read back as %v (stray %v)", i, ma, back, stray)
		}
	}
}
