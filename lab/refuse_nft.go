package lab

import (
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// refuseTable is the nftables table (family inet) the responder owns in its
// site's namespace. It is never created anywhere else.
const refuseTable = "cutover_lab"

// setChunk keeps each SetAddElements call far below the 4,095 elements
// above which google/nftables truncates silently (the element list is a
// netlink attribute with a 16-bit length).
const setChunk = 2048

// nftRefuser refuses traffic to down VMs with nftables in the current
// network namespace: table inet cutover_lab, sets down_v4 and down_v6, and
// an input chain that resets TCP and answers everything else with ICMP
// host-unreachable.
type nftRefuser struct {
	c          *nftables.Conn
	set4, set6 *nftables.Set
}

func newNFTRefuser() (*nftRefuser, error) {
	c, err := nftables.New(nftables.AsLasting())
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		c.CloseLasting()
		return nil, fmt.Errorf("list nftables tables: %w", err)
	}
	for _, t := range tables {
		if t.Name == refuseTable {
			c.DelTable(t)
			if err := c.Flush(); err != nil {
				c.CloseLasting()
				return nil, fmt.Errorf("delete leftover table inet %s: %w", refuseTable, err)
			}
		}
	}
	t := c.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: refuseTable})
	r := &nftRefuser{
		c:    c,
		set4: &nftables.Set{Table: t, Name: "down_v4", KeyType: nftables.TypeIPAddr},
		set6: &nftables.Set{Table: t, Name: "down_v6", KeyType: nftables.TypeIP6Addr},
	}
	for _, s := range []*nftables.Set{r.set4, r.set6} {
		if err := c.AddSet(s, nil); err != nil {
			c.CloseLasting()
			return nil, fmt.Errorf("add set %s: %w", s.Name, err)
		}
	}
	accept := nftables.ChainPolicyAccept
	ch := c.AddChain(&nftables.Chain{
		Name: "input", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &accept,
	})
	for _, s := range []*nftables.Set{r.set4, r.set6} {
		for _, tcp := range []bool{true, false} {
			c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: refuseRule(s, tcp)})
		}
	}
	if err := c.Flush(); err != nil {
		c.CloseLasting()
		return nil, fmt.Errorf("create table inet %s: %w", refuseTable, err)
	}
	return r, nil
}

// refuseRule is, for set down_v4 (down_v6 alike):
//
//	meta nfproto ipv4 ip daddr @down_v4 meta l4proto tcp reject with tcp reset   (tcp)
//	meta nfproto ipv4 ip daddr @down_v4 reject with icmpx host-unreachable      (!tcp)
func refuseRule(s *nftables.Set, tcp bool) []expr.Any {
	proto, off, n := byte(unix.NFPROTO_IPV4), uint32(16), uint32(4)
	if s.KeyType == nftables.TypeIP6Addr {
		proto, off, n = unix.NFPROTO_IPV6, 24, 16
	}
	e := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
		&expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID},
	}
	if tcp {
		return append(e,
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
			&expr.Reject{Type: unix.NFT_REJECT_TCP_RST},
		)
	}
	return append(e, &expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_HOST_UNREACH})
}

// flushChunk bounds the elements of one transaction: 50,000 in one Flush
// exceed the default netlink socket buffer ("message too long").
const flushChunk = 8192

// Refuse adds add to and removes remove from the sets, in transactions of
// at most flushChunk elements. The caller passes only addresses that change
// (an element deleted twice fails the whole transaction).
func (r *nftRefuser) Refuse(add, remove []netip.Addr) error {
	for len(add) > 0 || len(remove) > 0 {
		na := min(len(add), flushChunk)
		nr := min(len(remove), flushChunk-na)
		if err := r.refuse(add[:na], remove[:nr]); err != nil {
			return err
		}
		add, remove = add[na:], remove[nr:]
	}
	return nil
}

func (r *nftRefuser) refuse(add, remove []netip.Addr) error {
	for _, op := range []struct {
		addrs []netip.Addr
		fn    func(*nftables.Set, []nftables.SetElement) error
	}{{add, r.c.SetAddElements}, {remove, r.c.SetDeleteElements}} {
		var e4, e6 []nftables.SetElement
		for _, a := range op.addrs {
			if a.Is4() {
				e4 = append(e4, nftables.SetElement{Key: a.AsSlice()})
			} else {
				e6 = append(e6, nftables.SetElement{Key: a.AsSlice()})
			}
		}
		for s, els := range map[*nftables.Set][]nftables.SetElement{r.set4: e4, r.set6: e6} {
			for len(els) > 0 {
				n := min(len(els), setChunk)
				if err := op.fn(s, els[:n]); err != nil {
					return fmt.Errorf("queue set %s: %w", s.Name, err)
				}
				els = els[n:]
			}
		}
	}
	if err := r.c.Flush(); err != nil {
		return fmt.Errorf("update table inet %s: %w", refuseTable, err)
	}
	return nil
}

// Close deletes the table and closes the connection.
func (r *nftRefuser) Close() error {
	r.c.DelTable(r.set4.Table)
	err := r.c.Flush()
	if cerr := r.c.CloseLasting(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("delete table inet %s: %w", refuseTable, err)
	}
	return nil
}
