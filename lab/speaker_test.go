package lab

// A minimal embedded GoBGP speaker that the tests run inside the ctl
// namespace (the test binary re-executed with `ip netns exec`), to prove the
// edge's policy toward the controller with a real session. It is not the
// project's speaker (bgp/): it only has to announce and read Adj-RIB-In.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"github.com/osrg/gobgp/v3/pkg/server"
	"google.golang.org/protobuf/types/known/anypb"
)

// speakerEnv carries the JSON speakerConfig to the re-executed test binary.
const speakerEnv = "CUTOVER_LAB_TEST_SPEAKER"

type speakerRoute struct {
	Prefix  netip.Prefix `json:"prefix"`
	NextHop netip.Addr   `json:"next_hop"`
}

type speakerConfig struct {
	RouterID netip.Addr     `json:"router_id"`
	LocalAS  uint32         `json:"local_as"`
	Peer     netip.Addr     `json:"peer"`
	PeerAS   uint32         `json:"peer_as"`
	Announce []speakerRoute `json:"announce"`
	// WantMirrored is how many paths to wait for in Adj-RIB-In.
	WantMirrored int `json:"want_mirrored"`
}

// speakerEvent is one line the speaker prints.
type speakerEvent struct {
	Event    string         `json:"event"` // "established", "mirrored", "error"
	Mirrored []speakerRoute `json:"mirrored,omitempty"`
	Error    string         `json:"error,omitempty"`
}

// runTestSpeaker runs the speaker: peer, announce, report the mirrored
// paths, then hold the session until stdin closes and exit without
// withdrawing (the edge drops the routes with the session).
func runTestSpeaker() int {
	enc := json.NewEncoder(os.Stdout)
	fail := func(err error) int {
		enc.Encode(speakerEvent{Event: "error", Error: err.Error()})
		return 1
	}
	var cfg speakerConfig
	if err := json.Unmarshal([]byte(os.Getenv(speakerEnv)), &cfg); err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lg := gobgplog.NewDefaultLogger()
	lg.SetLevel(gobgplog.ErrorLevel)
	s := server.NewBgpServer(server.LoggerOption(lg))
	go s.Serve()
	if err := s.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: cfg.LocalAS, RouterId: cfg.RouterID.String(), ListenPort: -1,
	}}); err != nil {
		return fail(err)
	}
	fams := []*api.Family{
		{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST},
		{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST},
	}
	var afis []*api.AfiSafi
	for _, f := range fams {
		afis = append(afis, &api.AfiSafi{Config: &api.AfiSafiConfig{Family: f, Enabled: true}})
	}
	if err := s.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf:     &api.PeerConf{NeighborAddress: cfg.Peer.String(), PeerAsn: cfg.PeerAS},
		Timers:   &api.Timers{Config: &api.TimersConfig{ConnectRetry: 1, HoldTime: 9, KeepaliveInterval: 3}},
		AfiSafis: afis,
	}}); err != nil {
		return fail(err)
	}
	for {
		state := api.PeerState_UNKNOWN
		s.ListPeer(ctx, &api.ListPeerRequest{Address: cfg.Peer.String()}, func(p *api.Peer) {
			state = p.State.SessionState
		})
		if state == api.PeerState_ESTABLISHED {
			break
		}
		if ctx.Err() != nil {
			return fail(fmt.Errorf("session to %s not established: %s", cfg.Peer, state))
		}
		time.Sleep(50 * time.Millisecond)
	}
	enc.Encode(speakerEvent{Event: "established"})
	for _, r := range cfg.Announce {
		p, err := apiPath(r)
		if err != nil {
			return fail(err)
		}
		if _, err := s.AddPath(ctx, &api.AddPathRequest{Path: p}); err != nil {
			return fail(err)
		}
	}
	var mirrored []speakerRoute
	deadline := time.Now().Add(20 * time.Second)
	for {
		mirrored = mirrored[:0]
		for _, f := range fams {
			s.ListPath(ctx, &api.ListPathRequest{TableType: api.TableType_ADJ_IN, Name: cfg.Peer.String(), Family: f},
				func(d *api.Destination) {
					for _, p := range d.Paths {
						mirrored = append(mirrored, speakerRoute{Prefix: netip.MustParsePrefix(d.Prefix), NextHop: pathNextHop(p)})
					}
				})
		}
		if len(mirrored) >= cfg.WantMirrored || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	enc.Encode(speakerEvent{Event: "mirrored", Mirrored: mirrored})
	io.Copy(io.Discard, bufio.NewReader(os.Stdin))
	return 0
}

func apiPath(r speakerRoute) (*api.Path, error) {
	nlri, err := anypb.New(&api.IPAddressPrefix{Prefix: r.Prefix.Addr().String(), PrefixLen: uint32(r.Prefix.Bits())})
	if err != nil {
		return nil, err
	}
	origin, err := anypb.New(&api.OriginAttribute{Origin: 0})
	if err != nil {
		return nil, err
	}
	fam := &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	var nh *anypb.Any
	if r.Prefix.Addr().Is4() {
		nh, err = anypb.New(&api.NextHopAttribute{NextHop: r.NextHop.String()})
	} else {
		fam = &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
		nh, err = anypb.New(&api.MpReachNLRIAttribute{Family: fam, NextHops: []string{r.NextHop.String()}, Nlris: []*anypb.Any{nlri}})
	}
	if err != nil {
		return nil, err
	}
	return &api.Path{Family: fam, Nlri: nlri, Pattrs: []*anypb.Any{origin, nh}}, nil
}

func pathNextHop(p *api.Path) netip.Addr {
	for _, a := range p.Pattrs {
		var nh api.NextHopAttribute
		if a.UnmarshalTo(&nh) == nil {
			return netip.MustParseAddr(nh.NextHop)
		}
		var mp api.MpReachNLRIAttribute
		if a.UnmarshalTo(&mp) == nil && len(mp.NextHops) > 0 {
			return netip.MustParseAddr(mp.NextHops[0])
		}
	}
	return netip.Addr{}
}
