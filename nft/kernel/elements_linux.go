//go:build linux

package kernel

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"syscall"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/cutover/cutover/nft/internal/iprange"
	"github.com/cutover/cutover/nft/internal/layout"
)

// The element list of one NEWSETELEM/DELSETELEM message is a netlink
// attribute, whose length field has 16 bits. google/nftables does not check
// it: a longer list wraps the length and the kernel stores a fraction of the
// elements without an error (measured: 5,000 elements → 904 stored). So the
// elements of a change go out in calls of at most maxElemsPerCall elements
// and elemListBudget bytes; all calls still go in one Flush, one
// transaction.
const (
	maxElemsPerCall = 2048
	elemListBudget  = 60000
)

// elemsPerCall returns how many elements of set fit one call.
func elemsPerCall(set layout.KernelSet) int {
	key := 4
	if set.V6 {
		key = 16
	}
	// list item header, key nest header, data value header, key, and the
	// flags attribute of an interval end
	largest := 4 + 4 + 4 + key
	if !set.Hosts {
		largest += 8
	}
	return min(maxElemsPerCall, elemListBudget/largest)
}

// toSetElements returns the kernel elements of rs in set: a start and an end
// element per range in an interval set, the address in a hash set. It
// appends to out and keys to buf (both reused between calls: the elements
// are marshalled at once when queued).
func toSetElements(out []nftables.SetElement, buf []byte, set layout.KernelSet, rs []iprange.Range) ([]nftables.SetElement, []byte) {
	klen := 4
	if set.V6 {
		klen = 16
	}
	buf = slices.Grow(buf[:0], 2*klen*len(rs))
	key := func(a netip.Addr) []byte {
		if klen == 4 {
			b := a.As4()
			buf = append(buf, b[:]...)
		} else {
			b := a.As16()
			buf = append(buf, b[:]...)
		}
		return buf[len(buf)-klen : len(buf) : len(buf)]
	}
	for _, r := range rs {
		if set.Hosts {
			out = append(out, nftables.SetElement{Key: key(r.From)})
			continue
		}
		start, end, hasEnd := rangeElements(r)
		out = append(out, nftables.SetElement{Key: key(start.key)})
		if hasEnd {
			out = append(out, nftables.SetElement{Key: key(end.key), IntervalEnd: true})
		}
	}
	return out, buf
}

// elementsToHosts returns the addresses of a hash set (listed in hash
// order) as sorted ranges, without duplicates (see readConfirmedLocked).
func elementsToHosts(es []kernelElem) []iprange.Range {
	addrs := make([]netip.Addr, len(es))
	for i, e := range es {
		addrs[i] = e.key
	}
	return iprange.Hosts(addrs)
}

// queueElements queues adds (or deletes) of rs in set on c, in calls that
// fit. It converts one call's ranges at a time: a SetElement is some 150
// bytes, and 50,000 of them at once were a third of an Apply's garbage.
func queueElements(c *nftables.Conn, s *nftables.Set, set layout.KernelSet, add bool, rs []iprange.Range) error {
	n := elemsPerCall(set)
	perRange := 1 // a hash set's address
	if !set.Hosts {
		perRange = 2 // an interval set's start and end
	}
	var es []nftables.SetElement
	var buf []byte
	for len(rs) > 0 {
		chunk := rs[:min(n/perRange, len(rs))]
		rs = rs[len(chunk):]
		es, buf = toSetElements(es[:0], buf, set, chunk)
		var err error
		if add {
			err = c.SetAddElements(s, es)
		} else {
			err = c.SetDeleteElements(s, es)
		}
		if err != nil {
			return fmt.Errorf("queue elements of set %s: %w", s.Name, err)
		}
	}
	return nil
}

// kernelElem is one element of an interval set as the kernel holds it.
type kernelElem struct {
	key netip.Addr
	end bool // NFT_SET_ELEM_INTERVAL_END
}

// rangeElements returns the kernel elements of r: a start element and, unless
// r ends at the family's highest address, an end element keyed last + 1.
func rangeElements(r iprange.Range) (start kernelElem, end kernelElem, hasEnd bool) {
	next := r.To.Next()
	return kernelElem{key: r.From}, kernelElem{key: next, end: true}, next.IsValid()
}

// elementsToRanges turns the elements of an interval set of one family, in any
// order, back into ranges. An end element with no start before it is skipped:
// nft adds one keyed 0.0.0.0 (or ::) to every interval set it writes. A
// start element with no end runs to the highest address. It reports the
// elements it could not pair.
func elementsToRanges(es []kernelElem) (rs []iprange.Range, stray []kernelElem) {
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
				rs = append(rs, iprange.Range{From: open, To: e.key.Prev()})
			}
			open = netip.Addr{}
		case e.key.IsUnspecified():
			// nft's leading interval end.
		default:
			stray = append(stray, e)
		}
	}
	if open.IsValid() {
		rs = append(rs, iprange.Range{From: open, To: iprange.Last(open.Is4())})
	}
	return rs, stray
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// elemReader dumps set elements over its own netlink socket. google/nftables
// receives with a page-sized buffer, so the kernel answers a dump in chunks of
// about 4 KiB; the kernel's interval-set walk skips the elements already sent
// for every chunk, so a dump of 100,000 elements takes 250 ms that way and
// 50 ms with the 32 KiB chunks the kernel uses for a reader with a large
// buffer (measured on this 2-core machine).
type elemReader struct {
	conn *netlink.Conn
	buf  []byte
}

func newElemReader(nsfd int) (*elemReader, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: nsfd})
	if err != nil {
		return nil, fmt.Errorf("dial netfilter netlink: %w", err)
	}
	return &elemReader{conn: c, buf: make([]byte, 128<<10)}, nil
}

func (r *elemReader) Close() error { return r.conn.Close() }

// gen returns the nftables ruleset generation: every committed transaction
// in the namespace adds one.
func (r *elemReader) gen() (uint32, error) {
	msgs, err := r.conn.Execute(netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETGEN),
			Flags: netlink.Request,
		},
		Data: []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0},
	})
	if err != nil {
		return 0, fmt.Errorf("get ruleset generation: %w", err)
	}
	for _, m := range msgs {
		if len(m.Data) < 4 {
			continue
		}
		for t, v := range nlAttrs(m.Data[4:]) {
			if t == unix.NFTA_GEN_ID && len(v) == 4 {
				return binary.BigEndian.Uint32(v), nil
			}
		}
	}
	return 0, errors.New("get ruleset generation: no generation in the answer")
}

// errNoSet is returned by dump when the set does not exist.
var errNoSet = errors.New("no such set")

// dump returns the elements of an interval set of table (family inet).
func (r *elemReader) dump(table, set string) ([]kernelElem, error) {
	for attempt := 0; ; attempt++ {
		es, interrupted, err := r.dumpOnce(table, set)
		if err != nil || !interrupted {
			return es, err
		}
		if attempt == 3 {
			return nil, fmt.Errorf("dump set %s: interrupted by concurrent changes 4 times", set)
		}
	}
}

func (r *elemReader) dumpOnce(table, set string) (es []kernelElem, interrupted bool, err error) {
	attrs, err := netlink.MarshalAttributes([]netlink.Attribute{
		{Type: unix.NFTA_SET_ELEM_LIST_TABLE, Data: append([]byte(table), 0)},
		{Type: unix.NFTA_SET_ELEM_LIST_SET, Data: append([]byte(set), 0)},
	})
	if err != nil {
		return nil, false, err
	}
	req, err := r.conn.Send(netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETSETELEM),
			Flags: netlink.Request | netlink.Dump,
		},
		Data: append([]byte{unix.NFPROTO_INET, unix.NFNETLINK_V0, 0, 0}, attrs...),
	})
	if err != nil {
		return nil, false, fmt.Errorf("send dump request: %w", err)
	}
	rc, err := r.conn.SyscallConn()
	if err != nil {
		return nil, false, err
	}
	for {
		var n int
		var rerr error
		if err := rc.Read(func(fd uintptr) bool {
			n, _, rerr = unix.Recvfrom(int(fd), r.buf, unix.MSG_DONTWAIT)
			return !errors.Is(rerr, unix.EAGAIN)
		}); err != nil {
			return nil, false, fmt.Errorf("receive: %w", err)
		}
		if rerr != nil {
			return nil, false, fmt.Errorf("receive: %w", rerr)
		}
		done, intr, err := parseElemMessages(r.buf[:n], req.Header.Sequence, &es)
		interrupted = interrupted || intr
		if err != nil {
			return nil, false, err
		}
		if done {
			return es, interrupted, nil
		}
	}
}

// parseElemMessages appends the elements in the netlink messages of b (the
// answer to the dump request seq) to es.
func parseElemMessages(b []byte, seq uint32, es *[]kernelElem) (done, interrupted bool, err error) {
	for len(b) >= unix.NLMSG_HDRLEN {
		l := int(binary.NativeEndian.Uint32(b[0:4]))
		typ := binary.NativeEndian.Uint16(b[4:6])
		flags := binary.NativeEndian.Uint16(b[6:8])
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			return false, false, fmt.Errorf("malformed netlink message (length %d of %d)", l, len(b))
		}
		msgSeq := binary.NativeEndian.Uint32(b[8:12])
		msg := b[unix.NLMSG_HDRLEN:l]
		b = b[min(nlAlign(l), len(b)):]
		if msgSeq != seq {
			continue // a late answer to an earlier request
		}
		interrupted = interrupted || flags&unix.NLM_F_DUMP_INTR != 0
		switch typ {
		case unix.NLMSG_DONE:
			return true, interrupted, nil
		case unix.NLMSG_ERROR:
			if len(msg) < 4 {
				return false, false, errors.New("short netlink error message")
			}
			errno := syscall.Errno(-int32(binary.NativeEndian.Uint32(msg[0:4])))
			if errno == 0 {
				continue
			}
			if errno == unix.ENOENT {
				return false, false, errNoSet
			}
			return false, false, fmt.Errorf("dump set elements: %w", errno)
		}
		if typ != unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_NEWSETELEM || len(msg) < 4 {
			continue
		}
		for t, v := range nlAttrs(msg[4:]) {
			if t != unix.NFTA_SET_ELEM_LIST_ELEMENTS {
				continue
			}
			for _, item := range nlAttrs(v) {
				e, ok := parseElem(item)
				if !ok {
					return false, false, fmt.Errorf("malformed set element %x", item)
				}
				*es = append(*es, e)
			}
		}
	}
	return false, interrupted, nil
}

func parseElem(b []byte) (kernelElem, bool) {
	var e kernelElem
	for t, v := range nlAttrs(b) {
		switch t {
		case unix.NFTA_SET_ELEM_KEY:
			for kt, kv := range nlAttrs(v) {
				if kt == unix.NFTA_DATA_VALUE {
					a, ok := netip.AddrFromSlice(kv)
					if !ok {
						return e, false
					}
					e.key = a
				}
			}
		case unix.NFTA_SET_ELEM_FLAGS:
			if len(v) >= 4 {
				e.end = binary.BigEndian.Uint32(v)&unix.NFT_SET_ELEM_INTERVAL_END != 0
			}
		}
	}
	return e, e.key.IsValid()
}

func nlAlign(n int) int { return (n + 3) &^ 3 }

// nlAttrs iterates over the netlink attributes in b: type (without the
// nested and byte-order flags) and value.
func nlAttrs(b []byte) func(yield func(uint16, []byte) bool) {
	return func(yield func(uint16, []byte) bool) {
		for len(b) >= 4 {
			l := int(binary.NativeEndian.Uint16(b[0:2]))
			t := binary.NativeEndian.Uint16(b[2:4]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
			if l < 4 || l > len(b) {
				return
			}
			if !yield(t, b[4:l]) {
				return
			}
			b = b[min(nlAlign(l), len(b)):]
		}
	}
}
