package health

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cutover/cutover/internal/netnsrun"
)

// ICMPMode chooses the kind of socket ICMP probes use.
type ICMPMode string

// ICMP modes.
const (
	// ICMPAuto tries an unprivileged ping socket (allowed by the sysctl
	// net.ipv4.ping_group_range) and falls back to a raw socket (root or
	// CAP_NET_RAW) when that is not permitted. A fresh network namespace
	// starts with ping sockets disabled ("1 0"), so as root there the raw
	// socket is what works.
	ICMPAuto ICMPMode = "auto"
	// ICMPUnprivileged uses ping sockets only ("udp4"/"udp6").
	ICMPUnprivileged ICMPMode = "unprivileged"
	// ICMPRaw uses raw sockets only ("ip4:icmp"/"ip6:ipv6-icmp").
	ICMPRaw ICMPMode = "raw"
)

// Options configure the network prober. The zero value probes from the
// current network namespace with DefaultTimeout and verifies certificates.
type Options struct {
	// Timeout bounds each probe (0: DefaultTimeout); a context deadline
	// that comes earlier wins.
	Timeout time.Duration
	// InsecureSkipVerify makes https probes accept any certificate: they
	// then check that the service answers with a good status, not who it
	// is. Off by default.
	InsecureSkipVerify bool
	// Netns, when set, is the network namespace the probes' sockets are
	// created in: a name under /run/netns (as `ip netns` uses) or a path
	// such as /proc/1234/ns/net. Each socket is created on an OS thread
	// locked to a goroutine and switched into the namespace, which is
	// switched back afterwards; the socket stays in the namespace.
	Netns string
	// Dial, when set, makes the connections of tcp, http and https probes
	// instead of the built-in dialer (Netns then only applies to icmp).
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// ICMP is the socket kind for icmp probes ("": ICMPAuto).
	ICMP ICMPMode
	// Mark, when not zero, is the firewall mark (SO_MARK) of every probe's
	// socket, so that the probes take the routing table an ip rule gives
	// that mark: the readiness check probes a site's VMs through the
	// site's steering table before any route moves. It needs
	// CAP_NET_ADMIN, and icmp probes then use raw sockets.
	Mark uint32
	// UserAgent of http and https probes ("": "cutover-health/1").
	UserAgent string
}

// netProber probes over the network.
type netProber struct {
	o Options
	// ns makes the sockets of tcp, http and https probes in Options.Netns
	// (nil: in the process's own namespace).
	ns *netnsSockets
	// tls is the TLS configuration of https probes, cloned per probe with
	// the server's address as its name.
	tls *tls.Config
	seq atomic.Uint32
	// useRaw[v6] is set once ICMPAuto found ping sockets not permitted.
	useRaw [2]atomic.Bool
}

// NewProber returns a Prober that probes over the network. It fails when
// the options are inconsistent or the network namespace cannot be opened.
//
// Every tcp, http and https probe makes a fresh connection, bounded by the
// probe's timeout, and closes it with a reset (SO_LINGER 0) once it has
// its answer, so that probing thousands of VMs a second leaves no
// TIME_WAIT behind on either side: the prober needs no sysctl (no wider
// ip_local_port_range, no tcp_tw_reuse), only a descriptor per probe in
// flight. An http or https probe sends one HTTP/1.1 GET with
// "Connection: close" and passes on a 2xx or 3xx answer (redirects are
// not followed); it reads up to 64 KiB of the body before the reset.
func NewProber(o Options) (Prober, error) {
	if o.Timeout < 0 {
		return nil, fmt.Errorf("new prober: negative timeout %v", o.Timeout)
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	switch o.ICMP {
	case "":
		o.ICMP = ICMPAuto
	case ICMPAuto, ICMPUnprivileged, ICMPRaw:
	default:
		return nil, fmt.Errorf("new prober: unknown icmp mode %q (want auto, unprivileged or raw)", o.ICMP)
	}
	if o.UserAgent == "" {
		o.UserAgent = "cutover-health/1"
	}
	if strings.ContainsAny(o.UserAgent, "\r\n") {
		return nil, fmt.Errorf("new prober: user agent %q spans lines", o.UserAgent)
	}
	p := &netProber{o: o, tls: &tls.Config{InsecureSkipVerify: o.InsecureSkipVerify}}
	if o.Netns != "" {
		ns, err := openNetnsSockets(o.Netns)
		if err != nil {
			return nil, fmt.Errorf("new prober: %w", err)
		}
		p.ns = ns
		runtime.AddCleanup(p, (*netnsSockets).close, ns)
	}
	return p, nil
}

// Probe runs t's probe. A probe that cannot run (bad target) fails with the
// reason.
func (p *netProber) Probe(ctx context.Context, t Target) Result {
	if err := t.Probe.Validate(); err != nil {
		return Result{Err: err.Error()}
	}
	if !t.Addr.IsValid() {
		return Result{Err: t.Probe.String() + ": no address"}
	}
	ctx, cancel := p.bound(ctx)
	defer cancel()
	addr := t.Addr.Unmap()
	start := time.Now()
	var err error
	switch t.Probe.Kind {
	case KindTCP:
		err = p.probeTCP(ctx, netip.AddrPortFrom(addr, t.Probe.port()))
	case KindHTTP, KindHTTPS:
		err = p.probeHTTP(ctx, t.Probe, netip.AddrPortFrom(addr, t.Probe.port()))
	case KindICMP:
		err = p.probeICMP(ctx, addr)
	}
	rtt := time.Since(start)
	if err != nil {
		return Result{Err: t.Probe.String() + ": " + errText(err, rtt), RTT: rtt}
	}
	return Result{OK: true, RTT: rtt}
}

// bound returns ctx bounded by the prober's timeout; a deadline of ctx
// that comes first is kept as it is.
func (p *netProber) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= p.o.Timeout {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, p.o.Timeout)
}

// probeTCP connects, and resets the connection once it is made.
func (p *netProber) probeTCP(ctx context.Context, ap netip.AddrPort) error {
	c, err := p.dial(ctx, ap)
	if err != nil {
		return err
	}
	return abort(c)
}

// abort closes a probe's connection with a reset (SO_LINGER 0): the probe
// has its answer, and neither side keeps the connection in TIME_WAIT.
func abort(c net.Conn) error {
	if l, ok := c.(interface{ SetLinger(sec int) error }); ok {
		_ = l.SetLinger(0)
	}
	return c.Close()
}

// Limits of what an http probe reads.
const (
	maxAnswerHeader = 1 << 20  // the status line and headers
	maxAnswerBody   = 64 << 10 // of the body, before the reset
	max1xxAnswers   = 5        // informational answers before the final one
)

// statusError is an answer with a status other than 2xx or 3xx.
type statusError struct{ status string }

func (e statusError) Error() string { return "status " + e.status }

// Errors of an answer that is not one.
var (
	errClosedEarly     = errors.New("connection closed before an answer")
	errClosedMidAnswer = errors.New("connection closed mid-answer")
	errHeaderTooLong   = fmt.Errorf("answer header longer than %d KiB", maxAnswerHeader>>10)
	errTooMany1xx      = fmt.Errorf("more than %d informational (1xx) answers", max1xxAnswers)
)

// probeHTTP sends one GET on a fresh connection (through TLS for https)
// and checks the answer's status. It is the request net/http's client
// sends, without its connection pool: the probe keeps no connection, and
// thousands of probes a second cost a few syscalls each.
func (p *netProber) probeHTTP(ctx context.Context, pr Probe, ap netip.AddrPort) error {
	target, err := requestTarget(pr, ap)
	if err != nil {
		return err
	}
	c, err := p.dial(ctx, ap)
	if err != nil {
		return err
	}
	defer abort(c)
	rw := io.ReadWriter(c)
	if pr.Kind == KindHTTPS {
		// The request follows the handshake's last flight at once, not
		// after its ACK (Nagle).
		if nd, ok := c.(interface{ SetNoDelay(bool) error }); ok {
			_ = nd.SetNoDelay(true)
		}
		cfg := p.tls.Clone()
		cfg.ServerName = ap.Addr().String()
		tc := tls.Client(c, cfg)
		// c's deadline is ctx's: no context for the handshake to watch.
		if err := tc.Handshake(); err != nil {
			return ctxErr(ctx, err)
		}
		rw = tc
	}
	return ctxErr(ctx, p.exchange(rw, target, ap))
}

// ctxErr is ctx's error when err is the connection's deadline and ctx
// ended (its deadline, or a cancel that moved the connection's), else err.
func ctxErr(ctx context.Context, err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// requestTarget is the request line's target for pr's path, escaped as
// net/http escapes it.
func requestTarget(pr Probe, ap netip.AddrPort) (string, error) {
	u, err := url.Parse(pr.Kind + "://" + ap.String() + pr.path())
	if err != nil {
		return "", err
	}
	return u.RequestURI(), nil
}

// exchange sends the GET and reads the answer's status line and headers,
// then up to maxAnswerBody of its body, so that the server does not see
// the reset mid-answer.
func (p *netProber) exchange(rw io.ReadWriter, target string, ap netip.AddrPort) error {
	req := "GET " + target + " HTTP/1.1\r\nHost: " + ap.String() + "\r\nUser-Agent: " + p.o.UserAgent +
		"\r\nConnection: close\r\n\r\n"
	if _, err := io.WriteString(rw, req); err != nil {
		return err
	}
	lr := &io.LimitedReader{R: rw, N: maxAnswerHeader}
	br := answerReaders.Get().(*bufio.Reader)
	br.Reset(lr)
	defer func() {
		br.Reset(nil)
		answerReaders.Put(br)
	}()
	resp, err := readAnswer(br, lr)
	if err != nil {
		return err
	}
	lr.N = maxAnswerBody + int64(br.Buffered())
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswerBody)) // its errors do not matter
	if resp.StatusCode < 200 || resp.StatusCode > 399 {
		return statusError{resp.Status}
	}
	return nil
}

// answerReaders are the buffers answers are read through.
var answerReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}

// readAnswer reads the final answer's status line and headers, skipping up
// to max1xxAnswers informational ones (101 is final, as net/http has it).
// lr limits the header.
func readAnswer(br *bufio.Reader, lr *io.LimitedReader) (*http.Response, error) {
	for range max1xxAnswers + 1 {
		switch _, err := br.Peek(1); {
		case errors.Is(err, io.EOF) && lr.N <= 0:
			return nil, errHeaderTooLong
		case errors.Is(err, io.EOF):
			return nil, errClosedEarly
		case err != nil:
			return nil, err
		}
		resp, err := http.ReadResponse(br, nil)
		switch {
		case err != nil && lr.N <= 0:
			return nil, errHeaderTooLong
		case errors.Is(err, io.ErrUnexpectedEOF):
			return nil, errClosedMidAnswer
		case err != nil:
			return nil, err
		}
		if resp.StatusCode < 100 || resp.StatusCode > 199 || resp.StatusCode == http.StatusSwitchingProtocols {
			return resp, nil
		}
		lr.N = maxAnswerHeader + int64(br.Buffered())
	}
	return nil, errTooMany1xx
}

// dial connects to ap from the prober's namespace, with the prober's
// mark: a fresh non-blocking socket, connected through the runtime's
// poller (or Options.Dial). The connection's deadline is ctx's, and ctx
// ending early ends its reads and writes at once.
func (p *netProber) dial(ctx context.Context, ap netip.AddrPort) (net.Conn, error) {
	if p.o.Dial != nil {
		c, err := p.o.Dial(ctx, "tcp", ap.String())
		if err != nil {
			return nil, err
		}
		stop, err := follow(ctx, c)
		if err != nil {
			c.Close()
			return nil, err
		}
		return &boundConn{Conn: c, stop: stop}, nil
	}
	fd, err := p.socket(ap.Addr().Is6())
	if err != nil {
		return nil, dialError(ap, err)
	}
	// A non-blocking descriptor: os.NewFile puts it in the runtime's poller.
	f := os.NewFile(uintptr(fd), "tcp "+ap.String())
	stop, err := follow(ctx, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	c := &probeConn{File: f, remote: ap, stop: stop}
	if err := c.connect(ctx, p.markControl); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// socket makes a non-blocking TCP socket in the prober's namespace.
func (p *netProber) socket(v6 bool) (int, error) {
	family := unix.AF_INET
	if v6 {
		family = unix.AF_INET6
	}
	if p.ns != nil {
		return p.ns.socket(family)
	}
	return tcpSocket(family)
}

// tcpSocket makes a non-blocking TCP socket of family.
func tcpSocket(family int) (int, error) {
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	return fd, nil
}

func dialError(ap netip.AddrPort, err error) error {
	return &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(ap), Err: err}
}

// deadliner is what follow binds to a context.
type deadliner interface{ SetDeadline(time.Time) error }

// follow gives c ctx's deadline, and moves it to the past when ctx ends
// early; stop undoes the latter.
func follow(ctx context.Context, c deadliner) (stop func() bool, err error) {
	if dl, ok := ctx.Deadline(); ok {
		if err := c.SetDeadline(dl); err != nil {
			return nil, err
		}
	}
	return context.AfterFunc(ctx, func() { _ = c.SetDeadline(aLongTimeAgo) }), nil
}

// aLongTimeAgo is a deadline in the past: it ends a wait at once.
var aLongTimeAgo = time.Unix(1, 0)

// boundConn is a connection of Options.Dial that follows a probe's
// context.
type boundConn struct {
	net.Conn
	stop func() bool
}

// Close implements net.Conn.
func (c *boundConn) Close() error {
	c.stop()
	return c.Conn.Close()
}

// SetLinger sets SO_LINGER when the connection is TCP.
func (c *boundConn) SetLinger(sec int) error {
	if l, ok := c.Conn.(interface{ SetLinger(int) error }); ok {
		return l.SetLinger(sec)
	}
	return nil
}

// SetNoDelay sets TCP_NODELAY when the connection is TCP.
func (c *boundConn) SetNoDelay(noDelay bool) error {
	if nd, ok := c.Conn.(interface{ SetNoDelay(bool) error }); ok {
		return nd.SetNoDelay(noDelay)
	}
	return nil
}

// probeConn is a probe's TCP connection: a socket in the runtime's
// poller, read and written as an *os.File. It has no keep-alive, and
// Nagle's algorithm unless SetNoDelay turns it off: a plain http probe
// writes one request.
type probeConn struct {
	*os.File
	remote netip.AddrPort
	stop   func() bool // of follow
}

// Close implements net.Conn.
func (c *probeConn) Close() error {
	c.stop()
	return c.File.Close()
}

// LocalAddr implements net.Conn.
func (c *probeConn) LocalAddr() net.Addr {
	var sa unix.Sockaddr
	c.control(func(fd int) { sa, _ = unix.Getsockname(fd) })
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: sa.Addr[:], Port: sa.Port}
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: sa.Addr[:], Port: sa.Port}
	}
	return &net.TCPAddr{}
}

// RemoteAddr implements net.Conn.
func (c *probeConn) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(c.remote) }

// SetLinger sets SO_LINGER, as net.TCPConn's.
func (c *probeConn) SetLinger(sec int) error {
	var err error
	c.control(func(fd int) {
		err = unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: int32(sec)})
	})
	return err
}

// SetNoDelay sets TCP_NODELAY, as net.TCPConn's.
func (c *probeConn) SetNoDelay(noDelay bool) error {
	v := 0
	if noDelay {
		v = 1
	}
	var err error
	c.control(func(fd int) { err = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, v) })
	return err
}

// control runs fn on the socket's descriptor, unless it is closed.
func (c *probeConn) control(fn func(fd int)) {
	if rc, err := c.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { fn(int(fd)) })
	}
}

// connect sets the socket's options with control, then connects it to
// c.remote, waiting in the runtime's poller until the connection is made
// or refused, or the deadline passes.
func (c *probeConn) connect(ctx context.Context, control func(network, address string, rc syscall.RawConn) error) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	if err := control("tcp", c.remote.String(), rc); err != nil {
		return dialError(c.remote, err)
	}
	sa := sockaddr(c.remote)
	started := false
	var cerr error
	werr := rc.Write(func(fd uintptr) bool {
		if !started {
			started = true
			cerr = unix.Connect(int(fd), sa)
		} else {
			cerr = connectResult(int(fd))
		}
		switch cerr {
		case unix.EINPROGRESS, unix.EALREADY, unix.EINTR:
			return false // wait until the socket is writable
		case unix.EISCONN:
			cerr = nil
		}
		return true
	})
	switch {
	case werr != nil && ctx.Err() != nil:
		return dialError(c.remote, ctx.Err())
	case werr != nil:
		return dialError(c.remote, werr)
	case cerr != nil:
		return dialError(c.remote, os.NewSyscallError("connect", cerr))
	}
	return nil
}

// connectResult is the outcome of a connect that was in progress when the
// socket became writable: nil when connected, EINPROGRESS when the wake-up
// was spurious.
func connectResult(fd int) error {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return err
	}
	if v != 0 {
		return unix.Errno(v)
	}
	if _, err := unix.Getpeername(fd); err != nil {
		if err == unix.ENOTCONN {
			return unix.EINPROGRESS
		}
		return err
	}
	return nil
}

// sockaddr is ap as connect(2) takes it. An IPv6 zone is an interface's
// index, or its name in the process's namespace.
func sockaddr(ap netip.AddrPort) unix.Sockaddr {
	a := ap.Addr()
	if a.Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.As4()}
	}
	sa := &unix.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
	if z := a.Zone(); z != "" {
		if n, err := strconv.ParseUint(z, 10, 32); err == nil {
			sa.ZoneId = uint32(n)
		} else if ifi, err := net.InterfaceByName(z); err == nil {
			sa.ZoneId = uint32(ifi.Index)
		}
	}
	return sa
}

// netnsSockets makes sockets in a network namespace. The namespace and the
// process's own are opened once, so that a socket costs a setns(2) there
// and back on a thread of its own, and no open(2): probing thousands of
// VMs a second from a namespace costs about what it costs from the
// process's own. Only the socket is made there: it connects from any
// thread, so that a thousand probes in flight do not hold a thousand
// threads.
type netnsSockets struct {
	name         string
	target, home int // namespace descriptors
}

// openNetnsSockets opens the namespace name (under /run/netns, or a path)
// and the process's own.
func openNetnsSockets(name string) (*netnsSockets, error) {
	target, err := netnsrun.Open(name)
	if err != nil {
		return nil, err
	}
	home, err := openHome()
	if err != nil {
		target.Close()
		return nil, err
	}
	return &netnsSockets{name: name, target: int(target), home: home}, nil
}

// openHome opens the process's own namespace: that of every thread not
// locked to a goroutine (netnsrun, and socket below, return threads or end
// them), so that of a fresh goroutine's, whatever the caller's thread is.
func openHome() (int, error) {
	type opened struct {
		fd  int
		err error
	}
	res := make(chan opened, 1)
	go func() {
		fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		res <- opened{fd, err}
	}()
	o := <-res
	if o.err != nil {
		return -1, fmt.Errorf("open the process's netns: %w", o.err)
	}
	return o.fd, nil
}

// close closes the namespace descriptors (when the prober is collected).
func (s *netnsSockets) close() {
	unix.Close(s.target)
	unix.Close(s.home)
}

// socket makes a non-blocking TCP socket of family in the namespace, on a
// fresh goroutine locked to its thread. Should the thread fail to return
// home, the goroutine exits locked and the runtime ends the thread.
func (s *netnsSockets) socket(family int) (int, error) {
	type made struct {
		fd  int
		err error
	}
	res := make(chan made, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(s.target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			res <- made{-1, fmt.Errorf("enter netns %q: %w", s.name, err)}
			return
		}
		fd, err := tcpSocket(family)
		if serr := unix.Setns(s.home, unix.CLONE_NEWNET); serr != nil {
			if err == nil {
				unix.Close(fd)
			}
			res <- made{-1, fmt.Errorf("leave netns %q: %w", s.name, serr)}
			return // still locked: the thread ends with the goroutine
		}
		runtime.UnlockOSThread()
		res <- made{fd, err}
	}()
	m := <-res
	return m.fd, m.err
}

// markControl sets the prober's mark on a socket before it connects or
// binds (nothing without a mark).
func (p *netProber) markControl(_, _ string, rc syscall.RawConn) error {
	if p.o.Mark == 0 {
		return nil
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_MARK, int(p.o.Mark))
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("set the socket's mark %#x: %w", p.o.Mark, serr)
	}
	return nil
}

// errText turns an error from a probe into the short text reasons show:
// "connection refused", "timeout after 2s", "status 503 Service
// Unavailable".
func errText(err error, took time.Duration) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return "timeout after " + roundDur(took).String()
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		if errno == syscall.EINVAL {
			// What connect(2) and sendto(2) return for a blackhole route.
			return "invalid argument (blackhole route?)"
		}
		return errno.Error()
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err.Error()
	}
	return err.Error()
}

func roundDur(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}
