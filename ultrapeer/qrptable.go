package ultrapeer

import (
	"fmt"
	"math/bits"
	"slices"

	"gnutella/protocol"
)

// Table is a QRP table of 2^bits slots that records presence only (docs/protocol.md §4.3:
// any value below infinity means present, which is all that gtk-gnutella
// and LimeWire keep for leaf/ultrapeer tables).
//
// It has two forms. The dense one takes one bit per slot, 8 KiB for the
// recommended 2^16 slots, with slots stored most significant bit first in
// 64-bit words, the order of gtk-gnutella's 1-bit patches, so such a patch
// XORs in word by word. The sparse one is the sorted list of the present
// slots, 2 bytes each up to 2^16 slots, 4 above: a leaf sharing 50 words
// has about 150 slots of 65,536 present, 300 bytes instead of 8 KiB, and
// an empty table holds no slot memory at all. NewTable makes a dense table, and every method that
// adds slots works on the dense form (a sparse table turns dense first);
// Compact turns a table sparse when that is smaller, as Receiver does with
// every table it completes, since an ultrapeer keeps hundreds of them.
//
// The read-only methods (Has, Count, Matches, Scale, Equal, ...) may run
// concurrently; Set, Add*, Or and Compact need exclusive access. A Table
// returned by Receiver.Table is never modified again by the Receiver.
type Table struct {
	bits  uint8
	shift uint8    // 32 - bits: hash code >> shift = slot
	w     []uint64 // dense form; nil when sparse
	// the sparse form: the present slots in increasing order, in h up to
	// 2^16 slots (half the memory of an ultrapeer's many leaf tables), in
	// s above
	s []uint32
	h []uint16
}

// sparseLen is the number of present slots of a sparse table.
func (t *Table) sparseLen() int { return len(t.s) + len(t.h) }

// eachSparse calls f with every present slot of a sparse table, in order.
func (t *Table) eachSparse(f func(slot uint32)) {
	for _, s := range t.h {
		f(uint32(s))
	}
	for _, s := range t.s {
		f(s)
	}
}

// NewTable returns an empty table of 2^bits slots. It panics when bits is
// above MaxTableBits.
func NewTable(bits uint8) *Table {
	if bits > MaxTableBits {
		panic(fmt.Sprintf("ultrapeer: QRP table of 2^%d slots, the maximum is 2^%d", bits, MaxTableBits))
	}
	return &Table{bits: bits, shift: 32 - bits, w: make([]uint64, denseWords(bits))}
}

// denseWords is the length of the dense form of a table of 2^bits slots.
func denseWords(bits uint8) int { return max(1, (1<<bits)/64) }

// Bits returns the log2 of the table size.
func (t *Table) Bits() uint8 { return t.bits }

// Size returns the number of slots, 2^Bits.
func (t *Table) Size() int { return 1 << t.bits }

// Bytes returns the memory the table's slots take: 2^bits/8 bytes in the
// dense form, 2 or 4 bytes per present slot in the sparse one.
func (t *Table) Bytes() int64 {
	if t.w != nil {
		return int64(cap(t.w)) * 8
	}
	return int64(cap(t.s))*4 + int64(cap(t.h))*2
}

// Compact turns the table into its sparse form when that takes less memory
// than the dense one (fewer than 2^bits/32 present slots), and does nothing
// otherwise. Lookups in a sparse table are a binary search over the present
// slots instead of one bit test: a few nanoseconds more for the tables of
// small libraries, which are the ones that become sparse.
func (t *Table) Compact() {
	if t.w == nil {
		return
	}
	n := t.Count()
	if n*4 >= len(t.w)*8 {
		return
	}
	if t.bits <= 16 {
		h := make([]uint16, 0, n)
		t.eachSet(func(slot uint32) { h = append(h, uint16(slot)) })
		t.w, t.h = nil, h
		return
	}
	s := make([]uint32, 0, n)
	t.eachSet(func(slot uint32) { s = append(s, slot) })
	t.w, t.s = nil, s
}

// densify turns a sparse table dense, before slots are added to it.
func (t *Table) densify() {
	if t.w != nil {
		return
	}
	w := make([]uint64, denseWords(t.bits))
	t.eachSparse(func(slot uint32) { w[slot>>6] |= 1 << (63 - slot&63) })
	t.w, t.s, t.h = w, nil, nil
}

// words returns the dense form of t: its own words, or a copy built from
// the sparse form. The caller must not modify them.
func (t *Table) words() []uint64 {
	if t.w != nil {
		return t.w
	}
	c := &Table{bits: t.bits, s: t.s, h: t.h}
	c.densify()
	return c.w
}

// Set marks slot present. It panics when slot is not below Size.
func (t *Table) Set(slot uint32) {
	if uint64(slot) >= uint64(t.Size()) {
		panic(fmt.Sprintf("ultrapeer: QRP slot %d out of a table of %d", slot, t.Size()))
	}
	t.densify()
	t.w[slot>>6] |= 1 << (63 - slot&63)
}

// clear marks slot absent; slot must be below Size and t dense.
func (t *Table) clear(slot uint32) { t.w[slot>>6] &^= 1 << (63 - slot&63) }

// Has reports whether slot is present; a slot beyond the table is not.
func (t *Table) Has(slot uint32) bool {
	if uint64(slot) >= uint64(t.Size()) {
		return false
	}
	return t.has(slot)
}

// has reports whether slot, below Size, is present.
func (t *Table) has(s uint32) bool {
	if t.w != nil {
		return t.w[s>>6]&(1<<(63-s&63)) != 0
	}
	if t.bits <= 16 {
		_, ok := slices.BinarySearch(t.h, uint16(s))
		return ok
	}
	_, ok := slices.BinarySearch(t.s, s)
	return ok
}

// hasCode reports whether the slot of a hash code is present.
func (t *Table) hasCode(code uint32) bool {
	return t.has(code >> t.shift) // a uint32 shifted by 32 is 0: bits 0 works
}

// setCode marks the slot of a hash code present.
func (t *Table) setCode(code uint32) {
	t.densify()
	s := code >> t.shift
	t.w[s>>6] |= 1 << (63 - s&63)
}

// Count returns the number of present slots.
func (t *Table) Count() int {
	if t.w == nil {
		return t.sparseLen()
	}
	n := 0
	for _, w := range t.w {
		n += bits.OnesCount64(w)
	}
	return n
}

// Fill returns Count/Size, the fraction of present slots. gtk-gnutella grows
// its own table until this is at most 1 %; above about 5 % it starts to
// doubt a leaf's table.
func (t *Table) Fill() float64 { return float64(t.Count()) / float64(t.Size()) }

// Clone returns a copy of t, in the same form.
func (t *Table) Clone() *Table {
	return &Table{bits: t.bits, shift: t.shift, w: slices.Clone(t.w), s: slices.Clone(t.s), h: slices.Clone(t.h)}
}

// denseClone returns a copy of t in the dense form, ready to be patched.
func (t *Table) denseClone() *Table {
	c := t.Clone()
	c.densify()
	return c
}

// Equal reports whether o has the same size and the same present slots,
// whatever the form of each.
func (t *Table) Equal(o *Table) bool {
	if t == nil || o == nil {
		return t == o
	}
	switch {
	case t.bits != o.bits:
		return false
	case t.w != nil && o.w != nil:
		return slices.Equal(t.w, o.w)
	case t.w == nil && o.w == nil:
		return slices.Equal(t.s, o.s) && slices.Equal(t.h, o.h)
	case t.w == nil:
		t, o = o, t // t dense, o sparse
	}
	if t.Count() != o.sparseLen() {
		return false
	}
	equal := true
	o.eachSparse(func(s uint32) { equal = equal && t.has(s) })
	return equal
}

// AddKeyword marks the slot of w present, w as it is: no prefixes (see
// AddName). The empty word is ignored.
func (t *Table) AddKeyword(w string) {
	if w != "" {
		t.setCode(hashCode(w))
	}
}

// AddName inserts the keywords of one file name, given as its words already
// normalised (share.Keywords: lower case, accents removed, punctuation
// turned into spaces; this function still lower-cases, as the hash does).
//
// The rule: every prefix of every word that is at least 3 bytes long and
// ends on a character boundary, the whole word included. So "zebraquokka"
// inserts "zeb", "zebr", "zebra", ..., "zebraquokka", and "mp3" inserts
// "mp3". Words shorter than 3 bytes are skipped: Matches never looks them up
// (gtk-gnutella's convention), so a query made only of such words is not
// routed at all, although our library answers it locally. (gtk-gnutella
// 1.2.3 does insert them, see TestGtkGnutellaTables; its queries never ask
// for them.)
//
// Why this rule and not gtk-gnutella's or LimeWire's as they are: our
// library answers a query when every query word is equal to or a prefix of
// a word of the name, and Matches looks up every query word of 3 bytes or
// more, so the table must hold every prefix of 3 bytes or more, or it says
// "no" to a query the library would answer. LimeWire's rule (the word, and
// for words over 4 characters the word minus its last 1 and 2 characters)
// covers only the two longest prefixes: "zebra" would not reach a file
// named "zebraquokka". gtk-gnutella's rule (prefixes shortened by up to 5
// characters but never below 4; 3-character words as they are) is the
// closer of the two but still misses every 3-character prefix of a longer
// word ("zeb" for "zebra") and every prefix more than 5 characters shorter
// than its word ("zebra" for "zebraquokka"). The rule here is gtk-gnutella's
// with both limits lowered to "3 bytes", which is exactly what the answering
// rule needs. It costs slots: for a 1,000-file library about 15 % more than
// gtk-gnutella's rule and 40 % more than LimeWire's (TestFillCost; 5.7 % of
// 2^16 slots against 5.0 % and 4.1 %). It is computed in one pass over the
// word, since the QRP fold of a prefix is the running fold of the word.
func (t *Table) AddName(words []string) {
	for _, w := range words {
		prefixCodes(w, t.setCode)
	}
}

// AddURN inserts a file's SHA-1 the way queries look it up: the whole string
// "urn:sha1:<base32>" hashed as one word (docs/protocol.md §4.1; gtk-gnutella and LimeWire).
func (t *Table) AddURN(h protocol.SHA1) { t.setCode(urnCode(h)) }

// BuildTable returns a table of 2^bits slots holding the keywords of every
// name (see AddName; each name given as its normalised words) and every
// URN.
func BuildTable(bits uint8, names [][]string, urns []protocol.SHA1) *Table {
	t := NewTable(bits)
	for _, n := range names {
		t.AddName(n)
	}
	for _, h := range urns {
		t.AddURN(h)
	}
	return t
}

// QRPQuery is a query prepared for routing: the hash codes of its words and
// URNs, computed once and good for tables of every size, so that deciding
// which of thousands of leaves get a query costs one bit test per word and
// leaf.
type QRPQuery struct {
	words []uint32 // hash codes of the words of at least 3 bytes, deduplicated
	urns  []uint32 // hash codes of "urn:sha1:..." strings
}

// NewQRPQuery prepares a query from its words (already normalised, as
// share.Keywords gives them) and its URNs (protocol.Query.URNs). Words
// shorter than 3 bytes are dropped, as gtk-gnutella does: they are too
// common to be worth a slot.
func NewQRPQuery(words []string, urns []protocol.SHA1) *QRPQuery {
	q := &QRPQuery{}
	for _, w := range words {
		if len(w) < minHashedBytes {
			continue
		}
		c := hashCode(w)
		if !slices.Contains(q.words, c) {
			q.words = append(q.words, c)
		}
	}
	for _, h := range urns {
		q.urns = append(q.urns, urnCode(h))
	}
	return q
}

// Routable reports whether the query has anything to look up: a word of at
// least 3 bytes or a URN. A query that is not routable matches no table.
func (q *QRPQuery) Routable() bool { return len(q.words) > 0 || len(q.urns) > 0 }

// Matches reports whether a query with these words (already normalised) and
// URNs may have hits behind this table. See MatchesQuery for the rule; when
// the same query goes through many tables, prepare it once with NewQRPQuery.
func (t *Table) Matches(words []string, urns []protocol.SHA1) bool {
	return t.MatchesQuery(NewQRPQuery(words, urns))
}

// MatchesQuery reports whether the query may have hits behind this table:
//
//   - when the slot of any one of its URNs is present (one URN is enough:
//     gtk-gnutella and LimeWire forward on the first URN hit), or
//   - when it has words of 3 bytes or more and every one of them is present
//     (AND: the spec's and LimeWire's rule). gtk-gnutella's looser rule (2/3
//     of the words when there are 3 or more) is not used: our library
//     answers only when every word matches, so a table that holds every
//     prefix of the library's words (AddName) loses no hit to AND, and AND
//     keeps more useless queries off the leaf links.
//
// A query with no word of 3 bytes and no URN matches nothing. The two
// conditions are ORed because our library answers a query whose keywords
// match even when its URN does not (keywords OR URN, docs/protocol.md §1.8); gtk-gnutella and
// LimeWire drop a query with URNs none of which is present whatever its
// words, which would refuse queries our library answers. Queries with both
// are rare: hash queries mostly have an empty search text.
//
// A nil table matches nothing.
func (t *Table) MatchesQuery(q *QRPQuery) bool {
	if t == nil {
		return false
	}
	for _, c := range q.urns {
		if t.hasCode(c) {
			return true
		}
	}
	if len(q.words) == 0 {
		return false
	}
	for _, c := range q.words {
		if !t.hasCode(c) {
			return false
		}
	}
	return true
}

// Scale returns a copy of t resized to 2^bits slots (docs/protocol.md §4.3). Because a slot
// is the top bits of the 32-bit hash code, old slot s covers new slot
// s >> (old-new) when shrinking, and new slots s << (new-old) up to
// (s+1) << (new-old) - 1 when growing. Each new slot is the OR of the old
// slots it overlaps (the spec's "minimum distance", for presence), so every
// word present before is present after; growing adds false positives,
// shrinking merges slots, neither loses a word.
func (t *Table) Scale(bits uint8) *Table {
	n := NewTable(bits)
	switch {
	case bits == t.bits:
		copy(n.w, t.words())
	case bits < t.bits:
		d := t.bits - bits
		t.eachSet(func(s uint32) { n.Set(s >> d) })
	default:
		d := bits - t.bits
		t.eachSet(func(s uint32) { n.setRange(s<<d, 1<<d) })
	}
	return n
}

// eachSet calls f with every present slot, in order.
func (t *Table) eachSet(f func(slot uint32)) {
	if t.w == nil {
		t.eachSparse(f)
		return
	}
	for i, w := range t.w {
		for w != 0 {
			b := bits.LeadingZeros64(w)
			f(uint32(i*64 + b))
			w &^= 1 << (63 - b)
		}
	}
}

// setRange marks n slots from lo present; n is a power of two and lo a
// multiple of n, so the range is either inside one word or whole words.
func (t *Table) setRange(lo, n uint32) {
	t.densify()
	if n >= 64 {
		for i := lo / 64; i < (lo+n)/64; i++ {
			t.w[i] = ^uint64(0)
		}
		return
	}
	mask := (uint64(1)<<n - 1) << (64 - lo&63 - n)
	t.w[lo>>6] |= mask
}

// Or adds every slot present in o to t: the ultrapeer's aggregate table is
// its own table OR every leaf's (docs/protocol.md §4.5). Both must have the same size (Scale
// first); Or panics otherwise.
func (t *Table) Or(o *Table) {
	if t.bits != o.bits {
		panic(fmt.Sprintf("ultrapeer: Or of a QRP table of 2^%d slots into one of 2^%d: scale first", o.bits, t.bits))
	}
	t.densify()
	if o.w == nil {
		o.eachSparse(func(s uint32) { t.w[s>>6] |= 1 << (63 - s&63) })
		return
	}
	for i, w := range o.w {
		t.w[i] |= w
	}
}

// String is "QRPTable 2^16 slots, 123 present (0.19%)".
func (t *Table) String() string {
	return fmt.Sprintf("QRPTable 2^%d slots, %d present (%.2f%%)", t.bits, t.Count(), 100*t.Fill())
}
