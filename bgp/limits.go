package bgp

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Limits are the safety rails every announcement passes before anything is
// sent. The zero Limits allows nothing.
type Limits struct {
	// Allowed are the ranges announced prefixes must fall inside (equal to
	// or more specific than one of them).
	Allowed []netip.Prefix
	// MaxPrefixes caps how many routes may be announced at once.
	MaxPrefixes int
}

// Validate checks that the limits themselves make sense.
func (l Limits) Validate() error {
	var errs []error
	if len(l.Allowed) == 0 {
		errs = append(errs, errors.New("limits: allowed ranges: at least one is needed"))
	}
	for _, p := range l.Allowed {
		switch {
		case !p.IsValid():
			errs = append(errs, errors.New("limits: allowed range: invalid prefix"))
		case p.Addr().Is4In6():
			errs = append(errs, fmt.Errorf("limits: allowed range %s: IPv4-mapped IPv6; write it as IPv4", p))
		case p.Addr().Zone() != "":
			errs = append(errs, fmt.Errorf("limits: allowed range %s: zones are not supported", p))
		case p != p.Masked():
			errs = append(errs, fmt.Errorf("limits: allowed range %s: host bits set, want %s", p, p.Masked()))
		case p.Bits() == 0:
			errs = append(errs, fmt.Errorf("limits: allowed range %s: would allow everything", p))
		}
	}
	if l.MaxPrefixes < 1 {
		errs = append(errs, fmt.Errorf("limits: max prefixes %d: must be at least 1", l.MaxPrefixes))
	}
	return errors.Join(errs...)
}

// maxOffenses is how many offending routes a RefusedError lists.
const maxOffenses = 10

// RefusedError is returned by CheckRoutes, and by Set before anything is
// sent, when routes break the Limits or are malformed.
type RefusedError struct {
	Routes int // routes checked
	// OverMax reports whether Routes exceeds MaxPrefixes.
	OverMax     bool
	MaxPrefixes int
	// Offending is how many routes broke a rule; Offenses lists the first
	// few of them in input order.
	Offending int
	Offenses  []Offense
}

// Offense is one refused route and why.
type Offense struct {
	Route  Route
	Reason string
}

func (e *RefusedError) Error() string {
	var parts []string
	if e.OverMax {
		parts = append(parts, fmt.Sprintf("%d routes, more than max prefixes %d", e.Routes, e.MaxPrefixes))
	}
	if e.Offending > 0 {
		var b strings.Builder
		fmt.Fprintf(&b, "%d of %d break the limits: ", e.Offending, e.Routes)
		for i, o := range e.Offenses {
			if i > 0 {
				b.WriteString("; ")
			}
			fmt.Fprintf(&b, "%s: %s", routeName(o.Route), o.Reason)
		}
		if more := e.Offending - len(e.Offenses); more > 0 {
			fmt.Fprintf(&b, " (and %d more)", more)
		}
		parts = append(parts, b.String())
	}
	return "refuse routes: " + strings.Join(parts, "; ")
}

func routeName(r Route) string {
	p, nh := "<no prefix>", "<no next-hop>"
	if r.Prefix.IsValid() {
		p = r.Prefix.String()
	}
	if r.NextHop.IsValid() {
		nh = r.NextHop.String()
	}
	return p + " via " + nh
}

// CheckRoutes reports, as a *RefusedError, whether any route is malformed or
// outside limits: every prefix canonical and inside an allowed range, never
// a default route, a next-hop of the prefix's family, no prefix twice, and
// no more than MaxPrefixes routes. It is pure and safe for concurrent use.
func CheckRoutes(routes []Route, l Limits) error {
	e := &RefusedError{Routes: len(routes), OverMax: len(routes) > l.MaxPrefixes, MaxPrefixes: l.MaxPrefixes}
	seen := make(map[netip.Prefix]struct{}, len(routes))
	for _, r := range routes {
		reason := checkRoute(r, l.Allowed)
		if reason == "" {
			if _, dup := seen[r.Prefix]; dup {
				reason = "duplicate prefix"
			}
			seen[r.Prefix] = struct{}{}
		}
		if reason == "" {
			continue
		}
		e.Offending++
		if len(e.Offenses) < maxOffenses {
			e.Offenses = append(e.Offenses, Offense{Route: r, Reason: reason})
		}
	}
	if !e.OverMax && e.Offending == 0 {
		return nil
	}
	return e
}

// checkRoute returns why r is refused, or "".
func checkRoute(r Route, allowed []netip.Prefix) string {
	p, nh := r.Prefix, r.NextHop
	switch {
	case !p.IsValid():
		return "invalid prefix"
	case p.Addr().Is4In6():
		return "IPv4-mapped IPv6 prefix; write it as IPv4"
	case p.Addr().Zone() != "":
		return "prefix has a zone"
	case p != p.Masked():
		return fmt.Sprintf("host bits set, want %s", p.Masked())
	case p.Bits() == 0:
		return "default route"
	case !nh.IsValid():
		return "no next-hop"
	case nh.Is4In6():
		return "IPv4-mapped IPv6 next-hop; write it as IPv4"
	case nh.Is4() != p.Addr().Is4():
		return fmt.Sprintf("next-hop is %s, prefix is %s", family(nh), family(p.Addr()))
	case nh.IsUnspecified() || nh.IsMulticast() || nh.Zone() != "":
		return "next-hop must be a unicast address without zone"
	}
	for _, a := range allowed {
		if a.Addr().Is4() == p.Addr().Is4() && a.Bits() <= p.Bits() && a.Contains(p.Addr()) {
			return ""
		}
	}
	return "outside the allowed ranges " + prefixList(allowed)
}

func family(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

func prefixList(ps []netip.Prefix) string {
	if len(ps) == 0 {
		return "(none)"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}
