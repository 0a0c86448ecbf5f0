package bmp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"github.com/osrg/gobgp/v3/pkg/server"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/cutover/cutover/bgp"
)

// nopLogger silences GoBGP's own logging.
type nopLogger struct{}

func (nopLogger) Panic(msg string, _ gobgplog.Fields) { panic(msg) }
func (nopLogger) Fatal(string, gobgplog.Fields)       {}
func (nopLogger) Error(string, gobgplog.Fields)       {}
func (nopLogger) Warn(string, gobgplog.Fields)        {}
func (nopLogger) Info(string, gobgplog.Fields)        {}
func (nopLogger) Debug(string, gobgplog.Fields)       {}
func (nopLogger) SetLevel(gobgplog.LogLevel)          {}
func (nopLogger) GetLevel() gobgplog.LogLevel         { return gobgplog.PanicLevel }

var (
	familyV4 = &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	familyV6 = &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
)

// startGoBGP starts a GoBGP server; port -1 does not listen.
func startGoBGP(t *testing.T, as uint32, id string, listen string, port int32) *server.BgpServer {
	t.Helper()
	srv := server.NewBgpServer(server.LoggerOption(nopLogger{}))
	go srv.Serve()
	g := &api.Global{Asn: as, RouterId: id, ListenPort: port}
	if listen != "" {
		g.ListenAddresses = []string{listen}
	}
	if err := srv.StartBgp(context.Background(), &api.StartBgpRequest{Global: g}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return srv
}

func addNeighbor(t *testing.T, srv *server.BgpServer, addr string, as uint32, tr *api.Transport) {
	t.Helper()
	afi := func(f *api.Family) *api.AfiSafi {
		return &api.AfiSafi{Config: &api.AfiSafiConfig{Family: f, Enabled: true}}
	}
	n := &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: addr, PeerAsn: as},
		Transport: tr,
		Timers:    &api.Timers{Config: &api.TimersConfig{HoldTime: 9, KeepaliveInterval: 3, ConnectRetry: 1}},
		AfiSafis:  []*api.AfiSafi{afi(familyV4), afi(familyV6)},
	}
	if err := srv.AddPeer(context.Background(), &api.AddPeerRequest{Peer: n}); err != nil {
		t.Fatal(err)
	}
}

func apiPath(t *testing.T, r bgp.Route, withdraw bool) *api.Path {
	t.Helper()
	nlri, err := anypb.New(&api.IPAddressPrefix{Prefix: r.Prefix.Addr().String(), PrefixLen: uint32(r.Prefix.Bits())})
	if err != nil {
		t.Fatal(err)
	}
	origin, _ := anypb.New(&api.OriginAttribute{Origin: 0})
	fam := familyV4
	var nh *anypb.Any
	if r.Prefix.Addr().Is4() {
		nh, _ = anypb.New(&api.NextHopAttribute{NextHop: r.NextHop.String()})
	} else {
		fam = familyV6
		nh, _ = anypb.New(&api.MpReachNLRIAttribute{Family: fam, NextHops: []string{r.NextHop.String()}, Nlris: []*anypb.Any{nlri}})
	}
	return &api.Path{Family: fam, Nlri: nlri, Pattrs: []*anypb.Any{origin, nh}, IsWithdraw: withdraw}
}

// listen opens a station listener on 127.0.0.1 and serves it until the test ends.
func listenStation(t *testing.T, s *Station) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return netip.MustParseAddrPort(ln.Addr().String())
}

// TestGoBGP runs the real thing in-process: a GoBGP "controller" announces
// routes over eBGP to a GoBGP "edge" that streams BMP to two stations, one
// with post-policy Adj-RIB-In, one with its Loc-RIB.
func TestGoBGP(t *testing.T) {
	if testing.Short() {
		t.Skip("starts GoBGP servers")
	}
	// Two edges, one per monitoring policy: GoBGP's BMP clients of one
	// server serialize the same OPEN messages concurrently (a data race
	// inside GoBGP), so each edge streams to one station only.
	const ctl = "127.0.0.1"
	post, loc := testStation(t, Options{}), testStation(t, Options{})
	lnp, err := net.Listen("tcp", ctl+":0")
	if err != nil {
		t.Fatal(err)
	}
	ctlPort := lnp.Addr().(*net.TCPAddr).Port
	lnp.Close()
	controller := startGoBGP(t, ctlAS, "10.0.0.1", ctl, int32(ctlPort))
	edges := []struct {
		addr   string // the edge's end of the session: what Holds is asked about
		st     *Station
		policy api.AddBmpRequest_MonitoringPolicy
	}{{"127.0.0.2", post, api.AddBmpRequest_POST}, {"127.0.0.3", loc, api.AddBmpRequest_LOCAL}}
	for i, e := range edges {
		addNeighbor(t, controller, e.addr, edgeAS, &api.Transport{PassiveMode: true})
		at := listenStation(t, e.st)
		srv := startGoBGP(t, edgeAS, fmt.Sprintf("10.0.0.%d", i+2), "", -1)
		err := srv.AddBmp(context.Background(), &api.AddBmpRequest{
			Address: at.Addr().String(), Port: uint32(at.Port()), Policy: e.policy, SysName: "edge",
		})
		if err != nil {
			t.Fatal(err)
		}
		// StopBgp rewrites the global config that GoBGP's BMP client reads
		// while it reports the withdrawn best paths (a race inside GoBGP):
		// end the BMP client, and wait until the station saw it go, first.
		t.Cleanup(func() {
			req := &api.DeleteBmpRequest{Address: at.Addr().String(), Port: uint32(at.Port())}
			if err := srv.DeleteBmp(context.Background(), req); err != nil {
				t.Errorf("DeleteBmp: %v", err)
				return
			}
			eventually(t, 20*time.Second, func() string {
				for _, r := range e.st.Routers() {
					if r.Up {
						return "BMP session still up after DeleteBmp"
					}
				}
				return ""
			})
		})
		addNeighbor(t, srv, ctl, ctlAS, &api.Transport{LocalAddress: e.addr, RemotePort: uint32(ctlPort)})
	}

	// GoBGP serializes a peer's received OPEN both for its post-policy
	// watchers on every UPDATE and in the BMP client's Peer Up, without a
	// lock (a race inside GoBGP): announce only once Peer Up is through.
	for _, e := range edges {
		eventually(t, 30*time.Second, func() string {
			for _, r := range e.st.Routers() {
				for _, p := range r.Peers {
					if p.Up && p.LocalAddress == ip(e.addr) {
						return ""
					}
				}
			}
			return fmt.Sprintf("no Peer Up from edge %s: %+v", e.addr, e.st.Routers())
		})
	}

	want := []bgp.Route{
		route("10.64.0.1/32", "192.0.2.1"),
		route("10.64.0.2/32", "192.0.2.1"),
		route("2001:db8:64::1/128", "2001:db8::1"),
	}
	for _, r := range want {
		if _, err := controller.AddPath(context.Background(), &api.AddPathRequest{Path: apiPath(t, r, false)}); err != nil {
			t.Fatal(err)
		}
	}
	check := func(s *Station, source string, want []bgp.Route) {
		t.Helper()
		edge := edges[0].addr
		if s == loc {
			edge = edges[1].addr
		}
		eventually(t, 30*time.Second, func() string {
			h := s.Holds(ip(edge), netip.Addr{}, want)
			if h.Done() && h.Source == source {
				return ""
			}
			return "Holds = " + h.String() + ", want done from " + source
		})
	}
	check(post, SourceAdjRIBIn, want)
	check(loc, SourceLocRIB, want)
	infos := post.Routers()
	if len(infos) != 1 || infos[0].SysName != "edge" || len(infos[0].Peers) != 1 || infos[0].Peers[0].LocalAddress != ip(edges[0].addr) || infos[0].Peers[0].AS != ctlAS {
		t.Errorf("Routers() = %+v", infos)
	}

	// Withdraw one IPv4 and the IPv6 route: both stations see them go.
	for _, r := range []bgp.Route{want[1], want[2]} {
		if err := controller.DeletePath(context.Background(), &api.DeletePathRequest{Family: apiPath(t, r, true).Family, Path: apiPath(t, r, true)}); err != nil {
			t.Fatal(err)
		}
	}
	after := []bgp.Route{want[0], gone("10.64.0.2/32"), gone("2001:db8:64::1/128")}
	check(post, SourceAdjRIBIn, after)
	check(loc, SourceLocRIB, after)
}
