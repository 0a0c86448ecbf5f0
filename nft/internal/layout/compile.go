package layout

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/cutover/cutover/nft/internal/iprange"
)

// maxErrors is how many problems Compile lists before it summarises.
const maxErrors = 25

// Compiled is a valid nft.State in the form the dataplane programs it. It is
// read only: several goroutines may use it.
type Compiled struct {
	Sites []Site                     // sorted by name
	Sets  map[string][]iprange.Range // every site's two sets (SetName), merged ranges

	splitOnce sync.Once
	phys      map[string][]iprange.Range // by kernel set (KernelSet.Name)
}

// Physical returns the ranges of a kernel set (see KernelSet).
func (c *Compiled) Physical(name string) []iprange.Range {
	c.splitOnce.Do(func() {
		c.phys = make(map[string][]iprange.Range)
		for _, s := range c.Sites {
			for _, v6 := range []bool{false, true} {
				name := SetName(s.Name, v6)
				c.phys[name], c.phys[name+hostsSuffix] = splitHosts(c.Sets[name])
			}
		}
	})
	return c.phys[name]
}

// splitHosts splits merged ranges into those of two or more addresses and
// single addresses.
func splitHosts(rs []iprange.Range) (ranges, hosts []iprange.Range) {
	n := 0
	for _, r := range rs {
		if r.From == r.To {
			n++
		}
	}
	ranges, hosts = make([]iprange.Range, 0, len(rs)-n), make([]iprange.Range, 0, n)
	for _, r := range rs {
		if r.From == r.To {
			hosts = append(hosts, r)
		} else {
			ranges = append(ranges, r)
		}
	}
	return ranges, hosts
}

// setNames returns the names of the sets the sites need, sorted.
func (c *Compiled) setNames() []string {
	var names []string
	for _, s := range c.Sites {
		names = append(names, SetName(s.Name, false), SetName(s.Name, true))
	}
	slices.Sort(names)
	return names
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

// Compile validates sites and the prefixes moved to them, and builds the
// sets: site names, marks and routing tables, next-hops, and every moved
// prefix (valid, masked, of a family the site has a next-hop for, in at
// most one site and overlapping no other). The error lists every problem
// (up to 25), one per line.
func Compile(sites []Site, moved map[string][]netip.Prefix) (*Compiled, error) {
	var el errList
	c := &Compiled{Sites: slices.Clone(sites), Sets: make(map[string][]iprange.Range)}
	slices.SortStableFunc(c.Sites, func(a, b Site) int { return strings.Compare(a.Name, b.Name) })
	marks := make(map[uint32]string)
	tables := make(map[int]string)
	for i, site := range c.Sites {
		if !validSiteName(site.Name) {
			el.add("site %q: name must be 1 to 24 of a-z, 0-9 and _", site.Name)
		}
		if i > 0 && c.Sites[i-1].Name == site.Name {
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
		site int // index in c.Sites
	}
	total := 0
	for _, ps := range moved {
		total += len(ps)
	}
	entries := make([]entry, 0, total)
	for _, name := range sortedKeys(moved) {
		i := slices.IndexFunc(c.Sites, func(s Site) bool { return s.Name == name })
		if i < 0 {
			el.add("moved: unknown site %q", name)
			continue
		}
		site := c.Sites[i]
		for _, p := range moved[name] {
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
		end := iprange.FromPrefix(cover.p).To
		j := i + 1
		for ; j < len(entries) && entries[j].p.Addr().BitLen() == end.BitLen() &&
			entries[j].p.Addr().Compare(end) <= 0; j++ {
			e := entries[j]
			site, coverSite := c.Sites[e.site].Name, c.Sites[cover.site].Name
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
	sets := make([][2][]iprange.Range, len(c.Sites))
	counts := make([][2]int, len(c.Sites))
	for _, e := range entries {
		counts[e.site][btoi(e.p.Addr().Is6())]++
	}
	for _, e := range entries {
		v6 := btoi(e.p.Addr().Is6())
		if sets[e.site][v6] == nil {
			sets[e.site][v6] = make([]iprange.Range, 0, counts[e.site][v6])
		}
		sets[e.site][v6] = append(sets[e.site][v6], iprange.FromPrefix(e.p))
	}
	for i, site := range c.Sites {
		for v6 := range 2 {
			c.Sets[SetName(site.Name, v6 == 1)] = iprange.Merge(sets[i][v6])
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
	return !a.IsUnspecified() && !a.IsMulticast() && !a.IsLoopback() && a != iprange.Last(true)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
