package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vishvananda/netlink"
)

// Status is what `cutover lab status` shows.
type Status struct {
	Name    string         `json:"name"`
	Dir     string         `json:"dir"`
	Created time.Time      `json:"created"`
	VMs     int            `json:"vms"`
	Nodes   []NodeStatus   `json:"nodes"`
	Links   []LinkStatus   `json:"links"`
	Daemons []DaemonStatus `json:"daemons"`
	// Edges are the edge routers: each one's flavour, BMP station and FIB.
	Edges    []EdgeStatus    `json:"edges"`
	Sessions []SessionStatus `json:"bgp_sessions"`
	// FIB is the first edge's (Edges[0].FIB).
	FIB FIBCounts `json:"edge_fib"`
	// Problems lists what is wrong; empty when the lab is healthy.
	Problems []string `json:"problems"`
}

// Healthy reports whether nothing is wrong: every namespace exists, every
// link is up and every daemon alive. BGP sessions need not be established.
func (s Status) Healthy() bool { return len(s.Problems) == 0 }

// NodeStatus is one node.
type NodeStatus struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Exists    bool   `json:"exists"`
}

// LinkStatus is one veth pair; Up when both ends are operationally up.
type LinkStatus struct {
	A  string `json:"a"` // node:iface
	B  string `json:"b"`
	Up bool   `json:"up"`
}

// DaemonStatus is one process the lab started.
type DaemonStatus struct {
	Node  string `json:"node"`
	Name  string `json:"name"`
	PID   int    `json:"pid"`
	Alive bool   `json:"alive"`
}

// EdgeStatus is one edge router.
type EdgeStatus struct {
	Node   string `json:"node"`
	Flavor string `json:"flavor"`
	// BMP is the station the edge reports to; "" none.
	BMP string    `json:"bmp,omitempty"`
	FIB FIBCounts `json:"fib"`
}

// SessionStatus is one BGP neighbor of the edge.
type SessionStatus struct {
	Node     string     `json:"node"`
	Peer     netip.Addr `json:"peer"`
	RemoteAS uint32     `json:"remote_as"`
	State    string     `json:"state"` // FRR's names (bgpState): Idle, Active, Established, ...
	// Uptime of an established session, as FRR prints it.
	Uptime string `json:"uptime,omitempty"`
	// Received counts accepted prefixes per address family ("ipv4Unicast").
	Received map[string]int `json:"received,omitempty"`
	Sent     map[string]int `json:"sent,omitempty"`
}

// Established reports whether the session is up.
func (s SessionStatus) Established() bool { return s.State == "Established" }

// Status reads the lab's namespaces, links, daemons, the edge's BGP
// neighbors (from vtysh's JSON) and FIB. Whatever cannot be read is listed
// in Problems rather than failing the call.
func (l *Lab) Status(ctx context.Context) (Status, error) {
	s := Status{Name: l.st.Name, Dir: l.st.Dir, Created: l.st.Created, VMs: len(l.st.Topology.VMs)}
	problem := func(format string, a ...any) { s.Problems = append(s.Problems, fmt.Sprintf(format, a...)) }
	exists := map[string]bool{}
	for _, node := range l.st.Topology.Nodes() {
		ns := l.Namespace(node)
		_, err := os.Stat(filepath.Join(netnsDir, ns))
		exists[node] = err == nil
		s.Nodes = append(s.Nodes, NodeStatus{Name: node, Namespace: ns, Exists: exists[node]})
		if !exists[node] {
			problem("namespace %s missing", ns)
		}
	}
	for _, lk := range l.st.Topology.Links {
		ls := LinkStatus{A: lk.A.String(), B: lk.B.String()}
		if exists[lk.A.Node] && exists[lk.B.Node] {
			ls.Up = l.ifaceUp(lk.A) && l.ifaceUp(lk.B)
		}
		if !ls.Up {
			problem("link %s-%s down", ls.A, ls.B)
		}
		s.Links = append(s.Links, ls)
	}
	for _, d := range l.st.Daemons {
		ds := DaemonStatus{Node: d.Node, Name: d.Name, PID: d.PID, Alive: processMatches(d.PID, d.Match)}
		if !ds.Alive {
			problem("%s/%s (pid %d) not running", d.Node, d.Name, d.PID)
		}
		s.Daemons = append(s.Daemons, ds)
	}
	if sess, err := l.bgpSessions(ctx); err != nil {
		problem("BGP sessions: %v", err)
	} else {
		s.Sessions = sess
	}
	for _, e := range l.st.Topology.Edges {
		es := EdgeStatus{Node: e.Node, Flavor: e.FlavorOf()}
		if e.BMP.IsValid() {
			es.BMP = e.BMP.String()
		}
		if exists[e.Node] {
			if c, err := l.edgeFIBCounts(ctx, e.Node); err != nil {
				problem("%s FIB: %v", e.Node, err)
			} else {
				es.FIB = c
			}
		}
		s.Edges = append(s.Edges, es)
	}
	if len(s.Edges) > 0 {
		s.FIB = s.Edges[0].FIB
	}
	return s, nil
}

func (l *Lab) ifaceUp(ep Endpoint) bool {
	h, err := l.openHandles(ep.Node)
	if err != nil {
		return false
	}
	defer h.close()
	link, err := h.nl[ep.Node].LinkByName(ep.Iface)
	if err != nil {
		return false
	}
	a := link.Attrs()
	return a.OperState == netlink.OperUp || (a.OperState == netlink.OperUnknown && a.Flags&net.FlagUp != 0)
}

// frrNeighbor is the part of `show bgp neighbors json` Status reads.
type frrNeighbor struct {
	RemoteAS   uint32 `json:"remoteAs"`
	BGPState   string `json:"bgpState"`
	UpTime     string `json:"bgpTimerUpString"`
	AddrFamily map[string]struct {
		Accepted int `json:"acceptedPrefixCounter"`
		Sent     int `json:"sentPrefixCounter"`
	} `json:"addressFamilyInfo"`
}

func (l *Lab) bgpSessions(ctx context.Context) ([]SessionStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var all []SessionStatus
	var errs []error
	for _, e := range l.st.Topology.Edges {
		ss, err := l.edgeSessions(ctx, e)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		all = append(all, ss...)
	}
	return all, errors.Join(errs...)
}

// edgeSessions reads edge e's BGP neighbors with its flavour's tool.
func (l *Lab) edgeSessions(ctx context.Context, e Edge) ([]SessionStatus, error) {
	switch e.FlavorOf() {
	case FlavorBIRD:
		return l.birdSessions(ctx, e.Node)
	case FlavorGoBGP:
		return l.goBGPSessions(ctx, e.Node)
	}
	out, err := l.Vtysh(ctx, e.Node, "show bgp neighbors json")
	if err != nil {
		return nil, err
	}
	return parseNeighbors(e.Node, []byte(out))
}

// EdgeSessions returns the BGP neighbors of the edge at node (its
// sessions with the controller), whatever its flavour.
func (l *Lab) EdgeSessions(ctx context.Context, node string) ([]SessionStatus, error) {
	e, ok := l.st.Topology.Edge(node)
	if !ok {
		return nil, fmt.Errorf("no edge %q (edges: %s)", node, strings.Join(l.st.Topology.EdgeNodes(), ", "))
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return l.edgeSessions(ctx, e)
}

func sortSessions(ss []SessionStatus) {
	slices.SortFunc(ss, func(a, b SessionStatus) int { return a.Peer.Compare(b.Peer) })
}

func parseNeighbors(node string, b []byte) ([]SessionStatus, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("parse show bgp neighbors json: %w", err)
	}
	var out []SessionStatus
	for k, v := range raw {
		peer, err := netip.ParseAddr(k)
		if err != nil {
			continue // not a neighbor entry
		}
		var n frrNeighbor
		if err := json.Unmarshal(v, &n); err != nil {
			return nil, fmt.Errorf("parse neighbor %s: %w", k, err)
		}
		s := SessionStatus{Node: node, Peer: peer, RemoteAS: n.RemoteAS, State: n.BGPState}
		if s.Established() {
			s.Uptime = n.UpTime
		}
		for af, c := range n.AddrFamily {
			if s.Received == nil {
				s.Received, s.Sent = map[string]int{}, map[string]int{}
			}
			s.Received[af], s.Sent[af] = c.Accepted, c.Sent
		}
		out = append(out, s)
	}
	sortSessions(out)
	return out, nil
}

// WriteText writes s for people.
func (s Status) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	yes := func(b bool) string {
		if b {
			return "yes"
		}
		return "NO"
	}
	fmt.Fprintf(tw, "lab %q in %s, up since %s, %d VMs\n\n", s.Name, s.Dir, s.Created.Local().Format(time.DateTime), s.VMs)
	fmt.Fprintln(tw, "NODE\tNAMESPACE\tEXISTS")
	for _, n := range s.Nodes {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", n.Name, n.Namespace, yes(n.Exists))
	}
	fmt.Fprintln(tw, "\nLINK\t\tUP")
	for _, lk := range s.Links {
		fmt.Fprintf(tw, "%s <-> %s\t\t%s\n", lk.A, lk.B, yes(lk.Up))
	}
	fmt.Fprintln(tw, "\nDAEMON\tPID\tALIVE")
	for _, d := range s.Daemons {
		fmt.Fprintf(tw, "%s/%s\t%d\t%s\n", d.Node, d.Name, d.PID, yes(d.Alive))
	}
	fmt.Fprintln(tw, "\nEDGE\tFLAVOUR\tBMP STATION\tFIB v4/v6\tFROM BGP\tSTATIC\tBIRD")
	for _, e := range s.Edges {
		bmp := e.BMP
		if bmp == "" {
			bmp = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%d\t%d\t%d\n", e.Node, e.Flavor, bmp, e.FIB.V4, e.FIB.V6, e.FIB.BGP, e.FIB.Static, e.FIB.BIRD)
	}
	fmt.Fprintln(tw, "\nEDGE\tBGP NEIGHBOR\tAS\tSTATE\tUP\tRECEIVED v4/v6\tSENT v4/v6")
	for _, x := range s.Sessions {
		up := x.Uptime
		if up == "" {
			up = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d/%d\t%d/%d\n", x.Node, x.Peer, x.RemoteAS, x.State, up,
			x.Received["ipv4Unicast"], x.Received["ipv6Unicast"], x.Sent["ipv4Unicast"], x.Sent["ipv6Unicast"])
	}
	if len(s.Problems) > 0 {
		fmt.Fprintf(tw, "\nPROBLEMS:\n  %s\n", strings.Join(s.Problems, "\n  "))
	}
	return tw.Flush()
}
