// Package lab runs the cutover lab: real FRR routers and VM responders in
// Linux network namespaces, in the production shape, so that a BGP
// announcement is proven by a real router's routing table changing.
//
// A lab has a shape (Shape): its sites, each a gateway that holds every VM
// address; its edge routers, each an FRR where the controller peers; and
// the fallback site the edges' covering static routes lead to. The
// built-in shape (DefaultShape) is the one below; ShapeOf derives one from
// a runbook (a site per runbook site with its next-hops, an edge per
// bgp.peers entry with its address, AS, port, timers and MD5 password),
// and ConfigFor adds the runbook's inventory, probe ports and Prometheus
// servers. Nodes live in namespaces named cutover-<lab>-<node>: the edges
// edge, edge2..., the sites by their names (siteN where a name is not a
// usable node name), hosp and ctl. Every edge has a veth link to every
// other node; a site with two or more edges has its gateway address on a
// bridge "edges" that joins them, like a datacenter's gateway segment.
// The addresses the shape gives (next-hops, the edges' peer addresses)
// are used as they are, each in the smallest usual subnet (/30 or /29;
// /64) that holds its link's nodes and no VM, /31 or a longer IPv6 prefix
// where another address is near, and point to point (the address as a
// /32 or /128 with the other end's as its peer) where none fits, as on a
// transit network that holds the edges and the gateways together; the
// lab chooses the rest itself (10.255.3.0/24 and up, then 100.64.0.0/10;
// fd00:255:3::/64 and up), outside the VM ranges.
// The default lab:
//
//	link       edge side                        other side
//	edge–ctl   10.255.0.1/30, fd00:255::1/64    10.255.0.2/30, fd00:255::2/64 (controller, AS 65100, router-id 10.255.0.2)
//	edge–skm1  10.255.1.1/30, fd00:255:1::1/64  10.255.1.2/30, fd00:255:1::2/64 (site gateway)
//	edge–skm2  10.255.2.1/30, fd00:255:2::1/64  10.255.2.2/30, fd00:255:2::2/64 (site gateway)
//	edge–hosp  10.255.3.1/24, fd00:255:3::1/64  10.255.3.2/24, fd00:255:3::2/64 (client)
//
// Each edge runs a router of its flavour (Config.EdgeFlavors): FRR by
// default (zebra, staticd, bgpd with its BMP module), BIRD 2 (its kernel
// protocol filling the FIB) or gobgpd (its best paths in the FIB through
// FRR's zebra, staticd holding the covering routes). Every flavour's BGP
// configuration is package edge's, as `cutover edge-config` renders it
// (the default edge AS 65000, router-id 10.255.0.1): static covering
// routes for the VM ranges (default 10.64.0.0/14 and fd00:64::/48) via
// the fallback site (skm1), and eBGP sessions toward the controller in
// ctl (10.255.0.2 and fd00:255::2) with graceful restart (the edge a
// helper) that accept only prefixes inside the VM ranges, up to the
// runbooks' max_prefixes; FRR mirrors the edge's best paths for them
// back with the next-hop unchanged (BIRD and gobgpd cannot), and FRR and
// gobgpd report to the controller's BMP station when a runbook observes
// by BMP. Every
// VM address is on lo at every site (past 2,048 VMs
// the rest go on extra veth pairs vms1, vms2... of 512 each: adding an
// address scans the interface's list, so 50,000 on lo would take minutes),
// where a responder
// (`cutover lab responder`) answers HTTP on port 80 with the site's node name and
// can play a VM that is down (SetVMDown) or slow (SetVMDelay). The sites,
// hosp and ctl have default routes toward the first edge, where the
// clients' traffic enters and the daemon's nft table steers it.
//
// Up builds the lab, Down removes everything (also after a crash), Open
// attaches to a running lab through its state file, Exec and Lab.Command run
// a process inside a node (the controller in ctl), and clab.New (lab/clab) writes the
// same topology for containerlab.
package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// DefaultName is the lab name when none is given.
const DefaultName = "lab"

// DefaultFRRDir is where Debian's frr package installs the daemons.
const DefaultFRRDir = "/usr/lib/frr"

// BaseDir holds the state directories of the labs.
const BaseDir = "/run/cutover/lab"

// NamespacePrefix starts every namespace the lab creates.
const NamespacePrefix = "cutover-"

// ErrNotUp is returned by Open when the lab has no state file.
var ErrNotUp = errors.New("lab is not up")

// Config says what lab to build. The zero value builds the default lab
// "lab" with 2,000 IPv4 VMs.
type Config struct {
	// Name of the lab, default "lab": namespaces are cutover-<Name>-<node>.
	Name string
	// Dir is the state directory, default /run/cutover/lab/<Name>. It must be
	// reachable by the frr user (FRR drops privileges).
	Dir string
	// VMs are the VM prefixes put at every site: host addresses (/32,
	// /128) on lo, a subnet made local as a whole; nil means
	// DefaultVMs(2000), an empty non-nil slice no VMs.
	VMs []netip.Prefix
	// Covering are the VM ranges the edges route statically to the
	// shape's fallback site (skm1 by default); default 10.64.0.0/14 and
	// fd00:64::/48. Every VM must be inside one.
	Covering []netip.Prefix
	// Shape is the lab's sites, edges and fallback; nil means
	// DefaultShape(). ShapeOf derives one from a runbook.
	Shape *Shape
	// HTTPPorts are the ports the responders answer HTTP (and TCP
	// connects) on; nil means 80 only. TLSPorts answer HTTPS with
	// certificates of the lab's CA (CAFile).
	HTTPPorts, TLSPorts []uint16
	// Prometheus are the URLs of the Prometheus servers a runbook's gates
	// ask: each runs in ctl, its host name resolving there, scraping the
	// responders and the clients' traffic in hosp.
	Prometheus []string
	// Clients are the URLs the hospitals' traffic in hosp requests (at
	// ClientRate a second, default 50) while a Prometheus runs.
	Clients    []string
	ClientRate float64
	// Responder is the binary run as `<Responder> lab responder ...` in each
	// site; default os.Executable(). A test binary serves it when its
	// TestMain calls MaybeRunResponder.
	Responder string
	// FRRDir holds zebra, staticd and bgpd; default /usr/lib/frr.
	FRRDir string
	// EdgeFlavors are the routers the edges run: FlavorFRR (the default),
	// FlavorBIRD or FlavorGoBGP. One value is every edge's; several are
	// the edges' in order (edge, edge2...: the runbook's bgp.peers order).
	EdgeFlavors []string
}

// DefaultDir is the state directory of the lab called name.
func DefaultDir(name string) string { return filepath.Join(BaseDir, name) }

// NamespaceName is the namespace of node in the lab called name.
func NamespaceName(name, node string) string { return NamespacePrefix + name + "-" + node }

// Exec returns a command that runs argv inside the network namespace ns
// (`ip netns exec ns argv...`). Use it to run a process in a lab node, for
// example a BGP speaker in Namespace("ctl").
func Exec(ns string, argv ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
}

// Daemon is a process the lab started.
type Daemon struct {
	Node string `json:"node"`
	Name string `json:"name"` // zebra, staticd, bgpd, bird, gobgpd, responder
	PID  int    `json:"pid"`
	// Match is a string the process's command line contains (a path inside
	// the lab's directory), so that a reused pid is never taken for it.
	Match string `json:"match"`
}

// state is what Up writes to Dir/state.json for Open and Down.
type state struct {
	Version  int       `json:"version"`
	Name     string    `json:"name"`
	Dir      string    `json:"dir"`
	FRRDir   string    `json:"frr_dir"`
	Created  time.Time `json:"created"`
	Topology Topology  `json:"topology"`
	Daemons  []Daemon  `json:"daemons"`
	// Tools are the programs of the BIRD and gobgpd edges.
	Tools Tools `json:"tools,omitzero"`
}

const stateVersion = 1

// Lab is a running lab.
type Lab struct {
	st state
}

// Name is the lab's name.
func (l *Lab) Name() string { return l.st.Name }

// Dir is the lab's state directory.
func (l *Lab) Dir() string { return l.st.Dir }

// Namespace is the network namespace of node: "cutover-<name>-<node>".
func (l *Lab) Namespace(node string) string { return NamespaceName(l.st.Name, node) }

// Topology returns the lab's addresses, ASNs, VMs and covering ranges.
func (l *Lab) Topology() Topology { return l.st.Topology }

// Daemons returns the processes the lab started.
func (l *Lab) Daemons() []Daemon { return append([]Daemon(nil), l.st.Daemons...) }

// Command returns a command that runs argv inside node's namespace.
func (l *Lab) Command(node string, argv ...string) *exec.Cmd {
	return Exec(l.Namespace(node), argv...)
}

func statePath(dir string) string { return filepath.Join(dir, "state.json") }

// Open attaches to the running lab called name through its state file. It
// returns an error wrapping ErrNotUp when the lab is not up.
func Open(name string) (*Lab, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	p := statePath(DefaultDir(name))
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("open lab %q: %w (no %s): run `cutover lab up --name %s`", name, ErrNotUp, p, name)
	}
	if err != nil {
		return nil, fmt.Errorf("open lab %q: %w", name, err)
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("open lab %q: parse %s: %w", name, p, err)
	}
	if st.Version != stateVersion || st.Name != name {
		return nil, fmt.Errorf("open lab %q: %s is version %d of lab %q, want version %d: run `cutover lab up --name %s` again",
			name, p, st.Version, st.Name, stateVersion, name)
	}
	return &Lab{st: st}, nil
}

// Up builds the lab described by cfg and returns it running: namespaces,
// links, addresses and routes, FRR on the edge with the covering routes
// installed, and the responders in the sites. A lab of the same name that is
// already up is removed first. On failure everything created is removed.
func Up(ctx context.Context, cfg Config, log zerolog.Logger) (*Lab, error) {
	start := time.Now()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	tools, err := preflight(cfg)
	if err != nil {
		return nil, err
	}
	base := log // Down adds component and lab itself
	log = log.With().Str("component", "lab").Str("lab", cfg.Name).Logger()
	if err := Down(ctx, cfg.Name, base); err != nil {
		return nil, fmt.Errorf("remove previous lab %q: %w", cfg.Name, err)
	}
	topo, err := newTopology(cfg)
	if err != nil {
		return nil, fmt.Errorf("lab up %q: %w", cfg.Name, err)
	}
	l := &Lab{st: state{
		Version:  stateVersion,
		Name:     cfg.Name,
		Dir:      cfg.Dir,
		FRRDir:   cfg.FRRDir,
		Created:  time.Now().UTC().Truncate(time.Second),
		Topology: topo,
		Tools:    tools,
	}}
	if err := l.build(ctx, cfg, log); err != nil {
		err = fmt.Errorf("lab up %q: %w", cfg.Name, err)
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if derr := Down(cctx, cfg.Name, base); derr != nil {
			return nil, errors.Join(err, fmt.Errorf("clean up after failure: %w", derr))
		}
		return nil, err
	}
	log.Info().Str("op", "up").Int("vms", len(cfg.VMs)).Dur("took", time.Since(start)).Msg("lab up")
	return l, nil
}

func (l *Lab) build(ctx context.Context, cfg Config, log zerolog.Logger) (err error) {
	topo := l.st.Topology
	if err := l.writeFiles(cfg); err != nil {
		return err
	}
	t := time.Now()
	for _, node := range topo.Nodes() {
		if err := addNamespace(ctx, l.Namespace(node)); err != nil {
			return err
		}
	}
	if err := l.setupNetwork(topo); err != nil {
		return err
	}
	log.Debug().Str("op", "network").Dur("took", time.Since(t)).Msg("namespaces, links and addresses ready")
	t = time.Now()
	for _, e := range topo.Edges {
		ds, err := l.startEdge(ctx, e)
		l.st.Daemons = append(l.st.Daemons, ds...)
		if err != nil {
			return err
		}
	}
	log.Debug().Str("op", "edges").Int("edges", len(topo.Edges)).Dur("took", time.Since(t)).Msg("edge routers started")
	t = time.Now()
	if err := l.startServices(ctx, cfg); err != nil {
		return err
	}
	log.Debug().Str("op", "services").Int("prometheus", len(cfg.Prometheus)).Dur("took", time.Since(t)).Msg("responders answering")
	t = time.Now()
	if err := l.waitCovering(ctx, 10*time.Second); err != nil {
		return err
	}
	log.Debug().Str("op", "covering").Dur("took", time.Since(t)).Msg("covering routes in the edge FIB")
	for _, e := range topo.Edges {
		// By now every daemon read its config.
		switch e.FlavorOf() {
		case FlavorFRR:
			err = l.checkFRRLogs(e, frrDaemons)
		case FlavorGoBGP:
			err = l.checkFRRLogs(e, []string{"zebra", "staticd"})
		}
		if err != nil {
			return err
		}
	}
	return l.writeState()
}

// startEdge starts edge e's router, by its flavour.
func (l *Lab) startEdge(ctx context.Context, e Edge) ([]Daemon, error) {
	switch e.FlavorOf() {
	case FlavorBIRD:
		return l.startBIRD(ctx, e)
	case FlavorGoBGP:
		return l.startGoBGP(ctx, e)
	}
	return l.startFRR(ctx, e, frrDaemons)
}

// preflight checks what Up needs from the machine, before touching it,
// and finds the programs of the BIRD and gobgpd edges. FRR is needed by
// FRR's edges and by gobgpd's (zebra and staticd).
func preflight(cfg Config) (Tools, error) {
	if os.Geteuid() != 0 {
		return Tools{}, errors.New("lab up: needs root (network namespaces, veth links, FRR): run it as root")
	}
	var errs []error
	var frr []string
	switch {
	case slices.Contains(cfg.EdgeFlavors, FlavorFRR):
		frr = frrDaemons
	case slices.Contains(cfg.EdgeFlavors, FlavorGoBGP):
		frr = []string{"zebra", "staticd"}
	}
	for _, d := range frr {
		if _, err := os.Stat(filepath.Join(cfg.FRRDir, d)); err != nil {
			errs = append(errs, fmt.Errorf("FRR daemon %s missing: install FRR (scripts/setup --packages)", filepath.Join(cfg.FRRDir, d)))
		}
	}
	cmds := []string{"ip"}
	if len(frr) > 0 {
		cmds = append(cmds, "vtysh")
	}
	for _, c := range cmds {
		if _, err := exec.LookPath(c); err != nil {
			errs = append(errs, fmt.Errorf("%s not on PATH: install iproute2 and FRR (scripts/setup --packages)", c))
		}
	}
	tools, err := findTools(cfg.EdgeFlavors)
	if err != nil {
		errs = append(errs, err)
	}
	return tools, joinErrs("lab up", errs)
}

// writeState writes the state file atomically.
func (l *Lab) writeState() error {
	b, err := json.MarshalIndent(l.st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	return writeFileAtomic(statePath(l.st.Dir), append(b, '\n'), 0o644)
}

func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}

// Down stops every process of the lab called name, deletes its namespaces
// (also ones left by a crash without a state file) and removes its state
// directory. It is a no-op when nothing of the lab exists.
func Down(ctx context.Context, name string, log zerolog.Logger) error {
	if err := checkName(name); err != nil {
		return err
	}
	start := time.Now()
	log = log.With().Str("component", "lab").Str("lab", name).Logger()
	dir := DefaultDir(name)
	var daemons []Daemon
	if l, err := Open(name); err == nil {
		dir, daemons = l.st.Dir, l.st.Daemons
	} else if !errors.Is(err, ErrNotUp) {
		log.Warn().Err(err).Msg("state file unreadable; finding processes by namespace")
	}
	nss, err := labNamespaces(name)
	if err != nil {
		return err
	}
	var errs []error
	pids := map[int]string{}
	for _, d := range daemons {
		if processMatches(d.PID, d.Match) {
			pids[d.PID] = d.Node + "/" + d.Name
		}
	}
	for _, ns := range nss {
		in, err := namespacePids(ns)
		if err != nil {
			errs = append(errs, err)
		}
		for _, pid := range in {
			if _, ok := pids[pid]; !ok {
				pids[pid] = "pid in " + ns
			}
		}
	}
	frrTmp := frrTmpDirs(pids)
	if err := stopProcesses(ctx, pids, log); err != nil {
		errs = append(errs, err)
	}
	for _, d := range frrTmp {
		// FRR removes its crash-log directory on a clean exit, not after SIGKILL.
		_ = os.RemoveAll(d)
	}
	for _, ns := range nss {
		if err := deleteNamespace(ctx, ns); err != nil {
			errs = append(errs, err)
		}
	}
	if err := removeNetnsEtc(name); err != nil {
		errs = append(errs, err)
	}
	if err := removeDir(dir); err != nil {
		errs = append(errs, err)
	}
	if def := DefaultDir(name); def != dir {
		if err := removeDir(def); err != nil {
			errs = append(errs, err)
		}
	}
	if len(nss) > 0 || len(pids) > 0 {
		log.Info().Str("op", "down").Int("namespaces", len(nss)).Int("processes", len(pids)).
			Dur("took", time.Since(start)).Msg("lab down")
	}
	return joinErrs("lab down", errs)
}

// removeDir removes a lab's state directory dir (or a link to one) and,
// when they are empty, its parents up to /run/cutover. A directory that does
// not look like a lab's (no state.json, no edge/) is left alone, so that a
// mistaken --dir never removes somebody's files.
func removeDir(dir string) error {
	fi, err := os.Lstat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		if target, err := os.Readlink(dir); err == nil && isLabDir(target) {
			if err := os.RemoveAll(target); err != nil {
				return fmt.Errorf("remove %s: %w", target, err)
			}
		}
		if err := os.Remove(dir); err != nil {
			return fmt.Errorf("remove %s: %w", dir, err)
		}
		return nil
	}
	if !isLabDir(dir) {
		return fmt.Errorf("not removing %s: it holds neither state.json nor edge/, so it is no lab's directory", dir)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	if strings.HasPrefix(dir, BaseDir+"/") {
		_ = os.Remove(BaseDir)               // fails when another lab is in it
		_ = os.Remove(filepath.Dir(BaseDir)) // /run/cutover, same
	}
	return nil
}

// isLabDir reports whether dir looks like a lab's state directory (Up may
// have failed before writing state.json), or is empty.
func isLabDir(dir string) bool {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range ents {
		if n := e.Name(); n == "state.json" || n == NodeEdge {
			return true
		}
	}
	return len(ents) == 0
}

// joinErrs returns nil for no errors, else one error naming what failed.
func joinErrs(what string, errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("%s: %w", what, errs[0])
	}
	return fmt.Errorf("%s: %w", what, errors.Join(errs...))
}
