package lab

import (
	"context"
	"encoding/json"
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
	Name     string          `json:"name"`
	Dir      string          `json:"dir"`
	Created  time.Time       `json:"created"`
	VMs      int             `json:"vms"`
	Nodes    []NodeStatus    `json:"nodes"`
	Links    []LinkStatus    `json:"links"`
	Daemons  []DaemonStatus  `json:"daemons"`
	Sessions []SessionStatus `json:"bgp_sessions"`
	FIB      FIBCounts       `json:"edge_fib"`
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

// SessionStatus is one BGP neighbor of the edge.
type SessionStatus struct {
	Node     string     `json:"node"`
	Peer     netip.Addr `json:"peer"`
	RemoteAS uint32     `json:"remote_as"`
	State    string     `json:"state"` // FRR's bgpState: Idle, Active, Established, ...
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
	if exists[NodeEdge] {
		if c, err := l.edgeFIBCounts(ctx, NodeEdge); err != nil {
			problem("edge FIB: %v", err)
		} else {
			s.FIB = c
		}
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
	for _, e := range l.st.Topology.EdgeNodes() {
		out, err := l.Vtysh(ctx, e, "show bgp neighbors json")
		if err != nil {
			return nil, err
		}
		ss, err := parseNeighbors(e, []byte(out))
		if err != nil {
			return nil, err
		}
		all = append(all, ss...)
	}
	return all, nil
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
	slices.SortFunc(out, func(a, b SessionStatus) int { return a.Peer.Compare(b.Peer) })
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
	fmt.Fprintln(tw, "\nEDGE\tBGP NEIGHBOR\tAS\tSTATE\tUP\tRECEIVED v4/v6\tSENT v4/v6")
	for _, x := range s.Sessions {
		up := x.Uptime
		if up == "" {
			up = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d/%d\t%d/%d\n", x.Node, x.Peer, x.RemoteAS, x.State, up,
			x.Received["ipv4Unicast"], x.Received["ipv6Unicast"], x.Sent["ipv4Unicast"], x.Sent["ipv6Unicast"])
	}
	fmt.Fprintf(tw, "\n%s FIB: %d IPv4 and %d IPv6 routes; %d from BGP, %d static\n", NodeEdge, s.FIB.V4, s.FIB.V6, s.FIB.BGP, s.FIB.Static)
	if len(s.Problems) > 0 {
		fmt.Fprintf(tw, "\nPROBLEMS:\n  %s\n", strings.Join(s.Problems, "\n  "))
	}
	return tw.Flush()
}
