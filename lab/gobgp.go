package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// goBGPSocket is the gRPC socket of a gobgpd edge, in its directory: the
// API listens on no TCP port, in the namespace or elsewhere.
func (l *Lab) goBGPSocket(node string) string { return filepath.Join(l.edgeDir(node), "gobgp.sock") }

// startGoBGP starts zebra and staticd (the covering routes, and the FIB
// for gobgpd) and then gobgpd in edge e's namespace, and waits until
// gobgpd answers on its API and is zebra's client.
func (l *Lab) startGoBGP(ctx context.Context, e Edge) ([]Daemon, error) {
	ds, err := l.startFRR(ctx, e, []string{"zebra", "staticd"})
	if err != nil {
		return ds, err
	}
	dir := l.edgeDir(e.Node)
	conf, outFile, sock := filepath.Join(dir, "gobgpd.toml"), filepath.Join(dir, "gobgpd.out"), l.goBGPSocket(e.Node)
	cmd := Exec(l.Namespace(e.Node), l.st.Tools.GoBGPD, "-f", conf, "--api-hosts", "unix://"+sock,
		"--pprof-disable", "--metrics-path", "", "--log-level", "info")
	pid, err := startDetached(ctx, cmd, outFile, nil, func(ctx context.Context) error {
		if err := waitFiles(ctx, 10*time.Second, sock); err != nil {
			return err
		}
		return l.waitZebraClient(ctx, e.Node, 10*time.Second)
	})
	if pid != 0 {
		ds = append(ds, Daemon{Node: e.Node, Name: "gobgpd", PID: pid, Match: conf})
	}
	if err != nil {
		return ds, fmt.Errorf("start gobgpd on %s: %w%s", e.Node, err, logTail(outFile))
	}
	return ds, nil
}

// waitZebraClient waits until node's zebra has gobgpd as its bgp client:
// until then gobgpd's routes would not reach the FIB.
func (l *Lab) waitZebraClient(ctx context.Context, node string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		out, err := l.Vtysh(ctx, node, "show zebra client summary")
		if err == nil && strings.Contains(out, "\nbgp ") {
			return nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("gobgpd is no client of zebra after %s (show zebra client summary: %q, %v)", d, strings.TrimSpace(out), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// goBGPClient connects to node's gobgpd API.
func (l *Lab) goBGPClient(ctx context.Context, node string) (api.GobgpApiClient, func(), error) {
	//nolint:staticcheck // grpc 1.56 has no NewClient
	conn, err := grpc.DialContext(ctx, "unix://"+l.goBGPSocket(node), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, fmt.Errorf("connect to gobgpd on %s: %w", node, err)
	}
	return api.NewGobgpApiClient(conn), func() { conn.Close() }, nil
}

// goBGPSessions reads a gobgpd edge's neighbors from its API.
func (l *Lab) goBGPSessions(ctx context.Context, node string) ([]SessionStatus, error) {
	c, done, err := l.goBGPClient(ctx, node)
	if err != nil {
		return nil, err
	}
	defer done()
	stream, err := c.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: true})
	if err != nil {
		return nil, fmt.Errorf("gobgpd on %s: list peers: %w", node, err)
	}
	var out []SessionStatus
	for {
		r, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("gobgpd on %s: list peers: %w", node, err)
		}
		out = append(out, goBGPSession(node, r.Peer))
	}
	sortSessions(out)
	return out, nil
}

// goBGPSession turns a gobgpd peer into a SessionStatus, with FRR's names
// of the states and families. gobgpd counts a peer's accepted prefixes
// before its import policy, which is global: Received holds the refused
// ones too.
func goBGPSession(node string, p *api.Peer) SessionStatus {
	s := SessionStatus{Node: node}
	if p.Conf != nil {
		s.Peer, _ = netip.ParseAddr(p.Conf.NeighborAddress)
		s.RemoteAS = p.Conf.PeerAsn
	}
	if p.State != nil {
		s.State = map[api.PeerState_SessionState]string{
			api.PeerState_UNKNOWN: "Unknown", api.PeerState_IDLE: "Idle", api.PeerState_CONNECT: "Connect",
			api.PeerState_ACTIVE: "Active", api.PeerState_OPENSENT: "OpenSent", api.PeerState_OPENCONFIRM: "OpenConfirm",
			api.PeerState_ESTABLISHED: "Established",
		}[p.State.SessionState]
	}
	if s.Established() && p.Timers != nil && p.Timers.State != nil && p.Timers.State.Uptime != nil {
		s.Uptime = time.Since(p.Timers.State.Uptime.AsTime()).Round(time.Second).String()
	}
	for _, af := range p.AfiSafis {
		if af.Config == nil || af.Config.Family == nil || af.State == nil {
			continue
		}
		name := map[api.Family_Afi]string{api.Family_AFI_IP: "ipv4Unicast", api.Family_AFI_IP6: "ipv6Unicast"}[af.Config.Family.Afi]
		if name == "" || af.Config.Family.Safi != api.Family_SAFI_UNICAST {
			continue
		}
		if s.Received == nil {
			s.Received, s.Sent = map[string]int{}, map[string]int{}
		}
		s.Received[name], s.Sent[name] = int(af.State.Accepted), int(af.State.Advertised)
	}
	return s
}
