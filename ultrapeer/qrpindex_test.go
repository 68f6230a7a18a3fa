package ultrapeer

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"gnutella/protocol"
)

// The index gives the same leaves as testing every table: exactly for
// tables of the index's size or smaller, and as the scaled table for larger
// ones.
//
// At 2^12 slots each slot has a bucket of its own; at 2^16, 16 slots share
// one, as in the servent.
func TestLeafIndex(t *testing.T) {
	for _, bits := range []uint8{12, 16} {
		t.Run(fmt.Sprintf("bits=%d", bits), func(t *testing.T) { testLeafIndex(t, bits) })
	}
}

func testLeafIndex(t *testing.T, ibits uint8) {
	rng := rand.New(rand.NewPCG(13, 14))
	c := newCorpus(4)
	x := NewLeafIndex(ibits)
	tables := map[int]*Table{}
	var queries []*QRPQuery
	for i := 0; i < 40; i++ {
		queries = append(queries, NewQRPQuery([]string{c.word()}, nil), NewQRPQuery([]string{c.word(), c.word()}, nil),
			NewQRPQuery([]string{prefix3(c.vocab[rng.IntN(len(c.vocab))])}, nil))
	}
	var urns []protocol.SHA1
	add := func() {
		bits := []uint8{8, 10, 12, 14, 16, 18}[rng.IntN(6)]
		names, u := c.library(5 + rng.IntN(60))
		urns = append(urns, u[0])
		tb := BuildTable(bits, names, u)
		if rng.IntN(2) == 0 {
			tb.Compact() // as Receiver's tables are
		}
		id := x.Add(tb)
		if tables[id] != nil {
			t.Fatalf("id %d given twice", id)
		}
		tables[id] = tb
	}
	check := func(step int) {
		t.Helper()
		if x.Len() != len(tables) {
			t.Fatalf("step %d: Len %d, want %d", step, x.Len(), len(tables))
		}
		u := urns[max(0, len(urns)-3):]
		many := make([]string, 20)
		for i := range many {
			many[i] = prefix3(c.word())
		}
		qs := append(queries, NewQRPQuery(nil, u), NewQRPQuery(nil, nil), NewQRPQuery([]string{"ab"}, nil),
			NewQRPQuery([]string{c.word()}, u[:1]), NewQRPQuery([]string{c.word(), c.word()}, u), NewQRPQuery(many, u),
			NewQRPQuery(many[:2], nil))
		for _, q := range qs {
			var want []int
			for id, tb := range tables {
				if tb.Scale(ibits).MatchesQuery(q) {
					want = append(want, id)
				}
				if tb.Bits() <= ibits && tb.MatchesQuery(q) != tb.Scale(ibits).MatchesQuery(q) {
					t.Fatalf("smaller table matches differently once scaled")
				}
			}
			slices.Sort(want)
			if got := x.Match(q, nil); !slices.Equal(got, want) {
				t.Fatalf("step %d: Match = %v, want %v", step, got, want)
			}
		}
	}
	if got := NewLeafIndex(ibits).Match(queries[0], nil); got != nil {
		t.Fatalf("empty index matches %v", got)
	}
	for step := 0; step < 300; step++ {
		switch k := rng.IntN(10); {
		case k < 5 || len(tables) == 0:
			add()
		case k < 8: // update
			for id := range tables {
				names, u := c.library(5 + rng.IntN(60))
				tables[id] = BuildTable(tables[id].Bits(), names, u)
				x.Set(id, tables[id])
				break
			}
		default:
			for id := range tables {
				x.Remove(id)
				delete(tables, id)
				break
			}
		}
		if step%10 == 0 {
			check(step)
		}
	}
	check(300)
	if len(x.used) <= 64 {
		t.Fatalf("%d leaves at the end: the index never held more than 64", len(tables))
	}
	mustPanic(t, "Remove unknown", func() { x.Remove(100000) })
	mustPanic(t, "Set removed", func() {
		id := x.Add(nil)
		x.Remove(id)
		x.Set(id, nil)
	})
	mustPanic(t, "index too big", func() { NewLeafIndex(MaxTableBits + 1) })
}

func prefix3(w string) string { return w[:min(3, len(w))] }

// A slot most leaves have becomes a bitset of leaves, and a list again when
// most of them left; the index matches the same leaves throughout.
func TestLeafIndexHotRows(t *testing.T) {
	c := newCorpus(6)
	x := NewLeafIndex(16)
	tables := map[int]*Table{}
	common := NewQRPQuery([]string{"commonword"}, nil)
	slot := hashCode("commonword") >> x.shift
	check := func(when string, hot bool) {
		t.Helper()
		if x.slotIsHot(slot) != hot {
			t.Fatalf("%s: the common slot hot %v, want %v", when, x.slotIsHot(slot), hot)
		}
		qs := []*QRPQuery{common, NewQRPQuery([]string{"commonword", c.vocab[0]}, nil), NewQRPQuery([]string{c.vocab[0]}, nil)}
		for id := range tables {
			qs = append(qs, NewQRPQuery([]string{"commonword", c.vocab[id%len(c.vocab)]}, nil))
		}
		for _, q := range qs {
			var want []int
			for id, tb := range tables {
				if tb.MatchesQuery(q) {
					want = append(want, id)
				}
			}
			slices.Sort(want)
			if got := x.Match(q, nil); !slices.Equal(got, want) {
				t.Fatalf("%s: Match = %v, want %v", when, got, want)
			}
		}
	}
	for i := range 300 {
		tb := NewTable(16)
		tb.AddName([]string{c.vocab[i%len(c.vocab)], c.word()})
		if i%3 != 0 {
			tb.AddKeyword("commonword") // in 200 of the 300
		}
		tb.Compact()
		tables[x.Add(tb)] = tb
	}
	check("300 leaves", true)
	for id := range tables {
		if id >= 20 {
			x.Remove(id)
			delete(tables, id)
		}
	}
	check("20 leaves", false) // 13 have the slot, under a quarter of hotMin
	for id := range tables {
		x.Remove(id)
		delete(tables, id)
	}
	if x.Len() != 0 || len(x.hot) != 0 {
		t.Fatalf("empty index: %d leaves, %d hot rows", x.Len(), len(x.hot))
	}
	for i, b := range x.bucket {
		if b != nil {
			t.Fatalf("empty index: bucket %d holds %d entries (capacity %d)", i, len(b), cap(b))
		}
	}
}
