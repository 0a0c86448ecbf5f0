package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover/cutover/internal/testenv"
)

// TestLabStreams runs the cutover binary as a script does, with standard
// output and standard error on pipes: each stream holds one format. The
// log (standard error) is JSON records only, the error last among them;
// the result (standard output) is plain lines, or with -o json one JSON
// value.
func TestLabStreams(t *testing.T) {
	testenv.RequireFRR(t)
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("needs the go command to build cutover")
	}
	bin := filepath.Join(t.TempDir(), "cutover")
	if out, err := exec.Command(gobin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	name := fmt.Sprintf("cli%d", os.Getpid()%100000)
	cutover := func(args ...string) (stdout, stderr string, code int) {
		t.Helper()
		var out, errb bytes.Buffer
		c := exec.Command(bin, args...)
		c.Stdout, c.Stderr = &out, &errb
		err := c.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%s: %v", strings.Join(args, " "), err)
		}
		checkLog(t, args, errb.String())
		return out.String(), errb.String(), code
	}
	t.Cleanup(func() { cutover("lab", "down", "--name", name) })

	out, _, code := cutover("lab", "up", "--vms", "2", "--name", name)
	if code != 0 || !plainLines(out, 4) || !strings.HasPrefix(out, fmt.Sprintf("lab %q up in ", name)) {
		t.Errorf("lab up: exit %d, stdout:\n%s", code, out)
	}
	out, _, code = cutover("lab", "up", "--vms", "2", "--name", name, "-o", "json")
	var up labUpResult
	if code != 0 || json.Unmarshal([]byte(out), &up) != nil || up.Lab != name || up.VMs != 2 || up.Controller.Namespace != "cutover-"+name+"-ctl" {
		t.Errorf("lab up -o json: exit %d, stdout:\n%s", code, out)
	}
	out, _, code = cutover("lab", "fault", "link-down", "--name", name)
	if want := fmt.Sprintf("fault link-down in lab %s: the edge's link to skm2 down\n", name); code != 0 || out != want {
		t.Errorf("lab fault: exit %d, stdout %q, want %q", code, out, want)
	}
	out, _, code = cutover("lab", "fault", "link-down", "--up", "--name", name, "-o", "json")
	var f faultResult
	if code != 0 || json.Unmarshal([]byte(out), &f) != nil || f.Injected != "the edge's link to skm2 up" || !f.Up {
		t.Errorf("lab fault -o json: exit %d, stdout:\n%s", code, out)
	}
	out, stderr, code := cutover("lab", "fault", "daemon-kill", "--name", name)
	if code != 1 || out != "" || !strings.Contains(stderr, `"exit_code":1`) {
		t.Errorf("lab fault daemon-kill without a daemon: exit %d, stdout %q, stderr:\n%s", code, out, stderr)
	}
	out, _, code = cutover("lab", "down", "--name", name, "-o", "json")
	var down struct{ Lab string }
	if code != 0 || json.Unmarshal([]byte(out), &down) != nil || down.Lab != name {
		t.Errorf("lab down -o json: exit %d, stdout:\n%s", code, out)
	}
	out, _, code = cutover("lab", "down", "--name", name)
	if code != 0 || !plainLines(out, 1) {
		t.Errorf("lab down: exit %d, stdout:\n%s", code, out)
	}
	out, stderr, code = cutover("lab", "status", "--name", name)
	if code != 1 || out != "" || strings.Count(stderr, "\n") != 1 {
		t.Errorf("lab status of a lab that is down: exit %d, stdout %q, stderr:\n%s", code, out, stderr)
	}
}

// checkLog fails t unless every line of log is a JSON object.
func checkLog(t *testing.T, args []string, log string) {
	t.Helper()
	for _, l := range strings.Split(strings.TrimSuffix(log, "\n"), "\n") {
		var rec map[string]any
		if l != "" && json.Unmarshal([]byte(l), &rec) != nil {
			t.Errorf("%s: standard error holds a line that is not a JSON record: %q", strings.Join(args, " "), l)
		}
	}
}

// plainLines reports whether s is n lines of text, none of them JSON.
func plainLines(s string, n int) bool {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	for _, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "{") || l == "" {
			return false
		}
	}
	return len(lines) == n && strings.HasSuffix(s, "\n")
}
