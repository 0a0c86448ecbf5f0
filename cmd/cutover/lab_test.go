package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLabExport(t *testing.T) {
	out, errOut, _, err := run(t, "lab", "export", "--format", "clab", "--vms", "3")
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if !strings.HasPrefix(out, "# cutover lab \"lab\" for containerlab") || !strings.Contains(out, "\nname: lab\nprefix: cutover\n") ||
		!strings.Contains(out, `- endpoints: ["edge:skm2", "skm2:edge"]`) {
		t.Errorf("export to stdout:\n%s", out)
	}

	dir := t.TempDir()
	file := filepath.Join(dir, "cutover.clab.yml")
	if _, errOut, _, err := run(t, "lab", "export", "--out", file, "--name", "demo", "--vms", "2", "--vms6", "1"); err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	y, err := os.ReadFile(file)
	if err != nil || !strings.Contains(string(y), "\nname: demo\n") {
		t.Fatalf("%s: %v\n%s", file, err, y)
	}
	vms, err := os.ReadFile(filepath.Join(dir, "demo-files", "vms.txt"))
	if err != nil || string(vms) != "10.64.0.10/32\n10.64.0.11/32\nfd00:64::10/128\n" {
		t.Errorf("vms.txt = %q, %v", vms, err)
	}
	fi, err := os.Stat(filepath.Join(dir, "demo-files", "site.sh"))
	if err != nil || fi.Mode().Perm()&0o100 == 0 {
		t.Errorf("site.sh not executable: %v %v", fi, err)
	}
	for _, f := range []string{"frr.conf", "daemons", "vtysh.conf"} {
		if _, err := os.Stat(filepath.Join(dir, "demo-files", "edge", f)); err != nil {
			t.Error(err)
		}
	}
}

func TestLabErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"lab", "export", "--format", "gns3"}, `--format "gns3": want clab`, 2},
		{[]string{"lab", "export", "--vms", "-1"}, "--vms -1 --vms6 0: want numbers >= 0", 2},
		{[]string{"lab", "export", "--name", "Big Lab"}, `lab name "Big Lab": want 1-31 characters of a-z, 0-9, '-' and '_', starting with a letter or digit`, 2},
		{[]string{"lab", "status", "--name", "never-up-x1"},
			"open lab \"never-up-x1\": lab is not up (no /run/cutover/lab/never-up-x1/state.json): run `cutover lab up --name never-up-x1`", 1},
		{[]string{"lab", "status", "--name", "never-up-x1", "-o", "yaml"}, `-o "yaml": want text or json`, 2},
		{[]string{"lab", "http", "not-an-ip"}, `address: ParseAddr("not-an-ip"): unable to parse IP`, 2},
		{[]string{"lab", "vtysh"}, "accepts 1 arg(s), received 0", 2},
		{[]string{"lab", "export", "-o", "lab/cutover.clab.yml"},
			`-o "lab/cutover.clab.yml": want text or json (-o is the output format; write a file with --out lab/cutover.clab.yml)`, 2},
		{[]string{"lab", "fault", "meteor"},
			`fault "meteor": unknown kind "meteor" (want one of vm-down, target-down, slow-vm, http-5xx, bgp-reset, link-down, daemon-kill)`, 2},
		{[]string{"lab", "fault", "vm-down", "--name", "never-up-x1"}, "vm-down needs --addrs", 2},
		{[]string{"lab", "fault", "slow-vm", "--addrs", "10.64.0.10,nope"}, `--addrs: ParseAddr("nope"): unable to parse IP`, 2},
		{[]string{"lab", "fault", "bgp-reset", "-o", "yaml"}, `-o "yaml": want text or json`, 2},
		{[]string{"lab", "fault", "link-down", "--name", "never-up-x1"},
			"open lab \"never-up-x1\": lab is not up (no /run/cutover/lab/never-up-x1/state.json): run `cutover lab up --name never-up-x1`", 1},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, _, code, err := run(t, tc.args...)
			if err == nil || err.Error() != tc.want || code != tc.code {
				t.Errorf("error %v (exit %d), want %q (exit %d)", err, code, tc.want, tc.code)
			}
		})
	}
}
