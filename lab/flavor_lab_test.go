package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cutover/cutover/internal/testenv"
)

// requireFlavor skips t unless the machine can run an edge of flavour f:
// root, FRR (also gobgpd's zebra and staticd), bird2 or gobgpd. gobgpd is
// looked for in the repository's bin/ too, where scripts/setup builds it.
func requireFlavor(t *testing.T, f string) {
	t.Helper()
	testenv.RequireRoot(t)
	if f != FlavorBIRD {
		testenv.RequireFRR(t)
	}
	if bin, err := filepath.Abs("../bin"); err == nil {
		if _, err := os.Stat(filepath.Join(bin, "gobgpd")); err == nil {
			t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
		}
	}
	if _, err := findTools([]string{f}); err != nil {
		t.Skipf("edge flavour %s cannot run here: %v", f, err)
	}
}

// testSpeaker is the in-test GoBGP speaker (speaker_test.go) running in
// ctl.
type testSpeaker struct {
	next func() speakerEvent
	stop func()
}

func startSpeaker(t *testing.T, l *Lab, cfg speakerConfig) *testSpeaker {
	t.Helper()
	b, _ := json.Marshal(cfg)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := l.Command(NodeCtl, exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), speakerEnv+"="+string(b))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	sp := &testSpeaker{stop: func() {
		if !stopped {
			stopped = true
			stdin.Close()
			cmd.Wait()
		}
	}}
	t.Cleanup(sp.stop)
	events := bufio.NewScanner(stdout)
	events.Buffer(nil, 16<<20)
	sp.next = func() speakerEvent {
		t.Helper()
		if !events.Scan() {
			t.Fatalf("speaker ended: %v; stderr: %s", events.Err(), stderr.String())
		}
		var ev speakerEvent
		if err := json.Unmarshal(events.Bytes(), &ev); err != nil || ev.Event == "error" {
			t.Fatalf("speaker: %s %v", events.Text(), err)
		}
		return ev
	}
	return sp
}

// flavorRoutes is how many VM routes TestEdgeFlavors announces;
// CUTOVER_LAB_FLAVOR_ROUTES raises it to measure the FIB install time.
func flavorRoutes(t *testing.T) int {
	if s := os.Getenv("CUTOVER_LAB_FLAVOR_ROUTES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 2 {
			t.Fatalf("CUTOVER_LAB_FLAVOR_ROUTES=%q: want a number >= 2", s)
		}
		return n
	}
	return 50
}

// TestEdgeFlavors brings up a lab per edge flavour, announces VM routes
// from a GoBGP speaker in ctl and checks that they reach the edge's kernel
// FIB (and that a route outside the VM ranges does not), that status reads
// the session, and that nothing is left after Down.
func TestEdgeFlavors(t *testing.T) {
	for _, f := range Flavors {
		t.Run(f, func(t *testing.T) {
			requireFlavor(t, f)
			n := flavorRoutes(t)
			name := testName()
			log := zerolog.New(zerolog.NewTestWriter(t))
			ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
			defer cancel()
			var daemons []Daemon
			t.Cleanup(func() {
				if err := Down(context.Background(), name, log); err != nil {
					t.Errorf("Down: %v", err)
				}
				assertGone(t, name, daemons)
			})
			l, err := Up(ctx, Config{Name: name, VMs: append(DefaultVMs(n-1), DefaultVMs6(1)...), EdgeFlavors: []string{f}}, log)
			if err != nil {
				t.Fatalf("Up: %v", err)
			}
			daemons = l.Daemons()
			topo := l.Topology()
			if got := topo.Edges[0].Flavor; got != f {
				t.Fatalf("edge flavour %q, want %q", got, f)
			}
			skm2 := topo.SiteNextHop[NodeSKM2]
			var routes []speakerRoute
			for _, vm := range topo.VMs {
				routes = append(routes, speakerRoute{Prefix: vm, NextHop: skm2.For(vm.Addr())})
			}
			refused := speakerRoute{Prefix: netip.MustParsePrefix("10.99.0.0/24"), NextHop: skm2.V4}
			want := 0
			if f == FlavorFRR {
				want = len(routes) // only FRR mirrors
			}
			sp := startSpeaker(t, l, speakerConfig{
				RouterID: topo.Ctl4, LocalAS: topo.ControllerAS, Peer: topo.EdgeCtl4, PeerAS: topo.EdgeAS,
				Announce: append(slices.Clone(routes), refused), WantMirrored: want,
			})
			if ev := sp.next(); ev.Event != "established" {
				t.Fatalf("speaker: %+v, want established", ev)
			}
			start := time.Now()
			fib := waitFIB(t, l, func(fib map[netip.Prefix]netip.Addr) bool {
				for _, r := range routes {
					if fib[r.Prefix] != r.NextHop {
						return false
					}
				}
				return true
			})
			t.Logf("%s: %d routes in the edge's kernel FIB %s after the session came up", f, len(routes), time.Since(start).Round(time.Millisecond))
			if gw, ok := fib[refused.Prefix]; ok {
				t.Errorf("edge FIB holds %s (outside the VM ranges) via %s", refused.Prefix, gw)
			}
			for _, c := range topo.Covering {
				if fib[c] != topo.SiteNextHop[NodeSKM1].For(c.Addr()) {
					t.Errorf("covering %s via %s, want skm1", c, fib[c])
				}
			}
			if ev := sp.next(); ev.Event != "mirrored" || len(ev.Mirrored) != want {
				t.Errorf("speaker: %s with %d paths mirrored, want %d", ev.Event, len(ev.Mirrored), want)
			}
			testenv.Eventually(t, 15*time.Second, 100*time.Millisecond, func() string {
				ss, err := l.EdgeSessions(ctx, NodeEdge)
				if err != nil {
					return err.Error()
				}
				for _, s := range ss {
					if s.Peer == topo.Ctl4 {
						// gobgpd counts before its (global) import policy:
						// the refused route too.
						if !s.Established() || s.Received["ipv4Unicast"] < n-1 || s.Received["ipv6Unicast"] != 1 {
							return "session " + s.Peer.String() + ": " + s.State + " received " + strconv.Itoa(s.Received["ipv4Unicast"]) + "/" + strconv.Itoa(s.Received["ipv6Unicast"])
						}
						return ""
					}
				}
				return "no session with " + topo.Ctl4.String()
			})
			st, err := l.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !st.Healthy() || st.Edges[0].Flavor != f {
				t.Errorf("status: flavour %s, problems %v", st.Edges[0].Flavor, st.Problems)
			}
			if err := l.ResetBGP(ctx, NodeEdge); err != nil {
				t.Errorf("ResetBGP: %v", err)
			}
		})
	}
}
