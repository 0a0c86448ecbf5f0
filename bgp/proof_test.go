package bgp

import (
	"net/netip"
	"testing"
)

func TestParseProof(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Proof
		err  string
	}{
		{"bmp", ProofBMP, ""},
		{"mirror", ProofMirror, ""},
		{"true", ProofMirror, ""},
		{"sent", ProofSent, ""},
		{"false", ProofNone, ""},
		{"none", ProofNone, ""},
		{"BMP", ProofNone, "want bmp, mirror, sent or false"},
		{"", ProofNone, "want bmp, mirror, sent or false"},
	} {
		got, err := ParseProof(tc.in)
		if got != tc.want || (err == nil) != (tc.err == "") || err != nil && err.Error() != tc.err {
			t.Errorf("ParseProof(%q) = %q, %v; want %q, %q", tc.in, got, err, tc.want, tc.err)
		}
	}
	if !ProofSent.Weak() || ProofBMP.Weak() || ProofNone.Observed() || !ProofMirror.Observed() || ProofNone.String() != "false" {
		t.Error("Weak, Observed or String disagree with the proofs' meaning")
	}
}

func TestConvergenceString(t *testing.T) {
	a, b := netip.MustParseAddr("10.255.0.1"), netip.MustParseAddr("10.255.0.5")
	p := netip.MustParsePrefix
	c := Convergence{Want: 100, Peers: []PeerConvergence{
		{Peer: a, Proof: "bmp loc-rib", Matched: 100},
		{Peer: b, Proof: "sent, no BMP session", Reason: "waiting for a KEEPALIVE after the UPDATEs"},
	}}
	if got, want := c.String(), "10.255.0.1 by bmp loc-rib 100/100; 10.255.0.5 by sent, no BMP session 0/100: waiting for a KEEPALIVE after the UPDATEs"; got != want {
		t.Errorf("String = %q\nwant     %q", got, want)
	}
	if got, want := c.Pending(), "10.255.0.5 by sent, no BMP session 0/100: waiting for a KEEPALIVE after the UPDATEs"; got != want {
		t.Errorf("Pending = %q\nwant      %q", got, want)
	}
	if c.Done() {
		t.Error("Done with a peer that has a reason")
	}
	if got, want := c.Proofs(), "10.255.0.1 by bmp loc-rib; 10.255.0.5 by sent, no BMP session"; got != want {
		t.Errorf("Proofs = %q, want %q", got, want)
	}
	c.Peers[1] = PeerConvergence{Peer: b, Proof: "mirror", Matched: 97, Missing: []netip.Prefix{p("10.64.0.1/32"), p("10.64.0.2/32")}}
	if got, want := c.Pending(), "10.255.0.5 by mirror 97/100 (missing 10.64.0.1/32, 10.64.0.2/32 and 1 more)"; got != want {
		t.Errorf("Pending = %q\nwant      %q", got, want)
	}
	c.Peers[1].Matched = 100
	if got := c.Pending(); got != c.String() || !c.Done() {
		t.Errorf("all done: Pending = %q, want String %q", got, c.String())
	}
}
