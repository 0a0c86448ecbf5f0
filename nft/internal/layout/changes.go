package layout

import (
	"slices"
	"strings"

	"github.com/cutover/cutover/nft/internal/iprange"
)

// SetChange is the change of one set (SetName): the addresses to add and
// those to remove, merged.
type SetChange struct {
	Set         string
	Add, Remove []iprange.Range
}

// SetChanges returns, per set and sorted by set, the addresses that turning
// the sets have (merged ranges by set name) into want's adds to and removes
// from each set, leaving out the sets that do not change; and all of them
// merged: the addresses whose site changes. A set in have that want lacks
// is removed whole.
func SetChanges(have map[string][]iprange.Range, want *Compiled) ([]SetChange, []iprange.Range) {
	var out []SetChange
	var changed []iprange.Range
	names := want.setNames()
	for name := range have {
		if _, ok := want.Sets[name]; !ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		var sc SetChange
		if wantRanges, ok := want.Sets[name]; ok {
			sc = SetChange{Set: name, Add: iprange.Subtract(wantRanges, have[name]), Remove: iprange.Subtract(have[name], wantRanges)}
		} else {
			sc = SetChange{Set: name, Remove: have[name]}
		}
		if len(sc.Add)+len(sc.Remove) > 0 {
			out = append(out, sc)
			changed = append(append(changed, sc.Add...), sc.Remove...)
		}
	}
	return out, iprange.Merge(changed)
}

// SetDrift returns, per set of want that differs and sorted by set, the
// addresses want's set has and the set in have lacks (Add: missing), and the
// other way round (Remove: extra); sets want does not have are not compared.
func SetDrift(have map[string][]iprange.Range, want *Compiled) []SetChange {
	var out []SetChange
	for _, name := range want.setNames() {
		sc := SetChange{
			Set:    name,
			Add:    iprange.Subtract(want.Sets[name], have[name]),
			Remove: iprange.Subtract(have[name], want.Sets[name]),
		}
		if len(sc.Add)+len(sc.Remove) > 0 {
			out = append(out, sc)
		}
	}
	return out
}

// SiteOfSet returns the site of a set named by SetName (or of its _hosts
// kernel set).
func SiteOfSet(set string) string {
	set = LogicalSet(set)
	return strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(set, "moved_"), "_v4"), "_v6")
}

// ChangedSites returns the sites whose sets changes change, sorted.
func ChangedSites(changes []SetChange) []string {
	var sites []string
	for _, sc := range changes {
		if site := SiteOfSet(sc.Set); !slices.Contains(sites, site) {
			sites = append(sites, site)
		}
	}
	slices.Sort(sites)
	return sites
}
