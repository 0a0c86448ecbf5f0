package lab

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"

	"github.com/cutover/cutover/internal/netnsrun"
)

// DialContext connects to address from inside node's namespace, as a
// process in that node would. The connection is usable from anywhere.
func (l *Lab) DialContext(ctx context.Context, node, network, address string) (net.Conn, error) {
	if nodes := l.st.Topology.Nodes(); !slices.Contains(nodes, node) {
		return nil, fmt.Errorf("dial from %q: no such node (want one of %v)", node, nodes)
	}
	var conn net.Conn
	err := netnsrun.Run(l.Namespace(node), func() error {
		var d net.Dialer
		var err error
		conn, err = d.DialContext(ctx, network, address)
		return err
	})
	return conn, err
}

// maxBody bounds what HTTPGet reads.
const maxBody = 64 << 10

// HTTPGet makes an HTTP GET to addr:port from inside node `from` (e.g.
// "hosp") and returns the body; a status other than 200 is an error. The
// responders answer with their site's name and a newline ("skm1\n").
func (l *Lab) HTTPGet(ctx context.Context, from string, addr netip.Addr, port uint16) (string, error) {
	client := &http.Client{Transport: &http.Transport{
		DisableKeepAlives: true,
		Proxy:             nil,
		DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
			return l.DialContext(ctx, from, network, address)
		},
	}}
	defer client.CloseIdleConnections()
	url := "http://" + net.JoinHostPort(addr.String(), strconv.Itoa(int(port))) + "/"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("http get %s from %s: %w", url, from, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("http get from %s: %w", from, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return string(body), fmt.Errorf("http get %s from %s: read body: %w", url, from, err)
	}
	if resp.StatusCode != http.StatusOK {
		return string(body), fmt.Errorf("http get %s from %s: %s", url, from, resp.Status)
	}
	return string(body), nil
}
