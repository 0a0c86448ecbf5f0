package nft

import (
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/cutover/cutover/internal/golden"
)

// renderCases are rendered to testdata/TestRender/<name>.golden; the root
// test TestRenderGoldenNftCheck of nft/kernel has `nft -c -f` check them.
var renderCases = []struct {
	name string
	cfg  Config
	s    State
}{
	{name: "no_sites"},
	{name: "sites_only", s: State{Sites: sites()}},
	{name: "batch", s: State{Sites: sites(), Moved: map[string][]netip.Prefix{
		// Adjacent addresses merge into a range; single addresses go to the
		// _hosts set; the highest addresses have no interval end.
		"skm1": {mp("10.0.0.1/32"), mp("10.0.0.2/32"), mp("10.0.0.3/32"), mp("10.0.0.7/32"), mp("10.1.0.0/24"),
			mp("10.1.1.0/24"), mp("255.255.255.255/32"), mp("2001:db8:1::/64"), mp("2001:db8:2::5/128"),
			mp("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128")},
		"skm2": {mp("10.2.0.9/32")},
	}}},
	{name: "custom_table", cfg: Config{Table: "cutover-lab", RulePriority: 1234},
		s: State{Sites: sites()[1:], Moved: map[string][]netip.Prefix{"skm2": {mp("10.2.0.0/31")}}}},
	{name: "invalid", s: State{Sites: sites(), Moved: map[string][]netip.Prefix{"skm2": {mp("10.2.0.1/24")}}}},
}

func goldenPath(name string) string {
	return filepath.Join("testdata", "TestRender", name+".golden")
}

func TestRender(t *testing.T) {
	for _, tt := range renderCases {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.cfg.Render(tt.s)
			golden.Check(t, goldenPath(tt.name), []byte(got))
		})
	}
	if Render(renderCases[2].s) != (Config{}).Render(renderCases[2].s) {
		t.Error("Render and Config{}.Render differ")
	}
}
