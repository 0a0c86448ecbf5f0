package plan

import (
	"fmt"
	"os"
	"slices"

	"github.com/cutover/cutover/cutover/runbook"

	"github.com/cutover/cutover/bgp"
	"github.com/cutover/cutover/cutover/health"
	"github.com/cutover/cutover/nft"
)

// SpeakerConfig is the BGP speaker configuration the runbook asks for.
// Passwords named by password_env are read from the environment here.
func (pl *Plan) SpeakerConfig() (bgp.Config, error) {
	rb := pl.Runbook
	c := bgp.Config{
		LocalAS:         rb.BGP.LocalAS,
		RouterID:        rb.BGP.RouterID,
		ListenPort:      int32(rb.BGP.ListenPort),
		GracefulRestart: bgp.GracefulRestart{Enabled: rb.BGP.GracefulRestart.Enabled, RestartTime: rb.BGP.GracefulRestart.RestartTime},
		Limits:          bgp.Limits{Allowed: slices.Clone(rb.AllowedPrefixes), MaxPrefixes: rb.MaxPrefixes},
		BMP:             rb.BGP.BMP.Listen,
	}
	for _, p := range rb.BGP.Peers {
		pw := p.Password
		if p.PasswordEnv != "" {
			pw = os.Getenv(p.PasswordEnv)
			if pw == "" {
				return bgp.Config{}, fmt.Errorf("peer %s: password_env %s is empty or not set", p.Address, p.PasswordEnv)
			}
		}
		c.Peers = append(c.Peers, bgp.PeerConfig{Address: p.Address, AS: p.AS, Port: p.Port, Password: pw,
			HoldTime: p.HoldTime, Keepalive: p.Keepalive, Observe: p.Observe, ObserveFallback: p.ObserveFallback})
	}
	return c, c.Validate()
}

// DataplaneConfig is the nft configuration the runbook asks for.
func (pl *Plan) DataplaneConfig() nft.Config {
	return nft.Config{Table: pl.Runbook.Dataplane.Table, NetNS: pl.Runbook.Dataplane.Netns}
}

// Targets returns the probe targets of the given VMs: one per address of
// every VM that has a probe. A VM's first address is named after the VM,
// further ones "name/address".
func Targets(vms []*runbook.VM) []health.Target {
	var ts []health.Target
	for _, vm := range vms {
		if vm.Probe.Kind == runbook.ProbeNone {
			continue
		}
		for i, p := range vm.Prefixes {
			name := vm.Name
			if i > 0 {
				name = vm.Name + "/" + p.Addr().String()
			}
			ts = append(ts, health.Target{Name: name, Addr: p.Addr(),
				Probe: health.Probe{Kind: string(vm.Probe.Kind), Port: vm.Probe.Port, Path: vm.Probe.Path}})
		}
	}
	return ts
}
