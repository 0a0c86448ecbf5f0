package gobgp

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// Why a gRPC socket inside an embedded speaker: GoBGP's Go API takes one
// path per AddPath or DeletePath call, and every call is a round trip to
// GoBGP's server goroutine. Its only bulk entry point, AddPathStream, exists
// on the gRPC API alone; it hands GoBGP thousands of paths (announcements
// and withdrawals alike) in one server operation. Against the lab's FRR
// edge, 50,000 routes took about 2-4 s from the Go API (one call per path,
// or 4 callers at once) and 0.85 s through the stream (1.6 s until the
// edge's FIB held them all), so the speaker serves GoBGP's gRPC API on a
// unix socket in a private directory, accepts connections from its own
// process only, removes the socket once connected, and streams paths to it.
// Everything else uses the Go API.

// batchSize is how many paths go to GoBGP in one stream message: large
// enough to amortise the round trip, small enough to stay far below gRPC's
// 4 MiB message limit (a /32 path is about 40 bytes).
const batchSize = 4000

// apiSocket is GoBGP's gRPC API on a private unix socket.
type apiSocket struct {
	dir    string
	conn   *grpc.ClientConn
	client api.GobgpApiClient
}

// newAPISocket prepares a socket path in a fresh private directory and
// returns the server options that make GoBGP serve it.
func newAPISocket() (*apiSocket, []server.ServerOption, error) {
	dir, err := os.MkdirTemp("", "cutover-bgp-")
	if err != nil {
		return nil, nil, fmt.Errorf("create api socket dir: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("create api socket dir: %w", err)
	}
	a := &apiSocket{dir: dir}
	if len(a.path()) > maxSocketPath {
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("api socket path %s: longer than %d bytes; set TMPDIR to a shorter directory", a.path(), maxSocketPath)
	}
	return a, []server.ServerOption{
		server.GrpcListenAddress("unix://" + a.path()),
		server.GrpcOption([]grpc.ServerOption{grpc.Creds(ownProcessOnly{})}),
	}, nil
}

func (a *apiSocket) path() string { return filepath.Join(a.dir, "gobgp.sock") }

// maxSocketPath is the longest unix socket path (sun_path) with room to
// spare.
const maxSocketPath = 100

// dial connects to the socket once GoBGP listens on it, then removes the
// socket's directory: the connection stays, nothing can connect any more,
// and a crash leaves nothing behind.
func (a *apiSocket) dial(ctx context.Context) error {
	conn, err := grpc.DialContext(ctx, "unix://"+a.path(),
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithBlock())
	if err != nil {
		return fmt.Errorf("connect to gobgp api socket: %w", err)
	}
	a.conn = conn
	a.client = api.NewGobgpApiClient(conn)
	if err := os.RemoveAll(a.dir); err != nil {
		return fmt.Errorf("remove api socket: %w", err)
	}
	return nil
}

func (a *apiSocket) close() {
	if a.conn != nil {
		a.conn.Close()
	}
	os.RemoveAll(a.dir)
}

// stream hands paths to GoBGP in one AddPathStream call.
func (a *apiSocket) stream(ctx context.Context, paths []*api.Path) error {
	st, err := a.client.AddPathStream(ctx)
	if err != nil {
		return err
	}
	if err := st.Send(&api.AddPathStreamRequest{TableType: api.TableType_GLOBAL, Paths: paths}); err != nil {
		st.CloseSend()
		return err
	}
	_, err = st.CloseAndRecv()
	return err
}

// sendLocked announces (or withdraws) cs in batches, one stream call each,
// and records every batch GoBGP took in s.announced, so that an error
// leaves s.announced equal to what GoBGP holds.
func (s *speaker) sendLocked(ctx context.Context, cs []change, withdraw bool) error {
	verb := "announce"
	if withdraw {
		verb = "withdraw"
	}
	paths := make([]*api.Path, 0, min(len(cs), batchSize))
	for start := 0; start < len(cs); start += batchSize {
		chunk := cs[start:min(start+batchSize, len(cs))]
		paths = paths[:0]
		for _, c := range chunk {
			paths = append(paths, s.enc.path(c.prefix, c.id, withdraw))
		}
		if err := s.api.stream(ctx, paths); err != nil {
			return fmt.Errorf("%s %d routes (done %d of %d): %w", verb, len(chunk), start, len(cs), err)
		}
		for _, c := range chunk {
			if withdraw {
				delete(s.announced, c.prefix)
			} else {
				s.announced[c.prefix] = entry{id: c.id, epoch: s.epoch}
			}
		}
	}
	return nil
}

// ownProcessOnly are gRPC transport credentials that accept connections
// from this process only (checked with SO_PEERCRED), so that the socket,
// already in a directory only its owner can enter, gives no one else a
// way into the speaker.
type ownProcessOnly struct{}

type ownProcessInfo struct{ credentials.CommonAuthInfo }

func (ownProcessInfo) AuthType() string { return "own-process" }

func (ownProcessOnly) ClientHandshake(_ context.Context, _ string, c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return c, ownProcessInfo{credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity}}, nil
}

func (ownProcessOnly) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	if err := checkPeerIsSelf(c); err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, ownProcessInfo{credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity}}, nil
}

func (ownProcessOnly) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "own-process"}
}
func (ownProcessOnly) Clone() credentials.TransportCredentials { return ownProcessOnly{} }
func (ownProcessOnly) OverrideServerName(string) error         { return nil }
