package main

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestGenMan generates the man pages into a temporary directory: one page
// per command a person can run or list (hidden ones and help have none),
// each with its examples; cutover(1) has the exit codes.
func TestGenMan(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1767225600") // 2026-01-01: the pages do not depend on today
	dir := t.TempDir()
	var out, errb bytes.Buffer
	a := newApp()
	root := newRootCmd(a)
	root.SetArgs([]string{"gen-man", dir, "--log-format", "json"})
	root.SetOut(&out)
	root.SetErr(&errb)
	if err := root.Execute(); err != nil {
		t.Fatalf("gen-man: %v\n%s", err, errb.String())
	}

	var want []string
	var visit func(c *cobra.Command)
	visit = func(c *cobra.Command) {
		want = append(want, strings.ReplaceAll(c.CommandPath(), " ", "-")+".1")
		for _, s := range c.Commands() {
			if s.IsAvailableCommand() && !s.IsAdditionalHelpTopicCommand() {
				visit(s)
			}
		}
	}
	visit(root)
	slices.Sort(want)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, want) {
		t.Fatalf("pages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, p := range []string{"cutover.1", "cutover-lab-up.1", "cutover-confirm.1", "cutover-reconcile.1", "cutover-completion-bash.1"} {
		if !slices.Contains(got, p) {
			t.Errorf("no page %s", p)
		}
	}
	for _, p := range []string{"cutover-gen-man.1", "cutover-lab-responder.1", "cutover-help.1"} {
		if slices.Contains(got, p) {
			t.Errorf("page %s for a hidden command", p)
		}
	}
	page, err := os.ReadFile(dir + "/cutover.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"Exit codes:", "3  the daemon is unreachable", "Jan 2026"} {
		if !strings.Contains(string(page), w) {
			t.Errorf("cutover.1 lacks %q", w)
		}
	}
	page, _ = os.ReadFile(dir + "/cutover-rollback.1")
	if !strings.Contains(string(page), "EXAMPLE") || !strings.Contains(string(page), "cutover rollback --batch 3") {
		t.Errorf("cutover-rollback.1 lacks its examples:\n%s", page)
	}
}
