package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cutover/cutover/cutover/runbook"
)

// TestInputErr checks that runbook mistakes are told by type, wherever
// they sit in the chain, and that other errors keep exit code 1 even when
// their text looks like a runbook's.
func TestInputErr(t *testing.T) {
	fe := runbook.FieldError{File: "rb.yaml", Line: 3, Field: "bgp.local_as", Msg: "AS 0 is reserved"}
	for _, tc := range []struct {
		name string
		err  error
		code int
	}{
		{"validation errors", runbook.ValidationErrors{fe}, 2},
		{"wrapped validation errors", fmt.Errorf("run: %w", runbook.ValidationErrors{fe}), 2},
		{"field error", fmt.Errorf("rehearse: %w", fe), 2},
		{"text only", errors.New("rb.yaml:3: bgp.local_as: AS 0 is reserved"), 1},
		{"other", errors.New("no cutover daemon is running"), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := inputErr(tc.err)
			if got := exitCode(err); got != tc.code || err.Error() != tc.err.Error() {
				t.Errorf("inputErr(%v): exit %d, want %d (error %v)", tc.err, got, tc.code, err)
			}
		})
	}
}

func TestRunDryRunInvalidRunbook(t *testing.T) {
	_, _, code, err := run(t, "run", "--dry-run", "../../cutover/runbook/testdata/bad/runbook.yaml")
	if code != 2 || err == nil || !strings.Contains(err.Error(), "bgp.local_as: AS 0 is reserved") {
		t.Errorf("run --dry-run of a bad runbook: exit %d, %v", code, err)
	}
}
