package bmp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"

	"github.com/cutover/cutover/bgp"
	"github.com/cutover/cutover/internal/netnsrun"
	"github.com/cutover/cutover/internal/testenv"
)

// frrBMPConfig is the edge's bgpd.conf: an eBGP session with the
// "controller" (GoBGP on port 1790) and BMP post-policy monitoring
// towards the station. FRR 8.4 has no "bmp monitor ... loc-rib" (vtysh
// --dryrun: "% Unknown command"), so post-policy Adj-RIB-In it is.
const frrBMPConfig = `hostname bmpt-edge
router bgp %[1]d
 bgp router-id 10.0.0.2
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 neighbor %[3]s remote-as %[2]d
 neighbor %[3]s port 1790
 neighbor %[3]s update-source %[4]s
 neighbor %[3]s disable-connected-check
 neighbor %[3]s timers connect 1
 address-family ipv4 unicast
  neighbor %[3]s activate
 exit-address-family
 address-family ipv6 unicast
  neighbor %[3]s activate
 exit-address-family
 bmp targets station
  bmp connect 127.0.0.1 port %[5]d min-retry 100 max-retry 1000
  bmp monitor ipv4 unicast post-policy
  bmp monitor ipv6 unicast post-policy
 exit
exit
`

// The BGP session's ends, both on lo of the test's namespace.
const (
	frrAddr   = "10.99.0.1"
	gobgpAddr = "10.99.0.2"
)

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// netns creates a throwaway network namespace with lo up.
func netns(t *testing.T) string {
	t.Helper()
	ns := fmt.Sprintf("cutover-bmpt-%d", os.Getpid())
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v\n%s", ns, err, out)
		}
	})
	run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	// zebra keeps no route for 127.0.0.0/8, so bgpd's next-hop tracking
	// would leave a session with 127.0.0.x "Waiting for NHT": the BGP
	// session runs between two addresses of lo outside it.
	for _, a := range []string{frrAddr, gobgpAddr} {
		run(t, "ip", "-n", ns, "addr", "add", a+"/32", "dev", "lo")
	}
	// FRR's post-policy monitoring reports only valid paths, a path whose
	// next-hop does not resolve as withdrawn: make the routes' next-hops
	// connected.
	run(t, "ip", "-n", ns, "addr", "add", "192.0.2.254/24", "dev", "lo")
	run(t, "ip", "-n", ns, "addr", "add", "2001:db8::fe/64", "dev", "lo", "nodad")
	return ns
}

// frrDir makes a directory FRR (which drops to user frr) can write.
func frrDir(t *testing.T) string {
	t.Helper()
	u, err := user.Lookup("frr")
	if err != nil {
		t.Skipf("needs the frr user: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	dir, err := os.MkdirTemp("", "cutover-bmpt-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	return dir
}

// startDaemon starts an FRR daemon in ns and kills it (by pid) when the
// test ends; it waits for ready to exist.
func startDaemon(t *testing.T, ns, dir, name, ready string, extra ...string) {
	t.Helper()
	args := append([]string{"netns", "exec", ns, filepath.Join(testenv.FRRDir, name),
		"-f", filepath.Join(dir, name+".conf"),
		"-i", filepath.Join(dir, name+".pid"),
		"-z", filepath.Join(dir, "zserv.api"),
		"--vty_socket", dir,
		"-P", "0",
		"--log", "file:" + filepath.Join(dir, name+".log"),
	}, extra...)
	cmd := exec.Command("ip", args...)
	out, err := os.Create(filepath.Join(dir, name+".out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill() // ip netns exec execs the daemon: this pid is the daemon's
		<-exited
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, ready)); err == nil {
			return
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(filepath.Join(dir, name+".out"))
			l, _ := os.ReadFile(filepath.Join(dir, name+".log"))
			t.Fatalf("%s exited at start:\n%s\n%s", name, b, l)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s missing after 20s", name, ready)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFRR streams a real FRR bgpd's post-policy Adj-RIB-In to the station:
// GoBGP plays the controller and announces routes to FRR over eBGP, all on
// loopback in a namespace of the test's own.
// frrEdge starts FRR's bgpd in a namespace of its own as the edge, with
// a GoBGP controller it peers with over eBGP, streaming BMP post-policy to
// a station; it returns the station, the controller and FRR's directory.
func frrEdge(t *testing.T) (*Station, *server.BgpServer, string) {
	t.Helper()
	testenv.RequireFRR(t)
	ns := netns(t)

	st := testStation(t, Options{})
	var ln net.Listener
	if err := netnsrun.Run(ns, func() (err error) {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- st.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	stationPort := ln.Addr().(*net.TCPAddr).Port

	// The controller: GoBGP, passive (it never dials, so only its listener
	// needs the namespace). GoBGP opens the listener in its Serve
	// goroutine, so Serve runs on a thread in the namespace; Serve never
	// returns, so that goroutine and its thread outlive the test.
	ctl := server.NewBgpServer(server.LoggerOption(nopLogger{}))
	go func() {
		_ = netnsrun.Run(ns, func() error { ctl.Serve(); return nil })
	}()
	err := ctl.StartBgp(context.Background(), &api.StartBgpRequest{Global: &api.Global{
		Asn: ctlAS, RouterId: "10.0.0.1", ListenPort: 1790, ListenAddresses: []string{gobgpAddr},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ctl.Stop)
	addNeighbor(t, ctl, frrAddr, edgeAS, &api.Transport{PassiveMode: true})

	dir := frrDir(t)
	for name, body := range map[string]string{
		"zebra.conf": "hostname bmpt-edge\n",
		"bgpd.conf":  fmt.Sprintf(frrBMPConfig, edgeAS, ctlAS, gobgpAddr, frrAddr, stationPort),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	startDaemon(t, ns, dir, "zebra", "zserv.api")
	startDaemon(t, ns, dir, "bgpd", "bgpd.vty", "-M", "bmp")
	t.Cleanup(func() {
		if t.Failed() {
			for _, f := range []string{"bgpd.log", "bgpd.out"} {
				b, _ := os.ReadFile(filepath.Join(dir, f))
				t.Logf("%s:\n%s", f, b)
			}
			for _, c := range [][]string{
				{"vtysh", "--vty_socket", dir, "-c", "show bgp summary", "-c", "show bgp neighbors"},
				{"ip", "netns", "exec", ns, "ss", "-tanp"},
				{"vtysh", "--vty_socket", dir, "-c", "show ip route", "-c", "show ip nht"},
			} {
				out, err := exec.Command(c[0], c[1:]...).CombinedOutput()
				t.Logf("%s: %v\n%s", strings.Join(c, " "), err, out)
			}
		}
	})

	return st, ctl, dir
}

func TestFRR(t *testing.T) {
	st, ctl, dir := frrEdge(t)
	// FRR 8.4 sends a post-policy Route Monitoring when it receives a path,
	// and reports a path whose next-hop is not (yet) resolved as withdrawn,
	// without a new message once it resolves. bgpd registers a next-hop
	// with zebra on the first path using it: announce one path per
	// next-hop first and wait until both resolve.
	for _, r := range []bgp.Route{route("10.64.255.1/32", "192.0.2.1"), route("2001:db8:64::ff/128", "2001:db8::1")} {
		if _, err := ctl.AddPath(context.Background(), &api.AddPathRequest{Path: apiPath(t, r, false)}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 60*time.Second, func() string {
		out, err := exec.Command("vtysh", "--vty_socket", dir, "-c", "show ip nht", "-c", "show ipv6 nht").CombinedOutput()
		if err != nil {
			return fmt.Sprintf("vtysh: %v: %s", err, out)
		}
		if strings.Count(string(out), "resolved via connected") < 3 { // the BGP neighbor's address too
			return "next-hops not resolved yet:\n" + string(out)
		}
		return ""
	})

	want := []bgp.Route{
		route("10.64.0.1/32", "192.0.2.1"),
		route("10.64.0.2/32", "192.0.2.1"),
		route("2001:db8:64::1/128", "2001:db8::1"),
	}
	for _, r := range want {
		if _, err := ctl.AddPath(context.Background(), &api.AddPathRequest{Path: apiPath(t, r, false)}); err != nil {
			t.Fatal(err)
		}
	}
	edge := ip(frrAddr) // FRR's end of its session with the controller
	eventually(t, 20*time.Second, func() string {
		h := st.Holds(edge, netip.Addr{}, want)
		if h.Done() && h.Source == SourceAdjRIBIn && h.Controller == ip(gobgpAddr) {
			return ""
		}
		return fmt.Sprintf("Holds = %v; routers %+v", h, st.Routers())
	})
	infos := st.Routers()
	t.Logf("FRR as seen by the station: %+v", infos)
	if len(infos) != 1 || infos[0].SysName != "bmpt-edge" || !strings.Contains(infos[0].SysDescr, "FRR") {
		t.Errorf("Routers() = %+v, want FRR's sysName bmpt-edge", infos)
	}

	// A withdrawal reaches the station too.
	r := want[1]
	if err := ctl.DeletePath(context.Background(), &api.DeletePathRequest{Family: apiPath(t, r, true).Family, Path: apiPath(t, r, true)}); err != nil {
		t.Fatal(err)
	}
	after := []bgp.Route{want[0], gone("10.64.0.2/32"), want[2]}
	eventually(t, 60*time.Second, func() string {
		if h := st.Holds(edge, netip.Addr{}, after); !h.Done() {
			return "after withdraw: " + h.String()
		}
		return ""
	})
}

// TestFRRNudge: FRR 8 reports the first path of a next-hop it has not
// resolved yet as withdrawn, and nothing once it resolves; a Nudger
// that has the controller send the routes again makes it report the path.
func TestFRRNudge(t *testing.T) {
	st, ctl, _ := frrEdge(t)
	r := route("2001:db8:64::7/128", "2001:db8::1")
	if _, err := ctl.AddPath(context.Background(), &api.AddPathRequest{Path: apiPath(t, r, false)}); err != nil {
		t.Fatal(err)
	}
	edge := ip(frrAddr)
	refreshed := make(chan netip.Addr, 10)
	sp := refresher(func(ctx context.Context, peer netip.Addr) error {
		refreshed <- peer
		return ctl.ResetPeer(ctx, &api.ResetPeerRequest{Address: frrAddr, Soft: true, Direction: api.ResetPeerRequest_OUT})
	})
	o := Observer{Station: st, Speaker: sp, Peers: []bgp.PeerConfig{{Address: edge, Observe: bgp.ProofBMP}}, Nudge: &Nudger{After: time.Second}}
	eventually(t, 60*time.Second, func() string {
		c, err := o.Accepted(context.Background(), []bgp.Route{r})
		if err != nil {
			return err.Error()
		}
		if !c.Done() {
			return "Accepted: " + c.String()
		}
		return ""
	})
	select {
	case p := <-refreshed:
		if p != edge {
			t.Errorf("refreshed %s, want %s", p, edge)
		}
	default:
		t.Log("FRR reported the path without a nudge (its next-hop resolved before the path arrived)")
	}
}
