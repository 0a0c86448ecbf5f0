package runbook

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // change windows name IANA zones; do not depend on the host's zoneinfo

	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/runbook/strict"

	"gopkg.in/yaml.v3"

	"github.com/cutover/cutover/bgp"
)

// RunbookVersion is the runbook format this package reads.
const RunbookVersion = 1

// Runbook is a validated runbook: where the VMs of an inventory move, how
// the controller speaks BGP, how the move is cut into batches and what
// must hold before a batch counts as done. runbooks/README.md documents
// every field.
type Runbook struct {
	Version     int    `yaml:"version"`
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	// Inventory is the inventory path as written, relative to the runbook.
	Inventory string `yaml:"inventory"`
	// Tenants, when given, is the complete list of tenants the inventory
	// may name; any other tenant is an error.
	Tenants []string         `yaml:"tenants"`
	Sites   map[string]*Site `yaml:"sites"`
	Move    Move             `yaml:"move"`
	// Fallback is the site the network's own routes (the edge's covering
	// routes for allowed_prefixes) lead to when the controller announces
	// nothing: where a withdrawn route's traffic goes. Default: move.from
	// without announce_source (the baseline is the network's own routes);
	// with announce_source it is unknown unless written. The lab builds the
	// edge's covering routes from it.
	Fallback        string               `yaml:"fallback"`
	BGP             BGPConfig            `yaml:"bgp"`
	AllowedPrefixes []netip.Prefix       `yaml:"allowed_prefixes"`
	MaxPrefixes     int                  `yaml:"max_prefixes"`
	MinPrefixLength MinPrefixLength      `yaml:"min_prefix_length"`
	Batching        Batching             `yaml:"batching"`
	Gates           []GateConfig         `yaml:"gates"`
	FailurePolicy   engine.FailurePolicy `yaml:"failure_policy"`
	// Readiness is what happens to a batch whose VMs do not answer at the
	// target before the move (skip, pause, off); the default follows
	// failure_policy: skip for rollback-batch, pause otherwise, off
	// without a dataplane.
	Readiness engine.ReadyPolicy `yaml:"readiness"`
	// Hold is the minimum time between the end of one batch and the start
	// of the next.
	Hold   time.Duration `yaml:"hold"`
	Window *ChangeWindow `yaml:"window"` // nil: always open
	// ConfirmPoints are the go/no-go points as written: a name, or a
	// name with how many different operators must say go. Confirm and
	// ConfirmOperators are derived from them.
	ConfirmPoints []ConfirmPoint `yaml:"confirm"`
	Confirm       []string       `yaml:"-"` // the points' names, in order
	// ConfirmOperators is how many different operators must say go at a
	// point, for the points that need more than one.
	ConfirmOperators map[string]int  `yaml:"-"`
	Dataplane        DataplaneConfig `yaml:"dataplane"`
	// RequireRehearsal refuses a run of these bytes (runbook and
	// inventory) without a green lab rehearsal of exactly them on record.
	RequireRehearsal bool `yaml:"require_rehearsal"`

	File          string `yaml:"-"` // path the runbook was read from
	InventoryPath string `yaml:"-"` // Inventory resolved against the runbook's directory
	Digest        string `yaml:"-"` // SHA-256 of the runbook file, hex

	pos positions
}

// Site is a place VMs live, as BGP and the dataplane see it.
type Site struct {
	Name        string   `yaml:"-"` // the key in sites:
	Description string   `yaml:"description"`
	NextHop     NextHops `yaml:"next_hop"`
	// Attributes of the routes announced for VMs at this site.
	Communities      []bgp.Community      `yaml:"communities"`
	LargeCommunities []bgp.LargeCommunity `yaml:"large_communities"`
	LocalPref        uint32               `yaml:"local_pref"` // 0: not sent
	MED              *uint32              `yaml:"med"`        // nil: not sent
	Prepend          uint8                `yaml:"prepend"`
	// Steering is the mark and routing table of the site's nft set; when
	// not written they are derived from the site's position in the sorted
	// site names: mark 0x0c070000+i, table 7000+i.
	Steering Steering `yaml:"steering"`
}

// NextHops are a site's BGP next-hops, one per address family.
type NextHops struct {
	IPv4 netip.Addr `yaml:"ipv4"`
	IPv6 netip.Addr `yaml:"ipv6"`
}

// For returns the next-hop for prefixes of p's family (zero if none).
func (n NextHops) For(p netip.Prefix) netip.Addr {
	if p.Addr().Is4() {
		return n.IPv4
	}
	return n.IPv6
}

// Steering is a site's firewall mark and routing table.
type Steering struct {
	Mark  uint32 `yaml:"mark"`
	Table int    `yaml:"table"`
}

// Move names the source and the target site.
type Move struct {
	From string `yaml:"from" json:"from"`
	To   string `yaml:"to" json:"to"`
}

// BGPConfig is how the controller speaks BGP.
type BGPConfig struct {
	LocalAS  uint32     `yaml:"local_as"`
	RouterID netip.Addr `yaml:"router_id"`
	// ListenPort is the TCP port to accept sessions on; -1 (the default)
	// only dials out.
	ListenPort int `yaml:"listen_port"`
	// AnnounceSource makes the baseline announce every VM at the source
	// site; a batch then changes the next-hop instead of adding a route.
	AnnounceSource  bool            `yaml:"announce_source"`
	GracefulRestart GracefulRestart `yaml:"graceful_restart"`
	// BMP is the controller's BMP station, for peers with observe: bmp.
	BMP   BMP    `yaml:"bmp"`
	Peers []Peer `yaml:"peers"`
}

// BMP is where the controller's BMP station (RFC 7854) listens for the
// edges' sessions.
type BMP struct {
	// Listen is the station's address and port; default [::]:11019 (every
	// address) when a peer observes by BMP. The edges connect to it: give
	// an address of the controller they reach, or leave the address
	// unspecified and they are told the address they peer with.
	Listen netip.AddrPort `yaml:"listen"`
}

// UsesBMP reports whether a peer observes by BMP.
func (g BGPConfig) UsesBMP() bool {
	return slices.ContainsFunc(g.Peers, func(p Peer) bool { return p.Observe == bgp.ProofBMP })
}

// GracefulRestart is the controller's graceful restart (RFC 4724) setting.
type GracefulRestart struct {
	Enabled     bool          `yaml:"enabled"`      // default true
	RestartTime time.Duration `yaml:"restart_time"` // default 120s; whole seconds, at most 4095s
}

// Peer is one BGP neighbor.
type Peer struct {
	Address     netip.Addr `yaml:"address"`
	AS          uint32     `yaml:"as"`
	Port        uint16     `yaml:"port"` // default 179
	Description string     `yaml:"description"`
	// Password is the TCP MD5 password; PasswordEnv names an environment
	// variable that holds it instead (keeps secrets out of the runbook).
	Password    string        `yaml:"password"`
	PasswordEnv string        `yaml:"password_env"`
	HoldTime    time.Duration `yaml:"hold_time"` // default 90s; 0 disables keepalives
	Keepalive   time.Duration `yaml:"keepalive"` // default hold_time/3
	// Observe is how the bgp gate learns that the peer holds the batch's
	// routes: bmp (the router streams to the controller's BMP station),
	// mirror (the router sends its best paths back, FRR's
	// attribute-unchanged next-hop), sent (weak: the UPDATEs went out and
	// a KEEPALIVE came back after them) or false (the peer's view does not
	// count). Default mirror; true is mirror.
	Observe bgp.Proof `yaml:"observe"`
	// ObserveFallback, with observe: bmp, is the proof used while the
	// router has never opened a BMP session to the station (mirror or
	// sent): for a runbook rehearsed against routers with and without BMP.
	ObserveFallback bgp.Proof `yaml:"observe_fallback"`
}

// MinPrefixLength is the shortest prefix a runbook accepts, per address
// family: in the inventory (a route the run announces) and as a range of
// allowed_prefixes. The defaults stop aggregates (0.0.0.0/1 and
// 128.0.0.0/1 are a default route in two halves) and are never hit by the
// host routes and small subnets of VMs; a runbook may lower them
// explicitly, or raise them.
type MinPrefixLength struct {
	IPv4        int `yaml:"ipv4"`         // inventory prefixes; default 24
	IPv6        int `yaml:"ipv6"`         // inventory prefixes; default 48
	AllowedIPv4 int `yaml:"allowed_ipv4"` // allowed_prefixes ranges; default 12
	AllowedIPv6 int `yaml:"allowed_ipv6"` // allowed_prefixes ranges; default 32
}

// Default minimum prefix lengths; see MinPrefixLength.
const (
	DefaultMinPrefixLengthIPv4  = 24
	DefaultMinPrefixLengthIPv6  = 48
	DefaultMinAllowedLengthIPv4 = 12
	DefaultMinAllowedLengthIPv6 = 32
)

// Prefix returns the minimum length of an inventory prefix of p's family
// and the field that sets it.
func (m MinPrefixLength) Prefix(p netip.Prefix) (int, string) {
	if p.Addr().Is4() {
		return m.IPv4, "min_prefix_length.ipv4"
	}
	return m.IPv6, "min_prefix_length.ipv6"
}

// Allowed returns the minimum length of an allowed_prefixes range of p's
// family and the field that sets it.
func (m MinPrefixLength) Allowed(p netip.Prefix) (int, string) {
	if p.Addr().Is4() {
		return m.AllowedIPv4, "min_prefix_length.allowed_ipv4"
	}
	return m.AllowedIPv6, "min_prefix_length.allowed_ipv6"
}

// Batching says how the VMs are cut into batches.
type Batching struct {
	// Canary is the number of VMs in the first batch, taken round-robin
	// across tenants and never tier 1; 0: no canary batch. Default 10.
	Canary int `yaml:"canary"`
	// Size is the most VMs in one batch (default 200).
	Size int `yaml:"size"`
	// GroupByTenant keeps a tenant's VMs together in as few batches as
	// possible; otherwise every batch is spread across tenants.
	GroupByTenant bool `yaml:"group_by_tenant"`
	// MaxPerTenant is the most VMs of one tenant in one batch; 0: no limit.
	MaxPerTenant int `yaml:"max_per_tenant"`
}

// Ratio is a share between 0 and 1, written "99%" or 0.99.
type Ratio float64

// UnmarshalText parses "99%", "99.5%" or 0.99.
func (r *Ratio) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if pct, ok := strings.CutSuffix(s, "%"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(pct), 64)
		if err != nil || f < 0 || f > 100 {
			return fmt.Errorf("want a percentage from 0%% to 100%%")
		}
		*r = Ratio(f / 100)
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("want a percentage such as 99%% or a fraction such as 0.99")
	}
	if f > 1 && f <= 100 {
		return fmt.Errorf("want a fraction from 0 to 1: write %s%% for a percentage", s)
	}
	if f < 0 || f > 1 {
		return fmt.Errorf("want a fraction from 0 to 1 or a percentage")
	}
	*r = Ratio(f)
	return nil
}

// MarshalText writes the ratio as a percentage.
func (r Ratio) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// String writes the ratio as a percentage, e.g. "99%".
func (r Ratio) String() string { return strconv.FormatFloat(float64(r)*100, 'f', -1, 64) + "%" }

// DataplaneConfig is where the nft steering is programmed.
type DataplaneConfig struct {
	Enabled bool   `yaml:"enabled"` // default true; false: BGP only
	Table   string `yaml:"table"`   // inet table, default "cutover"
	Netns   string `yaml:"netns"`   // network namespace by name; "": the current one
}

// ChangeWindow is the time of day batches may start. It may span midnight.
type ChangeWindow struct {
	Start    string   `yaml:"start"`    // "23:00"
	End      string   `yaml:"end"`      // "01:00"; "24:00" is midnight
	Timezone string   `yaml:"timezone"` // IANA name, e.g. Europe/Oslo
	Days     []string `yaml:"days"`     // days the window opens (mon..sun); empty: every day

	start, length time.Duration // from local midnight; length > 0
	loc           *time.Location
	days          [7]bool // by time.Weekday
}

var weekdays = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// Open returns nil while the window is open at now, and otherwise an
// error that says when it opens next.
func (w *ChangeWindow) Open(now time.Time) error {
	if w == nil {
		return nil
	}
	if open, _ := w.Around(now); !open.IsZero() {
		return nil
	}
	if s := w.Next(now); !s.IsZero() {
		return fmt.Errorf("outside the change window %s: opens %s (in %s)",
			w, s.Format("Mon 2006-01-02 15:04 MST"), s.Sub(now).Round(time.Minute))
	}
	return fmt.Errorf("outside the change window %s", w)
}

// midnight is the start of t's day in the window's zone, days later.
func (w *ChangeWindow) midnight(t time.Time, days int) time.Time {
	y, m, d := t.In(w.loc).Date()
	return time.Date(y, m, d+days, 0, 0, 0, 0, w.loc)
}

// Around returns the opening of the window that t falls in and when it
// closes; zeros when the window is closed at t. A window that opened
// yesterday may still be open.
func (w *ChangeWindow) Around(t time.Time) (open, close time.Time) {
	for back := 1; back >= 0; back-- {
		s := w.openAt(w.midnight(t, -back))
		if !s.IsZero() && !t.Before(s) && t.Before(s.Add(w.length)) {
			return s, s.Add(w.length)
		}
	}
	return time.Time{}, time.Time{}
}

// Next returns the window's first opening after t (at t when it opens
// exactly then); zero only for a window that never opens.
func (w *ChangeWindow) Next(t time.Time) time.Time {
	for ahead := 0; ahead <= 7; ahead++ {
		if s := w.openAt(w.midnight(t, ahead)); !s.IsZero() && !s.Before(t) {
			return s
		}
	}
	return time.Time{}
}

// Location is the window's time zone.
func (w *ChangeWindow) Location() *time.Location { return w.loc }

// openAt returns when the window opens on the day of midnight, or zero.
func (w *ChangeWindow) openAt(midnight time.Time) time.Time {
	if !w.days[midnight.Weekday()] {
		return time.Time{}
	}
	h, m := int(w.start/time.Hour), int(w.start%time.Hour/time.Minute)
	y, mo, d := midnight.Date()
	return time.Date(y, mo, d, h, m, 0, 0, w.loc)
}

// String describes the window as written, e.g. "23:00-01:00 Europe/Oslo".
func (w *ChangeWindow) String() string {
	s := fmt.Sprintf("%s-%s %s", w.Start, w.End, w.Timezone)
	if len(w.Days) > 0 {
		s += " on " + strings.Join(w.Days, ",")
	}
	return s
}

// Confirmation points (go/no-go): before-batch:N and after-batch:N name
// the batch "batch-NN" of the plan.
const (
	ConfirmBeforeStart = "before-start"
	ConfirmAfterCanary = "after-canary"
	ConfirmBeforeEnd   = "before-end"
)

// MaxConfirmOperators is the most operators a go/no-go point may need.
const MaxConfirmOperators = 5

// ConfirmPoint is a go/no-go point as written in confirm: either its name
// (before-start) or a mapping {point: before-start, operators: 2} for a
// point that needs that many different operators to say go (four eyes).
type ConfirmPoint struct {
	Point string `yaml:"point"`
	// Operators is how many different operators must say go; 0 (not
	// written) means one.
	Operators int `yaml:"operators"`
}

// DecodeNode takes both shapes of a confirm entry.
func (c *ConfirmPoint) DecodeNode(d *strict.Decoder, n *yaml.Node, path string) {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.ScalarNode:
		d.Decode(n, path, reflect.ValueOf(&c.Point).Elem())
	case yaml.MappingNode:
		type plain ConfirmPoint // without DecodeNode: decoded field by field
		d.Decode(n, path, reflect.ValueOf((*plain)(c)).Elem())
		if c.Point == "" {
			d.P.Add(d.File, n.Line, path+".point", "", "missing: name the go/no-go point (before-start, after-canary, before-batch:N, after-batch:N or before-end)")
		}
	default:
		d.P.Add(d.File, n.Line, path, "", "want a point (before-start) or a mapping {point: before-start, operators: 2}, not %s", strict.KindName(n))
	}
}

// Operators returns how many different operators must say go at point.
func (rb *Runbook) Operators(point string) int {
	if n := rb.ConfirmOperators[point]; n > 1 {
		return n
	}
	return 1
}

// PointText names a go/no-go point for people, with the operators it
// needs when that is more than one: "before-start (2 operators)".
func (rb *Runbook) PointText(point string) string {
	if n := rb.Operators(point); n > 1 {
		return fmt.Sprintf("%s (%d operators)", point, n)
	}
	return point
}

// SiteNames returns the site names, sorted.
func (rb *Runbook) SiteNames() []string {
	names := make([]string, 0, len(rb.Sites))
	for n := range rb.Sites {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Source returns the site the VMs move from.
func (rb *Runbook) Source() *Site { return rb.Sites[rb.Move.From] }

// Target returns the site the VMs move to.
func (rb *Runbook) Target() *Site { return rb.Sites[rb.Move.To] }

// Line returns the line of a field path such as "bgp.peers[0].address"
// (or of its closest written parent; 0 if none).
func (rb *Runbook) Line(path string) int { return rb.pos.Line(path) }

// LoadRunbook reads and checks a runbook file on its own, without its
// inventory. Errors are ValidationErrors.
func LoadRunbook(path string) (*Runbook, []Warning, error) {
	var p problems
	rb := loadRunbook(path, &p)
	if err := p.Err(); err != nil {
		return nil, p.Warnings(), err
	}
	return rb, p.Warnings(), nil
}

func loadRunbook(path string, p *problems) *Runbook {
	data, err := readRegular(path, runbookLimit)
	if err != nil {
		p.Add(path, 0, "", "", "cannot read the runbook: %s", fileErr(err))
		return nil
	}
	return parseRunbook(path, data, p)
}

// ParseRunbook parses and checks runbook text; name is used for messages
// and to resolve the inventory path.
func ParseRunbook(name string, data []byte) (*Runbook, []Warning, error) {
	var p problems
	rb := parseRunbook(name, data, &p)
	if err := p.Err(); err != nil {
		return nil, p.Warnings(), err
	}
	return rb, p.Warnings(), nil
}

func parseRunbook(file string, data []byte, p *problems) *Runbook {
	if err := checkSize(data, runbookLimit); err != nil {
		p.Add(file, 0, "", "", "%s", err)
		return nil
	}
	root := strict.ParseYAML(file, data, p)
	if root == nil {
		return nil
	}
	sum := sha256.Sum256(data)
	rb := &Runbook{File: file, Digest: hex.EncodeToString(sum[:])}
	d := &strict.Decoder{File: file, P: p, Pos: strict.Positions{}}
	if root.Kind != yaml.MappingNode {
		p.Add(file, root.Line, "", "", "want a mapping of runbook fields (version: 1, name: ..., ...), not %s", strict.KindName(root))
		return nil
	}
	d.Decode(root, "", reflect.ValueOf(rb).Elem())
	rb.pos = d.Pos
	rb.defaults()
	rb.check(p)
	return rb
}

// defaults fills in the fields that were not written.
func (rb *Runbook) defaults() {
	has := rb.pos.Has
	rb.Confirm, rb.ConfirmOperators = nil, nil
	for _, c := range rb.ConfirmPoints {
		rb.Confirm = append(rb.Confirm, c.Point)
		if c.Operators > 1 {
			if rb.ConfirmOperators == nil {
				rb.ConfirmOperators = map[string]int{}
			}
			rb.ConfirmOperators[c.Point] = c.Operators
		}
	}
	if !has("bgp.listen_port") {
		rb.BGP.ListenPort = -1
	}
	if !has("bgp.graceful_restart.enabled") {
		rb.BGP.GracefulRestart.Enabled = true
	}
	if !has("bgp.graceful_restart.restart_time") {
		rb.BGP.GracefulRestart.RestartTime = 120 * time.Second
	}
	for i := range rb.BGP.Peers {
		pr := &rb.BGP.Peers[i]
		at := fmt.Sprintf("bgp.peers[%d].", i)
		if !has(at + "port") {
			pr.Port = 179
		}
		if !has(at + "hold_time") {
			pr.HoldTime = 90 * time.Second
		}
		if !has(at + "keepalive") {
			pr.Keepalive = (pr.HoldTime / 3).Truncate(time.Second)
		}
		if !has(at + "observe") {
			pr.Observe = bgp.ProofMirror
		}
	}
	if !has("bgp.bmp.listen") && rb.BGP.UsesBMP() {
		rb.BGP.BMP.Listen = netip.AddrPortFrom(netip.IPv6Unspecified(), bgp.DefaultBMPPort)
	}
	mpl := &rb.MinPrefixLength
	for _, f := range []struct {
		key string
		v   *int
		def int
	}{
		{"ipv4", &mpl.IPv4, DefaultMinPrefixLengthIPv4},
		{"ipv6", &mpl.IPv6, DefaultMinPrefixLengthIPv6},
		{"allowed_ipv4", &mpl.AllowedIPv4, DefaultMinAllowedLengthIPv4},
		{"allowed_ipv6", &mpl.AllowedIPv6, DefaultMinAllowedLengthIPv6},
	} {
		if !has("min_prefix_length." + f.key) {
			*f.v = f.def
		}
	}
	if !has("batching.canary") {
		rb.Batching.Canary = 10
	}
	if !has("batching.size") {
		rb.Batching.Size = 200
	}
	if !has("gates") {
		rb.Gates = []GateConfig{{Kind: GateBGP}}
	}
	for i := range rb.Gates {
		rb.Gates[i].defaults(fmt.Sprintf("gates[%d].", i), has)
	}
	if rb.FailurePolicy == "" {
		rb.FailurePolicy = engine.RollbackBatch
	}
	if !has("dataplane.enabled") {
		rb.Dataplane.Enabled = true
	}
	if rb.Dataplane.Table == "" {
		rb.Dataplane.Table = "cutover"
	}
	if !has("readiness") {
		switch {
		case !rb.Dataplane.Enabled:
			rb.Readiness = engine.ReadyOff
		case rb.FailurePolicy == engine.RollbackBatch:
			rb.Readiness = engine.ReadySkip
		default:
			rb.Readiness = engine.ReadyPause
		}
	}
	for i, name := range rb.SiteNames() {
		s := rb.Sites[name]
		if s == nil {
			s = &Site{}
			rb.Sites[name] = s
		}
		s.Name = name
		if !has("sites." + name + ".steering.mark") {
			s.Steering.Mark = 0x0c070000 + uint32(i)
		}
		if !has("sites." + name + ".steering.table") {
			s.Steering.Table = 7000 + i
		}
	}
	if rb.Inventory != "" {
		rb.InventoryPath = rb.Inventory
		if !filepath.IsAbs(rb.Inventory) {
			rb.InventoryPath = filepath.Join(filepath.Dir(rb.File), rb.Inventory)
		}
	}
}
