// Package testenv holds the skip rules shared by the tests that need root,
// FRR or nftables: they skip with a message that says how to run them, and
// never fail for a missing privilege or tool.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// FRRDir is where Debian's frr package puts the daemons.
const FRRDir = "/usr/lib/frr"

// RequireRoot skips t when the process is not root, and in -short mode
// (integration tests are not unit tests).
func RequireRoot(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, nftables, netlink): run the tests as root, e.g. sudo scripts/test")
	}
}

// RequireFRR skips t like RequireRoot, and when FRR is not installed.
func RequireFRR(t testing.TB) {
	t.Helper()
	RequireRoot(t)
	for _, d := range []string{"zebra", "bgpd", "staticd"} {
		if _, err := os.Stat(FRRDir + "/" + d); err != nil {
			t.Skipf("needs FRR (%s/%s missing): install it with scripts/setup --packages", FRRDir, d)
		}
	}
	if _, err := exec.LookPath("vtysh"); err != nil {
		t.Skip("needs vtysh from FRR: install it with scripts/setup --packages")
	}
}

// RequireCommand skips t when name is not on PATH.
func RequireCommand(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("needs %s on PATH: install it with scripts/setup --packages", name)
	}
}
