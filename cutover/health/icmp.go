package health

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/cutover/cutover/internal/netnsrun"
)

const (
	protoICMP   = 1
	protoICMPv6 = 58
)

// icmpConn is an ICMP socket and how it was made.
type icmpConn struct {
	net.PacketConn
	raw bool
	v6  bool
}

// listenICMP opens an ICMP socket in the prober's namespace, choosing the
// kind by the prober's mode.
func (p *netProber) listenICMP(v6 bool) (*icmpConn, error) {
	fam := 0
	if v6 {
		fam = 1
	}
	switch {
	case p.o.ICMP == ICMPRaw, p.o.ICMP == ICMPAuto && p.useRaw[fam].Load(), p.o.Mark != 0:
		// A mark needs CAP_NET_ADMIN, which raw sockets' CAP_NET_RAW
		// comes with in practice; ping sockets cannot be made marked.
		return p.listenICMPKind(v6, true)
	case p.o.ICMP == ICMPUnprivileged:
		return p.listenICMPKind(v6, false)
	}
	c, err := p.listenICMPKind(v6, false)
	if err == nil || !notPermitted(err) {
		return c, err
	}
	c, rerr := p.listenICMPKind(v6, true)
	if rerr != nil {
		if notPermitted(rerr) {
			return nil, errors.New("not permitted: ping sockets are off (sysctl net.ipv4.ping_group_range) and raw sockets need root or CAP_NET_RAW")
		}
		return nil, rerr
	}
	p.useRaw[fam].Store(true)
	return c, nil
}

func notPermitted(err error) bool {
	return errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EPROTONOSUPPORT)
}

func (p *netProber) listenICMPKind(v6, raw bool) (*icmpConn, error) {
	network, laddr := "udp4", "0.0.0.0"
	switch {
	case v6 && raw:
		network, laddr = "ip6:ipv6-icmp", "::"
	case v6:
		network, laddr = "udp6", "::"
	case raw:
		network = "ip4:icmp"
	}
	var c net.PacketConn
	err := netnsrun.Run(p.o.Netns, func() error {
		var err error
		if raw {
			// Raw sockets through the net package, so that they can
			// carry a mark; icmp.ListenPacket makes the ping sockets.
			lc := net.ListenConfig{Control: p.markControl}
			c, err = lc.ListenPacket(context.Background(), network, laddr)
			return err
		}
		c, err = icmp.ListenPacket(network, laddr)
		return err
	})
	if err != nil {
		return nil, err
	}
	if raw {
		// A raw socket sees every ICMP message of the namespace: let
		// only answers and errors through (best effort).
		if v6 {
			var f ipv6.ICMPFilter
			f.SetAll(true)
			f.Accept(ipv6.ICMPTypeEchoReply)
			f.Accept(ipv6.ICMPTypeDestinationUnreachable)
			f.Accept(ipv6.ICMPTypeTimeExceeded)
			_ = ipv6.NewPacketConn(c).SetICMPFilter(&f)
		} else {
			var f ipv4.ICMPFilter
			f.SetAll(true)
			f.Accept(ipv4.ICMPTypeEchoReply)
			f.Accept(ipv4.ICMPTypeDestinationUnreachable)
			f.Accept(ipv4.ICMPTypeTimeExceeded)
			_ = ipv4.NewPacketConn(c).SetICMPFilter(&f)
		}
	}
	return &icmpConn{PacketConn: c, raw: raw, v6: v6}, nil
}

// probeICMP sends one echo request to addr and waits for the matching
// reply, or for an error message about it.
func (p *netProber) probeICMP(ctx context.Context, addr netip.Addr) error {
	v6 := addr.Is6()
	c, err := p.listenICMP(v6)
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	var token [16]byte
	rand.Read(token[:])
	id := int(binary.BigEndian.Uint16(token[:])) // raw sockets; ping sockets set their own
	seq := int(p.seq.Add(1) & 0xffff)
	var typ icmp.Type = ipv4.ICMPTypeEcho
	var dst net.Addr = &net.IPAddr{IP: addr.AsSlice(), Zone: addr.Zone()}
	proto := protoICMP
	if v6 {
		typ, proto = ipv6.ICMPTypeEchoRequest, protoICMPv6
	}
	if !c.raw {
		dst = &net.UDPAddr{IP: addr.AsSlice(), Zone: addr.Zone()}
	}
	msg := icmp.Message{Type: typ, Body: &icmp.Echo{ID: id, Seq: seq, Data: token[:]}}
	wb, err := msg.Marshal(nil) // the kernel fills in the ICMPv6 checksum
	if err != nil {
		return err
	}
	if _, err := c.WriteTo(wb, dst); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	rb := make([]byte, 1500)
	for {
		n, _, err := c.ReadFrom(rb)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		m, err := icmp.ParseMessage(proto, rb[:n])
		if err != nil {
			continue
		}
		switch body := m.Body.(type) {
		case *icmp.Echo:
			if (m.Type == ipv4.ICMPTypeEchoReply || m.Type == ipv6.ICMPTypeEchoReply) &&
				body.Seq == seq && (!c.raw || body.ID == id) && bytes.Equal(body.Data, token[:]) {
				return nil
			}
		case *icmp.DstUnreach:
			if c.raw && quotesEcho(body.Data, v6, id, seq) {
				return fmt.Errorf("destination unreachable (%s)", unreachCode(v6, m.Code))
			}
		case *icmp.TimeExceeded:
			if c.raw && quotesEcho(body.Data, v6, id, seq) {
				return errors.New("time exceeded (routing loop?)")
			}
		}
	}
}

// quotesEcho reports whether the original datagram quoted in an ICMP error
// is our echo request.
func quotesEcho(d []byte, v6 bool, id, seq int) bool {
	hl, echo := 40, byte(128)
	if !v6 {
		if len(d) < 20 {
			return false
		}
		hl, echo = int(d[0]&0x0f)*4, 8
	}
	if len(d) < hl+8 || d[hl] != echo {
		return false
	}
	return int(binary.BigEndian.Uint16(d[hl+4:])) == id && int(binary.BigEndian.Uint16(d[hl+6:])) == seq
}

func unreachCode(v6 bool, code int) string {
	if v6 {
		switch code {
		case 0:
			return "no route"
		case 1:
			return "administratively prohibited"
		case 3:
			return "address unreachable"
		case 4:
			return "port unreachable"
		}
	} else {
		switch code {
		case 0:
			return "network unreachable"
		case 1:
			return "host unreachable"
		case 9, 10, 13:
			return "administratively prohibited"
		}
	}
	return fmt.Sprintf("code %d", code)
}
