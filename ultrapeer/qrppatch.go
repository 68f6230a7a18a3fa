package ultrapeer

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sync"

	"gnutella/protocol"
)

// Sending defaults and limits.
const (
	// DefaultChunk is the patch bytes per PATCH message when none is given:
	// LimeWire's MAX_PATCH_SIZE. gtk-gnutella sends 512.
	DefaultChunk = 4096
	// MaxChunk keeps a PATCH payload within gtk-gnutella's 40960-byte limit
	// for messages other than queries, hits and Byes (docs/protocol.md §7).
	MaxChunk = 40960 - protocol.RouteTablePatchHeaderLen
	// maxSeqSize is the most PATCH messages one update may take: seq_size
	// is one byte.
	maxSeqSize = 255
)

// Compression says when a patch is zlib-compressed.
type Compression uint8

const (
	// CompressAuto compresses when that makes the patch smaller, as
	// LimeWire and gtk-gnutella do.
	CompressAuto Compression = iota
	// CompressAlways always compresses.
	CompressAlways
	// CompressNever never compresses.
	CompressNever
)

// EncodeOptions say how a table goes on the wire.
type EncodeOptions struct {
	// Infinity is sent in the RESET and sizes the patch values: a slot that
	// becomes present is sent as -(Infinity-1), LimeWire's -6 with
	// infinity 7 and gtk-gnutella's -1 with infinity 2, and one that becomes
	// absent as +(Infinity-1); with infinity 1 (present = 0) as -1 and +1.
	// Values beyond the entry size are clamped, which keeps their sign, and
	// receivers only look at the sign. At least 1.
	Infinity uint8
	// EntryBits is 4 (the spec's and LimeWire's, accepted by everyone), 8,
	// 2, or 1 (gtk-gnutella's XOR bitmap: send it only to gtk-gnutella
	// peers). 0 means 4.
	EntryBits uint8
	// Chunk is the patch bytes per PATCH message. 0 or less means
	// DefaultChunk; above MaxChunk means MaxChunk; when the patch would need
	// more than 255 messages, the chunk grows as gtk-gnutella's does.
	Chunk int
	// Compression is CompressAuto unless set.
	Compression Compression
}

// Messages returns the whole table as a RESET and a 4-bit PATCH sequence
// against the all-infinity table the RESET leaves (docs/protocol.md §4.4), zlib-compressed
// when that is smaller, cut into PATCH messages of chunk bytes (512 as
// gtk-gnutella, 4096 as LimeWire; see EncodeOptions.Chunk). The first
// element is a *protocol.RouteTableReset and the others
// *protocol.RouteTablePatch. It panics when infinity is 0.
func (t *Table) Messages(infinity uint8, chunk int) []protocol.Payload {
	return t.mustEncode(nil, EncodeOptions{Infinity: infinity, Chunk: chunk})
}

// PatchFrom returns the 4-bit PATCH sequence that turns prev, the table the
// peer holds, into t, or nil when they are equal. When prev is nil or of
// another size, a RESET is needed and the result is Messages. It panics
// when infinity is 0.
func (t *Table) PatchFrom(prev *Table, infinity uint8, chunk int) []protocol.Payload {
	return t.mustEncode(prev, EncodeOptions{Infinity: infinity, Chunk: chunk})
}

func (t *Table) mustEncode(prev *Table, o EncodeOptions) []protocol.Payload {
	m, err := t.Encode(prev, o)
	if err != nil {
		panic("ultrapeer: " + err.Error())
	}
	return m
}

// Encode is Messages (prev nil, or of another size: RESET and the whole
// table) and PatchFrom (prev of the same size: the PATCH sequence from prev
// to t, nil when equal) with every option. It fails on an invalid option,
// or when the patch does not fit in 255 messages of MaxChunk bytes, which
// cannot happen with 4-bit entries, or any entries with compression, for
// tables of up to MaxTableBits.
//
// The messages are the caller's to keep: their data shares no memory with
// the pooled buffers the patch is built and compressed in.
func (t *Table) Encode(prev *Table, o EncodeOptions) ([]protocol.Payload, error) {
	if o.Infinity == 0 {
		return nil, errors.New("QRP infinity 0")
	}
	eb := o.EntryBits
	if eb == 0 {
		eb = 4
	}
	if !validEntryBits(eb) {
		return nil, fmt.Errorf("QRP entry bits %d not in {1,2,4,8}", eb)
	}
	reset := prev == nil || prev.bits != t.bits
	if reset {
		prev = nil
	} else if t.Equal(prev) {
		return nil, nil
	}
	var data []byte
	compressor := uint8(protocol.QRPCompressorNone)
	if o.Compression == CompressNever {
		data = make([]byte, patchLen(t.Size(), eb))
		t.patchBytes(data, prev, eb, o.Infinity)
	} else {
		data, compressor = t.compressedPatch(prev, eb, o.Infinity, o.Compression == CompressAlways)
	}
	chunk := o.Chunk
	if chunk <= 0 {
		chunk = DefaultChunk
	}
	chunk = min(max(chunk, (len(data)+maxSeqSize-1)/maxSeqSize), MaxChunk)
	n := (len(data) + chunk - 1) / chunk
	if n > maxSeqSize {
		return nil, fmt.Errorf("QRP patch of %d bytes needs more than %d messages of %d bytes", len(data), maxSeqSize, MaxChunk)
	}
	out := make([]protocol.Payload, 0, n+1)
	if reset {
		out = append(out, &protocol.RouteTableReset{TableLength: uint32(t.Size()), Infinity: o.Infinity})
	}
	patches := make([]protocol.RouteTablePatch, n) // one allocation for the sequence
	for i := range patches {
		end := min((i+1)*chunk, len(data))
		patches[i] = protocol.RouteTablePatch{
			SeqNo: uint8(i + 1), SeqSize: uint8(n), Compressor: compressor, EntryBits: eb,
			Data: data[i*chunk : end : end],
		}
		out = append(out, &patches[i])
	}
	return out, nil
}

// compressedPatch returns the patch from prev to t zlib-compressed when
// always is set or when that is smaller, else uncompressed, and the
// compressor that says which. The patch is built and compressed in pooled
// buffers; the result is a fresh slice of its exact length, which the
// caller may keep forever.
func (t *Table) compressedPatch(prev *Table, eb, infinity uint8, always bool) ([]byte, uint8) {
	n := patchLen(t.Size(), eb)
	raw := getScratch(n)
	defer putScratch(raw)
	raw.b = raw.b[:n]
	clear(raw.b) // patchBytes only sets bits
	t.patchBytes(raw.b, prev, eb, infinity)
	z := deflate(raw.b)
	defer putScratch(z)
	if always || len(z.b) < len(raw.b) {
		return bytes.Clone(z.b), protocol.QRPCompressorZlib
	}
	return bytes.Clone(raw.b), protocol.QRPCompressorNone
}

func validEntryBits(eb uint8) bool { return eb == 1 || eb == 2 || eb == 4 || eb == 8 }

// patchLen is the length in bytes of an uncompressed patch of size entries.
func patchLen(size int, eb uint8) int { return (size*int(eb) + 7) / 8 }

// patchBytes writes the uncompressed patch from prev (nil: the all-absent
// table) to t, with entries of eb bits, first entry in the high bits, into
// b: patchLen(t.Size(), eb) bytes, all zero.
func (t *Table) patchBytes(b []byte, prev *Table, eb, infinity uint8) {
	tw, pw := t.words(), []uint64(nil)
	if prev != nil {
		pw = prev.words()
	}
	if eb == 1 { // XOR bitmap: the changed slots, in the table's own order
		for i, w := range tw {
			if pw != nil {
				w ^= pw[i]
			}
			for k := 0; k < 8 && i*8+k < len(b); k++ {
				b[i*8+k] = byte(w >> (56 - 8*k))
			}
		}
		return
	}
	d := int(infinity) - 1
	if d < 1 {
		d = 1 // infinity 1: present is 0, absent 1
	}
	lim := 1<<(eb-1) - 1
	neg := byte(-min(d, lim+1)) & (1<<eb - 1)
	pos := byte(min(d, lim))
	for i, w := range tw {
		old := uint64(0)
		if pw != nil {
			old = pw[i]
		}
		for c := w ^ old; c != 0; c &= c - 1 {
			s := i*64 + 63 - bits.TrailingZeros64(c) // the lowest changed bit is the last slot
			v := pos
			if w&(1<<(63-s&63)) != 0 {
				v = neg
			}
			bit := s * int(eb)
			b[bit/8] |= v << (8 - int(eb) - bit%8)
		}
	}
}

// Patches are mostly zeros with a few scattered entries. Go's flate at its
// default level spends milliseconds on such input (long hash chains over the
// zero runs); Huffman-only coding and BestSpeed take about 0.1 to 0.3 ms for
// a 2^16 table, and one or the other gives a patch within about 30 % of
// level 6's, often smaller (Huffman-only wins on fuller tables). deflate
// tries both and keeps the smaller.
//
// A flate writer allocates a few hundred KiB, so the writers are pooled, one
// pool per level, and Reset for each stream. Each writes through its own
// zsink, which points at the output only while the writer is in use: a
// writer in the pool holds no output buffer.
var zwPools = [2]sync.Pool{
	{New: func() any { return newZWriter(zlib.HuffmanOnly) }},
	{New: func() any { return newZWriter(zlib.BestSpeed) }},
}

type zwriter struct {
	zw   *zlib.Writer
	sink zsink
}

// zsink appends to a scratch buffer.
type zsink struct{ s *scratch }

func (z *zsink) Write(p []byte) (int, error) {
	z.s.b = append(z.s.b, p...)
	return len(p), nil
}

func newZWriter(level int) *zwriter {
	w := new(zwriter)
	w.zw, _ = zlib.NewWriterLevel(&w.sink, level) // both levels are valid
	return w
}

// deflate returns b as one zlib stream, in a pooled buffer for putScratch.
func deflate(b []byte) *scratch {
	var best *scratch
	for i := range zwPools {
		out := getScratch(len(b)/4 + 64)
		w := zwPools[i].Get().(*zwriter)
		w.sink.s = out
		w.zw.Reset(&w.sink)
		_, _ = w.zw.Write(b) // a zsink does not fail
		_ = w.zw.Close()
		w.sink.s = nil
		zwPools[i].Put(w)
		if best == nil || len(out.b) < len(best.b) {
			putScratch(best)
			best = out
		} else {
			putScratch(out)
		}
	}
	return best
}

// scratch is a pooled byte buffer: the patch bytes and the compressed
// streams of Encode, and the compressed bytes a Receiver gathers over a
// sequence. Nothing in one is ever handed to a caller.
type scratch struct{ b []byte }

// maxScratch is the largest buffer put back in the pool (a 4-bit patch of
// 2^19 slots): larger ones, for tables this servent neither builds nor
// usually gets, are left to the garbage collector.
const maxScratch = 256 << 10

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// getScratch returns an empty buffer from the pool with room for at least
// n bytes.
func getScratch(n int) *scratch {
	s := scratchPool.Get().(*scratch)
	if cap(s.b) < n {
		s.b = make([]byte, 0, n)
	}
	s.b = s.b[:0]
	return s
}

// putScratch gives s back to the pool; s may be nil.
func putScratch(s *scratch) {
	if s == nil {
		return
	}
	if cap(s.b) > maxScratch {
		s.b = nil
	}
	scratchPool.Put(s)
}

// An inflater is a zlib reader, its source and its output buffer, pooled:
// a flate reader allocates tens of KiB, and most Receivers (one per
// connection) inflate a sequence only now and then.
type inflater struct {
	src bytes.Reader
	zr  io.ReadCloser // nil until a stream's header was valid
	buf [4096]byte
}

var inflaters = sync.Pool{New: func() any { return new(inflater) }}

// Receiver keeps the QRP table a peer sends on one connection: feed it every
// route-table message in order. It enforces every rule of docs/protocol.md §4.4 and §8.8,
// the way gtk-gnutella does (Bye 413 on any of them):
//
//   - a PATCH needs a RESET first;
//   - a RESET's length is a power of two, at most 2^maxBits, and its
//     infinity at least 1;
//   - a sequence starts at seq_no 1, goes up by 1 and ends at seq_size;
//     seq_size, compressor and entry_bits do not change within it; entry
//     bits are 1, 2, 4 or 8 and the compressor 0 (none) or 1 (zlib);
//   - the patch covers the table exactly: not one byte more (a patch that
//     inflates past the table is stopped there, nothing beyond the table's
//     size × entry_bits/8 is ever inflated) and not one less;
//   - a zlib patch is one valid zlib stream, ending exactly at the end of
//     the sequence's data.
//
// Entries are read for presence as gtk-gnutella and LimeWire do: negative
// means present, positive absent, 0 unchanged; 1-bit entries are
// gtk-gnutella's XOR bitmap (1 flips the slot).
//
// The sequence is applied to a copy: the table only changes when a whole
// sequence is valid, and a table returned by Table is never modified
// afterwards. A RESET or an error abandons a sequence in progress; after an
// error the connection should be closed, but the Receiver stays usable and
// waits for a sequence starting at seq_no 1.
//
// Memory: the last complete table, compacted (Table.Compact: 2 or 4 bytes per
// present slot when that is less than the 2^bits/8 bytes of the dense
// form); during a sequence,
// the compressed bytes of a zlib sequence of more than one message until
// its last message, refused beyond ReceiverLimits.MaxPatchBytes or twice
// the uncompressed patch plus 1 KiB, whichever is less; the new table (a
// dense copy of the last one, or an empty one after a RESET), allocated only
// when the patch is applied: at the first message of an uncompressed
// sequence, at the last one of a zlib sequence. A RESET allocates nothing.
// While it inflates, one zlib reader and a 4 KiB buffer, taken from a pool
// and given back. Tables, copies and compressed bytes are charged to the
// ReceiverLimits.Budget before they are allocated (ErrBudget when they do
// not fit) and given back when dropped; Release drops everything. Between
// sequences it holds nothing but its table. A Receiver is not safe for
// concurrent use.
type Receiver struct {
	maxBits  uint8
	maxPatch int     // compressed bytes buffered per sequence
	budget   *Budget // nil: unbounded
	table    *Table  // the last complete table, nil before the first
	tableMem int64   // charged for table

	haveReset bool
	bits      uint8  // of the last RESET
	infinity  uint8  // of the last RESET
	base      *Table // what the next sequence patches; nil: all infinity

	// The sequence in progress; next == 0 when none is.
	next       uint8
	seqSize    uint8
	compressor uint8
	entryBits  uint8
	work       *Table   // allocated when the patch is applied
	workMem    int64    // charged for work
	rawLen     int      // uncompressed patch length the table needs
	off        int      // uncompressed bytes applied so far
	z          *scratch // compressed bytes so far (zlib, seqSize > 1), pooled; its capacity is charged
	zlen       int      // compressed bytes so far
	lastLen    int      // bytes the last message added to z
}

// DefaultMaxPatchBytes is ReceiverLimits.MaxPatchBytes when none is given:
// 128 KiB, about three times the zlib patch of a 2^21-slot table filled to
// 1 %, the fullest gtk-gnutella builds at that size (docs/protocol.md
// §4.3); smaller tables stay within twice their uncompressed patch, as
// before.
const DefaultMaxPatchBytes = 128 << 10

// ReceiverLimits bound what one Receiver may hold.
type ReceiverLimits struct {
	// MaxBits: tables of more than 2^MaxBits slots are refused
	// (gtk-gnutella: 2^21). Above MaxTableBits means MaxTableBits.
	MaxBits uint8
	// MaxPatchBytes bounds the compressed bytes of one sequence, buffered
	// until its last message. 0 or less means DefaultMaxPatchBytes.
	MaxPatchBytes int
	// Budget, shared by all the Receivers of a servent, bounds what they
	// hold together. nil means no shared bound.
	Budget *Budget
}

// NewReceiver returns a Receiver that refuses tables larger than 2^maxBits
// slots (gtk-gnutella: 2^21), with the default patch limit and no budget.
// maxBits above MaxTableBits means MaxTableBits.
func NewReceiver(maxBits uint8) *Receiver {
	return NewLimitedReceiver(ReceiverLimits{MaxBits: maxBits})
}

// NewLimitedReceiver returns a Receiver bounded by l.
func NewLimitedReceiver(l ReceiverLimits) *Receiver {
	mp := l.MaxPatchBytes
	if mp <= 0 {
		mp = DefaultMaxPatchBytes
	}
	return &Receiver{maxBits: min(l.MaxBits, MaxTableBits), maxPatch: mp, budget: l.Budget}
}

// tableMemory is what a table of 2^bits slots takes, as charged to a Budget.
func tableMemory(bits uint8) int64 { return int64(max(1, (1<<bits)/64)) * 8 }

// Held returns the bytes the Receiver holds now, as charged to its Budget:
// its table, and the new table and compressed bytes of a sequence in
// progress.
func (r *Receiver) Held() int64 { return r.tableMem + r.workMem + r.zMem() }

// zMem is what the compressed-bytes buffer takes, as charged.
func (r *Receiver) zMem() int64 {
	if r.z == nil {
		return 0
	}
	return int64(cap(r.z.b))
}

// Pending reports whether an update is unfinished: a RESET whose table has
// not completed yet, or a PATCH sequence in progress. A servent bounds how
// long one may stay so.
func (r *Receiver) Pending() bool { return r.next != 0 || (r.haveReset && r.base == nil) }

// Release drops everything the Receiver holds, its table included, and
// gives it back to the Budget: call it when the connection closes. The
// Receiver is then as new.
func (r *Receiver) Release() {
	r.abort()
	r.budget.give(r.tableMem)
	r.table, r.base, r.tableMem, r.haveReset = nil, nil, 0, false
}

// Table returns the table of the last complete PATCH sequence: nil until the
// first one completes. A RESET does not clear it: the last complete table
// stays in use until the new one is complete. The Receiver never modifies a
// table it returned.
func (r *Receiver) Table() *Table { return r.table }

// Ready reports whether a sequence has completed, so that Table is usable.
func (r *Receiver) Ready() bool { return r.table != nil }

// Infinity returns the infinity of the last RESET (0 before any).
func (r *Receiver) Infinity() uint8 { return r.infinity }

func seqErr(format string, a ...any) error {
	return &SequenceError{Reason: fmt.Sprintf(format, a...)}
}

// Apply takes the next route-table message of the connection, a
// *protocol.RouteTableReset or *protocol.RouteTablePatch. It returns
// done=true when the message completed a PATCH sequence: Table then holds
// the new table. Any rule broken is an error wrapping ErrSequence (a
// *SequenceError) that says what was wrong; memory that would take the
// Budget over its limit is ErrBudget. The sequence in progress is then
// dropped and the last complete table kept.
func (r *Receiver) Apply(m protocol.Payload) (done bool, err error) {
	switch m := m.(type) {
	case *protocol.RouteTableReset:
		if m == nil {
			return false, seqErr("no message")
		}
		return false, r.reset(m)
	case *protocol.RouteTablePatch:
		if m == nil {
			return false, seqErr("no message")
		}
		done, err = r.patch(m)
		if err != nil {
			r.abort()
		}
		return done, err
	case nil:
		return false, seqErr("no message")
	}
	return false, seqErr("%T is not a route-table message", m)
}

func (r *Receiver) abort() {
	r.budget.give(r.workMem)
	r.next, r.work, r.workMem = 0, nil, 0
	r.releaseZ()
}

// releaseZ drops the compressed bytes.
func (r *Receiver) releaseZ() {
	r.budget.give(r.zMem())
	putScratch(r.z)
	r.z, r.zlen = nil, 0
}

// newWork allocates the table the sequence is applied to, once charged.
func (r *Receiver) newWork() error {
	n := tableMemory(r.bits)
	if !r.budget.take(n) {
		return ErrBudget
	}
	if r.base != nil {
		r.work = r.base.denseClone()
	} else {
		r.work = NewTable(r.bits)
	}
	r.workMem = n
	return nil
}

// appendZ buffers compressed bytes. The buffer, from the pool, has room
// for the whole sequence if its messages are alike, within limit; when
// they are not, it grows by doubling up to limit. Every buffer is charged
// (its capacity) before it is used.
func (r *Receiver) appendZ(data []byte, limit int) error {
	need := r.zlen + len(data)
	if r.z != nil && need <= cap(r.z.b) {
		r.z.b = append(r.z.b, data...)
		return nil
	}
	want := min(len(data)*int(r.seqSize), limit)
	if r.z != nil {
		want = min(max(2*cap(r.z.b), need), limit)
	}
	z := getScratch(want)
	if cap(z.b) > limit { // a larger pooled buffer would hold more than the limit
		z.b = make([]byte, 0, want)
	}
	if !r.budget.take(int64(cap(z.b))) {
		putScratch(z)
		return ErrBudget
	}
	if r.z != nil {
		z.b = append(z.b, r.z.b...)
		r.budget.give(r.zMem())
		putScratch(r.z)
	}
	r.z = z
	r.z.b = append(r.z.b, data...)
	return nil
}

func (r *Receiver) reset(m *protocol.RouteTableReset) error {
	r.abort()
	n := m.TableLength
	if n == 0 || n&(n-1) != 0 {
		return seqErr("table length %d is not a power of two", n)
	}
	nb := uint8(bits.TrailingZeros32(n))
	if nb > r.maxBits {
		return seqErr("table length %d is over the maximum of %d", m.TableLength, 1<<r.maxBits)
	}
	if m.Infinity < 1 {
		return seqErr("infinity %d", m.Infinity)
	}
	if !r.budget.fits(tableMemory(nb)) { // the table it announces could not be held
		return ErrBudget
	}
	r.haveReset, r.bits, r.infinity, r.base = true, nb, m.Infinity, nil
	return nil
}

func (r *Receiver) patch(p *protocol.RouteTablePatch) (bool, error) {
	if !r.haveReset {
		return false, seqErr("PATCH before RESET")
	}
	switch {
	case !validEntryBits(p.EntryBits):
		return false, seqErr("entry_bits %d not in {1,2,4,8}", p.EntryBits)
	case p.Compressor != protocol.QRPCompressorNone && p.Compressor != protocol.QRPCompressorZlib:
		return false, seqErr("unknown compressor %d", p.Compressor)
	case p.SeqSize == 0:
		return false, seqErr("seq_size 0")
	case p.SeqNo == 0 || p.SeqNo > p.SeqSize:
		return false, seqErr("seq_no %d out of 1..%d", p.SeqNo, p.SeqSize)
	}
	if r.next == 0 {
		if p.SeqNo != 1 {
			return false, seqErr("sequence starts at seq_no %d, not 1", p.SeqNo)
		}
		r.next, r.seqSize, r.compressor, r.entryBits = 1, p.SeqSize, p.Compressor, p.EntryBits
		r.releaseZ()
		r.rawLen, r.off = patchLen(1<<r.bits, p.EntryBits), 0
		if r.compressor == protocol.QRPCompressorNone {
			if err := r.newWork(); err != nil {
				return false, err
			}
		}
	} else {
		switch {
		case p.SeqNo != r.next:
			return false, seqErr("seq_no %d, expected %d", p.SeqNo, r.next)
		case p.SeqSize != r.seqSize:
			return false, seqErr("seq_size changed from %d to %d at seq_no %d", r.seqSize, p.SeqSize, p.SeqNo)
		case p.Compressor != r.compressor:
			return false, seqErr("compressor changed from %d to %d at seq_no %d", r.compressor, p.Compressor, p.SeqNo)
		case p.EntryBits != r.entryBits:
			return false, seqErr("entry_bits changed from %d to %d at seq_no %d", r.entryBits, p.EntryBits, p.SeqNo)
		}
	}
	if r.compressor == protocol.QRPCompressorNone {
		if err := r.applyRaw(p.Data); err != nil {
			return false, err
		}
	} else {
		limit := min(2*r.rawLen+1024, r.maxPatch)
		if r.zlen+len(p.Data) > limit {
			return false, seqErr("compressed patch over %d bytes for a table of %d slots", limit, 1<<r.bits)
		}
		if r.seqSize > 1 { // a one-message sequence is inflated from p.Data
			if err := r.appendZ(p.Data, limit); err != nil {
				return false, err
			}
		}
		r.zlen += len(p.Data)
		r.lastLen = len(p.Data)
	}
	if p.SeqNo < r.seqSize {
		r.next++
		return false, nil
	}
	if r.compressor == protocol.QRPCompressorZlib {
		if err := r.newWork(); err != nil {
			return false, err
		}
		src := p.Data
		if r.z != nil {
			src = r.z.b
		}
		err := r.inflate(src)
		r.releaseZ()
		if err != nil {
			return false, err
		}
	}
	if r.off != r.rawLen {
		return false, seqErr("%d-bit patch covers %d of the %d slots", r.entryBits, r.off*8/int(r.entryBits), r.work.Size())
	}
	r.work.clip()
	r.work.Compact()
	r.budget.give(r.tableMem + r.workMem - r.work.Bytes()) // the old table, and what Compact saved
	r.table, r.base, r.tableMem = r.work, r.work, r.work.Bytes()
	r.next, r.work, r.workMem = 0, nil, 0
	return true, nil
}

// inflate decompresses the sequence's zlib stream z into the table, never
// producing more than the table needs.
func (r *Receiver) inflate(z []byte) error {
	f := inflaters.Get().(*inflater)
	defer func() {
		f.src.Reset(nil) // keep no reference to z in the pool
		inflaters.Put(f)
	}()
	f.src.Reset(z) // a flate.Reader: zlib reads exactly the stream
	if f.zr == nil {
		zr, err := zlib.NewReader(&f.src)
		if err != nil {
			return zlibErr(err)
		}
		f.zr = zr
	} else if err := f.zr.(zlib.Resetter).Reset(&f.src, nil); err != nil {
		return zlibErr(err)
	}
	for {
		n, err := f.zr.Read(f.buf[:])
		if n > 0 {
			if aerr := r.applyRaw(f.buf[:n]); aerr != nil {
				return aerr
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return zlibErr(err)
		}
	}
	if left := f.src.Len(); left > 0 {
		if left >= r.lastLen && r.seqSize > 1 {
			return seqErr("zlib stream ends before the last PATCH message")
		}
		return seqErr("%d bytes after the end of the zlib stream", left)
	}
	return nil
}

func zlibErr(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return seqErr("truncated zlib stream")
	}
	return seqErr("bad zlib stream: %v", err)
}

// applyRaw applies uncompressed patch bytes at r.off.
func (r *Receiver) applyRaw(data []byte) error {
	if len(data) > r.rawLen-r.off {
		return seqErr("patch overflows the table of %d slots (%d-bit entries, %d bytes)", r.work.Size(), r.entryBits, r.rawLen)
	}
	r.work.applyPatch(r.off, data, r.entryBits)
	r.off += len(data)
	return nil
}

// applyPatch applies patch bytes whose first byte is byte off of the whole
// patch. Entries past the table (padding of the last byte) are ignored.
func (t *Table) applyPatch(off int, data []byte, eb uint8) {
	if eb == 1 {
		for i, b := range data {
			if b != 0 {
				s := (off + i) * 8 // the byte's slots stay within one word
				t.w[s>>6] ^= uint64(b) << (56 - s&63)
			}
		}
		return // bits past a table of fewer than 8 slots are cleared by clip
	}
	size := t.Size()
	epb := 8 / int(eb)
	mask := byte(1<<eb - 1)
	sign := byte(1 << (eb - 1))
	for i, b := range data {
		if b == 0 {
			continue
		}
		s := (off + i) * epb
		for k := 0; k < epb && s+k < size; k++ {
			v := b >> (8 - int(eb)*(k+1)) & mask
			switch {
			case v == 0:
			case v&sign != 0:
				t.Set(uint32(s + k))
			default:
				t.clear(uint32(s + k))
			}
		}
	}
}

// clip clears the bits past the table in a table of fewer than 64 slots.
func (t *Table) clip() {
	if n := t.Size(); n < 64 {
		t.w[0] &= ^uint64(0) << (64 - n)
	}
}
