package ultrapeer

import (
	"fmt"
	"math/bits"
)

// LeafIndex answers, for all the leaves of an ultrapeer at once, which
// leaves a query may have hits behind (docs/protocol.md §3.5: "to leaves, send only if the
// leaf's QRT matches").
//
// Testing each leaf's Table costs one cache miss per leaf and word once the
// tables outgrow the CPU cache: 100 to 200 µs per query for 5,000 leaves of
// 2^16 slots (BenchmarkMatch5000Leaves/tables). The index stores the same
// bits transposed: for each slot of a 2^bits table, the set of leaves whose
// table has it, as a bitset. A query then reads one row per word, a few
// hundred bytes in a row for 5,000 leaves, and ANDs them: one to two
// microseconds (BenchmarkMatch5000Leaves/index). It takes the same memory as
// the tables (2^bits/8 bytes per leaf, in rows of the capacity rounded up to
// 64 leaves) and makes a table change cost a pass over one bit column
// (Set: about 2^bits cache lines, 0.5 ms at 2^16 slots and 5,000 leaves),
// which is fine for tables that change every few minutes.
//
// Leaves' tables of other sizes are scaled to the index's (Table.Scale): a
// smaller table matches in the index exactly as it does alone, a larger one
// is OR-folded and may match a little more often, never less.
//
// Match may run concurrently with other Matches; Add, Set and Remove need
// exclusive access.
type LeafIndex struct {
	bits  uint8
	shift uint8
	words int      // uint64 words per row: capacity/64
	rows  []uint64 // rows[slot*words+i]: leaves 64i..64i+63 with slot present
	used  []bool   // per leaf id
	free  []int    // ids to reuse
	n     int      // leaves present
}

// NewLeafIndex returns an empty index of 2^bits slots (16, the recommended
// leaf table size, suits most leaves). It panics when bits is above
// MaxTableBits.
func NewLeafIndex(bits uint8) *LeafIndex {
	if bits > MaxTableBits {
		panic(fmt.Sprintf("ultrapeer: leaf index of 2^%d slots, the maximum is 2^%d", bits, MaxTableBits))
	}
	return &LeafIndex{bits: bits, shift: 32 - bits}
}

// Len returns the number of leaves in the index.
func (x *LeafIndex) Len() int { return x.n }

// Add puts a leaf's table in the index and returns the leaf's id, a small
// integer (ids of removed leaves are reused).
func (x *LeafIndex) Add(t *Table) int {
	var id int
	if n := len(x.free); n > 0 {
		id, x.free = x.free[n-1], x.free[:n-1]
	} else {
		id = len(x.used)
		x.used = append(x.used, false)
		if id >= x.words*64 {
			x.grow()
		}
	}
	x.used[id] = true
	x.n++
	x.fill(id, t)
	return id
}

// Set replaces the table of leaf id, after the leaf sent an update.
func (x *LeafIndex) Set(id int, t *Table) {
	x.check(id)
	x.clearColumn(id)
	x.fill(id, t)
}

// Remove takes leaf id out of the index; its id may be reused by Add.
func (x *LeafIndex) Remove(id int) {
	x.check(id)
	x.clearColumn(id)
	x.used[id] = false
	x.free = append(x.free, id)
	x.n--
}

func (x *LeafIndex) check(id int) {
	if id < 0 || id >= len(x.used) || !x.used[id] {
		panic(fmt.Sprintf("ultrapeer: leaf %d is not in the index", id))
	}
}

// grow doubles the capacity (at least 64 leaves), relaying out the rows.
func (x *LeafIndex) grow() {
	nw := max(1, 2*x.words)
	slots := 1 << x.bits
	rows := make([]uint64, slots*nw)
	if x.words > 0 {
		for s := 0; s < slots; s++ {
			copy(rows[s*nw:], x.rows[s*x.words:(s+1)*x.words])
		}
	}
	x.rows, x.words = rows, nw
}

func (x *LeafIndex) clearColumn(id int) {
	i, m := id/64, ^(uint64(1) << (id % 64))
	for r := i; r < len(x.rows); r += x.words {
		x.rows[r] &= m
	}
}

// fill sets leaf id's bit in the row of every slot present in t, scaled.
func (x *LeafIndex) fill(id int, t *Table) {
	if t == nil {
		return
	}
	i, m := id/64, uint64(1)<<(id%64)
	set := func(slot uint32) { x.rows[int(slot)*x.words+i] |= m }
	switch {
	case t.bits >= x.bits:
		d := t.bits - x.bits
		t.eachSet(func(s uint32) { set(s >> d) })
	default:
		d := x.bits - t.bits
		t.eachSet(func(s uint32) {
			for k := s << d; k < (s+1)<<d; k++ {
				set(k)
			}
		})
	}
}

// Match appends to dst the ids of the leaves whose table matches q, in
// increasing order, by the rule of Table.MatchesQuery: any URN present, or
// every word present; a query that is not Routable matches no leaf.
func (x *LeafIndex) Match(q *QRPQuery, dst []int) []int {
	if x.words == 0 || !q.Routable() {
		return dst
	}
	var wb, ub [8]int
	words, urns := x.rowsOf(wb[:0], q.words), x.rowsOf(ub[:0], q.urns)
	for i := 0; i < x.words; i++ {
		var m uint64
		if len(words) > 0 {
			m = x.rows[words[0]+i]
			for _, r := range words[1:] {
				if m == 0 {
					break
				}
				m &= x.rows[r+i]
			}
		}
		for _, r := range urns {
			m |= x.rows[r+i]
		}
		for m != 0 {
			dst = append(dst, i*64+bits.TrailingZeros64(m))
			m &= m - 1
		}
	}
	return dst
}

// rowsOf appends the row offsets of hash codes.
func (x *LeafIndex) rowsOf(dst []int, codes []uint32) []int {
	for _, c := range codes {
		dst = append(dst, int(c>>x.shift)*x.words)
	}
	return dst
}
