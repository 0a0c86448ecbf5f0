package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
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
func ResponderMain(ctx context.Context, args []string, log zerolog.Logger) error {
	fs := flag.NewFlagSet("lab responder", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	site := fs.String("site", "", "site name: the body of every answer")
	addrs := fs.String("addrs", "", "file with the VM addresses, one prefix per line")
	control := fs.String("control", "", "unix socket for the control requests")
	listen := fs.String("listen", ":80", "TCP address to answer HTTP on")
	useNFT := fs.Bool("nft", true, "refuse connections to down VMs in the kernel (nftables table inet "+refuseTable+")")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("lab responder: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("lab responder: unexpected arguments %q", fs.Args())
	}
	if *site == "" || *addrs == "" || *control == "" {
		return errors.New("lab responder: --site, --addrs and --control are required")
	}
	vms, err := readVMList(*addrs)
	if err != nil {
		return fmt.Errorf("lab responder: %w", err)
	}
	cfg := ResponderConfig{Site: *site, VMs: vms, Control: *control, Listen: []string{*listen}}
	if *useNFT {
		r, err := newNFTRefuser()
		if err != nil {
			return fmt.Errorf("lab responder: %w", err)
		}
		defer r.Close()
		cfg.Refuser = r
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return RunResponder(ctx, cfg, log)
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
	Site    string       // answered as the body: "<Site>\n"
	VMs     []netip.Addr // the addresses control requests may name
	Control string       // unix socket path for control requests
	Listen  []string     // TCP addresses to answer HTTP on, e.g. ":80"
	Refuser Refuser      // nil: down VMs are only reset after accept
}

// responder answers HTTP with its site's name and plays down or slow VMs.
type responder struct {
	site   string
	vms    map[netip.Addr]bool
	refuse Refuser
	log    zerolog.Logger

	mu    sync.Mutex // guards down and delay, and orders Refuser calls
	down  map[netip.Addr]bool
	delay map[netip.Addr]time.Duration
}

func newResponder(cfg ResponderConfig, log zerolog.Logger) *responder {
	r := &responder{
		site:   cfg.Site,
		vms:    make(map[netip.Addr]bool, len(cfg.VMs)),
		refuse: cfg.Refuser,
		log:    log,
		down:   map[netip.Addr]bool{},
		delay:  map[netip.Addr]time.Duration{},
	}
	for _, a := range cfg.VMs {
		r.vms[a.Unmap()] = true
	}
	return r
}

// RunResponder answers HTTP on cfg.Listen and control requests on
// cfg.Control until ctx ends.
func RunResponder(ctx context.Context, cfg ResponderConfig, log zerolog.Logger) error {
	r := newResponder(cfg, log)
	var lns []net.Listener
	closeAll := func() {
		for _, ln := range lns {
			ln.Close()
		}
	}
	for _, a := range cfg.Listen {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			closeAll()
			return fmt.Errorf("listen on %s: %w", a, err)
		}
		lns = append(lns, ln)
	}
	_ = os.Remove(cfg.Control)
	ctl, err := net.Listen("unix", cfg.Control)
	if err != nil {
		closeAll()
		return fmt.Errorf("listen on %s: %w", cfg.Control, err)
	}
	defer os.Remove(cfg.Control)
	return r.serve(ctx, lns, ctl)
}

// serve runs until ctx ends; it closes the listeners.
func (r *responder) serve(ctx context.Context, lns []net.Listener, ctl net.Listener) error {
	srv := &http.Server{
		Handler:           http.HandlerFunc(r.serveHTTP),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       30 * time.Second,
	}
	errc := make(chan error, len(lns)+1)
	for _, ln := range lns {
		go func() { errc <- srv.Serve(&downFilter{Listener: ln, r: r}) }()
	}
	var wg sync.WaitGroup
	go func() { errc <- r.serveControl(ctl, &wg) }()
	r.log.Info().Str("site", r.site).Int("vms", len(r.vms)).Msg("responder answering")
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	ctl.Close()
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

func (r *responder) serveHTTP(w http.ResponseWriter, req *http.Request) {
	if d := r.delayOf(localAddr(req.Context().Value(http.LocalAddrContextKey))); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-req.Context().Done():
			t.Stop()
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, r.site+"\n")
}

func localAddr(v any) netip.Addr {
	if a, ok := v.(net.Addr); ok {
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			return ap.Addr().Unmap()
		}
	}
	return netip.Addr{}
}

func (r *responder) delayOf(a netip.Addr) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.delay[a]
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

// controlRequest is one line on the control socket.
type controlRequest struct {
	// Op is "ping", "status", "down", "up" or "delay".
	Op    string       `json:"op"`
	Addrs []netip.Addr `json:"addrs,omitempty"`
	// Delay for op "delay", e.g. "1.5s"; "0s" clears it.
	Delay string `json:"delay,omitempty"`
}

// controlResponse answers one request.
type controlResponse struct {
	OK      bool   `json:"ok"`
	Error   string `json:"error,omitempty"`
	Site    string `json:"site"`
	VMs     int    `json:"vms"`
	Down    int    `json:"down"`
	Delayed int    `json:"delayed"`
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
	resp := controlResponse{OK: err == nil, Site: r.site, VMs: len(r.vms), Down: len(r.down), Delayed: len(r.delay)}
	if err != nil {
		resp.Error = err.Error()
	}
	return resp
}

func (r *responder) handle(req controlRequest) error {
	switch req.Op {
	case "ping", "status":
		return nil
	case "down", "up", "delay":
	default:
		return fmt.Errorf("unknown op %q (want ping, status, down, up or delay)", req.Op)
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
