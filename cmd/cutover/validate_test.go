package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/cutover/cutover/cutover/runbook/runbooktest"
)

// run executes the root command with args and returns stdout, stderr,
// the exit code and the error.
func run(t *testing.T, args ...string) (stdout, stderr string, code int, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	a := newApp()
	root := newRootCmd(a)
	root.SetArgs(append(args, "--log-format", "json"))
	root.SetOut(&out)
	root.SetErr(&errb)
	err = root.Execute()
	return out.String(), errb.String(), a.exitCode(err), err
}

func TestValidateExamples(t *testing.T) {
	tests := []struct{ runbook, want string }{
		{"../../runbooks/helse-nord/runbook.yaml", "ok: 2000 VMs, 2024 prefixes, 16 batches\n"},
		{"../../runbooks/drain-upgrade/out.yaml", "ok: 500 VMs, 535 prefixes, 7 batches\n"},
		{"../../runbooks/drain-upgrade/back.yaml", "ok: 500 VMs, 535 prefixes, 5 batches\n"},
		{"../../runbooks/dr-drill/failover.yaml", "ok: 800 VMs, 848 prefixes, 3 batches\n"},
		{"../../runbooks/dr-drill/failback.yaml", "ok: 800 VMs, 848 prefixes, 9 batches\n"},
	}
	for _, tt := range tests {
		out, errOut, _, err := run(t, "validate", tt.runbook)
		if err != nil || out != tt.want || errOut != "" {
			t.Errorf("validate %s: %v\nstdout %q\nstderr %q\nwant %q", tt.runbook, err, out, errOut, tt.want)
		}
	}
}

func TestValidateErrors(t *testing.T) {
	const bad = "../../cutover/runbook/testdata/bad/runbook.yaml"
	out, errOut, code, err := run(t, "validate", bad)
	if code != 2 {
		t.Fatalf("exit code %d (%v), want 2", code, err)
	}
	if out != "" {
		t.Errorf("stdout %q, want nothing", out)
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	wantFirst := []string{
		"warning: ../../cutover/runbook/testdata/bad/runbook.yaml:6: sites.skm2: not used by move: ignored",
		"warning: ../../cutover/runbook/testdata/bad/inventory.csv:1: ignoring extra column(s): owner",
		`../../cutover/runbook/testdata/bad/runbook.yaml:1: version: unsupported version: this cutover reads version 1 (value "2")`,
	}
	for i, w := range wantFirst {
		if i >= len(lines) || lines[i] != w {
			t.Fatalf("stderr line %d:\n%s\nwant %q", i, errOut, w)
		}
	}
	if n := len(lines) - 2; n != 34 {
		t.Errorf("%d errors listed, want 34:\n%s", n, errOut)
	}
	if want := bad + ": 34 errors"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

func TestValidateMissingFile(t *testing.T) {
	_, errOut, code, err := run(t, "validate", "no/such/runbook.yaml")
	if code != 2 || errOut != "no/such/runbook.yaml: cannot read the runbook: no such file or directory\n" {
		t.Errorf("code %d, err %v, stderr %q", code, err, errOut)
	}
}

func TestValidateJSON(t *testing.T) {
	out, _, code, _ := run(t, "validate", "-o", "json", "../../cutover/runbook/testdata/bad/runbook.yaml")
	if code != 2 {
		t.Fatalf("exit code %d, want 2", code)
	}
	var res struct {
		OK     bool `json:"ok"`
		Errors []struct {
			File  string `json:"file"`
			Line  int    `json:"line"`
			Field string `json:"field"`
			Value string `json:"value"`
			Msg   string `json:"msg"`
		} `json:"errors"`
		Warnings []struct{ Msg string } `json:"warnings"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if res.OK || len(res.Errors) != 34 || len(res.Warnings) != 2 {
		t.Fatalf("ok %v, %d errors, %d warnings", res.OK, len(res.Errors), len(res.Warnings))
	}
	e := res.Errors[0]
	if e.Line != 1 || e.Field != "version" || e.Value != "2" || !strings.HasPrefix(e.Msg, "unsupported version") {
		t.Errorf("first error %+v", e)
	}
	out, _, _, err := run(t, "validate", "-o", "json", "../../runbooks/helse-nord/runbook.yaml")
	if err != nil || !strings.Contains(out, `"ok": true`) || !strings.Contains(out, `"batches": 16`) {
		t.Errorf("valid runbook as JSON: %v\n%s", err, out)
	}
}

func TestValidateUsage(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"validate"}, "accepts 1 arg(s), received 0"},
		{[]string{"validate", "-o", "yaml", "x.yaml"}, `-o "yaml": want text or json`},
		{[]string{"validate", "--bogus", "x.yaml"}, "unknown flag: --bogus"},
	}
	for _, tt := range tests {
		_, _, code, err := run(t, tt.args...)
		if err == nil || err.Error() != tt.want || code != 2 {
			t.Errorf("%v: %v (code %d), want %q", tt.args, err, code, tt.want)
		}
	}
}

// TestValidateDefaultRouteInHalves: a default route written as two /1s, in
// the allowed ranges and in the inventory, is refused with exit 2.
func TestValidateDefaultRouteInHalves(t *testing.T) {
	path := runbooktest.WriteCase(t, "../../cutover/runbook/testdata/base",
		[]runbooktest.Edit{{"allowed_prefixes: [10.64.0.0/14, \"fd00:64::/48\"]", "allowed_prefixes: [0.0.0.0/1, 128.0.0.0/1, \"fd00:64::/48\"]"}},
		"name,address,tenant,tier,probe\nlow,0.0.0.0/1,t1,3,\nhigh,128.0.0.0/1,t1,3,\n")
	_, errOut, code, _ := run(t, "validate", path)
	if code != 2 {
		t.Fatalf("exit code %d, want 2; stderr:\n%s", code, errOut)
	}
	for _, want := range []string{
		`allowed_prefixes[0]: shorter than /12, the runbook's min_prefix_length.allowed_ipv4: list the VM ranges (value "0.0.0.0/1")`,
		`allowed_prefixes[1]: shorter than /12, the runbook's min_prefix_length.allowed_ipv4: list the VM ranges (value "128.0.0.0/1")`,
		`inventory.csv:2: address: shorter than /24, the runbook's min_prefix_length.ipv4 (value "0.0.0.0/1")`,
		`inventory.csv:3: address: shorter than /24, the runbook's min_prefix_length.ipv4 (value "128.0.0.0/1")`,
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
}
