package health

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// rawServer is a loopback TCP server that answers each connection by
// hand: handle gets the connection and the request head it read.
type rawServer struct {
	port  uint16
	mu    sync.Mutex
	heads []string // the request heads, in the order read
}

// startRawServer serves handle on a loopback port until the test ends.
// handle owns the connection; returning closes it.
func startRawServer(t *testing.T, handle func(c net.Conn, head string)) *rawServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{port: portOf(t, l.Addr().String())}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				head, err := readHead(bufio.NewReader(c))
				if err != nil {
					return
				}
				s.mu.Lock()
				s.heads = append(s.heads, head)
				s.mu.Unlock()
				handle(c, head)
			}()
		}
	}()
	return s
}

// readHead reads a request's line and headers, through the blank line.
func readHead(br *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		line, err := br.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			return b.String(), err
		}
		if line == "\r\n" {
			return b.String(), nil
		}
	}
}

// answering is a handler that writes answer and closes.
func answering(answer string) func(net.Conn, string) {
	return func(c net.Conn, _ string) { io.WriteString(c, answer) }
}

// TestProbeHTTPAnswers runs an http probe against servers answering by
// hand: what passes, and the exact reason of what does not.
func TestProbeHTTPAnswers(t *testing.T) {
	longHeader := "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-Filler: "+strings.Repeat("x", 1000)+"\r\n", 1100) + "\r\n"
	for _, tc := range []struct {
		name   string
		handle func(net.Conn, string)
		want   string // after "http <port>: "; "" for OK
	}{
		{"200", answering("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"), ""},
		{"204 without a body", answering("HTTP/1.1 204 No Content\r\n\r\n"), ""},
		{"302 is an answer", answering("HTTP/1.1 302 Found\r\nLocation: http://192.0.2.1/\r\nContent-Length: 0\r\n\r\n"), ""},
		{"close-delimited body", answering("HTTP/1.0 200 OK\r\n\r\nall of it until the close\n"), ""},
		{"chunked body", answering("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nok\n\r\n0\r\n\r\n"), ""},
		{"100 then 200", answering("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), ""},
		{"503", answering("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"), "status 503 Service Unavailable"},
		{"status without a reason", answering("HTTP/1.1 500\r\nContent-Length: 0\r\n\r\n"), "status 500"},
		{"101 is final", answering("HTTP/1.1 101 Switching Protocols\r\n\r\n"), "status 101 Switching Protocols"},
		{"six 1xx", answering(strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", 6) + "HTTP/1.1 200 OK\r\n\r\n"),
			"more than 5 informational (1xx) answers"},
		{"garbage status line", answering("garbage\r\n\r\n"), `malformed HTTP response "garbage"`},
		{"garbage status code", answering("HTTP/1.1 2x0 OK\r\n\r\n"), `malformed HTTP status code "2x0"`},
		{"garbage version", answering("HTTP/9 200 OK\r\n\r\n"), `malformed HTTP version "HTTP/9"`},
		{"garbage header", answering("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n"), `malformed MIME header: missing colon: "no colon here"`},
		{"header too long", answering(longHeader), "answer header longer than 1024 KiB"},
		{"closed before an answer", func(net.Conn, string) {}, "connection closed before an answer"},
		{"closed mid-answer", answering("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n"), "connection closed mid-answer"},
		{"body cut short", answering("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok"), ""},
		{"reset before an answer", func(c net.Conn, _ string) { c.(*net.TCPConn).SetLinger(0) }, "connection reset by peer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startRawServer(t, tc.handle)
			p := newProber(t, Options{Timeout: 10 * time.Second})
			r := p.Probe(context.Background(), Target{Name: "vm", Addr: loopback, Probe: Probe{Kind: KindHTTP, Port: s.port}})
			want := ""
			if tc.want != "" {
				want = fmt.Sprintf("http %d: %s", s.port, tc.want)
			}
			if r.OK != (want == "") || r.Err != want {
				t.Errorf("%+v, want %q", r, want)
			}
		})
	}
}

// TestProbeHTTPRequest checks the request an http probe sends, byte for
// byte, and that a server keeping the connection open despite
// "Connection: close" does not hold the probe once the body is read.
func TestProbeHTTPRequest(t *testing.T) {
	s := startRawServer(t, func(c net.Conn, _ string) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
		io.Copy(io.Discard, c) // until the probe's reset
	})
	p := newProber(t, Options{Timeout: 10 * time.Second, UserAgent: "probe-test/2"})
	pr := Probe{Kind: KindHTTP, Port: s.port, Path: "/health check?full=1"}
	start := time.Now()
	if r := p.Probe(context.Background(), Target{Name: "vm", Addr: loopback, Probe: pr}); !r.OK {
		t.Fatalf("%+v, want OK", r)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("probe took %v: it waited for the server to close", took)
	}
	want := fmt.Sprintf("GET /health%%20check?full=1 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: probe-test/2\r\nConnection: close\r\n\r\n", s.port)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.heads) != 1 || s.heads[0] != want {
		t.Errorf("requests %q, want one %q", s.heads, want)
	}
}

// TestProbeHTTPTimeout: a server that reads the request and never
// answers fails the probe at its timeout; a round's context canceled
// meanwhile fails it at once, saying so.
func TestProbeHTTPTimeout(t *testing.T) {
	hang := make(chan struct{})
	s := startRawServer(t, func(net.Conn, string) { <-hang })
	defer close(hang) // before the server's cleanup waits for its handlers
	tg := Target{Name: "vm", Addr: loopback, Probe: Probe{Kind: KindHTTP, Port: s.port}}

	r := newProber(t, Options{Timeout: time.Second}).Probe(context.Background(), tg)
	if want := fmt.Sprintf("http %d: timeout after *", s.port); r.OK || !matchGlob(r.Err, want) || r.RTT < time.Second {
		t.Errorf("%+v, want %q after at least 1s", r, want)
	}

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// Once the probe waits for its answer.
		defer cancel()
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
			s.mu.Lock()
			n := len(s.heads)
			s.mu.Unlock()
			if n == 2 {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	r = newProber(t, Options{Timeout: 30 * time.Second}).Probe(ctx, tg)
	if want := fmt.Sprintf("http %d: canceled", s.port); r.OK || r.Err != want || r.RTT > 20*time.Second {
		t.Errorf("%+v, want %q at once", r, want)
	}
}

// TestProbeFreshConnections: every probe makes its own connection and
// ends it with a reset (no FIN, so no TIME_WAIT at either end), tcp probes
// as soon as they connect, http probes once they have the answer.
func TestProbeFreshConnections(t *testing.T) {
	ended := make(chan error, 20)
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
			go func() {
				defer c.Close()
				c.SetReadDeadline(time.Now().Add(30 * time.Second))
				_, err := c.Read(make([]byte, 1))
				ended <- err
			}()
		}
	}()
	web := startRawServer(t, func(c net.Conn, _ string) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		_, err := c.Read(make([]byte, 1))
		ended <- err
	})
	p := newProber(t, Options{Timeout: 10 * time.Second})
	const n = 5
	for i := range n {
		for _, pr := range []Probe{{Kind: KindTCP, Port: portOf(t, l.Addr().String())}, {Kind: KindHTTP, Port: web.port}} {
			if r := p.Probe(context.Background(), Target{Name: fmt.Sprint("vm-", i), Addr: loopback, Probe: pr}); !r.OK {
				t.Fatalf("%v: %+v", pr, r)
			}
		}
	}
	for range 2 * n {
		if err := <-ended; !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("the server's connection ended with %v, want a reset", err)
		}
	}
	web.mu.Lock()
	defer web.mu.Unlock()
	if len(web.heads) != n {
		t.Errorf("%d requests on the web server, want %d (one connection each)", len(web.heads), n)
	}
}

// TestProbeDial: Options.Dial makes the connections of tcp and http
// probes, each closed once probed.
func TestProbeDial(t *testing.T) {
	web := startRawServer(t, answering("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
	var mu sync.Mutex
	var dialed []string
	open := 0
	p := newProber(t, Options{Timeout: 10 * time.Second, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, address)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		defer mu.Unlock()
		dialed = append(dialed, network+" "+address)
		open++
		return &countedConn{Conn: c, closed: func() { mu.Lock(); open--; mu.Unlock() }}, nil
	}})
	for _, pr := range []Probe{{Kind: KindTCP, Port: web.port}, {Kind: KindHTTP, Port: web.port}} {
		if r := p.Probe(context.Background(), Target{Name: "vm", Addr: loopback, Probe: pr}); !r.OK {
			t.Errorf("%v: %+v", pr, r)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	addr := fmt.Sprintf("tcp 127.0.0.1:%d", web.port)
	if len(dialed) != 2 || dialed[0] != addr || dialed[1] != addr || open != 0 {
		t.Errorf("dialed %q, %d left open; want %q twice, none open", dialed, open, addr)
	}
}

// countedConn calls closed when closed.
type countedConn struct {
	net.Conn
	closed func()
}

func (c *countedConn) Close() error {
	c.closed()
	return c.Conn.Close()
}

// TestProbeHTTPSNoDelay: an https probe turns Nagle's algorithm off, so
// that its request follows the handshake at once instead of waiting for
// the server's (delayed) ACK of the handshake's last flight, 40 ms on
// Linux.
func TestProbeHTTPSNoDelay(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	var noDelay []bool
	var mu sync.Mutex
	p := newProber(t, Options{InsecureSkipVerify: true, Timeout: 10 * time.Second, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, address)
		if err != nil {
			return nil, err
		}
		return &noDelayConn{Conn: c, set: func(v bool) { mu.Lock(); noDelay = append(noDelay, v); mu.Unlock() }}, nil
	}})
	port := portOf(t, srv.Listener.Addr().String())
	for _, kind := range []string{KindHTTPS, KindHTTP} {
		if r := p.Probe(context.Background(), Target{Name: "vm", Addr: loopback, Probe: Probe{Kind: kind, Port: port}}); r.OK != (kind == KindHTTPS) {
			t.Errorf("%s: %+v", kind, r)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(noDelay) != 1 || !noDelay[0] {
		t.Errorf("SetNoDelay calls %v, want one with true (https only)", noDelay)
	}

	// The built-in connection sets the socket's option.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := newProber(t, Options{}).(*netProber).dial(context.Background(), netip.MustParseAddrPort(l.Addr().String()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pc := c.(*probeConn)
	for _, want := range []bool{true, false} {
		if err := pc.SetNoDelay(want); err != nil {
			t.Fatal(err)
		}
		var v int
		var gerr error
		pc.control(func(fd int) { v, gerr = unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY) })
		if gerr != nil || (v != 0) != want {
			t.Errorf("TCP_NODELAY %d, %v after SetNoDelay(%v)", v, gerr, want)
		}
	}
}

// noDelayConn records its SetNoDelay calls.
type noDelayConn struct {
	net.Conn
	set func(bool)
}

func (c *noDelayConn) SetNoDelay(v bool) error {
	c.set(v)
	return nil
}
