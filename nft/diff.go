package nft

import (
	"net/netip"
	"slices"
	"strings"
)

// setChanges returns the addresses that turning the sets have (merged ranges
// by set name) into want's adds to and removes from each set (as the fewest
// prefixes), and all of them merged: the addresses whose site changes. A set
// in have that want lacks is removed whole.
func setChanges(have map[string][]ipRange, want *compiled) (Changes, []ipRange) {
	var ch Changes
	var changed []ipRange
	for _, name := range want.setNames() {
		add := subtractRanges(want.sets[name], have[name])
		del := subtractRanges(have[name], want.sets[name])
		ch.Add = rangesToElements(ch.Add, name, add)
		ch.Remove = rangesToElements(ch.Remove, name, del)
		changed = append(append(changed, add...), del...)
	}
	for _, name := range sortedKeys(have) {
		if _, ok := want.sets[name]; !ok {
			ch.Remove = rangesToElements(ch.Remove, name, have[name])
			changed = append(changed, have[name]...)
		}
	}
	sortElements(ch.Add)
	sortElements(ch.Remove)
	return ch, mergeRanges(changed)
}

// setDrift returns the addresses want's sets have and the sets have lack,
// and the other way round; sets want does not have are not compared.
func setDrift(have map[string][]ipRange, want *compiled) (missing, extra []Element) {
	for _, name := range want.setNames() {
		missing = rangesToElements(missing, name, subtractRanges(want.sets[name], have[name]))
		extra = rangesToElements(extra, name, subtractRanges(have[name], want.sets[name]))
	}
	return missing, extra
}

// siteOfSet returns the site of a set named by SetName.
func siteOfSet(set string) string {
	set = strings.TrimSuffix(set, hostsSuffix)
	return strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(set, "moved_"), "_v4"), "_v6")
}

// changedSites returns the sites whose sets ch changes, sorted.
func changedSites(ch Changes) []string {
	var sites []string
	for _, es := range [][]Element{ch.Add, ch.Remove} {
		for _, e := range es {
			if site := siteOfSet(e.Set); !slices.Contains(sites, site) {
				sites = append(sites, site)
			}
		}
	}
	slices.Sort(sites)
	return sites
}

// rangesPrefixes returns the fewest prefixes that cover rs.
func rangesPrefixes(rs []ipRange) []netip.Prefix {
	ps := make([]netip.Prefix, 0, len(rs))
	for _, r := range rs {
		ps = r.prefixes(ps)
	}
	return ps
}
