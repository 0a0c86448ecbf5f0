//go:build linux

package health

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/netnsrun"
	"github.com/cutover/cutover/internal/testenv"
)

// newNetns creates a throwaway network namespace with lo up and removes it
// when the test ends.
func newNetns(t *testing.T) string {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "ip")
	var b [3]byte
	rand.Read(b[:])
	name := fmt.Sprintf("cutover-htest-%d-%s", os.Getpid(), hex.EncodeToString(b[:]))
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// serveHTTP serves status on l until the test ends.
func serveHTTP(t *testing.T, l net.Listener, status int) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
}

// TestNetns probes from inside a namespace. The namespace and the host
// both listen on 127.0.0.1 at the same port, the namespace answering 200
// and the host 500, so each result shows where the socket was made.
func TestNetns(t *testing.T) {
	ns := newNetns(t)

	var inner net.Listener
	if err := netnsrun.Run(ns, func() error {
		var err error
		inner, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	serveHTTP(t, inner, http.StatusOK)
	port := portOf(t, inner.Addr().String())
	host, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Skipf("port %d is taken on the host (%v); rerun", port, err)
	}
	serveHTTP(t, host, http.StatusInternalServerError)

	hostP := newProber(t, Options{Timeout: time.Second})
	web := Target{Name: "vm", Addr: loopback, Probe: Probe{Kind: KindHTTP, Port: port}}
	hostFails := fmt.Sprintf("http %d: status 500 Internal Server Error", port)
	for _, name := range []string{ns, "/run/netns/" + ns} {
		p := newProber(t, Options{Netns: name, Timeout: time.Second})
		if r := p.Probe(context.Background(), web); !r.OK {
			t.Errorf("netns %s: http: %+v", name, r)
		}
		if r := p.Probe(context.Background(), Target{Name: "vm", Addr: loopback, Probe: Probe{Kind: KindTCP, Port: port}}); !r.OK {
			t.Errorf("netns %s: tcp: %+v", name, r)
		}
	}
	if r := hostP.Probe(context.Background(), web); r.OK || r.Err != hostFails {
		t.Errorf("host: %+v, want %q", r, hostFails)
	}

	// Failures, each inside the namespace (no packet leaves it): no route
	// at all, unreachable, blackhole and prohibit routes, and a neighbour
	// on a veth (both ends in the namespace) that never answers ARP.
	run(t, "ip", "-n", ns, "route", "add", "unreachable", "203.0.113.0/24")
	run(t, "ip", "-n", ns, "route", "add", "blackhole", "198.51.100.0/24")
	run(t, "ip", "-n", ns, "route", "add", "prohibit", "198.18.0.0/24")
	run(t, "ip", "-n", ns, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
	run(t, "ip", "-n", ns, "addr", "add", "10.9.0.1/24", "dev", "v0")
	run(t, "ip", "-n", ns, "link", "set", "v0", "up")
	run(t, "ip", "-n", ns, "link", "set", "v1", "up")
	p := newProber(t, Options{Netns: ns, Timeout: 200 * time.Millisecond})
	for _, tc := range []struct {
		addr string
		want string // for tcp 80; icmp gets the same after "icmp: "
	}{
		{"192.0.2.1", "network is unreachable"},
		{"203.0.113.1", "no route to host"},
		{"198.51.100.1", "invalid argument (blackhole route?)"},
		{"198.18.0.1", "permission denied"},
		{"10.9.0.2", "timeout after *"},
	} {
		for _, pr := range []Probe{{Kind: KindTCP, Port: 80}, {Kind: KindICMP}} {
			want := pr.String() + ": " + tc.want
			r := p.Probe(context.Background(), Target{Name: "far", Addr: netip.MustParseAddr(tc.addr), Probe: pr})
			if r.OK || !matchGlob(r.Err, want) {
				t.Errorf("%v to %s: %+v, want %q", pr, tc.addr, r, want)
			}
		}
	}

	// Many probes at once, from the namespace and from the host: no
	// socket ends up on the wrong side.
	var ts []Target
	for i := range 200 {
		ts = append(ts, Target{Name: fmt.Sprintf("vm-%d", i), Addr: loopback, Probe: web.Probe})
	}
	inRes := RunRound(context.Background(), newProber(t, Options{Netns: ns}), ts, 32)
	hostRes := RunRound(context.Background(), hostP, ts, 32)
	for _, tg := range ts {
		if r := inRes[tg.Name]; !r.OK {
			t.Fatalf("netns round: %s: %+v", tg.Name, r)
		}
		if r := hostRes[tg.Name]; r.Err != hostFails {
			t.Fatalf("host round: %s: %+v", tg.Name, r)
		}
	}
}

// TestNetnsICMP pings lo inside a fresh namespace, where ping sockets are
// off (ping_group_range "1 0"): auto falls back to a raw socket;
// unprivileged fails until the sysctl allows it.
func TestNetnsICMP(t *testing.T) {
	ns := newNetns(t)
	lo4 := Target{Name: "lo", Addr: loopback, Probe: Probe{Kind: KindICMP}}
	lo6 := Target{Name: "lo6", Addr: netip.IPv6Loopback(), Probe: Probe{Kind: KindICMP}}

	auto := newProber(t, Options{Netns: ns, Timeout: time.Second})
	for _, tg := range []Target{lo4, lo6} {
		if r := auto.Probe(context.Background(), tg); !r.OK {
			t.Errorf("auto %v: %+v", tg.Addr, r)
		}
	}
	if np := auto.(*netProber); !np.useRaw[0].Load() || !np.useRaw[1].Load() {
		t.Errorf("auto did not fall back to raw sockets with ping sockets off")
	}

	raw := newProber(t, Options{Netns: ns, ICMP: ICMPRaw, Timeout: time.Second})
	if r := raw.Probe(context.Background(), lo4); !r.OK {
		t.Errorf("raw: %+v", r)
	}

	unpriv := newProber(t, Options{Netns: ns, ICMP: ICMPUnprivileged, Timeout: time.Second})
	if r := unpriv.Probe(context.Background(), lo4); r.OK || r.Err != "icmp: permission denied" {
		t.Errorf("unprivileged with ping sockets off: %+v", r)
	}
	run(t, "ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv4.ping_group_range=0 2147483647")
	for _, tg := range []Target{lo4, lo6} {
		if r := unpriv.Probe(context.Background(), tg); !r.OK {
			t.Errorf("unprivileged %v with ping sockets on: %+v", tg.Addr, r)
		}
	}
}
