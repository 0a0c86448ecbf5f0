// Package clab exports the lab as a containerlab topology, for teams that
// have containerlab: the same nodes, links, bridges, addresses, routes and
// FRR configuration as the native lab in network namespaces, for the
// default lab and for a lab built from a runbook (lab.ShapeOf).
//
// The controller node ctl runs the cutover daemon. The daemon needs two
// network namespaces: its BGP sessions leave from ctl's addresses (the
// edges peer with those), and its nftables table and ip rules belong in
// the first edge, where the clients' traffic is forwarded. In the native
// lab the daemon runs in ctl and enters the edge's namespace by name
// (--dataplane-netns). In containerlab each node is its own container and
// ctl cannot see the edge's namespace, so ctl joins the first edge's PID
// namespace (pid-mode: container:edge, created once the edge runs): there
// process 1 is the edge's init, so /proc/1/ns/net is the edge's network
// namespace, and ctl.sh names it with `ip netns attach edge 1` before it
// starts `cutover serve --dataplane-netns edge` in ctl's own network
// namespace.
package clab

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/cutover/cutover/lab"
)

// Image is the image of every node: the FRR version the native lab is
// tested with (Debian 12's 8.4.4). It is Alpine with iproute2 (FRR depends
// on it: `ip` with bridges and `ip netns attach`), bash and busybox (wget
// to try a VM from hosp). The edges run FRR; the other nodes run the same
// image with cmd HostCmd instead, so that no routing daemon runs there and
// the lab pulls one image. nft is not needed: the daemon and the
// responders program nftables through netlink.
const Image = "quay.io/frrouting/frr:8.4.4"

// HostCmd is the command of the nodes that do not route (sites, hosp,
// ctl): it keeps the container up and starts nothing.
const HostCmd = "tail -f /dev/null"

// Where the export binds files inside the nodes.
const (
	mountDir   = "/cutover"
	binaryName = "cutover"
	ctlNetns   = "edge" // ctl's name of the first edge's network namespace
	stateDir   = "/var/lib/cutover"
)

// Export is the lab as a containerlab topology.
type Export struct {
	// YAML is the .clab.yml.
	YAML []byte
	// Files are the files the YAML binds into the nodes, by path relative
	// to the YAML's directory (all under FilesDir).
	Files map[string][]byte
	// FilesDir is the directory, relative to the YAML, that holds Files.
	FilesDir string
	// Built are the files the YAML binds that the export cannot write, by
	// path relative to the YAML's directory: the static cutover binary,
	// which FilesDir/build.sh (one of Files) builds and the YAML's header
	// names. containerlab refuses to deploy until they exist.
	Built []string
}

// FileNames returns the names of ex.Files, sorted.
func (ex Export) FileNames() []string {
	names := make([]string, 0, len(ex.Files))
	for n := range ex.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

type clabTopology struct {
	Name     string `yaml:"name"`
	Prefix   string `yaml:"prefix"`
	Topology struct {
		Nodes orderedNodes `yaml:"nodes"`
		Links []clabLink   `yaml:"links"`
	} `yaml:"topology"`
}

type clabNode struct {
	Kind        string            `yaml:"kind"`
	Image       string            `yaml:"image"`
	Cmd         string            `yaml:"cmd,omitempty"`
	NetworkMode string            `yaml:"network-mode"`
	PidMode     string            `yaml:"pid-mode,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty"`
	Sysctls     map[string]string `yaml:"sysctls,omitempty"`
	Stages      *clabStages       `yaml:"stages,omitempty"`
	Binds       []string          `yaml:"binds,omitempty"`
	Exec        []string          `yaml:"exec,omitempty"`
}

type clabStages struct {
	Create clabStage `yaml:"create"`
}

type clabStage struct {
	WaitFor []clabWaitFor `yaml:"wait-for"`
}

type clabWaitFor struct {
	Node  string `yaml:"node"`
	Stage string `yaml:"stage"`
}

// namedNode is a node with its name, for the nodes in the lab's order.
type namedNode struct {
	name string
	node clabNode
}

// orderedNodes writes the nodes in the lab's order (edges, sites, hosp,
// ctl) rather than sorted as a map would be.
type orderedNodes []namedNode

func (ns orderedNodes) MarshalYAML() (any, error) {
	m := &yaml.Node{Kind: yaml.MappingNode}
	for _, n := range ns {
		var v yaml.Node
		if err := v.Encode(n.node); err != nil {
			return nil, fmt.Errorf("node %s: %w", n.name, err)
		}
		m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: n.name}, &v)
	}
	return m, nil
}

type clabLink struct {
	Endpoints []string
}

// MarshalYAML writes endpoints: ["edge:skm1", "skm1:edge"], the form of
// containerlab's documentation.
func (l clabLink) MarshalYAML() (any, error) {
	seq := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
	for _, e := range l.Endpoints {
		seq.Content = append(seq.Content, &yaml.Node{Kind: yaml.ScalarNode, Style: yaml.DoubleQuotedStyle, Value: e})
	}
	return &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
		{Kind: yaml.ScalarNode, Value: "endpoints"}, seq,
	}}, nil
}

// containerlabNames are node names containerlab reads as something else
// in a link endpoint ("host:eth1" is an interface of the host's namespace,
// "macvlan:eth0" a macvlan of one): a lab node of that name cannot be
// linked.
var containerlabNames = []string{"host", "macvlan", "mgmt-net"}

// New renders the lab cfg describes as a containerlab topology: kind
// linux nodes of Image without a management network (network-mode none,
// so the lab's default routes are the only ones), named cutover-<lab>-<node>
// like the native namespaces. Each edge runs FRR from its own generated
// integrated frr.conf; the sites run `cutover lab responder` and ctl runs
// `cutover serve` (see the package documentation), both from a static
// cutover binary the user builds into FilesDir with FilesDir/build.sh.
// Addresses, bridges and routes are exec lines.
func New(cfg lab.Config) (Export, error) {
	t, err := lab.NewTopology(cfg)
	if err != nil {
		return Export{}, err
	}
	if err := checkNames(t); err != nil {
		return Export{}, err
	}
	for _, e := range t.Edges {
		if f := e.FlavorOf(); f != lab.FlavorFRR {
			return Export{}, fmt.Errorf("containerlab export of lab %s: edge %s is %s: the export runs FRR edges only (the image is FRR's); export with --edge frr", t.Name, e.Node, f)
		}
	}
	ex := Export{FilesDir: t.Name + "-files"}
	ex.Built = []string{ex.path(binaryName)}
	if ex.Files, err = files(t, ex); err != nil {
		return Export{}, err
	}

	var top clabTopology
	top.Name = t.Name
	top.Prefix = strings.TrimSuffix(lab.NamespacePrefix, "-")
	for _, node := range t.Nodes() {
		top.Topology.Nodes = append(top.Topology.Nodes, namedNode{node, ex.node(t, cfg, node)})
	}
	for _, lk := range t.Links {
		top.Topology.Links = append(top.Topology.Links, clabLink{Endpoints: []string{lk.A.String(), lk.B.String()}})
	}

	var b bytes.Buffer
	b.WriteString(header(t, cfg, ex))
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(top); err != nil {
		return Export{}, fmt.Errorf("encode clab topology of lab %s: %w", t.Name, err)
	}
	if err := enc.Close(); err != nil {
		return Export{}, fmt.Errorf("encode clab topology of lab %s: %w", t.Name, err)
	}
	ex.YAML = b.Bytes()
	return ex, nil
}

// checkNames refuses a lab with a node containerlab cannot link.
func checkNames(t lab.Topology) error {
	for _, node := range t.Nodes() {
		if slices.Contains(containerlabNames, node) {
			return fmt.Errorf("containerlab export of lab %s: site %s has node name %q, which containerlab reads as a special endpoint in a link, not a node; rename the site",
				t.Name, t.SiteName(node), node)
		}
	}
	return nil
}

// path is name inside FilesDir, relative to the YAML.
func (ex Export) path(name ...string) string {
	return strings.Join(append([]string{ex.FilesDir}, name...), "/")
}

// bind binds the file name of FilesDir at target.
func (ex Export) bind(target string, readOnly bool, name ...string) string {
	b := ex.path(name...) + ":" + target
	if readOnly {
		b += ":ro"
	}
	return b
}

// files are the files the export writes: each edge's FRR files, the VM
// list, the scripts of the sites and ctl, and build.sh.
func files(t lab.Topology, ex Export) (map[string][]byte, error) {
	fs := map[string][]byte{
		ex.path("vms.txt"):  []byte(t.VMList()),
		ex.path("site.sh"):  []byte(siteScript),
		ex.path("ctl.sh"):   []byte(ctlScript()),
		ex.path("build.sh"): []byte(buildScript(ex)),
	}
	for _, e := range t.Edges {
		conf, err := t.FRRConfOf(e.Node)
		if err != nil {
			return nil, fmt.Errorf("containerlab export of lab %s: %w", t.Name, err)
		}
		fs[ex.path(e.Node, "frr.conf")] = []byte(conf)
		fs[ex.path(e.Node, "daemons")] = []byte(daemons(e))
		fs[ex.path(e.Node, "vtysh.conf")] = []byte(vtyshConf)
	}
	return fs, nil
}

// node renders one node of t.
func (ex Export) node(t lab.Topology, cfg lab.Config, node string) clabNode {
	n := clabNode{
		Kind: "linux", Image: Image, NetworkMode: "none",
		Labels:  map[string]string{"cutover.role": roleOf(t, node)},
		Sysctls: map[string]string{},
		Exec:    interfaceLines(t, node),
	}
	// The interfaces containerlab moves in after the container started
	// take the namespace's defaults, which these set (rp_filter too).
	for _, s := range t.Sysctls(node) {
		n.Sysctls[s[0]] = s[1]
	}
	n.Exec = append(n.Exec, routeLines(t.Routes[node])...)
	switch {
	case t.IsEdge(node):
		n.Binds = []string{
			ex.bind("/etc/frr/daemons", true, node, "daemons"),
			ex.bind("/etc/frr/frr.conf", false, node, "frr.conf"),
			ex.bind("/etc/frr/vtysh.conf", true, node, "vtysh.conf"),
		}
	case node == lab.NodeHosp:
		n.Cmd = HostCmd
	case node == lab.NodeCtl:
		n.Cmd = HostCmd
		// The edge must run before ctl can join its PID namespace;
		// containerlab orders that only for network-mode, so ctl waits.
		n.PidMode = "container:" + lab.NodeEdge
		n.Stages = &clabStages{Create: clabStage{WaitFor: []clabWaitFor{{Node: lab.NodeEdge, Stage: "create"}}}}
		n.Binds = []string{
			ex.bind(mountDir+"/"+binaryName, true, binaryName),
			ex.bind(mountDir+"/ctl.sh", true, "ctl.sh"),
		}
		n.Exec = append(n.Exec, "sh "+mountDir+"/ctl.sh")
	default: // a site
		n.Cmd = HostCmd
		n.Labels["cutover.site"] = t.SiteName(node)
		n.Binds = []string{
			ex.bind(mountDir+"/"+binaryName, true, binaryName),
			ex.bind(mountDir+"/vms.txt", true, "vms.txt"),
			ex.bind(mountDir+"/site.sh", true, "site.sh"),
		}
		n.Exec = append(n.Exec, strings.Join(append([]string{"sh", mountDir + "/site.sh", node}, listenAddrs(cfg)...), " "))
	}
	return n
}

func roleOf(t lab.Topology, node string) string {
	switch {
	case t.IsEdge(node):
		return "edge-router"
	case node == lab.NodeHosp:
		return "client"
	case node == lab.NodeCtl:
		return "controller"
	}
	return "site"
}

// listenAddrs are the responders' --listen addresses; none for the
// responder's default, port 80.
func listenAddrs(cfg lab.Config) []string {
	var out []string
	for _, p := range cfg.HTTPPorts {
		out = append(out, ":"+strconv.Itoa(int(p)))
	}
	return out
}

// interfaceLines set up node's bridge and interfaces as the native lab
// does: the bridge first with the gateway's addresses, then each link's
// end, enslaved to the bridge or with its own addresses.
func interfaceLines(t lab.Topology, node string) []string {
	var out []string
	for _, br := range t.Bridges {
		if br.Node != node {
			continue
		}
		out = append(out, "ip link add "+br.Name+" type bridge")
		out = append(out, addrLines(br.Addrs, br.Name)...)
		out = append(out, "ip link set "+br.Name+" up")
	}
	for _, lk := range t.Links {
		for _, ep := range []lab.Endpoint{lk.A, lk.B} {
			if ep.Node != node {
				continue
			}
			if ep.Bridge != "" {
				out = append(out, "ip link set "+ep.Iface+" master "+ep.Bridge)
			}
			out = append(out, addrLines(ep.Addrs, ep.Iface, ep.Peers...)...)
			out = append(out, "ip link set "+ep.Iface+" up")
		}
	}
	return out
}

// addrLines add addrs to dev; IPv6 ones without duplicate address
// detection, usable at once as in the native lab.
// A valid peer (aligned with addrs) makes the address point-to-point.
func addrLines(addrs []netip.Prefix, dev string, peers ...netip.Addr) []string {
	var out []string
	for i, a := range addrs {
		addr := a.String()
		if i < len(peers) && peers[i].IsValid() {
			addr = a.Addr().String() + " peer " + netip.PrefixFrom(peers[i], peers[i].BitLen()).String()
		}
		if a.Addr().Is6() {
			out = append(out, fmt.Sprintf("ip -6 addr add %s dev %s nodad", addr, dev))
		} else {
			out = append(out, fmt.Sprintf("ip addr add %s dev %s", addr, dev))
		}
	}
	return out
}

func routeLines(rs []lab.StaticRoute) []string {
	var out []string
	for _, r := range rs {
		fam := ""
		if r.Via.Is6() {
			fam = "-6 "
		}
		dst := r.Dst.String()
		if r.Dst.Bits() == 0 {
			dst = "default"
		}
		line := fmt.Sprintf("ip %sroute add %s via %s", fam, dst, r.Via)
		if r.Dev != "" {
			line += " dev " + r.Dev + " onlink"
		}
		out = append(out, line)
	}
	return out
}

// header is the YAML's opening comment: what the lab is, the one build
// step, and how the controller works.
func header(t lab.Topology, cfg lab.Config, ex Export) string {
	var b strings.Builder
	w := func(format string, a ...any) {
		b.WriteString(strings.TrimRight("# "+fmt.Sprintf(format, a...), " ") + "\n")
	}
	w("cutover lab %q for containerlab, generated by `cutover lab export --format clab`.", t.Name)
	w("The same lab as `cutover lab up`:")
	for _, e := range t.Edges {
		w("  %s: FRR, AS %d, from %s", e.Node, e.AS, ex.path(e.Node, "frr.conf"))
	}
	for _, s := range t.Sites {
		name := ""
		if s.Name != s.Node {
			name = fmt.Sprintf(" (site %s)", s.Name)
		}
		w("  %s%s: gateway %s, a responder on every VM address", s.Node, name, joinAddrs(s.NextHop.V4, s.NextHop.V6))
	}
	w("  hosp: the clients; ctl: the cutover daemon, AS %d", t.ControllerAS)
	w("%d VMs at every site; covering routes %s via %s.", len(t.VMs), joinPrefixes(t.Covering), t.BaselineSite)
	var missing []string
	if len(cfg.TLSPorts) > 0 {
		missing = append(missing, fmt.Sprintf("HTTPS responders (ports %v)", cfg.TLSPorts))
	}
	if len(cfg.Prometheus) > 0 {
		missing = append(missing, fmt.Sprintf("Prometheus servers (%s)", strings.Join(cfg.Prometheus, ", ")))
	}
	if len(missing) > 0 {
		w("Not in this export: %s.", strings.Join(missing, " and "))
	}
	w("")
	w("Needs containerlab 0.78 or later (pid-mode). All nodes run %s.", Image)
	w("Before deploying, build the static cutover binary the sites and ctl run, from the")
	w("cutover source tree (%s does the same):", ex.path("build.sh"))
	w("  CGO_ENABLED=0 go build -o %s ./cmd/cutover", ex.path(binaryName))
	w("  containerlab deploy -t <this file>")
	w("")
	w("Controller: ctl holds the controller's addresses (the edges peer with them) and runs")
	w("`cutover serve` there (ctl.sh). Its nftables table and ip rules belong in %s, another", lab.NodeEdge)
	w("container: ctl joins %s's PID namespace (pid-mode), names the namespace of %s's", lab.NodeEdge, lab.NodeEdge)
	w("process 1 `%s` (ip netns attach) and starts the daemon with --dataplane-netns %s.", ctlNetns, ctlNetns)
	w("Health probes leave from ctl, through %s. Run the CLI in ctl, runbooks copied in:", lab.NodeEdge)
	w("  docker cp runbook.yaml %s:/tmp/", containerName(t, lab.NodeCtl))
	w("  docker exec -it %s %s/%s run /tmp/runbook.yaml", containerName(t, lab.NodeCtl), mountDir, binaryName)
	w("Logs: /var/log/cutover-serve.log in ctl, /tmp/responder.log in the sites.")
	return b.String()
}

// containerName is node's container: prefix-lab-node, as containerlab
// names it and as the native lab names its namespaces.
func containerName(t lab.Topology, node string) string { return lab.NamespaceName(t.Name, node) }

func joinAddrs(as ...netip.Addr) string {
	var s []string
	for _, a := range as {
		if a.IsValid() {
			s = append(s, a.String())
		}
	}
	return strings.Join(s, " and ")
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, " and ")
}

// daemons is /etc/frr/daemons of edge e: bgpd listens on the edge's BGP
// port, as the native lab starts it.
func daemons(e lab.Edge) string {
	bgpd := "-A 127.0.0.1"
	if e.Port != 0 && e.Port != 179 {
		bgpd += " -p " + strconv.Itoa(int(e.Port))
	}
	if e.BMP.IsValid() {
		// The BMP module, for frr.conf's "bmp targets".
		bgpd += " -M bmp"
	}
	return fmt.Sprintf(daemonsTemplate, e.Node, bgpd)
}

const daemonsTemplate = `# FRR daemons of the cutover lab's %s (zebra always runs).
bgpd=yes
staticd=yes
ospfd=no
ospf6d=no
ripd=no
ripngd=no
isisd=no
pimd=no
ldpd=no
nhrpd=no
eigrpd=no
babeld=no
sharpd=no
pbrd=no
bfdd=no
fabricd=no
vrrpd=no
pathd=no
vtysh_enable=yes
# A large netlink buffer, or zebra hits ENOBUFS near 50k routes.
zebra_options="  -A 127.0.0.1 -s 90000000"
bgpd_options="   %s"
staticd_options="-A 127.0.0.1"
`

// vtyshConf makes vtysh load and save the one integrated frr.conf.
const vtyshConf = "service integrated-vtysh-config\n"

// siteScript puts the VM addresses on the site and starts the responder.
// Like the native lab it puts the first 2,048 on lo and the rest on veth
// pairs vms1, vms2... of 512 each: adding an address scans the
// interface's list, so 50,000 on lo would take minutes.
const siteScript = `#!/bin/sh
# Site set-up of the cutover lab in containerlab: every VM address on the
# site, and the responder answering HTTP with the site name.
# Usage: site.sh NODE [LISTEN...]
set -eu
node=$1
shift
if [ ! -f /cutover/cutover ]; then
  echo "site.sh: /cutover/cutover missing: run build.sh in the files directory" >&2
  exit 1
fi
awk -v onlo=2048 -v per=512 '
NF == 0 { next }
{
  dev = "lo"
  if (n >= onlo) {
    k = int((n - onlo) / per) + 1
    dev = "vms" k
    if (!(k in made)) {
      print "link add " dev " type veth peer name " dev "p"
      print "link set " dev "p up"
      print "link set " dev " up"
      made[k] = 1
    }
  }
  print "address add " $1 " dev " dev
  n++
}' /cutover/vms.txt | ip -batch -
args="--site $node --addrs /cutover/vms.txt --control /tmp/responder.sock"
for l in "$@"; do args="$args --listen $l"; done
setsid /cutover/cutover lab responder $args >/tmp/responder.log 2>&1 </dev/null &
`

// ctlScript starts the daemon in ctl with the first edge's namespace as
// its dataplane (see the package documentation).
func ctlScript() string {
	return fmt.Sprintf(`#!/bin/sh
# Controller set-up of the cutover lab in containerlab: ctl shares the PID
# namespace of %[1]s (pid-mode), so process 1 is %[1]s's init and its network
# namespace is %[1]s's. Name it %[2]s and start the daemon: BGP from ctl's
# addresses, nftables and ip rules in %[1]s.
set -eu
if [ ! -f /cutover/cutover ]; then
  echo "ctl.sh: /cutover/cutover missing: run build.sh in the files directory" >&2
  exit 1
fi
ip netns attach %[2]s 1
# %[1]s's link toward ctl is called ctl; without it, process 1 is not %[1]s's.
if ! ip -n %[2]s link show dev %[3]s >/dev/null 2>&1; then
  echo "ctl.sh: process 1 is not %[1]s's: ctl must run with pid-mode container:%[1]s (containerlab 0.78 or later)" >&2
  ip netns delete %[2]s
  exit 1
fi
mkdir -p %[4]s /run/cutover
setsid /cutover/cutover serve --state-dir %[4]s --socket %[5]s --dataplane-netns %[2]s \
  >/var/log/cutover-serve.log 2>&1 </dev/null &
`, lab.NodeEdge, ctlNetns, lab.NodeCtl, stateDir, defaultSocket)
}

// defaultSocket is cutover serve's default socket, so that the CLI in ctl
// needs no --socket.
const defaultSocket = "/run/cutover/cutover.sock"

// buildScript builds the binary the YAML binds (Export.Built).
func buildScript(ex Export) string {
	return fmt.Sprintf(`#!/bin/sh
# Builds the static cutover binary that the containerlab topology binds into
# the sites and ctl (%[1]s); containerlab does not deploy until it exists.
# Run it from the cutover source tree:
#   sh %[2]s
# It runs: CGO_ENABLED=0 go build -o %[1]s ./cmd/cutover
set -eu
here=$(cd "$(dirname "$0")" && pwd)
CGO_ENABLED=0 go build -o "$here/%[3]s" ./cmd/cutover
`, ex.path(binaryName), ex.path("build.sh"), binaryName)
}
