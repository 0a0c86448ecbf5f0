package report

import (
	"regexp"
	"slices"
	"strings"
)

// Kinds of Diff.
const (
	DiffSets  = "sets"  // nft tables, compared set by set
	DiffLines = "lines" // other texts, compared as sets of lines
)

// Diff is what changed between the snapshots "Name before" and "Name after".
type Diff struct {
	Name string `json:"name"`
	// Kind is DiffSets or DiffLines.
	Kind string `json:"kind"`
	// Before and After say what a side of a DiffSets held when it held no
	// table: "no table (created by the run)", "no table (removed by the
	// run)", "not read: <why>"; "" for a table.
	Before string `json:"before,omitempty"`
	After  string `json:"after,omitempty"`
	// Sets are the table's named sets and maps, in the order nft lists
	// them (DiffSets).
	Sets []SetDiff `json:"sets,omitempty"`
	// Cut is set when a snapshot was cut short: what it does not hold was
	// not compared.
	Cut bool `json:"cut,omitempty"`
	// Added and Removed are the lines that changed (DiffLines).
	Added   []string `json:"added,omitempty"`
	Removed []string `json:"removed,omitempty"`
}

// SetDiff is how one nft set (or map) changed.
type SetDiff struct {
	Set     string   `json:"set"`
	Added   []string `json:"added,omitempty"`
	Removed []string `json:"removed,omitempty"`
	// Kept counts the elements in the set before and after.
	Kept int `json:"kept"`
	// Note says when the set itself came or went in a table that was
	// there before and after: "new set", "set removed".
	Note string `json:"note,omitempty"`
}

// Words for a side of a table diff that held no table.
const (
	noTable        = "no table"
	tableCreated   = "no table (created by the run)"
	tableRemoved   = "no table (removed by the run)"
	notReadPrefix  = "not read: "
	connectedRoute = "connected"
)

var (
	// nftTableRe finds the head of a table in `nft list` output.
	nftTableRe = regexp.MustCompile(`(?m)^\s*table\s+(?:ip|ip6|inet|arp|bridge|netdev)\s+\S+\s*\{`)
	// nftSetRe is the head of a named set or map.
	nftSetRe = regexp.MustCompile(`^\s*(?:set|map)\s+(\S+)\s*\{\s*$`)
	// nftErrRe is an error nft printed.
	nftErrRe = regexp.MustCompile(`(?m)^Error: (.*)$`)
	// nftListRe is the command nft echoes under its error.
	nftListRe = regexp.MustCompile(`(?m)^\s*list table (\S+ \S+?)\)?\s*$`)
	// noSitesRe is what nft.Render writes for a table it removes.
	noSitesRe = regexp.MustCompile(`(?m)^# no sites: table (\S+ \S+),`)
	// elidedRe is the line a capture cut short ends with.
	elidedRe = regexp.MustCompile(`^… \d+ more lines?$`)
	// volatileRe are parts of an element that change by themselves.
	volatileRe = regexp.MustCompile(`\s+(?:expires \S+|counter packets \d+ bytes \d+)`)
	// noNextHopRe is a route printed without its next hop: a netip.Addr
	// or net.IP that is not set.
	noNextHopRe = regexp.MustCompile(`\bvia (?:invalid IP|<nil>)`)
)

// nftTable is what a snapshot of `nft list table` says.
type nftTable struct {
	missing bool   // nft said the table does not exist
	err     string // nft could not list it for another reason
	sets    []nftSet
	cut     bool // the capture was cut short
}

type nftSet struct {
	name  string
	elems []string
}

// readNft reads text as nft output; ok is false for a text that is
// neither a table nor nft's error.
func readNft(text string) (t nftTable, ok bool) {
	switch {
	case nftTableRe.MatchString(text):
	case missingTable(text):
		return nftTable{missing: true}, true
	default:
		if why, ok := nftError(text); ok {
			return nftTable{err: why}, true
		}
		return nftTable{}, false
	}
	var (
		cur   *nftSet
		depth int
		body  strings.Builder
	)
	for line := range strings.SplitSeq(text, "\n") {
		if elidedRe.MatchString(strings.TrimSpace(line)) {
			t.cut = true
			continue
		}
		if cur == nil {
			if m := nftSetRe.FindStringSubmatch(line); m != nil {
				cur, depth = &nftSet{name: m[1]}, 1
				body.Reset()
			}
			continue
		}
		depth += strings.Count(line, "{") - strings.Count(line, "}")
		if depth <= 0 {
			cur.elems = elements(body.String())
			t.sets = append(t.sets, *cur)
			cur = nil
			continue
		}
		body.WriteString(line + "\n")
	}
	if cur != nil { // the capture ends inside a set
		t.cut = true
		cur.elems = elements(body.String())
		t.sets = append(t.sets, *cur)
	}
	return t, true
}

// nftError is why nft could not list the table: its error, or what the
// lab wrapped as "(no table: …)" when nft did not run.
func nftError(text string) (string, bool) {
	t := strings.TrimSpace(text)
	wrapped, lab := strings.CutPrefix(t, "(no table: ")
	if lab {
		t = strings.TrimSuffix(wrapped, ")")
	}
	if m := nftErrRe.FindStringSubmatch(t); m != nil {
		return strings.TrimSpace(m[1]), true
	}
	if lab {
		first, _, _ := strings.Cut(t, "\n")
		return strings.TrimSpace(first), true
	}
	return "", false
}

// missingTable reports whether text says that there is no table: nft's
// "No such file or directory", or nft.Render's "no sites".
func missingTable(text string) bool {
	t := strings.TrimSpace(text)
	return strings.Contains(t, "No such file or directory") || noSitesRe.MatchString(t) ||
		t == noTable || strings.HasPrefix(t, noTable+" ")
}

// elements are the elements of a set's body, "elements = { a, b, … }",
// one by one, without the parts that change by themselves (expiry,
// counters).
func elements(body string) []string {
	_, list, ok := strings.Cut(body, "elements = {")
	if !ok {
		return nil
	}
	var (
		out   []string
		depth int
		cur   strings.Builder
	)
	flush := func() {
		e := strings.Join(strings.Fields(volatileRe.ReplaceAllString(cur.String(), "")), " ")
		if e != "" {
			out = append(out, e)
		}
		cur.Reset()
	}
	for _, c := range list {
		switch {
		case c == '{':
			depth++
		case c == '}' && depth == 0:
			flush()
			return out
		case c == '}':
			depth--
		case c == ',' && depth == 0:
			flush()
			continue
		}
		cur.WriteRune(c)
	}
	flush() // cut short
	return out
}

// routesConnected returns the snapshots with every route printed without
// a next hop ("via invalid IP") saying "connected" instead.
func routesConnected(snaps []Snapshot) []Snapshot {
	var out []Snapshot
	for _, s := range snaps {
		s.Text = noNextHopRe.ReplaceAllString(s.Text, connectedRoute)
		out = append(out, s)
	}
	return out
}

// tablesShown returns the snapshots as the report shows them: a table
// nft could not find is "no table inet cutover", not nft's error.
func tablesShown(snaps []Snapshot) []Snapshot {
	var out []Snapshot
	for _, s := range snaps {
		if t, ok := readNft(s.Text); ok && t.missing {
			s.Text = missingText(s.Text)
		}
		out = append(out, s)
	}
	return out
}

// missingText says that there is no table, naming it when text does.
func missingText(text string) string {
	for _, re := range []*regexp.Regexp{nftListRe, noSitesRe} {
		if m := re.FindStringSubmatch(text); m != nil {
			return noTable + " " + m[1] + "\n"
		}
	}
	return noTable + "\n"
}

// diffs pairs "X before" with "X after" snapshots.
func diffs(snaps []Snapshot) []Diff {
	var out []Diff
	for _, b := range snaps {
		stem, ok := strings.CutSuffix(b.Name, " before")
		if !ok {
			continue
		}
		i := slices.IndexFunc(snaps, func(s Snapshot) bool { return s.Name == stem+" after" })
		if i < 0 {
			continue
		}
		before, bok := readNft(b.Text)
		after, aok := readNft(snaps[i].Text)
		if bok && aok {
			out = append(out, setDiff(stem, before, after))
			continue
		}
		out = append(out, lineDiff(stem, b.Text, snaps[i].Text))
	}
	return out
}

// setDiff compares two nft tables set by set.
func setDiff(name string, before, after nftTable) Diff {
	d := Diff{Name: name, Kind: DiffSets, Cut: before.cut || after.cut}
	has := func(t nftTable) bool { return !t.missing && t.err == "" }
	switch {
	case before.err != "":
		d.Before = notReadPrefix + before.err
	case before.missing && has(after):
		d.Before = tableCreated
	case before.missing:
		d.Before = noTable
	}
	switch {
	case after.err != "":
		d.After = notReadPrefix + after.err
	case after.missing && has(before):
		d.After = tableRemoved
	case after.missing:
		d.After = noTable
	}
	find := func(t nftTable, set string) (nftSet, bool) {
		i := slices.IndexFunc(t.sets, func(s nftSet) bool { return s.name == set })
		if i < 0 {
			return nftSet{}, false
		}
		return t.sets[i], true
	}
	var names []string
	for _, s := range append(slices.Clone(after.sets), before.sets...) {
		if !slices.Contains(names, s.name) {
			names = append(names, s.name)
		}
	}
	for _, n := range names {
		b, inBefore := find(before, n)
		a, inAfter := find(after, n)
		sd := SetDiff{Set: n}
		for _, e := range a.elems {
			if slices.Contains(b.elems, e) {
				sd.Kept++
			} else {
				sd.Added = append(sd.Added, e)
			}
		}
		for _, e := range b.elems {
			if !slices.Contains(a.elems, e) {
				sd.Removed = append(sd.Removed, e)
			}
		}
		switch {
		case !inBefore && has(before):
			sd.Note = "new set"
		case !inAfter && has(after):
			sd.Note = "set removed"
		}
		d.Sets = append(d.Sets, sd)
	}
	return d
}

// lineDiff compares two texts as sets of lines.
func lineDiff(name, before, after string) Diff {
	d := Diff{Name: name, Kind: DiffLines}
	bset, aset := lineSet(before), lineSet(after)
	for _, l := range lines(after) {
		if !bset[l] {
			d.Added = append(d.Added, l)
		}
	}
	for _, l := range lines(before) {
		if !aset[l] {
			d.Removed = append(d.Removed, l)
		}
	}
	return d
}

func lines(s string) []string {
	var out []string
	seen := map[string]bool{}
	for l := range strings.SplitSeq(s, "\n") {
		l = strings.TrimRight(l, " \t\r")
		if strings.TrimSpace(l) == "" || seen[l] {
			continue
		}
		seen[l] = true
		out = append(out, l)
	}
	return out
}

func lineSet(s string) map[string]bool {
	m := map[string]bool{}
	for _, l := range lines(s) {
		m[l] = true
	}
	return m
}

// counts sums a table diff up: elements added, removed and kept over
// every set.
func (d *Diff) counts() (added, removed, kept int) {
	for _, s := range d.Sets {
		added += len(s.Added)
		removed += len(s.Removed)
		kept += s.Kept
	}
	return added, removed, kept
}
