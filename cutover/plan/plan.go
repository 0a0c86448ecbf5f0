package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/cutover/cutover/cutover/runbook"

	"github.com/cutover/cutover/bgp"
	"github.com/cutover/cutover/nft"
)

// Plan is a runbook's move cut into batches, with what each batch changes.
// It is immutable once made; every method is a pure function of it and
// safe for concurrent use. Slices it returns share the runbook's
// attribute slices (communities): treat them as read-only.
type Plan struct {
	Runbook   *runbook.Runbook
	Inventory *runbook.Inventory
	Batches   []*Batch
	// ConfirmEnd are the go/no-go points asked after the last batch.
	ConfirmEnd []string
	// Digest identifies the runbook and inventory together (SHA-256, hex).
	Digest string

	// tgt and src are the sites the routes lead to; src is nil unless
	// announce_source. Routes are built when asked for, not kept: at
	// 50,000 VMs a copy per site is megabytes the daemon would hold all
	// night for what each change rebuilds in a millisecond.
	tgt, src *runbook.Site
	sites    []nft.Site
	peers  []netip.Addr
}

// Batch is one step of the move.
type Batch struct {
	Index    int    // position in the plan, from 0
	Name     string // "canary", "batch-01", ...
	Canary   bool
	VMs      []*runbook.VM  // sorted by tenant, then name
	Prefixes []netip.Prefix // every address of every VM, sorted
	Tenants  map[string]int // VMs per tenant
	Tiers    map[int]int    // VMs per tier
	// Confirm are the go/no-go points asked before the batch starts.
	Confirm []string
}

// NewPlan cuts the move into batches: first a canary of
// Batching.Canary VMs taken round-robin across tenants (never tier 1;
// VMs with a probe first, then the least critical), then batches of at
// most Batching.Size VMs, tier 3 before 2 before 1, at most
// Batching.MaxPerTenant of one tenant per batch, either a tenant after
// another (GroupByTenant) or round-robin across tenants. All addresses of
// a VM are in the same batch. A batch never takes a VM of a more critical
// tier while VMs of a less critical one wait, so tiers never go back up.
// The plan depends only on the runbook and the inventory.
func New(rb *runbook.Runbook, inv *runbook.Inventory) (*Plan, error) {
	if rb == nil || inv == nil {
		return nil, errors.New("plan: runbook and inventory are required")
	}
	src, tgt := rb.Source(), rb.Target()
	if src == nil || tgt == nil || src == tgt {
		return nil, fmt.Errorf("plan: move %s -> %s: unknown or equal sites", rb.Move.From, rb.Move.To)
	}
	if rb.Batching.Size < 1 {
		return nil, fmt.Errorf("plan: batching.size %d: must be at least 1", rb.Batching.Size)
	}
	sum := sha256.Sum256([]byte(rb.Digest + "\n" + inv.Digest + "\n"))
	pl := &Plan{Runbook: rb, Inventory: inv, Digest: hex.EncodeToString(sum[:])}

	canary, rest := pickCanary(inv.VMs, rb.Batching.Canary, rb.Batching.MaxPerTenant)
	groups := splitBatches(rest, rb.Batching)
	width := max(2, len(strconv.Itoa(len(groups))))
	if len(canary) > 0 {
		pl.addBatch("canary", true, canary)
	}
	for i, g := range groups {
		pl.addBatch(fmt.Sprintf("batch-%0*d", width, i+1), false, g)
	}
	if err := pl.placeConfirm(); err != nil {
		return nil, err
	}

	pl.tgt = tgt
	if rb.BGP.AnnounceSource {
		pl.src = src
	}
	for _, s := range []*runbook.Site{src, tgt} {
		pl.sites = append(pl.sites, nft.Site{Name: s.Name, Mark: s.Steering.Mark, Table: s.Steering.Table,
			NextHop4: s.NextHop.IPv4, NextHop6: s.NextHop.IPv6})
	}
	slices.SortFunc(pl.sites, func(a, b nft.Site) int { return strings.Compare(a.Name, b.Name) })
	for _, pr := range rb.BGP.Peers {
		pl.peers = append(pl.peers, pr.Address)
	}
	return pl, nil
}

func (pl *Plan) addBatch(name string, canary bool, vms []*runbook.VM) {
	b := &Batch{Index: len(pl.Batches), Name: name, Canary: canary, VMs: vms,
		Tenants: map[string]int{}, Tiers: map[int]int{}}
	slices.SortFunc(b.VMs, runbook.CompareVMs)
	n := 0
	for _, vm := range vms {
		n += len(vm.Prefixes)
	}
	b.Prefixes = make([]netip.Prefix, 0, n)
	for _, vm := range vms {
		b.Prefixes = append(b.Prefixes, vm.Prefixes...)
		b.Tenants[vm.Tenant]++
		b.Tiers[vm.Tier]++
	}
	slices.SortFunc(b.Prefixes, netip.Prefix.Compare)
	pl.Batches = append(pl.Batches, b)
}

// pickCanary takes up to n VMs that are not tier 1, spread over the
// tenants in turn (one each per round, in tenant order), at most perTenant
// of one tenant (0: no limit). Within a tenant it prefers VMs with a probe
// (a canary that cannot be checked proves nothing), then tier 3 over 2,
// and among equals takes evenly spaced names, so that the canary is not
// all of one kind of server. It returns the canary and the other VMs in
// their original order.
func pickCanary(vms []*runbook.VM, n, perTenant int) (canary, rest []*runbook.VM) {
	if n <= 0 {
		return nil, vms
	}
	var queues [][]*runbook.VM // per tenant, in tenant order (vms is sorted by tenant)
	for _, vm := range vms {
		if vm.Tier == 1 {
			continue
		}
		if len(queues) == 0 || queues[len(queues)-1][0].Tenant != vm.Tenant {
			queues = append(queues, nil)
		}
		queues[len(queues)-1] = append(queues[len(queues)-1], vm)
	}
	// How many each tenant gives: round-robin.
	want := make([]int, len(queues))
	for total, progress := 0, true; progress && total < n; {
		progress = false
		for i, q := range queues {
			if total < n && want[i] < len(q) && (perTenant == 0 || want[i] < perTenant) {
				want[i]++
				total++
				progress = true
			}
		}
	}
	picked := map[*runbook.VM]bool{}
	for i, q := range queues {
		rank := func(vm *runbook.VM) int { // 0 is best
			r := 3 - vm.Tier
			if vm.Probe.Kind == runbook.ProbeNone {
				r += 2
			}
			return r
		}
		slices.SortStableFunc(q, func(a, b *runbook.VM) int { return rank(a) - rank(b) })
		k := want[i]
		for lo := 0; lo < len(q) && k > 0; {
			hi := lo
			for hi < len(q) && rank(q[hi]) == rank(q[lo]) {
				hi++
			}
			group := q[lo:hi]
			m := min(k, len(group))
			for j := range m {
				vm := group[(2*j+1)*len(group)/(2*m)]
				canary = append(canary, vm)
				picked[vm] = true
			}
			k -= m
			lo = hi
		}
	}
	rest = make([]*runbook.VM, 0, len(vms)-len(canary))
	for _, vm := range vms {
		if !picked[vm] {
			rest = append(rest, vm)
		}
	}
	return canary, rest
}

// splitBatches cuts vms (sorted by tenant, then name) into batches.
func splitBatches(vms []*runbook.VM, cfg runbook.Batching) [][]*runbook.VM {
	var (
		out    [][]*runbook.VM
		cur    []*runbook.VM
		counts = map[string]int{}
	)
	room := func(tenant string) int {
		r := cfg.Size - len(cur)
		if cfg.MaxPerTenant > 0 {
			r = min(r, cfg.MaxPerTenant-counts[tenant])
		}
		return r
	}
	take := func(q *[]*runbook.VM, k int) {
		cur = append(cur, (*q)[:k]...)
		counts[(*q)[0].Tenant] += k
		*q = (*q)[k:]
	}
	flush := func() {
		if len(cur) > 0 {
			out = append(out, cur)
			cur = nil
			clear(counts)
		}
	}
	for tier := 3; tier >= 1; tier-- {
		var queues [][]*runbook.VM // per tenant, in tenant order
		for _, vm := range vms {
			if vm.Tier != tier {
				continue
			}
			if len(queues) == 0 || queues[len(queues)-1][0].Tenant != vm.Tenant {
				queues = append(queues, nil)
			}
			queues[len(queues)-1] = append(queues[len(queues)-1], vm)
		}
		for len(queues) > 0 {
			if cfg.GroupByTenant {
				for i := range queues {
					if k := min(len(queues[i]), room(queues[i][0].Tenant)); k > 0 {
						take(&queues[i], k)
					}
				}
			} else {
				// Round-robin: one VM per tenant per turn, until the batch is
				// full or every tenant left is at its cap.
				for progress := true; progress && len(cur) < cfg.Size; {
					progress = false
					for i := range queues {
						if len(queues[i]) > 0 && room(queues[i][0].Tenant) > 0 {
							take(&queues[i], 1)
							progress = true
						}
					}
				}
			}
			queues = slices.DeleteFunc(queues, func(q []*runbook.VM) bool { return len(q) == 0 })
			// Full, or this tier's VMs that are left wait for the tenant
			// cap: close the batch. A batch that ran out of this tier
			// stays open for the next one.
			if len(cur) >= cfg.Size || len(queues) > 0 {
				flush()
			}
		}
	}
	flush()
	return out
}

// placeConfirm attaches the runbook's go/no-go points to the batches
// they precede.
func (pl *Plan) placeConfirm() error {
	rb := pl.Runbook
	var errs runbook.ValidationErrors
	first := 0 // index of batch-01
	if len(pl.Batches) > 0 && pl.Batches[0].Canary {
		first = 1
	}
	numbered := len(pl.Batches) - first
	before := func(i int, point string) {
		if i < len(pl.Batches) {
			pl.Batches[i].Confirm = append(pl.Batches[i].Confirm, point)
		} else {
			pl.ConfirmEnd = append(pl.ConfirmEnd, point)
		}
	}
	for i, c := range rb.Confirm {
		switch c {
		case runbook.ConfirmBeforeStart:
			before(0, c)
		case runbook.ConfirmAfterCanary:
			before(first, c)
		case runbook.ConfirmBeforeEnd:
			pl.ConfirmEnd = append(pl.ConfirmEnd, c)
		default:
			isBefore, n, ok := runbook.ConfirmBatch(c)
			if !ok {
				return fmt.Errorf("plan: confirm point %q: unknown", c)
			}
			if n < 1 || n > numbered {
				path := fmt.Sprintf("confirm[%d]", i)
				errs = append(errs, runbook.FieldError{File: rb.File, Line: rb.Line(path), Field: path, Value: c,
					Msg: fmt.Sprintf("the plan has batch-01 to batch-%02d", numbered)})
				continue
			}
			if isBefore {
				before(first+n-1, c)
			} else {
				before(first+n, c)
			}
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// routesAt returns the routes for prefixes at site s.
func routesAt(s *runbook.Site, prefixes []netip.Prefix) []bgp.Route {
	return appendRoutesAt(make([]bgp.Route, 0, len(prefixes)), s, prefixes)
}

func appendRoutesAt(out []bgp.Route, s *runbook.Site, prefixes []netip.Prefix) []bgp.Route {
	for _, p := range prefixes {
		out = append(out, bgp.Route{Prefix: p, NextHop: s.NextHop.For(p), LocalPref: s.LocalPref, MED: s.MED,
			Communities: s.Communities, LargeCommunities: s.LargeCommunities, Prepend: s.Prepend})
	}
	return out
}

// Routes returns every route the controller announces once the first
// committed batches are at the target: their prefixes via the target
// site, and, with announce_source, every other prefix via the source
// site. Routes(0) is the baseline. The routes are in batch order, then
// prefix order; they share attribute slices, so treat them as read-only.
func (pl *Plan) Routes(committed int) []bgp.Route {
	return pl.routes(func(i int) bool { return i < committed })
}

// RoutesOf is Routes for any set of batches at the target (indices into
// Batches; others are ignored), as after a batch was rolled back.
func (pl *Plan) RoutesOf(moved []int) []bgp.Route {
	in := pl.movedSet(moved)
	return pl.routes(func(i int) bool { return in[i] })
}

func (pl *Plan) movedSet(moved []int) []bool {
	in := make([]bool, len(pl.Batches))
	for _, m := range moved {
		if m >= 0 && m < len(in) {
			in[m] = true
		}
	}
	return in
}

func (pl *Plan) routes(moved func(int) bool) []bgp.Route {
	n := 0
	for i, b := range pl.Batches {
		if moved(i) || pl.src != nil {
			n += len(b.Prefixes)
		}
	}
	out := make([]bgp.Route, 0, n)
	for i, b := range pl.Batches {
		switch {
		case moved(i):
			out = appendRoutesAt(out, pl.tgt, b.Prefixes)
		case pl.src != nil:
			out = appendRoutesAt(out, pl.src, b.Prefixes)
		}
	}
	return out
}

// Dataplane returns the nft state once the first committed batches are
// at the target: the move's two sites, and the moved prefixes in the
// target's sets. With the dataplane disabled it is the empty state.
func (pl *Plan) Dataplane(committed int) nft.State {
	return pl.dataplane(func(i int) bool { return i < committed })
}

// DataplaneOf is Dataplane for any set of batches at the target.
func (pl *Plan) DataplaneOf(moved []int) nft.State {
	in := pl.movedSet(moved)
	return pl.dataplane(func(i int) bool { return in[i] })
}

func (pl *Plan) dataplane(moved func(int) bool) nft.State {
	if !pl.Runbook.Dataplane.Enabled {
		return nft.State{}
	}
	var ps []netip.Prefix
	for i, b := range pl.Batches {
		if moved(i) {
			ps = append(ps, b.Prefixes...)
		}
	}
	if ps == nil {
		ps = []netip.Prefix{}
	}
	return nft.State{Sites: slices.Clone(pl.sites), Moved: map[string][]netip.Prefix{pl.Runbook.Move.To: ps}}
}

// Peers returns the addresses of the peers every route goes to.
func (pl *Plan) Peers() []netip.Addr { return slices.Clone(pl.peers) }

// BatchChanges is what moving one batch changes.
type BatchChanges struct {
	// Announce are the routes sent for the batch's prefixes (to every peer).
	Announce []bgp.Route
	// Replaced are the routes Announce replaces (announce_source only):
	// the same prefixes via the source.
	Replaced []bgp.Route
	// Withdraw are routes withdrawn; moving forward withdraws nothing, a
	// rollback is the mirror of the move.
	Withdraw []bgp.Route
	// NFT are the set elements added and removed.
	NFT nft.Changes
}

// Changes returns what moving batch i changes after the batches before
// it: the same as diffing Routes(i) with Routes(i+1) and Dataplane(i) with
// Dataplane(i+1), but computed from the batch alone.
func (pl *Plan) Changes(i int) BatchChanges {
	var c BatchChanges
	if i < 0 || i >= len(pl.Batches) {
		return c
	}
	c.Announce = routesAt(pl.tgt, pl.Batches[i].Prefixes)
	if pl.src != nil {
		c.Replaced = routesAt(pl.src, pl.Batches[i].Prefixes)
	}
	if pl.Runbook.Dataplane.Enabled {
		// Only the batch's elements differ between Dataplane(i) and
		// Dataplane(i+1), so diffing those alone gives the same result in
		// O(batch) instead of O(plan).
		to := pl.Runbook.Move.To
		c.NFT = nft.Diff(nft.State{}, nft.State{Moved: map[string][]netip.Prefix{to: pl.Batches[i].Prefixes}})
	}
	return c
}

// Baseline returns the routes announced before the first batch: none, or
// with announce_source every prefix via the source site.
func (pl *Plan) Baseline() []bgp.Route { return pl.Routes(0) }

// Totals counts the plan.
func (pl *Plan) Totals() (vms, prefixes, v4, v6 int) {
	for _, b := range pl.Batches {
		vms += len(b.VMs)
		for _, p := range b.Prefixes {
			if p.Addr().Is4() {
				v4++
			} else {
				v6++
			}
		}
	}
	return vms, v4 + v6, v4, v6
}
