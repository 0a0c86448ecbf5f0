package bmp

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	gobmp "github.com/osrg/gobgp/v3/pkg/packet/bmp"

	"github.com/cutover/cutover/bgp"
)

// speakerStub answers for the peers the speaker judges.
type speakerStub struct {
	peers []bgp.PeerConvergence
	calls int
}

func (s *speakerStub) Accepted(_ context.Context, want []bgp.Route) (bgp.Convergence, error) {
	s.calls++
	return bgp.Convergence{Want: len(want), Peers: s.peers}, nil
}

func TestObserver(t *testing.T) {
	s := testStation(t, Options{})
	// edgeAddr streams over BMP and holds the route; 10.255.1.1 had a BMP
	// session that ended; 10.255.2.1 never opened one.
	ps := dial(t, s, "10.0.0.9:40000")
	ps.send(initiation("edge1"), peerUp(ctlAddr, ctlAS, edgeAddr), announce(post(ctlAddr, ctlAS), "192.0.2.1", nil, "10.64.0.1/32"))
	gone := dial(t, s, "10.0.0.10:40000")
	gone.send(initiation("edge2"), peerUp(ctlAddr, ctlAS, "10.255.1.1"))
	gone.writeRaw(serialize(t, termination(gobmp.BMP_TERM_REASON_ADMIN, "bye")))
	gone.wait()

	want := []bgp.Route{route("10.64.0.1/32", "192.0.2.1")}
	sentOK := func(a string) bgp.PeerConvergence {
		return bgp.PeerConvergence{Peer: ip(a), Proof: "sent, no BMP session", Matched: 1}
	}
	cases := []struct {
		name    string
		peers   []bgp.PeerConfig
		speaker []bgp.PeerConvergence
		want    string
		prefix  bool // want is the start of what Accepted says (a time follows)
		done    bool
		calls   int
	}{
		{
			name:  "bmp peer streaming",
			peers: []bgp.PeerConfig{{Address: ip(edgeAddr), Observe: bgp.ProofBMP, ObserveFallback: bgp.ProofSent}},
			want:  "10.255.0.1 by bmp adj-rib-in post-policy 1/1",
			done:  true,
		},
		{
			name:    "no BMP session ever: the fallback answers",
			peers:   []bgp.PeerConfig{{Address: ip("10.255.2.1"), Observe: bgp.ProofBMP, ObserveFallback: bgp.ProofSent}},
			speaker: []bgp.PeerConvergence{sentOK("10.255.2.1")},
			want:    "10.255.2.1 by sent, no BMP session 1/1",
			done:    true,
			calls:   1,
		},
		{
			name:  "no BMP session and no fallback",
			peers: []bgp.PeerConfig{{Address: ip("10.255.2.1"), Observe: bgp.ProofBMP}},
			want:  "10.255.2.1 by bmp 0/1: no BMP session from this router",
		},
		{
			name:    "BMP session gone: waits for it, no fallback",
			peers:   []bgp.PeerConfig{{Address: ip("10.255.1.1"), Observe: bgp.ProofBMP, ObserveFallback: bgp.ProofSent}},
			speaker: []bgp.PeerConvergence{sentOK("10.255.1.1")},
			want:    "10.255.1.1 by bmp 0/1: BMP session down since ",
			prefix:  true,
		},
		{
			name: "mixed, in peer order; unobserved left out",
			peers: []bgp.PeerConfig{
				{Address: ip("10.255.3.1"), Observe: bgp.ProofMirror},
				{Address: ip("10.255.4.1")},
				{Address: ip(edgeAddr), Observe: bgp.ProofBMP},
			},
			speaker: []bgp.PeerConvergence{{Peer: ip("10.255.3.1"), Proof: "mirror", Missing: []netip.Prefix{pfx("10.64.0.1/32")}}},
			want:    "10.255.3.1 by mirror 0/1 (missing 10.64.0.1/32); 10.255.0.1 by bmp adj-rib-in post-policy 1/1",
			calls:   1,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sp := &speakerStub{peers: tc.speaker}
			c, err := Observer{Station: s, Speaker: sp, Peers: tc.peers}.Accepted(t.Context(), want)
			if err != nil {
				t.Fatal(err)
			}
			got := c.String()
			if tc.prefix && !strings.HasPrefix(got, tc.want) || !tc.prefix && got != tc.want {
				t.Errorf("Accepted = %q, want %q", got, tc.want)
			}
			if c.Done() != tc.done {
				t.Errorf("Done = %v, want %v", c.Done(), tc.done)
			}
			if sp.calls != tc.calls {
				t.Errorf("speaker asked %d times, want %d", sp.calls, tc.calls)
			}
		})
	}

	t.Run("a peer the speaker does not judge", func(t *testing.T) {
		_, err := Observer{Station: s, Speaker: &speakerStub{}, Peers: []bgp.PeerConfig{{Address: ip("10.255.3.1"), Observe: bgp.ProofMirror}}}.Accepted(t.Context(), want)
		if err == nil || err.Error() != "peer 10.255.3.1: the speaker does not judge it" {
			t.Errorf("err = %v", err)
		}
	})
}
