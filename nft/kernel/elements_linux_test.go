//go:build linux

package kernel

import (
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/cutover/cutover/nft"
	"github.com/cutover/cutover/nft/internal/iprange"
	"github.com/cutover/cutover/nft/internal/layout"
)

// captureConn returns an nftables connection whose Flush hands the
// NEWSETELEM and DELSETELEM messages to the returned slice instead of a
// kernel.
func captureConn(t *testing.T) (*nftables.Conn, *[]netlink.Message) {
	t.Helper()
	var msgs []netlink.Message
	c, err := nftables.New(nftables.WithTestDial(func(req []netlink.Message) ([]netlink.Message, error) {
		if req == nil {
			return nil, io.EOF // no answer: nothing to acknowledge
		}
		for _, m := range req {
			switch m.Header.Type & 0xff {
			case unix.NFT_MSG_NEWSETELEM, unix.NFT_MSG_DELSETELEM:
				msgs = append(msgs, m)
			}
		}
		return nil, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	return c, &msgs
}

// countElements returns the elements in the element lists of msgs, and the
// largest element list's length field.
func countElements(t *testing.T, msgs []netlink.Message) (n, largest int) {
	t.Helper()
	for _, m := range msgs {
		b := m.Data[4:]
		for len(b) >= 4 {
			l := int(binary.NativeEndian.Uint16(b))
			typ := binary.NativeEndian.Uint16(b[2:]) &^ unix.NLA_F_NESTED
			if l < 4 || l > len(b) {
				t.Fatalf("malformed attribute (length %d of %d)", l, len(b))
			}
			if typ == unix.NFTA_SET_ELEM_LIST_ELEMENTS {
				largest = max(largest, l)
				for range nlAttrs(b[4:l]) {
					n++
				}
			}
			b = b[min(nlAlign(l), len(b)):]
		}
	}
	return n, largest
}

// TestQueueElementsFitAttribute shows that google/nftables loses elements
// when one call's element list outgrows the 16-bit attribute length, and
// that queueElements splits so that none are lost (IPv6 ranges: the largest
// elements).
func TestQueueElementsFitAttribute(t *testing.T) {
	table := &nftables.Table{Name: nft.DefaultTable, Family: nftables.TableFamilyINet}
	set6 := layout.KernelSet{Name: "moved_skm2_v6", V6: true}
	var rs []iprange.Range
	a := netip.MustParseAddr("2001:db8::")
	for range 5000 {
		rs = append(rs, iprange.Range{From: a, To: a.Next()})
		a = a.Next().Next().Next()
	}
	want := 2 * len(rs)

	c, msgs := captureConn(t)
	s := &nftables.Set{Table: table, Name: set6.Name, KeyType: nftables.TypeIP6Addr, Interval: true}
	es, _ := toSetElements(nil, nil, set6, rs)
	if err := c.SetAddElements(s, es); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if n, _ := countElements(t, *msgs); n == want {
		t.Fatalf("one call with %d elements kept them all: google/nftables no longer loses elements, revisit the split", want)
	} else {
		t.Logf("one call with %d elements: %d arrive", want, n)
	}

	for _, set := range []layout.KernelSet{set6, {Name: "moved_skm2_v4"}, {Name: "moved_skm2_v4_hosts", Hosts: true}} {
		c, msgs := captureConn(t)
		s := &nftables.Set{Table: table, Name: set.Name, KeyType: keyType(set.V6), Interval: !set.Hosts}
		in := rs
		if !set.V6 {
			in = nil
			a := netip.MustParseAddr("10.0.0.0")
			for range 20000 {
				in = append(in, iprange.Range{From: a, To: a})
				a = a.Next().Next()
			}
		}
		if err := queueElements(c, s, set, true, in); err != nil {
			t.Fatal(err)
		}
		if err := c.Flush(); err != nil {
			t.Fatal(err)
		}
		es, _ := toSetElements(nil, nil, set, in)
		want := len(es)
		n, largest := countElements(t, *msgs)
		if n != want || largest > 0xffff {
			t.Errorf("%s: %d of %d elements in %d calls, largest list %d bytes", set.Name, n, want, len(*msgs), largest)
		}
		if perCall := elemsPerCall(set); len(*msgs) != (want+perCall-1)/perCall {
			t.Errorf("%s: %d calls for %d elements, want calls of %d", set.Name, len(*msgs), want, perCall)
		}
	}
}

func ma(s string) netip.Addr { return netip.MustParseAddr(s) }

func rangesString(rs []iprange.Range) string {
	var ss []string
	for _, r := range rs {
		ss = append(ss, r.String())
	}
	return strings.Join(ss, " ")
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
		start, end, hasEnd := rangeElements(iprange.FromPrefix(netip.MustParsePrefix(tt.p)))
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

// TestElementsRoundTrip encodes random merged ranges as interval set
// elements, shuffles them and reads them back.
func TestElementsRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	base := ma("10.0.0.0")
	for i := range 2000 {
		var rs []iprange.Range
		for range r.IntN(12) {
			a := base
			for range r.IntN(512) {
				a = a.Next()
			}
			p, _ := a.Prefix(23 + r.IntN(10))
			rs = append(rs, iprange.FromPrefix(p))
		}
		merged := iprange.Merge(rs)
		var es []kernelElem
		for _, rg := range merged {
			start, end, hasEnd := rangeElements(rg)
			es = append(es, start)
			if hasEnd {
				es = append(es, end)
			}
		}
		r.Shuffle(len(es), func(i, j int) { es[i], es[j] = es[j], es[i] })
		back, stray := elementsToRanges(es)
		if !slices.Equal(back, merged) || len(stray) > 0 {
			t.Fatalf("case %d: elements of %v read back as %v (stray %v)", i, merged, back, stray)
		}
	}
}
