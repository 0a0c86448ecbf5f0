package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/lab"
	"github.com/cutover/cutover/lab/clab"
)

func newLabCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Run the lab: real FRR routers and VM responders in network namespaces",
		Long: `The lab is the production shape in Linux network namespaces (cutover-<name>-<node>):
an FRR edge router (AS 65000) where the hospitals' traffic enters, the datacenter
gateways skm1 and skm2 holding every VM address, a client network hosp, and ctl,
where the cutover controller (AS 65100) peers with the edge. Every VM reaches
skm1 through the edge's covering static routes until the controller announces a
more specific route. Needs root, FRR and iproute2 (scripts/setup --packages).`,
	}
	cmd.AddCommand(
		newLabUpCmd(a),
		newLabDownCmd(a),
		newLabStatusCmd(a),
		newLabVtyshCmd(a),
		newLabHTTPCmd(a),
		newLabExportCmd(a),
		newLabResponderCmd(a),
		newRehearseCmd(a),
		newFaultCmd(a),
	)
	return cmd
}

func addLabNameFlag(cmd *cobra.Command) {
	cmd.Flags().String("name", lab.DefaultName, "lab name: namespaces are cutover-<name>-<node>")
}

func addVMFlags(cmd *cobra.Command) {
	cmd.Flags().Int("vms", 2000, "number of IPv4 VMs (10.64.0.10 upwards)")
	cmd.Flags().Int("vms6", 0, "number of IPv6 VMs (fd00:64::10 upwards)")
}

// labConfig builds the lab configuration from the flags.
func (a *app) labConfig() (lab.Config, error) {
	n4, n6 := a.v.GetInt("vms"), a.v.GetInt("vms6")
	if n4 < 0 || n6 < 0 {
		return lab.Config{}, &exitError{2, fmt.Errorf("--vms %d --vms6 %d: want numbers >= 0", n4, n6)}
	}
	vms := append(lab.DefaultVMs(n4), lab.DefaultVMs6(n6)...)
	return lab.Config{Name: a.v.GetString("name"), VMs: vms}, nil
}

func newLabUpCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Bring the lab up (recreating it if it is up)",
		Example: `  cutover lab up
  cutover lab up --vms 10000 --vms6 100 --name big`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.labConfig()
			if err != nil {
				return err
			}
			start := time.Now()
			l, err := lab.Up(cmd.Context(), cfg, a.log)
			if err != nil {
				return err
			}
			t := l.Topology()
			fmt.Fprintf(a.out, "lab %q up in %.1fs: %d VMs, covering %v via %s\n",
				l.Name(), time.Since(start).Seconds(), len(t.VMs), t.Covering, t.BaselineSite)
			fmt.Fprintf(a.out, "controller: run it in %s, AS %d, peer %s (or %s) AS %d\n",
				l.Namespace(lab.NodeCtl), t.ControllerAS, t.EdgeCtl4, t.EdgeCtl6, t.EdgeAS)
			fmt.Fprintf(a.out, "next-hops: skm1 %s %s, skm2 %s %s\n",
				t.SiteNextHop[lab.NodeSKM1].V4, t.SiteNextHop[lab.NodeSKM1].V6,
				t.SiteNextHop[lab.NodeSKM2].V4, t.SiteNextHop[lab.NodeSKM2].V6)
			return nil
		},
	}
	addLabNameFlag(cmd)
	addVMFlags(cmd)
	return cmd
}

func newLabDownCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Remove the lab completely: processes, namespaces, files",
		Long: `Stops every process of the lab (by pid, from the state file and by namespace),
deletes its namespaces (also ones a crash left without a state file) and removes
its state directory. Safe to run when the lab is not up.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			name := a.v.GetString("name")
			start := time.Now()
			if err := lab.Down(cmd.Context(), name, a.log); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "lab %q down in %.1fs\n", name, time.Since(start).Seconds())
			return nil
		},
	}
	addLabNameFlag(cmd)
	return cmd
}

func newLabStatusCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the lab's nodes, links, daemons, BGP sessions and edge FIB",
		Long:  "Exits 1 when something is wrong (a namespace, link or daemon); BGP sessions need not be established.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := lab.Open(a.v.GetString("name"))
			if err != nil {
				return err
			}
			st, err := l.Status(cmd.Context())
			if err != nil {
				return err
			}
			switch f := a.v.GetString("output"); f {
			case "json":
				enc := json.NewEncoder(a.out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(st); err != nil {
					return err
				}
			case "text":
				if err := st.WriteText(a.out); err != nil {
					return err
				}
			default:
				return &exitError{2, fmt.Errorf("--output %q: want text or json", f)}
			}
			if !st.Healthy() {
				return fmt.Errorf("lab %q is not healthy: %d problems", st.Name, len(st.Problems))
			}
			return nil
		},
	}
	addLabNameFlag(cmd)
	cmd.Flags().StringP("output", "o", "text", "output format: text or json")
	return cmd
}

func newLabVtyshCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "vtysh NODE",
		Short: "Run vtysh against a node's FRR (only edge runs FRR)",
		Example: `  cutover lab vtysh edge -c "show bgp summary"
  cutover lab vtysh edge -c "show ip route 10.64.0.10"
  cutover lab vtysh edge          # interactive`,
		Args: cobra.ExactArgs(1),
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
					return &exitError{2, err}
				}
				c := exec.CommandContext(cmd.Context(), "vtysh", vargs...)
				c.Stdin, c.Stdout, c.Stderr = os.Stdin, a.out, a.err
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
  cutover lab http --from ctl fd00:64::10`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			addr, err := netip.ParseAddr(args[0])
			if err != nil {
				return &exitError{2, fmt.Errorf("address: %w", err)}
			}
			l, err := lab.Open(a.v.GetString("name"))
			if err != nil {
				return err
			}
			port := a.v.GetUint16("port")
			body, err := l.HTTPGet(cmd.Context(), a.v.GetString("from"), addr, port)
			if err != nil {
				return err
			}
			fmt.Fprint(a.out, body)
			return nil
		},
	}
	addLabNameFlag(cmd)
	cmd.Flags().String("from", lab.NodeHosp, "node to make the request from")
	cmd.Flags().Uint16("port", lab.HTTPPort, "TCP port")
	return cmd
}

func newLabExportCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write the lab topology for another runner (containerlab)",
		Long: `Writes the lab as a containerlab topology (.clab.yml) with the same nodes, links,
addresses and FRR configuration. With -o, the files it binds into the nodes are
written next to it in <name>-files/; without -o only the YAML goes to stdout.`,
		Example: `  cutover lab export --format clab -o lab/cutover.clab.yml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f := a.v.GetString("format"); f != "clab" {
				return &exitError{2, fmt.Errorf("--format %q: want clab", f)}
			}
			cfg, err := a.labConfig()
			if err != nil {
				return err
			}
			ex, err := clab.New(cfg)
			if err != nil {
				return &exitError{2, err}
			}
			out := a.v.GetString("output")
			if out == "" || out == "-" {
				_, err := a.out.Write(ex.YAML)
				return err
			}
			dir := filepath.Dir(out)
			for _, name := range ex.FileNames() {
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
			}
			if err := os.WriteFile(out, ex.YAML, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(a.err, "wrote %s and %d files in %s\n", out, len(ex.Files), filepath.Join(dir, ex.FilesDir))
			return nil
		},
	}
	addLabNameFlag(cmd)
	addVMFlags(cmd)
	cmd.Flags().String("format", "clab", "output format: clab (containerlab)")
	cmd.Flags().StringP("output", "o", "", "file to write (default: the YAML to stdout)")
	return cmd
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
