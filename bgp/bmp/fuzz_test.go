package bmp

import (
	"bytes"
	"testing"

	gobgp "github.com/osrg/gobgp/v3/pkg/packet/bgp"
	gobmp "github.com/osrg/gobgp/v3/pkg/packet/bmp"
	"github.com/rs/zerolog"
)

// FuzzHandle feeds arbitrary bytes, as a stream of messages after an
// Initiation, through the per-message decoder and the station's state:
// whatever a router sends must end in an error or be applied, never panic.
func FuzzHandle(f *testing.F) {
	h := post(ctlAddr, ctlAS)
	seeds := [][]*gobmp.BMPMessage{
		{peerUp(ctlAddr, ctlAS, edgeAddr), announce(h, "192.0.2.1", []uint32{ctlAS}, "10.64.0.1/32", "10.64.0.0/16")},
		{announce(h, "2001:db8::1", nil, "2001:db8:64::/64"), withdraw(h, "10.64.0.1/32", "2001:db8:64::/64")},
		{eor(h, gobgp.RF_IPv6_UC), peerDown(h, gobmp.BMP_PEER_DOWN_REASON_LOCAL_NO_NOTIFICATION), termination(0, "x")},
		{announce(locRIBHeader(), "192.0.2.1", []uint32{65099}, "0.0.0.0/0")},
	}
	for _, ms := range seeds {
		var b []byte
		for _, m := range ms {
			b = append(b, serialize(f, m)...)
		}
		f.Add(b)
	}
	f.Add(barrier)
	init := serialize(f, initiation("fuzz"))
	log := zerolog.Nop()
	f.Fuzz(func(t *testing.T, data []byte) {
		s := New(log, Options{MaxPrefixes: 1000, MaxMessage: 4096})
		ss := &session{s: s}
		if err := ss.handle(init); err != nil {
			t.Fatal(err)
		}
		r := bytes.NewReader(data)
		for {
			raw, err := readMessage(r, s.opts.MaxMessage)
			if err != nil {
				break
			}
			if err := ss.handle(raw); err != nil {
				break
			}
		}
		s.Routers()
		s.Holds(ss.src.Addr(), ip(ctlAddr), nil)
	})
}
