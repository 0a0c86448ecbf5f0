//go:build linux

package kernel

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/cutover/cutover/internal/testenv"
)

// renderGoldens are the rulesets package nft's TestRender writes (go test
// -update in nft rewrites them); they stay with the test that writes them.
const renderGoldens = "../testdata/TestRender/*.golden"

// TestRenderGoldenNftCheck has nft check (`nft -c -f`, which changes
// nothing) every golden ruleset of nft.Render, in a throwaway namespace all
// the same.
func TestRenderGoldenNftCheck(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "nft")
	paths, err := filepath.Glob(renderGoldens)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatalf("no golden files match %s", renderGoldens)
	}
	ns := newTestNS(t, "golden")
	for _, p := range paths {
		path, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("ip", "netns", "exec", ns, "nft", "-c", "-f", path).CombinedOutput(); err != nil {
			t.Errorf("nft -c -f %s: %v\n%s", path, err, out)
		}
	}
}
