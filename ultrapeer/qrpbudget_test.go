package ultrapeer

import (
	"errors"
	"math/rand/v2"
	"testing"

	"gnutella/protocol"
)

// unfinishedAttack is the QRP memory-pinning attack: a RESET for a table of
// 2^bits slots and the first 254 of the 255 zlib PATCH messages of a real
// table's patch, never the last.
func unfinishedAttack(t testing.TB, rng *rand.Rand, bits uint8) []protocol.Payload {
	t.Helper()
	tb := randomTable(rng, bits, 0.01)
	whole, err := tb.Encode(nil, EncodeOptions{Infinity: 2, Compression: CompressAlways})
	if err != nil {
		t.Fatal(err)
	}
	var data []byte
	for _, m := range whole[1:] {
		data = append(data, m.(*protocol.RouteTablePatch).Data...)
	}
	msgs := []protocol.Payload{whole[0]}
	chunk := (len(data) + 254) / 255
	for i := 0; i < 254; i++ {
		msgs = append(msgs, &protocol.RouteTablePatch{
			SeqNo: uint8(i + 1), SeqSize: 255, Compressor: protocol.QRPCompressorZlib, EntryBits: 4,
			Data: data[i*chunk : (i+1)*chunk],
		})
	}
	return msgs
}

// An unfinished sequence for the largest table holds only its compressed
// bytes, no table, and everything it held goes back to the budget on
// Release.
func TestUnfinishedSequenceHoldsOnlyCompressedBytes(t *testing.T) {
	b := NewBudget(64 << 20)
	r := NewLimitedReceiver(ReceiverLimits{MaxBits: 21, Budget: b})
	for _, m := range unfinishedAttack(t, rand.New(rand.NewPCG(1, 2)), 21) {
		if done, err := r.Apply(m); done || err != nil {
			t.Fatalf("%v: done %v err %v", m, done, err)
		}
	}
	if !r.Pending() {
		t.Error("254 of 255 messages: not pending")
	}
	held := r.Held()
	if held <= 0 || held > DefaultMaxPatchBytes || held >= tableMemory(21) || b.InUse() != held {
		t.Errorf("held %d, budget in use %d: want compressed bytes only, at most %d", held, b.InUse(), DefaultMaxPatchBytes)
	}
	r.Release()
	if r.Held() != 0 || b.InUse() != 0 || r.Pending() {
		t.Errorf("after Release: held %d, budget %d, pending %v", r.Held(), b.InUse(), r.Pending())
	}
}

// Compressed bytes beyond MaxPatchBytes are a sequence error, and the
// buffer is dropped.
func TestMaxPatchBytes(t *testing.T) {
	b := NewBudget(64 << 20)
	r := NewLimitedReceiver(ReceiverLimits{MaxBits: 21, MaxPatchBytes: 10000, Budget: b})
	if _, err := r.Apply(reset(1<<21, 2)); err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, 4000)
	var err error
	for i := 1; i <= 3 && err == nil; i++ {
		_, err = r.Apply(patch(uint8(i), 255, protocol.QRPCompressorZlib, 4, junk))
		if i < 3 && err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if !errors.Is(err, ErrSequence) {
		t.Fatalf("12000 compressed bytes over a limit of 10000: %v", err)
	}
	if r.Held() != 0 || b.InUse() != 0 {
		t.Errorf("after the error: held %d, budget %d", r.Held(), b.InUse())
	}
}

// Receivers sharing a budget: a RESET whose table would not fit is refused
// with ErrBudget, as is a buffer or a table that would go over; complete
// tables stay charged until Release, and the budget comes back to 0.
func TestBudgetSharedByReceivers(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	table := tableMemory(16)
	b := NewBudget(2*table + 1024)
	lim := ReceiverLimits{MaxBits: 21, Budget: b}
	r1, r2, r3 := NewLimitedReceiver(lim), NewLimitedReceiver(lim), NewLimitedReceiver(lim)
	raw := func(tb, prev *Table) []protocol.Payload { // uncompressed: the table is allocated first
		m, err := tb.Encode(prev, EncodeOptions{Infinity: 7, Chunk: 512, Compression: CompressNever})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	feed(t, r1, raw(randomTable(rng, 16, 0.1), nil))
	if r1.Held() != table || b.InUse() != table {
		t.Fatalf("one table of 2^16: held %d, budget %d, want %d", r1.Held(), b.InUse(), table)
	}
	if _, err := r2.Apply(reset(1<<21, 7)); !errors.Is(err, ErrBudget) {
		t.Errorf("RESET of 2^21 slots with %d bytes left: %v", b.Limit()-b.InUse(), err)
	}
	feed(t, r2, raw(randomTable(rng, 16, 0.1), nil))
	if b.InUse() != 2*table {
		t.Fatalf("two tables: budget %d", b.InUse())
	}
	msgs := raw(randomTable(rng, 16, 0.1), r1.Table())
	if _, err := r1.Apply(msgs[0]); !errors.Is(err, ErrBudget) {
		t.Errorf("update needing a copy of 2^16 slots with %d bytes left: %v", b.Limit()-b.InUse(), err)
	}
	if r1.Table() == nil || b.InUse() != 2*table {
		t.Errorf("after a refused update: table %v, budget %d", r1.Table(), b.InUse())
	}
	feed(t, r3, randomTable(rng, 6, 0.1).Messages(7, 512))
	r1.Release()
	r2.Release()
	r3.Release()
	if b.InUse() != 0 {
		t.Errorf("all released: budget %d", b.InUse())
	}
}

// An update replaces the table's charge rather than adding to it.
func TestBudgetAcrossUpdates(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	b := NewBudget(1 << 20)
	r := NewLimitedReceiver(ReceiverLimits{MaxBits: 21, Budget: b})
	prev := randomTable(rng, 17, 0.05)
	feed(t, r, prev.Messages(7, 4096))
	for i := 0; i < 5; i++ {
		next := randomTable(rng, 17, 0.05)
		feed(t, r, next.PatchFrom(prev, 7, 4096))
		prev = next
		if !r.Table().Equal(next) || b.InUse() != tableMemory(17) || r.Pending() {
			t.Fatalf("update %d: budget %d, want %d", i, b.InUse(), tableMemory(17))
		}
	}
	// a RESET keeps the last table (and its charge) until the new one is complete
	feed(t, r, randomTable(rng, 18, 0.05).Messages(7, 4096))
	if b.InUse() != tableMemory(18) {
		t.Errorf("after a RESET to 2^18: budget %d, want %d", b.InUse(), tableMemory(18))
	}
}

// An uncompressed sequence needs its table from the first message: for the
// largest table that is 256 KiB, the most one unfinished update can hold
// (a zlib one holds at most MaxPatchBytes), and a RESET alone holds nothing.
func TestUnfinishedUncompressedSequenceHoldsOneTable(t *testing.T) {
	b := NewBudget(64 << 20)
	r := NewLimitedReceiver(ReceiverLimits{MaxBits: 21, Budget: b})
	if _, err := r.Apply(reset(1<<21, 2)); err != nil || r.Held() != 0 || !r.Pending() {
		t.Fatalf("RESET: err %v, held %d, pending %v", err, r.Held(), r.Pending())
	}
	if _, err := r.Apply(patch(1, 255, protocol.QRPCompressorNone, 4, make([]byte, 4096))); err != nil {
		t.Fatal(err)
	}
	if r.Held() != 256<<10 || b.InUse() != 256<<10 {
		t.Errorf("first uncompressed PATCH of 2^21 slots: held %d, budget %d, want %d", r.Held(), b.InUse(), 256<<10)
	}
	r.Release()
	if b.InUse() != 0 {
		t.Errorf("after Release: budget %d", b.InUse())
	}
}

// A leaf's table with a few hundred slots present is kept, and charged, as
// its slot list: 2 bytes a slot, not the 8 KiB of 2^16 bits. Once a
// sequence completes, nothing of it is held but the table (the compressed
// bytes of a multi-message zlib sequence and the dense copy it was applied
// to are gone), and an update patches the sparse table as it would the
// dense one.
func TestSparseTableHeldAsSlots(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	b := NewBudget(1 << 20)
	r := NewLimitedReceiver(ReceiverLimits{MaxBits: 21, Budget: b})
	var prev *Table
	for i := range 4 {
		tb := randomTable(rng, 16, 150.0/65536)
		var msgs []protocol.Payload
		var err error
		if prev == nil {
			// 1-bit patches compress badly: several messages, buffered
			msgs, err = tb.Encode(nil, EncodeOptions{Infinity: 2, EntryBits: 1, Chunk: 64, Compression: CompressAlways})
		} else {
			msgs, err = tb.Encode(prev, EncodeOptions{Infinity: 7, Chunk: 512})
		}
		if err != nil {
			t.Fatal(err)
		}
		if prev == nil && len(msgs) < 3 {
			t.Fatalf("a %d-message sequence: want several", len(msgs)-1)
		}
		feed(t, r, msgs)
		got := r.Table()
		if !got.Equal(tb) || !tb.Equal(got) {
			t.Fatalf("update %d: received table differs", i)
		}
		want := int64(2 * tb.Count())
		if got.Bytes() != want || r.Held() != want || b.InUse() != want || r.z != nil || r.work != nil {
			t.Fatalf("update %d: %d slots, table %d bytes, held %d, budget %d (compressed bytes %v, work %v), want %d",
				i, tb.Count(), got.Bytes(), r.Held(), b.InUse(), r.z != nil, r.work != nil, want)
		}
		prev = tb
	}
	r.Release()
	if b.InUse() != 0 {
		t.Errorf("after Release: budget %d", b.InUse())
	}
}
