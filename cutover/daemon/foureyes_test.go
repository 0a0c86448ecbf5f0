package daemon

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cutover/cutover/cutover/daemon/client"
	"github.com/cutover/cutover/cutover/engine"
)

// TestDaemonFourEyes runs a runbook whose before-start needs two
// operators through the daemon's socket: after nina's go the run still
// waits (and says for whom), nina again is refused, a daemon restart keeps
// her go, and ola's go starts the run. Both answers are in the journal.
func TestDaemonFourEyes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: only root's client may answer for another person, as sudo does")
	}
	src, err := os.ReadFile(daemonRunbook)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := os.ReadFile(filepath.Join(filepath.Dir(daemonRunbook), "inventory.csv"))
	if err != nil {
		t.Fatal(err)
	}
	rbDir := t.TempDir()
	text := strings.Replace(string(src), "confirm: [before-start]", "confirm: [{point: before-start, operators: 2}]", 1)
	if text == string(src) {
		t.Fatal("the test runbook has no confirm: [before-start] to change")
	}
	rb := filepath.Join(rbDir, "runbook.yaml")
	if err := os.WriteFile(rb, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rbDir, "inventory.csv"), inv, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx := context.Background()
	h := openDaemon(t, dir, nil)
	as := func(name string) *client.Client {
		c := client.New(h.cl.Socket)
		c.Operator = name
		return c
	}
	if err := as("nina").Run(ctx, rb, false); err != nil {
		t.Fatalf("run: %v", err)
	}
	h.waitFor("before-start", func(s engine.RunState) bool { return s.Confirm == "before-start" })
	if err := as("nina").Confirm(ctx, "before-start", true); err != nil {
		t.Fatal(err)
	}
	st := h.waitFor("nina's go", func(s engine.RunState) bool { return len(s.ConfirmGo) == 1 })
	if st.Confirm != "before-start" || st.ConfirmOperators != 2 || !slices.Equal(st.ConfirmGo, []string{"nina"}) || len(st.Applied) != 0 {
		t.Fatalf("after one go: confirm %q needs %d, go from %v, applied %v", st.Confirm, st.ConfirmOperators, st.ConfirmGo, st.Applied)
	}
	err = as("nina").Confirm(ctx, "before-start", true)
	if want := `confirm: nina already said go at "before-start", which needs 2 different operators: another operator must say go`; err == nil || err.Error() != want {
		t.Fatalf("nina twice: %v, want %q", err, want)
	}
	h.stop()

	h = openDaemon(t, dir, nil)
	st = h.waitFor("the restarted daemon", func(engine.RunState) bool { return true })
	if !slices.Equal(st.ConfirmGo, []string{"nina"}) || st.ConfirmGoAt != "before-start" {
		t.Fatalf("after a restart: go from %v at %q", st.ConfirmGo, st.ConfirmGoAt)
	}
	if st.Confirm == "" {
		// A restart pauses the run as interrupted; resuming comes back to
		// the point, with nina's go still standing.
		if err := as("per").Resume(ctx); err != nil {
			t.Fatal(err)
		}
		h.waitFor("before-start again", func(s engine.RunState) bool { return s.Confirm == "before-start" })
	}
	if err := as("ola").Confirm(ctx, "before-start", true); err != nil {
		t.Fatal(err)
	}
	st = h.waitFor("the end", func(s engine.RunState) bool { return s.Phase == engine.PhaseDone })
	if !slices.Equal(st.Applied, []int{0, 1, 2, 3}) {
		t.Fatalf("applied %v", st.Applied)
	}
	es, err := h.cl.Journal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var answers []string
	for _, e := range es {
		if e.Type == engine.RecConfirm {
			answers = append(answers, string(e.Data))
		}
	}
	want := []string{
		`{"point":"before-start","go":true,"operator":"root (nina)","by":"nina","pending":1}`,
		`{"point":"before-start","go":true,"operator":"root (ola)","by":"ola"}`,
	}
	if !slices.Equal(answers, want) {
		t.Errorf("journal's answers:\n%s\nwant:\n%s", strings.Join(answers, "\n"), strings.Join(want, "\n"))
	}
}
