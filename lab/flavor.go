package lab

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cutover/cutover/internal/words"
)

// The routers an edge can run. Each gets its BGP configuration from
// package edge (edge.Render), the same code as `cutover edge-config`, so
// every rehearsal tests what an operator would put on the router.
const (
	// FlavorFRR is FRR: zebra, staticd (the covering routes) and bgpd
	// with its BMP module.
	FlavorFRR = "frr"
	// FlavorBIRD is BIRD 2: its kernel protocol puts the covering routes
	// and the controller's into the edge's FIB. It has no BMP and sends
	// no route back to the session it came from (no mirror).
	FlavorBIRD = "bird"
	// FlavorGoBGP is gobgpd, installing its best paths into the FIB
	// through FRR's zebra (which staticd's covering routes go through
	// too). It sends no route back to the session it came from (no
	// mirror), and reports to the BMP station.
	FlavorGoBGP = "gobgp"
)

// Flavors lists the edge flavours, the default first.
var Flavors = []string{FlavorFRR, FlavorBIRD, FlavorGoBGP}

// ParseFlavors reads the --edge flag: one flavour for every edge, or a
// comma-separated list of one per edge in the order of the edges (the
// runbook's bgp.peers). It checks the names, not the count (the lab's
// shape knows that: ExpandFlavors).
func ParseFlavors(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("edge flavour: empty: want %s, or a comma-separated list of them (one per edge)", words.OrList(Flavors))
	}
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if err := checkFlavor(f); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

func checkFlavor(f string) error {
	if !slices.Contains(Flavors, f) {
		return fmt.Errorf("edge flavour %q: want %s", f, words.OrList(Flavors))
	}
	return nil
}

// ExpandFlavors gives each of n edges its flavour: none means FRR
// everywhere, one is every edge's, else there must be one per edge.
func ExpandFlavors(flavors []string, n int) ([]string, error) {
	for _, f := range flavors {
		if err := checkFlavor(f); err != nil {
			return nil, err
		}
	}
	switch len(flavors) {
	case 0:
		return slices.Repeat([]string{FlavorFRR}, n), nil
	case 1:
		return slices.Repeat(flavors, n), nil
	case n:
		return slices.Clone(flavors), nil
	}
	nodes := make([]string, n)
	for i := range n {
		nodes[i] = edgeNode(i)
	}
	return nil, fmt.Errorf("%d edge flavours (%s) for %d edge routers (%s): give one for all, or one per edge in the order of bgp.peers",
		len(flavors), strings.Join(flavors, ","), n, strings.Join(nodes, ", "))
}

// Tools are the programs of the non-FRR flavours, found once by Up and
// kept in the state file (status and the faults use the CLIs).
type Tools struct {
	BIRD   string `json:"bird,omitempty"`
	BIRDC  string `json:"birdc,omitempty"`
	GoBGPD string `json:"gobgpd,omitempty"`
	GoBGP  string `json:"gobgp,omitempty"`
}

// findTool finds a program: in the directory of the running binary (bin/
// beside bin/cutover, where scripts/setup builds gobgpd), then on PATH,
// then in /usr/sbin (where Debian's bird2 puts bird, not on every PATH).
func findTool(name string) (string, error) {
	if exe, err := os.Executable(); err == nil {
		if exe, err := filepath.EvalSymlinks(exe); err == nil {
			p := filepath.Join(filepath.Dir(exe), name)
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
				return p, nil
			}
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return filepath.Abs(p)
	}
	p := filepath.Join("/usr/sbin", name)
	if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
		return p, nil
	}
	return "", fmt.Errorf("%s not found (beside the cutover binary, on PATH or in /usr/sbin)", name)
}

// installHint says how to install the program of a flavour.
var installHint = map[string]string{
	"bird":   "install Debian's bird2 package (scripts/setup --packages)",
	"birdc":  "install Debian's bird2 package (scripts/setup --packages)",
	"gobgpd": "build it with scripts/setup (go install github.com/osrg/gobgp/v3/cmd/gobgpd@v3.37.0 into bin/)",
	"gobgp":  "build it with scripts/setup (go install github.com/osrg/gobgp/v3/cmd/gobgp@v3.37.0 into bin/)",
}

// findTools finds the programs the flavours need; every missing one is
// an error that names the edge flavour and how to install it.
func findTools(flavors []string) (Tools, error) {
	var t Tools
	var errs []error
	find := func(flavor, name string, dst *string) {
		p, err := findTool(name)
		if err != nil {
			errs = append(errs, fmt.Errorf("edge flavour %s: %w: %s", flavor, err, installHint[name]))
		}
		*dst = p
	}
	if slices.Contains(flavors, FlavorBIRD) {
		find(FlavorBIRD, "bird", &t.BIRD)
		find(FlavorBIRD, "birdc", &t.BIRDC)
	}
	if slices.Contains(flavors, FlavorGoBGP) {
		find(FlavorGoBGP, "gobgpd", &t.GoBGPD)
		find(FlavorGoBGP, "gobgp", &t.GoBGP)
	}
	return t, errors.Join(errs...)
}

// placeBMP gives each edge whose flavour reports by BMP its station: the
// controller's address on the edge's own link when the station listens
// on every address, else the station's address, which must be one of
// ctl's; an edge whose link does not hold it gets a host route to it
// through its link to ctl (ctl answers on any of its addresses).
func (t *Topology) placeBMP() error {
	if !t.BMP.IsValid() {
		return nil
	}
	listen := t.BMP.Addr().Unmap()
	if !listen.IsUnspecified() {
		var ctlAddrs []netip.Addr
		for _, lk := range t.Links {
			if lk.B.Node == NodeCtl {
				for _, p := range lk.B.Addrs {
					ctlAddrs = append(ctlAddrs, p.Addr())
				}
			}
		}
		if !slices.Contains(ctlAddrs, listen) {
			return fmt.Errorf("bgp.bmp.listen %s: not an address of the controller in the lab (ctl has %v): "+
				"listen on one of them, or on [::]:%d", t.BMP, ctlAddrs, t.BMP.Port())
		}
	}
	for k := range t.Edges {
		e := &t.Edges[k]
		if e.FlavorOf() == FlavorBIRD {
			continue // BIRD 2.0 has no BMP
		}
		ln, _ := t.LinkOf(e.Node, NodeCtl)
		switch {
		case listen.IsUnspecified() && listen.Is6():
			// [::] takes both families: the session's own address.
			e.BMP = netip.AddrPortFrom(e.Sessions[0].Ctl, t.BMP.Port())
		case listen.IsUnspecified():
			for _, p := range ln.B.Addrs {
				if p.Addr().Is4() {
					e.BMP = netip.AddrPortFrom(p.Addr(), t.BMP.Port())
					break
				}
			}
		default:
			e.BMP = netip.AddrPortFrom(listen, t.BMP.Port())
			if slices.ContainsFunc(ln.B.Addrs, func(p netip.Prefix) bool { return p.Addr() == listen }) {
				continue
			}
			for _, p := range ln.B.Addrs {
				if p.Addr().Is4() == listen.Is4() {
					// Through the ctl end of the edge's own link.
					t.Routes[e.Node] = append(t.Routes[e.Node], StaticRoute{
						Dst: netip.PrefixFrom(listen, listen.BitLen()), Via: p.Addr(), Dev: ln.A.Iface})
					break
				}
			}
		}
	}
	return nil
}
