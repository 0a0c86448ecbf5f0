package nft

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
)

// maxErrors is how many problems Validate lists before it summarises.
const maxErrors = 25

// Validate checks s: site names, marks and routing tables, next-hops, and
// every moved prefix (valid, masked, of a family the site has a next-hop for,
// in at most one site and overlapping no other). The error lists every
// problem (up to 25), one per line.
func Validate(s State) error {
	_, err := compile(s)
	return err
}

// compiled is a valid State in the form the dataplane programs it.
type compiled struct {
	sites []Site               // sorted by name
	sets  map[string][]ipRange // every site's two sets, merged ranges

	splitOnce    sync.Once
	phys         map[string][]ipRange // by kernel set (physSet.name)
	markedOnce   sync.Once
	markedRanges []markedRange
}

// physical returns the ranges of a kernel set (see physSet).
func (c *compiled) physical(name string) []ipRange {
	c.splitOnce.Do(func() {
		c.phys = make(map[string][]ipRange)
		for _, s := range c.sites {
			for _, v6 := range []bool{false, true} {
				name := SetName(s.Name, v6)
				c.phys[name], c.phys[name+hostsSuffix] = splitHosts(c.sets[name])
			}
		}
	})
	return c.phys[name]
}

// marked returns the moved addresses of every site with the site's mark,
// sorted.
func (c *compiled) marked() []markedRange {
	c.markedOnce.Do(func() {
		n := 0
		for _, rs := range c.sets {
			n += len(rs)
		}
		c.markedRanges = make([]markedRange, 0, n)
		for _, s := range c.sites {
			for _, v6 := range []bool{false, true} {
				for _, r := range c.sets[SetName(s.Name, v6)] {
					c.markedRanges = append(c.markedRanges, markedRange{r, s.Mark})
				}
			}
		}
		slices.SortFunc(c.markedRanges, func(a, b markedRange) int { return compareRanges(a.ipRange, b.ipRange) })
	})
	return c.markedRanges
}

// setNames returns the names of the sets the sites need, sorted.
func (c *compiled) setNames() []string {
	var names []string
	for _, s := range c.sites {
		names = append(names, SetName(s.Name, false), SetName(s.Name, true))
	}
	slices.Sort(names)
	return names
}

// markedRange is a range of addresses steered with mark.
type markedRange struct {
	ipRange
	mark uint32
}

// markOf returns the mark of the range in ms (sorted) that holds a, or 0.
func markOf(ms []markedRange, a netip.Addr) uint32 {
	i, found := slices.BinarySearchFunc(ms, a, func(m markedRange, a netip.Addr) int {
		if m.to.Compare(a) < 0 {
			return -1
		}
		if m.from.Compare(a) > 0 {
			return 1
		}
		return 0
	})
	if !found {
		return 0
	}
	return ms[i].mark
}

type errList struct {
	errs []error
	more int
}

func (l *errList) add(format string, args ...any) {
	if len(l.errs) == maxErrors {
		l.more++
		return
	}
	l.errs = append(l.errs, fmt.Errorf(format, args...))
}

func (l *errList) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	errs := l.errs
	if l.more > 0 {
		errs = append(errs, fmt.Errorf("and %d more problems", l.more))
	}
	return fmt.Errorf("invalid dataplane state: %w", errors.Join(errs...))
}

// compile validates s and builds the sets.
func compile(s State) (*compiled, error) {
	var el errList
	c := &compiled{sites: slices.Clone(s.Sites), sets: make(map[string][]ipRange)}
	slices.SortStableFunc(c.sites, func(a, b Site) int { return strings.Compare(a.Name, b.Name) })
	marks := make(map[uint32]string)
	tables := make(map[int]string)
	for i, site := range c.sites {
		if !validSiteName(site.Name) {
			el.add("site %q: name must be 1 to 24 of a-z, 0-9 and _", site.Name)
		}
		if i > 0 && c.sites[i-1].Name == site.Name {
			el.add("site %q: defined twice", site.Name)
			continue
		}
		switch other, dup := marks[site.Mark]; {
		case site.Mark == 0:
			el.add("site %q: mark must not be 0", site.Name)
		case dup:
			el.add("site %q: mark %#x is already used by site %q", site.Name, site.Mark, other)
		default:
			marks[site.Mark] = site.Name
		}
		switch other, dup := tables[site.Table]; {
		case site.Table <= 0 || site.Table > 1<<32-1:
			el.add("site %q: routing table %d is out of range 1-4294967295", site.Name, site.Table)
		case site.Table >= 253 && site.Table <= 255:
			el.add("site %q: routing table %d is reserved (default, main, local)", site.Name, site.Table)
		case dup:
			el.add("site %q: routing table %d is already used by site %q", site.Name, site.Table, other)
		default:
			tables[site.Table] = site.Name
		}
		nh4, nh6 := site.NextHop4, site.NextHop6
		switch {
		case !nh4.IsValid() && !nh6.IsValid():
			el.add("site %q: no next-hop: set an IPv4 or an IPv6 next-hop, or both", site.Name)
		case nh4.IsValid() && (!nh4.Is4() || !unicast(nh4)):
			el.add("site %q: IPv4 next-hop %s is not an IPv4 unicast address", site.Name, nh4)
		case nh6.IsValid() && (!nh6.Is6() || nh6.Is4In6() || !unicast(nh6)):
			el.add("site %q: IPv6 next-hop %s is not an IPv6 unicast address", site.Name, nh6)
		case nh6.IsValid() && nh6.IsLinkLocalUnicast():
			el.add("site %q: IPv6 next-hop %s is link-local: use a global address", site.Name, nh6)
		}
	}

	type entry struct {
		p    netip.Prefix
		site int // index in c.sites
	}
	total := 0
	for _, ps := range s.Moved {
		total += len(ps)
	}
	entries := make([]entry, 0, total)
	for _, name := range sortedKeys(s.Moved) {
		i := slices.IndexFunc(c.sites, func(s Site) bool { return s.Name == name })
		if i < 0 {
			el.add("moved: unknown site %q", name)
			continue
		}
		site := c.sites[i]
		for _, p := range s.Moved[name] {
			switch {
			case !p.IsValid():
				el.add("site %q: invalid prefix %s", name, p)
			case p.Addr().Is4In6():
				el.add("site %q: prefix %s is an IPv4-mapped IPv6 prefix: write %s", name, p,
					netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0)))
			case p.Bits() != p.Addr().BitLen() && p != p.Masked():
				el.add("site %q: prefix %s has host bits set: did you mean %s?", name, p, p.Masked())
			case p.Bits() == 0:
				el.add("site %q: prefix %s would steer every address of its family", name, p)
			case p.Addr().Is4() && !site.NextHop4.IsValid():
				el.add("site %q: prefix %s is IPv4 but the site has no IPv4 next-hop", name, p)
			case p.Addr().Is6() && !site.NextHop6.IsValid():
				el.add("site %q: prefix %s is IPv6 but the site has no IPv6 next-hop", name, p)
			default:
				entries = append(entries, entry{p, i})
			}
		}
	}
	// Overlaps: sorted by first address and the shorter prefix first, a
	// prefix overlaps an earlier one exactly when it starts at or before the
	// end of the last one that covers others (prefixes nest or are apart).
	byStart := func(a, b entry) int {
		if c := a.p.Addr().Compare(b.p.Addr()); c != 0 {
			return c
		}
		return a.p.Bits() - b.p.Bits()
	}
	if !slices.IsSortedFunc(entries, byStart) {
		slices.SortStableFunc(entries, byStart)
	}
	for i := 0; i < len(entries); {
		cover := entries[i]
		end := prefixRange(cover.p).to
		j := i + 1
		for ; j < len(entries) && entries[j].p.Addr().BitLen() == end.BitLen() &&
			entries[j].p.Addr().Compare(end) <= 0; j++ {
			e := entries[j]
			site, coverSite := c.sites[e.site].Name, c.sites[cover.site].Name
			if e.p == cover.p && e.site == cover.site {
				el.add("site %q: prefix %s is listed twice", site, e.p)
			} else {
				el.add("site %q: prefix %s overlaps %s of site %q", site, e.p, cover.p, coverSite)
			}
		}
		i = j
	}
	if err := el.err(); err != nil {
		return nil, err
	}

	// Entries are sorted, so each set's ranges come sorted.
	sets := make([][2][]ipRange, len(c.sites))
	counts := make([][2]int, len(c.sites))
	for _, e := range entries {
		counts[e.site][btoi(e.p.Addr().Is6())]++
	}
	for _, e := range entries {
		v6 := btoi(e.p.Addr().Is6())
		if sets[e.site][v6] == nil {
			sets[e.site][v6] = make([]ipRange, 0, counts[e.site][v6])
		}
		sets[e.site][v6] = append(sets[e.site][v6], prefixRange(e.p))
	}
	for i, site := range c.sites {
		for v6 := range 2 {
			c.sets[SetName(site.Name, v6 == 1)] = mergeRanges(sets[i][v6])
		}
	}
	return c, nil
}

func validSiteName(n string) bool {
	if len(n) == 0 || len(n) > 24 {
		return false
	}
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

func unicast(a netip.Addr) bool {
	return !a.IsUnspecified() && !a.IsMulticast() && !a.IsLoopback() && a != maxAddr(true)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
