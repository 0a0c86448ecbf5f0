package bgplab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	api "github.com/osrg/gobgp/v3/api"
	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	gobgp "github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cutover/cutover/bgp"
	"github.com/cutover/cutover/lab"
)

// reference is the yardstick of the timings: a bare embedded GoBGP
// server handed many paths per call (AddPathStream), with none of the
// speaker's diffing, limits, policy or graceful restart. Bench runs it
// beside the speaker so that both meet the same machine load.
type reference struct {
	srv       *server.BgpServer
	conn      *grpc.ClientConn
	client    api.GobgpApiClient
	dir       string
	peer      netip.Addr
	announced map[netip.Prefix]bgp.Route
}

var _ bgp.Speaker = (*reference)(nil)

func newReference(ctx context.Context, t lab.Topology) (*reference, error) {
	dir, err := os.MkdirTemp("", "cutover-bgp-ref-")
	if err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "gobgp.sock")
	srv := server.NewBgpServer(server.GrpcListenAddress("unix://"+sock), server.LoggerOption(quiet{}))
	go srv.Serve()
	r := &reference{srv: srv, dir: dir, peer: t.EdgeCtl4, announced: map[netip.Prefix]bgp.Route{}}
	fail := func(err error) (*reference, error) {
		r.Close()
		return nil, fmt.Errorf("reference speaker: %w", err)
	}
	if err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{Asn: t.ControllerAS, RouterId: t.Ctl4.String(), ListenPort: -1}}); err != nil {
		return fail(err)
	}
	fams := []*api.AfiSafi{
		{Config: &api.AfiSafiConfig{Family: &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}, Enabled: true}},
		{Config: &api.AfiSafiConfig{Family: &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}, Enabled: true}},
	}
	if err := srv.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: t.EdgeCtl4.String(), PeerAsn: t.EdgeAS},
		Transport: &api.Transport{LocalAddress: t.Ctl4.String()},
		Timers:    &api.Timers{Config: &api.TimersConfig{HoldTime: 9, KeepaliveInterval: 3, ConnectRetry: 3}},
		AfiSafis:  fams,
	}}); err != nil {
		return fail(err)
	}
	if r.conn, err = grpc.DialContext(ctx, "unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithBlock()); err != nil {
		return fail(err)
	}
	r.client = api.NewGobgpApiClient(r.conn)
	return r, nil
}

func (r *reference) stream(ctx context.Context, rs []bgp.Route, withdraw bool) error {
	origin, _ := gobgp.NewPathAttributeOrigin(gobgp.BGP_ORIGIN_ATTR_TYPE_IGP).Serialize()
	aspath, _ := gobgp.NewPathAttributeAsPath(nil).Serialize()
	for i := 0; i < len(rs); i += 5000 {
		st, err := r.client.AddPathStream(ctx)
		if err != nil {
			return err
		}
		var paths []*api.Path
		for _, rt := range rs[i:min(i+5000, len(rs))] {
			nh, _ := gobgp.NewPathAttributeNextHop(rt.NextHop.String()).Serialize()
			fam := &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
			if !rt.Prefix.Addr().Is4() {
				fam.Afi = api.Family_AFI_IP6
			}
			nb := (rt.Prefix.Bits() + 7) / 8
			nlri := append([]byte{byte(rt.Prefix.Bits())}, rt.Prefix.Addr().AsSlice()[:nb]...)
			paths = append(paths, &api.Path{Family: fam, NlriBinary: nlri, PattrsBinary: [][]byte{origin, aspath, nh}, IsWithdraw: withdraw})
		}
		if err := st.Send(&api.AddPathStreamRequest{TableType: api.TableType_GLOBAL, Paths: paths}); err != nil {
			return err
		}
		if _, err := st.CloseAndRecv(); err != nil {
			return err
		}
	}
	return nil
}

// Set announces every desired route (no diff) and withdraws the rest.
func (r *reference) Set(ctx context.Context, desired []bgp.Route) error {
	want := map[netip.Prefix]bool{}
	for _, rt := range desired {
		want[rt.Prefix] = true
	}
	var del []bgp.Route
	for p, rt := range r.announced {
		if !want[p] {
			del = append(del, rt)
		}
	}
	if err := r.stream(ctx, desired, false); err != nil {
		return err
	}
	if err := r.stream(ctx, del, true); err != nil {
		return err
	}
	r.announced = map[netip.Prefix]bgp.Route{}
	for _, rt := range desired {
		r.announced[rt.Prefix] = rt
	}
	return nil
}

// Accepted reads the edge's mirror from the Adj-RIB-In.
func (r *reference) Accepted(ctx context.Context, want []bgp.Route) (bgp.Convergence, error) {
	have := map[netip.Prefix]bgp.Held{}
	for _, afi := range []api.Family_Afi{api.Family_AFI_IP, api.Family_AFI_IP6} {
		err := r.srv.ListPath(ctx, &api.ListPathRequest{
			TableType: api.TableType_ADJ_IN, Name: r.peer.String(),
			Family: &api.Family{Afi: afi, Safi: api.Family_SAFI_UNICAST}, EnableOnlyBinary: true,
		}, func(d *api.Destination) {
			p, err := netip.ParsePrefix(d.Prefix)
			if err != nil || len(d.Paths) == 0 {
				return
			}
			h := bgp.Held{Ours: true}
			for _, raw := range d.Paths[0].PattrsBinary {
				if len(raw) > 1 && gobgp.BGPAttrType(raw[1]) == gobgp.BGP_ATTR_TYPE_NEXT_HOP {
					var a gobgp.PathAttributeNextHop
					if a.DecodeFromBytes(raw) == nil {
						h.NextHop, _ = netip.AddrFromSlice(a.Value)
						h.NextHop = h.NextHop.Unmap()
					}
				}
				if len(raw) > 1 && gobgp.BGPAttrType(raw[1]) == gobgp.BGP_ATTR_TYPE_MP_REACH_NLRI {
					var a gobgp.PathAttributeMpReachNLRI
					if a.DecodeFromBytes(raw) == nil {
						h.NextHop, _ = netip.AddrFromSlice(a.Nexthop)
					}
				}
			}
			have[p] = h
		})
		if err != nil {
			return bgp.Convergence{}, err
		}
	}
	return bgp.Convergence{Want: len(want), Peers: []bgp.PeerConvergence{bgp.Compare(r.peer, want, have)}}, nil
}

func (r *reference) Peers(context.Context) ([]bgp.PeerStatus, error) { return nil, nil }

// Refresh implements bgp.Refresher, as the speaker does: a soft reset out.
func (r *reference) Refresh(ctx context.Context, peer netip.Addr) error {
	return r.srv.ResetPeer(ctx, &api.ResetPeerRequest{Address: peer.String(), Soft: true, Direction: api.ResetPeerRequest_OUT})
}

func (r *reference) Close() error {
	if r.conn != nil {
		r.conn.Close()
	}
	r.srv.Stop()
	return os.RemoveAll(r.dir)
}

// quiet is a GoBGP logger that drops everything.
type quiet struct{}

func (quiet) Panic(msg string, _ gobgplog.Fields) { panic(msg) }
func (quiet) Fatal(string, gobgplog.Fields)       {}
func (quiet) Error(string, gobgplog.Fields)       {}
func (quiet) Warn(string, gobgplog.Fields)        {}
func (quiet) Info(string, gobgplog.Fields)        {}
func (quiet) Debug(string, gobgplog.Fields)       {}
func (quiet) SetLevel(gobgplog.LogLevel)          {}
func (quiet) GetLevel() gobgplog.LogLevel         { return gobgplog.PanicLevel }
