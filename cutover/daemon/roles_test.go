package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/user"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/rs/zerolog"

	"github.com/cutover/cutover/cutover/daemon/client"
	"github.com/cutover/cutover/internal/logcheck"
)

// TestRoles: with an operator group, root and the group's members change
// runs (as primary group or by membership); the socket's other users see
// status and the journal and are refused every command with 403, and the
// command never reaches the daemon.
func TestRoles(t *testing.T) {
	rl := &roles{group: "cutover-ops", gid: 990, groupsOf: func(uid uint32) ([]string, error) {
		switch uid {
		case 1001:
			return []string{"1001", "990"}, nil
		case 1003:
			return nil, errors.New("no such user")
		}
		return []string{"1002"}, nil
	}}
	nina := peerCred{UID: 1001, GID: 1001, User: "nina"}
	ola := peerCred{UID: 1002, GID: 1002, User: "ola"}
	per := peerCred{UID: 1004, GID: 990, User: "per"}
	root := peerCred{UID: 0, GID: 0, User: "root"}
	gone := peerCred{UID: 1003, GID: 1003, User: "1003"}
	for _, tc := range []struct {
		name string
		peer *peerCred
		path string
		body string
		code int
		msg  string
	}{
		{"member confirms", &nina, "/v1/confirm", `{"point":"before-start","go":true,"operator":"nina"}`, 200, ""},
		{"primary group rolls back", &per, "/v1/rollback", `{"all":true,"operator":"per"}`, 200, ""},
		{"root pauses", &root, "/v1/pause", `{"operator":"nina"}`, 200, ""},
		{"observer reads status", &ola, "/v1/status", "", 200, ""},
		{"observer reads the journal", &ola, "/v1/journal", "", 200, ""},
		{"observer confirms", &ola, "/v1/confirm", `{"point":"before-start","go":true,"operator":"ola"}`, 403,
			`confirm: refused: ola may observe (status, report, watch) but not change the run: that takes membership of the unix group "cutover-ops"`},
		{"observer rolls back", &ola, "/v1/rollback", `{"all":true,"operator":"ola"}`, 403,
			`rollback: refused: ola may observe (status, report, watch) but not change the run: that takes membership of the unix group "cutover-ops"`},
		{"observer runs", &ola, "/v1/run", `{}`, 403,
			`run: refused: ola may observe (status, report, watch) but not change the run: that takes membership of the unix group "cutover-ops"`},
		{"unknown user", &gone, "/v1/resume", `{"operator":"x"}`, 403,
			`resume: refused: 1003 may observe (status, report, watch) but not change the run: that takes membership of the unix group "cutover-ops"`},
		{"no credentials", nil, "/v1/step", `{"operator":"x"}`, 403,
			`step: refused: the daemon cannot tell who asked (no unix peer credentials), and changing a run takes membership of the unix group "cutover-ops"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fc := &fakeControl{}
			h := newAPI(fc, zerolog.New(zerolog.NewTestWriter(t)), defaultLimits, rl)
			method := http.MethodPost
			if tc.body == "" {
				method = http.MethodGet
			}
			req := httptest.NewRequest(method, tc.path, strings.NewReader(tc.body))
			if tc.peer != nil {
				req = req.WithContext(context.WithValue(req.Context(), peerKey{}, *tc.peer))
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.code {
				t.Fatalf("status %d, want %d (%s)", rec.Code, tc.code, rec.Body)
			}
			if tc.code == 200 {
				return
			}
			var eb client.ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error != tc.msg {
				t.Errorf("error %q (%v), want %q", eb.Error, err, tc.msg)
			}
			if calls := fc.Calls(); len(calls) > 0 {
				t.Errorf("a refused command reached the daemon: %v", calls)
			}
		})
	}
}

// TestRolesOff: without an operator group every user of the socket
// operates, and a group that does not exist stops the daemon at start.
func TestRolesOff(t *testing.T) {
	rl, err := newRoles("")
	if err != nil || rl != nil {
		t.Fatalf("newRoles(\"\") = %v, %v", rl, err)
	}
	ctx := context.WithValue(context.Background(), peerKey{}, peerCred{UID: 1002, User: "ola"})
	if err := rl.operate(ctx, "rollback"); err != nil {
		t.Errorf("no group: %v", err)
	}
	_, err = newRoles("cutover-no-such-group")
	if err == nil || !strings.HasPrefix(err.Error(), `--operator-group "cutover-no-such-group": `) {
		t.Errorf("unknown group: %v", err)
	}
	if rl, err := newRoles("root"); err != nil || rl.gid != 0 || !slices.Equal([]string{rl.group}, []string{"root"}) {
		t.Errorf("newRoles(root) = %+v, %v", rl, err)
	}
}

// dialAs connects to the unix socket sock from an OS thread whose
// effective user and group are uid and gid, so that the daemon's
// SO_PEERCRED sees that user; the connection then serves any goroutine.
// It needs root; the thread is never given back.
func dialAs(t *testing.T, sock string, uid, gid int) net.Conn {
	t.Helper()
	type dialed struct {
		c   net.Conn
		err error
	}
	ch := make(chan dialed, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with this goroutine
		// Raw syscalls change this thread's credentials only (Go's own
		// Setresuid would change every thread of the test).
		if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESGID, uintptr(gid), uintptr(gid), ^uintptr(0)); e != 0 {
			ch <- dialed{err: fmt.Errorf("setresgid: %w", e)}
			return
		}
		if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESUID, uintptr(uid), uintptr(uid), ^uintptr(0)); e != 0 {
			ch <- dialed{err: fmt.Errorf("setresuid: %w", e)}
			return
		}
		c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: sock, Net: "unix"})
		ch <- dialed{c, err}
	}()
	d := <-ch
	if d.err != nil {
		t.Fatalf("connect as %d: %v", uid, d.err)
	}
	t.Cleanup(func() { d.c.Close() })
	return d.c
}

// TestDaemonRolesPeerCred: a daemon with --operator-group root refuses a
// command from user nobody, as the kernel names the peer (whatever the
// client claims), and serves it status; root's command goes through.
func TestDaemonRolesPeerCred(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the test connects as user nobody")
	}
	dir, err := os.MkdirTemp("", "cutover-roles") // nobody must reach the socket: not t.TempDir (0700)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	h := openDaemonConfig(t, Config{StateDir: dir, Backends: &FakeBackends{}, Log: zerolog.New(logcheck.Writer(t)), OperatorGroup: "root"})
	defer h.stop()
	sock := h.cl.Socket
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	nobody := func() *http.Client {
		c := dialAs(t, sock, 65534, 65534)
		return &http.Client{Transport: &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) { return c, nil }}}
	}
	resp, err := nobody().Post("http://cutover/v1/pause", "application/json", strings.NewReader(`{"operator":"root"}`))
	if err != nil {
		t.Fatal(err)
	}
	var eb client.ErrorBody
	_ = json.NewDecoder(resp.Body).Decode(&eb)
	resp.Body.Close()
	name := "65534"
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	want := `pause: refused: ` + name + ` may observe (status, report, watch) but not change the run: that takes membership of the unix group "root"`
	if resp.StatusCode != http.StatusForbidden || eb.Error != want {
		t.Errorf("nobody's pause: %d %q, want 403 %q", resp.StatusCode, eb.Error, want)
	}
	resp, err = nobody().Get("http://cutover/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("nobody's status: %d", resp.StatusCode)
	}
	// Root operates: the pause reaches the engine (which has no run).
	err = h.cl.Pause(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no run") {
		t.Errorf("root's pause: %v, want the engine's answer that there is no run", err)
	}
}
