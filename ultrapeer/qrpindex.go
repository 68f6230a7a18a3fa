package ultrapeer

import (
	"fmt"
	"math/bits"
	"slices"
)

// LeafIndex answers, for all the leaves of an ultrapeer at once, which
// leaves a query may have hits behind (docs/protocol.md §3.5: "to leaves, send only if the
// leaf's QRT matches").
//
// Testing each leaf's Table costs one cache miss per leaf and word once the
// tables outgrow the CPU cache: 100 to 200 µs per query for 5,000 leaves of
// 2^16 slots (BenchmarkMatch5000Leaves/tables). The index is inverted: for
// each slot of a 2^bits table, the sorted list of the leaves whose table has
// it, or, for a slot that many leaves have (hotRow), a bitset of leaves. A
// query reads one row per word and intersects them, walking the shortest
// list, testing the bitsets and galloping through the other lists: one to a
// few microseconds for 5,000 leaves (BenchmarkMatch5000Leaves/index).
//
// Memory follows what the tables hold, not their size: 4 bytes per present
// slot and leaf, and never more than a bit per leaf for a slot. A leaf
// sharing 50 words (about 150 slots of 65,536) costs about 600 bytes, where
// a bit per slot and leaf (the index's former layout) costs 8 KiB. The lists
// of 16 consecutive slots (at 2^16; 2^(bits-12) in general) share one sorted
// array of entries, the slot's low bits over the leaf id, so that the fixed
// cost is one slice header per 16 slots (96 KiB at 2^16) rather than per
// slot. The index keeps no copy of the tables: it keeps the *Table each leaf
// was added with, to take its entries out again, so a table must not change
// while it is in the index (Receiver's tables never do).
//
// Leaves' tables of other sizes are scaled to the index's (Table.Scale): a
// smaller table matches in the index exactly as it does alone, a larger one
// is OR-folded and may match a little more often, never less.
//
// Match may run concurrently with other Matches; Add, Set and Remove need
// exclusive access.
type LeafIndex struct {
	bits   uint8
	shift  uint8              // 32 - bits: hash code >> shift = slot
	low    uint8              // slot bits kept in an entry; the others pick the bucket
	idBits uint8              // 32 - low: leaf id bits of an entry
	bucket [][]uint32         // bucket[slot>>low]: slot&(1<<low-1)<<idBits | id, increasing; nil until the first Add
	hot    map[uint32]*hotRow // the slots that many leaves have, as bitsets of leaves
	isHot  []uint64           // bit per slot: in hot; nil until the first Add
	tables []*Table           // per leaf id, the table it is in the index with (nil: none)
	used   []bool             // per leaf id
	free   []int              // ids to reuse
	n      int                // leaves present
}

// bucketBits bounds the number of buckets to 2^12: one slice header per 16
// slots of a 2^16 index.
const bucketBits = 12

// hotRow is the row of a slot that many leaves have, as a bitset of leaf
// ids (bit id%64 of word id/64): the common words of file names ("mp3",
// "the", ...) are in the tables of most leaves, and ANDing bitsets beats
// walking lists of thousands of ids. A row becomes hot when its list
// would take more memory than a bitset of every leaf id (more than
// 1/32 of them, and at least hotMin), and goes back to a list when it
// has fewer than a quarter of that.
type hotRow struct {
	n int      // leaves that have the slot
	b []uint64 // grows with the ids set in it
}

// hotMin is the fewest leaves a hot row has: below, a list is as fast.
const hotMin = 64

// NewLeafIndex returns an empty index of 2^bits slots (16, the recommended
// leaf table size, suits most leaves). It panics when bits is above
// MaxTableBits. It holds at most 2^(32-max(0, bits-12)) leaves (2^28 at
// 2^16 slots).
func NewLeafIndex(bits uint8) *LeafIndex {
	if bits > MaxTableBits {
		panic(fmt.Sprintf("ultrapeer: leaf index of 2^%d slots, the maximum is 2^%d", bits, MaxTableBits))
	}
	low := bits - min(bits, bucketBits)
	return &LeafIndex{bits: bits, shift: 32 - bits, low: low, idBits: 32 - low}
}

// Len returns the number of leaves in the index.
func (x *LeafIndex) Len() int { return x.n }

// idMask keeps the leaf id of an entry.
func (x *LeafIndex) idMask() uint32 { return uint32(uint64(1)<<x.idBits - 1) }

// Add puts a leaf's table in the index and returns the leaf's id, a small
// integer (ids of removed leaves are reused). t must not change while it is
// in the index; nil is a table with nothing present.
func (x *LeafIndex) Add(t *Table) int {
	var id int
	if n := len(x.free); n > 0 {
		id, x.free = x.free[n-1], x.free[:n-1]
	} else {
		id = len(x.used)
		if uint64(id) > uint64(x.idMask()) {
			panic(fmt.Sprintf("ultrapeer: more than %d leaves in a leaf index of 2^%d slots", uint64(x.idMask())+1, x.bits))
		}
		x.used = append(x.used, false)
		x.tables = append(x.tables, nil)
	}
	if x.bucket == nil {
		x.bucket = make([][]uint32, 1<<(x.bits-x.low))
		x.isHot = make([]uint64, denseWords(x.bits))
		x.hot = map[uint32]*hotRow{}
	}
	x.used[id] = true
	x.n++
	x.fill(id, t)
	return id
}

// Set replaces the table of leaf id, after the leaf sent an update. t must
// not change while it is in the index.
func (x *LeafIndex) Set(id int, t *Table) {
	x.check(id)
	x.clear(id)
	x.fill(id, t)
}

// Remove takes leaf id out of the index; its id may be reused by Add.
func (x *LeafIndex) Remove(id int) {
	x.check(id)
	x.clear(id)
	x.used[id] = false
	x.free = append(x.free, id)
	x.n--
}

func (x *LeafIndex) check(id int) {
	if id < 0 || id >= len(x.used) || !x.used[id] {
		panic(fmt.Sprintf("ultrapeer: leaf %d is not in the index", id))
	}
}

// eachSlot calls f with every slot of the index that t, scaled, has, in
// increasing order and once each.
func (x *LeafIndex) eachSlot(t *Table, f func(slot uint32)) {
	switch {
	case t.bits >= x.bits:
		d := t.bits - x.bits
		first, last := true, uint32(0)
		t.eachSet(func(s uint32) {
			if first || s>>d != last { // folded slots come in a row
				first, last = false, s>>d
				f(s >> d)
			}
		})
	default:
		d := x.bits - t.bits
		t.eachSet(func(s uint32) {
			for k := s << d; k < (s+1)<<d; k++ {
				f(k)
			}
		})
	}
}

// entry is leaf id's entry for slot, and the bucket it goes in.
func (x *LeafIndex) entry(slot uint32, id int) (bucket int, e uint32) {
	lowBits := slot & uint32(uint64(1)<<x.low-1)
	return int(slot >> x.low), uint32(uint64(lowBits)<<x.idBits) | uint32(id)
}

// hotLimit is the number of leaves above which a row is better a bitset.
func (x *LeafIndex) hotLimit() int { return max(hotMin, len(x.used)/32) }

func (x *LeafIndex) slotIsHot(slot uint32) bool { return x.isHot[slot>>6]&(1<<(slot&63)) != 0 }

// fill adds leaf id's entries for every slot present in t, scaled.
func (x *LeafIndex) fill(id int, t *Table) {
	x.tables[id] = t
	if t == nil {
		return
	}
	x.eachSlot(t, func(slot uint32) {
		if x.slotIsHot(slot) {
			h := x.hot[slot]
			w := id / 64
			if w >= len(h.b) {
				h.b = append(h.b, make([]uint64, w+1-len(h.b))...)
			}
			if h.b[w]&(1<<(id%64)) == 0 {
				h.b[w] |= 1 << (id % 64)
				h.n++
			}
			return
		}
		i, e := x.entry(slot, id)
		b := x.bucket[i]
		if p, found := slices.BinarySearch(b, e); !found {
			x.bucket[i] = insertEntry(b, p, e)
			if r := x.runOf(slot); len(r) > x.hotLimit() {
				x.promote(slot)
			}
		}
	})
}

// insertEntry inserts e in bucket b at p. A full bucket grows by an
// eighth, not by append's doubling: the buckets are most of the index's
// memory (4 bytes per slot and leaf), and doubling left them a third
// empty on average, 200 bytes per leaf sharing 50 words (issue 14). The
// extra copies are a few per entry, against the half bucket every insert
// moves anyway.
func insertEntry(b []uint32, p int, e uint32) []uint32 {
	if len(b) == cap(b) {
		// append of make does not allocate the make, and rounds the
		// capacity up to the allocation's size class
		nb := append([]uint32(nil), make([]uint32, len(b)+max(4, len(b)/8))...)
		copy(nb, b)
		b = nb[:len(b)]
	}
	return slices.Insert(b, p, e)
}

// promote turns the list of slot into a hot row.
func (x *LeafIndex) promote(slot uint32) {
	i := int(slot >> x.low)
	lo, hi := x.bounds(slot)
	mask := x.idMask()
	h := &hotRow{n: hi - lo, b: make([]uint64, (len(x.used)+63)/64)}
	for _, e := range x.bucket[i][lo:hi] {
		id := e & mask
		h.b[id/64] |= 1 << (id % 64)
	}
	x.bucket[i] = slices.Delete(x.bucket[i], lo, hi)
	x.shrink(i)
	x.hot[slot] = h
	x.isHot[slot>>6] |= 1 << (slot & 63)
}

// demote turns the hot row of slot back into a list.
func (x *LeafIndex) demote(slot uint32) {
	h := x.hot[slot]
	delete(x.hot, slot)
	x.isHot[slot>>6] &^= 1 << (slot & 63)
	for w, m := range h.b {
		for ; m != 0; m &= m - 1 {
			id := w*64 + bits.TrailingZeros64(m)
			i, e := x.entry(slot, id)
			p, _ := slices.BinarySearch(x.bucket[i], e)
			x.bucket[i] = insertEntry(x.bucket[i], p, e)
		}
	}
}

// clear takes out leaf id's entries.
func (x *LeafIndex) clear(id int) {
	t := x.tables[id]
	x.tables[id] = nil
	if t == nil {
		return
	}
	x.eachSlot(t, func(slot uint32) {
		if x.slotIsHot(slot) {
			h := x.hot[slot]
			if w := id / 64; w < len(h.b) && h.b[w]&(1<<(id%64)) != 0 {
				h.b[w] &^= 1 << (id % 64)
				h.n--
				if h.n < x.hotLimit()/4 {
					x.demote(slot)
				}
			}
			return
		}
		i, e := x.entry(slot, id)
		p, found := slices.BinarySearch(x.bucket[i], e)
		if !found {
			return
		}
		x.bucket[i] = slices.Delete(x.bucket[i], p, p+1)
		x.shrink(i)
	})
}

// shrink gives back the memory of bucket i when most of it is unused, as
// when a crowd of leaves left.
func (x *LeafIndex) shrink(i int) {
	b := x.bucket[i]
	switch {
	case len(b) == 0:
		x.bucket[i] = nil
	case cap(b) > 16 && len(b) < cap(b)/4:
		x.bucket[i] = slices.Clip(slices.Clone(b))
	}
}

// Match appends to dst the ids of the leaves whose table matches q, in
// increasing order, by the rule of Table.MatchesQuery: any URN present, or
// every word present; a query that is not Routable matches no leaf.
func (x *LeafIndex) Match(q *QRPQuery, dst []int) []int {
	if x.n == 0 || !q.Routable() {
		return dst
	}
	start := len(dst)
	sources := 0
	if len(q.words) > 0 {
		var lb [8][]uint32
		var hb [8][]uint64
		lists, hots := lb[:0], hb[:0]
		for _, c := range q.words {
			slot := c >> x.shift // a uint32 shifted by 32 is 0: bits 0 works
			if x.slotIsHot(slot) {
				hots = append(hots, x.hot[slot].b)
				continue
			}
			r := x.runOf(slot)
			if len(r) == 0 {
				lists, hots = nil, nil
				break
			}
			lists = append(lists, r)
		}
		switch {
		case len(lists) > 0:
			dst = x.intersect(lists, hots, dst)
			sources++
		case len(hots) > 0:
			dst = andHot(hots, dst)
			sources++
		}
	}
	mask := x.idMask()
	for _, c := range q.urns {
		slot := c >> x.shift
		if x.slotIsHot(slot) {
			dst = andHot([][]uint64{x.hot[slot].b}, dst)
			sources++
			continue
		}
		r := x.runOf(slot)
		if len(r) == 0 {
			continue
		}
		for _, e := range r {
			dst = append(dst, int(e&mask))
		}
		sources++
	}
	if sources > 1 { // a leaf may be there twice, and out of order
		slices.Sort(dst[start:])
		dst = dst[:start+len(slices.Compact(dst[start:]))]
	}
	return dst
}

// bounds returns where the entries of slot are in its bucket.
func (x *LeafIndex) bounds(slot uint32) (lo, hi int) {
	b := x.bucket[slot>>x.low]
	if x.low == 0 {
		return 0, len(b)
	}
	lowBits := slot & uint32(uint64(1)<<x.low-1)
	first := uint32(uint64(lowBits) << x.idBits)
	lo, _ = slices.BinarySearch(b, first)
	hi = len(b)
	if uint64(lowBits)+1 < uint64(1)<<x.low {
		hi, _ = slices.BinarySearch(b[lo:], first+uint32(uint64(1)<<x.idBits))
		hi += lo
	}
	return lo, hi
}

// runOf returns the entries of a slot that is not hot: one per leaf that
// has it, in increasing order of leaf id.
func (x *LeafIndex) runOf(slot uint32) []uint32 {
	lo, hi := x.bounds(slot)
	return x.bucket[slot>>x.low][lo:hi]
}

// andHot appends the ids present in every bitset.
func andHot(hots [][]uint64, dst []int) []int {
	n := len(hots[0])
	for _, h := range hots[1:] {
		n = min(n, len(h))
	}
	for i := 0; i < n; i++ {
		m := hots[0][i]
		for _, h := range hots[1:] {
			if m == 0 {
				break
			}
			m &= h[i]
		}
		for ; m != 0; m &= m - 1 {
			dst = append(dst, i*64+bits.TrailingZeros64(m))
		}
	}
	return dst
}

// intersect appends the ids present in every list and every bitset: it
// walks the shortest list, tests the bitsets, and gallops through the other
// lists, whose cursors only move forward.
func (x *LeafIndex) intersect(lists [][]uint32, hots [][]uint64, dst []int) []int {
	short := 0
	for i, r := range lists {
		if len(r) < len(lists[short]) {
			short = i
		}
	}
	lists[0], lists[short] = lists[short], lists[0]
	mask := x.idMask()
	var cb [8]int
	cur := cb[:0]
	for range lists {
		cur = append(cur, 0)
	}
next:
	for _, e := range lists[0] {
		id := e & mask
		for _, h := range hots {
			if w := int(id / 64); w >= len(h) || h[w]&(1<<(id%64)) == 0 {
				continue next
			}
		}
		for k := 1; k < len(lists); k++ {
			r := lists[k]
			c := gallop(r, cur[k], id, mask)
			cur[k] = c
			if c == len(r) {
				return dst // no id beyond this one in r
			}
			if r[c]&mask != id {
				continue next
			}
		}
		dst = append(dst, int(id))
	}
	return dst
}

// gallop returns the first index from c of r whose id is at least id (len(r)
// when none is): doubling steps, then a binary search in the last step.
func gallop(r []uint32, c int, id, mask uint32) int {
	if c >= len(r) || r[c]&mask >= id {
		return c
	}
	lo, step := c, 1 // r[lo] < id
	for lo+step < len(r) && r[lo+step]&mask < id {
		lo += step
		step *= 2
	}
	hi := min(lo+step, len(r)) // r[hi] >= id, or hi = len(r)
	for hi-lo > 1 {
		m := int(uint(lo+hi) >> 1)
		if r[m]&mask < id {
			lo = m
		} else {
			hi = m
		}
	}
	return hi
}
