package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cutover/cutover/cutover/engine"
)

// statusAPI serves GET /v1/status with st and records the bodies of the
// other requests it answers with 200.
type statusAPI struct {
	sock string
	mu   sync.Mutex
	got  []string
}

func newStatusAPI(t *testing.T, st engine.Status) *statusAPI {
	t.Helper()
	dir, err := os.MkdirTemp("", "cutover-cli") // short: a socket path has at most 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	api := &statusAPI{sock: filepath.Join(dir, "api.sock")}
	l, err := net.Listen("unix", api.sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodGet && r.URL.Path == "/v1/status" {
			_ = json.NewEncoder(w).Encode(st)
			return
		}
		b, _ := io.ReadAll(r.Body)
		api.mu.Lock()
		api.got = append(api.got, r.Method+" "+r.URL.Path+" "+string(b))
		api.mu.Unlock()
		_, _ = w.Write([]byte("{}"))
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return api
}

func (a *statusAPI) requests() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.got...)
}

// ended is a finished run of three batches with the given phases.
func ended(phase engine.RunPhase, result string, batches ...engine.BatchPhase) engine.Status {
	st := engine.Status{State: engine.RunState{Runbook: "rb.yaml", Source: "skm1", Target: "skm2", Phase: phase, Result: result}}
	for i, p := range batches {
		st.State.Batches = append(st.State.Batches, engine.BatchState{Index: i, Name: "b" + string(rune('0'+i)), VMs: 10, Phase: p})
	}
	st.Outcome = st.State.Outcome()
	st.AtSourceVMs, st.AtSourceBatches = st.State.AtSource()
	return st
}

// TestOutcomeExitCodes: status --wait exits with the run's outcome.
func TestOutcomeExitCodes(t *testing.T) {
	c, r, h := engine.BatchCommitted, engine.BatchRolledBack, engine.BatchHeld
	for _, tt := range []struct {
		name string
		st   engine.Status
		code int
		err  string
	}{
		{"all moved", ended(engine.PhaseDone, "3 batches committed, 0 rolled back", c, c, c), exitOK, ""},
		{"partial", ended(engine.PhaseDone, "1 batches committed, 1 rolled back, 1 held", c, r, h), exitRunPartly,
			"run finished with 20 VMs still at skm1: batch 1 b1 (rolled-back), 2 b2 (held); cutover status --batch N says why, cutover retry moves them again"},
		{"aborted", ended(engine.PhaseAborted, "rolled back: gate failed", r, r, engine.BatchPending), exitRunAbort, "run aborted: rolled back: gate failed"},
		{"no run", engine.Status{State: engine.RunState{Phase: engine.PhaseIdle}}, exitRefused, "status --wait: no run (phase idle)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			api := newStatusAPI(t, tt.st)
			_, _, code, err := run(t, "status", "--wait", "--socket", api.sock, "-o", "json")
			got := ""
			if err != nil {
				got = err.Error()
			}
			if code != tt.code || got != tt.err {
				t.Errorf("exit %d (%q), want %d (%q)", code, got, tt.code, tt.err)
			}
		})
	}
}

// TestRetryAndRollbackReason: what retry and rollback send.
func TestRetryAndRollbackReason(t *testing.T) {
	api := newStatusAPI(t, ended(engine.PhaseDone, "", engine.BatchCommitted, engine.BatchRolledBack))
	for _, tt := range []struct {
		args []string
		out  string
	}{
		{[]string{"retry"}, "retry: every rolled-back and held batch back to pending; the run goes on (cutover status --watch)\n"},
		{[]string{"retry", "--batch", "1", "--batch", "3"}, "retry: batch 1, 3 back to pending; the run goes on (cutover status --watch)\n"},
		{[]string{"rollback", "--batch", "1", "--reason", "vm-07 crashed"}, ""},
	} {
		out, _, code, err := run(t, append(tt.args, "--socket", api.sock)...)
		if code != exitOK || err != nil || (tt.out != "" && out != tt.out) {
			t.Errorf("%v: exit %d (%v), stdout %q; want %q", tt.args, code, err, out, tt.out)
		}
	}
	got := api.requests()
	want := []string{`"batches":[]`, `"batches":[1,3]`, `"batch":1,"reason":"vm-07 crashed"`}
	if len(got) != len(want) {
		t.Fatalf("requests %q", got)
	}
	for i, w := range want {
		if !strings.Contains(got[i], w) {
			t.Errorf("request %d %q lacks %s", i, got[i], w)
		}
	}
	for _, tt := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"retry", "--batch", "-1"}, exitUsage, "retry --batch -1: batches are numbered from 0"},
		{[]string{"status", "--batch", "9"}, exitUsage, "status --batch 9: the run has batches 0 to 1"},
		{[]string{"status", "--watch", "--wait"}, exitUsage, "status: give at most one of --watch, --wait, --batch N"},
	} {
		_, _, code, err := run(t, append(tt.args, "--socket", api.sock)...)
		if code != tt.code || err == nil || err.Error() != tt.err {
			t.Errorf("%v: exit %d (%v), want %d (%s)", tt.args, code, err, tt.code, tt.err)
		}
	}
}
