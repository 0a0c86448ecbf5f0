package notify

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name, in, wantErr string
	}{
		{"webhook, file, both and *", `
tenants:
  helse-bodo:
    webhook: https://hooks.example/abc
  unn:
    file: /var/log/cutover/unn.jsonl
  Helse Nord RHF.2:
    webhook: http://10.0.0.1:8080/n
    file: /var/log/cutover/nord.jsonl
  "*":
    file: /var/log/cutover/tenants.jsonl
`, ""},
		{"empty", "", "t.yaml: the file is empty"},
		{"comments only", "# nothing\n", "t.yaml: the file is empty"},
		{"syntax", "tenants:\n  unn: {file: /x\n", "t.yaml:1: YAML syntax: did not find expected ',' or '}'"},
		{"a list", "- unn\n", "t.yaml:1: want a mapping (tenants: ...), not a list"},
		{"unknown top-level key", "tenant:\n  unn: {file: /x}\n",
			`t.yaml:1: tenant: unknown field (did you mean "tenants"?)`},
		{"unknown route key", "tenants:\n  unn:\n    fil: /x\n",
			`t.yaml:3: tenants.unn.fil: unknown field (did you mean "file"?)`},
		{"unknown route key, far off", "tenants:\n  unn:\n    email: unn@example.org\n",
			`t.yaml:3: tenants.unn.email: unknown field (known: webhook, file)`},
		{"no tenants", "tenants: {}\n",
			`t.yaml:1: tenants: required: a route (webhook, file or both) per tenant, or "*" for every tenant`},
		{"tenants missing", "# routes\n{}\n",
			`t.yaml: tenants: required: a route (webhook, file or both) per tenant, or "*" for every tenant`},
		{"tenants a list", "tenants: [unn]\n", "t.yaml:1: tenants: want a mapping (key: value), not a list"},
		{"route to nowhere", "tenants:\n  unn: {}\n  helse-bodo:\n", "t.yaml:2: tenants.unn: want a webhook, a file or both\n" +
			"t.yaml:3: tenants.helse-bodo: want a webhook, a file or both"},
		{"duplicate tenant", "tenants:\n  unn: {file: /a}\n  unn: {file: /b}\n",
			"t.yaml:3: tenants.unn: duplicate key (first on line 2)"},
		{"bad tenant name", "tenants:\n  unn/tromsø: {file: /a}\n",
			`t.yaml:2: tenants.unn/tromsø: tenant name: use letters, digits, spaces, '-', '_' or '.' ("*" routes every other tenant) (value "unn/tromsø")`},
		{"tenant name too long", "tenants:\n  " + strings.Repeat("a", 65) + ": {file: /a}\n",
			"t.yaml:2: tenants." + strings.Repeat("a", 65) + ": tenant name: longer than 64 characters (\"*\" routes every other tenant) (value \"" + strings.Repeat("a", 65) + "\")"},
		{"webhook not http, secret hidden", "tenants:\n  unn:\n    webhook: ftp://alice:pw0rd@hooks.example/hooks/T0A1B2C3D?token=t0ps3cret\n",
			`t.yaml:3: tenants.unn.webhook: want an http or https URL (value "ftp://xxxxx@hooks.example/hooks/xxxxx?token=xxxxx")`},
		{"webhook without scheme", "tenants:\n  unn:\n    webhook: hooks.example/abc\n",
			`t.yaml:3: tenants.unn.webhook: want an http or https URL (value "hooks.example/abc")`},
		{"webhook without host", "tenants:\n  unn:\n    webhook: https:///hooks/abc\n",
			`t.yaml:3: tenants.unn.webhook: want a URL with a host (value "https:///hooks/xxxxx")`},
		{"webhook unparsable", "tenants:\n  unn:\n    webhook: \"http://alice:pw0rd@hooks example/x\"\n",
			`t.yaml:3: tenants.unn.webhook: not a URL (value "[unparsable URL]")`},
		{"webhook a list", "tenants:\n  unn:\n    webhook: [https://a.example/]\n",
			"t.yaml:3: tenants.unn.webhook: want a single value, not a list"},
		{"relative file", "tenants:\n  unn:\n    file: unn.jsonl\n",
			`t.yaml:3: tenants.unn.file: want an absolute path (value "unn.jsonl")`},
		{"every mistake at once", "tenants:\n  unn:\n    file: unn.jsonl\n  \"*\":\n    webhook: hooks.example\n",
			`t.yaml:3: tenants.unn.file: want an absolute path (value "unn.jsonl")` + "\n" +
				`t.yaml:5: tenants.*.webhook: want an http or https URL (value "hooks.example")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := parseConfig("t.yaml", []byte(strings.TrimPrefix(tt.in, "\n")))
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.wantErr {
				t.Errorf("error\n got %q\nwant %q", got, tt.wantErr)
			}
		})
	}
}

// writeConfig writes a routing file into a new temporary directory, with
// DIR standing for that directory.
func writeConfig(t *testing.T, text string) (path, dir string) {
	t.Helper()
	dir = t.TempDir()
	path = filepath.Join(dir, "tenants.yaml")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(text, "DIR", dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, dir
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.Symlink(filepath.Join(dir, "elsewhere"), filepath.Join(dir, "link.jsonl")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, in, wantErr string
	}{
		{"no directory", "tenants:\n  unn: {file: DIR/missing/unn.jsonl}\n",
			`CONF:2: tenants.unn.file: cannot append to it: no such file or directory (value "DIR/missing/unn.jsonl")`},
		{"a directory", "tenants:\n  unn: {file: DIR}\n",
			`CONF:2: tenants.unn.file: cannot append to it: is a directory (value "DIR")`},
		{"a symbolic link", "tenants:\n  unn: {file: DIR/link.jsonl}\n",
			`CONF:2: tenants.unn.file: cannot append to it: it is a symbolic link: name the file itself (value "DIR/link.jsonl")`},
		{"a mistake stops before any file", "tenants:\n  unn: {file: DIR/unn.jsonl}\n  x: {}\n",
			"CONF:3: tenants.x: want a webhook, a file or both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf := filepath.Join(dir, "tenants.yaml")
			if err := os.WriteFile(conf, []byte(strings.ReplaceAll(tt.in, "DIR", dir)), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(conf, Options{})
			want := "tenant notices: " + strings.NewReplacer("CONF", conf, "DIR", dir).Replace(tt.wantErr)
			if err == nil || err.Error() != want {
				t.Errorf("error\n got %v\nwant %s", err, want)
			}
			if _, err := os.Stat(filepath.Join(dir, "unn.jsonl")); err == nil {
				t.Errorf("a file was created")
			}
		})
	}
	_, err := Load(filepath.Join(dir, "nothing.yaml"), Options{})
	if want := "tenant notices: open " + dir + "/nothing.yaml: no such file or directory"; err == nil || err.Error() != want {
		t.Errorf("missing file: %v, want %s", err, want)
	}
	_, err = Load(dir, Options{})
	if want := "tenant notices: " + dir + ": not a regular file"; err == nil || err.Error() != want {
		t.Errorf("a directory: %v, want %s", err, want)
	}
}

func notice(kind Kind, tenant string, vms ...string) Notice {
	return Notice{Kind: kind, Tenant: tenant, Run: "20260314T230000Z", Runbook: "/etc/cutover/nord.yaml",
		Batch: &BatchRef{Index: 1, Name: "batch-02"}, VMs: vms, Count: len(vms), Time: at,
		Message: "batch-02 starts: " + strings.Join(vms, ", ")}
}

// readLines reads the JSON notices of a file.
func readLines(t *testing.T, path string) []Notice {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ns []Notice
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var n Notice
		if err := json.Unmarshal(sc.Bytes(), &n); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		ns = append(ns, n)
	}
	return ns
}

func TestFileDelivery(t *testing.T) {
	conf, dir := writeConfig(t, `
tenants:
  unn:
    file: DIR/unn.jsonl
  helse-bodo:
    file: DIR/./shared.jsonl
  "*":
    file: DIR/shared.jsonl
`)
	// A file that exists keeps its mode and content.
	if err := os.WriteFile(filepath.Join(dir, "shared.jsonl"), []byte("{\"kind\":\"earlier\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := Load(conf, Options{Log: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Tenants(); !reflect.DeepEqual(got, []string{"*", "helse-bodo", "unn"}) {
		t.Errorf("tenants %q", got)
	}
	fi, err := os.Stat(filepath.Join(dir, "unn.jsonl"))
	if err != nil || fi.Mode() != FileMode || fi.Size() != 0 {
		t.Fatalf("Load did not create unn.jsonl empty with mode %v: %v, %v", os.FileMode(FileMode), fi, err)
	}
	unn := notice(BatchStart, "unn", "unn-1", "unn-2")
	bodo := notice(BatchCommit, "helse-bodo", "hb-1")
	other := notice(BatchRollback, "finnmark", "fm-1")
	end := Notice{Kind: RunEnd, Tenant: "unn", Run: "20260314T230000Z", Runbook: "/etc/cutover/nord.yaml",
		Count: 3, End: &EndCount{AtTarget: 3, Outcome: "all-moved"}, Time: at, Message: "all 3 VMs at skm2"}
	for _, n := range []Notice{unn, bodo, other, end} {
		r.Notify(n)
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := r.Stats(); s != (RouterStats{Sent: 4}) {
		t.Errorf("stats %+v", s)
	}
	withText := func(n Notice) Notice {
		n.Text = "cutover " + string(n.Kind) + " for " + n.Tenant + ": " + n.Message
		if n.VMs == nil {
			n.VMs = []string{}
		}
		return n
	}
	if got, want := readLines(t, filepath.Join(dir, "unn.jsonl")), []Notice{withText(unn), withText(end)}; !reflect.DeepEqual(got, want) {
		t.Errorf("unn.jsonl\n got %+v\nwant %+v", got, want)
	}
	if got, want := readLines(t, filepath.Join(dir, "shared.jsonl")), []Notice{{Kind: "earlier"}, withText(bodo), withText(other)}; !reflect.DeepEqual(got, want) {
		t.Errorf("shared.jsonl\n got %+v\nwant %+v", got, want)
	}
	if fi, err := os.Stat(filepath.Join(dir, "shared.jsonl")); err != nil || fi.Mode() != 0o600 {
		t.Errorf("shared.jsonl's mode changed: %v, %v", fi, err)
	}
	// The exact line: field names are an interface.
	data, _ := os.ReadFile(filepath.Join(dir, "unn.jsonl"))
	first, _, _ := strings.Cut(string(data), "\n")
	const want = `{"kind":"batch-start","tenant":"unn","run":"20260314T230000Z","runbook":"/etc/cutover/nord.yaml",` +
		`"batch":{"index":1,"name":"batch-02"},"vms":["unn-1","unn-2"],"count":2,"time":"2026-03-14T23:00:05Z",` +
		`"message":"batch-02 starts: unn-1, unn-2","text":"cutover batch-start for unn: batch-02 starts: unn-1, unn-2"}`
	if first != want {
		t.Errorf("line\n got %s\nwant %s", first, want)
	}
}

// TestFileRotated: a file renamed away (log rotation) is created anew
// by the next notice.
func TestFileRotated(t *testing.T) {
	conf, dir := writeConfig(t, "tenants:\n  unn: {file: DIR/unn.jsonl}\n")
	r, err := Load(conf, Options{})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "unn.jsonl")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	r.Notify(notice(BatchStart, "unn", "unn-1"))
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ns := readLines(t, path); len(ns) != 1 || ns[0].Kind != BatchStart {
		t.Errorf("after rotation: %+v", ns)
	}
}

func TestUnrouted(t *testing.T) {
	conf, dir := writeConfig(t, "tenants:\n  unn: {file: DIR/unn.jsonl}\n")
	r, err := Load(conf, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r.Notify(notice(BatchStart, "helse-bodo", "hb-1"))
	r.Notify(notice(BatchStart, "UNN", "x")) // tenant names are exact
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := r.Stats(); s != (RouterStats{Unrouted: 2}) {
		t.Errorf("stats %+v", s)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "unn.jsonl")); len(data) != 0 {
		t.Errorf("unn.jsonl: %s", data)
	}
}

// noticeServer records the notices POSTed to it.
type noticeServer struct {
	mu      sync.Mutex
	got     []Notice
	headers []http.Header
}

func newNoticeServer(t *testing.T) (*noticeServer, *httptest.Server) {
	ns := &noticeServer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n Notice
		if err := json.NewDecoder(r.Body).Decode(&n); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		ns.mu.Lock()
		ns.got = append(ns.got, n)
		ns.headers = append(ns.headers, r.Header.Clone())
		ns.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return ns, srv
}

func TestWebhookDelivery(t *testing.T) {
	ns, srv := newNoticeServer(t)
	conf, dir := writeConfig(t, `
tenants:
  unn:
    webhook: `+srv.URL+`/hooks/unn
    file: DIR/unn.jsonl
  helse-bodo:
    webhook: `+srv.URL+`/hooks/unn
`)
	r, err := Load(conf, Options{Log: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatal(err)
	}
	unn := notice(BatchStart, "unn", "unn-1", "unn-2")
	bodo := notice(BatchRollback, "helse-bodo", "hb-1")
	r.Notify(unn)
	r.Notify(bodo)
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(r.hooks) != 1 {
		t.Errorf("%d webhooks for one URL", len(r.hooks))
	}
	unn.Text = "cutover batch-start for unn: batch-02 starts: unn-1, unn-2"
	bodo.Text = "cutover batch-rollback for helse-bodo: batch-02 starts: hb-1"
	if want := []Notice{unn, bodo}; !reflect.DeepEqual(ns.got, want) {
		t.Errorf("posted\n got %+v\nwant %+v", ns.got, want)
	}
	if ct := ns.headers[0].Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	// Both routes of unn got its notice.
	if got := readLines(t, filepath.Join(dir, "unn.jsonl")); !reflect.DeepEqual(got, []Notice{unn}) {
		t.Errorf("unn.jsonl %+v", got)
	}
	if s := r.Stats(); s != (RouterStats{Sent: 3}) {
		t.Errorf("stats %+v", s)
	}
}

// TestRouterLogRedacted: a tenant's webhook that fails is logged with its
// tenant and without its secrets.
func TestRouterLogRedacted(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	host := srv.Listener.Addr().String()
	conf, _ := writeConfig(t, "tenants:\n  unn:\n    webhook: http://alice:pw0rd@"+host+"/hooks/T0A1B2C3D?token=t0ps3cret\n")
	var buf bytes.Buffer
	r, err := Load(conf, Options{Log: zerolog.New(&buf)})
	if err != nil {
		t.Fatal(err)
	}
	r.Notify(notice(BatchStart, "unn", "unn-1"))
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var line struct{ Level, Op, Kind, Tenant, Error, Message string }
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log %q: %v", buf.String(), err)
	}
	want := "post notification to http://xxxxx@" + host + "/hooks/xxxxx?token=xxxxx: 404 Not Found"
	if line.Level != "warn" || line.Op != "notify" || line.Kind != "batch-start" || line.Tenant != "unn" ||
		line.Error != want || line.Message != "notification not delivered" {
		t.Errorf("log line %s", buf.String())
	}
	for _, secret := range []string{"alice", "pw0rd", "T0A1B2C3D", "t0ps3cret"} {
		if strings.Contains(buf.String(), secret) {
			t.Errorf("the log shows %q", secret)
		}
	}
	if s := r.Stats(); s != (RouterStats{Failed: 1}) {
		t.Errorf("stats %+v", s)
	}
}

// TestRouterNeverWaits: a webhook that hangs holds up neither Notify nor
// the file route of the same tenant, and Close gives up on it when its
// context ends.
func TestRouterNeverWaits(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	conf, dir := writeConfig(t, "tenants:\n  unn:\n    webhook: "+srv.URL+"\n    file: DIR/unn.jsonl\n")
	r, err := Load(conf, Options{QueueSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	r.hooks[0].Timeout = time.Hour // only Close ends the hanging request
	for range 10 {
		r.Notify(notice(BatchStart, "unn", "unn-1"))
	}
	ctx, cancel := context.WithCancel(context.Background())
	closed := make(chan error, 1)
	go func() { closed <- r.Close(ctx) }()
	select {
	case <-r.files[0].ob.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the file's notices are not done")
	}
	cancel()
	if err := <-closed; err == nil || err.Error() != "close webhook: context canceled" {
		t.Errorf("Close: %v", err)
	}
	// The file took at least what its queue held; the webhook nothing:
	// one request failed, the others were dropped.
	lines := len(readLines(t, filepath.Join(dir, "unn.jsonl")))
	sent, _, failed := r.files[0].stats()
	if lines < 4 || sent != uint64(lines) || failed != 0 {
		t.Errorf("file: %d lines, %d sent, %d failed", lines, sent, failed)
	}
	if sent, dropped, failed := r.hooks[0].Stats(); sent != 0 || dropped != 9 || failed != 1 {
		t.Errorf("webhook: sent %d dropped %d failed %d, want 0 9 1", sent, dropped, failed)
	}
}
