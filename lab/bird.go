package lab

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// birdSocket is the control socket of a BIRD edge, in its directory.
func (l *Lab) birdSocket(node string) string { return filepath.Join(l.edgeDir(node), "bird.ctl") }

// startBIRD starts BIRD in edge e's namespace in the foreground as a child
// (like startFRR), and waits until it answers on its control socket.
func (l *Lab) startBIRD(ctx context.Context, e Edge) ([]Daemon, error) {
	dir := l.edgeDir(e.Node)
	sock, pidFile, outFile := l.birdSocket(e.Node), filepath.Join(dir, "bird.pid"), filepath.Join(dir, "bird.out")
	cmd := Exec(l.Namespace(e.Node), l.st.Tools.BIRD, "-f", "-c", filepath.Join(dir, "bird.conf"), "-s", sock, "-P", pidFile)
	pid, err := startDetached(ctx, cmd, outFile, nil, func(ctx context.Context) error {
		if err := waitFiles(ctx, 10*time.Second, pidFile, sock); err != nil {
			return err
		}
		_, err := l.birdc(ctx, e.Node, "show", "status")
		return err
	})
	var ds []Daemon
	if pid != 0 {
		ds = append(ds, Daemon{Node: e.Node, Name: "bird", PID: pid, Match: pidFile})
	}
	if err != nil {
		return ds, fmt.Errorf("start bird on %s: %w%s%s", e.Node, err, logTail(outFile), logTail(filepath.Join(dir, "bird.log")))
	}
	return ds, nil
}

// birdc runs a birdc command against node's BIRD and returns its output.
func (l *Lab) birdc(ctx context.Context, node string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	argv := append([]string{"-s", l.birdSocket(node)}, args...)
	out, err := exec.CommandContext(ctx, l.st.Tools.BIRDC, argv...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("birdc on %s %q: %w: %s", node, args, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// birdSessions reads the controller sessions of a BIRD edge from `show
// protocols all`.
func (l *Lab) birdSessions(ctx context.Context, node string) ([]SessionStatus, error) {
	out, err := l.birdc(ctx, node, "show", "protocols", "all", `"controller_*"`)
	if err != nil {
		return nil, err
	}
	return parseBIRDProtocols(node, out)
}

// parseBIRDProtocols reads birdc's `show protocols all` of the BGP
// protocols: per protocol its neighbor, AS, BGP state, and per channel
// the routes imported (accepted) and exported.
func parseBIRDProtocols(node, out string) ([]SessionStatus, error) {
	var all []SessionStatus
	var cur *SessionStatus
	var channel string
	since := ""
	flush := func() {
		if cur != nil && cur.Peer.IsValid() {
			if cur.Established() {
				cur.Uptime = since
			}
			all = append(all, *cur)
		}
		cur = nil
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		switch {
		case len(f) >= 5 && f[1] == "BGP" && !strings.HasPrefix(line, " "):
			// controller_1 BGP --- up 12:00:00.000 Established
			flush()
			cur = &SessionStatus{Node: node, State: "Idle"}
			since, channel = f[4], ""
		case cur == nil:
		case len(f) >= 3 && f[0] == "BGP" && f[1] == "state:":
			cur.State = f[2]
		case len(f) >= 3 && f[0] == "Neighbor" && f[1] == "address:":
			a, err := netip.ParseAddr(f[2])
			if err != nil {
				return nil, fmt.Errorf("parse birdc show protocols: neighbor %q: %w", f[2], err)
			}
			cur.Peer = a
		case len(f) >= 3 && f[0] == "Neighbor" && f[1] == "AS:":
			n, err := strconv.ParseUint(f[2], 10, 32)
			if err != nil {
				return nil, fmt.Errorf("parse birdc show protocols: neighbor AS %q: %w", f[2], err)
			}
			cur.RemoteAS = uint32(n)
		case len(f) == 2 && f[0] == "Channel":
			channel = map[string]string{"ipv4": "ipv4Unicast", "ipv6": "ipv6Unicast"}[f[1]]
		case len(f) >= 4 && f[0] == "Routes:" && channel != "":
			// Routes: 4 imported, 0 exported, 4 preferred
			if cur.Received == nil {
				cur.Received, cur.Sent = map[string]int{}, map[string]int{}
			}
			for i := 1; i+1 < len(f); i += 2 {
				n, err := strconv.Atoi(f[i])
				if err != nil {
					continue
				}
				switch strings.TrimSuffix(f[i+1], ",") {
				case "imported":
					cur.Received[channel] = n
				case "exported":
					cur.Sent[channel] = n
				}
			}
		}
	}
	flush()
	if len(all) == 0 && !strings.Contains(out, "BGP") {
		return nil, fmt.Errorf("parse birdc show protocols: no BGP protocol in %q", strings.TrimSpace(out))
	}
	return all, nil
}
