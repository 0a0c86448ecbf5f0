package daemon

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"

	"github.com/rs/zerolog"

	"github.com/cutover/cutover/bgp"
	"github.com/cutover/cutover/bgp/bmp"
)

// station is the BMP station the daemon runs while its speaker has peers
// that observe by BMP: the edges stream their tables to it, and the bgp
// gate reads them (bmp.Observer).
type station struct {
	st     *bmp.Station
	cancel context.CancelFunc
	done   chan struct{}

	nudge *bmp.Nudger // sends a router whose view misses routes its routes again

	mu       sync.Mutex
	fellBack map[netip.Addr]bool // peers judged by their fallback, warned of once
}

// noteFallbacks warns, once per peer, when a bmp peer is judged by its
// fallback because its router never opened a BMP session: the gate then
// rests on a weaker proof than the runbook's first choice.
func (s *station) noteFallbacks(log zerolog.Logger, c bgp.Convergence) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range c.Peers {
		if !strings.HasSuffix(p.Proof, bgp.NoBMPSession) || s.fellBack[p.Peer] {
			continue
		}
		s.fellBack[p.Peer] = true
		log.Warn().Str("op", "bmp").Str("peer", p.Peer.String()).Str("proof", p.Proof).
			Msg("no BMP session from this router: the bgp gate judges it by its observe_fallback")
	}
}

// startStation listens on bc.BMP and serves the edges' BMP sessions until
// close. It is started with the speaker and lives as long as it does.
func (d *Daemon) startStation(bc bgp.Config) (*station, error) {
	if !bc.BMP.IsValid() {
		return nil, fmt.Errorf("BMP station: a peer observes by bmp, but no address to listen on (bgp.bmp.listen)")
	}
	ln, err := net.Listen("tcp", bc.BMP.String())
	if err != nil {
		return nil, fmt.Errorf("BMP station: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &station{st: bmp.New(d.cfg.Log, bmp.Options{}), cancel: cancel, done: make(chan struct{}),
		nudge: &bmp.Nudger{Log: d.cfg.Log}, fellBack: map[netip.Addr]bool{}}
	go func() {
		defer close(s.done)
		if err := s.st.Serve(ctx, ln); err != nil && ctx.Err() == nil {
			d.cfg.Log.Error().Err(err).Str("op", "bmp").Msg("BMP station stopped: the bgp gate cannot see bmp peers")
		}
	}()
	d.cfg.Log.Info().Str("op", "bmp").Str("listen", ln.Addr().String()).Msg("BMP station listening")
	return s, nil
}

// close stops accepting and ends every BMP session: Serve closes the
// listener and the sessions when its context ends.
func (s *station) close() {
	s.cancel()
	<-s.done
}
