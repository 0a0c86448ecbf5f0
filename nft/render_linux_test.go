//go:build linux

package nft

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/cutover/cutover/internal/testenv"
)

// TestRenderGoldenNftCheck has nft check (`nft -c -f`, which changes
// nothing) every golden ruleset, in a throwaway namespace all the same.
func TestRenderGoldenNftCheck(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "nft")
	ns := newTestNS(t, "golden")
	for _, tt := range renderCases {
		path, err := filepath.Abs(goldenPath(tt.name))
		if err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("ip", "netns", "exec", ns, "nft", "-c", "-f", path).CombinedOutput(); err != nil {
			t.Errorf("nft -c -f %s: %v\n%s", path, err, out)
		}
	}
}
