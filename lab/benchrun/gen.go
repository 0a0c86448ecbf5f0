package benchrun

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// The generated runbook's shape: the lab's default addressing, VMs moved
// from skm1 to skm2.
const (
	// SourceSite and TargetSite are the sites the generated runbook moves
	// the VMs from and to.
	SourceSite = "skm1"
	TargetSite = "skm2"
	// MaxVMs is the most VMs a bench generates: they fit its allowed
	// IPv4 range (10.64.0.0/14) with room to spare.
	MaxVMs = 200_000
	// RunbookFile and InventoryFile are the names of the generated files.
	RunbookFile   = "runbook.yaml"
	InventoryFile = "inventory.csv"
)

// firstAddr is the first VM's address; the others count up from it.
var firstAddr = netip.MustParseAddr("10.64.0.10")

// tenants are the generated VMs' tenants, in turn.
var tenants = []string{"north", "south", "east", "west"}

// Spec says what to generate: VMs VMs, moved in a canary of Canary VMs and
// batches of BatchSize.
type Spec struct {
	VMs       int
	Canary    int
	BatchSize int
}

// Check says what is wrong with s, naming the flag of `cutover bench run`
// that sets each value; nil when nothing is.
func (s Spec) Check() error {
	switch {
	case s.VMs < 1 || s.VMs > MaxVMs:
		return fmt.Errorf("--vms %d: want 1 to %d", s.VMs, MaxVMs)
	case s.BatchSize < 1:
		return fmt.Errorf("--batch-size %d: want at least 1", s.BatchSize)
	case s.Canary < 0 || s.Canary > CanaryEligible(s.VMs):
		return fmt.Errorf("--canary %d: want 0 to %d (the canary takes tier 2 and 3 VMs only: %d of the %d generated)",
			s.Canary, CanaryEligible(s.VMs), CanaryEligible(s.VMs), s.VMs)
	}
	return nil
}

// tier is the tier of the i-th generated VM (from 0): one VM in ten is
// tier 1, three are tier 2, the rest tier 3.
func tier(i int) int {
	switch i % 10 {
	case 0:
		return 1
	case 1, 2, 3:
		return 2
	}
	return 3
}

// CanaryEligible is how many of n generated VMs a canary may take: those
// of tier 2 and 3.
func CanaryEligible(n int) int { return n - (n+9)/10 }

// probe is the probe of the i-th generated VM: HTTP mostly, one VM in
// eight a TCP connect.
func probe(i int) string {
	if i%8 == 7 {
		return "tcp:80"
	}
	return "http:80/"
}

// Inventory returns the CSV inventory of n VMs: name, address, tenant,
// tier, probe. The same n gives the same bytes: addresses count up from
// 10.64.0.10, the tenants take turns, tiers and probes follow the VM's
// position.
func Inventory(n int) []byte {
	var b strings.Builder
	b.Grow(48 * (n + 1))
	b.WriteString("name,address,tenant,tier,probe\n")
	a := firstAddr
	for i := range n {
		t := tenants[i%len(tenants)]
		fmt.Fprintf(&b, "%s-vm-%06d,%s,%s,%d,%s\n", t, i+1, a, t, tier(i), probe(i))
		a = a.Next()
	}
	return []byte(b.String())
}

// Runbook returns the runbook of s for its inventory file: the lab's two
// sites, one edge observed by BMP, the VM ranges allowed, a bgp gate and a
// probe gate on every batch, rollback-batch, no hold, the nft dataplane.
func Runbook(s Spec) []byte {
	return fmt.Appendf(nil, `version: 1
name: bench-%d
description: cutover bench run, %d generated VMs, canary %d then batches of %d
inventory: %s
sites:
  %s: {next_hop: {ipv4: 10.255.1.2, ipv6: "fd00:255:1::2"}}
  %s: {next_hop: {ipv4: 10.255.2.2, ipv6: "fd00:255:2::2"}}
move: {from: %s, to: %s}
bgp:
  local_as: 65100
  router_id: 10.255.0.2
  listen_port: -1
  announce_source: false
  graceful_restart: {enabled: true, restart_time: 120s}
  peers:
    - {address: 10.255.0.1, as: 65000, hold_time: 9s, keepalive: 3s, observe: bmp, observe_fallback: sent, description: edge}
allowed_prefixes: [10.64.0.0/14, "fd00:64::/48"]
max_prefixes: %d
batching: {canary: %d, size: %d}
gates:
  - {kind: bgp, timeout: 60s}
  - {kind: probe, min_healthy: 99%%, max_failures: 0, rise: 2, fall: 2, interval: 1s, timeout: 1s, concurrency: 256, within: 60s}
failure_policy: rollback-batch
hold: 0s
dataplane: {table: cutover}
`, s.VMs, s.VMs, s.Canary, s.BatchSize, InventoryFile, SourceSite, TargetSite, SourceSite, TargetSite,
		maxPrefixes(s.VMs), s.Canary, s.BatchSize)
}

// maxPrefixes is the generated runbook's safety cap for n VMs (one address
// each): a fifth more, at least 100 more.
func maxPrefixes(n int) int { return n + max(n/5, 100) }

// Write writes the runbook of s and its inventory into dir (made when
// missing) and returns the runbook's path.
func Write(dir string, s Spec) (string, error) {
	if err := s.Check(); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("bench: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, InventoryFile), Inventory(s.VMs), 0o644); err != nil {
		return "", fmt.Errorf("bench: write the inventory: %w", err)
	}
	path := filepath.Join(dir, RunbookFile)
	if err := os.WriteFile(path, Runbook(s), 0o644); err != nil {
		return "", fmt.Errorf("bench: write the runbook: %w", err)
	}
	return path, nil
}
