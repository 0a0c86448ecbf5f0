package daemon

import (
	"context"
	"io"
	"os/exec"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/testenv"
)

// hostState captures what a dry run must not touch: network namespaces,
// routes, ip rules and the nftables ruleset of the host.
func hostState(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for name, argv := range map[string][]string{
		"netns":   {"ip", "netns", "list"},
		"routes4": {"ip", "-4", "route", "show", "table", "all"},
		"routes6": {"ip", "-6", "route", "show", "table", "all"},
		"rules4":  {"ip", "-4", "rule", "show"},
		"rules6":  {"ip", "-6", "rule", "show"},
		"nft":     {"nft", "list", "ruleset"},
	} {
		b, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v %s", argv, err, b)
		}
		out[name] = string(b)
	}
	return out
}

func TestDryRunTouchesNothing(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "nft")
	before := hostState(t)
	if err := DryRun(context.Background(), "../../runbooks/helse-nord/runbook.yaml", time.Now(), io.Discard); err != nil {
		t.Fatal(err)
	}
	after := hostState(t)
	for k, v := range before {
		// Other tests may run in parallel packages and add their own
		// namespaces; the dry run itself must add none named after it.
		if k == "netns" {
			continue
		}
		if after[k] != v {
			t.Errorf("dry run changed the host's %s:\nbefore:\n%s\nafter:\n%s", k, v, after[k])
		}
	}
}
