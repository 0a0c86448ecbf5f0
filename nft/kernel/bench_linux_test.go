//go:build linux

package kernel

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cutover/cutover/internal/testenv"
	"github.com/cutover/cutover/nft"
	"github.com/cutover/cutover/nft/internal/layout"
)

// benchSizes are the batch sizes of the benchmark.
var benchSizes = []int{2000, 10000, 50000}

// benchPrefixes returns n /32s from 10.0.0.0: adjacent ones ("contiguous",
// which the sets merge into one range) or every other address
// ("scattered", two kernel elements each: the worst case).
func benchPrefixes(n int, scattered bool) []netip.Prefix {
	ps := make([]netip.Prefix, n)
	a := netip.MustParseAddr("10.0.0.0")
	for i := range ps {
		ps[i] = netip.PrefixFrom(a, 32)
		a = a.Next()
		if scattered {
			a = a.Next()
		}
	}
	return ps
}

func benchLayouts() []string { return []string{"contiguous", "scattered"} }

// BenchmarkApply measures a whole Apply (validate, read, one flush, read
// back) that adds N addresses to a site's set ("add") or removes them
// ("remove"), in a throwaway namespace. Besides ns/op it reports the phases
// in ms.
func BenchmarkApply(b *testing.B) {
	testenv.RequireRoot(b)
	ns := gatewayNS(b, "bench")
	dp, err := New(nft.Config{NetNS: ns}, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	defer dp.Close()
	ctx := context.Background()
	empty := nft.State{Sites: testSites()}
	for _, op := range []string{"add", "remove"} {
		for _, n := range benchSizes {
			for _, pattern := range benchLayouts() {
				full := nft.State{Sites: testSites(), Moved: map[string][]netip.Prefix{"skm2": benchPrefixes(n, pattern == "scattered")}}
				from, to := empty, full
				if op == "remove" {
					from, to = full, empty
				}
				b.Run(fmt.Sprintf("%s/%d/%s", op, n, pattern), func(b *testing.B) {
					var phases nft.Timings
					for i := 0; i < b.N; i++ {
						b.StopTimer()
						if _, err := dp.Apply(ctx, from); err != nil {
							b.Fatal(err)
						}
						b.StartTimer()
						res, err := dp.Apply(ctx, to)
						if err != nil {
							b.Fatal(err)
						}
						phases.Validate += res.Timings.Validate
						phases.Read += res.Timings.Read
						phases.Plan += res.Timings.Plan
						phases.Flush += res.Timings.Flush
						phases.ReadBack += res.Timings.ReadBack
					}
					ms := func(d time.Duration) float64 { return float64(d) / float64(b.N) / 1e6 }
					b.ReportMetric(ms(phases.Validate), "validate-ms")
					b.ReportMetric(ms(phases.Read), "read-ms")
					b.ReportMetric(ms(phases.Plan), "plan-ms")
					b.ReportMetric(ms(phases.Flush), "flush-ms")
					b.ReportMetric(ms(phases.ReadBack), "readback-ms")
				})
			}
		}
	}
}

// BenchmarkNftF makes the same kernel changes as BenchmarkApply with
// `nft -f` (add element / delete element of the same kernel elements, one
// transaction; no read back), for comparison.
func BenchmarkNftF(b *testing.B) {
	testenv.RequireRoot(b)
	testenv.RequireCommand(b, "nft")
	ns := gatewayNS(b, "benchf")
	dp, err := New(nft.Config{NetNS: ns}, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	defer dp.Close()
	// The largest batch first: the _hosts sets get the size it needs (they
	// never shrink), as in BenchmarkApply; nft -f cannot grow them.
	largest := benchPrefixes(slices.Max(benchSizes), true)
	for _, st := range []nft.State{{Sites: testSites(), Moved: map[string][]netip.Prefix{"skm2": largest}}, {Sites: testSites()}} {
		if _, err := dp.Apply(context.Background(), st); err != nil {
			b.Fatal(err)
		}
	}
	dir := b.TempDir()
	for _, op := range []string{"add", "remove"} {
		for _, n := range benchSizes {
			for _, pattern := range benchLayouts() {
				c, err := compile(nft.State{Sites: testSites(), Moved: map[string][]netip.Prefix{"skm2": benchPrefixes(n, pattern == "scattered")}})
				if err != nil {
					b.Fatal(err)
				}
				files := map[string]string{}
				for _, verb := range []string{"add", "delete"} {
					var text strings.Builder
					for _, ps := range layout.KernelSets("skm2") {
						rs := c.Physical(ps.Name)
						if len(rs) == 0 {
							continue
						}
						var elems []string
						for _, r := range rs {
							elems = append(elems, r.String())
						}
						fmt.Fprintf(&text, "%s element inet %s %s {\n%s\n}\n", verb, nft.DefaultTable, ps.Name, strings.Join(elems, ",\n"))
					}
					files[verb] = filepath.Join(dir, fmt.Sprintf("%s-%d-%s.nft", verb, n, pattern))
					if err := os.WriteFile(files[verb], []byte(text.String()), 0o644); err != nil {
						b.Fatal(err)
					}
				}
				before, run := files["delete"], files["add"]
				if op == "remove" {
					before, run = files["add"], files["delete"]
				}
				runNft := func(file string) error {
					if out, err := exec.Command("ip", "netns", "exec", ns, "nft", "-f", file).CombinedOutput(); err != nil {
						return fmt.Errorf("nft -f %s: %v: %s", filepath.Base(file), err, out)
					}
					return nil
				}
				// b.Run reports true for a sub-benchmark -bench leaves out too.
				ran := false
				ok := b.Run(fmt.Sprintf("%s/%d/%s", op, n, pattern), func(b *testing.B) {
					ran = true
					for i := 0; i < b.N; i++ {
						b.StopTimer()
						// Deleting what is not there fails and changes
						// nothing: the set is empty either way.
						if err := runNft(before); err != nil && op == "remove" {
							b.Fatal(err)
						}
						b.StartTimer()
						if err := runNft(run); err != nil {
							b.Fatal(err)
						}
					}
				})
				if ok && ran && op == "add" {
					if err := runNft(files["delete"]); err != nil {
						b.Fatal(err)
					}
				}
			}
		}
	}
}
