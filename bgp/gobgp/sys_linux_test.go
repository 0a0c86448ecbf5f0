package gobgp

import (
	"net/netip"
	"testing"
)

func TestProcAddr(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
	}{
		{"0100007F:0277", "127.0.0.1"},
		{"0100FF0A:B3F2", "10.255.0.1"},
		{"000000FD000000000000000001000000:00B3", "fd00::1"},
		{"0000000000000000FFFF00000100007F:0050", "::ffff:127.0.0.1"},
		{"XYZ:0050", ""},
		{"0100007F", ""},
	} {
		got, ok := procAddr(tc.in)
		want, _ := netip.ParseAddr(tc.want)
		if ok != want.IsValid() || got != want {
			t.Errorf("procAddr(%q) = %v, %v; want %v", tc.in, got, ok, tc.want)
		}
	}
}
