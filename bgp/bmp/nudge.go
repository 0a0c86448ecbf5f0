package bmp

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/cutover/cutover/bgp"
)

// DefaultNudgeAfter is how long a router's BMP view may miss wanted routes
// without coming closer before a Nudger asks for them to be sent again.
const DefaultNudgeAfter = time.Second

// A Nudger asks the speaker to send a router its routes again when the
// router's BMP view has missed some of them for After without coming
// closer (a view still filling up is left alone), at most once per After;
// the Observer it serves passes its Speaker, which must be a
// bgp.Refresher for a nudge to happen. Routers with bugs in their BMP
// need it: FRR 8 reports a path
// whose next-hop it has not resolved yet as withdrawn and sends nothing
// once the next-hop resolves, so the first path of each new next-hop
// stays missing at the station although the router installed it. The
// same UPDATE again makes FRR report the path as it now is. Sending the
// routes again changes nothing at the router. Its methods are safe for
// concurrent use.
type Nudger struct {
	After time.Duration // 0: DefaultNudgeAfter
	Log   zerolog.Logger

	mu      sync.Mutex
	since   map[netip.Addr]time.Time // missing routes, without progress, since
	matched map[netip.Addr]int       // routes held when since was set
	nudged  map[netip.Addr]time.Time // last nudge
	now     func() time.Time
}

// note records what peer's router holds and, when it has been missing
// routes for After (and was not nudged within After), has speaker send
// them again.
func (n *Nudger) note(ctx context.Context, peer netip.Addr, h Holding, speaker bgp.Observer) {
	r, ok := speaker.(bgp.Refresher)
	if n == nil || !ok {
		return
	}
	after := n.After
	if after <= 0 {
		after = DefaultNudgeAfter
	}
	n.mu.Lock()
	if n.since == nil {
		n.since, n.matched, n.nudged = map[netip.Addr]time.Time{}, map[netip.Addr]int{}, map[netip.Addr]time.Time{}
	}
	now := time.Now()
	if n.now != nil {
		now = n.now()
	}
	// Only a view the station can judge, of a router that misses routes:
	// a router without BMP, or down, is not helped by UPDATEs.
	if h.Reason != "" || h.Done() {
		delete(n.since, peer)
		n.mu.Unlock()
		return
	}
	since, ok := n.since[peer]
	if !ok || n.matched[peer] != h.Matched {
		n.since[peer], n.matched[peer] = now, h.Matched
		n.mu.Unlock()
		return
	}
	if now.Sub(since) < after || now.Sub(n.nudged[peer]) < after {
		n.mu.Unlock()
		return
	}
	n.nudged[peer] = now
	n.mu.Unlock()
	err := r.Refresh(ctx, peer)
	ev := n.Log.Info()
	if err != nil {
		ev = n.Log.Warn().Err(err)
	}
	ev.Str("op", "bmp").Str("peer", peer.String()).Int("missing", h.Want-h.Matched).Dur("for", now.Sub(since).Round(time.Millisecond)).
		Msg("the router's BMP view misses routes it was sent: sending them again, which makes a router report them anew")
}
