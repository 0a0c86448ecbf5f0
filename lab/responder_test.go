package lab

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// fakeRefuser records what the responder asks the kernel to refuse.
type fakeRefuser struct {
	refused map[netip.Addr]bool
	fail    error
	calls   int
}

func (f *fakeRefuser) Refuse(add, remove []netip.Addr) error {
	f.calls++
	if f.fail != nil {
		return f.fail
	}
	for _, a := range add {
		if f.refused[a] {
			return errors.New("element exists") // nft fails on a double add too
		}
		f.refused[a] = true
	}
	for _, a := range remove {
		if !f.refused[a] {
			return errors.New("no such element")
		}
		delete(f.refused, a)
	}
	return nil
}

func (f *fakeRefuser) Close() error { return nil }

// startTestResponder runs a responder on loopback: VM 127.0.0.1 and
// 127.0.0.2, each on its own port.
func startTestResponder(t *testing.T, ref Refuser) (*Lab, map[netip.Addr]string) {
	t.Helper()
	dir := t.TempDir()
	l := &Lab{st: state{Name: "unit", Dir: dir}}
	vms := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")}
	r := newResponder(ResponderConfig{Site: NodeSKM2, VMs: vms, Refuser: ref}, zerolog.New(zerolog.NewTestWriter(t)))
	addrs := map[netip.Addr]string{}
	var lns []net.Listener
	for _, a := range vms {
		ln, err := net.Listen("tcp", netip.AddrPortFrom(a, 0).String())
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		addrs[a] = ln.Addr().String()
	}
	sock := l.controlSocket(NodeSKM2)
	if err := os.MkdirAll(filepath.Dir(sock), 0o755); err != nil {
		t.Fatal(err)
	}
	ctl, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.serve(ctx, lns, ctl) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return l, addrs
}

func get(addr string) (string, error) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestResponder(t *testing.T) {
	ref := &fakeRefuser{refused: map[netip.Addr]bool{}}
	l, addrs := startTestResponder(t, ref)
	one, two := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")

	for a, hp := range addrs {
		if body, err := get(hp); err != nil || body != "skm2\n" {
			t.Errorf("GET %s = %q, %v; want skm2", a, body, err)
		}
	}

	// Down: the kernel is asked to refuse, and the responder resets what
	// still reaches it. Asking twice changes nothing.
	for range 2 {
		if err := l.SetVMDown(NodeSKM2, []netip.Addr{two, two}, true); err != nil {
			t.Fatal(err)
		}
	}
	if !ref.refused[two] || len(ref.refused) != 1 || ref.calls != 1 {
		t.Errorf("refused %v after %d calls, want only %s after 1", ref.refused, ref.calls, two)
	}
	if body, err := get(addrs[two]); err == nil {
		t.Errorf("GET down VM = %q, want an error", body)
	}
	if body, err := get(addrs[one]); err != nil || body != "skm2\n" {
		t.Errorf("GET up VM = %q, %v", body, err)
	}
	resp, err := l.control(context.Background(), NodeSKM2, controlRequest{Op: "status"})
	if err != nil || resp.Down != 1 || resp.VMs != 2 || resp.Site != NodeSKM2 {
		t.Errorf("status %+v, %v; want 1 of 2 VMs down at skm2", resp, err)
	}
	if err := l.SetVMDown(NodeSKM2, []netip.Addr{two}, false); err != nil {
		t.Fatal(err)
	}
	if len(ref.refused) != 0 {
		t.Errorf("still refused: %v", ref.refused)
	}
	if body, err := get(addrs[two]); err != nil || body != "skm2\n" {
		t.Errorf("GET VM back up = %q, %v", body, err)
	}

	// A failing kernel leaves the state as it was.
	ref.fail = errors.New("netlink: operation not permitted")
	err = l.SetVMDown(NodeSKM2, []netip.Addr{one}, true)
	if want := "responder of skm2: down: netlink: operation not permitted"; err == nil || err.Error() != want {
		t.Errorf("SetVMDown with failing kernel: %v, want %q", err, want)
	}
	if body, err := get(addrs[one]); err != nil || body != "skm2\n" {
		t.Errorf("GET after failed down = %q, %v; want an answer", body, err)
	}
	ref.fail = nil

	// Delay.
	const delay = 200 * time.Millisecond
	if err := l.SetVMDelay(NodeSKM2, []netip.Addr{one}, delay); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if body, err := get(addrs[one]); err != nil || body != "skm2\n" || time.Since(start) < delay {
		t.Errorf("GET slow VM = %q, %v in %s; want skm2 after >= %s", body, err, time.Since(start), delay)
	}
	start = time.Now()
	if _, err := get(addrs[two]); err != nil || time.Since(start) >= delay {
		t.Errorf("other VM slowed down: %v after %s", err, time.Since(start))
	}
	if err := l.SetVMDelay(NodeSKM2, []netip.Addr{one}, 0); err != nil {
		t.Fatal(err)
	}
	if resp, _ := l.control(context.Background(), NodeSKM2, controlRequest{Op: "status"}); resp.Delayed != 0 {
		t.Errorf("delays left: %d", resp.Delayed)
	}
}

func TestResponderControlErrors(t *testing.T) {
	l, _ := startTestResponder(t, nil)
	many := []netip.Addr{}
	for i := range 7 {
		many = append(many, netip.AddrFrom4([4]byte{10, 9, 0, byte(i)}))
	}
	for _, tc := range []struct {
		name string
		req  controlRequest
		want string
	}{
		{"unknown op", controlRequest{Op: "reboot"}, `responder of skm2: unknown op "reboot" (want ping, status, down, up or delay)`},
		{"no addresses", controlRequest{Op: "down"}, "responder of skm2: down: no addresses"},
		{"not a VM", controlRequest{Op: "up", Addrs: []netip.Addr{netip.MustParseAddr("10.9.9.9")}}, "responder of skm2: up: 10.9.9.9 not a VM of skm2"},
		{"many not VMs", controlRequest{Op: "down", Addrs: many}, "responder of skm2: down: 10.9.0.0, 10.9.0.1, 10.9.0.2, 10.9.0.3, 10.9.0.4 and 2 more not a VM of skm2"},
		{"bad delay", controlRequest{Op: "delay", Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, Delay: "soon"}, `responder of skm2: delay "soon": want a duration >= 0 such as 1.5s`},
		{"negative delay", controlRequest{Op: "delay", Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, Delay: "-1s"}, `responder of skm2: delay "-1s": want a duration >= 0 such as 1.5s`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := l.control(context.Background(), NodeSKM2, tc.req)
			if err == nil || err.Error() != tc.want {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
	// Garbage on the socket gets an error answer, and the connection stays usable.
	c, err := net.Dial("unix", l.controlSocket(NodeSKM2))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "not json\n{\"op\":\"ping\"}\n")
	buf := make([]byte, 4096)
	var got []byte
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for countLines(got) < 2 {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("read: %v (got %q)", err, got)
		}
		got = append(got, buf[:n]...)
	}
	want := `{"ok":false,"error":"parse request: invalid character 'o' in literal null (expecting 'u')","site":"skm2","vms":2,"down":0,"delayed":0}` + "\n" +
		`{"ok":true,"site":"skm2","vms":2,"down":0,"delayed":0}` + "\n"
	if string(got) != want {
		t.Errorf("answers\n%s\nwant\n%s", got, want)
	}
}

func countLines(b []byte) int {
	n := 0
	for _, c := range b {
		if c == '\n' {
			n++
		}
	}
	return n
}
