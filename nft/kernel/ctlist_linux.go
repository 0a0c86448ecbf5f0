//go:build linux

package kernel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ctFlow is what a drain needs of a conntrack entry: where the flow goes,
// its mark, and its TCP state (tcp false for other protocols).
type ctFlow struct {
	dst      netip.Addr
	mark     uint32
	tcp      bool
	tcpState uint8
}

// ended reports whether the flow's TCP connection is closing (TIME_WAIT,
// CLOSE): it counts as over.
func (f ctFlow) ended() bool { return f.tcp && (f.tcpState == tcpTimeWait || f.tcpState == tcpClose) }

// ctLister dumps the conntrack table and reads only what a drain needs. The
// library's list decodes every attribute of every entry by reflection; after
// a run of 50,000 VMs the table holds tens of thousands of probe flows, and
// a drain lists it every poll, while the edge is busy with the same change.
type ctLister struct {
	sock *nl.NetlinkSocket
}

// newCtLister opens a conntrack netlink socket in namespace ns
// (netns.None(): the current one).
func newCtLister(ns netns.NsHandle) (*ctLister, error) {
	s, err := nl.GetNetlinkSocketAt(ns, netns.None(), unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, fmt.Errorf("open conntrack netlink: %w", err)
	}
	return &ctLister{sock: s}, nil
}

func (l *ctLister) close() { l.sock.Close() }

// list dumps the entries of family (AF_INET, AF_INET6) and calls f for
// each.
func (l *ctLister) list(family uint8, f func(ctFlow)) error {
	req := nl.NewNetlinkRequest((unix.NFNL_SUBSYS_CTNETLINK<<8)|nl.IPCTNL_MSG_CT_GET, unix.NLM_F_DUMP)
	req.AddData(&nl.Nfgenmsg{NfgenFamily: family, Version: nl.NFNETLINK_V0})
	if err := l.sock.Send(req); err != nil {
		return fmt.Errorf("list conntrack: %w", err)
	}
	for {
		msgs, _, err := l.sock.Receive()
		if err != nil {
			return fmt.Errorf("list conntrack: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != req.Seq {
				continue // a late answer to an earlier, abandoned dump
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return nil
			case unix.NLMSG_ERROR:
				if len(m.Data) < 4 {
					return errors.New("list conntrack: short error message")
				}
				if errno := int32(binary.NativeEndian.Uint32(m.Data[:4])); errno != 0 {
					return fmt.Errorf("list conntrack: %w", syscall.Errno(-errno))
				}
				return nil
			}
			if fl, ok := parseCtFlow(m.Data); ok {
				f(fl)
			}
		}
	}
}

// Attributes of a conntrack entry (linux/netfilter/nfnetlink_conntrack.h).
const (
	ctaTupleOrig    = 1
	ctaProtoinfo    = 4
	ctaMark         = 8
	ctaTupleIP      = 1
	ctaIPv4Dst      = 2
	ctaIPv6Dst      = 4
	ctaTupleProto   = 2
	ctaProtoNum     = 1
	ctaProtoinfoTCP = 1
	ctaTCPState     = 1
	nlaTypeMask     = 0x3fff
)

// parseCtFlow reads an entry (nfgenmsg, then attributes); ok is false when
// it has no destination address.
func parseCtFlow(b []byte) (ctFlow, bool) {
	var f ctFlow
	if len(b) < 4 {
		return f, false
	}
	eachAttr(b[4:], func(typ uint16, v []byte) {
		switch typ {
		case ctaTupleOrig:
			eachAttr(v, func(typ uint16, v []byte) {
				switch typ {
				case ctaTupleIP:
					eachAttr(v, func(typ uint16, v []byte) {
						switch {
						case typ == ctaIPv4Dst && len(v) == 4:
							f.dst = netip.AddrFrom4([4]byte(v))
						case typ == ctaIPv6Dst && len(v) == 16:
							f.dst = netip.AddrFrom16([16]byte(v)).Unmap()
						}
					})
				case ctaTupleProto:
					eachAttr(v, func(typ uint16, v []byte) {
						if typ == ctaProtoNum && len(v) == 1 {
							f.tcp = v[0] == unix.IPPROTO_TCP
						}
					})
				}
			})
		case ctaMark:
			if len(v) == 4 {
				f.mark = binary.BigEndian.Uint32(v)
			}
		case ctaProtoinfo:
			eachAttr(v, func(typ uint16, v []byte) {
				if typ == ctaProtoinfoTCP {
					eachAttr(v, func(typ uint16, v []byte) {
						if typ == ctaTCPState && len(v) == 1 {
							f.tcpState = v[0]
						}
					})
				}
			})
		}
	})
	return f, f.dst.IsValid()
}

// eachAttr calls f with each netlink attribute of b (type without the
// nested and byte-order flags, and value); it stops at a malformed one.
func eachAttr(b []byte, f func(typ uint16, v []byte)) {
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b[:2]))
		if l < 4 || l > len(b) {
			return
		}
		f(binary.NativeEndian.Uint16(b[2:4])&nlaTypeMask, b[4:l])
		adv := (l + 3) &^ 3
		if adv > len(b) {
			return
		}
		b = b[adv:]
	}
}
