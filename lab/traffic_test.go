package lab

import (
	"context"
	"math"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNewTrafficErrors(t *testing.T) {
	ok := []string{"http://10.64.0.10:80/"}
	for _, tc := range []struct {
		name string
		cfg  TrafficConfig
		want string
	}{
		{"no URLs", TrafficConfig{Rate: 1}, "traffic: no URLs"},
		{"ftp", TrafficConfig{URLs: []string{"ftp://10.64.0.10/"}, Rate: 1}, `traffic: URL "ftp://10.64.0.10/": want http:// or https:// and a host`},
		{"no host", TrafficConfig{URLs: []string{"http:///healthz"}, Rate: 1}, `traffic: URL "http:///healthz": want http:// or https:// and a host`},
		{"zero rate", TrafficConfig{URLs: ok}, "traffic: rate 0: want more than 0 requests per second"},
		{"negative rate", TrafficConfig{URLs: ok, Rate: -5}, "traffic: rate -5: want more than 0 requests per second"},
		{"NaN rate", TrafficConfig{URLs: ok, Rate: math.NaN()}, "traffic: rate NaN: want more than 0 requests per second"},
		{"infinite rate", TrafficConfig{URLs: ok, Rate: math.Inf(1)}, "traffic: rate +Inf: want more than 0 requests per second"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewTraffic(tc.cfg); err == nil || err.Error() != tc.want {
				t.Errorf("NewTraffic = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestReadURLs(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good", "# hospitals\nhttp://10.64.0.10:80/\n\n  https://10.64.0.11:443/healthz  \n")
	urls, err := ReadURLs(good)
	if err != nil || strings.Join(urls, " ") != "http://10.64.0.10:80/ https://10.64.0.11:443/healthz" {
		t.Errorf("ReadURLs = %q, %v", urls, err)
	}
	bad := write("bad", "http://10.64.0.10/\n\ntcp://10.64.0.11:22\n")
	empty := write("empty", "# nothing\n")
	for _, tc := range []struct{ path, want string }{
		{bad, bad + `:3: URL "tcp://10.64.0.11:22": want http:// or https:// and a host`},
		{empty, empty + ": no URLs"},
		{filepath.Join(dir, "missing"), "read URLs: open " + filepath.Join(dir, "missing") + ": no such file or directory"},
	} {
		if _, err := ReadURLs(tc.path); err == nil || err.Error() != tc.want {
			t.Errorf("ReadURLs(%s) = %v, want %q", filepath.Base(tc.path), err, tc.want)
		}
	}
}

// TestTraffic runs the client against a real responder on loopback: a
// healthy VM over HTTP and HTTPS, one answering 503 and one down, and
// checks that each result is counted and exported.
func TestTraffic(t *testing.T) {
	tr := startTestResponders(t, nil)
	one, two := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	if err := tr.l.SetVMStatus(NodeSKM2, []netip.Addr{two}, 503); err != nil {
		t.Fatal(err)
	}
	const rate = 40.0
	c, err := NewTraffic(TrafficConfig{
		URLs: []string{
			"http://" + tr.http[one] + "/healthz",
			"https://" + tr.https[one] + "/status",
			"http://" + tr.http[two] + "/",
		},
		Rate:    rate,
		RootCAs: tr.ca.Pool(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- c.Run(ctx) }()

	// Counts, not time: a loaded machine gets there later, not wrong.
	waitCounts(t, c, func(n map[string]uint64) bool { return n[ResultOK] >= 10 && n[ResultHTTP5xx] >= 5 })
	if err := tr.l.SetVMDown(NodeSKM2, []netip.Addr{two}, true); err != nil {
		t.Fatal(err)
	}
	before := c.Counts()[ResultError]
	waitCounts(t, c, func(n map[string]uint64) bool { return n[ResultError] >= before+3 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	took := time.Since(start)
	n := c.Counts()
	total := n[ResultOK] + n[ResultHTTP5xx] + n[ResultHTTPOther] + n[ResultError]
	// The rate is a ceiling: never more than what was due, plus the one
	// sent at the start.
	if limit := uint64(took.Seconds()*rate) + 1; total > limit {
		t.Errorf("%d requests in %s at %g/s, want at most %d", total, took, rate, limit)
	}
	if n[ResultHTTPOther] != 0 {
		t.Errorf("counts %v: no other statuses were answered", n)
	}

	rec := httptest.NewRecorder()
	c.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, r := range []string{ResultOK, ResultHTTP5xx, ResultHTTPOther, ResultError} {
		if !strings.Contains(rec.Body.String(), `cutover_lab_client_requests_total{result="`+r+`"} `) {
			t.Errorf("metrics lack result %s:\n%s", r, rec.Body)
		}
	}
}

func waitCounts(t *testing.T, c *Traffic, done func(map[string]uint64) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !done(c.Counts()) {
		if time.Now().After(deadline) {
			t.Fatalf("counts after 30s: %v", c.Counts())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestLaunchArgs(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  []string
		want string
	}{
		{"responder default", ResponderListen{}.Args(), ""},
		{"responder all", ResponderListen{HTTP: []uint16{80, 8080}, HTTPS: []uint16{443}, CADir: "/run/cutover/lab/x/ca",
			Metrics: netip.MustParseAddrPort("10.255.1.2:9100")}.Args(),
			"--listen :80 --listen :8080 --tls-listen :443 --ca /run/cutover/lab/x/ca --metrics 10.255.1.2:9100"},
		{"traffic", TrafficFlags{URLFile: "u.txt", Rate: 12.5, Metrics: "10.255.3.2:9101"}.Args(), "--traffic u.txt --rate 12.5 --metrics 10.255.3.2:9101"},
		{"traffic with CA", TrafficFlags{URLFile: "u.txt", Rate: 40, Metrics: "10.255.3.2:9101", CADir: "ca"}.Args(), "--traffic u.txt --rate 40 --metrics 10.255.3.2:9101 --ca ca"},
	} {
		if got := strings.Join(tc.got, " "); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
