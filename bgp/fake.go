package bgp

import (
	"cmp"
	"context"
	"net/netip"
	"slices"
	"sync"
)

// FakeObserver is the observed peer a Fake answers for unless SetObservers
// says otherwise.
var FakeObserver = netip.MustParseAddr("192.0.2.1")

// Fake is an in-memory Speaker for tests. Set applies the same checks as
// the real speaker (CheckRoutes against Limits, nothing recorded when
// refused) and records each accepted call; Accepted answers from what was
// Set, optionally late (SetLag) or incomplete (Withhold); failures can be
// injected. It is safe for concurrent use.
type Fake struct {
	mu        sync.Mutex
	limits    Limits
	observers []netip.Addr
	peers     []PeerStatus // nil: derived from observers
	announced map[netip.Prefix]Route
	view      map[netip.Prefix]Route // what observers hold (lags announced)
	calls     [][]Route
	lag       int // Accepted calls left before view catches up
	lagEach   int
	withhold  map[netip.Addr]map[netip.Prefix]bool
	setErr    error
	accErr    error
	closed    bool
	onSet     func([]Route)
}

var _ Speaker = (*Fake)(nil)

// NewFake returns a Fake that enforces limits and has one observed,
// established peer, FakeObserver.
func NewFake(limits Limits) *Fake {
	return &Fake{
		limits:    limits,
		observers: []netip.Addr{FakeObserver},
		announced: map[netip.Prefix]Route{},
		view:      map[netip.Prefix]Route{},
		withhold:  map[netip.Addr]map[netip.Prefix]bool{},
	}
}

// SetObservers replaces the observed peers; none makes Accepted report no
// peers (and WaitConverged fail with ErrNoObserver).
func (f *Fake) SetObservers(addrs ...netip.Addr) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.observers = slices.Clone(addrs)
}

// SetPeers fixes what Peers returns; nil derives one established observe
// peer per observer, with the announced count as advertised and what the
// observer holds (SetLag, Withhold) as accepted.
func (f *Fake) SetPeers(ps []PeerStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.peers = slices.Clone(ps)
}

// SetLag makes observers see each Set only after n further Accepted calls
// (simulating a peer that needs time); 0 makes them see it at once.
func (f *Fake) SetLag(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lagEach = n
}

// Withhold makes observer peer never hold prefixes (a peer that rejects
// them); Withhold(peer) with no prefixes clears it.
func (f *Fake) Withhold(peer netip.Addr, prefixes ...netip.Prefix) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(prefixes) == 0 {
		delete(f.withhold, peer)
		return
	}
	m := map[netip.Prefix]bool{}
	for _, p := range prefixes {
		m[p] = true
	}
	f.withhold[peer] = m
}

// FailSet makes every following Set fail with err before changing anything;
// nil clears it.
func (f *Fake) FailSet(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setErr = err
}

// FailAccepted makes every following Accepted fail with err; nil clears it.
func (f *Fake) FailAccepted(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.accErr = err
}

// Calls returns the desired routes of every Set call that was applied, in
// order.
func (f *Fake) Calls() [][]Route {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([][]Route, len(f.calls))
	for i, c := range f.calls {
		out[i] = slices.Clone(c)
	}
	return out
}

// Announced returns the routes currently announced, sorted by prefix.
func (f *Fake) Announced() []Route {
	f.mu.Lock()
	defer f.mu.Unlock()
	return sortedRoutes(f.announced)
}

// Closed reports whether Close was called.
func (f *Fake) Closed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// OnSet makes every later Set call hook with the desired routes first,
// outside the Fake's lock (a hook may block, to hold a Set in flight);
// nil removes it.
func (f *Fake) OnSet(hook func([]Route)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onSet = hook
}

// Set implements Speaker.
func (f *Fake) Set(ctx context.Context, desired []Route) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	hook := f.onSet
	f.mu.Unlock()
	if hook != nil {
		hook(desired)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return ErrClosed
	}
	if err := CheckRoutes(desired, f.limits); err != nil {
		return err
	}
	if f.setErr != nil {
		return f.setErr
	}
	next := make(map[netip.Prefix]Route, len(desired))
	for _, r := range desired {
		next[r.Prefix] = cloneRoute(r)
	}
	f.announced = next
	f.calls = append(f.calls, cloneRoutes(desired))
	f.lag = f.lagEach
	if f.lag == 0 {
		f.view = next
	}
	return nil
}

// Accepted implements Speaker.
func (f *Fake) Accepted(ctx context.Context, want []Route) (Convergence, error) {
	if err := ctx.Err(); err != nil {
		return Convergence{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return Convergence{}, ErrClosed
	}
	if f.accErr != nil {
		return Convergence{}, f.accErr
	}
	if f.lag > 0 {
		f.lag--
		if f.lag == 0 {
			defer func() { f.view = f.announced }()
		}
	}
	c := Convergence{Want: len(want)}
	for _, o := range f.observers {
		have := make(map[netip.Prefix]Held, len(f.view))
		for p, r := range f.view {
			if !f.withhold[o][p] {
				have[p] = Held{NextHop: r.NextHop, Ours: true}
			}
		}
		pc := Compare(o, want, have)
		pc.Proof = string(ProofMirror)
		c.Peers = append(c.Peers, pc)
	}
	return c, nil
}

// Peers implements Speaker.
func (f *Fake) Peers(ctx context.Context) ([]PeerStatus, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, ErrClosed
	}
	if f.peers != nil {
		return slices.Clone(f.peers), nil
	}
	ps := make([]PeerStatus, 0, len(f.observers))
	for _, o := range f.observers {
		held := 0
		for p := range f.view {
			if !f.withhold[o][p] {
				held++
			}
		}
		ps = append(ps, PeerStatus{Address: o, AS: 65000, State: "established", Established: true,
			Advertised: len(f.announced), Observe: ProofMirror, Accepted: held})
	}
	return ps, nil
}

// Close implements Speaker: the announced routes stay as they are (as peers
// would keep them through graceful restart) and further calls fail with
// ErrClosed.
func (f *Fake) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

func cloneRoute(r Route) Route {
	r.Communities = slices.Clone(r.Communities)
	r.LargeCommunities = slices.Clone(r.LargeCommunities)
	if r.MED != nil {
		m := *r.MED
		r.MED = &m
	}
	return r
}

func cloneRoutes(rs []Route) []Route {
	out := make([]Route, len(rs))
	for i, r := range rs {
		out[i] = cloneRoute(r)
	}
	return out
}

func sortedRoutes(m map[netip.Prefix]Route) []Route {
	out := make([]Route, 0, len(m))
	for _, r := range m {
		out = append(out, cloneRoute(r))
	}
	slices.SortFunc(out, func(a, b Route) int { return ComparePrefix(a.Prefix, b.Prefix) })
	return out
}

// ComparePrefix orders prefixes: IPv4 before IPv6, then by address, then by
// length. Use it with slices.SortFunc for stable output.
func ComparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return cmp.Compare(a.Bits(), b.Bits())
}
