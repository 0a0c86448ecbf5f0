package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/cutover/plan"
	"github.com/cutover/cutover/lab"
	"github.com/cutover/cutover/lab/clab"
)

func newLabCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Run the lab: real FRR routers and VM responders in network namespaces",
		Long: `The lab is the production shape in Linux network namespaces (cutover-<name>-<node>):
FRR edge routers where the hospitals' traffic enters, the datacenter gateways
holding every VM address, a client network hosp, and ctl, where the cutover
controller peers with the edges. Every VM reaches the fallback site through the
edges' covering static routes until the controller announces a more specific route.

Without --runbook it is the built-in lab: one edge (AS 65000), sites skm1 and skm2,
the controller in AS 65100. With --runbook it is the runbook's own shape: a site per
runbook site with its next-hops, an edge per bgp.peers entry (its address, IPv4 or
IPv6 transport, AS, timers, MD5), the inventory's addresses at every site, responders
on every port the inventory probes and a Prometheus for every prometheus gate.
Needs root, FRR and iproute2 (scripts/setup --packages).`,
		Example: `  cutover lab up
  cutover lab status
  cutover lab http 10.64.0.10
  cutover lab down`,
	}
	cmd.AddCommand(
		newLabUpCmd(a),
		newLabDownCmd(a),
		newLabStatusCmd(a),
		newLabVtyshCmd(a),
		newLabHTTPCmd(a),
		newLabExportCmd(a),
		newLabResponderCmd(a),
		withEdgeFlag(newRehearseCmd(a)),
		newFaultCmd(a),
	)
	return cmd
}

// edgeFlagHelp is the help of --edge.
const edgeFlagHelp = "edge routers: frr, bird or gobgp for every edge, or a comma list of one per edge in the order of bgp.peers (edge, edge2, ...)"

func addEdgeFlag(cmd *cobra.Command) {
	cmd.Flags().String("edge", lab.FlavorFRR, edgeFlagHelp)
	_ = cmd.RegisterFlagCompletionFunc("edge", cobra.FixedCompletions(lab.Flavors, cobra.ShellCompDirectiveNoFileComp))
}

// edgeFlavors reads --edge; the count is checked against the lab's edges
// when the lab is built.
func (a *app) edgeFlavors() ([]string, error) {
	fl, err := lab.ParseFlavors(a.v.GetString("edge"))
	if err != nil {
		return nil, usageErr(fmt.Errorf("--edge: %w", err))
	}
	return fl, nil
}

// withEdgeFlag gives `lab rehearse` the --edge flag and its help.
func withEdgeFlag(cmd *cobra.Command) *cobra.Command {
	addEdgeFlag(cmd)
	cmd.Long += `

--edge chooses the edge routers: frr (the default), bird or gobgp for every edge, or a
comma list of one per edge in the order of bgp.peers. Each gets its BGP configuration from
the same code as cutover edge-config, so the rehearsal tests it on the real router. BIRD
has no BMP and sends no route back (observe_fallback: sent proves a BIRD edge); gobgpd
reports to the BMP station and installs its routes through FRR's zebra.`
	cmd.Example += `
  cutover lab rehearse runbooks/dr-drill/failover.yaml --edge frr,bird
  cutover lab rehearse runbooks/helse-nord/runbook.yaml --edge gobgp --inject daemon-kill@2`
	return cmd
}

func addLabNameFlag(cmd *cobra.Command) {
	cmd.Flags().String("name", lab.DefaultName, "lab name: namespaces are cutover-<name>-<node>")
}

func addVMFlags(cmd *cobra.Command) {
	cmd.Flags().Int("vms", 2000, "number of IPv4 VMs (10.64.0.10 upwards); with --runbook: keep only the first N inventory addresses")
	cmd.Flags().Int("vms6", 0, "number of IPv6 VMs (fd00:64::10 upwards)")
	cmd.Flags().StringSlice("runbook", nil, "build the lab in this runbook's shape (repeat for a chained drill's runbooks)")
	cmd.Flags().String("fallback", "", "with --runbook: site the edges' covering routes lead to (default: the runbook's fallback, else move.from)")
}

// labConfig builds the lab configuration from the flags.
func (a *app) labConfig(cmd *cobra.Command) (lab.Config, error) {
	n4, n6 := a.v.GetInt("vms"), a.v.GetInt("vms6")
	if n4 < 0 || n6 < 0 {
		return lab.Config{}, usageErr(fmt.Errorf("--vms %d --vms6 %d: want numbers >= 0", n4, n6))
	}
	flavors, err := a.edgeFlavors()
	if err != nil {
		return lab.Config{}, err
	}
	rbs := a.v.GetStringSlice("runbook")
	if len(rbs) == 0 {
		if a.v.GetString("fallback") != "" {
			return lab.Config{}, usageErr(errors.New("--fallback needs --runbook"))
		}
		vms := append(lab.DefaultVMs(n4), lab.DefaultVMs6(n6)...)
		return lab.Config{Name: a.v.GetString("name"), VMs: vms, EdgeFlavors: flavors}, nil
	}
	if cmd.Flags().Changed("vms6") {
		return lab.Config{}, usageErr(errors.New("--vms6 counts the built-in lab's VMs: with --runbook the inventory says which (--vms N keeps the first N)"))
	}
	var books []lab.Book
	for _, p := range rbs {
		pl, _, err := plan.Load(p)
		if err != nil {
			return lab.Config{}, inputErr(err)
		}
		books = append(books, lab.Book{Runbook: pl.Runbook, Inventory: pl.Inventory})
	}
	cfg, err := lab.ConfigFor(a.v.GetString("name"), a.v.GetString("fallback"), books...)
	if err != nil {
		return lab.Config{}, inputErr(err)
	}
	if cmd.Flags().Changed("vms") && n4 < len(cfg.VMs) {
		cfg.VMs = cfg.VMs[:n4]
	}
	cfg.EdgeFlavors = flavors
	return cfg, nil
}

func newLabUpCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Bring the lab up (recreating it if it is up)",
		Long: `up builds the lab and prints where the controller runs and peers. Its log goes to
standard error (JSON when that is not a terminal), its result to standard output.

--edge chooses the edge routers: frr (the default: zebra, staticd, bgpd with BMP), bird
(BIRD 2, its kernel protocol filling the edge's FIB; no BMP, no mirror) or gobgp (gobgpd,
its routes in the FIB through FRR's zebra; BMP, no mirror): one for every edge, or a comma
list of one per edge in the order of bgp.peers. Each edge's BGP configuration is the one
cutover edge-config renders. bird needs Debian's bird2, gobgp gobgpd and gobgp in bin/
beside cutover or on PATH (scripts/setup builds them).`,
		Example: `  cutover lab up
  cutover lab up --edge gobgp
  cutover lab up --runbook runbooks/dr-drill/failover.yaml --edge frr,bird
  cutover lab up --vms 10000 --vms6 100 --name big
  cutover lab up --runbook runbooks/dr-drill/failover.yaml
  cutover lab up --runbook runbooks/drain-upgrade/out.yaml --runbook runbooks/drain-upgrade/back.yaml
  cutover lab up -o json 2>lab-up.log | jq .controller`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.labConfig(cmd)
			if err != nil {
				return err
			}
			start := time.Now()
			l, err := lab.Up(cmd.Context(), cfg, a.log)
			if err != nil {
				return err
			}
			t := l.Topology()
			res := labUpResult{Lab: l.Name(), Took: time.Since(start), VMs: len(t.VMs), Covering: t.Covering,
				BaselineSite: t.BaselineSite, NextHops: t.SiteNextHop,
				Controller: labController{Namespace: l.Namespace(lab.NodeCtl), AS: t.ControllerAS, PeerAS: t.EdgeAS}}
			for _, e := range t.Edges {
				le := labEdge{Node: e.Node, Flavor: e.FlavorOf(), Namespace: l.Namespace(e.Node), AS: e.AS}
				if e.BMP.IsValid() {
					le.BMP = e.BMP.String()
				}
				for _, s := range e.Sessions {
					le.Peers = append(le.Peers, s.Edge)
					le.Local = append(le.Local, s.Ctl)
					res.Controller.Peers = append(res.Controller.Peers, s.Edge)
				}
				res.Edges = append(res.Edges, le)
			}
			if a.jsonOut() {
				return a.writeJSON(res)
			}
			fmt.Fprintf(a.out, "lab %q up in %.1fs: %d VMs, covering %v via %s\n",
				res.Lab, res.Took.Seconds(), res.VMs, res.Covering, res.BaselineSite)
			fmt.Fprintf(a.out, "controller: run it in %s, AS %d\n", res.Controller.Namespace, res.Controller.AS)
			for _, e := range res.Edges {
				fmt.Fprintf(a.out, "  edge %s (%s, AS %d): peer %s from %s\n", e.Node, e.Flavor, e.AS, joinAddrs(e.Peers), joinAddrs(e.Local))
			}
			var hops []string
			for _, s := range t.Sites {
				h := s.Name
				if s.Node != s.Name {
					h += " (node " + s.Node + ")"
				}
				for _, a := range []netip.Addr{s.NextHop.V4, s.NextHop.V6} {
					if a.IsValid() {
						h += " " + a.String()
					}
				}
				hops = append(hops, h)
			}
			if _, err := fmt.Fprintf(a.out, "next-hops: %s\n", strings.Join(hops, ", ")); err != nil {
				return err
			}
			if len(cfg.TLSPorts) > 0 {
				if _, err := fmt.Fprintf(a.out, "https probes: start the daemon with SSL_CERT_FILE=%s (the lab's CA)\n", l.CAFile()); err != nil {
					return err
				}
			}
			for _, u := range cfg.Prometheus {
				if _, err := fmt.Fprintf(a.out, "prometheus: %s answers in %s\n", u, res.Controller.Namespace); err != nil {
					return err
				}
			}
			return nil
		},
	}
	addLabNameFlag(cmd)
	addVMFlags(cmd)
	addEdgeFlag(cmd)
	addOutputFlag(cmd, "text", "json")
	return cmd
}

// labUpResult is lab up's JSON output.
type labUpResult struct {
	Lab          string                 `json:"lab"`
	Took         time.Duration          `json:"took"`
	VMs          int                    `json:"vms"`
	Covering     []netip.Prefix         `json:"covering"`
	BaselineSite string                 `json:"baseline_site"`
	Controller   labController          `json:"controller"`
	Edges        []labEdge              `json:"edges"`
	NextHops     map[string]lab.NextHop `json:"next_hops"`
}

// labEdge is an edge router of the lab and its sessions with the controller.
type labEdge struct {
	Node      string       `json:"node"`
	Flavor    string       `json:"flavor"`        // frr, bird or gobgp
	BMP       string       `json:"bmp,omitempty"` // the BMP station it reports to
	Namespace string       `json:"namespace"`
	AS        uint32       `json:"as"`
	Peers     []netip.Addr `json:"peers"` // the edge's addresses the controller dials
	Local     []netip.Addr `json:"local"` // the controller's addresses on the edge's link
}

func joinAddrs(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

// labController is where the controller runs in a lab and whom it peers with.
type labController struct {
	Namespace string       `json:"namespace"`
	AS        uint32       `json:"as"`
	Peers     []netip.Addr `json:"peers"`
	PeerAS    uint32       `json:"peer_as"`
}

func newLabDownCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Remove the lab completely: processes, namespaces, files",
		Long: `Stops every process of the lab (by pid, from the state file and by namespace),
deletes its namespaces (also ones a crash left without a state file) and removes
its state directory. Safe to run when the lab is not up.`,
		Example: `  cutover lab down
  cutover lab down --name big -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			name := a.v.GetString("name")
			start := time.Now()
			if err := lab.Down(cmd.Context(), name, a.log); err != nil {
				return err
			}
			took := time.Since(start)
			if a.jsonOut() {
				return a.writeJSON(struct {
					Lab  string        `json:"lab"`
					Took time.Duration `json:"took"`
				}{name, took})
			}
			_, err := fmt.Fprintf(a.out, "lab %q down in %.1fs\n", name, took.Seconds())
			return err
		},
	}
	addLabNameFlag(cmd)
	addOutputFlag(cmd, "text", "json")
	return cmd
}

func newLabStatusCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the lab's nodes, links, daemons, edge routers, BGP sessions and edge FIBs",
		Long: `Shows each edge's flavour (frr, bird, gobgp), the BMP station it reports to, its FIB
counts, and its sessions with the controller as its own router reports them (vtysh, birdc,
gobgpd's API). Exits 1 when something is wrong (a namespace, link or daemon); BGP sessions
need not be established.`,
		Example: `  cutover lab status
  cutover lab status --name big -o json | jq .problems`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := lab.Open(a.v.GetString("name"))
			if err != nil {
				return err
			}
			st, err := l.Status(cmd.Context())
			if err != nil {
				return err
			}
			if a.jsonOut() {
				err = a.writeJSON(st)
			} else {
				err = st.WriteText(a.out)
			}
			if err != nil {
				return err
			}
			if !st.Healthy() {
				return fmt.Errorf("lab %q is not healthy: %d problems", st.Name, len(st.Problems))
			}
			return nil
		},
	}
	addLabNameFlag(cmd)
	addOutputFlag(cmd, "text", "json")
	return cmd
}

func newLabVtyshCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "vtysh NODE",
		Short: "Run vtysh against an edge's FRR (edge, edge2, ...)",
		Long: `vtysh talks to an FRR edge's daemons. A gobgp edge runs FRR's zebra and staticd
only (vtysh shows its FIB: show ip route), its BGP is gobgpd's; a bird edge runs no FRR.
For those the error names their own CLI (gobgp, birdc) with its socket.`,
		Example: `  cutover lab vtysh edge -c "show bgp summary"
  cutover lab vtysh edge2 -c "show bgp summary"     # a lab of a runbook with two peers
  cutover lab vtysh edge -c "show ip route 10.64.0.10"
  cutover lab vtysh edge -c "show bgp summary json"
  cutover lab vtysh edge          # interactive`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{lab.NodeEdge, "edge2", "edge3"},
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := lab.Open(a.v.GetString("name"))
			if err != nil {
				return err
			}
			cmds, err := cmd.Flags().GetStringArray("command")
			if err != nil {
				return err
			}
			if len(cmds) == 0 {
				vargs, err := l.VtyshArgs(args[0])
				if err != nil {
					return usageErr(err)
				}
				c := exec.CommandContext(cmd.Context(), "vtysh", vargs...)
				// vtysh talks to the terminal itself; its errors are lines
				// for people (see errLines).
				c.Stdin, c.Stdout, c.Stderr = os.Stdin, a.out, a.err
				a.plainErr = true
				return c.Run()
			}
			out, err := l.Vtysh(cmd.Context(), args[0], cmds...)
			fmt.Fprint(a.out, out)
			return err
		},
	}
	addLabNameFlag(cmd)
	cmd.Flags().StringArrayP("command", "c", nil, "vtysh command (repeatable); none: interactive")
	return cmd
}

func newLabHTTPCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "http ADDRESS",
		Short: "Make an HTTP GET to a VM from inside a node and print the answer (the site name)",
		Example: `  cutover lab http 10.64.0.10              # from hosp: prints skm1 at baseline
  cutover lab http --from ctl fd00:64::10 -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			addr, err := netip.ParseAddr(args[0])
			if err != nil {
				return usageErr(fmt.Errorf("address: %w", err))
			}
			l, err := lab.Open(a.v.GetString("name"))
			if err != nil {
				return err
			}
			port, from := a.v.GetUint16("port"), a.v.GetString("from")
			body, err := l.HTTPGet(cmd.Context(), from, addr, port)
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return a.writeJSON(struct {
					From    string     `json:"from"`
					Address netip.Addr `json:"address"`
					Port    uint16     `json:"port"`
					Answer  string     `json:"answer"`
				}{from, addr, port, strings.TrimSpace(body)})
			}
			_, err = fmt.Fprint(a.out, body)
			return err
		},
	}
	addLabNameFlag(cmd)
	addOutputFlag(cmd, "text", "json")
	cmd.Flags().String("from", lab.NodeHosp, "node to make the request from")
	cmd.Flags().Uint16("port", lab.HTTPPort, "TCP port")
	_ = cmd.RegisterFlagCompletionFunc("from", cobra.FixedCompletions([]string{lab.NodeHosp, lab.NodeCtl, lab.NodeEdge, lab.NodeSKM1, lab.NodeSKM2},
		cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func newLabExportCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write the lab topology for another runner (containerlab)",
		Long: `Writes the lab as a containerlab topology (.clab.yml, --format clab) with the same
nodes, links, addresses and FRR configuration. With --out FILE, the topology goes to
FILE and the files it binds into the nodes next to it in <name>-files/, and export
prints what it wrote; without --out the topology goes to standard output (-o json:
the topology and the files' contents in one JSON object).

-o is the output format, as everywhere; the file is --out.`,
		Example: `  cutover lab export --out lab/cutover.clab.yml
  cutover lab export --format clab --vms 100 > cutover.clab.yml
  cutover lab export -o json | jq -r .yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f := a.v.GetString("format"); f != "clab" {
				return usageErr(fmt.Errorf("--format %q: want clab", f))
			}
			cfg, err := a.labConfig(cmd)
			if err != nil {
				return err
			}
			ex, err := clab.New(cfg)
			if err != nil {
				return usageErr(err)
			}
			res := exportResult{Format: "clab", FilesDir: ex.FilesDir, Files: ex.FileNames(), Built: ex.Built}
			out := a.v.GetString("out")
			if out == "" || out == "-" {
				if !a.jsonOut() {
					_, err := a.out.Write(ex.YAML)
					return err
				}
				res.YAML, res.Contents = string(ex.YAML), map[string]string{}
				for name, b := range ex.Files {
					res.Contents[name] = string(b)
				}
				return a.writeJSON(res)
			}
			dir := filepath.Dir(out)
			for i, name := range res.Files {
				p := filepath.Join(dir, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					return err
				}
				mode := os.FileMode(0o644)
				if filepath.Ext(p) == ".sh" {
					mode = 0o755
				}
				if err := os.WriteFile(p, ex.Files[name], mode); err != nil {
					return err
				}
				res.Files[i] = p
			}
			if err := os.WriteFile(out, ex.YAML, 0o644); err != nil {
				return err
			}
			res.Topology, res.FilesDir = out, filepath.Join(dir, ex.FilesDir)
			if a.jsonOut() {
				return a.writeJSON(res)
			}
			if _, err := fmt.Fprintf(a.out, "wrote %s and %d files in %s\n", out, len(ex.Files), res.FilesDir); err != nil {
				return err
			}
			for _, b := range ex.Built {
				if _, err := fmt.Fprintf(a.out, "build %s before deploying: sh %s\n", filepath.Join(dir, b), filepath.Join(res.FilesDir, "build.sh")); err != nil {
					return err
				}
			}
			return nil
		},
	}
	addLabNameFlag(cmd)
	addVMFlags(cmd)
	cmd.Flags().String("edge", lab.FlavorFRR, "edge routers: the export runs FRR only (frr)")
	addOutputFlag(cmd, "text", "json")
	cmd.Flags().String("format", "clab", "topology format: clab (containerlab)")
	cmd.Flags().String("out", "", "write the topology to this file, and its files next to it (default: the topology to stdout)")
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"clab"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// exportResult is lab export's JSON output.
type exportResult struct {
	Format string `json:"format"`
	// Topology is the file written (--out); empty: YAML holds the topology.
	Topology string `json:"topology,omitempty"`
	FilesDir string `json:"files_dir"`
	// Files are the files the topology binds into the nodes: the paths
	// written, or (without --out) their names relative to the topology.
	Files []string `json:"files"`
	// Built are files the topology binds that must be built first (the
	// static cutover binary: sh <files_dir>/build.sh).
	Built []string `json:"built,omitempty"`
	// YAML and Contents (by name) are the topology and its files, without --out.
	YAML     string            `json:"yaml,omitempty"`
	Contents map[string]string `json:"contents,omitempty"`
}

// newLabResponderCmd is the site responder Up starts in skm1 and skm2; its
// flags are parsed by lab.ResponderMain.
func newLabResponderCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:                "responder --site NAME --addrs FILE --control SOCKET [--listen :80]",
		Short:              "Answer HTTP on every VM address with the site name (started by lab up)",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return lab.ResponderMain(cmd.Context(), args, a.log)
		},
	}
}
