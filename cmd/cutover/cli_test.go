package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover/cutover/cutover/daemon/client"
	"github.com/cutover/cutover/cutover/runbook"
)

// TestExitCodeTable: every code is in the table once, in order, and the
// help shows each, in lines of at most 84 columns.
func TestExitCodeTable(t *testing.T) {
	help := exitCodeHelp()
	for i, e := range exitCodes {
		if e.code != i {
			t.Errorf("row %d has code %d", i, e.code)
		}
		first, _, _ := strings.Cut(e.meaning, " ")
		if !strings.Contains(help, fmt.Sprintf("\n  %d  %s", e.code, first)) {
			t.Errorf("help lacks code %d", e.code)
		}
		if e.reserved != strings.HasPrefix(e.meaning, "reserved") {
			t.Errorf("code %d: reserved %v, but says %q", e.code, e.reserved, e.meaning)
		}
	}
	for _, l := range strings.Split(help, "\n") {
		if len(l) > 84 {
			t.Errorf("line longer than 84 columns: %q", l)
		}
	}
	if strings.Join(strings.Fields(help), " ") != "Exit codes: "+func() string {
		var s []string
		for _, e := range exitCodes {
			s = append(s, fmt.Sprint(e.code), e.meaning)
		}
		return strings.Join(s, " ")
	}() {
		t.Errorf("help loses words:\n%s", help)
	}
}

// statusErr is a refusal of the daemon that says its HTTP status, as the
// client's error is to (see statusCoder).
type statusErr int

func (e statusErr) Error() string   { return http.StatusText(int(e)) }
func (e statusErr) StatusCode() int { return int(e) }

func TestDaemonCode(t *testing.T) {
	fe := runbook.FieldError{File: "rb.yaml", Line: 3, Field: "bgp.local_as", Msg: "AS 0 is reserved"}
	dial := &url.Error{Op: "Post", URL: "http://cutover/v1/run", Err: &net.OpError{Op: "dial", Net: "unix", Err: os.ErrPermission}}
	read := &url.Error{Op: "Post", URL: "http://cutover/v1/run", Err: &net.OpError{Op: "read", Net: "unix", Err: errors.New("connection reset by peer")}}
	for _, tt := range []struct {
		name string
		err  error
		code int
	}{
		{"no daemon", fmt.Errorf("%w at /run/cutover/cutover.sock: start it", client.ErrNoDaemon), exitNoDaemon},
		{"socket refuses this user", dial, exitNoDaemon},
		{"connection lost in the request", read, exitFailed},
		{"mistakes in the runbook", fmt.Errorf("run: %w", runbook.ValidationErrors{fe}), exitUsage},
		{"409", statusErr(http.StatusConflict), exitRefused},
		{"404", fmt.Errorf("pause: %w", statusErr(http.StatusNotFound)), exitRefused},
		{"422", statusErr(http.StatusUnprocessableEntity), exitUsage},
		{"400", statusErr(http.StatusBadRequest), exitFailed},
		{"500", statusErr(http.StatusInternalServerError), exitFailed},
		{"an error without a status", errors.New("decode the answer: unexpected EOF"), exitFailed},
		{"an exit code already given", &exitError{code: exitFailed, err: errors.New("run aborted")}, exitFailed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := daemonErr(tt.err)
			if got := exitCode(err); got != tt.code || err.Error() != tt.err.Error() {
				t.Errorf("exit %d (%v), want %d", got, err, tt.code)
			}
		})
	}
	if daemonErr(nil) != nil {
		t.Error("daemonErr(nil) is not nil")
	}
}

// fakeAPI serves the daemon's API on a unix socket: every request is
// answered with code and body. It returns the socket.
func fakeAPI(t *testing.T, code int, body client.ErrorBody) string {
	return serveAPI(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(body)
	})
}

// serveAPI serves h on a unix socket of its own for the test's life and
// returns the socket.
func serveAPI(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cutover-cli") // short: a socket path has at most 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return sock
}

// TestDaemonExitCodes runs commands against a daemon that refuses them,
// and against none.
func TestDaemonExitCodes(t *testing.T) {
	conflict := fakeAPI(t, http.StatusConflict, client.ErrorBody{Error: "a run is already active: wait until it ends"})
	noRun := fakeAPI(t, http.StatusNotFound, client.ErrorBody{Error: "no run"})
	bad := fakeAPI(t, http.StatusUnprocessableEntity, client.ErrorBody{Error: "runbook: 1 error",
		Problems: []runbook.FieldError{{File: "runbook.yaml", Line: 3, Field: "bgp.local_as", Msg: "AS 0 is reserved"}}})
	none := filepath.Join(t.TempDir(), "none.sock")
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"run", "--socket", conflict, "../../runbooks/helse-nord/runbook.yaml"}, exitRefused, "a run is already active: wait until it ends"},
		{[]string{"pause", "--socket", noRun}, exitRefused, "no run"},
		{[]string{"confirm", "after-canary", "--socket", conflict, "-o", "json"}, exitRefused, "a run is already active: wait until it ends"},
		{[]string{"run", "--socket", bad, "../../runbooks/helse-nord/runbook.yaml"}, exitUsage, "runbook: 1 error"},
		{[]string{"status", "--socket", none}, exitNoDaemon, "no cutover daemon is running at " + none + ": start it with cutover serve (or systemctl start cutover)"},
		{[]string{"rollback", "--all", "--socket", none}, exitNoDaemon, "no cutover daemon is running at " + none + ": start it with cutover serve (or systemctl start cutover)"},
		{[]string{"reconcile", "adopt", "--socket", none}, exitNoDaemon, "no cutover daemon is running at " + none + ": start it with cutover serve (or systemctl start cutover)"},
		{[]string{"report", "--socket", none}, exitNoDaemon, "no cutover daemon is running at " + none + ": start it with cutover serve (or systemctl start cutover)"},
	} {
		t.Run(strings.Join(tt.args[:2], " "), func(t *testing.T) {
			out, _, code, err := run(t, tt.args...)
			if code != tt.code || err == nil || err.Error() != tt.want || out != "" {
				t.Errorf("exit %d (%v), stdout %q; want exit %d (%s)", code, err, out, tt.code, tt.want)
			}
		})
	}
}

// TestUsageExitCodes: what cobra refuses before a command runs is bad
// input, and a group refuses a subcommand it does not have.
func TestUsageExitCodes(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"bogus"}, "unknown command \"bogus\" for \"cutover\""},
		{[]string{"lab", "rehaerse", "rb.yaml"}, `unknown command "rehaerse" for "cutover lab": did you mean "rehearse"?`},
		{[]string{"bench", "bpg"}, `unknown command "bpg" for "cutover bench": did you mean "bgp"?`},
		{[]string{"status", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"rollback", "--batch", "x"}, `invalid argument "x" for "--batch" flag: strconv.ParseInt: parsing "x": invalid syntax`},
		{[]string{"rollback"}, "rollback: give exactly one of --all, --batch N, --to N"},
		{[]string{"rollback", "--all", "--to", "3"}, "rollback: give exactly one of --all, --batch N, --to N"},
		{[]string{"reconcile", "maybe"}, `reconcile: "maybe": give adopt or clear`},
		{[]string{"status", "-o", "yaml"}, `-o "yaml": want text or json`},
		{[]string{"report", "-o", "pdf"}, `-o "pdf": want md, html, json, svg, text or markdown`},
		{[]string{"status", "--log-level", "loud"}, `--log-level "loud": Unknown Level String: 'loud', defaulting to NoLevel`},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, _, code, err := run(t, tt.args...)
			if code != exitUsage || err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("exit %d (%v), want exit 2 (%s)", code, err, tt.want)
			}
		})
	}
	out, _, code, err := run(t, "lab")
	if code != 0 || err != nil || !strings.Contains(out, "Available Commands:") {
		t.Errorf("cutover lab: exit %d (%v)\n%s", code, err, out)
	}
}

// execute runs args as main does and returns stderr and the exit code.
func execute(t *testing.T, args ...string) (stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	a := newApp()
	root := newRootCmd(a)
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errb)
	code = a.execute(root)
	return errb.String(), code
}

// TestErrorLast: the error goes last to standard error, in the log's
// format: a JSON record when the log is JSON (the stream holds one
// format), a line for people otherwise, with a hint for bad input.
func TestErrorLast(t *testing.T) {
	none := filepath.Join(t.TempDir(), "none.sock")
	stderr, code := execute(t, "status", "--socket", none, "--log-format", "json")
	var rec struct {
		Level    string `json:"level"`
		Op       string `json:"op"`
		ExitCode int    `json:"exit_code"`
		Error    string `json:"error"`
		Message  string `json:"message"`
	}
	if code != exitNoDaemon || strings.Count(stderr, "\n") != 1 || json.Unmarshal([]byte(stderr), &rec) != nil ||
		rec.Level != "error" || rec.Op != "cutover status" || rec.ExitCode != exitNoDaemon || !strings.HasPrefix(rec.Error, "no cutover daemon is running at ") {
		t.Errorf("exit %d, stderr %q (%+v)", code, stderr, rec)
	}

	// validate lists the mistakes as lines on standard error: the error
	// follows as a line, never a JSON record among them.
	const bad = "../../cutover/runbook/testdata/bad/runbook.yaml"
	stderr, code = execute(t, "validate", bad, "--log-format", "json")
	if code != exitUsage || !strings.HasSuffix(stderr, "\ncutover: "+bad+": 34 errors\n") || strings.Contains(stderr, "{") {
		t.Errorf("validate: exit %d, stderr:\n%s", code, stderr)
	}

	stderr, code = execute(t, "status", "--socket", none, "--log-format", "console")
	if want := "cutover: no cutover daemon is running at " + none + ": start it with cutover serve (or systemctl start cutover)\n"; code != exitNoDaemon || stderr != want {
		t.Errorf("exit %d, stderr %q, want %q", code, stderr, want)
	}
	stderr, code = execute(t, "lab", "stauts", "--log-format", "console")
	if want := "cutover: unknown command \"stauts\" for \"cutover lab\": did you mean \"status\"?\nRun 'cutover lab --help' for usage.\n"; code != exitUsage || stderr != want {
		t.Errorf("exit %d, stderr %q, want %q", code, stderr, want)
	}
}

// TestConfigFile: the config file sets flags by their long names, and an
// unknown key is an error naming the key, the file and the nearest key.
func TestConfigFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const rb = "../../runbooks/helse-nord/runbook.yaml"

	good := write("good.yaml", "output: json\nlog-level: warn\n")
	out, _, code, err := run(t, "validate", "--config", good, rb)
	if code != 0 || err != nil || !strings.Contains(out, `"ok": true`) {
		t.Errorf("output: json from the config: exit %d (%v)\n%s", code, err, out)
	}
	// One file for every command: a key of another command (serve's
	// state-dir) is left to that command.
	shared := write("shared.yaml", "output: json\nstate-dir: /var/lib/cutover\nsocket: /run/cutover/cutover.sock\n")
	if out, _, code, err := run(t, "validate", "--config", shared, rb); code != 0 || err != nil || !strings.Contains(out, `"ok": true`) {
		t.Errorf("a shared config file: exit %d (%v)\n%s", code, err, out)
	}
	out, _, _, _ = run(t, "validate", "--config", good, "-o", "text", rb)
	if out != "ok: 2000 VMs, 2024 prefixes, 16 batches\n" {
		t.Errorf("the flag does not win over the config: %q", out)
	}

	for _, tt := range []struct {
		name, content string
		args          []string
		want          string
	}{
		{"typo", "outptu: json\n", []string{"validate", rb},
			`config %s: unknown key "outptu" for cutover validate: did you mean "output"?`},
		{"underscore", "log_level: debug\n", []string{"status"},
			`config %s: unknown key "log_level" for cutover status: did you mean "log-level"?`},
		{"another command's flag with a typo", "state-dri: /var/lib/cutover\n", []string{"status"},
			`config %s: unknown key "state-dri" for cutover status: did you mean "state-dir"?`},
		{"far from any key", "colour: yes\n", []string{"lab", "down"},
			`config %s: unknown key "colour" for cutover lab down (its keys: log-format, log-level, name, output)`},
		{"every unknown key, sorted", "wach: true\nsocket: /tmp/x.sock\nsokcet: /tmp/y.sock\n", []string{"status"},
			"config %[1]s: unknown key \"sokcet\" for cutover status: did you mean \"socket\"?\n" +
				"config %[1]s: unknown key \"wach\" for cutover status: did you mean \"watch\"?"},
		{"a bad value", "output: yaml\n", []string{"plan", rb}, `-o "yaml": want text, json or csv`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := write(strings.ReplaceAll(tt.name, " ", "-")+".yaml", tt.content)
			args := append(tt.args, "--config", p)
			out, _, code, err := run(t, args...)
			want := tt.want
			if strings.Contains(want, "%") {
				want = fmt.Sprintf(tt.want, p)
			}
			if code != exitUsage || err == nil || err.Error() != want || out != "" {
				t.Errorf("exit %d, stdout %q, error:\n%v\nwant:\n%s", code, out, err, want)
			}
		})
	}

	_, _, code, err = run(t, "status", "--config", filepath.Join(dir, "missing.yaml"))
	if code != exitUsage || err == nil || !strings.HasPrefix(err.Error(), "read config ") {
		t.Errorf("missing config: exit %d (%v)", code, err)
	}
}

func TestNearestKey(t *testing.T) {
	keys := []string{"log-format", "log-level", "name", "output", "socket", "watch"}
	for _, tt := range []struct{ k, want string }{
		{"outptu", "output"},
		{"ouput", "output"},
		{"log_level", "log-level"},
		{"logformat", "log-format"},
		{"sock", "socket"},
		{"nmae", "name"},
		{"x", ""},
		{"colour", ""},
		{"verbose", ""},
	} {
		if got := nearestKey(tt.k, keys); got != tt.want {
			t.Errorf("nearestKey(%q) = %q, want %q", tt.k, got, tt.want)
		}
	}
	for _, tt := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"a", "", 1}, {"output", "outptu", 1}, {"kitten", "sitting", 3}, {"ca", "abc", 3}} {
		if got := editDistance(tt.a, tt.b); got != tt.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.d)
		}
	}
}

// TestJSONResults: commands that answer with a line answer with an object
// under -o json.
func TestJSONResults(t *testing.T) {
	var b bytes.Buffer
	a := newApp()
	a.out = &b
	a.v.Set("output", "json")
	goAhead := false
	if err := a.result(commandResult{Command: "confirm", Point: "after-canary", Go: &goAhead, Result: "no-go: the run stays paused"}); err != nil {
		t.Fatal(err)
	}
	want := `{
  "command": "confirm",
  "result": "no-go: the run stays paused",
  "point": "after-canary",
  "go": false
}
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	a.v.Set("output", "text")
	_ = a.result(commandResult{Command: "pause", Result: "paused"})
	if b.String() != "paused\n" {
		t.Errorf("text: %q", b.String())
	}
}

func TestFaultOutput(t *testing.T) {
	r := faultResult{Fault: "daemon-kill", Lab: "rehearse", Site: "skm2", Injected: "the daemon was killed with kill -9 and started again",
		Evidence: []string{"kill -9 of the daemon (pid 10); edge FIB sampled 60 times", "daemon restarted (pid 11) in 210ms"}}
	var b bytes.Buffer
	a := newApp()
	a.out = &b
	a.v.Set("output", "text")
	if err := a.writeFault(r); err != nil {
		t.Fatal(err)
	}
	want := "fault daemon-kill in lab rehearse: the daemon was killed with kill -9 and started again\n" +
		"  kill -9 of the daemon (pid 10); edge FIB sampled 60 times\n" +
		"  daemon restarted (pid 11) in 210ms\n"
	if b.String() != want {
		t.Errorf("text:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	a.v.Set("output", "json")
	_ = a.writeFault(r)
	var got faultResult
	if err := json.Unmarshal(b.Bytes(), &got); err != nil || got.Fault != r.Fault || got.Injected != r.Injected || len(got.Evidence) != 2 {
		t.Errorf("json: %v\n%s", err, b.String())
	}
}
