//go:build linux

package kernel

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"github.com/rs/zerolog"
	vnl "github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/cutover/cutover/nft"
	"github.com/cutover/cutover/nft/internal/iprange"
	"github.com/cutover/cutover/nft/internal/layout"
)

// Socket buffers of the nftables connection: 50,000 interval elements are a
// batch of about 2.6 MB, which fails with "message too long" on the default
// buffers,
// and the kernel's answer to a failing batch must fit too, or the real error
// turns into ENOBUFS.
const (
	sendBuffer = 32 << 20
	recvBuffer = 8 << 20
)

var _ nft.Dataplane = (*dataplane)(nil)

// dataplane is the kernel implementation of nft.Dataplane.
type dataplane struct {
	cfg nft.Config
	log zerolog.Logger

	ns    netns.NsHandle // -1: the current namespace
	nft   *nftables.Conn
	elems *elemReader
	rt    *vnl.Handle // routes and rules
	ctl   *ctLister   // conntrack dumps of the drain loop
	ct    *vnl.Handle // conntrack; used by the drain loop only

	mu     sync.Mutex
	closed bool
	last   *layout.Compiled // the state last flushed; nil before the first Apply
	marks  map[uint32]bool  // of last's sites, for the drains
	marked []markedRange    // last's addresses with their marks; see markedLocked
	gen    uint64           // counts flushes
	// cache is the table as read back after the last Apply, valid while
	// the ruleset generation is cacheGen: reading 50,000 elements costs
	// 25 to 50 ms, asking for the generation 0.1 ms.
	cache    *kernelTable
	cacheGen uint32
	drains   []*nft.Drain // unfinished
	finished []*nft.Drain // the last nft.KeptFinished finished
	nextID   uint64

	wake chan struct{}
	stop context.CancelFunc
	done chan struct{}
}

// New returns the kernel dataplane for cfg. It changes nothing in the kernel:
// call Drift to compare the kernel with the journal's state, then Apply.
func New(cfg nft.Config, log zerolog.Logger) (nft.Dataplane, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	d := &dataplane{
		cfg:  cfg,
		log:  log.With().Str("component", "nft").Str("table", cfg.Table).Logger(),
		ns:   -1,
		wake: make(chan struct{}, 1),
		done: make(chan struct{}),
	}
	if err := d.open(); err != nil {
		d.closeHandles()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.stop = cancel
	go d.drainLoop(ctx)
	return d, nil
}

func (d *dataplane) open() error {
	var err error
	nsfd := 0
	opts := []nftables.ConnOption{nftables.AsLasting(), nftables.WithSockOptions(bigBuffers)}
	if d.cfg.NetNS != "" {
		if d.ns, err = netns.GetFromName(d.cfg.NetNS); err != nil {
			return fmt.Errorf("open netns %q: %w", d.cfg.NetNS, err)
		}
		nsfd = int(d.ns)
		opts = append(opts, nftables.WithNetNSFd(nsfd))
		if d.rt, err = vnl.NewHandleAt(d.ns, unix.NETLINK_ROUTE); err != nil {
			return fmt.Errorf("open route netlink in netns %q: %w", d.cfg.NetNS, err)
		}
		if d.ct, err = vnl.NewHandleAt(d.ns, unix.NETLINK_NETFILTER); err != nil {
			return fmt.Errorf("open conntrack netlink in netns %q: %w", d.cfg.NetNS, err)
		}
	} else {
		if d.rt, err = vnl.NewHandle(unix.NETLINK_ROUTE); err != nil {
			return fmt.Errorf("open route netlink: %w", err)
		}
		if d.ct, err = vnl.NewHandle(unix.NETLINK_NETFILTER); err != nil {
			return fmt.Errorf("open conntrack netlink: %w", err)
		}
	}
	if d.ctl, err = newCtLister(d.ns); err != nil { // d.ns is netns.None() without NetNS
		return err
	}
	if d.nft, err = nftables.New(opts...); err != nil {
		return fmt.Errorf("open nftables netlink: %w", err)
	}
	if d.elems, err = newElemReader(nsfd); err != nil {
		return err
	}
	return nil
}

// bigBuffers raises the socket buffers; SO_*BUFFORCE (root) ignores the
// system's maximum, which the plain options are capped at.
func bigBuffers(c *netlink.Conn) error {
	if err := c.SetOption(netlink.CapAcknowledge, true); err != nil {
		return fmt.Errorf("set NETLINK_CAP_ACK: %w", err)
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for _, o := range []struct{ force, plain, size int }{
			{unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, sendBuffer},
			{unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, recvBuffer},
		} {
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o.force, o.size) != nil {
				serr = errors.Join(serr, unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o.plain, o.size))
			}
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("set socket buffers: %w", serr)
	}
	return nil
}

func (d *dataplane) closeHandles() {
	if d.nft != nil {
		_ = d.nft.CloseLasting()
	}
	if d.elems != nil {
		_ = d.elems.Close()
	}
	if d.rt != nil {
		d.rt.Close()
	}
	if d.ctl != nil {
		d.ctl.close()
	}
	if d.ct != nil {
		d.ct.Close()
	}
	if d.ns >= 0 {
		_ = d.ns.Close()
	}
}

// Close stops the drain loop and closes the netlink sockets.
func (d *dataplane) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	d.stop()
	<-d.done
	d.mu.Lock()
	defer d.mu.Unlock()
	if n := len(d.drains); n > 0 {
		d.log.Info().Str("op", "close").Int("drains", n).Msg("drains abandoned: old flows keep their path until they end")
	}
	d.drains = nil
	d.closeHandles()
	return nil
}

var errClosed = errors.New("dataplane closed")

// Apply implements nft.Dataplane.
func (d *dataplane) Apply(ctx context.Context, desired nft.State) (nft.Result, error) {
	start := time.Now()
	var res nft.Result
	want, err := compile(desired)
	if err != nil {
		return res, fmt.Errorf("apply: %w", err)
	}
	res.Timings.Validate = time.Since(start)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return res, fmt.Errorf("apply: %w", errClosed)
	}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("apply: %w", err)
	}
	defer func() {
		if res.Took == 0 { // failed: the kernel may be anything
			d.cache = nil
		}
	}()

	rules, routes := d.routing(want)
	var drift nft.Drift
	baseDrift := func(k *kernelTable) bool {
		drift = nft.Drift{}
		switch {
		case d.last != nil:
			drift = d.driftLocked(k, d.last, true, false)
		case k.exists:
			drift = d.driftLocked(k, want, false, false)
		default:
			// First start: nothing of the tool's is in the kernel, except
			// what does not belong there.
			_, drift.Objects = routingDrift(k.routing, rules, routes, false)
		}
		return drift.Empty()
	}
	t := time.Now()
	k, err := d.readCachedLocked(want)
	if err == nil && !baseDrift(k) {
		k, err = d.readConfirmedLocked(want, baseDrift)
	}
	if err != nil {
		return res, fmt.Errorf("apply: read kernel: %w", err)
	}
	res.Timings.Read = time.Since(t)

	t = time.Now()
	if !drift.Empty() {
		if !d.cfg.Correct {
			return res, fmt.Errorf("apply: %w", &nft.DriftError{Drift: drift})
		}
		res.Corrected = drift.Items()
		d.log.Warn().Str("op", "correct").Strs("drift", res.Corrected).Msg("correcting drift")
	}
	if lost := missingRoutes(k.routing, routes); len(lost) > 0 {
		var items []string
		for _, w := range lost {
			items = append(items, w.String()+": missing")
		}
		res.Corrected = append(res.Corrected, items...)
		d.log.Warn().Str("op", "repair").Strs("routes", items).
			Msg("adding back the steering routes the kernel dropped (a link to a site went down?)")
	}

	p := plan(k, want)
	setChanges, changed := layout.SetChanges(k.kernelSets(), want)
	changes := changesOf(setChanges)
	res.Changes = changes
	res.Timings.Plan = time.Since(t)

	t = time.Now()
	_, skipped, err := addRouting(d.rt, k.routing, rules, routes)
	if err != nil {
		return res, fmt.Errorf("apply: %w", err)
	}
	if len(skipped) > 0 {
		d.log.Error().Str("op", "repair").Strs("routes", skipped).
			Msg("a site's next-hop is unreachable: its steering route is missing, so packets marked for it keep their old path")
	}
	res.Timings.Routes = time.Since(t)

	t = time.Now()
	if p.any() {
		if err := d.queueLocked(p); err != nil {
			return res, fmt.Errorf("apply: %w", err)
		}
		if err := d.nft.Flush(); err != nil {
			return res, fmt.Errorf("apply: flush nftables transaction (nothing changed): %w", err)
		}
		d.gen++
	}
	d.last, d.marked = want, nil
	d.marks = make(map[uint32]bool)
	for _, s := range want.Sites {
		d.marks[s.Mark] = true
	}
	res.Timings.Flush = time.Since(t)

	if len(changed) > 0 {
		t = time.Now()
		res.Drain = d.startDrainLocked(changed, setChanges)
		res.Timings.Plan += time.Since(t)
	}

	t = time.Now()
	if err := removeRouting(d.rt, k.routing, rules, routes); err != nil {
		return res, fmt.Errorf("apply: %w", err)
	}
	res.Timings.Routes += time.Since(t)

	t = time.Now()
	gen, err := d.elems.gen()
	if err != nil {
		return res, fmt.Errorf("apply: read back: %w", err)
	}
	var after nft.Drift
	k2, err := d.readConfirmedLocked(want, func(k *kernelTable) bool {
		after = d.driftLocked(k, want, true, len(skipped) == 0)
		return after.Empty()
	})
	if err != nil {
		return res, fmt.Errorf("apply: read back: %w", err)
	}
	if !after.Empty() {
		return res, fmt.Errorf("apply: read back: the kernel differs from what was applied: %s", after)
	}
	d.cache, d.cacheGen = k2, gen
	res.Timings.ReadBack = time.Since(t)
	res.Took = time.Since(start)
	d.log.Info().Str("op", "apply").Int("added", len(changes.Add)).Int("removed", len(changes.Remove)).
		Int("corrected", len(res.Corrected)).Dur("took", res.Took).Msg("applied")
	return res, nil
}

// Drift implements nft.Dataplane.
func (d *dataplane) Drift(ctx context.Context, desired nft.State) (nft.Drift, error) {
	want, err := compile(desired)
	if err != nil {
		return nft.Drift{}, fmt.Errorf("drift: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nft.Drift{}, fmt.Errorf("drift: %w", errClosed)
	}
	if err := ctx.Err(); err != nil {
		return nft.Drift{}, fmt.Errorf("drift: %w", err)
	}
	var drift nft.Drift
	if _, err := d.readConfirmedLocked(want, func(k *kernelTable) bool {
		drift = d.driftLocked(k, want, true, true)
		return drift.Empty()
	}); err != nil {
		return nft.Drift{}, fmt.Errorf("drift: read kernel: %w", err)
	}
	return drift, nil
}

// Counters implements nft.Dataplane.
func (d *dataplane) Counters(ctx context.Context) (map[string]nft.Counter, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, fmt.Errorf("counters: %w", errClosed)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("counters: %w", err)
	}
	out := make(map[string]nft.Counter)
	tables, err := d.nft.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("counters: list tables: %w", err)
	}
	if slices.ContainsFunc(tables, func(t *nftables.Table) bool { return t.Name == d.cfg.Table }) {
		objs, err := d.nft.GetNamedObjects(d.table())
		if err != nil {
			return nil, fmt.Errorf("counters: list counters: %w", err)
		}
		for _, o := range objs {
			no, ok := o.(*nftables.NamedObj)
			if !ok || no.Type != nftables.ObjTypeCounter {
				continue
			}
			c, ok := no.Obj.(*expr.Counter)
			if !ok {
				continue
			}
			if site, ok := cutPrefix(no.Name, "steered_"); ok {
				sc := out[site]
				sc.Packets, sc.Bytes = c.Packets, c.Bytes
				out[site] = sc
			} else if site, ok := cutPrefix(no.Name, "oldpath_"); ok {
				sc := out[site]
				sc.OldPathPackets, sc.OldPathBytes = c.Packets, c.Bytes
				out[site] = sc
			}
		}
	}
	nft.CountDrains(out, d.drains, d.finished)
	return out, nil
}

func cutPrefix(s, prefix string) (string, bool) {
	if len(s) > len(prefix) && s[:len(prefix)] == prefix {
		return s[len(prefix):], true
	}
	return "", false
}

func (d *dataplane) table() *nftables.Table {
	return &nftables.Table{Name: d.cfg.Table, Family: nftables.TableFamilyINet}
}

// routing returns the ip rules and routes c needs.
func (d *dataplane) routing(c *layout.Compiled) ([]layout.IPRule, []layout.Route) {
	return layout.Routing(c.Sites, d.cfg.RulePriority)
}

// readConfirmedLocked reads the kernel until ok accepts what it read, at
// most four times in 260 ms, and returns the last read. The kernel lists a
// hash set by walking its hash table from the start for every chunk of the
// dump, skipping what it sent before: while it resizes a resizable hash
// table after a large change, a dump can miss elements (4 read-backs in 5
// after adding 50,000 to a set created without a size, measured) and the
// next one, a few ms later, is whole. The tool's hash sets have a fixed size
// (layout.HostsCapacity) and never resize, so the first read is whole; the
// retry covers sets made otherwise (older versions, hand edits) until Apply
// recreates them. So a difference counts only if it stays.
func (d *dataplane) readConfirmedLocked(want *layout.Compiled, ok func(*kernelTable) bool) (*kernelTable, error) {
	var k *kernelTable
	var err error
	for _, wait := range []time.Duration{0, 10 * time.Millisecond, 50 * time.Millisecond, 200 * time.Millisecond} {
		time.Sleep(wait)
		if k, err = d.readLocked(want); err != nil || ok(k) {
			break
		}
	}
	return k, err
}

// readCachedLocked is readLocked, but takes the nftables part from the cache
// when the ruleset has not changed since.
func (d *dataplane) readCachedLocked(want *layout.Compiled) (*kernelTable, error) {
	if d.cache == nil {
		return d.readLocked(want)
	}
	gen, err := d.elems.gen()
	if err != nil {
		return nil, err
	}
	if gen != d.cacheGen {
		return d.readLocked(want)
	}
	k := *d.cache
	if k.routing, err = readRouting(d.rt, d.cfg.RulePriority, d.siteTables(want)); err != nil {
		return nil, err
	}
	return &k, nil
}

// driftLocked returns the difference between k and want; elements only when
// asked.
func (d *dataplane) driftLocked(k *kernelTable, want *layout.Compiled, elements, withMissingRoutes bool) nft.Drift {
	var drift nft.Drift
	p := plan(k, want)
	drift.Objects = p.items
	rules, routes := d.routing(want)
	missing, unexpected := routingDrift(k.routing, rules, routes, withMissingRoutes)
	drift.Objects = append(drift.Objects, missing...)
	drift.Objects = append(drift.Objects, unexpected...)
	// The kernel's sets may hold the same addresses in other ranges (after
	// nft edits): only the addresses count.
	if elements && p.elemsDiffer() {
		drift.Missing, drift.Extra = driftOf(layout.SetDrift(k.kernelSets(), want))
	}
	return drift
}

// compile validates s and builds its sets (nft.Validate).
func compile(s nft.State) (*layout.Compiled, error) {
	sites := make([]layout.Site, len(s.Sites))
	for i, site := range s.Sites {
		sites[i] = layout.Site(site)
	}
	return layout.Compile(sites, s.Moved)
}

// changesOf returns set changes as elements: the fewest prefixes per set,
// sorted by set and prefix.
func changesOf(changes []layout.SetChange) nft.Changes {
	var c nft.Changes
	for _, sc := range changes {
		c.Add = appendElements(c.Add, sc.Set, sc.Add)
		c.Remove = appendElements(c.Remove, sc.Set, sc.Remove)
	}
	return c
}

// driftOf returns set drift (layout.SetDrift) as the elements missing from
// and extra in the kernel's sets.
func driftOf(drift []layout.SetChange) (missing, extra []nft.Element) {
	for _, sc := range drift {
		missing = appendElements(missing, sc.Set, sc.Add)
		extra = appendElements(extra, sc.Set, sc.Remove)
	}
	return missing, extra
}

// appendElements appends to dst the prefixes that cover rs, as elements of
// set.
func appendElements(dst []nft.Element, set string, rs []iprange.Range) []nft.Element {
	dst = slices.Grow(dst, len(rs))
	var ps []netip.Prefix
	for _, r := range rs {
		ps = r.AppendPrefixes(ps[:0])
		for _, p := range ps {
			dst = append(dst, nft.Element{Set: set, Prefix: p})
		}
	}
	return dst
}
