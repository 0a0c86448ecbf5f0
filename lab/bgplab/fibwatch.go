package bgplab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// FIBWatch follows the main routing table of a network namespace through a
// netlink route subscription: it knows each change the moment the kernel
// makes it, which polling would see late and at great cost for 50,000
// routes. If the kernel drops events (socket buffer overrun), the table is
// dumped again.
type FIBWatch struct {
	ns   string
	done chan struct{}
	stop sync.Once

	mu      sync.Mutex
	fib     map[netip.Prefix]netip.Addr // prefix -> gateway (zero: none)
	want    map[netip.Prefix]netip.Addr // expectation; zero Addr = absent
	matched int
	met     bool           // the expectation was met once
	low     int            // fewest matching since it was met
	reached chan time.Time // gets the time the expectation was met
	err     error          // subscription failure
}

// WatchFIB starts watching the main table of namespace ns (a name under
// /run/netns). Close it when done.
func WatchFIB(ns string) (*FIBWatch, error) {
	w := &FIBWatch{ns: ns, done: make(chan struct{}), fib: map[netip.Prefix]netip.Addr{}}
	h, err := netns.GetFromName(ns)
	if err != nil {
		return nil, fmt.Errorf("watch routes in %s: %w", ns, err)
	}
	defer h.Close()
	ch := make(chan netlink.RouteUpdate, 4096)
	overrun := make(chan struct{}, 1)
	err = netlink.RouteSubscribeWithOptions(ch, w.done, netlink.RouteSubscribeOptions{
		Namespace:              &h,
		ReceiveBufferSize:      256 << 20,
		ReceiveBufferForceSize: true,
		ErrorCallback: func(err error) {
			if errors.Is(err, unix.ENOBUFS) {
				select {
				case overrun <- struct{}{}:
				default:
				}
				return
			}
			w.mu.Lock()
			if w.err == nil {
				w.err = err
			}
			w.mu.Unlock()
		},
	})
	if err != nil {
		return nil, fmt.Errorf("watch routes in %s: %w", ns, err)
	}
	// Dump after subscribing: a change between the two shows as an event
	// that the dump already contains, which is harmless.
	if err := w.resync(); err != nil {
		w.Close()
		return nil, err
	}
	go w.loop(ch, overrun)
	return w, nil
}

// Close stops watching.
func (w *FIBWatch) Close() { w.stop.Do(func() { close(w.done) }) }

func (w *FIBWatch) loop(ch <-chan netlink.RouteUpdate, overrun <-chan struct{}) {
	for {
		select {
		case u, ok := <-ch:
			if !ok {
				return
			}
			if u.Table != unix.RT_TABLE_MAIN {
				continue
			}
			p, ok := routePrefix(u.Route)
			if !ok {
				continue
			}
			w.mu.Lock()
			if u.Type == unix.RTM_DELROUTE {
				w.setLocked(p, netip.Addr{}, false)
			} else {
				w.setLocked(p, routeGateway(u.Route), true)
			}
			w.mu.Unlock()
		case <-overrun:
			if err := w.resync(); err != nil {
				w.mu.Lock()
				w.err = err
				w.mu.Unlock()
			}
		case <-w.done:
			return
		}
	}
}

// resync replaces the table with a fresh dump.
func (w *FIBWatch) resync() error {
	h, err := netns.GetFromName(w.ns)
	if err != nil {
		return fmt.Errorf("list routes in %s: %w", w.ns, err)
	}
	defer h.Close()
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		return fmt.Errorf("list routes in %s: %w", w.ns, err)
	}
	defer nl.Close()
	var routes []netlink.Route
	for attempt := 0; ; attempt++ {
		routes, err = nl.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
		if !errors.Is(err, netlink.ErrDumpInterrupted) || attempt == 20 {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("list routes in %s: %w", w.ns, err)
	}
	fresh := make(map[netip.Prefix]netip.Addr, len(routes))
	for _, r := range routes {
		if p, ok := routePrefix(r); ok {
			fresh[p] = routeGateway(r)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for p := range w.fib {
		if _, ok := fresh[p]; !ok {
			w.setLocked(p, netip.Addr{}, false)
		}
	}
	for p, gw := range fresh {
		w.setLocked(p, gw, true)
	}
	return nil
}

// setLocked records p's route (present or not) and keeps the count of
// expected routes that match.
func (w *FIBWatch) setLocked(p netip.Prefix, gw netip.Addr, present bool) {
	old, had := w.fib[p]
	if present {
		w.fib[p] = gw
	} else {
		delete(w.fib, p)
	}
	if w.want == nil {
		return
	}
	want, ok := w.want[p]
	if !ok {
		return
	}
	before := matches(want, old, had)
	after := matches(want, gw, present)
	switch {
	case !before && after:
		w.matched++
	case before && !after:
		w.matched--
	}
	w.checkLocked()
}

func matches(want, gw netip.Addr, present bool) bool {
	if !want.IsValid() {
		return !present
	}
	return present && gw == want
}

func (w *FIBWatch) checkLocked() {
	if w.met {
		w.low = min(w.low, w.matched)
		return
	}
	if w.matched == len(w.want) {
		w.met, w.low = true, w.matched
		w.reached <- time.Now()
	}
}

// Low reports the fewest expected routes the table held at any moment since
// the expectation was first met, out of how many: routes that dropped even
// for an instant show here.
func (w *FIBWatch) Low() (low, want int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.low, len(w.want)
}

// Expect sets what the table should come to hold: for each prefix, a route
// via that gateway, or no route when the gateway is the zero Addr. Call it
// before making the change, then Wait.
func (w *FIBWatch) Expect(want map[netip.Prefix]netip.Addr) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.want = want
	w.matched, w.met, w.low = 0, false, 0
	for p, gw := range want {
		old, had := w.fib[p]
		if matches(gw, old, had) {
			w.matched++
		}
	}
	w.reached = make(chan time.Time, 1)
	w.checkLocked()
}

// Wait returns when the table first held what Expect asked for, and the
// time it did.
func (w *FIBWatch) Wait(ctx context.Context) (time.Time, error) {
	w.mu.Lock()
	ch := w.reached
	w.mu.Unlock()
	if ch == nil {
		return time.Time{}, errors.New("wait for routes: nothing expected")
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case t := <-ch:
			return t, nil
		case <-tick.C:
			w.mu.Lock()
			err := w.err
			w.mu.Unlock()
			if err != nil {
				return time.Time{}, fmt.Errorf("wait for routes in %s: %w", w.ns, err)
			}
		case <-ctx.Done():
			w.mu.Lock()
			m, n := w.matched, len(w.want)
			w.mu.Unlock()
			return time.Time{}, fmt.Errorf("wait for routes in %s: %d of %d as expected: %w", w.ns, m, n, ctx.Err())
		}
	}
}

// Snapshot returns a copy of the table.
func (w *FIBWatch) Snapshot() map[netip.Prefix]netip.Addr {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[netip.Prefix]netip.Addr, len(w.fib))
	for p, gw := range w.fib {
		out[p] = gw
	}
	return out
}

func routePrefix(r netlink.Route) (netip.Prefix, bool) {
	if r.Type != unix.RTN_UNICAST || r.Dst == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(r.Dst.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := r.Dst.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}

func routeGateway(r netlink.Route) netip.Addr {
	gw := r.Gw
	if gw == nil && len(r.MultiPath) > 0 {
		gw = r.MultiPath[0].Gw
	}
	a, _ := netip.AddrFromSlice(gw)
	return a.Unmap()
}
