package ultrapeer

import (
	"encoding/binary"
	"runtime"
	"testing"

	"gnutella/protocol"
)

// fuzzMessages turns fuzz input into a maximum table size and route-table
// payloads. After the first byte (maxBits), records:
//
//	0 e inf                      RESET of 1<<(e%32) slots when e < 0x80, else e slots
//	1 no size comp bits n:2 data PATCH built directly (no framing checks)
//	2 n data                     a wire payload through protocol.DecodeRouteTableUpdate
func fuzzMessages(b []byte) (uint8, []protocol.Payload) {
	if len(b) == 0 {
		return 0, nil
	}
	maxBits := b[0] % 17
	b = b[1:]
	var out []protocol.Payload
	for len(b) > 0 {
		k := b[0] % 3
		b = b[1:]
		switch k {
		case 0:
			if len(b) < 2 {
				return maxBits, out
			}
			n := uint32(b[0])
			if b[0] < 0x80 {
				n = 1 << (b[0] % 32)
			}
			out = append(out, &protocol.RouteTableReset{TableLength: n, Infinity: b[1]})
			b = b[2:]
		case 1:
			if len(b) < 6 {
				return maxBits, out
			}
			n := min(int(binary.LittleEndian.Uint16(b[4:])), len(b)-6)
			out = append(out, &protocol.RouteTablePatch{SeqNo: b[0], SeqSize: b[1], Compressor: b[2], EntryBits: b[3], Data: b[6 : 6+n]})
			b = b[6+n:]
		case 2:
			if len(b) < 1 {
				return maxBits, out
			}
			n := min(int(b[0]), len(b)-1)
			if p, err := protocol.DecodeRouteTableUpdate(b[1 : 1+n]); err == nil {
				out = append(out, p)
			}
			b = b[1+n:]
		}
	}
	return maxBits, out
}

// fuzzEncode is the inverse of fuzzMessages, for seeds.
func fuzzEncode(maxBits uint8, msgs []protocol.Payload) []byte {
	b := []byte{maxBits}
	for _, m := range msgs {
		switch m := m.(type) {
		case *protocol.RouteTableReset:
			e := byte(0)
			for 1<<e < m.TableLength {
				e++
			}
			b = append(b, 0, e, m.Infinity)
		case *protocol.RouteTablePatch:
			b = append(b, 1, m.SeqNo, m.SeqSize, m.Compressor, m.EntryBits)
			b = binary.LittleEndian.AppendUint16(b, uint16(len(m.Data)))
			b = append(b, m.Data...)
		}
	}
	return b
}

// FuzzReceiver: no sequence of route-table messages makes the Receiver
// panic, return an error that is not ErrSequence, keep a table larger than
// its limit, or allocate more than a bound set by the table size (never by
// what the patch claims or inflates to).
func FuzzReceiver(f *testing.F) {
	for bits := uint8(0); bits <= 12; bits += 3 {
		tb := NewTable(bits)
		for i := 0; i < tb.Size()/8; i++ {
			tb.Set(uint32(i * 7 % tb.Size()))
		}
		for _, eb := range []uint8{1, 2, 4, 8} {
			for _, c := range []Compression{CompressNever, CompressAlways} {
				m, _ := tb.Encode(nil, EncodeOptions{Infinity: 7, EntryBits: eb, Chunk: 64, Compression: c})
				next := tb.Clone()
				next.Set(0)
				next.clear(uint32(tb.Size() - 1))
				if u, _ := next.Encode(tb, EncodeOptions{Infinity: 7, EntryBits: eb, Chunk: 64, Compression: c}); u != nil {
					m = append(m, u...)
				}
				f.Add(fuzzEncode(bits+1, m))
			}
		}
	}
	f.Add([]byte{16, 2, 6, 0, 8, 0, 0, 0, 7, 2, 9, 1, 1, 1, 0, 4, 0, 0xa0, 0, 0})
	for _, name := range []string{"leaf-to-ultrapeer.bin", "ultrapeer-to-other-leaf-1.bin"} {
		if msgs, err := readGtkQRP(name); err == nil {
			f.Add(fuzzEncode(16, msgs))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		maxBits, msgs := fuzzMessages(b)
		// a budget that a table of the largest size fits, a copy sometimes not
		budget := NewBudget(tableMemory(maxBits) + int64(len(b))*16)
		r := NewLimitedReceiver(ReceiverLimits{MaxBits: maxBits, Budget: budget})
		limit := uint64(1) << maxBits // bytes of an 8-bit patch of the largest table
		bound := 6*limit + 256<<10    // table, copy, compressed buffer (2×+1 KiB), zlib reader and buffer
		var before, after runtime.MemStats
		for _, m := range msgs {
			runtime.ReadMemStats(&before)
			done, err := r.Apply(m)
			runtime.ReadMemStats(&after)
			if got := after.TotalAlloc - before.TotalAlloc; got > bound {
				t.Fatalf("Apply(%v) allocated %d bytes, bound %d", m, got, bound)
			}
			if held, used := r.Held(), budget.InUse(); held != used || used > budget.Limit() {
				t.Fatalf("after Apply(%v): held %d, budget in use %d of %d", m, held, used, budget.Limit())
			}
			if err != nil {
				if _, ok := err.(*SequenceError); !ok && err != ErrBudget {
					t.Fatalf("error %v is neither a *SequenceError nor ErrBudget", err)
				}
				continue
			}
			if done {
				tb := r.Table()
				if tb == nil || tb.Bits() > maxBits {
					t.Fatalf("done with table %v, max 2^%d", tb, maxBits)
				}
				if tb.Size() <= 1024 {
					n := 0
					for s := 0; s < tb.Size(); s++ {
						if tb.Has(uint32(s)) {
							n++
						}
					}
					if n != tb.Count() {
						t.Fatalf("Count %d, %d slots present", tb.Count(), n)
					}
				}
			}
		}
		r.Release()
		if r.Held() != 0 || budget.InUse() != 0 {
			t.Fatalf("after Release: held %d, budget in use %d", r.Held(), budget.InUse())
		}
	})
}
