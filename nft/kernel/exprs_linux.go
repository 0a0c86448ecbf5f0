//go:build linux

package kernel

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/cutover/cutover/nft/internal/layout"
)

// ruleExprs returns the rule's expressions, exactly those nft generates for
// r.Text() (so that `nft list` shows the rendered text). setIDs holds the
// transaction ids of sets created in the same transaction.
func ruleExprs(r layout.Rule, setIDs map[string]uint32) []expr.Any {
	mark := binaryutil.NativeEndian.PutUint32(r.Site.Mark)
	steered := &expr.Objref{Type: int(nftables.ObjTypeCounter), Name: layout.SteeredCounter(r.Site.Name)}
	ret := &expr.Verdict{Kind: expr.VerdictReturn}
	daddr := func() []expr.Any {
		proto, off, n := byte(unix.NFPROTO_IPV4), uint32(16), uint32(4)
		if r.Set.V6 {
			proto, off, n = unix.NFPROTO_IPV6, 24, 16
		}
		set := r.Set.Name
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
			&expr.Lookup{SourceRegister: 1, SetName: set, SetID: setIDs[set]},
		}
	}
	switch r.Kind {
	case layout.RuleJump:
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: layout.ChainSteer}}
	case layout.RuleRestore:
		return []expr.Any{
			&expr.Ct{Register: 1, Key: expr.CtKeyDIRECTION},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0}}, // 0: IP_CT_DIR_ORIGINAL
			&expr.Ct{Register: 1, Key: expr.CtKeyMARK},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: mark},
			&expr.Immediate{Register: 1, Data: mark},
			&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
			steered,
			ret,
		}
	case layout.RuleNew:
		es := []expr.Any{
			&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
				Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitNEW), Xor: make([]byte, 4)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
		}
		es = append(es, daddr()...)
		return append(es,
			&expr.Immediate{Register: 1, Data: mark},
			&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
			&expr.Immediate{Register: 1, Data: mark},
			&expr.Ct{Key: expr.CtKeyMARK, SourceRegister: true, Register: 1},
			steered,
			ret,
		)
	default:
		es := []expr.Any{
			&expr.Ct{Register: 1, Key: expr.CtKeyDIRECTION},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0}}, // 0: IP_CT_DIR_ORIGINAL
		}
		es = append(es, daddr()...)
		return append(es, &expr.Objref{Type: int(nftables.ObjTypeCounter), Name: layout.OldPathCounter(r.Site.Name)})
	}
}

// ruleUserData returns the user data of a rule with the comment tag, as nft
// writes comments.
func ruleUserData(tag string) []byte {
	return userdata.AppendString(nil, userdata.TypeComment, tag)
}

// ruleTag returns the comment of a rule, or "".
func ruleTag(ud []byte) string {
	s, _ := userdata.GetString(ud, userdata.TypeComment)
	return s
}

// canonical returns a rule's expressions as a comparable string. Expected
// and kernel expressions both go through google/nftables' marshal and
// unmarshal, so that its decoder's blind spots (it drops a ct expression's
// source register, for one) apply to both sides alike; a set's transaction id
// is not compared.
func canonical(fam nftables.TableFamily, es []expr.Any) (string, error) {
	var b strings.Builder
	for _, e := range es {
		raw, err := expr.Marshal(byte(fam), e)
		if err != nil {
			return "", fmt.Errorf("marshal %T: %w", e, err)
		}
		ad, err := netlink.NewAttributeDecoder(raw)
		if err != nil {
			return "", fmt.Errorf("decode %T: %w", e, err)
		}
		ad.ByteOrder = binary.BigEndian
		var data []byte
		for ad.Next() {
			if ad.Type() == unix.NFTA_EXPR_DATA {
				data = ad.Bytes()
			}
		}
		fresh := reflect.New(reflect.TypeOf(e).Elem()).Interface().(expr.Any)
		if err := expr.Unmarshal(byte(fam), data, fresh); err != nil {
			return "", fmt.Errorf("unmarshal %T: %w", e, err)
		}
		if l, ok := fresh.(*expr.Lookup); ok {
			l.SetID = 0
		}
		fmt.Fprintf(&b, "%T%+v;", fresh, fresh)
	}
	return b.String(), nil
}
