package rehearse

import (
	"bufio"
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/cutover/cutover/internal/logcheck"
	"github.com/cutover/cutover/internal/testenv"
)

// unitCaps reads the capabilities the shipped unit and its netns drop-in
// grant (AmbientCapabilities lines, added up as systemd does).
func unitCaps(t *testing.T, paths ...string) []string {
	t.Helper()
	var caps []string
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "AmbientCapabilities="); ok {
				for _, c := range strings.Fields(v) {
					if !slices.Contains(caps, c) {
						caps = append(caps, c)
					}
				}
			}
		}
		f.Close()
	}
	if len(caps) == 0 {
		t.Fatalf("no AmbientCapabilities in %v", paths)
	}
	return caps
}

// TestRehearseConfined rehearses with the daemon started as the systemd
// unit runs it: not root but a user of its own, with only the capabilities
// of dist/cutover.service and of the drop-in dist/cutover-netns.conf (the
// lab's daemon programs the edge's namespace and probes from hosp's). The
// daemon is killed once and started again the same way; every batch must
// commit, the edge must keep its routes, and rollback --all must work.
func TestRehearseConfined(t *testing.T) {
	testenv.RequireFRR(t)
	c := &Confinement{UID: 61999, GID: 61999,
		Caps: unitCaps(t, "../../dist/cutover.service", "../../dist/cutover-netns.conf")}
	kill, _ := ParseFault("daemon-kill@1")
	res, err := Run(context.Background(), Options{EvidenceDir: t.TempDir(), Runbook: "testdata/small.yaml", Lab: "rc" + randSuffix(), Confine: c,
		Faults: []Fault{kill}, Out: testWriter{t}, Log: zerolog.New(logcheck.Writer(t)), MeasureRollback: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range res.Checked {
		t.Log("checked:", line)
	}
	if !res.OK {
		t.Fatalf("rehearsal not OK: %v", res.Problems)
	}
	if !slices.ContainsFunc(res.Checked, func(s string) bool { return strings.Contains(s, "runs as uid 61999 gid 61999 with capabilities") }) {
		t.Errorf("no evidence that the daemon ran confined: %q", res.Checked)
	}
	if res.Actual.Phase != "done" || len(res.Actual.RolledBack) != 0 {
		t.Errorf("outcome %s", res.Actual)
	}
	t.Logf("confined to %v: lab up %s, run %s, rollback --all %s", c.Caps, res.LabUp, res.RunTook, res.Rollback)
}
