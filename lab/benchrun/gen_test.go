package benchrun

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/cutover/cutover/cutover/plan"
	"github.com/cutover/cutover/cutover/runbook"
)

func TestInventoryBytes(t *testing.T) {
	want := `name,address,tenant,tier,probe
north-vm-000001,10.64.0.10,north,1,http:80/
south-vm-000002,10.64.0.11,south,2,http:80/
east-vm-000003,10.64.0.12,east,2,http:80/
west-vm-000004,10.64.0.13,west,2,http:80/
north-vm-000005,10.64.0.14,north,3,http:80/
south-vm-000006,10.64.0.15,south,3,http:80/
east-vm-000007,10.64.0.16,east,3,http:80/
west-vm-000008,10.64.0.17,west,3,tcp:80
north-vm-000009,10.64.0.18,north,3,http:80/
south-vm-000010,10.64.0.19,south,3,http:80/
east-vm-000011,10.64.0.20,east,1,http:80/
`
	if got := string(Inventory(11)); got != want {
		t.Errorf("Inventory(11):\n%s\nwant:\n%s", got, want)
	}
	// The same n, the same bytes; a larger n starts with the smaller's rows.
	a, b := Inventory(50_000), Inventory(50_000)
	if !bytes.Equal(a, b) {
		t.Fatal("Inventory(50000) differs between two calls")
	}
	if !bytes.HasPrefix(a, Inventory(1000)) {
		t.Error("Inventory(50000) does not start with Inventory(1000)")
	}
	if n := bytes.Count(a, []byte("\n")); n != 50_001 {
		t.Errorf("Inventory(50000) has %d lines, want 50001", n)
	}
	if got := fmt.Sprintf("%x", sha256.Sum256(Inventory(1000))); got != inventory1000Digest {
		t.Errorf("Inventory(1000) changed: sha256 %s, want %s (a change makes the bench's figures incomparable with earlier ones)", got, inventory1000Digest)
	}
}

// inventory1000Digest pins the generator's bytes.
const inventory1000Digest = "f1b67720ca45963c51489a7738af44e52f1a28bf7c3c32c85a4801c73cc15703"

func TestInventoryAddresses(t *testing.T) {
	for _, n := range []int{1, 255, 256, 70_000} {
		lines := strings.Split(strings.TrimSuffix(string(Inventory(n)), "\n"), "\n")[1:]
		if len(lines) != n {
			t.Fatalf("Inventory(%d): %d rows", n, len(lines))
		}
		want := netip.MustParseAddr("10.64.0.10")
		for i, l := range lines {
			f := strings.Split(l, ",")
			if got := netip.MustParseAddr(f[1]); got != want {
				t.Fatalf("Inventory(%d) row %d: address %s, want %s", n, i+1, got, want)
			}
			want = want.Next()
		}
	}
}

func TestRunbookValidates(t *testing.T) {
	for _, s := range []Spec{
		{VMs: 600, Canary: 10, BatchSize: 200},
		{VMs: 1, Canary: 0, BatchSize: 1},
		{VMs: 40, Canary: CanaryEligible(40), BatchSize: 7},
		{VMs: DefaultVMs, Canary: DefaultCanary, BatchSize: DefaultBatchSize},
	} {
		t.Run(fmt.Sprintf("%d-%d-%d", s.VMs, s.Canary, s.BatchSize), func(t *testing.T) {
			path, err := Write(t.TempDir(), s)
			if err != nil {
				t.Fatal(err)
			}
			rb, inv, warns, err := runbook.Load(path)
			if err != nil {
				t.Fatalf("the generated runbook does not validate: %v", err)
			}
			if len(warns) > 0 {
				t.Errorf("warnings: %v", warns)
			}
			if rb.Batching.Canary != s.Canary || rb.Batching.Size != s.BatchSize || rb.MaxPrefixes < s.VMs {
				t.Errorf("batching %+v, max_prefixes %d; want canary %d, size %d, max_prefixes ≥ %d",
					rb.Batching, rb.MaxPrefixes, s.Canary, s.BatchSize, s.VMs)
			}
			if rb.Move.From != SourceSite || rb.Move.To != TargetSite {
				t.Errorf("move %s → %s, want %s → %s", rb.Move.From, rb.Move.To, SourceSite, TargetSite)
			}
			if len(inv.VMs) != s.VMs {
				t.Fatalf("%d VMs, want %d", len(inv.VMs), s.VMs)
			}
			var addrs []netip.Addr
			for _, vm := range inv.VMs {
				for _, p := range vm.Prefixes {
					addrs = append(addrs, p.Addr())
				}
			}
			slices.SortFunc(addrs, netip.Addr.Compare)
			want := firstAddr
			for _, a := range addrs {
				if a != want {
					t.Fatalf("addresses are not consecutive from %s: %s where %s was due", firstAddr, a, want)
				}
				want = want.Next()
			}
			pl, _, err := plan.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if want := s.batches(); len(pl.Batches) != want {
				t.Errorf("%d batches, want %d", len(pl.Batches), want)
			}
			if s.Canary > 0 && len(pl.Batches[0].VMs) != s.Canary {
				t.Errorf("the first batch has %d VMs, want the canary's %d", len(pl.Batches[0].VMs), s.Canary)
			}
		})
	}
}

// batches is how many batches s makes: the canary, then the rest by
// BatchSize.
func (s Spec) batches() int {
	n := (s.VMs - s.Canary + s.BatchSize - 1) / s.BatchSize
	if s.Canary > 0 {
		n++
	}
	return n
}

func TestSpecCheck(t *testing.T) {
	for _, tc := range []struct {
		s    Spec
		want string
	}{
		{Spec{VMs: 50_000, Canary: 24, BatchSize: 10_000}, ""},
		{Spec{VMs: 1, Canary: 0, BatchSize: 1}, ""},
		{Spec{VMs: 0, Canary: 0, BatchSize: 1}, "--vms 0: want 1 to 200000"},
		{Spec{VMs: 200_001, Canary: 0, BatchSize: 1}, "--vms 200001: want 1 to 200000"},
		{Spec{VMs: 10, Canary: 0, BatchSize: 0}, "--batch-size 0: want at least 1"},
		{Spec{VMs: 10, Canary: -1, BatchSize: 5}, "--canary -1: want 0 to 9 (the canary takes tier 2 and 3 VMs only: 9 of the 10 generated)"},
		{Spec{VMs: 10, Canary: 10, BatchSize: 5}, "--canary 10: want 0 to 9 (the canary takes tier 2 and 3 VMs only: 9 of the 10 generated)"},
		{Spec{VMs: 1, Canary: 1, BatchSize: 5}, "--canary 1: want 0 to 0 (the canary takes tier 2 and 3 VMs only: 0 of the 1 generated)"},
	} {
		t.Run(fmt.Sprintf("%+v", tc.s), func(t *testing.T) {
			err := tc.s.Check()
			if got := fmt.Sprint(err); (err == nil) != (tc.want == "") || err != nil && got != tc.want {
				t.Errorf("Check() = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestCanaryEligible(t *testing.T) {
	for _, n := range []int{1, 9, 10, 11, 19, 20, 600, 50_000} {
		tier1 := 0
		for i := range n {
			if tier(i) == 1 {
				tier1++
			}
		}
		if got := CanaryEligible(n); got != n-tier1 {
			t.Errorf("CanaryEligible(%d) = %d, want %d", n, got, n-tier1)
		}
	}
}
