package lab

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
)

// Ports of the lab's own services.
const (
	ResponderMetricsPort uint16 = 9100 // a site's responder, on the gateway's address
	TrafficMetricsPort   uint16 = 9101 // the clients' traffic in hosp
)

// DefaultClientRate is the clients' requests a second while a lab runs a
// Prometheus.
const DefaultClientRate = 50

// netnsEtc is where `ip netns exec` finds files to bind over /etc (the
// hosts file that resolves a runbook's Prometheus host inside ctl).
const netnsEtc = "/etc/netns"

// CAFile is the lab CA's certificate: a daemon's https probes trust the
// responders when started with SSL_CERT_FILE set to it.
func (l *Lab) CAFile() string { return filepath.Join(l.caDir(), CACertFile) }

func (l *Lab) caDir() string { return filepath.Join(l.st.Dir, "ca") }

// startServices starts what answers in the sites and the controller's
// namespace: the CA, a responder per site (on every probe port, with its
// metrics), and for a runbook's prometheus gates the clients' traffic in
// hosp and a Prometheus per URL in ctl, its host name resolving there.
func (l *Lab) startServices(ctx context.Context, cfg Config) error {
	topo := l.st.Topology
	if _, err := NewCA(l.caDir()); err != nil {
		return err
	}
	var targets []netip.AddrPort
	for _, s := range topo.Sites {
		metrics := netip.AddrPortFrom(firstValid(s.NextHop.V4, s.NextHop.V6), ResponderMetricsPort)
		lis := ResponderListen{HTTP: cfg.HTTPPorts, HTTPS: cfg.TLSPorts, CADir: l.caDir(), Metrics: metrics}
		d, err := l.startResponder(ctx, cfg.Responder, s.Node, lis.Args()...)
		if d.PID != 0 {
			l.st.Daemons = append(l.st.Daemons, d)
		}
		if err != nil {
			return err
		}
		targets = append(targets, metrics)
	}
	if len(cfg.Prometheus) == 0 {
		return nil
	}
	if len(cfg.Clients) > 0 {
		rate := cfg.ClientRate
		if rate <= 0 {
			rate = DefaultClientRate
		}
		metrics := netip.AddrPortFrom(firstValid(topo.HospAddr, topo.HospAddr6), TrafficMetricsPort)
		d, err := l.StartTraffic(ctx, cfg.Responder, cfg.Clients, rate, metrics, l.caDir())
		if d.PID != 0 {
			l.st.Daemons = append(l.st.Daemons, d)
		}
		if err != nil {
			return err
		}
		targets = append(targets, metrics)
	}
	servers, hosts, err := promServers(cfg.Prometheus)
	if err != nil {
		return err
	}
	if err := l.addCtlAddrs(servers); err != nil {
		return err
	}
	if err := l.writeHosts(hosts); err != nil {
		return err
	}
	for i, listen := range servers {
		dir := filepath.Join(l.st.Dir, "prometheus"+strconv.Itoa(i+1))
		pid, err := StartPrometheus(ctx, PromConfig{Namespace: l.Namespace(NodeCtl), Dir: dir,
			Listen: []netip.AddrPort{listen}, Targets: targets})
		if pid != 0 {
			l.st.Daemons = append(l.st.Daemons, Daemon{Node: NodeCtl, Name: "prometheus", PID: pid, Match: filepath.Join(dir, "prometheus.yml")})
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func firstValid(as ...netip.Addr) netip.Addr {
	for _, a := range as {
		if a.IsValid() {
			return a
		}
	}
	return netip.Addr{}
}

// promServers are the addresses the Prometheus servers of urls listen on
// inside ctl, one per distinct host and port: an address as written, a
// host name on 127.0.0.1 (hosts maps the names to it).
func promServers(urls []string) (servers []netip.AddrPort, hosts []string, err error) {
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, nil, fmt.Errorf("prometheus gate url: %w", err)
		}
		if u.Scheme != "http" {
			return nil, nil, fmt.Errorf("prometheus gate url %s://%s: the lab's Prometheus answers plain http only; rehearse with an http:// url", u.Scheme, u.Host)
		}
		port := uint16(80)
		if p := u.Port(); p != "" {
			n, err := strconv.ParseUint(p, 10, 16)
			if err != nil || n == 0 {
				return nil, nil, fmt.Errorf("prometheus gate url %s: bad port %q", u.Host, p)
			}
			port = uint16(n)
		}
		host := u.Hostname()
		a, err := netip.ParseAddr(host)
		if err != nil {
			a = netip.MustParseAddr("127.0.0.1")
			if !slices.Contains(hosts, host) {
				hosts = append(hosts, host)
			}
		}
		if a.Zone() != "" || a.IsUnspecified() || a.IsMulticast() {
			return nil, nil, fmt.Errorf("prometheus gate url %s: the lab cannot listen on %s", u.Host, a)
		}
		if ap := netip.AddrPortFrom(a.Unmap(), port); !slices.Contains(servers, ap) {
			servers = append(servers, ap)
		}
	}
	return servers, hosts, nil
}

// addCtlAddrs puts the servers' addresses that are not ctl's yet on ctl's
// lo, so that a Prometheus url written with an address answers there.
func (l *Lab) addCtlAddrs(servers []netip.AddrPort) error {
	h, err := l.openHandles(NodeCtl)
	if err != nil {
		return err
	}
	defer h.close()
	nl := h.nl[NodeCtl]
	lo, err := nl.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo in ctl: %w", err)
	}
	have, err := nl.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("list ctl's addresses: %w", err)
	}
	for _, s := range servers {
		a := s.Addr()
		if a.IsLoopback() || slices.ContainsFunc(have, func(x netlink.Addr) bool { return x.IP.Equal(net.IP(a.AsSlice())) }) {
			continue
		}
		if err := nl.AddrAdd(lo, nlAddr(netip.PrefixFrom(a, a.BitLen()))); err != nil {
			return fmt.Errorf("add the Prometheus address %s to ctl: %w", a, err)
		}
	}
	return nil
}

// writeHosts writes ctl's hosts file (bound over /etc/hosts by `ip netns
// exec`): localhost and the Prometheus host names on 127.0.0.1. Without
// names it writes nothing.
func (l *Lab) writeHosts(names []string) error {
	if len(names) == 0 {
		return nil
	}
	dir := filepath.Join(netnsEtc, l.Namespace(NodeCtl))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write ctl's hosts file: %w", err)
	}
	body := fmt.Sprintf("# hosts of cutover lab %q's controller namespace: generated by cutover, removed by lab down.\n"+
		"127.0.0.1\tlocalhost %s\n::1\tlocalhost ip6-localhost ip6-loopback\n", l.st.Name, strings.Join(names, " "))
	return writeFileAtomic(filepath.Join(dir, "hosts"), []byte(body), 0o644)
}

// removeNetnsEtc removes the /etc/netns directory of the controller
// namespace of the lab called name: what writeHosts wrote.
func removeNetnsEtc(name string) error {
	dir := filepath.Join(netnsEtc, NamespaceName(name, NodeCtl))
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}
