package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/cutover/daemon/client"
	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/evidence"
	"github.com/cutover/cutover/cutover/plan"
	"github.com/cutover/cutover/cutover/report"
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

// TestRehearsalLine: what run says about the rehearsal of the bytes it
// sends, for each state of the store.
func TestRehearsalLine(t *testing.T) {
	const path = "../../runbooks/helse-nord/runbook.yaml"
	pl, _, err := plan.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(t.TempDir(), "rehearsals")
	green := t.TempDir()
	rec := &evidence.Record{RehearsalRecord: report.RehearsalRecord{Runbook: pl.Runbook.Name, RunbookDigest: pl.Runbook.Digest,
		InventoryDigest: pl.Inventory.Digest, Rehearsed: time.Date(2026, 12, 1, 22, 10, 0, 0, time.UTC), Green: true,
		Outcome: engine.OutcomeAllMoved, Took: 108 * time.Second}}
	if _, err := (evidence.Store{Dir: green}).Write(rec); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name     string
		dir      string
		required bool
		want     string
		warn     bool
	}{
		{"none", empty, false, "not rehearsed: no green rehearsal of these bytes in " + empty + " (no rehearsal of helse-nord-skm1-to-skm2 on record)", false},
		{"none, required", empty, true, "not rehearsed: no green rehearsal of these bytes in " + empty + " (no rehearsal of helse-nord-skm1-to-skm2 on record)" +
			"; the runbook has require_rehearsal: the daemon refuses it without one; rehearse it: cutover lab rehearse " + path, true},
		{"green", green, true, "rehearsed: green rehearsal of helse-nord-skm1-to-skm2 on 2026-12-01 22:10 UTC (all-moved, took 1m48s)", false},
		{"unreadable store", file, true, "cannot tell whether these bytes were rehearsed: rehearsal records: open " + file +
			": not a directory (the daemon checks its own records)", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pl.Runbook.RequireRehearsal = tt.required
			if got, warn := rehearsalLine(pl, path, tt.dir); got != tt.want || warn != tt.warn {
				t.Errorf("rehearsalLine = %q, warn %v\nwant %q, warn %v", got, warn, tt.want, tt.warn)
			}
		})
	}
}

// TestRunSaysRehearsed: run logs the rehearsal note before it sends the
// run, and its JSON result carries it.
func TestRunSaysRehearsed(t *testing.T) {
	sock := fakeAPI(t, http.StatusOK, client.ErrorBody{})
	ev := filepath.Join(t.TempDir(), "rehearsals")
	out, errOut, code, err := run(t, "run", "--socket", sock, "--evidence-dir", ev, "--detach", "-o", "json", "../../runbooks/helse-nord/runbook.yaml")
	if err != nil || code != 0 {
		t.Fatalf("run: exit %d, %v\n%s", code, err, errOut)
	}
	want := "not rehearsed: no green rehearsal of these bytes in " + ev + " (no rehearsal of helse-nord-skm1-to-skm2 on record)"
	var res runResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Rehearsal != want || !res.Started {
		t.Errorf("result %s (%v): want rehearsal %q", out, err, want)
	}
	var line struct{ Level, Op, Runbook, Message string }
	if err := json.Unmarshal([]byte(errOut), &line); err != nil || line.Level != "info" || line.Op != "rehearsal" || line.Message != want {
		t.Errorf("log %q (%v): want one info line with the note", errOut, err)
	}
}
