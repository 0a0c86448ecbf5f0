//go:build linux

package kernel

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMain checks, when the root tests run, that they left the host's own
// nftables ruleset and ip rules as they were and no namespace behind.
func TestMain(m *testing.M) {
	flag.Parse()
	guard := os.Geteuid() == 0 && !testing.Short()
	var before string
	if guard {
		before = hostState()
	}
	code := m.Run()
	if guard {
		if after := hostState(); after != before {
			fmt.Fprintf(os.Stderr, "FAIL: the host's ruleset or ip rules changed during the tests\nbefore:\n%s\nafter:\n%s\n", before, after)
			code = 1
		}
		entries, _ := os.ReadDir("/run/netns")
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "cutover-nft-"+runID()+"-") {
				fmt.Fprintf(os.Stderr, "FAIL: namespace %s left behind\n", e.Name())
				code = 1
			}
		}
	}
	os.Exit(code)
}

// hostState returns the host namespace's ruleset and ip rules (read only).
func hostState() string {
	var b strings.Builder
	for _, cmd := range [][]string{{"nft", "list", "ruleset"}, {"ip", "-4", "rule"}, {"ip", "-6", "rule"}} {
		if _, err := exec.LookPath(cmd[0]); err != nil {
			continue
		}
		out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput()
		fmt.Fprintf(&b, "$ %s (%v)\n%s", strings.Join(cmd, " "), err, out)
	}
	return b.String()
}
