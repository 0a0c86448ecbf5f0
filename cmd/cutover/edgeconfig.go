package main

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/cutover/runbook"
	"github.com/cutover/cutover/edge"
	"github.com/cutover/cutover/internal/words"
)

func newEdgeConfigCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "edge-config RUNBOOK",
		Short: "Print the config an edge router needs to accept the controller",
		Long: `edge-config prints, for each peer of the runbook's bgp.peers (or the one --peer
names), the config that edge router needs to accept the controller: the session
toward the controller with the peer's AS, timers and MD5 password, graceful
restart helper and long-lived graceful restart, a filter that takes only
prefixes inside allowed_prefixes (up to host routes, one list per family), a
limit of max_prefixes, and what the peer's observe asks for: the BMP station
(observe: bmp) or the mirror (observe: mirror).

--flavor picks the router: frr, bird (BIRD 2), gobgp (gobgpd TOML), junos or eos.
For observe: bmp the edge reports to the controller's BMP station: at
bgp.bmp.listen, or, when that listens on every address, at the controller's
address on the session with the listen port (default 11019); --bmp names
another station. FRR, gobgpd, Junos and EOS speak BMP; BIRD 2.0 does not, and
such a peer wants observe_fallback: sent (or observe: sent). Only FRR mirrors
(sends its best paths back with the next-hop unchanged, over eBGP); the other
flavours say in a comment why they cannot.

The controller's address on the session defaults to bgp.router_id for IPv4
peers; an IPv6 peer needs --controller with the controller's IPv6 address.
--router-id sets the edge's own router-id where the peer address cannot be one
(gobgpd needs it). Nothing is changed anywhere; the configs go to standard
output, each after a header line.`,
		Example: `  cutover edge-config runbooks/helse-nord/runbook.yaml --flavor frr
  cutover edge-config runbooks/drain-upgrade/out.yaml --flavor junos --controller 10.255.0.2 --controller fd00:255::2
  cutover edge-config runbooks/drain-upgrade/out.yaml --flavor gobgp --peer 10.255.0.1 --bmp 192.0.2.10:5000`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := edgeConfigOpts(a)
			if err != nil {
				return usageErr(err)
			}
			return runEdgeConfig(a, args[0], opts)
		},
	}
	addOutputFlag(cmd, "text")
	f := cmd.Flags()
	f.String("flavor", "", "router flavour: "+words.OrList(edge.Flavors)+" (required)")
	f.String("peer", "", "only the edge at this bgp.peers address")
	f.StringSlice("controller", nil, "controller address the edge peers with (repeatable; default bgp.router_id for IPv4 peers)")
	f.String("bmp", "", "BMP station ADDR:PORT the edge reports to (default: from bgp.bmp.listen, for observe: bmp peers)")
	f.String("router-id", "", "the edge's router-id (default: the peer address, when IPv4)")
	_ = cmd.RegisterFlagCompletionFunc("flavor", cobra.FixedCompletions(edge.Flavors, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// edgeConfigOptions are edge-config's flags, parsed.
type edgeConfigOptions struct {
	flavor      string
	peer        netip.Addr // invalid: every peer
	controllers []netip.Addr
	bmp         netip.AddrPort // invalid: none
	routerID    netip.Addr     // invalid: the peer address when IPv4
}

func edgeConfigOpts(a *app) (edgeConfigOptions, error) {
	var o edgeConfigOptions
	o.flavor = a.v.GetString("flavor")
	if o.flavor == "" {
		return o, fmt.Errorf("--flavor: required, one of %s", words.OrList(edge.Flavors))
	}
	if !slices.Contains(edge.Flavors, o.flavor) {
		return o, fmt.Errorf("--flavor %q: want %s", o.flavor, words.OrList(edge.Flavors))
	}
	var err error
	if o.peer, err = optAddr(a, "peer"); err != nil {
		return o, err
	}
	if o.routerID, err = optAddr(a, "router-id"); err != nil {
		return o, err
	}
	if o.routerID.IsValid() && !o.routerID.Is4() {
		return o, fmt.Errorf("--router-id %s: want an IPv4 address", o.routerID)
	}
	for _, s := range a.v.GetStringSlice("controller") {
		c, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			return o, fmt.Errorf("--controller %q: want an IP address", s)
		}
		o.controllers = append(o.controllers, c.Unmap())
	}
	if s := a.v.GetString("bmp"); s != "" {
		if o.bmp, err = netip.ParseAddrPort(s); err != nil || o.bmp.Port() == 0 {
			return o, fmt.Errorf("--bmp %q: want ADDR:PORT, e.g. 192.0.2.10:5000 or [2001:db8::10]:5000", s)
		}
	}
	return o, nil
}

func optAddr(a *app, flag string) (netip.Addr, error) {
	s := a.v.GetString(flag)
	if s == "" {
		return netip.Addr{}, nil
	}
	ad, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("--%s %q: want an IP address", flag, s)
	}
	return ad.Unmap(), nil
}

func runEdgeConfig(a *app, path string, o edgeConfigOptions) error {
	rb, warns, err := runbook.LoadRunbook(path)
	if err := reportProblems(a.errLines(), path, warns, err); err != nil {
		return err
	}
	peers, err := selectPeers(rb, o.peer)
	if err != nil {
		return usageErr(err)
	}
	var out strings.Builder
	for _, p := range peers {
		cfg, err := edgeConfigFor(rb, p, o)
		if err != nil {
			return usageErr(fmt.Errorf("%s: %w", path, err))
		}
		fmt.Fprintf(&out, "### edge %s (AS %d): %s config\n%s", p.Address, p.AS, o.flavor, cfg)
	}
	// Written at once: a later peer's error leaves no half output.
	if _, err := fmt.Fprint(a.out, out.String()); err != nil {
		return fmt.Errorf("write the configs: %w", err)
	}
	return nil
}

func selectPeers(rb *runbook.Runbook, want netip.Addr) ([]runbook.Peer, error) {
	if !want.IsValid() {
		return rb.BGP.Peers, nil
	}
	var names []string
	for _, p := range rb.BGP.Peers {
		if p.Address == want {
			return []runbook.Peer{p}, nil
		}
		names = append(names, p.Address.String())
	}
	return nil, fmt.Errorf("--peer %s: runbook %s has no such peer (peers: %s)", want, rb.Name, strings.Join(names, ", "))
}

// edgeConfigFor renders the config of the edge at peer p.
func edgeConfigFor(rb *runbook.Runbook, p runbook.Peer, o edgeConfigOptions) (string, error) {
	ctl := o.controllers
	if !slices.ContainsFunc(ctl, func(c netip.Addr) bool { return c.Is4() == p.Address.Is4() }) {
		if !p.Address.Is4() {
			return "", fmt.Errorf("peer %s is IPv6: pass the controller's IPv6 address on the session with it, --controller ADDR (bgp.router_id %s serves IPv4 peers only)",
				p.Address, rb.BGP.RouterID)
		}
		ctl = append(slices.Clone(ctl), rb.BGP.RouterID)
	}
	in, err := edge.FromRunbook(rb, p.Address, ctl, o.flavor)
	if err != nil {
		return "", err
	}
	if o.bmp.IsValid() {
		in.BMP = o.bmp
	}
	if o.routerID.IsValid() {
		in.RouterID = o.routerID
	}
	return edge.Render(in)
}
