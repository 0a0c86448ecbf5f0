package nft

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func ma(s string) netip.Addr { return netip.MustParseAddr(s) }

func mp(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// sites returns two valid sites, skm1 (v4 and v6) and skm2 (v4 only).
func sites() []Site {
	return []Site{
		{Name: "skm1", Mark: 0xc01, Table: 101, NextHop4: ma("192.0.2.1"), NextHop6: ma("2001:db8:ffff::1")},
		{Name: "skm2", Mark: 0xc02, Table: 102, NextHop4: ma("192.0.2.2")},
	}
}

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		s    State
		want string // "" for valid
	}{
		{name: "empty", s: State{}},
		{name: "sites only", s: State{Sites: sites()}},
		{name: "moved", s: State{Sites: sites(), Moved: map[string][]netip.Prefix{
			"skm1": {mp("10.0.0.0/24"), mp("2001:db8::/64"), mp("255.255.255.255/32")},
			"skm2": {mp("10.0.1.0/32"), mp("10.0.1.1/32")},
		}}},
		{
			name: "sites",
			s: State{Sites: []Site{
				{Name: "SKM-1", Mark: 1, Table: 1, NextHop4: ma("192.0.2.1")},
				{Name: "a", Mark: 0, Table: 254, NextHop4: ma("192.0.2.1")},
				{Name: "b", Mark: 1, Table: 1},
				{Name: "b", Mark: 2, Table: 2, NextHop4: ma("192.0.2.1")},
				{Name: "c", Mark: 3, Table: 3, NextHop4: ma("2001:db8::1")},
				{Name: "d", Mark: 4, Table: 4, NextHop6: ma("fe80::1")},
				{Name: "e", Mark: 5, Table: 0, NextHop6: ma("::ffff:192.0.2.1")},
				{Name: "f", Mark: 6, Table: 6, NextHop4: ma("224.0.0.1")},
			}},
			want: `invalid dataplane state: site "SKM-1": name must be 1 to 24 of a-z, 0-9 and _
site "a": mark must not be 0
site "a": routing table 254 is reserved (default, main, local)
site "b": mark 0x1 is already used by site "SKM-1"
site "b": routing table 1 is already used by site "SKM-1"
site "b": no next-hop: set an IPv4 or an IPv6 next-hop, or both
site "b": defined twice
site "c": IPv4 next-hop 2001:db8::1 is not an IPv4 unicast address
site "d": IPv6 next-hop fe80::1 is link-local: use a global address
site "e": routing table 0 is out of range 1-4294967295
site "e": IPv6 next-hop ::ffff:192.0.2.1 is not an IPv6 unicast address
site "f": IPv4 next-hop 224.0.0.1 is not an IPv4 unicast address`,
		},
		{
			name: "moved",
			s: State{Sites: sites(), Moved: map[string][]netip.Prefix{
				"skm3": {mp("10.0.0.0/24")},
				"skm1": {{}, mp("::ffff:10.0.0.0/120"), mp("10.0.0.1/24"), mp("0.0.0.0/0"), mp("10.1.0.0/16"), mp("10.1.2.3/32"), mp("10.9.0.0/32")},
				"skm2": {mp("2001:db8::/64"), mp("10.1.0.0/16"), mp("10.9.0.0/32"), mp("10.9.0.0/32")},
			}},
			want: `invalid dataplane state: site "skm1": invalid prefix invalid Prefix
site "skm1": prefix ::ffff:10.0.0.0/120 is an IPv4-mapped IPv6 prefix: write 10.0.0.0/24
site "skm1": prefix 10.0.0.1/24 has host bits set: did you mean 10.0.0.0/24?
site "skm1": prefix 0.0.0.0/0 would steer every address of its family
site "skm2": prefix 2001:db8::/64 is IPv6 but the site has no IPv6 next-hop
moved: unknown site "skm3"
site "skm2": prefix 10.1.0.0/16 overlaps 10.1.0.0/16 of site "skm1"
site "skm1": prefix 10.1.2.3/32 overlaps 10.1.0.0/16 of site "skm1"
site "skm2": prefix 10.9.0.0/32 overlaps 10.9.0.0/32 of site "skm1"
site "skm2": prefix 10.9.0.0/32 overlaps 10.9.0.0/32 of site "skm1"`,
		},
		{
			name: "listed twice",
			s:    State{Sites: sites(), Moved: map[string][]netip.Prefix{"skm2": {mp("10.9.0.0/32"), mp("10.9.0.0/32")}}},
			want: `invalid dataplane state: site "skm2": prefix 10.9.0.0/32 is listed twice`,
		},
		{
			name: "many",
			s: State{Sites: sites(), Moved: map[string][]netip.Prefix{"skm2": func() []netip.Prefix {
				var ps []netip.Prefix
				for i := range 30 {
					ps = append(ps, mp(fmt.Sprintf("2001:db8::%x/128", i)))
				}
				return ps
			}()}},
			want: "invalid dataplane state: " + strings.Repeat("x\n", 25) + "and 5 more problems",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.s)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if tt.name == "many" && err != nil {
				// Only the shape: 25 problems, then a summary.
				lines := strings.Split(strings.TrimPrefix(got, "invalid dataplane state: "), "\n")
				for i := range lines[:len(lines)-1] {
					lines[i] = "x"
				}
				got = "invalid dataplane state: " + strings.Join(lines, "\n")
			}
			if got != tt.want {
				t.Errorf("Validate:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, ""},
		{Config{Table: "cutover-lab_2", NetNS: "cutover-gw", DrainTimeout: time.Second, RulePriority: 100}, ""},
		{Config{Table: "bad table", NetNS: "../x", DrainTimeout: -time.Second, RulePriority: 32766},
			"invalid dataplane config: table \"bad table\": want 1 to 64 of a-z, A-Z, 0-9, _ and -\n" +
				"netns \"../x\": want a name under /run/netns\n" +
				"drain timeout -1s is negative\n" +
				"rule priority 32766 is out of range 1-32765"},
	} {
		err := tt.cfg.Validate()
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("%+v: Validate = %q, want %q", tt.cfg, got, tt.want)
		}
	}
}
