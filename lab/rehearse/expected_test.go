package rehearse

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover/cutover/cutover/plan"
)

// smallVariant writes testdata/small.yaml with its inventory into a
// directory of its own, each of the replacements (old, new, ...) made,
// and returns the runbook's path.
func smallVariant(t *testing.T, replace ...string) string {
	t.Helper()
	dir := t.TempDir()
	rb, err := os.ReadFile("testdata/small.yaml")
	if err != nil {
		t.Fatal(err)
	}
	inv, err := os.ReadFile("testdata/small.csv")
	if err != nil {
		t.Fatal(err)
	}
	s := string(rb)
	for i := 0; i+1 < len(replace); i += 2 {
		if !strings.Contains(s, replace[i]) {
			t.Fatalf("small.yaml has no %q", replace[i])
		}
		s = strings.Replace(s, replace[i], replace[i+1], 1)
	}
	if err := os.WriteFile(filepath.Join(dir, "small.csv"), inv, 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "small.yaml")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestExpected checks what a rehearsal expects of the runbook's policies
// for the faults, without a lab: a batch whose VMs a target-down fault
// stopped is held under readiness skip, moves under readiness pause (the
// rehearsal's person starts the VMs again and resumes) and is left to the
// gates with the check off.
func TestExpected(t *testing.T) {
	const (
		policy = "failure_policy: rollback-batch"
		hold   = "hold: 0s"
	)
	tests := []struct {
		name    string
		replace []string // in small.yaml
		faults  []string
		want    string
	}{
		{"skip holds", nil, []string{"target-down:100%@2"}, "done; committed [0 1 3]; rolled back []; held [2]; pending []"},
		{"skip holds, gates roll back", nil, []string{"target-down:1@2", "vm-down@1"}, "done; committed [0 3]; rolled back [1]; held [2]; pending []"},
		{"skip, the same batch", nil, []string{"target-down:1@2", "vm-down@2"}, "done; committed [0 1 3]; rolled back []; held [2]; pending []"},
		{"pause moves after the fix", []string{hold, hold + "\nreadiness: pause"}, []string{"target-down@2"}, "done; committed [0 1 2 3]; rolled back []; pending []"},
		{"off leaves it to the gates", []string{hold, hold + "\nreadiness: off"}, []string{"target-down@2"}, "done; committed [0 1 3]; rolled back [2]; pending []"},
		{"vm-down", nil, []string{"vm-down@1"}, "done; committed [0 2 3]; rolled back [1]; pending []"},
		{"slow-vm under the probe timeout", nil, []string{"slow-vm:100ms@1"}, "done; committed [0 1 2 3]; rolled back []; pending []"},
		{"slow-vm over the probe timeout", nil, []string{"slow-vm:1s@1"}, "done; committed [0 2 3]; rolled back [1]; pending []"},
		{"daemon-kill", nil, []string{"daemon-kill@1"}, "done; committed [0 1 2 3]; rolled back []; pending []"},
		{"rollback-all, readiness pause by default", []string{policy, "failure_policy: rollback-all"},
			[]string{"target-down@1", "vm-down@2"}, "aborted; committed []; rolled back [0 1 2]; pending [3]"},
		{"rollback-all, readiness skip", []string{policy, "failure_policy: rollback-all\nreadiness: skip"},
			[]string{"target-down@1", "vm-down@2"}, "aborted; committed []; rolled back [0 2]; held [1]; pending [3]"},
		{"rollback-all, a held batch after the failing one", []string{policy, "failure_policy: rollback-all\nreadiness: skip"},
			[]string{"vm-down@1", "target-down@2"}, "aborted; committed []; rolled back [0 1]; pending [2 3]"},
		{"a tolerant gate lets a small failure through", []string{"within: 15s}", "within: 15s, min_healthy: 90%, max_failures: -1}"},
			[]string{"vm-down:1@1"}, "done; committed [0 1 2 3]; rolled back []; pending []"},
		{"a tolerant gate, a failure beyond it", []string{"within: 15s}", "within: 15s, min_healthy: 90%, max_failures: -1}"},
			[]string{"vm-down:2@1"}, "done; committed [0 2 3]; rolled back [1]; pending []"},
		{"max_failures counts", []string{"within: 15s}", "within: 15s, min_healthy: 50%, max_failures: 1}"},
			[]string{"vm-down:1@1", "vm-down:2@2"}, "done; committed [0 1 3]; rolled back [2]; pending []"},
		{"http-5xx fails the probe gate", nil, []string{"http-5xx:1@1"}, "done; committed [0 2 3]; rolled back [1]; pending []"},
		{"http-5xx and a prometheus gate", []string{"within: 15s}", "within: 15s, min_healthy: 50%, max_failures: -1}\n  - {kind: prometheus, url: \"http://p:9090\", query: up, op: \">\", value: 0}"},
			[]string{"http-5xx:1@1", "vm-down:1@2"}, "done; committed [0 2 3]; rolled back [1]; pending []"},
		{"pause policy, readiness pause", []string{policy, "failure_policy: pause"},
			[]string{"target-down@1", "vm-down@2"}, "done; committed [0 1 3]; rolled back [2]; pending []"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pl, _, err := plan.Load(smallVariant(t, tt.replace...))
			if err != nil {
				t.Fatal(err)
			}
			if len(pl.Batches) != 4 {
				t.Fatalf("%d batches, want 4", len(pl.Batches))
			}
			var names []string
			for _, b := range pl.Batches {
				names = append(names, b.Name)
			}
			r := &rehearsal{pl: pl, at: map[int][]Fault{}}
			for _, s := range tt.faults {
				f, err := ParseFault(s)
				if err != nil {
					t.Fatal(err)
				}
				i, err := f.batchIndex(names)
				if err != nil {
					t.Fatal(err)
				}
				r.at[i] = append(r.at[i], f)
			}
			if got := r.expected().String(); got != tt.want {
				t.Errorf("expected %s\nwant     %s", got, tt.want)
			}
		})
	}
}
