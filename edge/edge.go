// Package edge renders what an edge router needs to accept the cutover
// controller: the BGP sessions toward the controller's addresses with
// their timers, MD5 password and graceful restart helper, the filter
// that takes only prefixes inside the runbook's allowed ranges, the
// prefix limit, the outbound policy (the "mirror" that sends the edge's
// best paths back so the controller's bgp gate can see the edge's view)
// and a BMP station. One Input renders for every flavour: frr, bird,
// gobgp, junos, eos. What a flavour cannot do is said in a comment of its
// output, never silently left out.
package edge

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/cutover/cutover/internal/words"
)

// Flavors are the router flavours Render knows, in the order help texts
// list them.
var Flavors = []string{"frr", "bird", "gobgp", "junos", "eos"}

// Input is everything an edge's config is rendered from.
type Input struct {
	Flavor string
	// About says, in the header comment, what the config is for (runbook
	// and peer); one line.
	About string
	// RouterAS and RouterID are the edge's own AS and BGP identifier;
	// RouterID may be invalid (zero) when it is not known (an IPv6 peer):
	// the config then leaves the edge's own router-id alone.
	RouterAS uint32
	RouterID netip.Addr
	// ControllerAS is the controller's AS (bgp.local_as); equal to
	// RouterAS makes the sessions iBGP.
	ControllerAS uint32
	// Controllers are the controller's addresses the edge peers with.
	Controllers []netip.Addr
	// Port is the TCP port the controller dials on the edge (0: 179).
	Port uint16
	// HoldTime and Keepalive of the sessions; HoldTime 0 turns keepalives
	// off (both zero).
	HoldTime, Keepalive time.Duration
	Password            string // TCP MD5; "" none
	// Allowed are the ranges the edge accepts from the controller, every
	// prefix inside them up to a host route.
	Allowed []netip.Prefix
	// MaxPrefixes is the most prefixes the edge accepts from the
	// controller per address family; more tear the session down, which
	// withdraws the controller's routes and leaves the network's own.
	MaxPrefixes int
	// GracefulRestart makes the edge a graceful restart helper (RFC 4724):
	// a restarting controller keeps its routes for RestartTime, and
	// beyond it, as long-lived stale routes (RFC 9494), for LongLivedStale
	// where the flavour has long-lived graceful restart (0: not offered).
	GracefulRestart bool
	RestartTime     time.Duration
	LongLivedStale  time.Duration
	// Mirror sends the edge's best paths for the allowed ranges back to
	// the controller with the next-hop unchanged, where the flavour can;
	// otherwise nothing is sent to the controller.
	Mirror bool
	// BMP is the BMP station the edge reports to; invalid: none.
	BMP netip.AddrPort
	// Covering are static routes the edge carries for the VM ranges (the
	// lab's edge has them: the network's own routes). Optional.
	Covering []Covering
}

// Covering is a static route: Prefix via NextHop, at site Via (for the
// comment; may be "").
type Covering struct {
	Prefix  netip.Prefix
	NextHop netip.Addr
	Via     string
}

// Names of the objects every flavour creates, so that an operator finds
// the same names on every router.
const (
	groupName  = "CONTROLLER"
	inPolicy   = "CONTROLLER-IN"
	outPolicy  = "CONTROLLER-OUT"
	rangesV4   = "VM-RANGES-V4"
	rangesV6   = "VM-RANGES-V6"
	bmpStation = "cutover"
)

// Timing limits that every flavour accepts.
const (
	// stalePathFactor: after a restarted controller's session is back, the
	// edge keeps its stale paths this many restart times for it to
	// re-announce everything before End-of-RIB (the lab's 360 s for 120 s).
	stalePathFactor = 3
	// maxStalePath is the most Junos takes for stale-routes-time; the
	// others take more, but one value keeps the flavours alike.
	maxStalePath = 600 * time.Second
)

// Render returns the config of in.Flavor for the edge in describes.
func Render(in Input) (string, error) {
	r, ok := renderers[in.Flavor]
	if !ok {
		return "", fmt.Errorf("edge: flavor %q: want %s", in.Flavor, words.OrList(Flavors))
	}
	if err := in.validate(); err != nil {
		return "", fmt.Errorf("edge: %s: %w", in.Flavor, err)
	}
	out, err := r(in)
	if err != nil {
		return "", fmt.Errorf("edge: %s: %w", in.Flavor, err)
	}
	return out, nil
}

var renderers = map[string]func(Input) (string, error){
	"frr":   renderFRR,
	"bird":  renderBIRD,
	"gobgp": renderGoBGP,
	"junos": renderJunos,
	"eos":   renderEOS,
}

// validate checks what every flavour needs; errors name the field.
func (in Input) validate() error {
	var errs []error
	if in.RouterAS == 0 {
		errs = append(errs, errors.New("router AS: want the edge's AS, not 0"))
	}
	if in.RouterID.IsValid() && !in.RouterID.Is4() {
		errs = append(errs, fmt.Errorf("router-id %s: want an IPv4 address", in.RouterID))
	}
	if in.ControllerAS == 0 {
		errs = append(errs, errors.New("controller AS: want the controller's AS (bgp.local_as), not 0"))
	}
	errs = append(errs, in.validateControllers()...)
	errs = append(errs, in.validateTimers()...)
	if len(in.Allowed) == 0 {
		errs = append(errs, errors.New("no allowed prefixes: the edge would accept nothing from the controller"))
	}
	for _, p := range in.Allowed {
		if !p.IsValid() || p != p.Masked() || p.Bits() == 0 {
			errs = append(errs, fmt.Errorf("allowed prefix %s: want a range without host bits, not a default route", p))
		}
	}
	if in.MaxPrefixes < 1 {
		errs = append(errs, fmt.Errorf("max prefixes %d: want at least 1", in.MaxPrefixes))
	}
	if err := checkPassword(in.Password); err != nil {
		errs = append(errs, err)
	}
	if in.BMP.IsValid() && in.BMP.Port() == 0 {
		errs = append(errs, fmt.Errorf("BMP station %s: want a port", in.BMP))
	}
	for _, c := range in.Covering {
		if !c.Prefix.IsValid() || !c.NextHop.IsValid() || c.Prefix.Addr().Is4() != c.NextHop.Is4() {
			errs = append(errs, fmt.Errorf("covering route %s via %s: want a prefix and a next-hop of its family", c.Prefix, c.NextHop))
		}
	}
	return errors.Join(errs...)
}

func (in Input) validateControllers() []error {
	if len(in.Controllers) == 0 {
		return []error{errors.New("no controller address: the edge must know whom to peer with")}
	}
	var errs []error
	for i, c := range in.Controllers {
		switch {
		case !c.IsValid() || c.IsUnspecified() || c.Zone() != "":
			errs = append(errs, fmt.Errorf("controller address %q: want a unicast address without zone", c))
		case slices.Contains(in.Controllers[:i], c):
			errs = append(errs, fmt.Errorf("controller address %s: listed twice", c))
		}
	}
	return errs
}

func (in Input) validateTimers() []error {
	var errs []error
	whole := func(d time.Duration) bool { return d%time.Second == 0 }
	switch {
	case !whole(in.HoldTime) || !whole(in.Keepalive):
		errs = append(errs, fmt.Errorf("hold time %s, keepalive %s: want whole seconds", in.HoldTime, in.Keepalive))
	case in.HoldTime == 0 && in.Keepalive != 0:
		errs = append(errs, fmt.Errorf("keepalive %s with hold time 0: a hold time of 0 turns keepalives off", in.Keepalive))
	case in.HoldTime != 0 && (in.HoldTime < 3*time.Second || in.HoldTime > 65535*time.Second):
		errs = append(errs, fmt.Errorf("hold time %s: want 0 or 3s to 65535s", in.HoldTime))
	case in.HoldTime != 0 && (in.Keepalive < time.Second || in.Keepalive >= in.HoldTime):
		errs = append(errs, fmt.Errorf("keepalive %s: want at least 1s and less than the hold time %s", in.Keepalive, in.HoldTime))
	}
	if in.GracefulRestart && (in.RestartTime < time.Second || in.RestartTime > 4095*time.Second || !whole(in.RestartTime)) {
		errs = append(errs, fmt.Errorf("restart time %s: want whole seconds from 1s to 4095s", in.RestartTime))
	}
	if in.LongLivedStale < 0 || in.LongLivedStale > 16777215*time.Second || !whole(in.LongLivedStale) {
		errs = append(errs, fmt.Errorf("long-lived stale time %s: want whole seconds up to 16777215s", in.LongLivedStale))
	}
	return errs
}

// checkPassword refuses what no flavour can write as one word on one
// line: every config quotes it differently or not at all.
func checkPassword(p string) error {
	if len(p) > 80 {
		return fmt.Errorf("password: %d bytes, want at most 80 (the TCP MD5 key limit)", len(p))
	}
	for _, r := range p {
		if r <= ' ' || r > '~' || strings.ContainsRune(`"'\#!;{}`, r) {
			return fmt.Errorf("password: contains %q: want printable ASCII without spaces, quotes or any of \\#!;{} (the routers' config syntax)", r)
		}
	}
	return nil
}

// SplitFamilies splits prefixes into IPv4 and IPv6, in their order.
func SplitFamilies(ps []netip.Prefix) (v4, v6 []netip.Prefix) {
	for _, p := range ps {
		if p.Addr().Is4() {
			v4 = append(v4, p)
		} else {
			v6 = append(v6, p)
		}
	}
	return v4, v6
}

// secs writes d in whole seconds.
func secs(d time.Duration) int64 { return int64(d / time.Second) }

// stalePath is how long the edge keeps a restarted controller's stale
// paths once the session is back (see stalePathFactor).
func stalePath(in Input) time.Duration {
	return min(stalePathFactor*in.RestartTime, maxStalePath)
}

// ibgp reports whether the sessions are iBGP: the edge then sends a
// peer's routes back to nobody of its AS, so nothing can mirror them.
func (in Input) ibgp() bool { return in.RouterAS == in.ControllerAS }

// mirrors reports whether the output sends best paths back: asked for,
// and possible over eBGP.
func (in Input) mirrors() bool { return in.Mirror && !in.ibgp() }

// header is the comment block every config starts with; c is the
// flavour's comment leader.
func header(in Input, c string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s Edge router config (%s) generated by cutover, do not edit: regenerate with cutover edge-config.\n", c, in.Flavor)
	if in.About != "" {
		fmt.Fprintf(&b, "%s For %s.\n", c, in.About)
	}
	fmt.Fprintf(&b, "%s Sessions with controller AS %d at %s.\n", c, in.ControllerAS, joinAddrs(in.Controllers))
	return b.String()
}

func joinAddrs(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

// writer appends formatted lines.
type writer struct{ b strings.Builder }

func (w *writer) l(format string, a ...any) { fmt.Fprintf(&w.b, format+"\n", a...) }

func (w *writer) String() string { return w.b.String() }
