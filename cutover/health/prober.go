package health

import (
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
	"sync/atomic"
	"syscall"
	"time"

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
	o      Options
	client *http.Client
	seq    atomic.Uint32
	// useRaw[v6] is set once ICMPAuto found ping sockets not permitted.
	useRaw [2]atomic.Bool
}

// NewProber returns a Prober that probes over the network. It fails when
// the options are inconsistent or the network namespace cannot be opened.
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
	if o.Netns != "" {
		if err := netnsrun.Check(o.Netns); err != nil {
			return nil, fmt.Errorf("new prober: %w", err)
		}
	}
	p := &netProber{o: o}
	tr := &http.Transport{
		// Never through a proxy from the environment: the probe is about
		// reaching the VM from here.
		Proxy:             nil,
		DialContext:       p.dial,
		DisableKeepAlives: true, // every probe makes a fresh connection
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: o.InsecureSkipVerify},
	}
	p.client = &http.Client{
		Transport: tr,
		// 3xx counts as an answer: do not follow redirects elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return p, nil
}

// dial connects from the prober's namespace.
func (p *netProber) dial(ctx context.Context, network, address string) (net.Conn, error) {
	if p.o.Dial != nil {
		return p.o.Dial(ctx, network, address)
	}
	d := net.Dialer{Control: p.markControl}
	var c net.Conn
	err := netnsrun.Run(p.o.Netns, func() error {
		var err error
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
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

// Probe runs t's probe. A probe that cannot run (bad target) fails with the
// reason.
func (p *netProber) Probe(ctx context.Context, t Target) Result {
	if err := t.Probe.Validate(); err != nil {
		return Result{Err: err.Error()}
	}
	if !t.Addr.IsValid() {
		return Result{Err: t.Probe.String() + ": no address"}
	}
	ctx, cancel := context.WithTimeout(ctx, p.o.Timeout)
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

func (p *netProber) probeTCP(ctx context.Context, ap netip.AddrPort) error {
	c, err := p.dial(ctx, "tcp", ap.String())
	if err != nil {
		return err
	}
	return c.Close()
}

// statusError is an answer with a status other than 2xx or 3xx.
type statusError struct{ status string }

func (e statusError) Error() string { return "status " + e.status }

func (p *netProber) probeHTTP(ctx context.Context, pr Probe, ap netip.AddrPort) error {
	u := pr.Kind + "://" + ap.String() + pr.path()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", p.o.UserAgent)
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	// Read a little so the server does not see a reset mid-answer.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 399 {
		return statusError{resp.Status}
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
