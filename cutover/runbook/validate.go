package runbook

import (
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cutover/cutover/bgp"
	"github.com/cutover/cutover/cutover/engine"
)

// Load reads a runbook, its inventory and checks both against each other.
// On error it returns ValidationErrors listing every mistake found in
// both files, and no runbook or inventory. Warnings are returned either way.
//
// Both files must be regular files (not a device or a named pipe) of at
// most MaxRunbookSize and MaxInventorySize (MaxInventoryYAMLSize for YAML
// and JSON) bytes. An inventory with more rows than the runbook's
// max_prefixes (and than 10,000) is checked only that far and the rest
// only counted, so that a wrong or runaway file fails fast.
func Load(path string) (*Runbook, *Inventory, []Warning, error) {
	p := problems{}
	rb := loadRunbook(path, &p)
	var inv *Inventory
	if rb != nil && rb.InventoryPath != "" {
		inv = rb.loadInventory(&p)
	}
	if rb != nil && inv != nil {
		rb.checkInventory(inv, &p)
	}
	if err := p.Err(path); err != nil {
		return nil, nil, p.Warnings(), err
	}
	return rb, inv, p.Warnings(), nil
}

// loadInventory reads the runbook's inventory; a file that cannot be read
// is reported on the runbook's inventory field.
func (rb *Runbook) loadInventory(p *problems) *Inventory {
	cannot := func(err error) {
		p.Add(rb.File, rb.Line("inventory"), "inventory", rb.Inventory, "cannot read the inventory %s: %s", rb.InventoryPath, fileErr(err))
	}
	f, err := openRegular(rb.InventoryPath, inventoryLimit(rb.InventoryPath))
	if err != nil {
		cannot(err)
		return nil
	}
	defer f.Close()
	inv, err := readInventory(rb.InventoryPath, f, rb.checkLimit(), p)
	if err != nil {
		cannot(err)
		return nil
	}
	return inv
}

// checkAtLeast is the number of inventory rows always checked in full,
// whatever max_prefixes says: every mistake of a small inventory is
// reported at once, and the prefix count is exact.
const checkAtLeast = 10_000

// checkLimit returns the number of inventory rows to check in full (the
// rest is only counted): max_prefixes+1 but at least checkAtLeast, or
// checkAtLeast when max_prefixes is wrong (which is reported).
func (rb *Runbook) checkLimit() int {
	if !rb.pos.Has("max_prefixes") || rb.MaxPrefixes < 1 {
		return checkAtLeast
	}
	return max(rb.MaxPrefixes+1, checkAtLeast)
}

// Parse is Load on contents already read, such as a snapshot of both
// files taken when a run started: runbookName and inventoryName are used
// in messages (and inventoryName's extension picks the format); the
// runbook's inventory field is not read. The size caps of Load apply.
func Parse(runbookName string, runbook []byte, inventoryName string, inventory []byte) (*Runbook, *Inventory, []Warning, error) {
	var p problems
	rb := parseRunbook(runbookName, runbook, &p)
	var inv *Inventory
	if rb != nil {
		rb.InventoryPath = inventoryName
		inv = parseInventory(inventoryName, inventory, rb.checkLimit(), &p)
	}
	if rb != nil && inv != nil {
		rb.checkInventory(inv, &p)
	}
	if err := p.Err(runbookName); err != nil {
		return nil, nil, p.Warnings(), err
	}
	return rb, inv, p.Warnings(), nil
}

var (
	runbookNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	siteNameRE    = regexp.MustCompile(`^[a-z0-9_]{1,24}$`)
	nftTableRE    = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)
	netnsRE       = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
	envNameRE     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	clockRE       = regexp.MustCompile(`^([01][0-9]|2[0-3]):([0-5][0-9])$`)
	confirmRE     = regexp.MustCompile(`^(before|after)-batch:([0-9]+)$`)
)

// check runs every check that needs the runbook alone.
func (rb *Runbook) check(p *problems) {
	bad := func(path, value, format string, args ...any) {
		p.Add(rb.File, rb.pos.Line(path), path, value, format, args...)
	}
	has := rb.pos.Has

	switch {
	case !has("version"):
		bad("version", "", "required: write version: %d", RunbookVersion)
	case rb.Version != RunbookVersion:
		bad("version", strconv.Itoa(rb.Version), "unsupported version: this cutover reads version %d", RunbookVersion)
	}
	switch {
	case rb.Name == "":
		bad("name", "", "required: a short name for the run, such as helse-nord-skm1-to-skm2")
	case !runbookNameRE.MatchString(rb.Name):
		bad("name", rb.Name, "use 1-63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	if rb.Inventory == "" {
		bad("inventory", "", "required: the inventory file, relative to the runbook")
	}
	seenTenant := map[string]int{}
	for i, t := range rb.Tenants {
		path := fmt.Sprintf("tenants[%d]", i)
		if msg := CheckTenant(t); msg != "" {
			bad(path, t, "%s", msg)
		} else if j, dup := seenTenant[t]; dup {
			bad(path, t, "listed twice (also tenants[%d])", j)
		}
		seenTenant[t] = i
	}

	rb.checkSites(bad)
	if rb.Move.From != "" && rb.Move.To != "" {
		for _, name := range rb.SiteNames() {
			if name != rb.Move.From && name != rb.Move.To {
				p.Warn(rb.File, rb.pos.Line("sites."+name), "sites."+name, "not used by move: ignored")
			}
		}
	}
	rb.checkBGP(bad, p)

	// A bad minimum is reported and replaced by its default, so that the
	// checks of the prefixes still hold and do not pile up on it.
	mpl := &rb.MinPrefixLength
	for _, f := range []struct {
		key       string
		v         *int
		bits, def int
	}{
		{"ipv4", &mpl.IPv4, 32, DefaultMinPrefixLengthIPv4},
		{"ipv6", &mpl.IPv6, 128, DefaultMinPrefixLengthIPv6},
		{"allowed_ipv4", &mpl.AllowedIPv4, 32, DefaultMinAllowedLengthIPv4},
		{"allowed_ipv6", &mpl.AllowedIPv6, 128, DefaultMinAllowedLengthIPv6},
	} {
		if *f.v < 1 || *f.v > f.bits {
			bad("min_prefix_length."+f.key, strconv.Itoa(*f.v), "want a prefix length from 1 to %d", f.bits)
			*f.v = f.def
		}
	}
	if !has("allowed_prefixes") || len(rb.AllowedPrefixes) == 0 {
		bad("allowed_prefixes", "", "required: the ranges every VM prefix must be inside, such as [10.64.0.0/14]")
	}
	for i, a := range rb.AllowedPrefixes {
		path := fmt.Sprintf("allowed_prefixes[%d]", i)
		minBits, minField := mpl.Allowed(a)
		switch {
		case !a.IsValid():
			bad(path, "", "required: a prefix")
		case a.Masked() != a:
			bad(path, a.String(), "host bits set: write %s", a.Masked())
		case a.Bits() == 0:
			bad(path, a.String(), "a /0 allows everything: list the VM ranges")
		case a.Addr().Is4In6():
			bad(path, a.String(), "IPv4-mapped IPv6 prefix: write the IPv4 prefix")
		case a.Bits() < minBits:
			bad(path, a.String(), "shorter than /%d, the runbook's %s: list the VM ranges", minBits, minField)
		}
		for j := range i {
			if rb.AllowedPrefixes[j] == a {
				bad(path, a.String(), "listed twice (also allowed_prefixes[%d])", j)
			}
		}
	}
	switch {
	case !has("max_prefixes"):
		bad("max_prefixes", "", "required: the most prefixes this runbook may announce (a safety cap)")
	case rb.MaxPrefixes < 1:
		bad("max_prefixes", strconv.Itoa(rb.MaxPrefixes), "must be at least 1")
	}

	b := rb.Batching
	if b.Canary < 0 {
		bad("batching.canary", strconv.Itoa(b.Canary), "must be 0 (no canary) or more")
	}
	if b.Size < 1 {
		bad("batching.size", strconv.Itoa(b.Size), "must be at least 1")
	}
	if has("batching.max_per_tenant") && b.MaxPerTenant < 1 {
		bad("batching.max_per_tenant", strconv.Itoa(b.MaxPerTenant), "must be at least 1 (leave it out for no limit)")
	}

	rb.checkGates(bad)
	if has("gates") && len(rb.Gates) == 0 {
		p.Warn(rb.File, rb.pos.Line("gates"), "gates", "no gates: every batch commits without a check")
	}

	switch rb.FailurePolicy {
	case engine.RollbackBatch, engine.RollbackAll, engine.Pause:
	default:
		bad("failure_policy", string(rb.FailurePolicy), "want %s, %s or %s", engine.RollbackBatch, engine.RollbackAll, engine.Pause)
	}
	switch rb.Readiness {
	case engine.ReadySkip, engine.ReadyPause:
		if !rb.Dataplane.Enabled {
			bad("readiness", string(rb.Readiness), "needs the dataplane (dataplane.enabled: true): the check probes each VM through the target's steering table before the move; set readiness: off to move without it")
		}
	case engine.ReadyOff:
	default:
		bad("readiness", string(rb.Readiness), "want %s, %s or %s", engine.ReadySkip, engine.ReadyPause, engine.ReadyOff)
	}
	if rb.Hold < 0 {
		bad("hold", rb.Hold.String(), "must not be negative")
	}
	if rb.Window != nil {
		rb.Window.check(bad)
	}
	seenPoint := map[string]int{}
	for i, c := range rb.Confirm {
		path := fmt.Sprintf("confirm[%d]", i)
		switch {
		case c == "": // the decoder said what is wrong with it
		case c == ConfirmBeforeStart || c == ConfirmBeforeEnd:
		case c == ConfirmAfterCanary:
			if b.Canary == 0 {
				bad(path, c, "batching.canary is 0: there is no canary batch")
			}
		case confirmRE.MatchString(c):
			if n, err := strconv.Atoi(confirmRE.FindStringSubmatch(c)[2]); err != nil || n < 1 {
				bad(path, c, "batch numbers start at 1 (batch-01)")
			}
		default:
			bad(path, c, "want before-start, after-canary, before-batch:N, after-batch:N or before-end")
		}
		if ops := rb.ConfirmPoints[i].Operators; rb.pos.Has(path+".operators") && (ops < 1 || ops > MaxConfirmOperators) {
			bad(path+".operators", strconv.Itoa(ops), "want 1 to %d different operators", MaxConfirmOperators)
		}
		if j, dup := seenPoint[c]; dup {
			bad(path, c, "listed twice (also confirm[%d])", j)
		}
		seenPoint[c] = i
	}

	if !nftTableRE.MatchString(rb.Dataplane.Table) {
		bad("dataplane.table", rb.Dataplane.Table, "use 1-32 letters, digits, '_' or '-'")
	}
	if rb.Dataplane.Netns != "" && !netnsRE.MatchString(rb.Dataplane.Netns) {
		bad("dataplane.netns", rb.Dataplane.Netns, "a network namespace name: 1-64 letters, digits, '.', '_' or '-'")
	}
}

type badFunc func(path, value, format string, args ...any)

func (rb *Runbook) checkSites(bad badFunc) {
	if len(rb.Sites) == 0 {
		bad("sites", "", "required: at least the move's from and to sites")
	}
	marks := map[uint32]string{}
	tables := map[int]string{}
	for _, name := range rb.SiteNames() {
		s := rb.Sites[name]
		at := "sites." + name
		if !siteNameRE.MatchString(name) {
			bad(at, name, "site names are 1-24 of a-z, 0-9 and '_' (they name nft sets)")
		}
		if !s.NextHop.IPv4.IsValid() && !s.NextHop.IPv6.IsValid() {
			bad(at+".next_hop", "", "required: ipv4 and/or ipv6 next-hop of the site")
		}
		checkNextHop(bad, at+".next_hop.ipv4", s.NextHop.IPv4, false)
		checkNextHop(bad, at+".next_hop.ipv6", s.NextHop.IPv6, true)
		if s.Prepend > 10 {
			bad(at+".prepend", strconv.Itoa(int(s.Prepend)), "at most 10")
		}
		if s.Steering.Mark == 0 {
			bad(at+".steering.mark", "0", "must not be 0 (unmarked packets)")
		} else if other, dup := marks[s.Steering.Mark]; dup {
			bad(at+".steering.mark", fmt.Sprintf("%#x", s.Steering.Mark), "same mark as site %s", other)
		}
		marks[s.Steering.Mark] = name
		switch t := s.Steering.Table; {
		case t < 1 || t > 0x7fffffff:
			bad(at+".steering.table", strconv.Itoa(t), "want a routing table from 1 to 2147483647")
		case t >= 253 && t <= 255:
			bad(at+".steering.table", strconv.Itoa(t), "reserved table (default, main, local)")
		default:
			if other, dup := tables[t]; dup {
				bad(at+".steering.table", strconv.Itoa(t), "same table as site %s", other)
			}
		}
		tables[s.Steering.Table] = name
	}
	from, to := rb.Move.From, rb.Move.To
	known := strings.Join(rb.SiteNames(), ", ")
	if len(known) == 0 {
		known = "none"
	}
	for _, f := range []struct{ path, site string }{{"move.from", from}, {"move.to", to}} {
		switch {
		case f.site == "":
			bad(f.path, "", "required: a site name")
		case rb.Sites[f.site] == nil:
			bad(f.path, f.site, "unknown site (sites: %s)", known)
		}
	}
	if from != "" && from == to {
		bad("move.to", to, "the same site as move.from: nothing would move")
	}
	switch fb := rb.Fallback; {
	case fb == "":
	case rb.Sites[fb] == nil:
		bad("fallback", fb, "unknown site (sites: %s)", known)
	case !rb.BGP.AnnounceSource && from != "" && fb != from:
		bad("fallback", fb, "without bgp.announce_source the baseline is the network's own routes, so they must lead to move.from (%s)", from)
	}
}

// FallbackSite is the site the network's own routes lead to: fallback
// when written, else move.from when the baseline announces nothing, else
// "" (unknown).
func (rb *Runbook) FallbackSite() string {
	switch {
	case rb.Fallback != "":
		return rb.Fallback
	case !rb.BGP.AnnounceSource:
		return rb.Move.From
	}
	return ""
}

func checkNextHop(bad badFunc, path string, a netip.Addr, v6 bool) {
	if !a.IsValid() {
		return
	}
	switch {
	case a.Zone() != "":
		bad(path, a.String(), "a next-hop cannot have a zone")
	case !v6 && !a.Is4():
		bad(path, a.String(), "not an IPv4 address")
	case v6 && a.Is4In6():
		bad(path, a.String(), "IPv4-mapped: put IPv4 next-hops under ipv4")
	case v6 && !a.Is6():
		bad(path, a.String(), "not an IPv6 address")
	case a.IsUnspecified(), a.IsMulticast(), a.IsLoopback():
		bad(path, a.String(), "not a usable next-hop (unspecified, multicast or loopback)")
	case a.IsLinkLocalUnicast():
		bad(path, a.String(), "link-local: use the site gateway's global address")
	}
}

// reservedAS returns why as cannot be used, or "".
func reservedAS(as uint32) string {
	switch as {
	case 0:
		return "AS 0 is reserved (RFC 7607)"
	case 23456:
		return "AS 23456 is AS_TRANS (RFC 6793)"
	case 65535, 4294967295:
		return "reserved AS number (RFC 7300)"
	}
	return ""
}

func (rb *Runbook) checkBGP(bad badFunc, p *problems) {
	has := rb.pos.Has
	g := rb.BGP
	if !has("bgp.local_as") {
		bad("bgp.local_as", "", "required: the controller's AS number")
	} else if msg := reservedAS(g.LocalAS); msg != "" {
		bad("bgp.local_as", strconv.FormatUint(uint64(g.LocalAS), 10), "%s", msg)
	}
	switch id := g.RouterID; {
	case !id.IsValid():
		bad("bgp.router_id", "", "required: an IPv4 address of the controller")
	case !id.Is4():
		bad("bgp.router_id", id.String(), "must be an IPv4 address (the BGP identifier is 32 bits)")
	case id.IsUnspecified() || id.IsMulticast():
		bad("bgp.router_id", id.String(), "not a usable router id")
	}
	if p := g.ListenPort; p != -1 && (p < 1 || p > 65535) {
		bad("bgp.listen_port", strconv.Itoa(p), "want -1 (only dial out) or a port from 1 to 65535")
	}
	if gr := g.GracefulRestart; gr.Enabled {
		rt := gr.RestartTime
		switch {
		case rt < time.Second || rt > 4095*time.Second:
			bad("bgp.graceful_restart.restart_time", rt.String(), "want 1s to 4095s (a 12-bit field)")
		case rt%time.Second != 0:
			bad("bgp.graceful_restart.restart_time", rt.String(), "whole seconds only")
		}
	}
	if len(g.Peers) == 0 {
		bad("bgp.peers", "", "required: at least one peer")
	}
	ebgpOnly := true
	for i, pr := range g.Peers {
		at := fmt.Sprintf("bgp.peers[%d].", i)
		switch a := pr.Address; {
		case !a.IsValid():
			bad(at+"address", "", "required: the peer's IP address")
		case a.Zone() != "":
			bad(at+"address", a.String(), "zoned (link-local) peers are not supported: use a global address")
		case a.Is4In6():
			bad(at+"address", a.String(), "IPv4-mapped: write it as %s", a.Unmap())
		case a.IsUnspecified() || a.IsMulticast():
			bad(at+"address", a.String(), "not a usable peer address")
		case a == g.RouterID:
			bad(at+"address", a.String(), "the controller's own router id: a peer is another router")
		}
		for j := range i {
			if pr.Address.IsValid() && g.Peers[j].Address == pr.Address {
				bad(at+"address", pr.Address.String(), "duplicate peer (also bgp.peers[%d])", j)
				break
			}
		}
		if !has(at + "as") {
			bad(at+"as", "", "required: the peer's AS number")
		} else if msg := reservedAS(pr.AS); msg != "" {
			bad(at+"as", strconv.FormatUint(uint64(pr.AS), 10), "%s", msg)
		}
		if pr.AS == g.LocalAS {
			ebgpOnly = false
		}
		if pr.Port == 0 {
			bad(at+"port", "0", "want a port from 1 to 65535")
		}
		holdOK := false
		switch h := pr.HoldTime; {
		case h < 0 || (h > 0 && h < 3*time.Second):
			bad(at+"hold_time", h.String(), "want 0 (no keepalives) or at least 3s (RFC 4271)")
		case h > 65535*time.Second:
			bad(at+"hold_time", h.String(), "at most 65535s")
		case h%time.Second != 0:
			bad(at+"hold_time", h.String(), "whole seconds only")
		default:
			holdOK = true
		}
		switch k := pr.Keepalive; {
		case !holdOK && !has(at+"keepalive"):
			// derived from a bad hold_time: already reported
		case pr.HoldTime == 0 && k != 0:
			bad(at+"keepalive", k.String(), "hold_time 0 disables keepalives: leave keepalive out")
		case pr.HoldTime > 0 && (k < time.Second || k >= pr.HoldTime):
			bad(at+"keepalive", k.String(), "want at least 1s and less than hold_time %s (usually a third)", pr.HoldTime)
		case k%time.Second != 0:
			bad(at+"keepalive", k.String(), "whole seconds only")
		}
		if pr.Password != "" && pr.PasswordEnv != "" {
			bad(at+"password_env", pr.PasswordEnv, "give password or password_env, not both")
		}
		if len(pr.Password) > 80 {
			bad(at+"password", "", "longer than 80 bytes (the TCP MD5 key limit)")
		}
		if pr.PasswordEnv != "" && !envNameRE.MatchString(pr.PasswordEnv) {
			bad(at+"password_env", pr.PasswordEnv, "not an environment variable name")
		}
		switch fb := pr.ObserveFallback; {
		case fb == bgp.ProofNone:
		case pr.Observe != bgp.ProofBMP:
			bad(at+"observe_fallback", fb.String(), "only a peer with observe: bmp has a fallback (observe is %s)", pr.Observe)
		case fb != bgp.ProofMirror && fb != bgp.ProofSent:
			bad(at+"observe_fallback", fb.String(), "want mirror or sent: the proof used while the router has no BMP session")
		}
	}
	if has("bgp.bmp.listen") {
		switch l := g.BMP.Listen; {
		case l.Port() == 0:
			bad("bgp.bmp.listen", l.String(), "want ADDR:PORT with a port, e.g. [::]:%d", bgp.DefaultBMPPort)
		case l.Addr().Zone() != "" || l.Addr().Is4In6() || l.Addr().IsMulticast():
			bad("bgp.bmp.listen", l.String(), "want an address of the controller, or [::] or 0.0.0.0 for every address")
		case !g.UsesBMP():
			p.Warn(rb.File, rb.pos.Line("bgp.bmp.listen"), "bgp.bmp.listen", "no peer has observe: bmp: the BMP station is not started")
		}
	}
	if slices.ContainsFunc(rb.Gates, func(gc GateConfig) bool { return gc.Kind == GateBGP }) {
		for i, pr := range g.Peers {
			path := fmt.Sprintf("bgp.peers[%d].observe", i)
			line := rb.pos.Line(path)
			if line == 0 {
				line = rb.pos.Line(fmt.Sprintf("bgp.peers[%d]", i))
			}
			mirror := pr.Observe == bgp.ProofMirror || pr.ObserveFallback == bgp.ProofMirror
			if mirror && pr.AS == g.LocalAS && has(fmt.Sprintf("bgp.peers[%d].as", i)) {
				p.Warn(rb.File, line, path, "peer %s is iBGP, and no router sends a peer's routes back over iBGP: the bgp gate cannot see its view by mirror (observe: bmp)", pr.Address)
			}
			if pr.Observe == bgp.ProofSent {
				p.Warn(rb.File, line, path, "peer %s: the bgp gate rests on the weak proof (sent: the UPDATEs went out and the session held across a KEEPALIVE, not that the router installed them); observe: bmp proves it", pr.Address)
			}
		}
	}
	if ebgpOnly && len(g.Peers) > 0 {
		for _, name := range rb.SiteNames() {
			if rb.Sites[name].LocalPref != 0 {
				path := "sites." + name + ".local_pref"
				p.Warn(rb.File, rb.pos.Line(path), path, "local_pref is only sent to iBGP peers and every peer is eBGP: use med or prepend")
			}
		}
	}
}

func (w *ChangeWindow) check(bad badFunc) {
	clock := func(field, s string, end bool) (time.Duration, bool) {
		if s == "" {
			bad("window."+field, "", "required: a time of day such as 23:00")
			return 0, false
		}
		if end && s == "24:00" {
			return 24 * time.Hour, true
		}
		m := clockRE.FindStringSubmatch(s)
		if m == nil {
			bad("window."+field, s, "want a time of day HH:MM from 00:00 to 23:59")
			return 0, false
		}
		h, _ := strconv.Atoi(m[1])
		mi, _ := strconv.Atoi(m[2])
		return time.Duration(h)*time.Hour + time.Duration(mi)*time.Minute, true
	}
	start, ok1 := clock("start", w.Start, false)
	end, ok2 := clock("end", w.End, true)
	if ok1 && ok2 {
		w.start = start
		w.length = (end - start + 24*time.Hour) % (24 * time.Hour)
		if w.length == 0 {
			bad("window.end", w.End, "the same time as start: the window would be empty (leave window out for always open)")
		}
	}
	if w.Timezone == "" {
		bad("window.timezone", "", "required: an IANA time zone such as Europe/Oslo")
	} else if loc, err := time.LoadLocation(w.Timezone); err != nil || w.Timezone == "Local" {
		bad("window.timezone", w.Timezone, "unknown time zone: want an IANA name such as Europe/Oslo or UTC")
	} else {
		w.loc = loc
	}
	if len(w.Days) == 0 {
		for i := range w.days {
			w.days[i] = true
		}
	}
	for i, d := range w.Days {
		day := slices.Index(weekdays, strings.ToLower(d))
		switch {
		case day < 0:
			bad(fmt.Sprintf("window.days[%d]", i), d, "want mon, tue, wed, thu, fri, sat or sun")
		case w.days[day]:
			bad(fmt.Sprintf("window.days[%d]", i), d, "listed twice")
		default:
			w.days[day] = true
		}
	}
}

// checkInventory runs the checks that need the runbook and the inventory:
// the safety rails (allowed ranges, the prefix cap), tenants, next-hops
// for the families in use, and whether the canary can be filled.
func (rb *Runbook) checkInventory(inv *Inventory, p *problems) {
	bad := func(path, value, format string, args ...any) {
		p.Add(rb.File, rb.pos.Line(path), path, value, format, args...)
	}
	if inv.truncated {
		// Only the first rows were checked: report the cap, check those
		// rows on their own and leave the checks that need the whole
		// inventory. A truncated inventory must never pass: when
		// max_prefixes itself is wrong, that error is there already and
		// this one is dropped as a second error on the same field.
		bad("max_prefixes", strconv.Itoa(rb.MaxPrefixes), "the inventory has %d prefixes, more than max_prefixes; it was checked only up to line %d", inv.total, inv.checkedTo)
	}
	if len(inv.VMs) == 0 {
		return // reported with the inventory; nothing to check against
	}
	if len(rb.Tenants) > 0 && !inv.truncated {
		counted := map[string]int{}
		first := map[string]int{}
		for _, vm := range inv.VMs {
			if !slices.Contains(rb.Tenants, vm.Tenant) {
				counted[vm.Tenant]++
				if l, ok := first[vm.Tenant]; !ok || vm.Line < l {
					first[vm.Tenant] = vm.Line
				}
			}
		}
		for _, t := range slices.Sorted(maps.Keys(counted)) {
			n := counted[t]
			p.Add(inv.File, first[t], "tenant", t, "unknown tenant: not in the runbook's tenants (%d VMs)", n)
		}
	}
	for _, r := range inv.rows {
		if minBits, field := rb.MinPrefixLength.Prefix(r.prefix); r.prefix.Bits() < minBits {
			p.Add(inv.File, r.line, "address", r.prefix.String(), "shorter than /%d, the runbook's %s", minBits, field)
		}
	}
	if len(rb.AllowedPrefixes) > 0 {
		allowed := make([]string, len(rb.AllowedPrefixes))
		for i, a := range rb.AllowedPrefixes {
			allowed[i] = a.String()
		}
		list := strings.Join(allowed, ", ")
		for _, r := range inv.rows {
			if !insideAny(r.prefix, rb.AllowedPrefixes) {
				p.Add(inv.File, r.line, "address", r.prefix.String(), "outside allowed_prefixes (%s)", list)
			}
		}
	}
	if inv.truncated {
		return
	}
	if rb.MaxPrefixes > 0 && inv.Prefixes() > rb.MaxPrefixes {
		bad("max_prefixes", strconv.Itoa(rb.MaxPrefixes), "the inventory has %d prefixes, more than max_prefixes", inv.Prefixes())
	}
	v4, v6 := inv.Families()
	// Next-hops already reported as wrong are not judged again.
	nhBad := map[string]bool{}
	for name := range rb.Sites {
		nhBad[name] = p.HasErr(rb.File, "sites."+name+".next_hop")
	}
	need := func(role, name string) {
		s := rb.Sites[name]
		if s == nil || nhBad[name] {
			return
		}
		if v4 && !s.NextHop.IPv4.IsValid() {
			bad("sites."+name+".next_hop", "", "the inventory has IPv4 addresses: the %s site needs an ipv4 next-hop", role)
		}
		if v6 && !s.NextHop.IPv6.IsValid() {
			bad("sites."+name+".next_hop", "", "the inventory has IPv6 addresses: the %s site needs an ipv6 next-hop", role)
		}
	}
	need("target", rb.Move.To)
	if rb.BGP.AnnounceSource {
		need("source", rb.Move.From)
	}
	if t := rb.Target(); t != nil && !nhBad[t.Name] {
		for i, pr := range rb.BGP.Peers {
			if pr.Address.Is6() && !t.NextHop.IPv6.IsValid() {
				bad(fmt.Sprintf("bgp.peers[%d].address", i), pr.Address.String(), "IPv6 peer, but the target site %s has no ipv6 next-hop", t.Name)
			}
			if pr.Address.Is4() && !t.NextHop.IPv4.IsValid() {
				bad(fmt.Sprintf("bgp.peers[%d].address", i), pr.Address.String(), "IPv4 peer, but the target site %s has no ipv4 next-hop", t.Name)
			}
		}
	}
	if c := rb.Batching.Canary; c > 0 {
		eligible := map[string]int{}
		total := 0
		for _, vm := range inv.VMs {
			if vm.Tier != 1 {
				eligible[vm.Tenant]++
				total++
			}
		}
		fillable := total
		if cap := rb.Batching.MaxPerTenant; cap > 0 {
			fillable = 0
			for _, n := range eligible {
				fillable += min(n, cap)
			}
		}
		switch {
		case total < c:
			bad("batching.canary", strconv.Itoa(c), "only %d VMs are tier 2 or 3 and the canary never takes tier 1: lower canary", total)
		case fillable < c:
			bad("batching.canary", strconv.Itoa(c), "max_per_tenant %d leaves only %d tier 2-3 VMs for the canary", rb.Batching.MaxPerTenant, fillable)
		}
	}
	for i, g := range rb.Gates {
		if g.Kind != GateProbe {
			continue
		}
		probed := 0
		for _, vm := range inv.VMs {
			if vm.Probe.Kind != ProbeNone {
				probed++
			}
		}
		if probed == 0 {
			p.Warn(rb.File, rb.pos.Line(fmt.Sprintf("gates[%d]", i)), fmt.Sprintf("gates[%d]", i), "no VM in the inventory has a probe: the probe gate always passes")
		}
	}
}

// insideAny reports whether p lies inside one of the ranges.
func insideAny(p netip.Prefix, ranges []netip.Prefix) bool {
	for _, r := range ranges {
		if r.Addr().BitLen() == p.Addr().BitLen() && r.Bits() <= p.Bits() && r.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

// ConfirmBatch parses a numbered go/no-go point, "before-batch:N" or
// "after-batch:N"; ok is false for any other point.
func ConfirmBatch(point string) (before bool, n int, ok bool) {
	m := confirmRE.FindStringSubmatch(point)
	if m == nil {
		return false, 0, false
	}
	n, err := strconv.Atoi(m[2])
	if err != nil {
		return false, 0, false
	}
	return m[1] == "before", n, true
}
