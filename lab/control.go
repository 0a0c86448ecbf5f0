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

// startResponder starts `<bin> lab responder` in site's namespace, detached
// (its own session, output to responder.log), and waits until its control
// socket answers.
func (l *Lab) startResponder(ctx context.Context, bin, site string) (Daemon, error) {
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
	cmd := Exec(l.Namespace(site), bin, "lab", "responder",
		"--site", site, "--addrs", filepath.Join(dir, "vms.txt"), "--control", sock)
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
	if !slices.Contains(Sites, site) {
		return controlResponse{}, fmt.Errorf("site %q: no such site (want one of %v)", site, Sites)
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
