package daemon

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	gobmp "github.com/osrg/gobgp/v3/pkg/packet/bmp"

	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/plan"
)

// TestDaemonBMPGate: with observe: bmp the daemon runs a BMP station, and
// the bgp gate passes only once the edge reports, over BMP, that it holds
// the batch's routes with the target's next-hop; what the speaker says
// does not count for such a peer.
func TestDaemonBMPGate(t *testing.T) {
	// A free port for the station on loopback.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	station := ln.Addr().String()
	ln.Close()

	src := t.TempDir()
	rb, err := os.ReadFile(daemonRunbook)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(rb), "observe: true}", "observe: bmp}\n  bmp: {listen: \""+station+"\"}", 1)
	text = strings.Replace(text, "{kind: bgp, timeout: 2s}", "{kind: bgp, timeout: 60s}", 1)
	inv, err := os.ReadFile(filepath.Join(filepath.Dir(daemonRunbook), "inventory.csv"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(src, "runbook.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "inventory.csv"), inv, 0o600); err != nil {
		t.Fatal(err)
	}
	pl, _, err := plan.Load(path)
	if err != nil {
		t.Fatal(err)
	}

	h := openDaemon(t, t.TempDir(), nil)
	if err := h.cl.Run(context.Background(), path, true); err != nil {
		t.Fatal(err)
	}
	// The edge connects, but reports none of our routes yet: the canary
	// waits in convergence.
	var c net.Conn
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err = net.Dial("tcp", station); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the station does not listen on %s: %v", station, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	defer c.Close()
	send := func(ms ...*gobmp.BMPMessage) {
		t.Helper()
		for _, m := range ms {
			b, err := m.Serialize()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Write(b); err != nil {
				t.Fatal(err)
			}
		}
	}
	const edgeAS, ctlAS = 65000, 65100
	open := func(as uint32, id string) *bgp.BGPMessage {
		return bgp.NewBGPOpenMessage(uint16(as), 90, id, []bgp.OptionParameterInterface{
			bgp.NewOptionParameterCapability([]bgp.ParameterCapabilityInterface{bgp.NewCapFourOctetASNumber(as)}),
		})
	}
	ctl := pl.Runbook.BGP.RouterID.String()
	pre := *gobmp.NewBMPPeerHeader(gobmp.BMP_PEER_TYPE_GLOBAL, 0, 0, ctl, ctlAS, ctl, 0)
	post := *gobmp.NewBMPPeerHeader(gobmp.BMP_PEER_TYPE_GLOBAL, gobmp.BMP_PEER_FLAG_POST_POLICY, 0, ctl, ctlAS, ctl, 0)
	edge := pl.Runbook.BGP.Peers[0].Address.String()
	send(gobmp.NewBMPInitiation([]gobmp.BMPInfoTLVInterface{gobmp.NewBMPInfoTLVString(gobmp.BMP_INIT_TLV_TYPE_SYS_NAME, "edge")}),
		gobmp.NewBMPPeerUpNotification(pre, edge, 179, 40000, open(edgeAS, edge), open(ctlAS, ctl)))
	time.Sleep(time.Second)
	st := h.waitFor("the canary announced", func(s engine.RunState) bool {
		return len(s.Batches) > 0 && s.Batches[0].Phase == engine.BatchAnnouncing
	})
	if st.Batches[0].Phase != engine.BatchAnnouncing {
		t.Fatalf("the canary is %s a second after the edge connected without routes, want still announcing (converging)", st.Batches[0].Phase)
	}

	// The edge reports every route of the run at the target: the run ends.
	all := make([]int, len(pl.Batches))
	for i := range all {
		all[i] = i
	}
	for _, r := range pl.RoutesOf(all) {
		attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0),
			bgp.NewPathAttributeAsPath([]bgp.AsPathParamInterface{bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, []uint32{ctlAS})}),
			bgp.NewPathAttributeNextHop(r.NextHop.String())}
		nlri := []*bgp.IPAddrPrefix{bgp.NewIPAddrPrefix(uint8(r.Prefix.Bits()), r.Prefix.Addr().String())}
		send(gobmp.NewBMPRouteMonitoring(post, bgp.NewBGPUpdateMessage(nil, attrs, nlri)))
	}
	st = h.waitFor("the end", func(s engine.RunState) bool { return s.Phase == engine.PhaseDone })
	for i, b := range st.Batches {
		if b.Phase != engine.BatchCommitted {
			t.Errorf("batch %d is %s, want committed", i, b.Phase)
		}
	}
	h.stop()
}
