//go:build linux

package health

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/netnsrun"
)

// TestNetnsMark probes as the readiness check does: from a namespace,
// through the routing table an ip rule gives the prober's mark. In the
// namespace, marked packets take a table where loopback is unreachable
// (the local table moved after that rule), so that each result shows
// which table the probe took.
func TestNetnsMark(t *testing.T) {
	ns := newNetns(t)
	run(t, "ip", "-n", ns, "rule", "add", "priority", "100", "lookup", "local")
	run(t, "ip", "-n", ns, "rule", "del", "priority", "0")
	run(t, "ip", "-n", ns, "rule", "add", "priority", "10", "fwmark", "0x10", "lookup", "100")
	run(t, "ip", "-n", ns, "route", "add", "unreachable", "127.0.0.0/8", "table", "100")

	var l net.Listener
	if err := netnsrun.Run(ns, func() error {
		var err error
		l, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	serveHTTP(t, l, 200)
	port := portOf(t, l.Addr().String())

	for _, tc := range []struct {
		mark uint32
		want string // after the probe's name; "" for OK
	}{
		{0, ""},
		{0x20, ""},
		{0x10, "no route to host"},
	} {
		p := newProber(t, Options{Netns: ns, Mark: tc.mark, Timeout: 10 * time.Second})
		for _, pr := range []Probe{{Kind: KindTCP, Port: port}, {Kind: KindHTTP, Port: port}} {
			r := p.Probe(context.Background(), Target{Name: "vm", Addr: loopback, Probe: pr})
			want := ""
			if tc.want != "" {
				want = fmt.Sprintf("%v: %s", pr, tc.want)
			}
			if r.OK != (want == "") || r.Err != want {
				t.Errorf("mark %#x, %v: %+v, want %q", tc.mark, pr, r, want)
			}
		}
	}
}
