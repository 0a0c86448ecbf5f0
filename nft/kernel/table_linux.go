//go:build linux

package kernel

import (
	"errors"
	"fmt"
	"maps"
	"math/bits"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/cutover/cutover/nft/internal/iprange"
	"github.com/cutover/cutover/nft/internal/layout"
)

// kernelTable is what the kernel holds of the owned table, and the tool's ip
// rules and routes.
type kernelTable struct {
	name     string
	exists   bool
	dormant  bool
	chains   map[string]*kernelChain
	sets     map[string]*kernelSet
	counters map[string]*expr.Counter
	routing  kernelRouting
}

type kernelChain struct {
	chain *nftables.Chain
	rules []*nftables.Rule
}

type kernelSet struct {
	set      *nftables.Set
	v6, addr bool            // addr: the key is an IPv4 or IPv6 address
	raw      []iprange.Range // ranges as the kernel holds them, sorted
	stray    []kernelElem    // elements that are not part of a range
}

// readLocked reads the owned table (every set's elements included) and the
// ip rules and routes of want's sites and of the last applied state.
func (d *dataplane) readLocked(want *layout.Compiled) (*kernelTable, error) {
	k := &kernelTable{
		name:     d.cfg.Table,
		chains:   make(map[string]*kernelChain),
		sets:     make(map[string]*kernelSet),
		counters: make(map[string]*expr.Counter),
	}
	tables, err := d.nft.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	for _, t := range tables {
		if t.Name == d.cfg.Table {
			k.exists = true
			// google/nftables v0.3.0 decodes the (big-endian) flags in host
			// byte order; accept either order (no flag uses bit 24).
			k.dormant = t.Flags&unix.NFT_TABLE_F_DORMANT != 0 || bits.ReverseBytes32(t.Flags)&unix.NFT_TABLE_F_DORMANT != 0
		}
	}
	if k.exists {
		if err := d.readTableLocked(k); err != nil {
			return nil, err
		}
	}
	if k.routing, err = readRouting(d.rt, d.cfg.RulePriority, d.siteTables(want)); err != nil {
		return nil, err
	}
	return k, nil
}

// siteTables returns the routing tables of want's sites and of the last
// applied state's.
func (d *dataplane) siteTables(want *layout.Compiled) []int {
	var tables []int
	for _, c := range []*layout.Compiled{want, d.last} {
		if c == nil {
			continue
		}
		for _, s := range c.Sites {
			tables = append(tables, s.Table)
		}
	}
	return tables
}

func (d *dataplane) readTableLocked(k *kernelTable) error {
	table := d.table()
	chains, err := d.nft.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return fmt.Errorf("list chains: %w", err)
	}
	for _, ch := range chains {
		if ch.Table == nil || ch.Table.Name != table.Name {
			continue
		}
		rules, err := d.nft.GetRules(table, ch)
		if err != nil {
			return fmt.Errorf("list rules of chain %s: %w", ch.Name, err)
		}
		k.chains[ch.Name] = &kernelChain{chain: ch, rules: rules}
	}
	sets, err := d.nft.GetSets(table)
	if err != nil {
		return fmt.Errorf("list sets: %w", err)
	}
	for _, s := range sets {
		ks := &kernelSet{set: s}
		switch s.KeyType.Name {
		case nftables.TypeIPAddr.Name:
			ks.addr = s.KeyType.Bytes == 4
		case nftables.TypeIP6Addr.Name:
			ks.addr, ks.v6 = s.KeyType.Bytes == 16, true
		}
		if ks.addr {
			es, err := d.elems.dump(table.Name, s.Name)
			if err != nil && !errors.Is(err, errNoSet) {
				return fmt.Errorf("list elements of set %s: %w", s.Name, err)
			}
			if s.Interval {
				ks.raw, ks.stray = elementsToRanges(es)
			} else {
				ks.raw = elementsToHosts(es)
			}
		}
		k.sets[s.Name] = ks
	}
	objs, err := d.nft.GetNamedObjects(table)
	if err != nil {
		return fmt.Errorf("list counters: %w", err)
	}
	for _, o := range objs {
		if no, ok := o.(*nftables.NamedObj); ok && no.Type == nftables.ObjTypeCounter {
			c, _ := no.Obj.(*expr.Counter)
			k.counters[no.Name] = c
		}
	}
	return nil
}

// txPlan is how to turn the kernel's table into the wanted one, and the
// differences it found on the way.
type txPlan struct {
	items []string // drift of the nft objects

	deleteTable, addTable    bool
	newCounters, delCounters []string
	newSets                  []newSet
	delSets                  []string // a wrong set is deleted and added again
	newChains, delChains     []layout.Chain
	flushChains              []string       // existing chains emptied
	fillChains               []layout.Chain // chains whose rules are added
	elems                    []setChange
}

// newSet is a set to create: a hash set with size elements at most (see
// layout.HostsCapacity), an interval set without a size.
type newSet struct {
	layout.KernelSet
	size uint32
}

func makeNewSet(ps layout.KernelSet, elements int) newSet {
	ns := newSet{KernelSet: ps}
	if ps.Hosts {
		ns.size = layout.HostsCapacity(elements)
	}
	return ns
}

// setChange is the element change of one kernel set.
type setChange struct {
	set      layout.KernelSet
	del, add []iprange.Range
	stray    []kernelElem
}

// elemsDiffer reports whether some kernel set holds other ranges than wanted.
func (p *txPlan) elemsDiffer() bool {
	return slices.ContainsFunc(p.elems, func(e setChange) bool { return len(e.del)+len(e.add)+len(e.stray) > 0 })
}

func (p *txPlan) any() bool {
	if p.deleteTable || p.addTable || len(p.newCounters)+len(p.delCounters)+len(p.newSets)+len(p.delSets)+
		len(p.newChains)+len(p.delChains)+len(p.flushChains)+len(p.fillChains) > 0 {
		return true
	}
	for _, e := range p.elems {
		if len(e.del)+len(e.add)+len(e.stray) > 0 {
			return true
		}
	}
	return false
}

// plan compares k with want.
func plan(k *kernelTable, want *layout.Compiled) *txPlan {
	p := &txPlan{}
	if len(want.Sites) == 0 {
		if k.exists {
			p.items = append(p.items, "table inet "+k.name+": unexpected (no sites)")
			p.deleteTable = true
		}
		return p
	}
	if !k.exists {
		p.items = append(p.items, "table inet "+k.name+": missing")
		p.addTable = true
	} else if k.dormant {
		p.items = append(p.items, "table inet "+k.name+": dormant")
		p.addTable = true // clears the flag
	}

	var counters []string
	for _, s := range want.Sites {
		counters = append(counters, layout.SteeredCounter(s.Name), layout.OldPathCounter(s.Name))
	}
	for _, name := range counters {
		if _, ok := k.counters[name]; !ok {
			p.items = append(p.items, "counter "+name+": missing")
			p.newCounters = append(p.newCounters, name)
		}
	}
	for _, name := range sortedKeys(k.counters) {
		if !slices.Contains(counters, name) {
			p.items = append(p.items, "counter "+name+": unexpected")
			p.delCounters = append(p.delCounters, name)
		}
	}

	var sets []layout.KernelSet
	for _, s := range want.Sites {
		sets = append(sets, layout.KernelSets(s.Name)...)
	}
	slices.SortFunc(sets, func(a, b layout.KernelSet) int { return strings.Compare(a.Name, b.Name) })
	for _, ps := range sets {
		ranges := want.Physical(ps.Name)
		ks := k.sets[ps.Name]
		var problem string
		switch {
		case ks == nil:
			p.items = append(p.items, "set "+ps.Name+": missing")
			p.newSets = append(p.newSets, makeNewSet(ps, len(ranges)))
			p.elems = append(p.elems, setChange{set: ps, add: ranges})
			continue
		case !ks.addr || ks.v6 != ps.V6:
			problem = fmt.Sprintf("type %s, want %s", ks.set.KeyType.Name, keyType(ps.V6).Name)
		case ks.set.Constant || ks.set.IsMap || ks.set.HasTimeout || ks.set.Interval == ps.Hosts ||
			ks.set.AutoMerge == ps.Hosts:
			problem = "flags differ, want interval and auto-merge"
			if ps.Hosts {
				problem = "flags differ, want none"
			}
		}
		if problem != "" {
			p.items = append(p.items, "set "+ps.Name+": "+problem)
			p.delSets = append(p.delSets, ps.Name)
			p.newSets = append(p.newSets, makeNewSet(ps, len(ranges)))
			p.elems = append(p.elems, setChange{set: ps, add: ranges})
			continue
		}
		if ps.Hosts && (ks.set.Size == 0 || uint64(ks.set.Size) < uint64(len(ranges))) {
			// Too small for want (or created without a size, resizable):
			// created again, larger. Not drift: the addresses are compared
			// as usual.
			p.delSets = append(p.delSets, ps.Name)
			p.newSets = append(p.newSets, makeNewSet(ps, len(ranges)))
			p.elems = append(p.elems, setChange{set: ps, add: ranges})
			continue
		}
		if len(ks.stray) > 0 {
			p.items = append(p.items, fmt.Sprintf("set %s: %d interval elements without a pair", ps.Name, len(ks.stray)))
		}
		del, add := rangeDiff(ks.raw, ranges)
		p.elems = append(p.elems, setChange{set: ps, del: del, add: add, stray: ks.stray})
	}
	for _, name := range sortedKeys(k.sets) {
		if !slices.ContainsFunc(sets, func(ps layout.KernelSet) bool { return ps.Name == name }) {
			p.items = append(p.items, "set "+name+": unexpected")
			p.delSets = append(p.delSets, name)
		}
	}

	// Deleting a set or counter needs the rules that use them gone first:
	// rewrite every chain then.
	rewriteAll := len(p.delSets)+len(p.delCounters) > 0
	specs := layout.Chains(want.Sites)
	for _, spec := range specs {
		kc := k.chains[spec.Name]
		if kc == nil {
			p.items = append(p.items, "chain "+spec.Name+": missing")
			p.newChains = append(p.newChains, spec)
			p.fillChains = append(p.fillChains, spec)
			continue
		}
		if problem := chainProblem(kc.chain, spec); problem != "" {
			p.items = append(p.items, "chain "+spec.Name+": "+problem)
			p.flushChains = append(p.flushChains, spec.Name)
			p.delChains = append(p.delChains, spec)
			p.newChains = append(p.newChains, spec)
			p.fillChains = append(p.fillChains, spec)
			continue
		}
		items := rulesDrift(kc.rules, spec)
		p.items = append(p.items, items...)
		if len(items) > 0 || rewriteAll {
			p.flushChains = append(p.flushChains, spec.Name)
			p.fillChains = append(p.fillChains, spec)
		}
	}
	for _, name := range sortedKeys(k.chains) {
		if !slices.ContainsFunc(specs, func(s layout.Chain) bool { return s.Name == name }) {
			p.items = append(p.items, "chain "+name+": unexpected")
			p.flushChains = append(p.flushChains, name)
			p.delChains = append(p.delChains, layout.Chain{Name: name})
		}
	}
	return p
}

func keyType(v6 bool) nftables.SetDatatype {
	if v6 {
		return nftables.TypeIP6Addr
	}
	return nftables.TypeIPAddr
}

// nftChain returns the chain of spec in table.
func nftChain(table *nftables.Table, spec layout.Chain) *nftables.Chain {
	c := &nftables.Chain{Name: spec.Name, Table: table}
	if spec.Base {
		policy := nftables.ChainPolicyAccept
		c.Type = nftables.ChainType(spec.Type)
		c.Priority = nftables.ChainPriorityMangle
		c.Policy = &policy
		c.Hooknum = nftables.ChainHookPrerouting
		if spec.Hook == "output" {
			c.Hooknum = nftables.ChainHookOutput
		}
	}
	return c
}

// chainProblem says how the kernel's chain c differs from spec, or "".
func chainProblem(c *nftables.Chain, spec layout.Chain) string {
	want := nftChain(nil, spec)
	same := func(a, b any) bool { return fmt.Sprint(a) == fmt.Sprint(b) }
	deref := func(c *nftables.Chain) [4]string {
		var out [4]string
		out[0] = string(c.Type)
		if c.Hooknum != nil {
			out[1] = fmt.Sprint(*c.Hooknum)
		}
		if c.Priority != nil {
			out[2] = fmt.Sprint(*c.Priority)
		}
		if c.Policy != nil {
			out[3] = fmt.Sprint(*c.Policy)
		}
		return out
	}
	if same(deref(c), deref(want)) {
		return ""
	}
	if !spec.Base {
		return "is a base chain, want a regular chain"
	}
	return fmt.Sprintf("hook differs, want type %s hook %s priority mangle policy accept", spec.Type, spec.Hook)
}

// rulesDrift lists how the kernel's rules of a chain differ from spec's.
func rulesDrift(rules []*nftables.Rule, spec layout.Chain) []string {
	var items []string
	type kr struct {
		tag, canon string
		handle     uint64
	}
	var have []kr
	seen := make(map[string]bool)
	for _, r := range rules {
		c, err := canonical(nftables.TableFamilyINet, r.Exprs)
		if err != nil {
			c = "unreadable: " + err.Error()
		}
		tag := ruleTag(r.UserData)
		if seen[tag] {
			tag = "" // a copy counts as unexpected
		}
		seen[tag] = true
		have = append(have, kr{tag, c, r.Handle})
	}
	var order []string
	for _, r := range spec.Rules {
		want, _ := canonical(nftables.TableFamilyINet, ruleExprs(r, nil))
		i := slices.IndexFunc(have, func(h kr) bool { return h.tag == r.Tag() })
		switch {
		case i < 0:
			items = append(items, fmt.Sprintf("chain %s: rule %q missing", spec.Name, r.Tag()))
		case have[i].canon != want:
			items = append(items, fmt.Sprintf("chain %s: rule %q changed (handle %d)", spec.Name, r.Tag(), have[i].handle))
		}
		order = append(order, r.Tag())
	}
	var got []string
	for _, h := range have {
		if !slices.Contains(order, h.tag) {
			what := "unexpected rule"
			if h.tag != "" {
				what = fmt.Sprintf("unexpected rule %q", h.tag)
			}
			items = append(items, fmt.Sprintf("chain %s: %s (handle %d)", spec.Name, what, h.handle))
			continue
		}
		got = append(got, h.tag)
	}
	if len(items) == 0 && !slices.Equal(got, order) {
		items = append(items, fmt.Sprintf("chain %s: rules out of order", spec.Name))
	}
	return items
}

// rangeDiff returns the ranges of have (as the kernel holds them) that are not
// in want and the ranges of want that are not in have; both sorted. When one
// side is empty the other is returned as it is, not copied: the results are
// only read.
func rangeDiff(have, want []iprange.Range) (del, add []iprange.Range) {
	switch {
	case len(have) == 0:
		return nil, want
	case len(want) == 0:
		return have, nil
	}
	i, j := 0, 0
	for i < len(have) || j < len(want) {
		switch {
		case j == len(want):
			del = append(del, have[i:]...)
			i = len(have)
		case i == len(have):
			add = append(add, want[j:]...)
			j = len(want)
		default:
			switch c := iprange.Compare(have[i], want[j]); {
			case c == 0:
				i++
				j++
			case c < 0:
				del = append(del, have[i])
				i++
			default:
				add = append(add, want[j])
				j++
			}
		}
	}
	return del, add
}

// queueLocked queues the transaction of p, in the order the kernel needs:
// rules go before the chains, sets and counters they use; chains, sets and
// counters before the rules and elements that use them.
func (d *dataplane) queueLocked(p *txPlan) error {
	c := d.nft
	table := d.table()
	if p.deleteTable {
		c.DelTable(table)
		return nil
	}
	c.AddTable(table)
	for _, name := range p.flushChains {
		c.FlushChain(&nftables.Chain{Name: name, Table: table})
	}
	for _, spec := range p.delChains {
		c.DelChain(&nftables.Chain{Name: spec.Name, Table: table})
	}
	for _, name := range p.delSets {
		c.DelSet(&nftables.Set{Name: name, Table: table})
	}
	for _, name := range p.delCounters {
		c.DeleteObject(&nftables.NamedObj{Table: table, Name: name, Type: nftables.ObjTypeCounter})
	}
	for _, name := range p.newCounters {
		c.AddObj(&nftables.NamedObj{Table: table, Name: name, Type: nftables.ObjTypeCounter, Obj: &expr.Counter{}})
	}
	sets := make(map[string]*nftables.Set)
	setIDs := make(map[string]uint32)
	for _, ps := range p.newSets {
		s := &nftables.Set{Table: table, Name: ps.Name, KeyType: keyType(ps.V6), Interval: !ps.Hosts, AutoMerge: !ps.Hosts}
		s.Size = ps.size
		if err := c.AddSet(s, nil); err != nil {
			return fmt.Errorf("queue set %s: %w", ps.Name, err)
		}
		sets[ps.Name], setIDs[ps.Name] = s, s.ID
	}
	for _, spec := range p.newChains {
		c.AddChain(nftChain(table, spec))
	}
	for _, spec := range p.fillChains {
		chain := &nftables.Chain{Name: spec.Name, Table: table}
		for _, r := range spec.Rules {
			c.AddRule(&nftables.Rule{Table: table, Chain: chain, Exprs: ruleExprs(r, setIDs), UserData: ruleUserData(r.Tag())})
		}
	}
	for _, e := range p.elems {
		s := sets[e.set.Name]
		if s == nil {
			s = &nftables.Set{Table: table, Name: e.set.Name, KeyType: keyType(e.set.V6), Interval: !e.set.Hosts}
		}
		for _, st := range e.stray {
			if err := c.SetDeleteElements(s, []nftables.SetElement{{Key: st.key.AsSlice(), IntervalEnd: st.end}}); err != nil {
				return fmt.Errorf("queue elements of set %s: %w", e.set.Name, err)
			}
		}
		if err := queueElements(c, s, e.set, false, e.del); err != nil {
			return err
		}
		if err := queueElements(c, s, e.set, true, e.add); err != nil {
			return err
		}
	}
	return nil
}

// kernelSets returns the addresses of the kernel's address sets as merged
// ranges, by set as nft.SetName names them (a set and its _hosts set
// together).
func (k *kernelTable) kernelSets() map[string][]iprange.Range {
	m := make(map[string][]iprange.Range, len(k.sets))
	for name, ks := range k.sets {
		if ks.addr {
			logical := layout.LogicalSet(name)
			m[logical] = append(m[logical], ks.raw...)
		}
	}
	for name, rs := range m {
		m[name] = iprange.Merge(rs)
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
