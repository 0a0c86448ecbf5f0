package main

import (
	"strings"
	"testing"
)

// TestBenchRunErrors checks bench run's flags: each mistake exits 2 with
// its message before anything is generated or brought up.
func TestBenchRunErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--vms", "0"}, "--vms 0: want 1 to 200000"},
		{[]string{"--vms", "200001"}, "--vms 200001: want 1 to 200000"},
		{[]string{"--vms", "lots"}, `invalid argument "lots" for "--vms" flag: strconv.ParseInt: parsing "lots": invalid syntax`},
		{[]string{"--batch-size", "0"}, "--batch-size 0: want at least 1"},
		{[]string{"--batch-size", "-5"}, "--batch-size -5: want at least 1"},
		{[]string{"--canary", "-1"}, "--canary -1: want 0 to 45000 (the canary takes tier 2 and 3 VMs only: 45000 of the 50000 generated)"},
		{[]string{"--vms", "10", "--canary", "10"}, "--canary 10: want 0 to 9 (the canary takes tier 2 and 3 VMs only: 9 of the 10 generated)"},
		{[]string{"--lab", ""}, `--lab "": want a lab name`},
		{[]string{"--lab", "Bench Run"}, `--lab: lab name "Bench Run": want 1-31 characters of a-z, 0-9, '-' and '_', starting with a letter or digit`},
		{[]string{"-o", "yaml"}, `-o "yaml": want text or json`},
		{[]string{"extra"}, `unknown command "extra" for "cutover bench run"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, _, code, err := run(t, append([]string{"bench", "run"}, tc.args...)...)
			if err == nil || err.Error() != tc.want || code != exitUsage {
				t.Errorf("error %v (exit %d), want %q (exit %d)", err, code, tc.want, exitUsage)
			}
		})
	}
}
