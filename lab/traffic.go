package lab

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// Results of the traffic client's requests: the result label of
// cutover_lab_client_requests_total.
const (
	ResultOK        = "ok"         // 2xx or 3xx, as a probe counts it healthy
	ResultHTTP5xx   = "http_5xx"   // the server answered 5xx
	ResultHTTPOther = "http_other" // any other status (1xx, 4xx)
	ResultError     = "error"      // no answer: refused, reset, timeout
)

var trafficResults = []string{ResultOK, ResultHTTP5xx, ResultHTTPOther, ResultError}

// DefaultTrafficTimeout bounds one request of the traffic client.
const DefaultTrafficTimeout = 2 * time.Second

// TrafficConfig configures the traffic client: the hospitals using the
// VMs while they move, so that the responders' answer counters (and the
// runbooks' Prometheus gates on them) see real traffic.
type TrafficConfig struct {
	URLs []string // requested round-robin
	Rate float64  // requests per second over all URLs
	// Timeout bounds each request; default DefaultTrafficTimeout.
	Timeout time.Duration
	// RootCAs verify https URLs; nil: the system's pool (which
	// SSL_CERT_FILE=<lab CA dir>/ca.pem points at the lab CA).
	RootCAs *x509.CertPool
	// Dial connects (e.g. from inside a namespace); nil: a plain dialer.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
}

// Traffic requests URLs at a steady rate and counts the results.
type Traffic struct {
	urls    []string
	rate    float64
	timeout time.Duration
	client  *http.Client
	counts  map[string]*atomic.Uint64
	reg     *prometheus.Registry
}

// NewTraffic checks cfg and returns a client ready to Run.
func NewTraffic(cfg TrafficConfig) (*Traffic, error) {
	if len(cfg.URLs) == 0 {
		return nil, errors.New("traffic: no URLs")
	}
	for _, s := range cfg.URLs {
		if err := checkTrafficURL(s); err != nil {
			return nil, fmt.Errorf("traffic: %w", err)
		}
	}
	if !(cfg.Rate > 0) || math.IsInf(cfg.Rate, 1) {
		return nil, fmt.Errorf("traffic: rate %g: want more than 0 requests per second", cfg.Rate)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTrafficTimeout
	}
	dial := cfg.Dial
	if dial == nil {
		dial = (&net.Dialer{Timeout: cfg.Timeout}).DialContext
	}
	t := &Traffic{
		urls:    cfg.URLs,
		rate:    cfg.Rate,
		timeout: cfg.Timeout,
		client: &http.Client{
			Timeout: cfg.Timeout,
			Transport: &http.Transport{
				Proxy:             nil, // the lab's addresses are never behind the host's proxy
				DialContext:       dial,
				DisableKeepAlives: true, // a fresh connection each: a VM that goes down is seen at once
				TLSClientConfig:   &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12},
			},
			// A redirect is an answer, as for the probes: count it, do not follow it.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		counts: map[string]*atomic.Uint64{},
		reg:    prometheus.NewRegistry(),
	}
	for _, r := range trafficResults {
		n := new(atomic.Uint64)
		t.counts[r] = n
		t.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "cutover_lab_client_requests_total",
			Help:        "Requests of the lab's traffic client by result: ok (2xx, 3xx), http_5xx, http_other, error (no answer).",
			ConstLabels: prometheus.Labels{"result": r},
		}, func() float64 { return float64(n.Load()) }))
	}
	return t, nil
}

func checkTrafficURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("URL %q: want http:// or https:// and a host", s)
	}
	return nil
}

// Counts returns how many requests ended with each result so far.
func (t *Traffic) Counts() map[string]uint64 {
	out := make(map[string]uint64, len(t.counts))
	for r, n := range t.counts {
		out[r] = n.Load()
	}
	return out
}

// Handler serves the counters at /metrics.
func (t *Traffic) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(t.reg, promhttp.HandlerOpts{}))
	return mux
}

// Run requests the URLs round-robin at the rate until ctx ends, then
// waits for the requests under way. It keeps to the rate by counting what
// is due since the start, not by one tick per request, so a busy machine
// that wakes it late catches up (at most a second's worth at once).
func (t *Traffic) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	// Ticks of at least 10ms: a high rate sends several requests a tick.
	tick := max(time.Duration(float64(time.Second)/t.rate), 10*time.Millisecond)
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	start := time.Now()
	var sent, skipped int64
	burst := int64(math.Max(1, math.Ceil(t.rate)))
	for {
		due := int64(time.Since(start).Seconds()*t.rate) + 1 - sent - skipped
		if due > burst {
			skipped += due - burst
			due = burst
		}
		for ; due > 0; due-- {
			u := t.urls[sent%int64(len(t.urls))]
			sent++
			wg.Add(1)
			go func() {
				defer wg.Done()
				t.request(ctx, u)
			}()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// request makes one GET and counts its result; one cut short because ctx
// ended (the client stopping) is not counted.
func (t *Traffic) request(ctx context.Context, u string) {
	r := t.do(ctx, u)
	if ctx.Err() != nil {
		return
	}
	t.counts[r].Add(1)
}

func (t *Traffic) do(ctx context.Context, u string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return ResultError
	}
	req.Header.Set("User-Agent", "cutover-lab-traffic")
	resp, err := t.client.Do(req)
	if err != nil {
		return ResultError
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c <= 399:
		return ResultOK
	case c >= 500 && c <= 599:
		return ResultHTTP5xx
	default:
		return ResultHTTPOther
	}
}

// ReadURLs reads a traffic client's URL file: one URL a line; blank lines
// and lines starting with # are skipped.
func ReadURLs(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read URLs: %w", err)
	}
	var out []string
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := checkTrafficURL(line); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, i+1, err)
		}
		out = append(out, line)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no URLs", path)
	}
	return out, nil
}

// TrafficFlags are the flags of `cutover lab responder --traffic`.
type TrafficFlags struct {
	URLFile string  // --traffic
	Rate    float64 // --rate
	Metrics string  // --metrics: where to serve /metrics
	CADir   string  // --ca: trust this lab CA for https URLs (else the system's pool)
}

// TrafficMain is `cutover lab responder --traffic FILE --rate N --metrics
// ADDR`, run in the client's namespace: it requests the URLs until ctx
// ends and serves the counters on ADDR.
func TrafficMain(ctx context.Context, f TrafficFlags, log zerolog.Logger) error {
	if f.Metrics == "" {
		return errors.New("lab responder --traffic: --metrics is required")
	}
	urls, err := ReadURLs(f.URLFile)
	if err != nil {
		return fmt.Errorf("lab responder --traffic: %w", err)
	}
	cfg := TrafficConfig{URLs: urls, Rate: f.Rate}
	if f.CADir != "" {
		ca, err := LoadCA(f.CADir)
		if err != nil {
			return fmt.Errorf("lab responder --traffic: %w", err)
		}
		cfg.RootCAs = ca.Pool()
	}
	t, err := NewTraffic(cfg)
	if err != nil {
		return fmt.Errorf("lab responder --traffic: %w", err)
	}
	ln, err := net.Listen("tcp", f.Metrics)
	if err != nil {
		return fmt.Errorf("lab responder --traffic: listen on %s: %w", f.Metrics, err)
	}
	srv := &http.Server{Handler: t.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info().Int("urls", len(urls)).Float64("rate", f.Rate).Str("metrics", f.Metrics).Msg("traffic client running")
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- t.Run(rctx) }()
	select {
	case err = <-errc:
		err = fmt.Errorf("lab responder --traffic: serve metrics: %w", err)
	case <-ctx.Done():
	}
	cancel()
	<-done
	sctx, scancel := context.WithTimeout(context.Background(), time.Second)
	defer scancel()
	_ = srv.Shutdown(sctx)
	return err
}

// Args are the flags of `lab responder --traffic` for f.
func (f TrafficFlags) Args() []string {
	out := []string{"--traffic", f.URLFile, "--rate", strconv.FormatFloat(f.Rate, 'f', -1, 64), "--metrics", f.Metrics}
	if f.CADir != "" {
		out = append(out, "--ca", f.CADir)
	}
	return out
}

// StartTraffic writes urls to <Dir>/traffic.txt and starts `<bin> lab
// responder --traffic` in the client's namespace (hosp), detached, its
// output in traffic.log, and waits until its /metrics answers at metrics.
func (l *Lab) StartTraffic(ctx context.Context, bin string, urls []string, rate float64, metrics netip.AddrPort, caDir string) (Daemon, error) {
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return Daemon{}, fmt.Errorf("start traffic: find own binary: %w", err)
		}
		bin = exe
	}
	file := filepath.Join(l.st.Dir, "traffic.txt")
	if err := os.WriteFile(file, []byte(strings.Join(urls, "\n")+"\n"), 0o644); err != nil {
		return Daemon{}, fmt.Errorf("start traffic: %w", err)
	}
	f := TrafficFlags{URLFile: file, Rate: rate, Metrics: metrics.String(), CADir: caDir}
	ns := l.Namespace(NodeHosp)
	logPath := filepath.Join(l.st.Dir, "traffic.log")
	cmd := Exec(ns, append([]string{bin, "lab", "responder"}, f.Args()...)...)
	pid, err := startDetached(ctx, cmd, logPath, []string{ResponderEnv + "=1"}, func(ctx context.Context) error {
		return waitHTTPOK(ctx, NamespaceHTTPClient(ns, 5*time.Second), "http://"+metrics.String()+"/metrics", 10*time.Second)
	})
	// The URL file is on the command line: a reused pid is never taken for it.
	d := Daemon{Node: NodeHosp, Name: "traffic", PID: pid, Match: file}
	if err != nil {
		return d, fmt.Errorf("start traffic in %s: %w%s", NodeHosp, err, logTail(logPath))
	}
	return d, nil
}

// waitHTTPOK polls GET u until it answers 200, for up to timeout.
func waitHTTPOK(ctx context.Context, c *http.Client, u string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = errors.New(resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not answering after %s: GET %s: %w", timeout, u, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
