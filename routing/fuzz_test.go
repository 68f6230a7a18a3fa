package routing

import (
	"net/netip"
	"testing"

	"gnutella/protocol"
)

// queryWith is a Query payload whose extension area is one GGEP block with
// the extension id carrying data.
func queryWith(t testing.TB, id string, data []byte) []byte {
	q := protocol.NewQuery("zebra", protocol.QueryFlagMark|protocol.QueryFlagGGEPH)
	q.Extensions = append(q.Extensions, protocol.GGEPItem(protocol.GGEP{{ID: id, Data: data}}))
	b, err := q.AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzWalkerOf reads the walker extension (GNUT.RW) of any Query payload a
// neighbour may send: no panic, and a walker read from a query is carried
// on by WithWalker as exactly that walker (what the next hop reads is what
// this hop decided).
func FuzzWalkerOf(f *testing.F) {
	for _, w := range []Walker{
		{Num: 3, Left: 1023, Steps: 1},
		{Num: 0, Left: 7, Steps: 4, Check: true, Origin: netip.MustParseAddrPort("127.0.0.1:6346")},
		{Num: 255, Left: 65535, Steps: 65535},
	} {
		f.Add(queryWith(f, WalkerExtension, w.encode()))
	}
	f.Add(queryWith(f, WalkerExtension, []byte{1, 2, 3}))                  // too short
	f.Add(queryWith(f, WalkerExtension, []byte{1, 2, 0, 3, 0, 1, 127, 0})) // check flag, truncated origin
	f.Add([]byte("\x00\x00walk\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := protocol.DecodeQuery(b)
		if err != nil {
			return
		}
		w, ok := WalkerOf(q)
		if !ok {
			return
		}
		if w.Check && !w.Origin.Addr().Is4() {
			t.Fatalf("checking walker %+v with a non-IPv4 origin", w)
		}
		next := WithWalker(q, w)
		payload, err := next.AppendTo(nil)
		if err != nil {
			t.Fatalf("WithWalker of a decoded query does not encode: %v", err)
		}
		back, err := protocol.DecodeQuery(payload)
		if err != nil {
			t.Fatalf("WithWalker gave an undecodable query %x: %v", payload, err)
		}
		w2, ok := WalkerOf(back)
		if !ok || w2 != w {
			t.Fatalf("walker %+v carried on as %+v (ok %v)", w, w2, ok)
		}
		if n := countExt(back, WalkerExtension); n != 1 {
			t.Fatalf("carried-on query has %d walker extensions, want 1", n)
		}
	})
}

func countExt(q *protocol.Query, id string) int {
	n := 0
	for _, e := range q.Extensions.GGEP() {
		if e.ID == id {
			n++
		}
	}
	return n
}

// FuzzGossipProbability reads the gossip probability (GNUT.GP) of any Query
// payload: no panic, a probability within [0, 1], and one that survives
// being carried on with WithGossip.
func FuzzGossipProbability(f *testing.F) {
	f.Add(queryWith(f, GossipExtension, []byte{179}))
	f.Add(queryWith(f, GossipExtension, []byte{0}))
	f.Add(queryWith(f, GossipExtension, []byte{255}))
	f.Add(queryWith(f, GossipExtension, []byte{1, 2}))
	f.Add([]byte("\x00\x00gossip\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := protocol.DecodeQuery(b)
		if err != nil {
			return
		}
		p, ok := GossipProbability(q)
		if !ok {
			return
		}
		if p < 0 || p > 1 {
			t.Fatalf("probability %v outside [0, 1]", p)
		}
		payload, err := WithGossip(q, p).AppendTo(nil)
		if err != nil {
			t.Fatalf("WithGossip of a decoded query does not encode: %v", err)
		}
		back, err := protocol.DecodeQuery(payload)
		if err != nil {
			t.Fatalf("WithGossip gave an undecodable query %x: %v", payload, err)
		}
		if p2, ok := GossipProbability(back); !ok || p2 != p {
			t.Fatalf("probability %v carried on as %v (ok %v)", p, p2, ok)
		}
	})
}
