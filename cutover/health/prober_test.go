package health

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

var loopback = netip.MustParseAddr("127.0.0.1")

func newProber(t testing.TB, o Options) Prober {
	t.Helper()
	p, err := NewProber(o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// closedPort returns a loopback port nothing listens on (it was just freed).
func closedPort(t *testing.T) uint16 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	return port
}

func portOf(t testing.TB, addr string) uint16 {
	t.Helper()
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return ap.Port()
}

func TestNewProberErrors(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Timeout: -time.Second}, "new prober: negative timeout -1s"},
		{Options{ICMP: "ping"}, `new prober: unknown icmp mode "ping" (want auto, unprivileged or raw)`},
		{Options{Netns: "cutover-no-such-ns"}, `new prober: open netns "cutover-no-such-ns": no such file or directory`},
		{Options{Netns: "/nonexistent/ns/net"}, `new prober: open netns "/nonexistent/ns/net": no such file or directory`},
		{Options{UserAgent: "probe\r\nX-Injected: 1"}, `new prober: user agent "probe\r\nX-Injected: 1" spans lines`},
	} {
		if _, err := NewProber(tc.o); errString(err) != tc.want {
			t.Errorf("NewProber(%+v) = %v, want %s", tc.o, err, tc.want)
		}
	}
}

func TestProbeTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	p := newProber(t, Options{})
	up := Target{Name: "vm-up", Addr: loopback, Probe: Probe{Kind: KindTCP, Port: portOf(t, l.Addr().String())}}
	if r := p.Probe(context.Background(), up); !r.OK || r.Err != "" || r.RTT <= 0 {
		t.Errorf("open port: %+v", r)
	}
	down := closedPort(t)
	r := p.Probe(context.Background(), Target{Name: "vm-down", Addr: loopback, Probe: Probe{Kind: KindTCP, Port: down}})
	if want := fmt.Sprintf("tcp %d: connection refused", down); r.OK || r.Err != want {
		t.Errorf("closed port: %+v, want %q", r, want)
	}
	r = p.Probe(context.Background(), Target{Name: "bad", Addr: loopback, Probe: Probe{Kind: "udp", Port: 53}})
	if want := `probe: unknown kind "udp" (want icmp, tcp, http or https)`; r.OK || r.Err != want {
		t.Errorf("bad probe: %+v", r)
	}
	// v4-mapped v6 addresses are probed as v4.
	r = p.Probe(context.Background(), Target{Name: "mapped", Addr: netip.MustParseAddr("::ffff:127.0.0.1"), Probe: up.Probe})
	if !r.OK {
		t.Errorf("mapped address: %+v", r)
	}

	// IPv6 loopback, when the kernel has it.
	l6, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Logf("no IPv6 loopback (%v): skipping the ::1 probe", err)
		return
	}
	defer l6.Close()
	go func() {
		for {
			c, err := l6.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	r = p.Probe(context.Background(), Target{Name: "v6", Addr: netip.IPv6Loopback(), Probe: Probe{Kind: KindTCP, Port: portOf(t, l6.Addr().String())}})
	if !r.OK {
		t.Errorf("::1: %+v", r)
	}
}

func TestProbeHTTP(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("User-Agent") != "cutover-health/1" {
			t.Errorf("user agent %q", r.Header.Get("User-Agent"))
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/down", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://192.0.2.1/elsewhere", http.StatusFound) // not followed
	})
	hang := make(chan struct{})
	defer close(hang)
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	tls := httptest.NewUnstartedServer(mux)
	tls.Config.ErrorLog = log.New(io.Discard, "", 0) // the rejected handshake
	tls.StartTLS()
	defer tls.Close()
	port, tport := portOf(t, srv.Listener.Addr().String()), portOf(t, tls.Listener.Addr().String())

	// A generous timeout for answers (a loaded machine under -race is slow
	// to finish a TLS handshake); a short one only where the timeout is
	// the outcome.
	strict := newProber(t, Options{Timeout: 10 * time.Second})
	short := newProber(t, Options{Timeout: 300 * time.Millisecond})
	insecure := newProber(t, Options{InsecureSkipVerify: true})
	for _, tc := range []struct {
		name  string
		p     Prober
		probe Probe
		want  string // "" for OK; * matches anything
	}{
		{"ok", strict, Probe{Kind: KindHTTP, Port: port, Path: "/healthz"}, ""},
		{"503", strict, Probe{Kind: KindHTTP, Port: port, Path: "/down"},
			fmt.Sprintf("http %d /down: status 503 Service Unavailable", port)},
		{"404", strict, Probe{Kind: KindHTTP, Port: port},
			fmt.Sprintf("http %d: status 404 Not Found", port)},
		{"redirect counts as an answer", strict, Probe{Kind: KindHTTP, Port: port, Path: "/moved"}, ""},
		{"timeout", short, Probe{Kind: KindHTTP, Port: port, Path: "/hang"},
			fmt.Sprintf("http %d /hang: timeout after *", port)},
		{"refused", strict, Probe{Kind: KindHTTP, Port: closedPort(t)}, "http *: connection refused"},
		{"https verified fails on a self-signed cert", strict, Probe{Kind: KindHTTPS, Port: tport, Path: "/healthz"},
			fmt.Sprintf("https %d /healthz: tls: failed to verify certificate: x509: certificate signed by unknown authority", tport)},
		{"https insecure", insecure, Probe{Kind: KindHTTPS, Port: tport, Path: "/healthz"}, ""},
		{"https insecure 503", insecure, Probe{Kind: KindHTTPS, Port: tport, Path: "/down"},
			fmt.Sprintf("https %d /down: status 503 Service Unavailable", tport)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.p.Probe(context.Background(), Target{Name: "vm", Addr: loopback, Probe: tc.probe})
			switch {
			case tc.want == "":
				if !r.OK {
					t.Errorf("%+v, want OK", r)
				}
			case strings.Contains(tc.want, "*"):
				if r.OK || !matchGlob(r.Err, tc.want) {
					t.Errorf("%+v, want %q", r, tc.want)
				}
			default:
				if r.OK || r.Err != tc.want {
					t.Errorf("%+v, want %q", r, tc.want)
				}
			}
		})
	}
}

// matchGlob reports whether s matches pattern, in which each * stands for anything.
func matchGlob(s, pattern string) bool {
	parts := strings.Split(pattern, "*")
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, p := range parts[1:] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return parts[len(parts)-1] == "" || s == ""
}

func TestProbeICMPLoopback(t *testing.T) {
	p := newProber(t, Options{Timeout: time.Second})
	for _, a := range []netip.Addr{loopback, netip.IPv6Loopback()} {
		r := p.Probe(context.Background(), Target{Name: "lo", Addr: a, Probe: Probe{Kind: KindICMP}})
		if strings.Contains(r.Err, "not permitted") || strings.Contains(r.Err, "address family not supported") {
			t.Skipf("icmp to %v not possible here: %s", a, r.Err)
		}
		if !r.OK || r.RTT <= 0 {
			t.Errorf("icmp %v: %+v", a, r)
		}
	}
}

// TestRoundLoopback probes real listeners in a round: the refused ones are
// reported by name.
func TestRoundLoopback(t *testing.T) {
	ports := listeners(t, 4)
	dead := closedPort(t)
	var ts []Target
	for i := range 40 {
		port := ports[i%len(ports)]
		if i%10 == 3 {
			port = dead
		}
		ts = append(ts, Target{Name: fmt.Sprintf("vm-%d", i), Addr: loopback, Probe: Probe{Kind: KindTCP, Port: port}})
	}
	res := RunRound(context.Background(), newProber(t, Options{}), ts, 8)
	for i, tg := range ts {
		r := res[tg.Name]
		if i%10 == 3 {
			if r.Err != fmt.Sprintf("tcp %d: connection refused", dead) {
				t.Errorf("%s: %+v", tg.Name, r)
			}
		} else if !r.OK {
			t.Errorf("%s: %+v", tg.Name, r)
		}
	}
}

// listeners starts n loopback TCP listeners that accept and close, and
// returns their ports.
func listeners(tb testing.TB, n int) []uint16 {
	tb.Helper()
	var ports []uint16
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		ports = append(ports, portOf(tb, l.Addr().String()))
	}
	return ports
}

// BenchmarkRound2000 runs one round of 2,000 TCP probes against loopback
// listeners at the default concurrency.
func BenchmarkRound2000(b *testing.B) {
	ports := listeners(b, 16)
	ts := make([]Target, 2000)
	for i := range ts {
		ts[i] = Target{Name: fmt.Sprintf("vm-%04d", i), Addr: loopback, Probe: Probe{Kind: KindTCP, Port: ports[i%len(ports)]}}
	}
	p := newProber(b, Options{})
	b.ResetTimer()
	for b.Loop() {
		res := RunRound(context.Background(), p, ts, DefaultConcurrency)
		for _, tg := range ts {
			if r := res[tg.Name]; !r.OK {
				b.Fatalf("%s: %+v", tg.Name, r)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/round")
}
