package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

func (l *Lab) controlSocket(site string) string {
	return filepath.Join(l.siteDir(site), "responder.sock")
}

// ResponderListen is where a site's responder answers besides its
// control socket: the ports of the probes and traffic the inventory uses.
type ResponderListen struct {
	HTTP  []uint16 // ports answered with HTTP on every address; none: 80
	HTTPS []uint16 // ports answered with HTTPS; needs CADir
	// CADir holds the lab CA (NewCA) that issues each VM's certificate.
	CADir string
	// Metrics is where /metrics is served (the site's link address, so the
	// lab's Prometheus scrapes it through the edge); invalid: nowhere.
	Metrics netip.AddrPort
}

// Args are the responder's flags for r.
func (r ResponderListen) Args() []string {
	var out []string
	for _, p := range r.HTTP {
		out = append(out, "--listen", ":"+strconv.Itoa(int(p)))
	}
	for _, p := range r.HTTPS {
		out = append(out, "--tls-listen", ":"+strconv.Itoa(int(p)))
	}
	if r.CADir != "" {
		out = append(out, "--ca", r.CADir)
	}
	if r.Metrics.IsValid() {
		out = append(out, "--metrics", r.Metrics.String())
	}
	return out
}

// startResponder starts `<bin> lab responder` in site's namespace, detached
// (its own session, output to responder.log), and waits until its control
// socket answers. extra are more flags, such as ResponderListen.Args.
func (l *Lab) startResponder(ctx context.Context, bin, site string, extra ...string) (Daemon, error) {
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return Daemon{}, fmt.Errorf("start responder in %s: find own binary: %w", site, err)
		}
		bin = exe
	}
	dir := l.siteDir(site)
	sock := l.controlSocket(site)
	logPath := filepath.Join(dir, "responder.log")
	args := append([]string{bin, "lab", "responder",
		"--site", site, "--addrs", filepath.Join(dir, "vms.txt"), "--control", sock}, extra...)
	cmd := Exec(l.Namespace(site), args...)
	pid, err := startDetached(ctx, cmd, logPath, []string{ResponderEnv + "=1"}, func(ctx context.Context) error {
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, err := l.control(ctx, site, controlRequest{Op: "ping"})
			if err == nil || ctx.Err() != nil {
				return err
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("control socket not answering after 10s: %w", err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	d := Daemon{Node: site, Name: "responder", PID: pid, Match: sock}
	if err != nil {
		return d, fmt.Errorf("start responder in %s: %w%s\n(a test binary serves the responder only if its TestMain calls lab.MaybeRunResponder)",
			site, err, logTail(logPath))
	}
	if err := os.WriteFile(filepath.Join(dir, "responder.pid"), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		return d, fmt.Errorf("start responder in %s: %w", site, err)
	}
	return d, nil
}

// control sends one request to site's responder.
func (l *Lab) control(ctx context.Context, site string, req controlRequest) (controlResponse, error) {
	if sites := l.st.Topology.SiteNodes(); !slices.Contains(sites, site) {
		return controlResponse{}, fmt.Errorf("site %q: no such site (want one of %v)", site, sites)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", l.controlSocket(site))
	if err != nil {
		return controlResponse{}, fmt.Errorf("responder of %s: %w", site, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	} else {
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	}
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return controlResponse{}, fmt.Errorf("responder of %s: send: %w", site, err)
	}
	var resp controlResponse
	if err := json.NewDecoder(bufio.NewReader(c)).Decode(&resp); err != nil {
		return controlResponse{}, fmt.Errorf("responder of %s: read answer: %w", site, err)
	}
	if !resp.OK {
		return resp, fmt.Errorf("responder of %s: %s", site, resp.Error)
	}
	return resp, nil
}

// SetVMDown makes the VMs at addrs in site play down (down=true: TCP
// connections are reset, other traffic gets ICMP host-unreachable) or come
// back (down=false). Addresses must be VMs of the lab.
func (l *Lab) SetVMDown(site string, addrs []netip.Addr, down bool) error {
	op := "up"
	if down {
		op = "down"
	}
	if len(addrs) == 0 {
		return errors.New("set VM down: no addresses")
	}
	_, err := l.control(context.Background(), site, controlRequest{Op: op, Addrs: addrs})
	return err
}

// SetVMDelay makes site's responder wait d before answering HTTP requests to
// the VMs at addrs; d = 0 removes the delay.
func (l *Lab) SetVMDelay(site string, addrs []netip.Addr, d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("set VM delay: negative delay %s", d)
	}
	if len(addrs) == 0 {
		return errors.New("set VM delay: no addresses")
	}
	_, err := l.control(context.Background(), site, controlRequest{Op: "delay", Addrs: addrs, Delay: d.String()})
	return err
}

// SetVMStatus makes site's responder answer HTTP and HTTPS requests to the
// VMs at addrs with status code (such as 503) instead of 200; code 0 makes
// them answer normally again. The answers are counted in the responder's
// metrics, so a Prometheus gate on the error rate sees them.
func (l *Lab) SetVMStatus(site string, addrs []netip.Addr, code int) error {
	if code != 0 && (code < 200 || code > 599) {
		return fmt.Errorf("set VM status: %d: want 200 to 599, or 0 to answer normally", code)
	}
	if len(addrs) == 0 {
		return errors.New("set VM status: no addresses")
	}
	_, err := l.control(context.Background(), site, controlRequest{Op: "http-status", Addrs: addrs, Code: code})
	return err
}
