// Package health probes VMs (TCP connect, HTTP/HTTPS status, ICMP echo) and
// judges a batch of a cutover through gates: per-VM probes against the
// health baseline taken before the first batch, a Prometheus query, or any
// function (FuncGate). Every Verdict carries its reasons.
//
// The package does not import package cutover; the engine converts its own
// types to Target and Probe.
package health

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// Probe kinds.
const (
	KindICMP  = "icmp"
	KindTCP   = "tcp"
	KindHTTP  = "http"
	KindHTTPS = "https"
)

// Defaults for zero values.
const (
	DefaultTimeout = 2 * time.Second // per probe
	// DefaultConcurrency is how many probes are in flight at once: as a
	// runbook's probe gate has it. A round of 10,000 probes then takes
	// about a second on two cores, prober and lab responders included.
	DefaultConcurrency = 256
)

// Probe says how to check one address.
type Probe struct {
	Kind string // KindICMP, KindTCP, KindHTTP or KindHTTPS
	Port uint16 // tcp: required; http: 0 means 80; https: 0 means 443
	Path string // http and https: request path; "" means "/"
}

// Validate reports whether p can be run, with an error that names the
// problem.
func (p Probe) Validate() error {
	switch p.Kind {
	case KindICMP:
		if p.Port != 0 || p.Path != "" {
			return fmt.Errorf("probe icmp: takes no port or path")
		}
	case KindTCP:
		if p.Port == 0 {
			return fmt.Errorf("probe tcp: needs a port")
		}
		if p.Path != "" {
			return fmt.Errorf("probe tcp: takes no path")
		}
	case KindHTTP, KindHTTPS:
		if p.Path != "" && p.Path[0] != '/' {
			return fmt.Errorf("probe %s: path %q must start with /", p.Kind, p.Path)
		}
	case "":
		return fmt.Errorf("probe: no kind (want icmp, tcp, http or https)")
	default:
		return fmt.Errorf("probe: unknown kind %q (want icmp, tcp, http or https)", p.Kind)
	}
	return nil
}

// port returns the port the probe connects to (0 for icmp).
func (p Probe) port() uint16 {
	switch {
	case p.Port != 0:
		return p.Port
	case p.Kind == KindHTTP:
		return 80
	case p.Kind == KindHTTPS:
		return 443
	}
	return 0
}

func (p Probe) path() string {
	if p.Path == "" {
		return "/"
	}
	return p.Path
}

// String describes the probe the way reasons show it: "icmp", "tcp 80",
// "http 8080 /healthz".
func (p Probe) String() string {
	switch p.Kind {
	case KindICMP:
		return "icmp"
	case KindTCP:
		return fmt.Sprintf("tcp %d", p.port())
	case KindHTTP, KindHTTPS:
		if p.path() == "/" {
			return fmt.Sprintf("%s %d", p.Kind, p.port())
		}
		return fmt.Sprintf("%s %d %s", p.Kind, p.port(), p.path())
	}
	return p.Kind
}

// Target is one probed address. Name is its key in results and baselines
// and must be unique among the targets of a round (for a VM with several
// addresses, name each target, e.g. "vm-0042/v6").
type Target struct {
	Name  string
	Addr  netip.Addr
	Probe Probe
}

// Failure is the line that names t failing for why, as verdicts list
// failing targets: "vm-0042 10.64.0.52: tcp 80: connection refused".
func (t Target) Failure(why string) string {
	return fmt.Sprintf("%s %s: %s", t.Name, t.Addr, why)
}

// Result is the outcome of one probe.
type Result struct {
	OK  bool          `json:"ok"`
	Err string        `json:"err,omitempty"` // e.g. "tcp 80: connection refused"
	RTT time.Duration `json:"rtt,omitempty"` // time to connect, answer or echo
}

// Prober probes one target. Probe must honour ctx's deadline and be safe
// for concurrent use.
type Prober interface {
	Probe(ctx context.Context, t Target) Result
}

// ValidateTargets checks every target (name, address, probe) and that names
// are unique.
func ValidateTargets(ts []Target) error {
	seen := make(map[string]bool, len(ts))
	for _, t := range ts {
		if t.Name == "" {
			return fmt.Errorf("target %v: no name", t.Addr)
		}
		if seen[t.Name] {
			return fmt.Errorf("target %s: duplicate name", t.Name)
		}
		seen[t.Name] = true
		if !t.Addr.IsValid() {
			return fmt.Errorf("target %s: no address", t.Name)
		}
		if err := t.Probe.Validate(); err != nil {
			return fmt.Errorf("target %s: %w", t.Name, err)
		}
	}
	return nil
}

// RunRound probes every target once, with at most concurrency probes in
// flight (0: DefaultConcurrency) and each bounded by DefaultTimeout, and
// returns the results by target name.
func RunRound(ctx context.Context, p Prober, targets []Target, concurrency int) map[string]Result {
	return RunRoundTimeout(ctx, p, targets, concurrency, DefaultTimeout)
}

// RunRoundTimeout is RunRound with a per-probe timeout (0: DefaultTimeout).
// Targets not probed because ctx ended get a failed result saying so; the
// caller tells a round cut short by ctx.Err.
func RunRoundTimeout(ctx context.Context, p Prober, targets []Target, concurrency int, timeout time.Duration) map[string]Result {
	if concurrency <= 0 {
		concurrency = DefaultConcurrency
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	concurrency = min(concurrency, len(targets))
	results := make([]Result, len(targets))
	next := make(chan int)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				pctx, cancel := context.WithTimeout(ctx, timeout)
				results[i] = p.Probe(pctx, targets[i])
				cancel()
			}
		}()
	}
	i := 0
feed:
	for ; i < len(targets); i++ {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	for ; i < len(targets); i++ {
		results[i] = Result{Err: fmt.Sprintf("%s: not probed: %v", targets[i].Probe, ctx.Err())}
	}
	out := make(map[string]Result, len(targets))
	for i, t := range targets {
		out[t.Name] = results[i]
	}
	return out
}
