package health

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestPromGateRedacted: a Prometheus URL with a password or a token is
// never in a verdict's reasons: the settings' errors name it redacted, and
// a working one still passes (the credentials are sent).
func TestPromGateRedacted(t *testing.T) {
	var gotUser, gotPass, gotToken string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/prom/api/v1/query":
			gotUser, gotPass, _ = r.BasicAuth()
			gotToken = r.URL.Query().Get("token")
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(vector(okA).body))
		case "/loop/api/v1/query":
			http.Redirect(w, r, r.URL.String(), http.StatusTemporaryRedirect)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	host := srv.Listener.Addr().String()
	closed := httptest.NewServer(http.NotFoundHandler())
	gone := closed.Listener.Addr().String()
	closed.Close()

	for _, tc := range []struct {
		name string
		url  string
		want Verdict
	}{
		{"works", "http://alice:pw0rd@" + host + "/prom?token=t0ps3cret",
			Verdict{Gate: "prometheus", Pass: true, Reasons: []string{"poll 1: errors < 1 holds for 1 series; held 1 round"}}},
		{"not http", "ftp://alice:pw0rd@" + host + "/prom?token=t0ps3cret", Verdict{Gate: "prometheus", Reasons: []string{
			`gate prometheus: url "ftp://xxxxx@` + host + `/prom?token=xxxxx": want http:// or https:// and a host`}}},
		{"no host", "http:alice:pw0rd?token=t0ps3cret", Verdict{Gate: "prometheus", Reasons: []string{
			`gate prometheus: url "http:xxxxx?token=xxxxx": want http:// or https:// and a host`}}},
		{"unparsable", "http://alice:pw0rd@prom.example:x/prom?token=t0ps3cret", Verdict{Gate: "prometheus", Reasons: []string{
			`gate prometheus: url: parse "[unparsable URL]": invalid port ":x" after host`}}},
		{"control character", "http://alice:pw0rd@" + host + "/prom\x7f?token=t0ps3cret", Verdict{Gate: "prometheus", Reasons: []string{
			`gate prometheus: url: parse "[unparsable URL]": net/url: invalid control character in URL`}}},
		{"not found", "http://alice:pw0rd@" + host + "/nothing?token=t0ps3cret", Verdict{Gate: "prometheus", Reasons: []string{
			"query errors: HTTP 404 Not Found: not a Prometheus API answer"}}},
		{"redirect loop", "http://alice:pw0rd@" + host + "/loop?token=t0ps3cret", Verdict{Gate: "prometheus", Reasons: []string{
			"no verdict within 1s after 1 polls", "poll 1: query errors: stopped after 10 redirects"}}},
		{"connection refused", "http://alice:pw0rd@" + gone + "/prom?token=t0ps3cret", Verdict{Gate: "prometheus", Reasons: []string{
			"no verdict within 1s after 1 polls", "poll 1: query errors: connection refused"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := PromGate{URL: tc.url, Query: "errors", Op: "<", Value: 1, Interval: time.Hour, Within: time.Second}
			v := g.Check(context.Background(), Input{})
			assertVerdict(t, v, tc.want)
			if err := g.Validate(); err != nil && err.Error() != strings.Join(tc.want.Reasons, "\n") {
				t.Errorf("Validate: %q, want the reason", err)
			}
			for _, r := range v.Reasons {
				if strings.Contains(r, "pw0rd@") || strings.Contains(r, "t0ps3cret") {
					t.Errorf("reason %q shows a secret", r)
				}
			}
		})
	}
	if gotUser != "alice" || gotPass != "pw0rd" || gotToken != "t0ps3cret" {
		t.Errorf("the server saw user %q password %q token %q", gotUser, gotPass, gotToken)
	}
}
