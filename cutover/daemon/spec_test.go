package daemon

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/cutover/cutover/bgp"
	"github.com/cutover/cutover/cutover/plan"
	"github.com/cutover/cutover/cutover/runbook"
)

// TestConvergeFailureSaysItOnce: a bgp gate that runs out names each
// peer still missing routes, its proof and its first missing prefixes,
// once.
func TestConvergeFailureSaysItOnce(t *testing.T) {
	abs, _ := filepath.Abs(daemonRunbook)
	pl, _, err := plan.Load(abs)
	if err != nil {
		t.Fatal(err)
	}
	rb := *pl.Runbook
	rb.Gates = []runbook.GateConfig{{Kind: runbook.GateBGP, Timeout: 2 * time.Second}}
	pl.Runbook = &rb
	bc, err := pl.SpeakerConfig()
	if err != nil {
		t.Fatal(err)
	}
	sp := bgp.NewFake(bc.Limits)
	sp.SetObservers(bc.Peers[0].Address)
	routes := pl.RoutesOf([]int{0})
	sp.Withhold(bc.Peers[0].Address, routes[0].Prefix)
	if err := sp.Set(context.Background(), routes); err != nil {
		t.Fatal(err)
	}
	spec := NewSpec(pl, SpecOptions{Speaker: sp})
	_, err = spec.Converge(context.Background(), routes)
	want := "peers did not hold the batch's routes within 2s: " + bc.Peers[0].Address.String() + " by mirror 1/2 (missing " + routes[0].Prefix.String() + ")"
	if err == nil || err.Error() != want {
		t.Errorf("Converge = %v\nwant        %s", err, want)
	}
	sp.Withhold(bc.Peers[0].Address)
	proof, err := spec.Converge(context.Background(), routes)
	if want := bc.Peers[0].Address.String() + " by mirror"; err != nil || proof != want {
		t.Errorf("Converge once every route is held = %q, %v; want %q", proof, err, want)
	}
}
