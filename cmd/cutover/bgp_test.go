package main

import (
	"strings"
	"testing"
)

func TestBGPErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"bgp", "announce"}, "give exactly one of --to SITE and --withdraw", 2},
		{[]string{"bgp", "announce", "--to", "skm2", "--withdraw"}, "give exactly one of --to SITE and --withdraw", 2},
		{[]string{"bgp", "announce", "--withdraw", "--hold"}, "--hold goes with --to, not --withdraw", 2},
		{[]string{"bgp", "announce", "--to", "skm3"}, `--to "skm3": want skm1 or skm2`, 2},
		{[]string{"bgp", "announce", "--to", "skm2", "--lab", "never-up-x2"},
			"open lab \"never-up-x2\": lab is not up (no /run/cutover/lab/never-up-x2/state.json): run `cutover lab up --name never-up-x2`", 1},
		{[]string{"bench", "bgp", "--sizes", "2000,lots"}, `--sizes "2000,lots": want numbers from 1 to 200000, comma-separated`, 2},
		{[]string{"bench", "bgp", "--sizes", "0"}, `--sizes "0": want numbers from 1 to 200000, comma-separated`, 2},
		{[]string{"bench", "bgp", "--runs", "0"}, "--runs 0: want at least 1", 2},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, _, code, err := run(t, tc.args...)
			if err == nil || err.Error() != tc.want || code != tc.code {
				t.Errorf("error %v (exit %d), want %q (exit %d)", err, code, tc.want, tc.code)
			}
		})
	}
}
