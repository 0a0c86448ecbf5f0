//go:build linux

package kernel

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// attr encodes one netlink attribute (nested when it holds others).
func attr(typ uint16, v []byte) []byte {
	b := make([]byte, 4, 4+len(v)+3)
	binary.NativeEndian.PutUint16(b[:2], uint16(4+len(v)))
	binary.NativeEndian.PutUint16(b[2:4], typ)
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func nested(typ uint16, attrs ...[]byte) []byte {
	var v []byte
	for _, a := range attrs {
		v = append(v, a...)
	}
	return attr(typ|unix.NLA_F_NESTED, v)
}

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func entry(attrs ...[]byte) []byte {
	b := []byte{unix.AF_INET, 0, 0, 0} // nfgenmsg
	for _, a := range attrs {
		b = append(b, a...)
	}
	return b
}

func TestParseCtFlow(t *testing.T) {
	v4 := netip.MustParseAddr("10.64.0.10").As4()
	v6 := netip.MustParseAddr("fd00:64::10").As16()
	tuple := func(dstType uint16, dst []byte, proto byte) []byte {
		return nested(ctaTupleOrig,
			nested(ctaTupleIP, attr(1, []byte{192, 0, 2, 1}), attr(dstType, dst)),
			nested(ctaTupleProto, attr(ctaProtoNum, []byte{proto})))
	}
	tcpState := func(s byte) []byte {
		return nested(ctaProtoinfo, nested(ctaProtoinfoTCP, attr(ctaTCPState, []byte{s})))
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want ctFlow
		ok   bool
	}{
		{"tcp established, marked",
			entry(tuple(ctaIPv4Dst, v4[:], unix.IPPROTO_TCP), attr(3, be32(8)), tcpState(3), attr(ctaMark, be32(0xc070001))),
			ctFlow{dst: netip.AddrFrom4(v4), mark: 0xc070001, tcp: true, tcpState: 3}, true},
		{"tcp time-wait has ended",
			entry(tuple(ctaIPv4Dst, v4[:], unix.IPPROTO_TCP), tcpState(tcpTimeWait)),
			ctFlow{dst: netip.AddrFrom4(v4), tcp: true, tcpState: tcpTimeWait}, true},
		{"udp over IPv6, unmarked",
			entry(tuple(ctaIPv6Dst, v6[:], unix.IPPROTO_UDP)),
			ctFlow{dst: netip.AddrFrom16(v6)}, true},
		{"no tuple", entry(attr(ctaMark, be32(1))), ctFlow{mark: 1}, false},
		{"truncated attribute", append(entry(tuple(ctaIPv4Dst, v4[:], unix.IPPROTO_TCP)), 0xff, 0x00, 0x08, 0x00),
			ctFlow{dst: netip.AddrFrom4(v4), tcp: true}, true},
		{"destination of the wrong size", entry(nested(ctaTupleOrig, nested(ctaTupleIP, attr(ctaIPv4Dst, []byte{10, 64})))),
			ctFlow{}, false},
		{"empty", nil, ctFlow{}, false},
	} {
		got, ok := parseCtFlow(tc.b)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: %+v, %v; want %+v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
		if tc.name == "tcp time-wait has ended" && !got.ended() {
			t.Errorf("%s: not ended", tc.name)
		}
	}
}
