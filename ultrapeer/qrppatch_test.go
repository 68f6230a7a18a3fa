package ultrapeer

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"testing"

	"gnutella/protocol"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func wire(t testing.TB, p protocol.Payload) []byte {
	t.Helper()
	b, err := p.AppendTo(nil)
	if err != nil {
		t.Fatalf("%v: %v", p, err)
	}
	return b
}

func decode(t testing.TB, b []byte) protocol.Payload {
	t.Helper()
	p, err := protocol.DecodeRouteTableUpdate(b)
	if err != nil {
		t.Fatalf("decode % x: %v", b, err)
	}
	return p
}

func inflateAll(t testing.TB, b []byte) []byte {
	t.Helper()
	zr, err := zlib.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The worked bytes of docs/protocol.md §4.4 (QRP spec appendix B): a table of 8 slots with
// "test" (slot 2) and infinity 7.
func TestWorkedBytesOut(t *testing.T) {
	tb := NewTable(3)
	tb.AddKeyword("test")
	if !tb.Has(2) || tb.Count() != 1 {
		t.Fatal(`"test" is not alone in slot 2`)
	}
	m := tb.Messages(7, 512)
	if len(m) != 2 {
		t.Fatalf("%d messages", len(m))
	}
	if got := wire(t, m[0]); !bytes.Equal(got, unhex(t, "00 08 00 00 00 07")) {
		t.Errorf("RESET % x", got)
	}
	// Compressing 4 bytes makes them longer: sent uncompressed.
	if got := wire(t, m[1]); !bytes.Equal(got, unhex(t, "01 01 01 00 04 00 a0 00 00")) {
		t.Errorf("4-bit PATCH % x", got)
	}
	m8, err := tb.Encode(nil, EncodeOptions{Infinity: 7, EntryBits: 8})
	if err != nil {
		t.Fatal(err)
	}
	if got := wire(t, m8[1]); !bytes.Equal(got, unhex(t, "01 01 01 00 08 00 00 fa 00 00 00 00 00")) {
		t.Errorf("8-bit PATCH % x", got)
	}
	mz, err := tb.Encode(nil, EncodeOptions{Infinity: 7, Compression: CompressAlways})
	if err != nil {
		t.Fatal(err)
	}
	got := wire(t, mz[1])
	if !bytes.Equal(got[:5], unhex(t, "01 01 01 01 04")) {
		t.Errorf("zlib PATCH header % x", got[:5])
	}
	if in := inflateAll(t, got[5:]); !bytes.Equal(in, unhex(t, "00 a0 00 00")) {
		t.Errorf("zlib PATCH inflates to % x", in)
	}
	// gtk-gnutella's values: infinity 2, present sent as -1.
	mg := tb.Messages(2, 512)
	if got := wire(t, mg[1]); !bytes.Equal(got, unhex(t, "01 01 01 00 04 00 f0 00 00")) {
		t.Errorf("gtk-style PATCH % x", got)
	}
	m1, _ := tb.Encode(nil, EncodeOptions{Infinity: 2, EntryBits: 1, Compression: CompressNever})
	if got := wire(t, m1[1]); !bytes.Equal(got, unhex(t, "01 01 01 00 01 20")) {
		t.Errorf("1-bit PATCH % x", got)
	}
}

func TestWorkedBytesIn(t *testing.T) {
	for _, patch := range []string{
		"01 01 01 00 04 00 a0 00 00",
		"01 01 01 01 04 78 9c 63 58 c0 c0 00 00 01 e4 00 a1",
		"01 01 01 00 08 00 00 fa 00 00 00 00 00",
	} {
		r := NewReceiver(21)
		if done, err := r.Apply(decode(t, unhex(t, "00 08 00 00 00 07"))); done || err != nil || r.Ready() || r.Table() != nil {
			t.Fatalf("RESET: %v %v", done, err)
		}
		done, err := r.Apply(decode(t, unhex(t, patch)))
		if !done || err != nil {
			t.Fatalf("%s: done %v err %v", patch, done, err)
		}
		tb := r.Table()
		if !r.Ready() || tb.Size() != 8 || tb.Count() != 1 || !tb.Has(2) || !tb.Matches([]string{"test"}, nil) || r.Infinity() != 7 {
			t.Errorf("%s: %v", patch, tb)
		}
	}
}

func randomTable(rng *rand.Rand, bits uint8, fill float64) *Table {
	tb := NewTable(bits)
	for i := 0; i < int(fill*float64(tb.Size())); i++ {
		tb.Set(uint32(rng.IntN(tb.Size())))
	}
	return tb
}

// feed sends messages to r over their wire form; it fails unless only the
// last one completes the sequence.
func feed(t testing.TB, r *Receiver, msgs []protocol.Payload) {
	t.Helper()
	for i, m := range msgs {
		done, err := r.Apply(decode(t, wire(t, m)))
		if err != nil {
			t.Fatalf("message %d/%d (%v): %v", i+1, len(msgs), m, err)
		}
		if done != (i == len(msgs)-1) {
			t.Fatalf("message %d/%d: done %v", i+1, len(msgs), done)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for bits := uint8(10); bits <= 17; bits++ {
		for _, fill := range []float64{0, 0.01, 0.3} {
			tb := randomTable(rng, bits, fill)
			for _, eb := range []uint8{4, 1, 8, 2} {
				for _, chunk := range []int{0, 1, 100, 512, 4096} {
					for _, comp := range []Compression{CompressAuto, CompressNever, CompressAlways} {
						inf := []uint8{1, 2, 7, 200}[rng.IntN(4)]
						msgs, err := tb.Encode(nil, EncodeOptions{Infinity: inf, EntryBits: eb, Chunk: chunk, Compression: comp})
						if err != nil {
							t.Fatal(err)
						}
						checkSequence(t, msgs, true, eb, chunk)
						r := NewReceiver(17)
						feed(t, r, msgs)
						if !r.Table().Equal(tb) {
							t.Fatalf("2^%d fill %v %d-bit chunk %d comp %d: table differs", bits, fill, eb, chunk, comp)
						}
					}
				}
			}
		}
	}
}

// checkSequence checks the framing of an encoded update.
func checkSequence(t *testing.T, msgs []protocol.Payload, reset bool, eb uint8, chunk int) {
	t.Helper()
	if reset {
		if _, ok := msgs[0].(*protocol.RouteTableReset); !ok {
			t.Fatalf("first message %v", msgs[0])
		}
		msgs = msgs[1:]
	}
	if len(msgs) == 0 || len(msgs) > 255 {
		t.Fatalf("%d PATCH messages", len(msgs))
	}
	if chunk <= 0 {
		chunk = DefaultChunk
	}
	total := 0
	for _, m := range msgs {
		total += len(m.(*protocol.RouteTablePatch).Data)
	}
	chunk = min(max(chunk, (total+254)/255), MaxChunk)
	for i, m := range msgs {
		p := m.(*protocol.RouteTablePatch)
		if int(p.SeqNo) != i+1 || int(p.SeqSize) != len(msgs) || p.EntryBits != eb {
			t.Fatalf("PATCH %d: %v", i, p)
		}
		if len(p.Data) > chunk || (i < len(msgs)-1 && len(p.Data) != chunk) {
			t.Fatalf("PATCH %d/%d: %d bytes with chunk %d", i+1, len(msgs), len(p.Data), chunk)
		}
	}
}

func TestPatchFrom(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, bits := range []uint8{3, 10, 14, 16} {
		prev := randomTable(rng, bits, 0.05)
		for _, eb := range []uint8{4, 1} {
			r := NewReceiver(21)
			first, _ := prev.Encode(nil, EncodeOptions{Infinity: 2, EntryBits: eb})
			feed(t, r, first)
			held := r.Table()
			heldCopy := held.Clone()
			cur := prev
			for step := 0; step < 5; step++ {
				next := cur.Clone()
				for i := 0; i < 1+cur.Size()/50; i++ { // add and remove slots
					s := uint32(rng.IntN(next.Size()))
					if next.Has(s) {
						next.clear(s)
					} else {
						next.Set(s)
					}
				}
				var msgs []protocol.Payload
				if eb == 4 {
					msgs = next.PatchFrom(cur, 7, 512)
				} else {
					msgs, _ = next.Encode(cur, EncodeOptions{Infinity: 2, EntryBits: 1, Chunk: 512})
				}
				if next.Equal(cur) {
					if msgs != nil {
						t.Fatal("patch between equal tables")
					}
					continue
				}
				checkSequence(t, msgs, false, eb, 512)
				feed(t, r, msgs)
				if !r.Table().Equal(next) {
					t.Fatalf("2^%d %d-bit step %d: table differs", bits, eb, step)
				}
				cur = next
			}
			if !held.Equal(heldCopy) {
				t.Fatal("the Receiver modified a table it had returned")
			}
		}
	}
	a := BuildTable(12, [][]string{{"zebra"}}, nil)
	if a.PatchFrom(a.Clone(), 7, 512) != nil {
		t.Error("equal tables give a patch")
	}
	// Another size: RESET and the whole table.
	b := BuildTable(13, [][]string{{"zebra"}}, nil)
	msgs := b.PatchFrom(a, 7, 512)
	if _, ok := msgs[0].(*protocol.RouteTableReset); !ok {
		t.Fatal("no RESET for a new size")
	}
	r := NewReceiver(21)
	feed(t, r, a.Messages(7, 512))
	if done, err := r.Apply(msgs[0]); done || err != nil || !r.Table().Equal(a) { // the old table stays
		t.Error("a RESET dropped the last complete table")
	}
	feed(t, r, msgs[1:])
	if !r.Table().Equal(b) {
		t.Error("resized table differs")
	}
	tb := NewTable(20)
	if p, m := tb.PatchFrom(nil, 7, 512), tb.Messages(7, 512); len(p) != len(m) || !bytes.Equal(wire(t, p[0]), wire(t, m[0])) {
		t.Error("PatchFrom(nil) is not Messages")
	}
}

// Large tables need more than 255 messages at the chunk size asked: the
// chunk grows.
func TestEncodeChunkGrows(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	tb := randomTable(rng, 20, 0.5)
	msgs, err := tb.Encode(nil, EncodeOptions{Infinity: 7, Chunk: 512, Compression: CompressNever})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 256 { // 512 KiB of 4-bit entries: 255 messages of 2057 bytes
		t.Errorf("%d messages", len(msgs))
	}
	r := NewReceiver(20)
	feed(t, r, msgs)
	if !r.Table().Equal(tb) {
		t.Error("table differs")
	}
	if _, err := NewTable(24).Encode(nil, EncodeOptions{Infinity: 7, EntryBits: 8, Compression: CompressNever}); err == nil {
		t.Error("16 MiB uncompressed patch encoded")
	}
	if _, err := tb.Encode(nil, EncodeOptions{Infinity: 0}); err == nil {
		t.Error("infinity 0 encoded")
	}
	if _, err := tb.Encode(nil, EncodeOptions{Infinity: 2, EntryBits: 3}); err == nil {
		t.Error("3-bit entries encoded")
	}
	mustPanic(t, "Messages infinity 0", func() { tb.Messages(0, 512) })
}

func zlibBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw := zlib.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func reset(n uint32, inf uint8) *protocol.RouteTableReset {
	return &protocol.RouteTableReset{TableLength: n, Infinity: inf}
}

func patch(no, size, comp, eb uint8, data []byte) *protocol.RouteTablePatch {
	return &protocol.RouteTablePatch{SeqNo: no, SeqSize: size, Compressor: comp, EntryBits: eb, Data: data}
}

// Every violation of docs/protocol.md §4.4 and §8.8 is an ErrSequence error that says what
// was wrong.
func TestReceiverViolations(t *testing.T) {
	raw4 := make([]byte, 512) // 4-bit patch of a 1024-slot table
	z4 := zlibBytes(raw4)
	for _, c := range []struct {
		name string
		msgs []protocol.Payload
		want string
	}{
		{"patch before reset", []protocol.Payload{patch(1, 1, 0, 4, raw4)}, "PATCH before RESET"},
		{"length not a power of two", []protocol.Payload{reset(1000, 7)}, "not a power of two"},
		{"length 0", []protocol.Payload{reset(0, 7)}, "not a power of two"},
		{"length over max", []protocol.Payload{reset(1<<17, 7)}, "over the maximum of 65536"},
		{"infinity 0", []protocol.Payload{reset(1024, 0)}, "infinity 0"},
		{"patch after a refused reset", []protocol.Payload{reset(1000, 7), patch(1, 1, 0, 4, raw4)}, "PATCH before RESET"},
		{"first seq_no 2", []protocol.Payload{reset(1024, 7), patch(2, 2, 0, 4, raw4[:256])}, "starts at seq_no 2"},
		{"seq_no skips", []protocol.Payload{reset(1024, 7), patch(1, 3, 0, 4, raw4[:100]), patch(3, 3, 0, 4, raw4[:100])}, "seq_no 3, expected 2"},
		{"seq_no repeats", []protocol.Payload{reset(1024, 7), patch(1, 3, 0, 4, raw4[:100]), patch(1, 3, 0, 4, raw4[:100])}, "seq_no 1, expected 2"},
		{"seq_size changes", []protocol.Payload{reset(1024, 7), patch(1, 2, 0, 4, raw4[:256]), patch(2, 3, 0, 4, raw4[:256])}, "seq_size changed from 2 to 3"},
		{"compressor changes", []protocol.Payload{reset(1024, 7), patch(1, 2, 0, 4, raw4[:256]), patch(2, 2, 1, 4, z4)}, "compressor changed from 0 to 1"},
		{"entry_bits changes", []protocol.Payload{reset(1024, 7), patch(1, 2, 0, 4, raw4[:256]), patch(2, 2, 0, 8, raw4[:256])}, "entry_bits changed from 4 to 8"},
		{"entry_bits 3", []protocol.Payload{reset(1024, 7), patch(1, 1, 0, 3, raw4)}, "entry_bits 3 not in"},
		{"entry_bits 0", []protocol.Payload{reset(1024, 7), patch(1, 1, 0, 0, raw4)}, "entry_bits 0 not in"},
		{"entry_bits 16", []protocol.Payload{reset(1024, 7), patch(1, 1, 0, 16, raw4)}, "entry_bits 16 not in"},
		{"compressor 2", []protocol.Payload{reset(1024, 7), patch(1, 1, 2, 4, raw4)}, "unknown compressor 2"},
		{"seq_size 0", []protocol.Payload{reset(1024, 7), patch(1, 0, 0, 4, raw4)}, "seq_size 0"},
		{"seq_no above seq_size", []protocol.Payload{reset(1024, 7), patch(3, 2, 0, 4, raw4)}, "seq_no 3 out of 1..2"},
		{"raw patch overflows", []protocol.Payload{reset(1024, 7), patch(1, 2, 0, 4, raw4), patch(2, 2, 0, 4, raw4[:1])}, "overflows the table of 1024 slots"},
		{"raw patch too short", []protocol.Payload{reset(1024, 7), patch(1, 1, 0, 4, raw4[:511])}, "covers 1022 of the 1024 slots"},
		{"zlib patch inflates past the table", []protocol.Payload{reset(1024, 7), patch(1, 1, 1, 4, zlibBytes(make([]byte, 513)))}, "overflows the table"},
		{"zlib patch too short", []protocol.Payload{reset(1024, 7), patch(1, 1, 1, 4, zlibBytes(make([]byte, 100)))}, "covers 200 of the 1024 slots"},
		{"truncated zlib", []protocol.Payload{reset(1024, 7), patch(1, 1, 1, 4, z4[:len(z4)-3])}, "truncated zlib stream"},
		{"zlib without its checksum", []protocol.Payload{reset(1024, 7), patch(1, 2, 1, 4, z4[:5]), patch(2, 2, 1, 4, z4[5:len(z4)-4])}, "truncated zlib stream"},
		{"bad zlib header", []protocol.Payload{reset(1024, 7), patch(1, 1, 1, 4, append([]byte{0x78, 0x00}, z4[2:]...))}, "bad zlib stream"},
		{"bad zlib checksum", []protocol.Payload{reset(1024, 7), patch(1, 1, 1, 4, append(z4[:len(z4)-1:len(z4)-1], z4[len(z4)-1]^1))}, "bad zlib stream"},
		{"raw deflate, not zlib", []protocol.Payload{reset(1024, 7), patch(1, 1, 1, 4, z4[2:])}, "bad zlib stream"},
		{"bytes after the zlib stream", []protocol.Payload{reset(1024, 7), patch(1, 1, 1, 4, append(z4[:len(z4):len(z4)], 0))}, "1 bytes after the end of the zlib stream"},
		{"zlib stream ends early", []protocol.Payload{reset(1024, 7), patch(1, 2, 1, 4, z4), patch(2, 2, 1, 4, []byte{1, 2, 3})}, "ends before the last PATCH"},
		{"compressed patch too large", []protocol.Payload{reset(1024, 7), patch(1, 2, 1, 4, make([]byte, 2000)), patch(2, 2, 1, 4, make([]byte, 2000))}, "compressed patch over 2048 bytes"},
		{"not a route-table message", []protocol.Payload{&protocol.Ping{}}, "not a route-table message"},
		{"nil", []protocol.Payload{nil}, "no message"},
		{"typed nil", []protocol.Payload{(*protocol.RouteTablePatch)(nil)}, "no message"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := NewReceiver(16)
			var err error
			for i, m := range c.msgs {
				_, err = r.Apply(m)
				if err != nil && i != len(c.msgs)-1 && !strings.Contains(c.name, "refused") {
					t.Fatalf("message %d: %v", i+1, err)
				}
			}
			var se *SequenceError
			if !errors.Is(err, ErrSequence) || !errors.As(err, &se) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want ErrSequence with %q", err, c.want)
			}
			if r.Ready() {
				t.Fatal("a table after a violation")
			}
		})
	}
}

// After a violation the last complete table is kept and the Receiver takes a
// new sequence from seq_no 1.
func TestReceiverRecovers(t *testing.T) {
	a := BuildTable(10, [][]string{{"zebraquokka"}}, nil)
	b := BuildTable(10, [][]string{{"platypus"}}, nil)
	r := NewReceiver(16)
	feed(t, r, a.Messages(7, 512))
	msgs := b.PatchFrom(a, 7, 100)
	if len(msgs) < 2 {
		msgs, _ = b.Encode(a, EncodeOptions{Infinity: 7, Chunk: 100, Compression: CompressNever})
	}
	if _, err := r.Apply(msgs[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Apply(msgs[0]); !errors.Is(err, ErrSequence) { // seq_no 1 again
		t.Fatalf("repeat: %v", err)
	}
	if !r.Table().Equal(a) {
		t.Fatal("a failed sequence changed the table")
	}
	if _, err := r.Apply(msgs[1]); !errors.Is(err, ErrSequence) { // no sequence in progress
		t.Fatalf("continuation after error: %v", err)
	}
	feed(t, r, msgs)
	if !r.Table().Equal(b) {
		t.Fatal("table after recovery differs")
	}
	// A RESET in the middle of a sequence drops it.
	if _, err := r.Apply(msgs[0]); err != nil {
		t.Fatal(err)
	}
	feed(t, r, a.Messages(7, 512))
	if !r.Table().Equal(a) {
		t.Fatal("table after mid-sequence RESET differs")
	}
}

// A zlib bomb: 8 MiB of zeros in about 8 KiB, sent for a table whose patch
// is 4 KiB. It is stopped at the table's end, and the Receiver allocates
// nowhere near the inflated size.
func TestReceiverZlibBomb(t *testing.T) {
	bomb := zlibBytes(make([]byte, 8<<20))
	r := NewReceiver(13)
	if _, err := r.Apply(reset(1<<13, 2)); err != nil {
		t.Fatal(err)
	}
	var chunks []protocol.Payload
	for i := 0; i < len(bomb); i += 4096 {
		chunks = append(chunks, patch(uint8(i/4096+1), uint8((len(bomb)+4095)/4096), 1, 4, bomb[i:min(i+4096, len(bomb))]))
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var err error
	for _, c := range chunks {
		if _, err = r.Apply(c); err != nil {
			break
		}
	}
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrSequence) || !strings.Contains(err.Error(), "overflows the table") {
		t.Fatalf("bomb of %d bytes: %v", len(bomb), err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 256<<10 {
		t.Errorf("allocated %d bytes for a 4 KiB patch", got)
	}
	t.Logf("bomb %d compressed bytes: %v; %d bytes allocated", len(bomb), err, after.TotalAlloc-before.TotalAlloc)
}

// gtkQRP returns the route-table messages of a recorded gtk-gnutella stream.
func gtkQRP(t *testing.T, name string) []protocol.Payload {
	t.Helper()
	msgs, err := readGtkQRP(name)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// readGtkQRP walks a recorded stream: handshake blocks end with an empty
// line, then 23-byte headers follow.
func readGtkQRP(name string) ([]protocol.Payload, error) {
	b, err := os.ReadFile("../protocol/testdata/gtk-gnutella/" + name)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReader(bytes.NewReader(b))
	blocks := 0
	for {
		peek, _ := br.Peek(8)
		if !bytes.Equal(peek, []byte("GNUTELLA")) {
			break
		}
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return nil, err
			}
			if line == "\r\n" {
				break
			}
		}
		blocks++
	}
	if blocks == 0 {
		return nil, errors.New("no handshake block")
	}
	rd := protocol.NewReader(br, protocol.Limits{})
	var out []protocol.Payload
	for {
		m, err := rd.ReadMessage()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if m.Header.Type == protocol.TypeRouteTable {
			if m.Header.TTL != 1 || m.Header.Hops != 0 {
				return nil, fmt.Errorf("QRP message with TTL %d hops %d", m.Header.TTL, m.Header.Hops)
			}
			out = append(out, m.Payload)
		}
	}
}

// The real thing: the tables gtk-gnutella 1.2.3 sent. Its leaf first sent
// RESET (16384 slots, infinity 2) and a 4-bit zlib PATCH for its one file,
// platypus_beta_only_on_b.txt; after downloading zebraquokka_interop_alpha.txt
// from the ultrapeer it sent a 1-bit (XOR) zlib PATCH. The tables are exactly
// what gtk-gnutella's rule gives for those names (gtkNameKeywords), which
// checks the hash, the 4-bit and the 1-bit decoding at once.
func TestGtkGnutellaTables(t *testing.T) {
	msgs := gtkQRP(t, "leaf-to-ultrapeer.bin")
	if len(msgs) != 3 {
		t.Fatalf("%d QRP messages: %v", len(msgs), msgs)
	}
	if rs, ok := msgs[0].(*protocol.RouteTableReset); !ok || rs.TableLength != 16384 || rs.Infinity != 2 {
		t.Fatalf("first message %v", msgs[0])
	}
	if p, ok := msgs[1].(*protocol.RouteTablePatch); !ok || p.EntryBits != 4 || p.Compressor != protocol.QRPCompressorZlib || p.SeqSize != 1 {
		t.Fatalf("second message %v", msgs[1])
	}
	if p, ok := msgs[2].(*protocol.RouteTablePatch); !ok || p.EntryBits != 1 || p.Compressor != protocol.QRPCompressorZlib {
		t.Fatalf("third message %v", msgs[2])
	}
	platypus := []string{"platypus", "beta", "only", "on", "b", "txt"}
	zebra := []string{"zebraquokka", "interop", "alpha", "txt"}
	gtkTable := func(names ...[]string) *Table {
		tb := NewTable(14)
		for _, n := range names {
			for _, w := range gtkNameKeywords(n) {
				tb.AddKeyword(w)
			}
		}
		return tb
	}

	r := NewReceiver(21)
	for i, m := range msgs[:2] {
		if done, err := r.Apply(m); err != nil || done != (i == 1) {
			t.Fatalf("message %d: done %v err %v", i+1, done, err)
		}
	}
	first := r.Table()
	if first.Size() != 16384 || !first.Equal(gtkTable(platypus)) {
		t.Fatalf("first table %v, want gtk-gnutella's rule for %q", first, platypus)
	}
	if !first.Matches(platypus, nil) || first.Matches([]string{"zebraquokka"}, nil) {
		t.Error("first table matches wrongly")
	}
	if done, err := r.Apply(msgs[2]); !done || err != nil {
		t.Fatalf("1-bit update: done %v err %v", done, err)
	}
	tb := r.Table()
	if !tb.Equal(gtkTable(platypus, zebra)) {
		t.Fatalf("updated table %v, want gtk-gnutella's rule for both names", tb)
	}
	t.Logf("leaf table: %v", tb)
	for _, q := range [][]string{
		zebra, {"zebraquokka"}, {"zebraquokka", "alpha"}, {"interop"}, {"alpha", "txt"}, platypus, {"platypus"},
		{"ZebraQuokka", "Interop"}, {"zebraquokka", "of"}, // case, short words
	} {
		if !tb.Matches(q, nil) {
			t.Errorf("gtk-gnutella's table does not match %q", q)
		}
	}
	for _, q := range [][]string{{"emu"}, {"red", "kangaroo"}, {"wallaby"}, {"nonsense"}, {"xyzzy", "zebraquokka"}, {"on"}, {"b"}} {
		if tb.Matches(q, nil) {
			t.Errorf("gtk-gnutella's table matches %q", q)
		}
	}
	if first.Matches(zebra, nil) {
		t.Error("the first table was modified by the update")
	}

	// The ultrapeer's table to another leaf: its own files and its leaf's.
	up := gtkQRP(t, "ultrapeer-to-other-leaf-1.bin")
	r = NewReceiver(21)
	feed(t, r, up)
	if !r.Table().Matches(zebra, nil) || !r.Table().Matches(platypus, nil) || r.Table().Matches([]string{"nonsense"}, nil) {
		t.Errorf("ultrapeer's table %v", r.Table())
	}
	if !r.Table().Scale(16).Matches(zebra, nil) || !r.Table().Scale(10).Matches(platypus, nil) {
		t.Error("scaled gtk-gnutella table lost words")
	}

	// Our own table for the same names is a superset of gtk-gnutella's,
	// except for its words under 3 bytes, and round-trips to it.
	ours := BuildTable(14, [][]string{platypus, zebra}, nil)
	missing := 0
	tb.eachSet(func(s uint32) {
		if !ours.Has(s) {
			missing++
		}
	})
	if missing != 2 { // "on" and "b"
		t.Errorf("%d of gtk-gnutella's slots missing from ours", missing)
	}
}

// TestPooledBuffers: Encode and Receiver work in pooled buffers, zlib
// writers and readers. The messages Encode returns must stay as they were
// while other tables are encoded and received (nothing in them is pooled
// memory), and Receivers interleaving their sequences must not see each
// other's bytes.
func TestPooledBuffers(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	type kept struct {
		tb   *Table
		msgs []protocol.Payload
		wire [][]byte
	}
	var all []kept
	for _, bits := range []uint8{8, 16} {
		for _, comp := range []Compression{CompressAuto, CompressAlways, CompressNever} {
			tb := randomTable(rng, bits, 0.05)
			msgs, err := tb.Encode(nil, EncodeOptions{Infinity: 7, Chunk: 512, Compression: comp})
			if err != nil {
				t.Fatal(err)
			}
			k := kept{tb: tb, msgs: msgs}
			for _, m := range msgs {
				k.wire = append(k.wire, wire(t, m))
			}
			all = append(all, k)
		}
	}
	// Churn the pools from several goroutines.
	done := make(chan struct{})
	for g := 0; g < 4; g++ {
		go func(seed uint64) {
			defer func() { done <- struct{}{} }()
			rng := rand.New(rand.NewPCG(seed, 1))
			for i := 0; i < 20; i++ {
				tb := randomTable(rng, 16, rng.Float64()/4)
				msgs := tb.Messages(7, 1024)
				r := NewReceiver(16)
				for _, m := range msgs {
					if _, err := r.Apply(m); err != nil {
						t.Error(err)
						return
					}
				}
				if !r.Table().Equal(tb) {
					t.Error("churn: table differs")
				}
			}
		}(uint64(g))
	}
	for g := 0; g < 4; g++ {
		<-done
	}
	// Receivers with sequences in progress at the same time.
	rs := make([]*Receiver, len(all))
	for i := range rs {
		rs[i] = NewReceiver(16)
	}
	for step := 0; ; step++ {
		more := false
		for i, k := range all {
			if step >= len(k.msgs) {
				continue
			}
			more = true
			if !bytes.Equal(wire(t, k.msgs[step]), k.wire[step]) {
				t.Fatalf("table %d message %d changed after other encodes", i, step+1)
			}
			fin, err := rs[i].Apply(decode(t, k.wire[step]))
			if err != nil {
				t.Fatalf("table %d message %d: %v", i, step+1, err)
			}
			if fin != (step == len(k.msgs)-1) {
				t.Fatalf("table %d message %d: done %v", i, step+1, fin)
			}
		}
		if !more {
			break
		}
	}
	for i, k := range all {
		if !rs[i].Table().Equal(k.tb) {
			t.Fatalf("table %d differs after interleaved receiving", i)
		}
	}
}
