package redact

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// Real-world-shaped URLs (the secrets are made up).
const (
	slack   = "https://hooks.slack.com/services/T0A1B2C3D/B0A1B2C3D4E/FaKe0sEcReT1fAkE2sEcReT3"
	teams   = "https://contoso.webhook.office.com/webhookb2/7f1c2d3e-1234-4cde-9abc-0123456789ab@72f988bf-86f1-41af-91ab-2d7cd011db47/IncomingWebhook/0123456789abcdef0123456789abcdef/f0e1d2c3-b4a5-4697-8899-aabbccddeeff"
	discord = "https://discord.com/api/webhooks/1234567890123456789/FAKEabcDEFghiJKL_mnoPQRstuVWXyz-0123456789abcdefGHIJKLmnopQRSTuvwxYZ01234"
)

func TestURL(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", ""},
		{"slack", slack, "https://hooks.slack.com/services/xxxxx/xxxxx/xxxxx"},
		{"slack gov", "https://hooks.slack-gov.com/services/T0/B0/abc", "https://hooks.slack-gov.com/services/xxxxx/xxxxx/xxxxx"},
		{"services elsewhere is no marker", "http://kube/api/v1/namespaces/mon/services/prometheus:9090/proxy",
			"http://kube/api/v1/namespaces/mon/services/prometheus:9090/proxy"},
		{"teams", teams, "https://contoso.webhook.office.com/webhookb2/xxxxx/IncomingWebhook/xxxxx/xxxxx"},
		{"discord", discord, "https://discord.com/api/webhooks/xxxxx/xxxxx"},
		{"mattermost", "https://chat.example.org/hooks/abc", "https://chat.example.org/hooks/xxxxx"},
		{"markers in any case, empty segments kept", "https://x/Hooks/a//b/", "https://x/Hooks/xxxxx//xxxxx/"},
		{"plain prometheus", "http://127.0.0.1:9090", "http://127.0.0.1:9090"},
		{"prometheus path", "http://prometheus.monitoring:9090/prom/api/v1/query", "http://prometheus.monitoring:9090/prom/api/v1/query"},
		{"ipv6", "http://[fd00::1]:9090/", "http://[fd00::1]:9090/"},
		{"user and password", "https://admin:s3cret@prom.example:9090/prom", "https://xxxxx@prom.example:9090/prom"},
		{"user alone", "https://ghp_token@prom.example/", "https://xxxxx@prom.example/"},
		{"password net/http stripped", "https://admin:***@prom.example/", "https://xxxxx@prom.example/"},
		{"apikey", "https://api.example.net/v2/notify?apikey=0123abcd&team=night", "https://api.example.net/v2/notify?apikey=xxxxx&team=xxxxx"},
		{"empty value and part without key", "http://h/?a=&b&c=1", "http://h/?a=&xxxxx&c=xxxxx"},
		{"secret-looking key", "http://h/?abcdef0123456789xyz=1", "http://h/?xxxxx=xxxxx"},
		{"force query", "http://h/?", "http://h/?"},
		{"fragment", "http://h/#access_token=abc", "http://h/#xxxxx"},
		{"16 characters with a digit", "http://h/a/abcdefghijklmno1/b", "http://h/a/xxxxx/b"},
		{"15 characters with a digit", "http://h/a/abcdefghijklmn1/b", "http://h/a/abcdefghijklmn1/b"},
		{"16 letters", "http://h/abcdefghijklmnop", "http://h/abcdefghijklmnop"},
		{"32 letters", "http://h/abcdefghijklmnopqrstuvwxyzabcdef", "http://h/xxxxx"},
		{"escaped segment", "http://h/a%2Fb/c%20d0123456789abcdef", "http://h/a%2Fb/xxxxx"},
		{"opaque", "mailto:night@example.org", "mailto:xxxxx"},
		{"opaque, no slashes", "http:alice:pw0rd@prom.example/x?token=abc", "http:xxxxx?token=xxxxx"},
		{"host and port without scheme", "prometheus:9090", "prometheus:9090"},
		{"relative", "hooks/abc?k=v", "hooks/xxxxx?k=xxxxx"},
		{"space in host", "http://a b.example/hooks/abc", Unparsable},
		{"open bracket", "http://[::1/hooks/abc", Unparsable},
		{"control character", "http://h/\x7f/abc", Unparsable},
		{"bad escape", "http://user:pass@h/%zz", Unparsable},
		{"bad port", "http://user:pass@h:port/", Unparsable},
		{"placeholder", Unparsable, Unparsable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := URL(tc.in)
			if got != tc.want {
				t.Errorf("URL(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
			if again := URL(got); again != got {
				t.Errorf("URL(URL(%q)) = %q, want %q", tc.in, again, got)
			}
		})
	}
}

// TestErrorHTTP: net/http's errors name the URL asked (with the password
// replaced by ***, the query and path as they are); none of it is left.
func TestErrorHTTP(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	host := srv.Listener.Addr().String()
	srv.Close() // nothing listens any more: connection refused
	raw := "http://admin:s3cret@" + host + "/hooks/abc123?token=t0ps3cret"
	_, err := http.Post(raw, "application/json", strings.NewReader("{}"))
	if err == nil {
		t.Fatal("no error")
	}
	want := `Post "http://xxxxx@` + host + `/hooks/xxxxx?token=xxxxx": dial tcp ` + host + `: connect: connection refused`
	for _, e := range []error{err, fmt.Errorf("post notification: %w", err), errors.Join(errors.New("first"), err)} {
		got := Error(e, raw)
		if !strings.HasSuffix(got, want) {
			t.Errorf("Error(%q)\n got %q\nwant …%q", e, got, want)
		}
		for _, secret := range []string{"admin", "s3cret", "abc123", "t0ps3cret"} {
			if strings.Contains(got, secret) {
				t.Errorf("%q shows %q", got, secret)
			}
		}
	}

	// The server's base URL is a prefix of the URL asked.
	base := "http://admin:s3cret@" + host + "/prom?tenant=abc"
	req, err := http.NewRequest(http.MethodPost, "http://admin:s3cret@"+host+"/prom/api/v1/query?tenant=abc", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = http.DefaultClient.Do(req)
	want = `Post "http://xxxxx@` + host + `/prom/api/v1/query?tenant=xxxxx": dial tcp ` + host + `: connect: connection refused`
	if got := Error(err, base); got != want {
		t.Errorf("Error\n got %q\nwant %q", got, want)
	}
}

func TestError(t *testing.T) {
	const raw = "https://admin:s3cret@prom.example:9090/?token=abc"
	//lint:ignore SA1007 the URL does not parse, on purpose
	_, parseErr := url.Parse("http://admin:s3cret@h/%zz")
	for _, tc := range []struct {
		name string
		err  error
		raw  string
		want string
	}{
		{"nil", nil, raw, ""},
		{"no URL", errors.New("connection refused"), raw, "connection refused"},
		{"quoted", fmt.Errorf("url %q: want http", raw), raw, `url "https://xxxxx@prom.example:9090/?token=xxxxx": want http`},
		{"bare", fmt.Errorf("post to %s: 404 Not Found", raw), raw, "post to https://xxxxx@prom.example:9090/?token=xxxxx: 404 Not Found"},
		{"Redacted form", fmt.Errorf("get %s", "https://admin:xxxxx@prom.example:9090/?token=abc"), raw,
			"get https://xxxxx@prom.example:9090/?token=xxxxx"},
		{"parse error", parseErr, "http://admin:s3cret@h/%zz", `parse "[unparsable URL]": invalid URL escape "%zz"`},
		{"parse error, URL not given", fmt.Errorf("url: %w", parseErr), "", `url: parse "[unparsable URL]": invalid URL escape "%zz"`},
		{"url.Error in a join", errors.Join(errors.New("a"), &url.Error{Op: "Get", URL: "http://h/hooks/x", Err: errors.New("EOF")}), "",
			"a\nGet \"http://h/hooks/xxxxx\": EOF"},
		{"nothing to hide", fmt.Errorf("get %s: EOF", "http://127.0.0.1:9090"), "http://127.0.0.1:9090", "get http://127.0.0.1:9090: EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Error(tc.err, tc.raw); got != tc.want {
				t.Errorf("Error\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestWrap(t *testing.T) {
	if Wrap(nil, "http://h/") != nil {
		t.Error("Wrap(nil) is not nil")
	}
	const raw = "http://h/hooks/abc"
	inner := &url.Error{Op: "Post", URL: raw, Err: context.Canceled}
	err := fmt.Errorf("post notification: %w", Wrap(inner, raw))
	if got, want := err.Error(), `post notification: Post "http://h/hooks/xxxxx": context canceled`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	var ue *url.Error
	if !errors.Is(err, context.Canceled) || !errors.As(err, &ue) {
		t.Error("the wrapped error is not reachable")
	}
}
