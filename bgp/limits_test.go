package bgp

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"
)

var (
	pfx = netip.MustParsePrefix
	ip  = netip.MustParseAddr
)

func labLimits() Limits {
	return Limits{Allowed: []netip.Prefix{pfx("10.64.0.0/14"), pfx("fd00:64::/48")}, MaxPrefixes: 3}
}

func TestCheckRoutes(t *testing.T) {
	nh4, nh6 := ip("10.255.2.2"), ip("fd00:255:2::2")
	tests := []struct {
		name   string
		routes []Route
		limits Limits
		want   string // "" = accepted
	}{
		{"nothing", nil, labLimits(), ""},
		{"nothing with zero limits", nil, Limits{}, ""},
		{"v4 and v6 inside", []Route{{Prefix: pfx("10.64.0.10/32"), NextHop: nh4}, {Prefix: pfx("fd00:64::a/128"), NextHop: nh6}}, labLimits(), ""},
		{"exactly the range", []Route{{Prefix: pfx("10.64.0.0/14"), NextHop: nh4}}, labLimits(), ""},
		{"exactly max", []Route{{Prefix: pfx("10.64.0.1/32"), NextHop: nh4}, {Prefix: pfx("10.64.0.2/32"), NextHop: nh4}, {Prefix: pfx("10.64.0.3/32"), NextHop: nh4}}, labLimits(), ""},
		{
			"outside", []Route{{Prefix: pfx("10.1.0.0/24"), NextHop: nh4}}, labLimits(),
			"refuse routes: 1 of 1 break the limits: 10.1.0.0/24 via 10.255.2.2: outside the allowed ranges 10.64.0.0/14, fd00:64::/48",
		},
		{
			"wider than the range", []Route{{Prefix: pfx("10.64.0.0/13"), NextHop: nh4}}, labLimits(),
			"refuse routes: 1 of 1 break the limits: 10.64.0.0/13 via 10.255.2.2: outside the allowed ranges 10.64.0.0/14, fd00:64::/48",
		},
		{
			"default routes", []Route{{Prefix: pfx("0.0.0.0/0"), NextHop: nh4}, {Prefix: pfx("::/0"), NextHop: nh6}},
			Limits{Allowed: []netip.Prefix{pfx("10.0.0.0/8")}, MaxPrefixes: 5},
			"refuse routes: 2 of 2 break the limits: 0.0.0.0/0 via 10.255.2.2: default route; ::/0 via fd00:255:2::2: default route",
		},
		{
			"host bits", []Route{{Prefix: pfx("10.64.0.1/24"), NextHop: nh4}}, labLimits(),
			"refuse routes: 1 of 1 break the limits: 10.64.0.1/24 via 10.255.2.2: host bits set, want 10.64.0.0/24",
		},
		{
			"family mismatch", []Route{{Prefix: pfx("10.64.0.1/32"), NextHop: nh6}, {Prefix: pfx("fd00:64::1/128"), NextHop: nh4}}, labLimits(),
			"refuse routes: 2 of 2 break the limits: 10.64.0.1/32 via fd00:255:2::2: next-hop is IPv6, prefix is IPv4; fd00:64::1/128 via 10.255.2.2: next-hop is IPv4, prefix is IPv6",
		},
		{
			"no next-hop", []Route{{Prefix: pfx("10.64.0.1/32")}}, labLimits(),
			"refuse routes: 1 of 1 break the limits: 10.64.0.1/32 via <no next-hop>: no next-hop",
		},
		{
			"unspecified next-hop", []Route{{Prefix: pfx("10.64.0.1/32"), NextHop: ip("0.0.0.0")}}, labLimits(),
			"refuse routes: 1 of 1 break the limits: 10.64.0.1/32 via 0.0.0.0: next-hop must be a unicast address without zone",
		},
		{
			"invalid prefix", []Route{{NextHop: nh4}}, labLimits(),
			"refuse routes: 1 of 1 break the limits: <no prefix> via 10.255.2.2: invalid prefix",
		},
		{
			"mapped prefix", []Route{{Prefix: pfx("::ffff:10.64.0.1/128"), NextHop: nh6}}, labLimits(),
			"refuse routes: 1 of 1 break the limits: ::ffff:10.64.0.1/128 via fd00:255:2::2: IPv4-mapped IPv6 prefix; write it as IPv4",
		},
		{
			"duplicate", []Route{{Prefix: pfx("10.64.0.1/32"), NextHop: nh4}, {Prefix: pfx("10.64.0.1/32"), NextHop: ip("10.255.1.2")}}, labLimits(),
			"refuse routes: 1 of 2 break the limits: 10.64.0.1/32 via 10.255.1.2: duplicate prefix",
		},
		{
			"over max", []Route{{Prefix: pfx("10.64.0.1/32"), NextHop: nh4}, {Prefix: pfx("10.64.0.2/32"), NextHop: nh4}, {Prefix: pfx("10.64.0.3/32"), NextHop: nh4}, {Prefix: pfx("10.64.0.4/32"), NextHop: nh4}}, labLimits(),
			"refuse routes: 4 routes, more than max prefixes 3",
		},
		{
			"zero limits refuse everything", []Route{{Prefix: pfx("10.64.0.1/32"), NextHop: nh4}}, Limits{},
			"refuse routes: 1 routes, more than max prefixes 0; 1 of 1 break the limits: 10.64.0.1/32 via 10.255.2.2: outside the allowed ranges (none)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckRoutes(tt.routes, tt.limits)
			got := ""
			if err != nil {
				got = err.Error()
				var re *RefusedError
				if !errors.As(err, &re) {
					t.Errorf("error is %T, want *RefusedError", err)
				}
			}
			if got != tt.want {
				t.Errorf("CheckRoutes:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestCheckRoutesListsFirstOffenders(t *testing.T) {
	var rs []Route
	for i := range 25 {
		rs = append(rs, Route{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(i), 0}), 24), NextHop: ip("10.255.2.2")})
	}
	err := CheckRoutes(rs, Limits{Allowed: []netip.Prefix{pfx("10.64.0.0/14")}, MaxPrefixes: 100})
	var re *RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("got %v, want *RefusedError", err)
	}
	if re.Offending != 25 || len(re.Offenses) != maxOffenses || re.Offenses[0].Route.Prefix != pfx("192.168.0.0/24") {
		t.Errorf("offending %d, listed %d, first %v; want 25, %d, 192.168.0.0/24", re.Offending, len(re.Offenses), re.Offenses[0].Route.Prefix, maxOffenses)
	}
	want := "192.168.9.0/24 via 10.255.2.2: outside the allowed ranges 10.64.0.0/14 (and 15 more)"
	if got := err.Error(); len(got) < len(want) || got[len(got)-len(want):] != want {
		t.Errorf("error ends %q, want suffix %q", got, want)
	}
}

func TestLimitsValidate(t *testing.T) {
	tests := []struct {
		limits Limits
		want   string
	}{
		{labLimits(), ""},
		{Limits{}, "limits: allowed ranges: at least one is needed\nlimits: max prefixes 0: must be at least 1"},
		{Limits{Allowed: []netip.Prefix{pfx("0.0.0.0/0")}, MaxPrefixes: 1}, "limits: allowed range 0.0.0.0/0: would allow everything"},
		{Limits{Allowed: []netip.Prefix{pfx("10.64.0.1/14")}, MaxPrefixes: 1}, "limits: allowed range 10.64.0.1/14: host bits set, want 10.64.0.0/14"},
		{Limits{Allowed: []netip.Prefix{{}}, MaxPrefixes: -1}, "limits: allowed range: invalid prefix\nlimits: max prefixes -1: must be at least 1"},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			got := ""
			if err := tt.limits.Validate(); err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("Validate:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// BenchmarkCheckRoutes checks 50,000 routes, the size of a large cutover.
func BenchmarkCheckRoutes(b *testing.B) {
	rs := make([]Route, 50000)
	base := ip("10.64.0.10")
	for i := range rs {
		rs[i] = Route{Prefix: netip.PrefixFrom(base, 32), NextHop: ip("10.255.2.2")}
		base = base.Next()
	}
	l := Limits{Allowed: []netip.Prefix{pfx("10.64.0.0/14")}, MaxPrefixes: 100000}
	b.ReportAllocs()
	for b.Loop() {
		if err := CheckRoutes(rs, l); err != nil {
			b.Fatal(err)
		}
	}
}
