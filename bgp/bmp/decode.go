package bmp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	gobmp "github.com/osrg/gobgp/v3/pkg/packet/bmp"
)

// DefaultMaxMessage caps one BMP message. A route monitoring message holds
// one BGP UPDATE (at most 65535 bytes with RFC 8654) plus headers; Peer Up
// holds two OPENs. Anything near a mebibyte is broken or hostile.
const DefaultMaxMessage = 1 << 20

// Message types of RFC 7854 section 4.1; types above are skipped.
const (
	msgRouteMonitoring = gobmp.BMP_MSG_ROUTE_MONITORING
	msgStatistics      = gobmp.BMP_MSG_STATISTICS_REPORT
	msgPeerDown        = gobmp.BMP_MSG_PEER_DOWN_NOTIFICATION
	msgPeerUp          = gobmp.BMP_MSG_PEER_UP_NOTIFICATION
	msgInitiation      = gobmp.BMP_MSG_INITIATION
	msgTermination     = gobmp.BMP_MSG_TERMINATION
	msgRouteMirroring  = gobmp.BMP_MSG_ROUTE_MIRRORING
)

// peerTypeLocRIB is RFC 9069's Loc-RIB instance peer type.
const peerTypeLocRIB = gobmp.BMP_PEER_TYPE_LOCAL_RIB

func typeName(t uint8) string {
	switch t {
	case msgRouteMonitoring:
		return "Route Monitoring"
	case msgStatistics:
		return "Statistics Report"
	case msgPeerDown:
		return "Peer Down"
	case msgPeerUp:
		return "Peer Up"
	case msgInitiation:
		return "Initiation"
	case msgTermination:
		return "Termination"
	case msgRouteMirroring:
		return "Route Mirroring"
	}
	return fmt.Sprintf("type %d", t)
}

// readMessage reads one whole BMP message (common header included) from r.
// The length is checked before anything is allocated for the body, so a
// peer cannot make the station buffer more than max bytes.
func readMessage(r io.Reader, max int) ([]byte, error) {
	var hdr [gobmp.BMP_HEADER_SIZE]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	if hdr[0] != gobmp.BMP_VERSION {
		return nil, fmt.Errorf("BMP version %d, want %d", hdr[0], gobmp.BMP_VERSION)
	}
	n := binary.BigEndian.Uint32(hdr[1:5])
	if n < gobmp.BMP_HEADER_SIZE {
		return nil, fmt.Errorf("message length %d shorter than the %d-byte header", n, gobmp.BMP_HEADER_SIZE)
	}
	if uint64(n) > uint64(max) {
		return nil, fmt.Errorf("%s message of %d bytes exceeds the limit of %d bytes", typeName(hdr[5]), n, max)
	}
	msg := make([]byte, n)
	copy(msg, hdr[:])
	if _, err := io.ReadFull(r, msg[gobmp.BMP_HEADER_SIZE:]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("read %s body: %w", typeName(hdr[5]), err)
	}
	return msg, nil
}

// optionsFunc gives the BGP decoding options (ADD-PATH) for a peer.
type optionsFunc func(gobmp.BMPPeerHeader) []*bgp.MarshallingOption

// decode parses one whole message as returned by readMessage. It returns
// (nil, nil) for a message type this station does not know (RFC 7854 asks
// stations to skip them by their length). A Route Monitoring message whose
// UPDATE has an RFC 7606 error is returned together with that
// *bgp.MessageError so the caller can discard or treat as withdraw; every
// other error means the message is malformed.
func decode(msg []byte, opts optionsFunc) (m *gobmp.BMPMessage, err error) {
	if len(msg) < gobmp.BMP_HEADER_SIZE {
		return nil, fmt.Errorf("message of %d bytes shorter than the %d-byte header", len(msg), gobmp.BMP_HEADER_SIZE)
	}
	typ := msg[5]
	if typ > msgRouteMirroring {
		return nil, nil
	}
	if typ != msgInitiation && typ != msgTermination {
		const min = gobmp.BMP_HEADER_SIZE + gobmp.BMP_PEER_HEADER_SIZE
		if len(msg) < min {
			return nil, fmt.Errorf("%s message of %d bytes shorter than its %d bytes of headers", typeName(typ), len(msg), min)
		}
	}
	if int(binary.BigEndian.Uint32(msg[1:5])) != len(msg) {
		return nil, fmt.Errorf("%s message: length field %d, have %d bytes", typeName(typ), binary.BigEndian.Uint32(msg[1:5]), len(msg))
	}
	// GoBGP's decoders index slices on the strength of length fields they
	// read; the library recovers most such panics itself, this is the
	// backstop that keeps one bad router from killing the station.
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("decode %s: malformed (%v)", typeName(typ), r)
		}
	}()
	m, err = gobmp.ParseBMPMessageWithOptions(msg, opts)
	if err != nil {
		var me *bgp.MessageError
		if typ == msgRouteMonitoring && m != nil && errors.As(err, &me) && m.Body != nil &&
			(me.ErrorHandling == bgp.ERROR_HANDLING_ATTRIBUTE_DISCARD || me.ErrorHandling == bgp.ERROR_HANDLING_TREAT_AS_WITHDRAW) {
			return m, me
		}
		return nil, fmt.Errorf("decode %s: %w", typeName(typ), err)
	}
	if m == nil || m.Body == nil {
		return nil, fmt.Errorf("decode %s: no body", typeName(typ))
	}
	return m, nil
}

// change is what one UPDATE does to a table.
type change struct {
	add      []netip.Prefix
	nextHop4 netip.Addr // for IPv4 NLRI in the UPDATE's NLRI field
	mpAdd    []netip.Prefix
	mpNH     netip.Addr // MP_REACH_NLRI next-hop
	withdraw []netip.Prefix
	firstAS  uint32
	eor      bgp.RouteFamily // set for an End-of-RIB marker
	isEOR    bool
}

// Families this station keeps; other AFI/SAFIs in MP_REACH/MP_UNREACH are
// skipped, not refused.
func unicast(afi uint16, safi uint8) bool {
	return (afi == bgp.AFI_IP || afi == bgp.AFI_IP6) && safi == bgp.SAFI_UNICAST
}

// updateChange extracts prefixes and next-hops from a BGP message that a
// Route Monitoring message carried. treatAsWithdraw turns every announced
// prefix into a withdrawal (RFC 7606).
func updateChange(m *bgp.BGPMessage, treatAsWithdraw bool) (change, error) {
	var c change
	if m == nil {
		return c, errors.New("route monitoring without a BGP message")
	}
	u, ok := m.Body.(*bgp.BGPUpdate)
	if !ok {
		return c, fmt.Errorf("route monitoring carries a BGP message of type %d, want UPDATE (%d)", m.Header.Type, bgp.BGP_MSG_UPDATE)
	}
	if eor, rf := u.IsEndOfRib(); eor {
		c.isEOR, c.eor = true, rf
		return c, nil
	}
	for _, p := range u.WithdrawnRoutes {
		pfx, err := prefixOf(p.Prefix, p.Length)
		if err != nil {
			return c, fmt.Errorf("withdrawn route: %w", err)
		}
		c.withdraw = append(c.withdraw, pfx)
	}
	for _, p := range u.NLRI {
		pfx, err := prefixOf(p.Prefix, p.Length)
		if err != nil {
			return c, fmt.Errorf("NLRI: %w", err)
		}
		c.add = append(c.add, pfx)
	}
	for _, a := range u.PathAttributes {
		switch a := a.(type) {
		case *bgp.PathAttributeNextHop:
			nh, ok := netip.AddrFromSlice(a.Value)
			if !ok {
				return c, fmt.Errorf("NEXT_HOP of %d bytes", len(a.Value))
			}
			c.nextHop4 = nh.Unmap()
		case *bgp.PathAttributeAsPath:
			c.firstAS = firstAS(a)
		case *bgp.PathAttributeMpReachNLRI:
			if !unicast(a.AFI, a.SAFI) {
				continue
			}
			nh, ok := netip.AddrFromSlice(a.Nexthop)
			if !ok {
				return c, fmt.Errorf("MP_REACH_NLRI next-hop of %d bytes", len(a.Nexthop))
			}
			if a.AFI == bgp.AFI_IP {
				nh = nh.Unmap()
			}
			c.mpNH = nh
			for _, p := range a.Value {
				pfx, err := addrPrefix(p)
				if err != nil {
					return c, fmt.Errorf("MP_REACH_NLRI: %w", err)
				}
				c.mpAdd = append(c.mpAdd, pfx)
			}
		case *bgp.PathAttributeMpUnreachNLRI:
			if !unicast(a.AFI, a.SAFI) {
				continue
			}
			for _, p := range a.Value {
				pfx, err := addrPrefix(p)
				if err != nil {
					return c, fmt.Errorf("MP_UNREACH_NLRI: %w", err)
				}
				c.withdraw = append(c.withdraw, pfx)
			}
		}
	}
	if treatAsWithdraw {
		c.withdraw = append(append(c.withdraw, c.add...), c.mpAdd...)
		c.add, c.mpAdd = nil, nil
		return c, nil
	}
	if len(c.add) > 0 && !c.nextHop4.IsValid() {
		return c, fmt.Errorf("UPDATE announces %d prefixes without NEXT_HOP", len(c.add))
	}
	return c, nil
}

func addrPrefix(p bgp.AddrPrefixInterface) (netip.Prefix, error) {
	switch p := p.(type) {
	case *bgp.IPAddrPrefix:
		return prefixOf(p.Prefix, p.Length)
	case *bgp.IPv6AddrPrefix:
		return prefixOf(p.Prefix, p.Length)
	}
	return netip.Prefix{}, fmt.Errorf("unexpected NLRI %T", p)
}

func prefixOf(ip net.IP, bits uint8) (netip.Prefix, error) {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Prefix{}, fmt.Errorf("prefix address of %d bytes", len(ip))
	}
	if len(ip) == net.IPv4len || (a.Is4In6() && bits <= 32) {
		a = a.Unmap()
	}
	p, err := a.Prefix(int(bits))
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("prefix %s/%d: %w", a, bits, err)
	}
	return p, nil
}

// firstAS is the neighbouring AS of a path: the first AS of its first
// AS_SEQUENCE or AS_SET, confederation segments skipped. 0 for an empty
// path (originated inside the router's AS).
func firstAS(a *bgp.PathAttributeAsPath) uint32 {
	for _, seg := range a.Value {
		switch seg.GetType() {
		case bgp.BGP_ASPATH_ATTR_TYPE_SEQ, bgp.BGP_ASPATH_ATTR_TYPE_SET:
			if as := seg.GetAS(); len(as) > 0 {
				return as[0]
			}
		}
	}
	return 0
}

// peerAddr converts the per-peer header's address; Loc-RIB and local
// instances send zeros, which stay a valid (unspecified) address.
func peerAddr(ip net.IP) netip.Addr {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}
	}
	return a.Unmap()
}

// addPathFamilies returns the families for which NLRI received from the
// peer carry path identifiers: the router (sender of sent) offered to
// receive and the peer (sender of recv) to send (RFC 7911).
func addPathFamilies(sent, recv *bgp.BGPMessage) map[bgp.RouteFamily]bgp.BGPAddPathMode {
	local, remote := addPathCaps(sent), addPathCaps(recv)
	var out map[bgp.RouteFamily]bgp.BGPAddPathMode
	for rf, m := range local {
		if m&bgp.BGP_ADD_PATH_RECEIVE != 0 && remote[rf]&bgp.BGP_ADD_PATH_SEND != 0 {
			if out == nil {
				out = map[bgp.RouteFamily]bgp.BGPAddPathMode{}
			}
			out[rf] = bgp.BGP_ADD_PATH_RECEIVE
		}
	}
	return out
}

func addPathCaps(m *bgp.BGPMessage) map[bgp.RouteFamily]bgp.BGPAddPathMode {
	if m == nil {
		return nil
	}
	o, ok := m.Body.(*bgp.BGPOpen)
	if !ok {
		return nil
	}
	caps := map[bgp.RouteFamily]bgp.BGPAddPathMode{}
	for _, p := range o.OptParams {
		pc, ok := p.(*bgp.OptionParameterCapability)
		if !ok {
			continue
		}
		for _, c := range pc.Capability {
			if ap, ok := c.(*bgp.CapAddPath); ok {
				for _, t := range ap.Tuples {
					caps[t.RouteFamily] |= t.Mode
				}
			}
		}
	}
	return caps
}

// openAS is the AS a BGP OPEN announces, the 4-octet one when present.
func openAS(m *bgp.BGPMessage) uint32 {
	if m == nil {
		return 0
	}
	o, ok := m.Body.(*bgp.BGPOpen)
	if !ok {
		return 0
	}
	as := uint32(o.MyAS)
	for _, p := range o.OptParams {
		pc, ok := p.(*bgp.OptionParameterCapability)
		if !ok {
			continue
		}
		for _, c := range pc.Capability {
			if c4, ok := c.(*bgp.CapFourOctetASNumber); ok {
				as = c4.CapValue
			}
		}
	}
	return as
}

// terminationReason renders a Termination message's TLVs.
func terminationReason(t *gobmp.BMPTermination) string {
	reason, text := "", ""
	for _, tlv := range t.Info {
		switch v := tlv.(type) {
		case *gobmp.BMPTermTLV16:
			if v.Type == gobmp.BMP_TERM_TLV_TYPE_REASON {
				reason = termReasonName(v.Value)
			}
		case *gobmp.BMPTermTLVString:
			text = v.Value
		}
	}
	switch {
	case reason != "" && text != "":
		return reason + ": " + text
	case reason != "":
		return reason
	case text != "":
		return text
	}
	return "no reason given"
}

func termReasonName(v uint16) string {
	switch v {
	case gobmp.BMP_TERM_REASON_ADMIN:
		return "administratively closed"
	case gobmp.BMP_TERM_REASON_UNSPEC:
		return "unspecified reason"
	case gobmp.BMP_TERM_REASON_OUT_OF_RESOURCES:
		return "out of resources"
	case gobmp.BMP_TERM_REASON_REDUNDANT_CONNECTION:
		return "redundant connection"
	case gobmp.BMP_TERM_REASON_PERMANENTLY_ADMIN:
		return "permanently administratively closed"
	}
	return fmt.Sprintf("reason %d", v)
}

// peerDownReason renders RFC 7854 section 4.9's reason codes.
func peerDownReason(d *gobmp.BMPPeerDownNotification) string {
	switch d.Reason {
	case gobmp.BMP_PEER_DOWN_REASON_LOCAL_BGP_NOTIFICATION:
		return "local system closed the session with a NOTIFICATION" + notificationText(d.BGPNotification)
	case gobmp.BMP_PEER_DOWN_REASON_LOCAL_NO_NOTIFICATION:
		return "local system closed the session without a NOTIFICATION"
	case gobmp.BMP_PEER_DOWN_REASON_REMOTE_BGP_NOTIFICATION:
		return "remote system closed the session with a NOTIFICATION" + notificationText(d.BGPNotification)
	case gobmp.BMP_PEER_DOWN_REASON_REMOTE_NO_NOTIFICATION:
		return "remote system closed the session without a NOTIFICATION"
	case gobmp.BMP_PEER_DOWN_REASON_PEER_DE_CONFIGURED:
		return "peer de-configured"
	}
	return fmt.Sprintf("reason %d", d.Reason)
}

func notificationText(m *bgp.BGPMessage) string {
	if m == nil {
		return ""
	}
	n, ok := m.Body.(*bgp.BGPNotification)
	if !ok {
		return ""
	}
	return fmt.Sprintf(" (code %d subcode %d)", n.ErrorCode, n.ErrorSubcode)
}

// Peer types of RFC 7854 section 4.2.
const (
	peerTypeGlobal = gobmp.BMP_PEER_TYPE_GLOBAL
	peerTypeRD     = gobmp.BMP_PEER_TYPE_L3VPN
	peerTypeLocal  = gobmp.BMP_PEER_TYPE_LOCAL
)
