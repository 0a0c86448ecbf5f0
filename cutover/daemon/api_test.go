package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/cutover/daemon/client"
	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/runbook"

	"github.com/rs/zerolog"
)

// fakeControl records what the API asked of the daemon.
type fakeControl struct {
	mu    sync.Mutex
	calls []string
	runs  []client.RunRequest
}

func (f *fakeControl) record(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeControl) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeControl) Run(_ context.Context, req client.RunRequest) error {
	f.mu.Lock()
	f.runs = append(f.runs, req)
	f.mu.Unlock()
	f.record("run %s (%d bytes) %s (%d bytes) yes=%v by %s", req.Runbook.Name, len(req.Runbook.Content),
		req.Inventory.Name, len(req.Inventory.Content), req.Yes, req.Operator)
	return nil
}
func (f *fakeControl) Status(int) engine.Status { return engine.Status{} }
func (f *fakeControl) Pause(op string) error    { f.record("pause by %s", op); return nil }
func (f *fakeControl) Resume(op string) error   { f.record("resume by %s", op); return nil }
func (f *fakeControl) Step(op string) error     { f.record("step by %s", op); return nil }
func (f *fakeControl) Confirm(point string, goAhead bool, op string) error {
	f.record("confirm %q go=%v by %s", point, goAhead, op)
	return nil
}
func (f *fakeControl) Rollback(_ context.Context, t engine.RollbackTarget, op string) (time.Duration, error) {
	if t.Reason != "" {
		f.record("rollback %s by %s because %q", t, op, t.Reason)
		return time.Millisecond, nil
	}
	f.record("rollback %s by %s", t, op)
	return time.Millisecond, nil
}
func (f *fakeControl) Retry(batches []int, op string) error {
	f.record("retry %v by %s", batches, op)
	return nil
}
func (f *fakeControl) Journal(context.Context) ([]engine.JournalEntry, error) { return nil, nil }
func (f *fakeControl) Reconcile(_ context.Context, decision, op string) error {
	f.record("reconcile %s by %s", decision, op)
	return nil
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestAPIRequestBodies: every body is decoded strictly; what is not
// understood is refused with a clear message and reaches nothing.
func TestAPIRequestBodies(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(secret, []byte("root:SECRET-HASH:19000:0:99999:7:::\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := fmt.Sprintf(`{"runbook":{"name":"/ops/rb.yaml","content":%q},"inventory":{"name":"/ops/inv.csv","content":%q},"yes":true,"operator":"alice"}`,
		b64("version: 1\n"), b64("name,address\n"))
	spaces := strings.Repeat(" ", 2<<20)
	for _, tc := range []struct {
		name, path, body string
		code             int
		err              string // the answer's error, exactly
		call             string // what reached the daemon; "" for nothing
	}{
		// run: content, never a path
		{"run with a path", "/v1/run", `{"runbook":"` + secret + `","yes":true,"operator":"alice"}`, 400,
			"bad request: runbook: want an object with the file's name and content, not a path: the daemon opens no file named in a request; cutover run reads the files and sends them (is the client older than the daemon?)", ""},
		{"run with content", "/v1/run", good, 200, "", "run /ops/rb.yaml (11 bytes) /ops/inv.csv (13 bytes) yes=true by alice"},
		{"run empty body", "/v1/run", ``, 400, "bad request: empty body: want a JSON object", ""},
		{"run {}", "/v1/run", `{}`, 400, "bad request: missing runbook, inventory, yes, operator", ""},
		{"run without content", "/v1/run", `{"runbook":{"name":"/ops/rb.yaml"},"inventory":{"name":"/ops/inv.csv","content":""},"yes":false,"operator":"alice"}`, 400,
			"bad request: missing runbook.content", ""},
		{"run with content null", "/v1/run", `{"runbook":{"name":"/ops/rb.yaml","content":null},"inventory":{"name":"/ops/inv.csv","content":""},"yes":false,"operator":"alice"}`, 400,
			"bad request: missing runbook.content", ""},
		{"run with a path field", "/v1/run", `{"runbook":{"name":"/ops/rb.yaml","content":"","path":"/etc/shadow"},"inventory":{"name":"/ops/inv.csv","content":""},"yes":false,"operator":"alice"}`, 400,
			`bad request: unknown field "path"`, ""},
		{"run with an empty name", "/v1/run", `{"runbook":{"name":"","content":""},"inventory":{"name":"/ops/inv.csv","content":""},"yes":false,"operator":"alice"}`, 400,
			"bad request: runbook.name is empty: give the path the client read the file from", ""},
		{"run with a line break in a name", "/v1/run", `{"runbook":{"name":"/ops/rb.yaml","content":""},"inventory":{"name":"/ops/inv.csv\nx","content":""},"yes":false,"operator":"alice"}`, 400,
			`bad request: inventory.name "/ops/inv.csv\nx" has a control character`, ""},
		{"run with bad base64", "/v1/run", `{"runbook":{"name":"/ops/rb.yaml","content":"!!"},"inventory":{"name":"/ops/inv.csv","content":""},"yes":false,"operator":"alice"}`, 400,
			"bad request: illegal base64 data at input byte 0", ""},
		{"run with yes as a string", "/v1/run", `{"runbook":{"name":"/ops/rb.yaml","content":""},"inventory":{"name":"/ops/inv.csv","content":""},"yes":"no","operator":"alice"}`, 400,
			"bad request: yes: want true or false, not a JSON string", ""},
		{"run twice in one body", "/v1/run", good + good, 400, "bad request: data after the JSON object: send exactly one object", ""},

		// rollback: exactly one target, nothing by default
		{"rollback empty body", "/v1/rollback", ``, 400, "bad request: empty body: want a JSON object", ""},
		{"rollback spaces only", "/v1/rollback", `   `, 400, "bad request: empty body: want a JSON object", ""},
		{"rollback {}", "/v1/rollback", `{}`, 400,
			`bad request: give exactly one of "all": true, "batch": N and "to": N (cutover rollback --all | --batch N | --to N), got none: nothing was rolled back`, ""},
		{"rollback null", "/v1/rollback", `null`, 400,
			`bad request: give exactly one of "all": true, "batch": N and "to": N (cutover rollback --all | --batch N | --to N), got none: nothing was rolled back`, ""},
		{"rollback operator only", "/v1/rollback", `{"operator":"alice"}`, 400,
			`bad request: give exactly one of "all": true, "batch": N and "to": N (cutover rollback --all | --batch N | --to N), got none: nothing was rolled back`, ""},
		{"rollback two targets", "/v1/rollback", `{"all":true,"to":0,"operator":"alice"}`, 400,
			`bad request: give exactly one of "all": true, "batch": N and "to": N (cutover rollback --all | --batch N | --to N), got all and to: nothing was rolled back`, ""},
		{"rollback all false", "/v1/rollback", `{"all":false,"operator":"alice"}`, 400, `bad request: "all" can only be true: nothing was rolled back`, ""},
		{"rollback to -1", "/v1/rollback", `{"to":-1,"operator":"alice"}`, 400, `bad request: "to" -1: batches are numbered from 0: nothing was rolled back`, ""},
		{"rollback batch -1", "/v1/rollback", `{"batch":-1,"operator":"alice"}`, 400, `bad request: "batch" -1: batches are numbered from 0: nothing was rolled back`, ""},
		{"rollback old wire form", "/v1/rollback", `{"batch":2,"only":true,"operator":"alice"}`, 400, `bad request: unknown field "only"`, ""},
		{"rollback all as a string", "/v1/rollback", `{"all":"yes","operator":"alice"}`, 400, "bad request: all: want true or false, not a JSON string", ""},
		{"rollback array", "/v1/rollback", `[]`, 400, "bad request: the body: want an object, not a JSON array", ""},
		{"rollback without operator", "/v1/rollback", `{"all":true}`, 400, "bad request: missing operator", ""},
		{"rollback trailing garbage", "/v1/rollback", `{"all":true,"operator":"alice"} x`, 400, "bad request: data after the JSON object: send exactly one object", ""},
		{"rollback two objects", "/v1/rollback", `{"to":3,"operator":"alice"}{"all":true,"operator":"alice"}`, 400, "bad request: data after the JSON object: send exactly one object", ""},
		{"rollback cut short", "/v1/rollback", `{"all":true,"operator":`, 400, "bad request: the JSON ends too early", ""},
		{"rollback malformed", "/v1/rollback", `{all:true}`, 400, "bad request: malformed JSON at byte 2: invalid character 'a' looking for beginning of object key string", ""},
		{"rollback 2 MiB of spaces", "/v1/rollback", spaces, 413, "request body too large: at most 1024 bytes", ""},
		{"rollback object then 2 MiB of spaces", "/v1/rollback", `{"all":true,"operator":"alice"}` + spaces, 413, "request body too large: at most 1024 bytes", ""},
		{"rollback --all", "/v1/rollback", `{"all":true,"operator":"alice"}`, 200, "", "rollback --all by alice"},
		{"rollback with a reason", "/v1/rollback", `{"batch":2,"reason":"vm-07 crashed","operator":"alice"}`, 200, "", `rollback --batch 2 by alice because "vm-07 crashed"`},
		{"rollback with a line break in the reason", "/v1/rollback", `{"all":true,"reason":"a\nb","operator":"alice"}`, 400, `bad request: reason "a\nb" has a control character`, ""},
		{"rollback with a reason too long", "/v1/rollback", `{"all":true,"reason":"` + strings.Repeat("x", 600) + `","operator":"alice"}`, 400, "bad request: reason is longer than 512 bytes", ""},
		{"retry every batch", "/v1/retry", `{"batches":[],"operator":"alice"}`, 200, "", "retry [] by alice"},
		{"retry two batches", "/v1/retry", `{"batches":[1,3],"operator":"alice"}`, 200, "", "retry [1 3] by alice"},
		{"retry without batches", "/v1/retry", `{"operator":"alice"}`, 400, "bad request: missing batches", ""},
		{"retry batch -1", "/v1/retry", `{"batches":[-1],"operator":"alice"}`, 400, `bad request: "batches": -1: batches are numbered from 0: nothing was retried`, ""},
		{"retry a string", "/v1/retry", `{"batches":"all","operator":"alice"}`, 400, "bad request: batches: want an array of integers, not a JSON string", ""},
		{"retry unknown field", "/v1/retry", `{"batches":[],"all":true,"operator":"alice"}`, 400, `bad request: unknown field "all"`, ""},
		{"rollback --batch 0", "/v1/rollback", `{"batch":0,"operator":"alice"}`, 200, "", "rollback --batch 0 by alice"},
		{"rollback --to 0", "/v1/rollback", `{"to":0,"operator":"alice"}`, 200, "", "rollback --to 0 by alice"},
		{"rollback --to 2 with spaces around", "/v1/rollback", "\n {\"to\":2,\"operator\":\"alice\"}\n ", 200, "", "rollback --to 2 by alice"},

		// the other commands
		{"pause empty body", "/v1/pause", ``, 400, "bad request: empty body: want a JSON object", ""},
		{"pause {}", "/v1/pause", `{}`, 400, "bad request: missing operator", ""},
		{"pause unknown field", "/v1/pause", `{"operator":"alice","force":true}`, 400, `bad request: unknown field "force"`, ""},
		{"pause operator with a line break", "/v1/pause", `{"operator":"alice\nbob"}`, 400, `bad request: operator "alice\nbob" has a control character`, ""},
		{"pause 2 MiB of spaces", "/v1/pause", spaces, 413, "request body too large: at most 1024 bytes", ""},
		{"pause", "/v1/pause", `{"operator":"alice"}`, 200, "", "pause by alice"},
		{"resume trailing garbage", "/v1/resume", `{"operator":"alice"}]`, 400, "bad request: data after the JSON object: send exactly one object", ""},
		{"resume", "/v1/resume", `{"operator":"alice"}`, 200, "", "resume by alice"},
		{"step", "/v1/step", `{"operator":""}`, 200, "", "step by unknown"},
		{"confirm {}", "/v1/confirm", `{}`, 400, "bad request: missing point, go, operator", ""},
		{"confirm without go", "/v1/confirm", `{"point":"before-start","operator":"alice"}`, 400, "bad request: missing go", ""},
		{"confirm", "/v1/confirm", `{"point":"before-start","go":false,"operator":"alice"}`, 200, "", `confirm "before-start" go=false by alice`},

		// reconcile: a decision, never a default
		{"reconcile empty body", "/v1/reconcile", ``, 400, "bad request: empty body: want a JSON object", ""},
		{"reconcile {}", "/v1/reconcile", `{}`, 400, "bad request: missing decision, operator", ""},
		{"reconcile without decision", "/v1/reconcile", `{"operator":"alice"}`, 400, "bad request: missing decision", ""},
		{"reconcile unknown decision", "/v1/reconcile", `{"decision":"ignore","operator":"alice"}`, 400,
			`bad request: "decision" "ignore": want "adopt" or "clear" (cutover reconcile adopt | clear): nothing was changed`, ""},
		{"reconcile empty decision", "/v1/reconcile", `{"decision":"","operator":"alice"}`, 400,
			`bad request: "decision" "": want "adopt" or "clear" (cutover reconcile adopt | clear): nothing was changed`, ""},
		{"reconcile unknown field", "/v1/reconcile", `{"decision":"clear","operator":"alice","force":true}`, 400, `bad request: unknown field "force"`, ""},
		{"reconcile adopt", "/v1/reconcile", `{"decision":"adopt","operator":"alice"}`, 200, "", "reconcile adopt by alice"},
		{"reconcile clear", "/v1/reconcile", `{"decision":"clear","operator":"alice"}`, 200, "", "reconcile clear by alice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fc := &fakeControl{}
			h := NewAPI(fc, zerolog.New(zerolog.NewTestWriter(t)))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, tc.path, strings.NewReader(tc.body)))
			if rec.Code != tc.code {
				t.Errorf("status %d, want %d (%s)", rec.Code, tc.code, rec.Body)
			}
			if strings.Contains(rec.Body.String(), "SECRET") {
				t.Errorf("the answer shows the content of %s: %s", secret, rec.Body)
			}
			var eb client.ErrorBody
			if tc.code != 200 {
				if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil {
					t.Fatalf("answer %q: %v", rec.Body, err)
				}
				if eb.Error != tc.err {
					t.Errorf("error\n%s\nwant\n%s", eb.Error, tc.err)
				}
			}
			calls := fc.Calls()
			switch {
			case tc.call == "" && len(calls) > 0:
				t.Errorf("the daemon was asked %q", calls)
			case tc.call != "" && (len(calls) != 1 || calls[0] != tc.call):
				t.Errorf("the daemon was asked %q, want %q", calls, tc.call)
			}
		})
	}
}

// TestAPIRunGetsTheBytes: the daemon's Control gets exactly the bytes the
// client read, under the names it gave.
func TestAPIRunGetsTheBytes(t *testing.T) {
	abs, _ := filepath.Abs(daemonRunbook)
	req, err := client.ReadRun(abs)
	if err != nil {
		t.Fatal(err)
	}
	req.Yes, req.Operator = true, "alice"
	b, _ := json.Marshal(req)
	fc := &fakeControl{}
	rec := httptest.NewRecorder()
	NewAPI(fc, zerolog.Nop()).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/run", bytes.NewReader(b)))
	if rec.Code != 200 || len(fc.runs) != 1 {
		t.Fatalf("status %d (%s), %d runs", rec.Code, rec.Body, len(fc.runs))
	}
	rb, _ := os.ReadFile(abs)
	inv, _ := os.ReadFile(filepath.Join(filepath.Dir(abs), "inventory.csv"))
	got := fc.runs[0]
	if got.Runbook.Name != abs || !bytes.Equal(got.Runbook.Content, rb) ||
		got.Inventory.Name != filepath.Join(filepath.Dir(abs), "inventory.csv") || !bytes.Equal(got.Inventory.Content, inv) ||
		!got.Yes || got.Operator != "alice" {
		t.Fatalf("the daemon got %s (%d bytes), %s (%d bytes), yes %v, by %s", got.Runbook.Name, len(got.Runbook.Content),
			got.Inventory.Name, len(got.Inventory.Content), got.Yes, got.Operator)
	}
}

// rawClient talks HTTP to a unix socket without package client, to send
// what it never would.
func rawClient(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
}

// post sends body to path and returns the status code and the error.
func post(t *testing.T, hc *http.Client, path, body string) (int, string) {
	t.Helper()
	resp, err := hc.Post("http://cutover"+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	var eb client.ErrorBody
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &eb)
	return resp.StatusCode, eb.Error
}

// TestDaemonRunOpensNoFile: over the real socket, a run names files only
// for messages. A path where content belongs is refused; names of files
// that do not exist work with the right content; the content of a file
// that exists and that a name points at never comes back.
func TestDaemonRunOpensNoFile(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(t.TempDir(), "shadow.yaml")
	if err := os.WriteFile(secret, []byte("root: SECRET-HASH\nversion: [SECRET-LINE\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := openDaemon(t, dir, nil)
	defer h.stop()
	hc := rawClient(filepath.Join(dir, "api.sock"))

	code, msg := post(t, hc, "/v1/run", `{"runbook":"`+secret+`","yes":true,"operator":"mallory"}`)
	if code != 400 || !strings.HasPrefix(msg, "bad request: runbook: want an object with the file's name and content, not a path") || strings.Contains(msg, "SECRET") {
		t.Fatalf("run by path: %d %q", code, msg)
	}
	// Wire-valid, the names pointing at the secret file, the contents
	// empty: the daemon parses the (empty) contents.
	code, msg = post(t, hc, "/v1/run", fmt.Sprintf(`{"runbook":{"name":%q,"content":""},"inventory":{"name":%q,"content":""},"yes":true,"operator":"mallory"}`, secret, secret))
	if code != 422 || !strings.HasPrefix(msg, secret+": ") || strings.Contains(msg, "SECRET") {
		t.Fatalf("run of empty contents named after a readable file: %d %q", code, msg)
	}
	if st, _ := h.cl.Status(context.Background(), 0); st.State.Runbook != "" {
		t.Fatalf("a refused run left state: %+v", st.State)
	}

	// The right contents under names that exist nowhere: the run works.
	abs, _ := filepath.Abs(daemonRunbook)
	req, err := client.ReadRun(abs)
	if err != nil {
		t.Fatal(err)
	}
	req.Runbook.Name, req.Inventory.Name = "/nonexistent/runbook.yaml", "/nonexistent/inventory.csv"
	req.Yes, req.Operator = true, "alice"
	b, _ := json.Marshal(req)
	if code, msg := post(t, hc, "/v1/run", string(b)); code != 200 {
		t.Fatalf("run with content: %d %q", code, msg)
	}
	st := h.waitFor("the end", func(s engine.RunState) bool { return s.Phase == engine.PhaseDone })
	if st.Runbook != "/nonexistent/runbook.yaml" || len(st.Applied) != 4 || len(h.fb.BGP.Announced()) != 12 {
		t.Fatalf("run %s applied %v, %d routes", st.Runbook, st.Applied, len(h.fb.BGP.Announced()))
	}
	// The snapshot holds exactly the bytes sent.
	rb, _ := os.ReadFile(filepath.Join(dir, "runs", st.Digest, "runbook.yaml"))
	inv, _ := os.ReadFile(filepath.Join(dir, "runs", st.Digest, "inventory"))
	if !bytes.Equal(rb, req.Runbook.Content) || !bytes.Equal(inv, req.Inventory.Content) {
		t.Fatalf("snapshot differs from what was sent: %d/%d, %d/%d bytes", len(rb), len(req.Runbook.Content), len(inv), len(req.Inventory.Content))
	}
}

// TestDaemonBadRollbackMovesNothing: after a finished run, rollbacks the
// daemon cannot understand are refused and move nothing.
func TestDaemonBadRollbackMovesNothing(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	abs, _ := filepath.Abs(daemonRunbook)
	h := openDaemon(t, dir, nil)
	defer h.stop()
	if err := h.cl.Run(ctx, abs, true); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the end", func(s engine.RunState) bool { return s.Phase == engine.PhaseDone })
	sets, applies, nftState := len(h.fb.BGP.Calls()), h.fb.NFT.Applies(), fmt.Sprint(h.fb.NFT.State())
	es, err := h.cl.Journal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	records := len(es)

	hc := rawClient(filepath.Join(dir, "api.sock"))
	for _, tc := range []struct {
		name, body string
		code       int
	}{
		{"empty", ``, 400},
		{"{}", `{}`, 400},
		{"operator only", `{"operator":"mallory"}`, 400},
		{"null", `null`, 400},
		{"unknown field", `{"everything":true,"operator":"mallory"}`, 400},
		{"old wire form of --batch 0", `{"batch":0,"only":true,"operator":"mallory"}`, 400},
		{"trailing garbage", `{"to":0,"operator":"mallory"}garbage`, 400},
		{"2 MiB of spaces", strings.Repeat(" ", 2<<20), 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			code, msg := post(t, hc, "/v1/rollback", tc.body)
			if code != tc.code || !(strings.HasPrefix(msg, "bad request: ") || strings.HasPrefix(msg, "request body too large")) {
				t.Errorf("status %d %q, want %d", code, msg, tc.code)
			}
			if took := time.Since(start); took > 20*time.Second {
				t.Errorf("the answer took %s", took)
			}
		})
	}
	if n := len(h.fb.BGP.Calls()); n != sets {
		t.Errorf("BGP changed %d times after refused rollbacks", n-sets)
	}
	if n := h.fb.NFT.Applies(); n != applies {
		t.Errorf("nft applied %d times after refused rollbacks", n-applies)
	}
	if s := fmt.Sprint(h.fb.NFT.State()); s != nftState {
		t.Errorf("nft state changed:\n%s\nwas\n%s", s, nftState)
	}
	if got := len(h.fb.BGP.Announced()); got != 12 {
		t.Errorf("%d routes announced, want the 12 still", got)
	}
	es, err = h.cl.Journal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != records {
		t.Errorf("%d journal records after refused rollbacks, want %d: %s", len(es), records, es[len(es)-1].Data)
	}
	if st := h.waitFor("state", func(engine.RunState) bool { return true }); st.Phase != engine.PhaseDone || len(st.Applied) != 4 {
		t.Errorf("after refused rollbacks: %s, applied %v", st.Phase, st.Applied)
	}
}

// serveFake serves the API for fc on a fresh socket with the limits lim.
func serveFake(t *testing.T, fc Control, lim apiLimits) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := Listen(sock, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, l, newAPI(fc, zerolog.New(zerolog.NewTestWriter(t)), lim, nil), lim) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return sock
}

// readAnswer reads one HTTP answer from c, waiting at most 20 s.
func readAnswer(t *testing.T, c net.Conn) (*http.Response, error) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return resp, err
}

// TestAPISlowRequests: a request that does not come is cut off.
func TestAPISlowRequests(t *testing.T) {
	lim := defaultLimits
	lim.ReadHeaderTimeout, lim.CommandTimeout = 2*time.Second, 2*time.Second
	fc := &fakeControl{}
	sock := serveFake(t, fc, lim)

	t.Run("no headers", func(t *testing.T) {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		if n, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("a silent connection: read %d bytes, %v; want it closed", n, err)
		}
		t.Logf("closed after %s", time.Since(start))
	})
	t.Run("slow command body", func(t *testing.T) {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /v1/rollback HTTP/1.1\r\nHost: cutover\r\nContent-Length: 100\r\n\r\n{\"all\":")
		resp, err := readAnswer(t, c)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Fatalf("status %d, want 408", resp.StatusCode)
		}
	})
	t.Run("2 MiB of spaces", func(t *testing.T) {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		go func() {
			fmt.Fprintf(c, "POST /v1/pause HTTP/1.1\r\nHost: cutover\r\nContent-Length: %d\r\n\r\n", 2<<20)
			_, _ = c.Write([]byte(strings.Repeat(" ", 2<<20))) // fails once the daemon hangs up
		}()
		start := time.Now()
		resp, err := readAnswer(t, c)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d, want 413", resp.StatusCode)
		}
		t.Logf("answered after %s", time.Since(start))
	})
	if calls := fc.Calls(); len(calls) > 0 {
		t.Errorf("the daemon was asked %q", calls)
	}
}

// TestAPIConnectionCap: at most MaxConns connections are served at once.
// Connections idling between requests make room for a new one; those
// inside a request are waited for. The peer's user is still known behind
// the cap.
func TestAPIConnectionCap(t *testing.T) {
	lim := defaultLimits
	lim.MaxConns = 2
	fc := &fakeControl{}
	sock := serveFake(t, fc, lim)
	me := strconv.Itoa(os.Getuid())
	if u, err := user.LookupId(me); err == nil {
		me = u.Username
	}
	dial := func() net.Conn {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	third := func() chan error {
		done := make(chan error, 1)
		go func() {
			_, err := client.New(sock).Status(context.Background(), 0)
			done <- err
		}()
		return done
	}
	served := func(done chan error) {
		t.Helper()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("a connection was not served")
		}
	}

	// Two kept-alive connections, each after an answered request: they
	// idle, and a third connection is served by closing one of them.
	var idle []net.Conn
	for range 2 {
		c := dial()
		body := `{"operator":"mallory"}`
		fmt.Fprintf(c, "POST /v1/pause HTTP/1.1\r\nHost: cutover\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		resp, err := readAnswer(t, c)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("pause: %v %v", resp, err)
		}
		idle = append(idle, c)
	}
	if calls := fc.Calls(); len(calls) != 2 || calls[0] != "pause by "+me+" (mallory)" {
		t.Fatalf("calls %q: the peer's user is lost behind the cap", calls)
	}
	served(third())
	// The closed one was closed before the third was served: its EOF is
	// there at once.
	closed := 0
	for i, c := range idle {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := c.Read(make([]byte, 1))
		var ne net.Error
		switch {
		case err == io.EOF:
			closed++
		case errors.As(err, &ne) && ne.Timeout():
		default:
			t.Errorf("idle connection %d: read %d bytes, %v", i, n, err)
		}
	}
	if closed != 1 {
		t.Errorf("%d idle connections closed for the third, want 1", closed)
	}

	// Two connections inside a request (a body that does not come): a
	// third waits until one of them ends.
	var busy []net.Conn
	for range 2 {
		c := dial()
		fmt.Fprintf(c, "POST /v1/pause HTTP/1.1\r\nHost: cutover\r\nContent-Length: 100\r\n\r\n{")
		busy = append(busy, c)
	}
	// Both are in their handlers once a third connection is no longer
	// served; status polls before that find a free slot.
	deadline := time.Now().Add(20 * time.Second)
	var waiting chan error
	for {
		waiting = third()
		select {
		case err := <-waiting:
			if err != nil {
				t.Fatal(err)
			}
			if time.Now().After(deadline) {
				t.Fatal("the busy connections never took both slots")
			}
			continue
		case <-time.After(time.Second):
		}
		break
	}
	busy[0].Close()
	served(waiting)
}

// TestRunConcurrentBodies: one run request is read at a time; another is
// refused at once instead of holding a second large body in memory.
func TestRunConcurrentBodies(t *testing.T) {
	fc := &fakeControl{}
	sock := serveFake(t, fc, defaultLimits)
	// The slow request holds the slot once its handler runs. A probe may
	// win the slot first, and then the slow request is the one refused:
	// start it again until a probe is refused because of it.
	startSlow := func() net.Conn {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST /v1/run HTTP/1.1\r\nHost: cutover\r\nContent-Length: 1000\r\n\r\n{")
		return c
	}
	// A refused slow request gets no answer the test could see (the server
	// first waits for the body it announced), so it is started again after
	// a while of probes that found the slot free.
	slow := startSlow()
	defer func() { slow.Close() }()
	restarted := time.Now()
	hc := rawClient(sock)
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, msg := post(t, hc, "/v1/run", `{}`)
		if code == http.StatusConflict {
			if msg != "another run request is being received or started: try again when it is answered" {
				t.Fatalf("refusal %q", msg)
			}
			break
		}
		if code != 400 || time.Now().After(deadline) {
			t.Fatalf("second run request: %d %q", code, msg)
		}
		if time.Since(restarted) > 2*time.Second {
			slow.Close()
			slow, restarted = startSlow(), time.Now()
		}
		time.Sleep(10 * time.Millisecond)
	}
	slow.Close()
	deadline = time.Now().Add(20 * time.Second)
	for {
		code, msg := post(t, hc, "/v1/run", `{}`)
		if code == 400 && msg == "bad request: missing runbook, inventory, yes, operator" {
			break
		}
		if code != http.StatusConflict || time.Now().After(deadline) {
			t.Fatalf("run request after the first hung up: %d %q", code, msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if calls := fc.Calls(); len(calls) > 0 {
		t.Errorf("the daemon was asked %q", calls)
	}
}

// TestRunBodyLimit: the largest runbook and inventory, with the longest
// names, escaped as badly as JSON can, fit in a run body.
func TestRunBodyLimit(t *testing.T) {
	need := base64.StdEncoding.EncodedLen(runbook.MaxRunbookSize) + base64.StdEncoding.EncodedLen(runbook.MaxInventorySize) +
		2*6*maxNameLen + 6*maxOperatorLen + 200
	if maxRunBody < need {
		t.Fatalf("maxRunBody %d < %d", maxRunBody, need)
	}
}
