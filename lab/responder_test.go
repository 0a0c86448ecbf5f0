package lab

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// fakeRefuser records what the responder asks the kernel to refuse.
type fakeRefuser struct {
	refused map[netip.Addr]bool
	fail    error
	calls   int
}

func (f *fakeRefuser) Refuse(add, remove []netip.Addr) error {
	f.calls++
	if f.fail != nil {
		return f.fail
	}
	for _, a := range add {
		if f.refused[a] {
			return errors.New("element exists") // nft fails on a double add too
		}
		f.refused[a] = true
	}
	for _, a := range remove {
		if !f.refused[a] {
			return errors.New("no such element")
		}
		delete(f.refused, a)
	}
	return nil
}

func (f *fakeRefuser) Close() error { return nil }

// testResponder is a responder on loopback: VMs 127.0.0.1 and 127.0.0.2,
// each with its own HTTP and HTTPS port, and metrics on 127.0.0.1.
type testResponder struct {
	l       *Lab
	http    map[netip.Addr]string // host:port
	https   map[netip.Addr]string
	metrics string
	ca      *CA
}

// startTestResponder runs a responder on loopback: VM 127.0.0.1 and
// 127.0.0.2, each on its own port.
func startTestResponder(t *testing.T, ref Refuser) (*Lab, map[netip.Addr]string) {
	t.Helper()
	tr := startTestResponders(t, ref)
	return tr.l, tr.http
}

// unitLab is a Lab with the default sites and no namespaces: enough to
// talk to responders on loopback through their control sockets in dir.
func unitLab(dir string) *Lab {
	topo := Topology{Sites: []Site{{Name: NodeSKM1, Node: NodeSKM1}, {Name: NodeSKM2, Node: NodeSKM2}}}
	return &Lab{st: state{Name: "unit", Dir: dir, Topology: topo}}
}

func startTestResponders(t *testing.T, ref Refuser) *testResponder {
	t.Helper()
	dir := t.TempDir()
	ca, err := NewCA(filepath.Join(dir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	tr := &testResponder{
		l:    unitLab(dir),
		http: map[netip.Addr]string{}, https: map[netip.Addr]string{}, ca: ca,
	}
	vms := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")}
	r := newResponder(ResponderConfig{Site: NodeSKM2, VMs: vms, Refuser: ref, CA: ca}, zerolog.New(zerolog.NewTestWriter(t)))
	var ls responderListeners
	// The VMs' sockets as RunResponder makes them.
	lc := answerListenConfig(ref != nil)
	listen := func(a netip.Addr) (net.Listener, string) {
		ln, err := lc.Listen(context.Background(), "tcp", netip.AddrPortFrom(a, 0).String())
		if err != nil {
			t.Fatal(err)
		}
		return ln, ln.Addr().String()
	}
	for _, a := range vms {
		var ln net.Listener
		ln, tr.http[a] = listen(a)
		ls.http = append(ls.http, ln)
		ln, tr.https[a] = listen(a)
		ls.https = append(ls.https, ln)
	}
	ls.metrics, tr.metrics = listen(vms[0])
	sock := tr.l.controlSocket(NodeSKM2)
	if err := os.MkdirAll(filepath.Dir(sock), 0o755); err != nil {
		t.Fatal(err)
	}
	if ls.control, err = net.Listen("unix", sock); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.serve(ctx, ls) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return tr
}

func get(addr string) (string, error) {
	body, _, err := getURL(nil, "http://"+addr+"/")
	return body, err
}

// getURL GETs url (https verified against roots) and returns the body and
// the status code.
func getURL(roots *x509.CertPool, url string) (string, int, error) {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		Proxy:             nil,
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{RootCAs: roots},
	}}
	resp, err := c.Get(url)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode, err
}

func TestResponder(t *testing.T) {
	ref := &fakeRefuser{refused: map[netip.Addr]bool{}}
	l, addrs := startTestResponder(t, ref)
	one, two := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")

	for a, hp := range addrs {
		if body, err := get(hp); err != nil || body != "skm2\n" {
			t.Errorf("GET %s = %q, %v; want skm2", a, body, err)
		}
	}

	// Down: the kernel is asked to refuse, and the responder resets what
	// still reaches it. Asking twice changes nothing.
	for range 2 {
		if err := l.SetVMDown(NodeSKM2, []netip.Addr{two, two}, true); err != nil {
			t.Fatal(err)
		}
	}
	if !ref.refused[two] || len(ref.refused) != 1 || ref.calls != 1 {
		t.Errorf("refused %v after %d calls, want only %s after 1", ref.refused, ref.calls, two)
	}
	if body, err := get(addrs[two]); err == nil {
		t.Errorf("GET down VM = %q, want an error", body)
	}
	if body, err := get(addrs[one]); err != nil || body != "skm2\n" {
		t.Errorf("GET up VM = %q, %v", body, err)
	}
	resp, err := l.control(context.Background(), NodeSKM2, controlRequest{Op: "status"})
	if err != nil || resp.Down != 1 || resp.VMs != 2 || resp.Site != NodeSKM2 {
		t.Errorf("status %+v, %v; want 1 of 2 VMs down at skm2", resp, err)
	}
	if err := l.SetVMDown(NodeSKM2, []netip.Addr{two}, false); err != nil {
		t.Fatal(err)
	}
	if len(ref.refused) != 0 {
		t.Errorf("still refused: %v", ref.refused)
	}
	if body, err := get(addrs[two]); err != nil || body != "skm2\n" {
		t.Errorf("GET VM back up = %q, %v", body, err)
	}

	// A failing kernel leaves the state as it was.
	ref.fail = errors.New("netlink: operation not permitted")
	err = l.SetVMDown(NodeSKM2, []netip.Addr{one}, true)
	if want := "responder of skm2: down: netlink: operation not permitted"; err == nil || err.Error() != want {
		t.Errorf("SetVMDown with failing kernel: %v, want %q", err, want)
	}
	if body, err := get(addrs[one]); err != nil || body != "skm2\n" {
		t.Errorf("GET after failed down = %q, %v; want an answer", body, err)
	}
	ref.fail = nil

	// Delay.
	const delay = 200 * time.Millisecond
	if err := l.SetVMDelay(NodeSKM2, []netip.Addr{one}, delay); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if body, err := get(addrs[one]); err != nil || body != "skm2\n" || time.Since(start) < delay {
		t.Errorf("GET slow VM = %q, %v in %s; want skm2 after >= %s", body, err, time.Since(start), delay)
	}
	start = time.Now()
	if _, err := get(addrs[two]); err != nil || time.Since(start) >= delay {
		t.Errorf("other VM slowed down: %v after %s", err, time.Since(start))
	}
	if err := l.SetVMDelay(NodeSKM2, []netip.Addr{one}, 0); err != nil {
		t.Fatal(err)
	}
	if resp, _ := l.control(context.Background(), NodeSKM2, controlRequest{Op: "status"}); resp.Delayed != 0 {
		t.Errorf("delays left: %d", resp.Delayed)
	}
}

func TestResponderControlErrors(t *testing.T) {
	l, _ := startTestResponder(t, nil)
	many := []netip.Addr{}
	for i := range 7 {
		many = append(many, netip.AddrFrom4([4]byte{10, 9, 0, byte(i)}))
	}
	for _, tc := range []struct {
		name string
		req  controlRequest
		want string
	}{
		{"unknown op", controlRequest{Op: "reboot"}, `responder of skm2: unknown op "reboot" (want ping, status, down, up, delay or http-status)`},
		{"no addresses", controlRequest{Op: "down"}, "responder of skm2: down: no addresses"},
		{"not a VM", controlRequest{Op: "up", Addrs: []netip.Addr{netip.MustParseAddr("10.9.9.9")}}, "responder of skm2: up: 10.9.9.9 not a VM of skm2"},
		{"many not VMs", controlRequest{Op: "down", Addrs: many}, "responder of skm2: down: 10.9.0.0, 10.9.0.1, 10.9.0.2, 10.9.0.3, 10.9.0.4 and 2 more not a VM of skm2"},
		{"bad delay", controlRequest{Op: "delay", Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, Delay: "soon"}, `responder of skm2: delay "soon": want a duration >= 0 such as 1.5s`},
		{"negative delay", controlRequest{Op: "delay", Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, Delay: "-1s"}, `responder of skm2: delay "-1s": want a duration >= 0 such as 1.5s`},
		{"status without addresses", controlRequest{Op: "http-status", Code: 503}, "responder of skm2: http-status: no addresses"},
		{"status 1xx", controlRequest{Op: "http-status", Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, Code: 101}, "responder of skm2: http-status 101: want 200 to 599, or 0 to answer normally"},
		{"status 600", controlRequest{Op: "http-status", Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, Code: 600}, "responder of skm2: http-status 600: want 200 to 599, or 0 to answer normally"},
		{"status not a VM", controlRequest{Op: "http-status", Addrs: []netip.Addr{netip.MustParseAddr("10.9.9.9")}, Code: 503}, "responder of skm2: http-status: 10.9.9.9 not a VM of skm2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := l.control(context.Background(), NodeSKM2, tc.req)
			if err == nil || err.Error() != tc.want {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
	// Garbage on the socket gets an error answer, and the connection stays usable.
	c, err := net.Dial("unix", l.controlSocket(NodeSKM2))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "not json\n{\"op\":\"ping\"}\n")
	buf := make([]byte, 4096)
	var got []byte
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for countLines(got) < 2 {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("read: %v (got %q)", err, got)
		}
		got = append(got, buf[:n]...)
	}
	want := `{"ok":false,"error":"parse request: invalid character 'o' in literal null (expecting 'u')","site":"skm2","vms":2,"down":0,"delayed":0}` + "\n" +
		`{"ok":true,"site":"skm2","vms":2,"down":0,"delayed":0}` + "\n"
	if string(got) != want {
		t.Errorf("answers\n%s\nwant\n%s", got, want)
	}
}

func countLines(b []byte) int {
	n := 0
	for _, c := range b {
		if c == '\n' {
			n++
		}
	}
	return n
}

// TestResponderHTTPS: every VM answers HTTPS on any path with a
// certificate for its own address from the lab CA; down and slow VMs are
// down and slow there too.
func TestResponderHTTPS(t *testing.T) {
	ref := &fakeRefuser{refused: map[netip.Addr]bool{}}
	tr := startTestResponders(t, ref)
	one, two := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	roots := tr.ca.Pool()
	for _, a := range []netip.Addr{one, two} {
		for _, path := range []string{"/", "/healthz", "/status?x=1"} {
			body, code, err := getURL(roots, "https://"+tr.https[a]+path)
			if err != nil || code != 200 || body != "skm2\n" {
				t.Errorf("GET https %s%s = %d %q, %v; want 200 skm2", a, path, code, body, err)
			}
		}
		// The certificate is the VM's own: IP SAN its address.
		c, err := tls.Dial("tcp", tr.https[a], &tls.Config{RootCAs: roots})
		if err != nil {
			t.Fatalf("TLS to %s: %v", a, err)
		}
		leaf := c.ConnectionState().PeerCertificates[0]
		c.Close()
		if len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(a.AsSlice()) {
			t.Errorf("certificate of %s names %v", a, leaf.IPAddresses)
		}
	}
	if _, _, err := getURL(nil, "https://"+tr.https[one]+"/"); err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Errorf("GET https without the lab CA: %v, want an unknown authority", err)
	}

	if err := tr.l.SetVMDown(NodeSKM2, []netip.Addr{two}, true); err != nil {
		t.Fatal(err)
	}
	if body, _, err := getURL(roots, "https://"+tr.https[two]+"/"); err == nil {
		t.Errorf("GET https down VM = %q, want an error", body)
	}
	if _, err := get(tr.http[two]); err == nil {
		t.Error("GET http down VM succeeded")
	}
	if err := tr.l.SetVMDown(NodeSKM2, []netip.Addr{two}, false); err != nil {
		t.Fatal(err)
	}

	const delay = 300 * time.Millisecond
	if err := tr.l.SetVMDelay(NodeSKM2, []netip.Addr{two}, delay); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if body, _, err := getURL(roots, "https://"+tr.https[two]+"/healthz"); err != nil || body != "skm2\n" || time.Since(start) < delay {
		t.Errorf("GET https slow VM = %q, %v in %s; want skm2 after >= %s", body, err, time.Since(start), delay)
	}
}

// TestResponderStatus: SetVMStatus makes VMs answer with a status on
// every port until set back, and the metrics count every answer by class
// under both names, all classes present from the start.
func TestResponderStatus(t *testing.T) {
	tr := startTestResponders(t, nil)
	one, two := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	roots := tr.ca.Pool()

	m := scrape(t, tr.metrics)
	for _, class := range []string{"1xx", "2xx", "3xx", "4xx", "5xx", "other"} {
		for _, series := range []string{
			`haproxy_backend_http_responses_total{backend="skm2",code="` + class + `"} 0`,
			`cutover_lab_responses_total{code="` + class + `",site="skm2"} 0`,
		} {
			if !strings.Contains(m, "\n"+series+"\n") {
				t.Errorf("metrics at start lack %s:\n%s", series, m)
			}
		}
	}

	if err := tr.l.SetVMStatus(NodeSKM2, []netip.Addr{two}, 503); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"http://" + tr.http[two] + "/healthz", "https://" + tr.https[two] + "/"} {
		if body, code, err := getURL(roots, u); err != nil || code != 503 || body != "skm2\n" {
			t.Errorf("GET %s = %d %q, %v; want 503 skm2", u, code, body, err)
		}
	}
	if _, code, err := getURL(roots, "http://"+tr.http[one]+"/"); err != nil || code != 200 {
		t.Errorf("GET healthy VM = %d, %v; want 200", code, err)
	}
	resp, err := tr.l.control(context.Background(), NodeSKM2, controlRequest{Op: "status"})
	if err != nil || resp.Failing != 1 {
		t.Errorf("status %+v, %v; want 1 VM failing", resp, err)
	}
	if err := tr.l.SetVMStatus(NodeSKM2, []netip.Addr{two}, 0); err != nil {
		t.Fatal(err)
	}
	if _, code, err := getURL(roots, "https://"+tr.https[two]+"/"); err != nil || code != 200 {
		t.Errorf("GET VM set back = %d, %v; want 200", code, err)
	}

	m = scrape(t, tr.metrics)
	for _, series := range []string{
		`haproxy_backend_http_responses_total{backend="skm2",code="2xx"} 2`,
		`haproxy_backend_http_responses_total{backend="skm2",code="5xx"} 2`,
		`haproxy_backend_http_responses_total{backend="skm2",code="4xx"} 0`,
		`cutover_lab_responses_total{code="2xx",site="skm2"} 2`,
		`cutover_lab_responses_total{code="5xx",site="skm2"} 2`,
	} {
		if !strings.Contains(m, "\n"+series+"\n") {
			t.Errorf("metrics lack %s:\n%s", series, m)
		}
	}
	if _, code, err := getURL(nil, "http://"+tr.metrics+"/other"); err != nil || code != 404 {
		t.Errorf("GET metrics port /other = %d, %v; want 404", code, err)
	}
}

func scrape(t *testing.T, hostport string) string {
	t.Helper()
	body, code, err := getURL(nil, "http://"+hostport+"/metrics")
	if err != nil || code != 200 {
		t.Fatalf("GET /metrics = %d, %v", code, err)
	}
	return body
}

func TestSetVMStatusErrors(t *testing.T) {
	l := unitLab(t.TempDir())
	a := []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	for _, tc := range []struct {
		site  string
		addrs []netip.Addr
		code  int
		want  string
	}{
		{NodeSKM2, a, 99, "set VM status: 99: want 200 to 599, or 0 to answer normally"},
		{NodeSKM2, a, 600, "set VM status: 600: want 200 to 599, or 0 to answer normally"},
		{NodeSKM2, nil, 503, "set VM status: no addresses"},
		{"mars", a, 503, `site "mars": no such site (want one of [skm1 skm2])`},
	} {
		if err := l.SetVMStatus(tc.site, tc.addrs, tc.code); err == nil || err.Error() != tc.want {
			t.Errorf("SetVMStatus(%s, %v, %d) = %v, want %q", tc.site, tc.addrs, tc.code, err, tc.want)
		}
	}
}

func TestStatusClass(t *testing.T) {
	for code, want := range map[int]string{0: "other", 99: "other", 100: "1xx", 200: "2xx", 204: "2xx", 301: "3xx",
		404: "4xx", 499: "4xx", 500: "5xx", 503: "5xx", 599: "5xx", 600: "other"} {
		if got := statusClass(code); got != want {
			t.Errorf("statusClass(%d) = %s, want %s", code, got, want)
		}
	}
}

// TestResponderMainFlags checks the flag errors that stop the responder
// before it listens anywhere.
func TestResponderMainFlags(t *testing.T) {
	log := zerolog.New(zerolog.NewTestWriter(t))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--site", "skm1"}, "lab responder: --site, --addrs and --control are required"},
		{[]string{"--site", "skm1", "--addrs", "x", "--control", "y", "--tls-listen", ":443"}, "lab responder: --tls-listen needs --ca"},
		{[]string{"--listen", ""}, `lab responder: invalid value "" for flag -listen: empty address`},
		{[]string{"--traffic", "urls", "--site", "skm1", "--listen", ":80"}, "lab responder: --traffic is the client mode: --listen, --site do not apply"},
		{[]string{"--traffic", "urls"}, "lab responder --traffic: --metrics is required"},
		{[]string{"--site", "skm1", "extra"}, `lab responder: unexpected arguments ["extra"]`},
	} {
		err := ResponderMain(context.Background(), tc.args, log)
		if err == nil || err.Error() != tc.want {
			t.Errorf("ResponderMain(%q) = %v, want %q", tc.args, err, tc.want)
		}
	}
}

// TestAnswerListenConfig: the VMs' listening sockets defer accept until a
// request arrives only when the kernel refuses the down VMs, and their
// connections have no keep-alive.
func TestAnswerListenConfig(t *testing.T) {
	for _, refusing := range []bool{false, true} {
		lc := answerListenConfig(refusing)
		ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		rc, err := ln.(*net.TCPListener).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var deferSecs int
		var serr error
		rc.Control(func(fd uintptr) {
			deferSecs, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT)
		})
		if serr != nil {
			t.Fatal(serr)
		}
		if (deferSecs > 0) != refusing {
			t.Errorf("refusing %v: TCP_DEFER_ACCEPT %d", refusing, deferSecs)
		}
		if os.Geteuid() == 0 {
			var transparent int
			rc.Control(func(fd uintptr) {
				transparent, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_TRANSPARENT)
			})
			if serr != nil || transparent != 1 {
				t.Errorf("refusing %v: IP_TRANSPARENT %d, %v; want 1 as root", refusing, transparent, serr)
			}
		}
		if lc.KeepAlive >= 0 {
			t.Errorf("refusing %v: keep-alive %v, want off", refusing, lc.KeepAlive)
		}
	}
}

// TestLimitProcs: a responder runs on half the processors, at least one,
// unless GOMAXPROCS says otherwise.
func TestLimitProcs(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(before) })
	for _, tc := range []struct {
		env        string // "" unset
		procs, out int
	}{
		{"", 1, 1},
		{"", 2, 1},
		{"", 8, 4},
		{"3", 8, 8},
	} {
		t.Setenv("GOMAXPROCS", tc.env)
		if tc.env == "" {
			os.Unsetenv("GOMAXPROCS")
		}
		runtime.GOMAXPROCS(tc.procs)
		limitProcs()
		if got := runtime.GOMAXPROCS(0); got != tc.out {
			t.Errorf("GOMAXPROCS=%q on %d: %d, want %d", tc.env, tc.procs, got, tc.out)
		}
	}
}
