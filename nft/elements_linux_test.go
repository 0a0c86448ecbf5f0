//go:build linux

package nft

import (
	"encoding/binary"
	"io"
	"net/netip"
	"testing"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
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
	table := &nftables.Table{Name: DefaultTable, Family: nftables.TableFamilyINet}
	set6 := physSet{name: "moved_skm2_v6", v6: true}
	var rs []ipRange
	a := netip.MustParseAddr("2001:db8::")
	for range 5000 {
		rs = append(rs, ipRange{a, a.Next()})
		a = a.Next().Next().Next()
	}
	want := 2 * len(rs)

	c, msgs := captureConn(t)
	s := &nftables.Set{Table: table, Name: set6.name, KeyType: nftables.TypeIP6Addr, Interval: true}
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

	for _, set := range []physSet{set6, {name: "moved_skm2_v4"}, {name: "moved_skm2_v4_hosts", hosts: true}} {
		c, msgs := captureConn(t)
		s := &nftables.Set{Table: table, Name: set.name, KeyType: keyType(set.v6), Interval: !set.hosts}
		in := rs
		if !set.v6 {
			in = nil
			a := netip.MustParseAddr("10.0.0.0")
			for range 20000 {
				in = append(in, ipRange{a, a})
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
			t.Errorf("%s: %d of %d elements in %d calls, largest list %d bytes", set.name, n, want, len(*msgs), largest)
		}
		if perCall := elemsPerCall(set); len(*msgs) != (want+perCall-1)/perCall {
			t.Errorf("%s: %d calls for %d elements, want calls of %d", set.name, len(*msgs), want, perCall)
		}
	}
}
