package plan

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/runbook"

	"github.com/cutover/cutover/bgp"
	"github.com/cutover/cutover/internal/redact"
	"github.com/cutover/cutover/nft"
)

// The JSON form of a plan, for tools. Field names are part of the CLI's
// contract: add, never rename.
type (
	planJSON struct {
		Runbook         string        `json:"runbook"`
		Name            string        `json:"name"`
		Digest          string        `json:"digest"`
		RunbookDigest   string        `json:"runbook_digest"`
		Inventory       string        `json:"inventory"`
		InventoryDigest string        `json:"inventory_digest"`
		Move            runbook.Move  `json:"move"`
		AnnounceSource  bool          `json:"announce_source"`
		Peers           []peerJSON    `json:"peers"`
		Totals          totalsJSON    `json:"totals"`
		Dataplane       dataplaneJSON `json:"dataplane"`
		Baseline        []routeJSON   `json:"baseline"` // announced before the first batch
		Batches         []batchJSON   `json:"batches"`
		ConfirmEnd      []string      `json:"confirm_end"`
		// ConfirmOperators are the points that need more than one operator's go.
		ConfirmOperators map[string]int        `json:"confirm_operators,omitempty"`
		Gates            []gateJSON            `json:"gates"`
		Policy           engine.FailurePolicy  `json:"failure_policy"`
		Readiness        engine.ReadyPolicy    `json:"readiness"`
		Hold             string                `json:"hold"`
		Window           *runbook.ChangeWindow `json:"window"`
	}
	peerJSON struct {
		Address         string    `json:"address"`
		AS              uint32    `json:"as"`
		Observe         bgp.Proof `json:"observe"`
		ObserveFallback bgp.Proof `json:"observe_fallback,omitempty"`
	}
	totalsJSON struct {
		VMs      int            `json:"vms"`
		Prefixes int            `json:"prefixes"`
		IPv4     int            `json:"ipv4"`
		IPv6     int            `json:"ipv6"`
		Batches  int            `json:"batches"`
		Tenants  map[string]int `json:"tenants"`
		Tiers    map[int]int    `json:"tiers"`
	}
	dataplaneJSON struct {
		Enabled bool       `json:"enabled"`
		Table   string     `json:"table"`
		Netns   string     `json:"netns"`
		Sites   []siteJSON `json:"sites"`
	}
	siteJSON struct {
		Name     string `json:"name"`
		Mark     string `json:"mark"`
		Table    int    `json:"table"`
		NextHop4 string `json:"next_hop_ipv4,omitempty"`
		NextHop6 string `json:"next_hop_ipv6,omitempty"`
	}
	batchJSON struct {
		Index    int            `json:"index"`
		Name     string         `json:"name"`
		Canary   bool           `json:"canary"`
		Confirm  []string       `json:"confirm"` // go/no-go points before the batch
		VMs      []string       `json:"vms"`
		Prefixes []string       `json:"prefixes"`
		Tenants  map[string]int `json:"tenants"`
		Tiers    map[int]int    `json:"tiers"`
		Announce []routeJSON    `json:"announce"`
		Withdraw []routeJSON    `json:"withdraw"`
		NFT      nftJSON        `json:"nft"`
	}
	routeJSON struct {
		Prefix   string    `json:"prefix"`
		NextHop  string    `json:"next_hop"`
		Attrs    attrsJSON `json:"attrs"`
		Peers    []string  `json:"peers"`
		Replaces string    `json:"replaces_next_hop,omitempty"`
	}
	attrsJSON struct {
		Communities      []string `json:"communities"`
		LargeCommunities []string `json:"large_communities"`
		LocalPref        uint32   `json:"local_pref,omitempty"`
		MED              *uint32  `json:"med,omitempty"`
		Prepend          uint8    `json:"prepend,omitempty"`
	}
	nftJSON struct {
		Add    []elementJSON `json:"add"`
		Remove []elementJSON `json:"remove"`
	}
	elementJSON struct {
		Set     string `json:"set"`
		Element string `json:"element"`
	}
	gateJSON struct {
		Kind     string            `json:"kind"`
		Settings map[string]string `json:"settings"` // the fields of the kind, defaults filled in
		Text     string            `json:"text"`
	}
)

// WriteJSON writes the plan as JSON for tools. Equal plans give equal bytes.
func (pl *Plan) WriteJSON(w io.Writer) error {
	rb, inv := pl.Runbook, pl.Inventory
	vms, prefixes, v4, v6 := pl.Totals()
	out := planJSON{
		Runbook: rb.File, Name: rb.Name, Digest: pl.Digest, RunbookDigest: rb.Digest,
		Inventory: inv.File, InventoryDigest: inv.Digest, Move: rb.Move,
		AnnounceSource: rb.BGP.AnnounceSource,
		Totals: totalsJSON{VMs: vms, Prefixes: prefixes, IPv4: v4, IPv6: v6, Batches: len(pl.Batches),
			Tenants: map[string]int{}, Tiers: map[int]int{}},
		Dataplane:  dataplaneJSON{Enabled: rb.Dataplane.Enabled, Table: rb.Dataplane.Table, Netns: rb.Dataplane.Netns, Sites: []siteJSON{}},
		Baseline:   []routeJSON{},
		ConfirmEnd: nonNil(pl.ConfirmEnd), ConfirmOperators: rb.ConfirmOperators, Policy: rb.FailurePolicy, Readiness: rb.Readiness, Hold: rb.Hold.String(), Window: rb.Window,
	}
	peers := make([]string, len(pl.peers))
	for i, pr := range rb.BGP.Peers {
		out.Peers = append(out.Peers, peerJSON{Address: pr.Address.String(), AS: pr.AS, Observe: pr.Observe, ObserveFallback: pr.ObserveFallback})
		peers[i] = pr.Address.String()
	}
	for _, s := range pl.sites {
		sj := siteJSON{Name: s.Name, Mark: fmt.Sprintf("%#x", s.Mark), Table: s.Table}
		if s.NextHop4.IsValid() {
			sj.NextHop4 = s.NextHop4.String()
		}
		if s.NextHop6.IsValid() {
			sj.NextHop6 = s.NextHop6.String()
		}
		out.Dataplane.Sites = append(out.Dataplane.Sites, sj)
	}
	for _, g := range rb.Gates {
		g = shownGate(g)
		out.Gates = append(out.Gates, gateJSON{Kind: g.Kind, Settings: g.Settings(), Text: g.String()})
	}
	for _, r := range pl.Baseline() {
		out.Baseline = append(out.Baseline, routeToJSON(r, peers, netip.Addr{}))
	}
	for i, b := range pl.Batches {
		c := pl.Changes(i)
		bj := batchJSON{Index: b.Index, Name: b.Name, Canary: b.Canary, Confirm: nonNil(b.Confirm),
			VMs: make([]string, len(b.VMs)), Prefixes: make([]string, len(b.Prefixes)),
			Tenants: b.Tenants, Tiers: b.Tiers,
			Announce: make([]routeJSON, len(c.Announce)), Withdraw: []routeJSON{},
			NFT: nftJSON{Add: elementsJSON(c.NFT.Add), Remove: elementsJSON(c.NFT.Remove)}}
		for j, vm := range b.VMs {
			bj.VMs[j] = vm.Name
			out.Totals.Tenants[vm.Tenant]++
			out.Totals.Tiers[vm.Tier]++
		}
		for j, p := range b.Prefixes {
			bj.Prefixes[j] = p.String()
		}
		for j, r := range c.Announce {
			var old netip.Addr
			if c.Replaced != nil {
				old = c.Replaced[j].NextHop
			}
			bj.Announce[j] = routeToJSON(r, peers, old)
		}
		for _, r := range c.Withdraw {
			bj.Withdraw = append(bj.Withdraw, routeToJSON(r, peers, netip.Addr{}))
		}
		out.Batches = append(out.Batches, bj)
	}
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("write plan: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write plan: %w", err)
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func routeToJSON(r bgp.Route, peers []string, replaces netip.Addr) routeJSON {
	a := attrsJSON{Communities: make([]string, len(r.Communities)), LargeCommunities: make([]string, len(r.LargeCommunities)),
		LocalPref: r.LocalPref, MED: r.MED, Prepend: r.Prepend}
	for i, c := range r.Communities {
		a.Communities[i] = c.String()
	}
	for i, c := range r.LargeCommunities {
		a.LargeCommunities[i] = c.String()
	}
	rj := routeJSON{Prefix: r.Prefix.String(), NextHop: r.NextHop.String(), Attrs: a, Peers: peers}
	if replaces.IsValid() {
		rj.Replaces = replaces.String()
	}
	return rj
}

func elementsJSON(es []nft.Element) []elementJSON {
	out := make([]elementJSON, len(es))
	for i, e := range es {
		out[i] = elementJSON{Set: e.Set, Element: e.Prefix.String()}
	}
	return out
}

// TextOptions tunes WriteText.
type TextOptions struct {
	// Summary prints the header and the table only, not every route and
	// set element.
	Summary bool
}

// WriteText writes the plan for people: a header, a table with one row
// per batch, and unless opts.Summary, per batch its VMs and the exact
// announcements, withdrawals and nft set changes.
func (pl *Plan) WriteText(w io.Writer, opts TextOptions) error {
	bw := bufio.NewWriter(w)
	pl.writeHeader(bw)
	fmt.Fprintln(bw)
	pl.writeTable(bw)
	if !opts.Summary {
		pl.writeDetails(bw)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write plan: %w", err)
	}
	return nil
}

func (pl *Plan) writeHeader(w io.Writer) {
	rb, inv := pl.Runbook, pl.Inventory
	row := func(k, format string, args ...any) { fmt.Fprintf(w, "%-10s %s\n", k, fmt.Sprintf(format, args...)) }
	vms, prefixes, v4, v6 := pl.Totals()
	row("runbook", "%s (%s) sha256 %s", rb.File, rb.Name, rb.Digest)
	row("inventory", "%s (%s) sha256 %s", inv.File, inv.Format, inv.Digest)
	row("plan", "digest %s", pl.Digest)
	row("move", "%s -> %s", rb.Move.From, rb.Move.To)
	for _, s := range []*runbook.Site{rb.Source(), rb.Target()} {
		row("site "+s.Name, "%s", describeSite(s))
	}
	var peers []string
	for _, pr := range rb.BGP.Peers {
		d := fmt.Sprintf("%s AS %d", pr.Address, pr.AS)
		d += ObservedBy(pr)
		peers = append(peers, d)
	}
	row("bgp", "local AS %d, router-id %s, graceful restart %s", rb.BGP.LocalAS, rb.BGP.RouterID, grString(rb.BGP.GracefulRestart))
	row("peers", "%s", strings.Join(peers, ", "))
	if rb.BGP.AnnounceSource {
		row("baseline", "every prefix announced via %s before the first batch; a batch changes its next-hop", rb.Move.From)
	} else {
		row("baseline", "nothing announced; a batch announces its prefixes via %s", rb.Move.To)
	}
	row("totals", "%d VMs, %d prefixes (%d IPv4, %d IPv6), %d tenants, %d batches", vms, prefixes, v4, v6, len(inv.Tenants()), len(pl.Batches))
	for i, g := range rb.Gates {
		k := ""
		if i == 0 {
			k = "gates"
		}
		row(k, "%s", shownGate(g))
	}
	window := "always open"
	if rb.Window != nil {
		window = rb.Window.String()
	}
	row("policy", "on failure %s; hold %s between batches; window %s", rb.FailurePolicy, rb.Hold, window)
	row("readiness", "%s", readinessText(rb))
	confirm := "none"
	if len(rb.Confirm) > 0 {
		points := make([]string, len(rb.Confirm))
		for i, c := range rb.Confirm {
			points[i] = rb.PointText(c)
		}
		confirm = strings.Join(points, ", ")
	}
	row("confirm", "%s", confirm)
	if rb.RequireRehearsal {
		row("rehearsal", "required: the daemon refuses the run without a green lab rehearsal of exactly these bytes")
	}
	if rb.Dataplane.Enabled {
		ns := "the current network namespace"
		if rb.Dataplane.Netns != "" {
			ns = "network namespace " + rb.Dataplane.Netns
		}
		var sites []string
		for _, s := range pl.sites {
			sites = append(sites, fmt.Sprintf("%s mark %#x table %d", s.Name, s.Mark, s.Table))
		}
		row("dataplane", "table inet %s in %s; %s", rb.Dataplane.Table, ns, strings.Join(sites, ", "))
	} else {
		row("dataplane", "disabled (BGP only)")
	}
}

// shownGate is g as a plan shows it: with its URL redacted (a Prometheus
// URL may carry user:password@ or a token; see internal/redact).
// readinessText says what the readiness check does before each batch.
func readinessText(rb *runbook.Runbook) string {
	switch rb.Readiness {
	case engine.ReadySkip:
		return fmt.Sprintf("before each batch its VMs are probed through %s (its steering mark) without moving a route; a batch whose VMs do not answer is held at %s, the run goes on (skip)", rb.Move.To, rb.Move.From)
	case engine.ReadyPause:
		return fmt.Sprintf("before each batch its VMs are probed through %s (its steering mark) without moving a route; the run pauses before a batch whose VMs do not answer (pause)", rb.Move.To)
	}
	return "off: batches move without probing their VMs at the target first"
}

func shownGate(g runbook.GateConfig) runbook.GateConfig {
	g.URL = redact.URL(g.URL)
	return g
}

func describeSite(s *runbook.Site) string {
	var parts []string
	var nh []string
	for _, a := range []netip.Addr{s.NextHop.IPv4, s.NextHop.IPv6} {
		if a.IsValid() {
			nh = append(nh, a.String())
		}
	}
	parts = append(parts, "next-hop "+strings.Join(nh, ", "))
	if s.LocalPref != 0 {
		parts = append(parts, fmt.Sprintf("local-pref %d", s.LocalPref))
	}
	if s.MED != nil {
		parts = append(parts, fmt.Sprintf("med %d", *s.MED))
	}
	for _, c := range s.Communities {
		parts = append(parts, "community "+c.String())
	}
	for _, c := range s.LargeCommunities {
		parts = append(parts, "large-community "+c.String())
	}
	if s.Prepend > 0 {
		parts = append(parts, fmt.Sprintf("prepend %d", s.Prepend))
	}
	return strings.Join(parts, ", ")
}

func grString(gr runbook.GracefulRestart) string {
	if !gr.Enabled {
		return "off"
	}
	return "on, restart time " + gr.RestartTime.String()
}

// writeTable prints one row per batch. With up to eight tenants each gets
// a column; with more, a column says how many tenants a batch touches.
func (pl *Plan) writeTable(w io.Writer) {
	tenants := pl.Inventory.Tenants()
	wide := len(tenants) <= 8
	head := []string{"BATCH", "VMS", "PREFIXES", "TIER3", "TIER2", "TIER1"}
	if wide {
		head = append(head, tenants...)
	} else {
		head = append(head, "TENANTS", "MOST/TENANT")
	}
	rows := [][]string{head}
	total := make([]int, len(head))
	for _, b := range pl.Batches {
		r := []string{b.Name, strconv.Itoa(len(b.VMs)), strconv.Itoa(len(b.Prefixes)),
			strconv.Itoa(b.Tiers[3]), strconv.Itoa(b.Tiers[2]), strconv.Itoa(b.Tiers[1])}
		nums := []int{len(b.VMs), len(b.Prefixes), b.Tiers[3], b.Tiers[2], b.Tiers[1]}
		if wide {
			for _, t := range tenants {
				r = append(r, strconv.Itoa(b.Tenants[t]))
				nums = append(nums, b.Tenants[t])
			}
		} else {
			most := 0
			for _, n := range b.Tenants {
				most = max(most, n)
			}
			r = append(r, strconv.Itoa(len(b.Tenants)), strconv.Itoa(most))
		}
		for i, n := range nums {
			total[i+1] += n
		}
		rows = append(rows, r)
	}
	tr := []string{"total"}
	for i := 1; i < len(head); i++ {
		if !wide && i >= 6 {
			tr = append(tr, "")
			continue
		}
		tr = append(tr, strconv.Itoa(total[i]))
	}
	rows = append(rows, tr)
	widths := make([]int, len(head))
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	for _, r := range rows {
		var b strings.Builder
		for i, c := range r {
			pad := strings.Repeat(" ", widths[i]-len([]rune(c)))
			if i == 0 {
				b.WriteString(c + pad)
			} else {
				b.WriteString("  " + pad + c)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

func (pl *Plan) writeDetails(w io.Writer) {
	rb := pl.Runbook
	peers := make([]string, len(pl.peers))
	for i, p := range pl.peers {
		peers[i] = p.String()
	}
	to := "to peers " + strings.Join(peers, ", ")
	if base := pl.Baseline(); len(base) > 0 {
		fmt.Fprintf(w, "\n== baseline: before the first batch, announce %d routes %s\n", len(base), to)
		for _, r := range base {
			fmt.Fprintf(w, "  %s\n", r)
		}
	}
	for i, b := range pl.Batches {
		c := pl.Changes(i)
		kind := ""
		if b.Canary {
			kind = ", canary"
		}
		fmt.Fprintf(w, "\n== %s (index %d%s): %d VMs, %d prefixes; %s; %s\n", b.Name, b.Index, kind,
			len(b.VMs), len(b.Prefixes), countsText(b.Tenants), tiersText(b.Tiers))
		for _, point := range b.Confirm {
			fmt.Fprintf(w, "go/no-go before this batch: %s\n", rb.PointText(point))
		}
		fmt.Fprintf(w, "vms:\n")
		writeVMs(w, b.VMs)
		if c.Replaced != nil {
			fmt.Fprintf(w, "announce %s (replacing the routes via %s):\n", to, rb.Move.From)
		} else {
			fmt.Fprintf(w, "announce %s:\n", to)
		}
		for _, r := range c.Announce {
			fmt.Fprintf(w, "  %s\n", r)
		}
		if len(c.Withdraw) == 0 {
			fmt.Fprintf(w, "withdraw: none\n")
		} else {
			fmt.Fprintf(w, "withdraw %s:\n", to)
			for _, r := range c.Withdraw {
				fmt.Fprintf(w, "  %s\n", r)
			}
		}
		if !rb.Dataplane.Enabled {
			fmt.Fprintf(w, "nft: dataplane disabled\n")
			continue
		}
		writeElements(w, "nft add", rb.Dataplane.Table, c.NFT.Add)
		writeElements(w, "nft remove", rb.Dataplane.Table, c.NFT.Remove)
	}
	if len(pl.ConfirmEnd) > 0 {
		points := make([]string, len(pl.ConfirmEnd))
		for i, c := range pl.ConfirmEnd {
			points[i] = rb.PointText(c)
		}
		fmt.Fprintf(w, "\n== after the last batch\nconfirm: %s\n", strings.Join(points, ", "))
	}
	fmt.Fprintf(w, "\nrollback of a batch is its mirror: its routes %s, its nft elements removed.\n",
		map[bool]string{true: "go back to the source next-hop", false: "are withdrawn"}[rb.BGP.AnnounceSource])
}

// writeVMs prints one aligned line per VM.
func writeVMs(w io.Writer, vms []*runbook.VM) {
	var wn, wt, wp int
	for _, vm := range vms {
		wn = max(wn, utf8.RuneCountInString(vm.Name))
		wt = max(wt, utf8.RuneCountInString(vm.Tenant))
		wp = max(wp, len(vm.Probe.String()))
	}
	wp = max(wp, 1)
	for _, vm := range vms {
		probe := vm.Probe.String()
		if probe == "" {
			probe = "-"
		}
		ps := make([]string, len(vm.Prefixes))
		for j, p := range vm.Prefixes {
			ps[j] = p.String()
		}
		fmt.Fprintf(w, "  %s  %s  tier %d  probe %s  %s\n", pad(vm.Name, wn), pad(vm.Tenant, wt), vm.Tier, pad(probe, wp), strings.Join(ps, " "))
	}
}

func pad(s string, n int) string {
	return s + strings.Repeat(" ", max(0, n-utf8.RuneCountInString(s)))
}

func writeElements(w io.Writer, what, table string, es []nft.Element) {
	if len(es) == 0 {
		fmt.Fprintf(w, "%s: none\n", what)
		return
	}
	fmt.Fprintf(w, "%s (table inet %s):\n", what, table)
	for _, e := range es {
		fmt.Fprintf(w, "  %s\n", e)
	}
}

func countsText(m map[string]int) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return "tenants " + strings.Join(parts, ", ")
}

func tiersText(m map[int]int) string {
	var parts []string
	for t := 3; t >= 1; t-- {
		if m[t] > 0 {
			parts = append(parts, fmt.Sprintf("tier %d: %d", t, m[t]))
		}
	}
	return strings.Join(parts, ", ")
}

// ObservedBy says how the bgp gate proves a peer's view, for the plan and
// the dry run: " (observed by bmp, else sent: weak proof)", or "" when not
// observed.
func ObservedBy(pr runbook.Peer) string {
	if !pr.Observe.Observed() {
		return ""
	}
	s := " (observed by " + pr.Observe.String()
	if pr.ObserveFallback.Observed() {
		s += ", else " + pr.ObserveFallback.String()
	}
	if pr.Observe.Weak() || pr.ObserveFallback.Weak() {
		s += ": weak proof"
	}
	return s + ")"
}
