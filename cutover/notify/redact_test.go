package notify

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestLogRedacted: a failed delivery's log line names the webhook without
// its secrets (user-info, path token, query values), whatever failed: an
// answer, the connection, the URL itself, or Close giving up.
func TestLogRedacted(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/hang/") {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		w.WriteHeader(map[bool]int{true: 500, false: 404}[strings.HasPrefix(r.URL.Path, "/busy/")])
	}))
	defer srv.Close()
	defer close(release)
	host := srv.Listener.Addr().String()
	closed := httptest.NewServer(http.NotFoundHandler())
	gone := closed.Listener.Addr().String()
	closed.Close()

	const secrets = "/hooks/T0A1B2C3D/FaKe0sEcReT1fAkE2sEcReT3?token=t0ps3cret&channel=night"
	const shown = "/hooks/xxxxx/xxxxx?token=xxxxx&channel=xxxxx"
	for _, tc := range []struct {
		name   string
		url    string
		hang   bool
		errors []string // the error field of each log line
	}{
		{"404", "http://alice:pw0rd@" + host + secrets, false, []string{
			"post notification to http://xxxxx@" + host + shown + ": 404 Not Found"}},
		{"500, retried", "http://alice:pw0rd@" + host + "/busy" + secrets, false, []string{
			"post notification to http://xxxxx@" + host + "/busy" + shown + ": 500 Internal Server Error"}},
		{"connection refused", "http://alice:pw0rd@" + gone + secrets, false, []string{
			`post notification: Post "http://xxxxx@` + gone + shown + `": dial tcp ` + gone + `: connect: connection refused`}},
		{"unparsable", "http://alice:pw0rd@" + host + secrets + "\x7f", false, []string{
			`post notification: parse "[unparsable URL]": net/url: invalid control character in URL`}},
		{"close gives up", "http://alice:pw0rd@" + host + "/hang" + secrets, true, []string{
			`post notification: Post "http://xxxxx@` + host + "/hang" + shown + `": context canceled (gave up: context canceled)`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := newWebhook(t, tc.url)
			w.Log = zerolog.New(&buf)
			w.Notify("gate-failed", "b02")
			ctx := context.Background()
			if tc.hang {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, 50*time.Millisecond)
				defer cancel()
			}
			if err := w.Close(ctx); (err != nil) != tc.hang {
				t.Fatalf("Close: %v", err)
			}
			if _, _, failed := w.Stats(); failed != 1 {
				t.Errorf("failed %d, want 1", failed)
			}
			var got []string
			sc := bufio.NewScanner(&buf)
			for sc.Scan() {
				var line struct{ Level, Op, Error, Kind, Message string }
				if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
					t.Fatalf("log line %q: %v", sc.Text(), err)
				}
				if line.Level != "warn" || line.Op != "notify" || line.Kind != "gate-failed" || line.Message != "notification not delivered" {
					t.Errorf("log line %s", sc.Text())
				}
				got = append(got, line.Error)
			}
			if strings.Join(got, "\n") != strings.Join(tc.errors, "\n") {
				t.Errorf("errors logged\n got %q\nwant %q", got, tc.errors)
			}
			for _, secret := range []string{"alice", "pw0rd", "T0A1B2C3D", "FaKe0sEcReT1fAkE2sEcReT3", "t0ps3cret", "night"} {
				if strings.Contains(buf.String(), secret) {
					t.Errorf("the log shows %q: %s", secret, buf.String())
				}
			}
		})
	}
}
