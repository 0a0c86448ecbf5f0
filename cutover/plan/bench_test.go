package plan

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover/cutover/cutover/runbook"
)

// inventoryCSV returns a CSV inventory of n VMs over 20 tenants, every
// tenth with an IPv6 address too.
func inventoryCSV(n int) []byte {
	var b strings.Builder
	b.WriteString("name,address,tenant,tier,probe\n")
	v4 := netip.MustParseAddr("10.64.0.10")
	v6 := netip.MustParseAddr("fd00:64::10")
	for i := range n {
		tenant := fmt.Sprintf("tenant-%02d", i*7%20)
		tier := 1 + i*13%3
		fmt.Fprintf(&b, "vm-%06d,%s,%s,%d,http:80/\n", i, v4, tenant, tier)
		v4 = v4.Next()
		if i%10 == 0 {
			fmt.Fprintf(&b, "vm-%06d,%s,%s,%d,http:80/\n", i, v6, tenant, tier)
			v6 = v6.Next()
		}
	}
	return []byte(b.String())
}

// bigCase writes the base runbook with a 100,000-VM inventory.
func bigCase(b *testing.B, n int) string {
	b.Helper()
	dir := b.TempDir()
	rb, err := os.ReadFile("../runbook/testdata/base/runbook.yaml")
	if err != nil {
		b.Fatal(err)
	}
	text := strings.NewReplacer(
		"tenants: [alpha, beta, gamma]\n", "",
		"max_prefixes: 100", "max_prefixes: 200000",
		"{canary: 2, size: 4, max_per_tenant: 2}", "{canary: 10, size: 200, group_by_tenant: true, max_per_tenant: 80}",
	).Replace(string(rb))
	if err := os.WriteFile(filepath.Join(dir, "runbook.yaml"), []byte(text), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "inventory.csv"), inventoryCSV(n), 0o644); err != nil {
		b.Fatal(err)
	}
	return filepath.Join(dir, "runbook.yaml")
}

// BenchmarkLoadInventory100k parses and checks a 100,000-VM CSV inventory
// (duplicates, overlaps, syntax) from memory.
func BenchmarkLoadInventory100k(b *testing.B) {
	data := inventoryCSV(100_000)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, _, err := runbook.ParseInventory("inventory.csv", data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoad100k is Load: runbook, inventory file and the checks
// between them (allowed ranges, caps, tenants).
func BenchmarkLoad100k(b *testing.B) {
	path := bigCase(b, 100_000)
	for b.Loop() {
		if _, _, _, err := runbook.Load(path); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPlan100k is NewPlan on a loaded 100,000-VM inventory (loading
// excluded; see BenchmarkLoad100k): canary, batches, routes per batch.
func BenchmarkPlan100k(b *testing.B) {
	rb, inv, _, err := runbook.Load(bigCase(b, 100_000))
	if err != nil {
		b.Fatal(err)
	}
	var pl *Plan
	for b.Loop() {
		if pl, err = New(rb, inv); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(pl.Batches)), "batches")
}

// BenchmarkRoutes100k is what the engine calls per batch: every route
// with half of the 100,000 VMs moved.
func BenchmarkRoutes100k(b *testing.B) {
	rb, inv, _, err := runbook.Load(bigCase(b, 100_000))
	if err != nil {
		b.Fatal(err)
	}
	pl, err := New(rb, inv)
	if err != nil {
		b.Fatal(err)
	}
	half := len(pl.Batches) / 2
	for b.Loop() {
		if len(pl.Routes(half)) == 0 {
			b.Fatal("no routes")
		}
	}
}

// BenchmarkDataplane100k is the nft state with half moved.
func BenchmarkDataplane100k(b *testing.B) {
	rb, inv, _, err := runbook.Load(bigCase(b, 100_000))
	if err != nil {
		b.Fatal(err)
	}
	pl, err := New(rb, inv)
	if err != nil {
		b.Fatal(err)
	}
	half := len(pl.Batches) / 2
	for b.Loop() {
		pl.Dataplane(half)
	}
}
