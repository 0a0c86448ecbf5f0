package bgp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// ErrNoObserver is returned by WaitConverged when no peer is configured to
// observe (PeerConfig.Observe): nothing can prove that a peer accepted the
// routes, and the caller must not pretend it did. Peers' advertised counts
// (Speaker.Peers) only show what was sent, not what was installed.
var ErrNoObserver = errors.New("no observed peer: convergence cannot be proven (give a peer observe: bmp, mirror or sent)")

// ErrClosed is returned by a Speaker's methods after Close.
var ErrClosed = errors.New("speaker closed")

// MaxMissing is how many missing prefixes a PeerConvergence lists.
const MaxMissing = 10

// Held is what an observed peer holds for one prefix: the next-hop of its
// best path, and whether that path came from this speaker (the local AS is
// in its AS_PATH).
type Held struct {
	NextHop netip.Addr
	Ours    bool
}

// Compare judges one observed peer's view against want. A wanted route with
// a next-hop matches when the peer's best path for the prefix has that
// next-hop. A wanted route without a next-hop (Route{Prefix: p}) asks for a
// withdrawal: it matches when the peer holds no path for p from us.
// Missing lists the first MaxMissing prefixes that do not match, in want
// order.
func Compare(peer netip.Addr, want []Route, have map[netip.Prefix]Held) PeerConvergence {
	pc := PeerConvergence{Peer: peer}
	for _, r := range want {
		h, ok := have[r.Prefix]
		var match bool
		if r.NextHop.IsValid() {
			match = ok && h.NextHop == r.NextHop
		} else {
			match = !ok || !h.Ours
		}
		if match {
			pc.Matched++
		} else if len(pc.Missing) < MaxMissing {
			pc.Missing = append(pc.Missing, r.Prefix)
		}
	}
	return pc
}

// Withdrawals returns want-routes that ask every observed peer to hold no
// path from us for prefixes: Route{Prefix: p} for each p. Pass them to
// Accepted or WaitConverged, alone or appended to the announced routes.
func Withdrawals(prefixes []netip.Prefix) []Route {
	rs := make([]Route, len(prefixes))
	for i, p := range prefixes {
		rs[i] = Route{Prefix: p}
	}
	return rs
}

// String summarises the convergence for logs and errors, e.g.
// "10.255.0.1 by bmp loc-rib 1998/2000 (missing 10.64.0.10/32,
// 10.64.0.11/32)"; a peer that could not be judged says why.
func (c Convergence) String() string {
	if len(c.Peers) == 0 {
		return fmt.Sprintf("0 observed peers for %d routes", c.Want)
	}
	var b strings.Builder
	for i, p := range c.Peers {
		writePeer(&b, i, p)
		fmt.Fprintf(&b, " %d/%d", p.Matched, c.Want)
		if p.Reason != "" {
			b.WriteString(": " + p.Reason)
			continue
		}
		WriteMissing(&b, p.Missing, c.Want-p.Matched)
	}
	return b.String()
}

// Pending is like String, but lists only the peers that do not yet hold
// every wanted route: what a failed gate names.
func (c Convergence) Pending() string {
	p := Convergence{Want: c.Want}
	for _, pc := range c.Peers {
		if pc.Matched != c.Want || pc.Reason != "" {
			p.Peers = append(p.Peers, pc)
		}
	}
	if len(p.Peers) == 0 {
		return c.String()
	}
	return p.String()
}

// Proofs says by which proof each observed peer answered, e.g.
// "10.255.0.1 by bmp loc-rib; 10.255.0.5 by sent, no BMP session".
func (c Convergence) Proofs() string {
	var b strings.Builder
	for i, p := range c.Peers {
		writePeer(&b, i, p)
	}
	return b.String()
}

// writePeer writes the i-th peer of a list: "; " before all but the
// first, its address and "by" its proof.
func writePeer(b *strings.Builder, i int, p PeerConvergence) {
	if i > 0 {
		b.WriteString("; ")
	}
	b.WriteString(p.Peer.String())
	if p.Proof != "" {
		b.WriteString(" by " + p.Proof)
	}
}

// Observer answers how far the observed peers hold wanted routes: a
// Speaker for the proofs it judges itself, or a BMP station's view.
type Observer interface {
	Accepted(ctx context.Context, want []Route) (Convergence, error)
}

// DefaultPoll is WaitConverged's poll interval when none is given.
const DefaultPoll = 100 * time.Millisecond

// WaitConverged asks s.Accepted(want) every poll until every observed peer
// holds every wanted route (Convergence.Done), and returns the last answer.
// It fails at once with ErrNoObserver when no peer observes, and with the
// context's error (wrapped, naming the peers that still miss routes, by
// which proof, and their first missing prefixes) when ctx ends first; give
// ctx the deadline the gate allows.
func WaitConverged(ctx context.Context, s Observer, want []Route, poll time.Duration) (Convergence, error) {
	if poll <= 0 {
		poll = DefaultPoll
	}
	var (
		t    *time.Timer
		last *Convergence
	)
	for {
		c, err := s.Accepted(ctx, want)
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil && last != nil {
				return *last, fmt.Errorf("wait for convergence: %s: %w", last.Pending(), ctxErr)
			}
			return c, fmt.Errorf("wait for convergence: %w", err)
		}
		last = &c
		if len(c.Peers) == 0 {
			return c, fmt.Errorf("wait for convergence: %w", ErrNoObserver)
		}
		if c.Done() {
			return c, nil
		}
		if t == nil {
			t = time.NewTimer(poll)
			defer t.Stop()
		} else {
			t.Reset(poll)
		}
		select {
		case <-ctx.Done():
			return c, fmt.Errorf("wait for convergence: %s: %w", c.Pending(), ctx.Err())
		case <-t.C:
		}
	}
}

// WriteMissing writes " (missing A, B and N more)" for the first missing
// prefixes of all missing ones, or nothing when none is missing.
func WriteMissing(b *strings.Builder, first []netip.Prefix, all int) {
	if len(first) == 0 {
		return
	}
	b.WriteString(" (missing ")
	for i, m := range first {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(m.String())
	}
	if more := all - len(first); more > 0 {
		fmt.Fprintf(b, " and %d more", more)
	}
	b.WriteString(")")
}
