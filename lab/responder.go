package lab

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// ResponderEnv is set in the environment of the responders Up starts, so
// that a test binary recognises the call (see MaybeRunResponder).
const ResponderEnv = "CUTOVER_LAB_RESPONDER"

// MaybeRunResponder runs the responder and exits when this process was
// started by Up as a site responder; otherwise it returns at once. Test
// packages that bring a lab up call it first in TestMain, because Up starts
// the responders from os.Executable(), which is then the test binary:
//
//	func TestMain(m *testing.M) {
//		lab.MaybeRunResponder()
//		os.Exit(m.Run())
//	}
func MaybeRunResponder() {
	if os.Getenv(ResponderEnv) != "1" {
		return
	}
	args := os.Args[1:]
	if len(args) >= 2 && args[0] == "lab" && args[1] == "responder" {
		args = args[2:]
	}
	log := zerolog.New(os.Stderr).With().Timestamp().Logger()
	if err := ResponderMain(context.Background(), args, log); err != nil {
		log.Error().Err(err).Msg("responder failed")
		os.Exit(1)
	}
	os.Exit(0)
}

// ResponderMain parses the responder's flags and runs it until SIGTERM or
// SIGINT. It is `cutover lab responder`, run by Up inside a site's namespace.
// With --traffic it is the client instead (the hospitals in operation, in
// the client's namespace): see TrafficMain.
func ResponderMain(ctx context.Context, args []string, log zerolog.Logger) error {
	fs := flag.NewFlagSet("lab responder", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	site := fs.String("site", "", "site name: the body of every answer")
	addrs := fs.String("addrs", "", "file with the VM addresses, one prefix per line")
	control := fs.String("control", "", "unix socket for the control requests")
	var listen, tlsListen listFlag
	fs.Var(&listen, "listen", "TCP address to answer HTTP on (repeatable; default :80)")
	fs.Var(&tlsListen, "tls-listen", "TCP address to answer HTTPS on (repeatable; needs --ca)")
	caDir := fs.String("ca", "", "directory of the lab CA (ca.pem, ca-key.pem) that issues the HTTPS certificates")
	metrics := fs.String("metrics", "", "TCP address to serve /metrics on (Prometheus text format)")
	useNFT := fs.Bool("nft", true, "refuse connections to down VMs in the kernel (nftables table inet "+refuseTable+")")
	traffic := fs.String("traffic", "", "client mode: file with the URLs to request, one a line")
	rate := fs.Float64("rate", 10, "client mode: requests per second over all URLs")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("lab responder: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("lab responder: unexpected arguments %q", fs.Args())
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if *traffic != "" {
		var server []string
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "site", "addrs", "control", "listen", "tls-listen", "nft":
				server = append(server, "--"+f.Name)
			}
		})
		if len(server) > 0 {
			return fmt.Errorf("lab responder: --traffic is the client mode: %s do not apply", strings.Join(server, ", "))
		}
		return TrafficMain(ctx, TrafficFlags{URLFile: *traffic, Rate: *rate, Metrics: *metrics, CADir: *caDir}, log)
	}
	if *site == "" || *addrs == "" || *control == "" {
		return errors.New("lab responder: --site, --addrs and --control are required")
	}
	if len(tlsListen) > 0 && *caDir == "" {
		return errors.New("lab responder: --tls-listen needs --ca")
	}
	if len(listen) == 0 {
		listen = listFlag{":80"}
	}
	vms, err := readVMList(*addrs)
	if err != nil {
		return fmt.Errorf("lab responder: %w", err)
	}
	cfg := ResponderConfig{Site: *site, VMs: vms, Control: *control, Listen: listen, TLSListen: tlsListen, Metrics: *metrics}
	if *caDir != "" {
		if cfg.CA, err = LoadCA(*caDir); err != nil {
			return fmt.Errorf("lab responder: %w", err)
		}
	}
	if *useNFT {
		r, err := newNFTRefuser()
		if err != nil {
			return fmt.Errorf("lab responder: %w", err)
		}
		defer r.Close()
		cfg.Refuser = r
	}
	limitProcs()
	return RunResponder(ctx, cfg, log)
}

// limitProcs runs the responder's goroutines on half the CPUs the process
// may use, at least one, unless GOMAXPROCS is set. A responder shares the
// machine with the daemon under test and the edges and answers thousands
// of fresh connections a second, each a few syscalls that run the
// network stack's softirqs: with fewer threads, its scheduler hands
// goroutines and processors between threads less (on two cores, a probe
// round costs the responder about 40% less CPU).
func limitProcs() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(max(1, runtime.GOMAXPROCS(0)/2))
	}
}

// listFlag is a flag that may be given several times.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	if v == "" {
		return errors.New("empty address")
	}
	*l = append(*l, v)
	return nil
}

func readVMList(path string) ([]netip.Addr, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read VM list: %w", err)
	}
	var out []netip.Addr
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		p, err := netip.ParsePrefix(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, i+1, err)
		}
		out = append(out, p.Addr())
	}
	return out, nil
}

// Refuser makes the kernel refuse connections to down VMs (a TCP reset for
// TCP, ICMP host-unreachable for everything else), so that even a bare TCP
// connect or a ping fails as for a VM that is off.
type Refuser interface {
	// Refuse starts refusing add and stops refusing remove.
	Refuse(add, remove []netip.Addr) error
	Close() error
}

// ResponderConfig configures RunResponder.
type ResponderConfig struct {
	Site      string       // answered as the body: "<Site>\n"
	VMs       []netip.Addr // the addresses control requests may name
	Control   string       // unix socket path for control requests
	Listen    []string     // TCP addresses to answer HTTP on, e.g. ":80"
	TLSListen []string     // TCP addresses to answer HTTPS on, e.g. ":443"; needs CA
	// CA issues the HTTPS certificate of each VM address, chosen by the
	// address a connection was made to.
	CA *CA
	// Metrics is a TCP address to serve /metrics on ("": none): counters
	// of the answers given, by status class.
	Metrics string
	Refuser Refuser // nil: down VMs are only reset after accept
}

// responder answers HTTP(S) with its site's name and plays down, slow or
// failing VMs.
type responder struct {
	site    string
	vms     map[netip.Addr]bool
	refuse  Refuser
	ca      *CA
	metrics *answerMetrics
	log     zerolog.Logger

	mu    sync.Mutex // guards down, delay and codes, and orders Refuser calls
	down  map[netip.Addr]bool
	delay map[netip.Addr]time.Duration
	codes map[netip.Addr]int // HTTP status to answer instead of 200
}

func newResponder(cfg ResponderConfig, log zerolog.Logger) *responder {
	r := &responder{
		site:    cfg.Site,
		vms:     make(map[netip.Addr]bool, len(cfg.VMs)),
		refuse:  cfg.Refuser,
		ca:      cfg.CA,
		metrics: newAnswerMetrics(cfg.Site),
		log:     log,
		down:    map[netip.Addr]bool{},
		delay:   map[netip.Addr]time.Duration{},
		codes:   map[netip.Addr]int{},
	}
	for _, a := range cfg.VMs {
		r.vms[a.Unmap()] = true
	}
	return r
}

// responderListeners are what a responder serves on.
type responderListeners struct {
	http, https []net.Listener
	metrics     net.Listener // nil: no metrics
	control     net.Listener
}

func (ls responderListeners) close() {
	for _, ln := range append(append([]net.Listener{ls.metrics, ls.control}, ls.http...), ls.https...) {
		if ln != nil {
			ln.Close()
		}
	}
}

// RunResponder answers HTTP on cfg.Listen, HTTPS on cfg.TLSListen, metrics
// on cfg.Metrics and control requests on cfg.Control until ctx ends.
func RunResponder(ctx context.Context, cfg ResponderConfig, log zerolog.Logger) error {
	if len(cfg.TLSListen) > 0 && cfg.CA == nil {
		return errors.New("responder: HTTPS listeners need a CA")
	}
	r := newResponder(cfg, log)
	var ls responderListeners
	lc := answerListenConfig(cfg.Refuser != nil)
	listen := func(addr string) (net.Listener, error) {
		ln, err := lc.Listen(context.Background(), "tcp", addr)
		if err != nil {
			ls.close()
			return nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
		return ln, nil
	}
	for _, a := range cfg.Listen {
		ln, err := listen(a)
		if err != nil {
			return err
		}
		ls.http = append(ls.http, ln)
	}
	for _, a := range cfg.TLSListen {
		ln, err := listen(a)
		if err != nil {
			return err
		}
		ls.https = append(ls.https, ln)
	}
	if cfg.Metrics != "" {
		ln, err := listen(cfg.Metrics)
		if err != nil {
			return err
		}
		ls.metrics = ln
	}
	_ = os.Remove(cfg.Control)
	ctl, err := net.Listen("unix", cfg.Control)
	if err != nil {
		ls.close()
		return fmt.Errorf("listen on %s: %w", cfg.Control, err)
	}
	ls.control = ctl
	defer os.Remove(cfg.Control)
	return r.serve(ctx, ls)
}

// answerListenConfig is how a responder listens for the VMs' connections:
// no TCP keep-alive (a probe's connection lives for one answer), and
// transparent sockets (see answerSocketOptions). When the kernel refuses
// the down VMs (refusing), also TCP_DEFER_ACCEPT: a connection is
// accepted once its request arrived, so that a probe that only connects
// costs no accept, and an accepted one reads its request at once. Without
// a Refuser, accept must see every connection to reset the down VMs'
// itself.
func answerListenConfig(refusing bool) net.ListenConfig {
	return net.ListenConfig{KeepAlive: -1, Control: func(network, _ string, rc syscall.RawConn) error {
		return answerSocketOptions(network, rc, refusing)
	}}
}

// deferAcceptSeconds is how long the kernel holds a connection without a
// request before it is accepted anyway.
const deferAcceptSeconds = 10

// answerSocketOptions sets the options of a listening socket of network
// ("tcp4", or "tcp6" also for a dual-stack socket's IPv4 connections).
// IP_TRANSPARENT (IPV6_TRANSPARENT) is best effort: it spares the kernel,
// as it routes each SYN-ACK from a VM's address, checking that the
// address is local, a walk of a hash of every IPv4 address of every
// namespace on the machine with only 256 buckets (tens of thousands with
// a lab of 10,000 VMs at each site: 5% of a probe round's CPU, more with
// bigger labs). It needs CAP_NET_ADMIN, and changes nothing else without
// TPROXY rules.
func answerSocketOptions(network string, rc syscall.RawConn, deferAccept bool) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		if network == "tcp6" {
			_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_TRANSPARENT, 1)
		} else {
			_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_TRANSPARENT, 1)
		}
		if deferAccept {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, deferAcceptSeconds)
		}
	})
	if err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("set TCP_DEFER_ACCEPT: %w", serr)
	}
	return nil
}

// serve runs until ctx ends; it closes the listeners.
func (r *responder) serve(ctx context.Context, ls responderListeners) error {
	if len(ls.https) > 0 && r.ca == nil {
		ls.close()
		return errors.New("responder: HTTPS listeners need a CA")
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(r.serveHTTP),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       30 * time.Second,
		// A TCP probe on an HTTPS port, or a client giving up, is a failed
		// handshake the server would log on every probe round.
		ErrorLog: stdlog.New(io.Discard, "", 0),
	}
	msrv := &http.Server{Handler: r.metrics.handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, len(ls.http)+len(ls.https)+2)
	for _, ln := range ls.http {
		go func() { errc <- srv.Serve(&downFilter{Listener: ln, r: r}) }()
	}
	if len(ls.https) > 0 {
		tcfg := r.ca.ServerConfig()
		for _, ln := range ls.https {
			// Down VMs are reset before the handshake, as on plain HTTP.
			go func() { errc <- srv.Serve(tls.NewListener(&downFilter{Listener: ln, r: r}, tcfg)) }()
		}
	}
	if ls.metrics != nil {
		go func() { errc <- msrv.Serve(ls.metrics) }()
	}
	var wg sync.WaitGroup
	go func() { errc <- r.serveControl(ls.control, &wg) }()
	r.log.Info().Str("site", r.site).Int("vms", len(r.vms)).Int("http", len(ls.http)).Int("https", len(ls.https)).
		Bool("metrics", ls.metrics != nil).Msg("responder answering")
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	ls.control.Close()
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	_ = msrv.Shutdown(sctx)
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// serveHTTP answers any path with the site's name, after the VM's delay,
// with the VM's status (200 unless SetVMStatus set one), and counts the
// answer.
func (r *responder) serveHTTP(w http.ResponseWriter, req *http.Request) {
	d, code := r.behaviour(localAddr(req.Context().Value(http.LocalAddrContextKey)))
	if d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-req.Context().Done():
			t.Stop()
			return // the client gave up: no answer to count
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	io.WriteString(w, r.site+"\n")
	r.metrics.count(code)
}

// behaviour is how the VM at a answers: after what delay, with what status.
func (r *responder) behaviour(a netip.Addr) (time.Duration, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	code := r.codes[a]
	if code == 0 {
		code = http.StatusOK
	}
	return r.delay[a], code
}

func localAddr(v any) netip.Addr {
	if a, ok := v.(net.Addr); ok {
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			return ap.Addr().Unmap()
		}
	}
	return netip.Addr{}
}

func (r *responder) isDown(a netip.Addr) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.down[a]
}

// downFilter resets connections to down VMs at once: the kernel refuses
// them already when a Refuser is set; this covers the rest.
type downFilter struct {
	net.Listener
	r *responder
}

// Accept returns the next connection to a VM that is not down.
func (f *downFilter) Accept() (net.Conn, error) {
	for {
		c, err := f.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if !f.r.isDown(localAddr(c.LocalAddr())) {
			return c, nil
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // close with a reset
		}
		c.Close()
	}
}

// setStatus makes addrs answer with code (0: normally again). Called with
// r.mu held.
func (r *responder) setStatus(addrs []netip.Addr, code int) error {
	// 1xx are informational: Go would follow them with a 200 anyway.
	if code != 0 && (code < 200 || code > 599) {
		return fmt.Errorf("http-status %d: want 200 to 599, or 0 to answer normally", code)
	}
	for _, a := range addrs {
		if code == 0 {
			delete(r.codes, a.Unmap())
		} else {
			r.codes[a.Unmap()] = code
		}
	}
	r.log.Info().Str("op", "http-status").Int("vms", len(addrs)).Int("code", code).Msg("answer status set")
	return nil
}

// controlRequest is one line on the control socket.
type controlRequest struct {
	// Op is "ping", "status", "down", "up", "delay" or "http-status".
	Op    string       `json:"op"`
	Addrs []netip.Addr `json:"addrs,omitempty"`
	// Delay for op "delay", e.g. "1.5s"; "0s" clears it.
	Delay string `json:"delay,omitempty"`
	// Code for op "http-status": the status to answer with, such as 503;
	// 0 answers normally again.
	Code int `json:"code,omitempty"`
}

// controlResponse answers one request.
type controlResponse struct {
	OK      bool   `json:"ok"`
	Error   string `json:"error,omitempty"`
	Site    string `json:"site"`
	VMs     int    `json:"vms"`
	Down    int    `json:"down"`
	Delayed int    `json:"delayed"`
	// Failing counts the VMs answering with a status set by http-status
	// (omitted when none, so the answers of older tools stay the same).
	Failing int `json:"failing,omitempty"`
}

// maxControlLine bounds one request line (50,000 addresses fit easily).
const maxControlLine = 16 << 20

func (r *responder) serveControl(ln net.Listener, wg *sync.WaitGroup) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			sc := bufio.NewScanner(c)
			sc.Buffer(make([]byte, 0, 64<<10), maxControlLine)
			enc := json.NewEncoder(c)
			for sc.Scan() {
				var req controlRequest
				var resp controlResponse
				if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
					resp = r.status(fmt.Errorf("parse request: %w", err))
				} else {
					resp = r.status(r.handle(req))
				}
				if err := enc.Encode(resp); err != nil {
					return
				}
			}
		}()
	}
}

func (r *responder) status(err error) controlResponse {
	r.mu.Lock()
	defer r.mu.Unlock()
	resp := controlResponse{OK: err == nil, Site: r.site, VMs: len(r.vms), Down: len(r.down), Delayed: len(r.delay), Failing: len(r.codes)}
	if err != nil {
		resp.Error = err.Error()
	}
	return resp
}

func (r *responder) handle(req controlRequest) error {
	switch req.Op {
	case "ping", "status":
		return nil
	case "down", "up", "delay", "http-status":
	default:
		return fmt.Errorf("unknown op %q (want ping, status, down, up, delay or http-status)", req.Op)
	}
	if len(req.Addrs) == 0 {
		return fmt.Errorf("%s: no addresses", req.Op)
	}
	var unknown []string
	for _, a := range req.Addrs {
		if !r.vms[a.Unmap()] {
			unknown = append(unknown, a.String())
		}
	}
	if len(unknown) > 0 {
		more := ""
		if len(unknown) > 5 {
			more = fmt.Sprintf(" and %d more", len(unknown)-5)
			unknown = unknown[:5]
		}
		return fmt.Errorf("%s: %s%s not a VM of %s", req.Op, strings.Join(unknown, ", "), more, r.site)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch req.Op {
	case "delay":
		d, err := time.ParseDuration(req.Delay)
		if err != nil || d < 0 {
			return fmt.Errorf("delay %q: want a duration >= 0 such as 1.5s", req.Delay)
		}
		for _, a := range req.Addrs {
			if d == 0 {
				delete(r.delay, a.Unmap())
			} else {
				r.delay[a.Unmap()] = d
			}
		}
		r.log.Info().Str("op", "delay").Int("vms", len(req.Addrs)).Dur("delay", d).Msg("response delay set")
		return nil
	case "http-status":
		return r.setStatus(req.Addrs, req.Code)
	}
	down := req.Op == "down"
	var change []netip.Addr
	for _, a := range req.Addrs {
		if a = a.Unmap(); r.down[a] != down {
			change = append(change, a)
			r.down[a] = down // dedups repeated addresses; undone on error
		}
	}
	var err error
	if r.refuse != nil && len(change) > 0 {
		if down {
			err = r.refuse.Refuse(change, nil)
		} else {
			err = r.refuse.Refuse(nil, change)
		}
	}
	for _, a := range change {
		if err != nil {
			r.down[a] = !down
		}
		if !r.down[a] {
			delete(r.down, a)
		}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", req.Op, err)
	}
	r.log.Info().Str("op", req.Op).Int("vms", len(change)).Msg("VM state changed")
	return nil
}

// Status classes of the answer counters. All are exported from the start
// at 0, so that a query on one class (code="5xx") is never empty.
var answerClasses = []string{"1xx", "2xx", "3xx", "4xx", "5xx", "other"}

// statusClass is the answer counters' code label of an HTTP status.
func statusClass(code int) string {
	if code < 100 || code > 599 {
		return "other"
	}
	return answerClasses[code/100-1]
}

// answerMetrics counts the answers a responder gave, by status class,
// under two names: haproxy_backend_http_responses_total, shaped as
// HAProxy's so that a runbook gate written against HAProxy runs against
// the lab unchanged, and cutover_lab_responses_total, the lab's own.
type answerMetrics struct {
	reg     *prometheus.Registry
	byClass map[string][2]prometheus.Counter
}

func newAnswerMetrics(site string) *answerMetrics {
	haproxy := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "haproxy_backend_http_responses_total",
		Help: "HTTP answers of the lab responder by status class, shaped as HAProxy's backend counter (backend is the site).",
	}, []string{"backend", "code"})
	own := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cutover_lab_responses_total",
		Help: "HTTP answers of the lab responder by site and status class.",
	}, []string{"site", "code"})
	m := &answerMetrics{reg: prometheus.NewRegistry(), byClass: map[string][2]prometheus.Counter{}}
	m.reg.MustRegister(haproxy, own)
	for _, c := range answerClasses {
		m.byClass[c] = [2]prometheus.Counter{haproxy.WithLabelValues(site, c), own.WithLabelValues(site, c)}
	}
	return m
}

func (m *answerMetrics) count(code int) {
	for _, c := range m.byClass[statusClass(code)] {
		c.Inc()
	}
}

// handler serves the counters at /metrics (and only there).
func (m *answerMetrics) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	return mux
}
