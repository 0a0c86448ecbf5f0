// Package runbooktest holds helpers for tests that need runbooks and
// inventories: a base case edited per test, and the invariants every
// accepted inventory satisfies.
package runbooktest

import (
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cutover/cutover/cutover/runbook"
)

// Edit is {old, new}: replace old (which must occur in the base runbook)
// with new.
type Edit [2]string

// WriteCase copies the runbook.yaml and inventory.csv of the folder base
// into a temporary directory, applies the edits to the runbook and, if
// inventory is not empty, replaces the inventory. It returns the
// runbook's path.
func WriteCase(t testing.TB, base string, edits []Edit, inventory string) string {
	t.Helper()
	dir := t.TempDir()
	rb, err := os.ReadFile(filepath.Join(base, "runbook.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	inv, err := os.ReadFile(filepath.Join(base, "inventory.csv"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(rb)
	for _, e := range edits {
		if !strings.Contains(text, e[0]) {
			t.Fatalf("base runbook has no %q", e[0])
		}
		text = strings.Replace(text, e[0], e[1], 1)
	}
	if inventory != "" {
		inv = []byte(inventory)
	}
	path := filepath.Join(dir, "runbook.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "inventory.csv"), inv, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// validText reports whether s is a non-empty UTF-8 string of at most max
// characters: what the inventory demands of names and tenants.
func validText(s string, max int) bool {
	return s != "" && utf8.ValidString(s) && utf8.RuneCountInString(s) <= max
}

// CheckInventory asserts what every accepted inventory satisfies.
func CheckInventory(t testing.TB, inv *runbook.Inventory) {
	t.Helper()
	if len(inv.VMs) == 0 {
		t.Fatal("accepted an inventory without VMs")
	}
	n := 0
	all := map[netip.Prefix]string{}
	names := map[string]bool{}
	for i, vm := range inv.VMs {
		if i > 0 && runbook.CompareVMs(inv.VMs[i-1], vm) >= 0 {
			t.Errorf("VMs not sorted by tenant, name at %q", vm.Name)
		}
		if names[vm.Name] {
			t.Errorf("vm %q twice", vm.Name)
		}
		names[vm.Name] = true
		if !validText(vm.Name, 128) || !validText(vm.Tenant, 64) || vm.Tier < 1 || vm.Tier > 3 || vm.Line < 1 {
			t.Errorf("bad vm accepted: %+v", vm)
		}
		if _, err := runbook.ParseProbe(vm.Probe.String()); err != nil {
			t.Errorf("vm %q: probe %q does not parse: %v", vm.Name, vm.Probe, err)
		}
		if len(vm.Prefixes) == 0 {
			t.Errorf("vm %q has no prefixes", vm.Name)
		}
		if !slices.IsSortedFunc(vm.Prefixes, netip.Prefix.Compare) {
			t.Errorf("vm %q: prefixes not sorted", vm.Name)
		}
		for _, p := range vm.Prefixes {
			n++
			if !p.IsValid() || p.Masked() != p || p.Bits() == 0 {
				t.Errorf("vm %q: bad prefix %s accepted", vm.Name, p)
			}
			if other, dup := all[p]; dup {
				t.Errorf("prefix %s on %q and %q", p, other, vm.Name)
			}
			all[p] = vm.Name
		}
	}
	if n != inv.Prefixes() {
		t.Errorf("Prefixes() = %d, VMs hold %d", inv.Prefixes(), n)
	}
	// No overlaps: brute force on small inventories, the reference for the sweep.
	if len(all) <= 300 {
		ps := slices.Collect(maps.Keys(all))
		for i := range ps {
			for j := i + 1; j < len(ps); j++ {
				if ps[i].Overlaps(ps[j]) {
					t.Errorf("overlapping prefixes accepted: %s (%s) and %s (%s)", ps[i], all[ps[i]], ps[j], all[ps[j]])
				}
			}
		}
	}
}

// FuzzParseInventory: the parser never panics, and whatever it accepts
// satisfies the inventory invariants and parses the same way twice.
