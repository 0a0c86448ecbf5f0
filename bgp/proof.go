package bgp

import (
	"fmt"
	"strings"
)

// Proof is how the controller learns that a peer holds its routes: the
// bgp gate passes when every observed peer does, by the proof it gets.
type Proof string

// Proofs, strongest first.
const (
	// ProofNone: the peer is not observed; its view counts for nothing.
	ProofNone Proof = ""
	// ProofBMP: the router streams its tables to the controller's BMP
	// station (RFC 7854, Loc-RIB per RFC 9069 where offered); the gate
	// reads the router's Loc-RIB, or the post-policy Adj-RIB-In of the
	// controller's session. Works with any router that speaks BMP.
	ProofBMP Proof = "bmp"
	// ProofMirror: the router sends its best paths for the controller's
	// prefixes back over the same session with the next-hop unchanged
	// (FRR: attribute-unchanged next-hop). eBGP only.
	ProofMirror Proof = "mirror"
	// ProofSent is the weak proof: the UPDATEs were sent, and the session
	// stayed established until a KEEPALIVE from the peer arrived after
	// them. It shows the peer did not reject the session, not that it
	// installed the routes.
	ProofSent Proof = "sent"
)

// Proofs lists the proofs a peer can be given, in the order help texts
// list them ("false" is ProofNone).
var Proofs = []Proof{ProofBMP, ProofMirror, ProofSent}

// NoBMPSession ends the PeerConvergence.Proof of a bmp peer judged by its
// ObserveFallback, e.g. "sent, no BMP session".
const NoBMPSession = ", no BMP session"

// DefaultBMPPort is the port the controller's BMP station listens on
// when none is given.
const DefaultBMPPort = 11019

// ParseProof parses a proof as a runbook writes it: bmp, mirror, sent,
// or false (not observed). true means mirror, what observe: true meant
// before there was a choice.
func ParseProof(s string) (Proof, error) {
	switch strings.TrimSpace(s) {
	case "bmp":
		return ProofBMP, nil
	case "mirror", "true":
		return ProofMirror, nil
	case "sent":
		return ProofSent, nil
	case "false", "none":
		return ProofNone, nil
	}
	return ProofNone, fmt.Errorf("want bmp, mirror, sent or false")
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseProof.
func (p *Proof) UnmarshalText(b []byte) error {
	v, err := ParseProof(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// MarshalText writes the proof as ParseProof reads it.
func (p Proof) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// String is the proof's name; "false" for ProofNone.
func (p Proof) String() string {
	if p == ProofNone {
		return "false"
	}
	return string(p)
}

// Observed reports whether the peer's view counts for the bgp gate.
func (p Proof) Observed() bool { return p != ProofNone }

// Weak reports whether the proof shows only that the routes were sent.
func (p Proof) Weak() bool { return p == ProofSent }
