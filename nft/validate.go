package nft

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cutover/cutover/nft/internal/layout"
)

// Validate checks s: site names, marks and routing tables, next-hops, and
// every moved prefix (valid, masked, of a family the site has a next-hop for,
// in at most one site and overlapping no other). The error lists every
// problem (up to 25), one per line.
func Validate(s State) error {
	_, err := compile(s)
	return err
}

// compile validates s and builds its sets.
func compile(s State) (*layout.Compiled, error) {
	sites := make([]layout.Site, len(s.Sites))
	for i, site := range s.Sites {
		sites[i] = layout.Site(site)
	}
	return layout.Compile(sites, s.Moved)
}

// WithDefaults returns c with its zero fields set to the defaults:
// DefaultTable, DefaultDrainTimeout and DefaultRulePriority.
func (c Config) WithDefaults() Config {
	if c.Table == "" {
		c.Table = DefaultTable
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.RulePriority == 0 {
		c.RulePriority = DefaultRulePriority
	}
	return c
}

// Validate checks c (after defaults).
func (c Config) Validate() error {
	c = c.WithDefaults()
	var errs []error
	if len(c.Table) > 64 || strings.IndexFunc(c.Table, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
	}) >= 0 {
		errs = append(errs, fmt.Errorf("table %q: want 1 to 64 of a-z, A-Z, 0-9, _ and -", c.Table))
	}
	if c.NetNS != "" && (strings.Contains(c.NetNS, "/") || c.NetNS == "." || c.NetNS == "..") {
		errs = append(errs, fmt.Errorf("netns %q: want a name under /run/netns", c.NetNS))
	}
	if c.DrainTimeout < 0 {
		errs = append(errs, fmt.Errorf("drain timeout %s is negative", c.DrainTimeout))
	}
	if c.RulePriority < 1 || c.RulePriority > 32765 {
		errs = append(errs, fmt.Errorf("rule priority %d is out of range 1-32765", c.RulePriority))
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid dataplane config: %w", errors.Join(errs...))
	}
	return nil
}
