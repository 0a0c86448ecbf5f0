package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/cutover/cutover/cutover/daemon/client"
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
