package protocol

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

func TestGGEPLengthVectors(t *testing.T) {
	// docs/protocol.md §1.10.
	tests := []struct {
		n    int
		wire []byte
	}{
		{0, []byte{0x40}},
		{63, []byte{0x7F}},
		{64, []byte{0x81, 0x40}},
		{4095, []byte{0xBF, 0x7F}},
		{4096, []byte{0x81, 0x80, 0x40}},
		{262143, []byte{0xBF, 0xBF, 0x7F}},
	}
	for _, tt := range tests {
		if got := AppendGGEPLength([]byte{0xEE}, tt.n); !bytes.Equal(got, append([]byte{0xEE}, tt.wire...)) {
			t.Errorf("AppendGGEPLength(%d) = % x, want EE % x", tt.n, got, tt.wire)
		}
		n, size, err := ParseGGEPLength(append(append([]byte{}, tt.wire...), 0xAA, 0xBB))
		if err != nil || n != tt.n || size != len(tt.wire) {
			t.Errorf("ParseGGEPLength(% x) = %d, %d, %v; want %d, %d", tt.wire, n, size, err, tt.n, len(tt.wire))
		}
	}
}

func TestGGEPLengthRoundTripsEveryValue(t *testing.T) {
	var buf []byte
	for n := 0; n <= MaxGGEPLength; n++ {
		buf = AppendGGEPLength(buf[:0], n)
		want := 3
		switch {
		case n < 64:
			want = 1
		case n < 4096:
			want = 2
		}
		got, size, err := ParseGGEPLength(buf)
		if err != nil || got != n || size != want || len(buf) != want {
			t.Fatalf("length %d: % x parses as %d, %d, %v", n, buf, got, size, err)
		}
	}
}

func TestParseGGEPLengthRejects(t *testing.T) {
	tests := []struct {
		name   string
		in     []byte
		kind   error
		offset int
	}{
		{"empty", []byte{}, ErrTruncated, 0},
		{"both flags", []byte{0xC0}, ErrBadGGEP, 0},
		{"both flags with value", []byte{0xFF}, ErrBadGGEP, 0},
		{"neither flag", []byte{0x3F}, ErrBadGGEP, 0},
		{"zero byte", []byte{0x00}, ErrBadGGEP, 0},
		{"second byte has both", []byte{0x81, 0xC1}, ErrBadGGEP, 1},
		{"second byte has neither", []byte{0x81, 0x01}, ErrBadGGEP, 1},
		{"third byte has neither", []byte{0x81, 0x81, 0x00}, ErrBadGGEP, 2},
		{"fourth length byte", []byte{0x81, 0x81, 0x81, 0x40}, ErrBadGGEP, 2},
		{"ends after a continued byte", []byte{0x81}, ErrTruncated, 1},
		{"ends after two continued bytes", []byte{0x81, 0x80}, ErrTruncated, 2},
	}
	for _, tt := range tests {
		_, _, err := ParseGGEPLength(tt.in)
		if !errors.Is(err, tt.kind) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.kind)
			continue
		}
		if off := ErrorOffset(err); off != tt.offset {
			t.Errorf("%s: offset %d, want %d", tt.name, off, tt.offset)
		}
	}
}

func TestAppendGGEPLengthPanicsOutOfRange(t *testing.T) {
	for _, n := range []int{-1, MaxGGEPLength + 1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("AppendGGEPLength(%d) did not panic", n)
				}
			}()
			AppendGGEPLength(nil, n)
		}()
	}
}

func TestDecodeGGEPBHExample(t *testing.T) {
	wire := []byte{0xC3, 0x82, 0x42, 0x48, 0x40} // docs/protocol.md §1.10
	g, n, err := DecodeGGEP(append(append([]byte{}, wire...), 0x1C, 0x00))
	if err != nil || n != len(wire) {
		t.Fatalf("DecodeGGEP = %v, %d, %v", g, n, err)
	}
	if len(g) != 1 || g[0].ID != "BH" || len(g[0].Data) != 0 || g[0].COBS || g[0].Deflate {
		t.Fatalf("decoded %+v", g)
	}
	if got, err := g.AppendTo(nil); err != nil || !bytes.Equal(got, wire) {
		t.Fatalf("AppendTo = % x, %v; want % x", got, err, wire)
	}
	fresh, err := GGEP{{ID: "BH"}}.AppendTo([]byte{0x01})
	if err != nil || !bytes.Equal(fresh, append([]byte{0x01}, wire...)) {
		t.Fatalf("fresh BH block = % x, %v; want 01 % x", fresh, err, wire)
	}
}

// ggepTestExt builds the wire bytes of one extension by hand.
func ggepTestExt(flags byte, id string, lengthBytes []byte, data []byte) []byte {
	b := append([]byte{flags | byte(len(id))}, id...)
	b = append(b, lengthBytes...)
	return append(b, data...)
}

func ggepTestZlib(t testing.TB, data []byte) []byte {
	t.Helper()
	var zb bytes.Buffer
	zw, err := zlib.NewWriterLevel(&zb, zlib.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return zb.Bytes()
}

func ggepTestBlock(exts ...[]byte) []byte {
	b := []byte{GGEPMagic}
	for i, e := range exts {
		if i == len(exts)-1 {
			e = append([]byte{e[0] | 0x80}, e[1:]...)
		}
		b = append(b, e...)
	}
	return b
}

func TestDecodeGGEPRejects(t *testing.T) {
	many := func(k int) []byte {
		exts := make([][]byte, k)
		for i := range exts {
			exts[i] = ggepTestExt(0, "A", []byte{0x40}, nil)
		}
		return ggepTestBlock(exts...)
	}
	ok := ggepTestExt(0, "OK", []byte{0x41}, []byte{'x'}) // 5 bytes, at offset 1
	validZ := ggepTestZlib(t, []byte("hello, hello, hello"))
	tests := []struct {
		name   string
		in     []byte
		kind   error
		offset int
	}{
		{"empty input", nil, ErrTruncated, 0},
		{"no magic", []byte{0xC2, 0x82, 0x42, 0x48, 0x40}, ErrBadGGEP, 0},
		{"magic only", []byte{0xC3}, ErrTruncated, 1},
		{"reserved flag 0x10", []byte{0xC3, 0x92, 0x42, 0x48, 0x40}, ErrBadGGEP, 1},
		{"reserved flag in second extension", ggepTestBlock(ok, ggepTestExt(0x10, "BH", []byte{0x40}, nil)), ErrBadGGEP, 6},
		{"ID length 0", []byte{0xC3, 0x80, 0x40}, ErrBadGGEP, 1},
		{"ID byte 0x00", []byte{0xC3, 0x82, 0x42, 0x00, 0x40}, ErrBadGGEP, 3},
		{"ID byte 0x01", []byte{0xC3, 0x82, 0x01, 0x48, 0x40}, ErrBadGGEP, 2},
		{"ID byte 0x7F", []byte{0xC3, 0x82, 0x42, 0x7F, 0x40}, ErrBadGGEP, 3},
		{"ID byte 0xC3", []byte{0xC3, 0x82, 0xC3, 0x48, 0x40}, ErrBadGGEP, 2},
		{"ID past the end", []byte{0xC3, 0x83, 0x42, 0x48}, ErrTruncated, 4},
		{"length with both flags", []byte{0xC3, 0x82, 0x42, 0x48, 0xC0}, ErrBadGGEP, 4},
		{"length with neither flag", []byte{0xC3, 0x82, 0x42, 0x48, 0x00}, ErrBadGGEP, 4},
		{"second length byte with neither flag", []byte{0xC3, 0x82, 0x42, 0x48, 0x81, 0x01}, ErrBadGGEP, 5},
		{"fourth length byte", []byte{0xC3, 0x82, 0x42, 0x48, 0x81, 0x81, 0x81, 0x40}, ErrBadGGEP, 6},
		{"length missing", []byte{0xC3, 0x82, 0x42, 0x48}, ErrTruncated, 4},
		{"length past the buffer", []byte{0xC3, 0x82, 0x42, 0x48, 0x43, 0x01, 0x02}, ErrTruncated, 4},
		{"2-byte length past the buffer", append([]byte{0xC3, 0x82, 0x42, 0x48, 0x81, 0x40}, make([]byte, 63)...), ErrTruncated, 4},
		{"block without the last flag", append([]byte{0xC3}, ok...), ErrTruncated, 6},
		{"33 extensions", many(33), ErrBadGGEP, 1 + 32*3},
		{"COBS data empty", ggepTestBlock(ggepTestExt(0x40, "C", []byte{0x40}, nil)), ErrBadGGEP, 4},
		{"COBS zero code", ggepTestBlock(ggepTestExt(0x40, "C", []byte{0x42}, []byte{0x02, 0x00})), ErrBadGGEP, 5},
		{"COBS block past the end", ggepTestBlock(ggepTestExt(0x40, "C", []byte{0x42}, []byte{0x05, 0x11})), ErrBadGGEP, 4},
		{"COBS error in second extension", ggepTestBlock(ok, ggepTestExt(0x40, "CC", []byte{0x44}, []byte{0x01, 0x03, 0x00, 0x11})), ErrBadGGEP, 12},
		{"deflated data of 5 bytes", ggepTestBlock(ggepTestExt(0x20, "Z", []byte{0x45}, validZ[:5])), ErrBadGGEP, 4},
		{"deflated data of 0 bytes", ggepTestBlock(ggepTestExt(0x20, "Z", []byte{0x40}, nil)), ErrBadGGEP, 4},
		{"COBS then deflate of 5 bytes", ggepTestBlock(ggepTestExt(0x60, "Z", []byte{0x46}, cobsEncode(nil, validZ[:5]))), ErrBadGGEP, 4},
		{"bad zlib header", ggepTestBlock(ggepTestExt(0x20, "Z", []byte{0x48}, []byte("notzlib!"))), ErrBadGGEP, 4},
		{"zlib stream cut short", ggepTestBlock(ggepTestExt(0x20, "Z", AppendGGEPLength(nil, len(validZ)-3), validZ[:len(validZ)-3])), ErrBadGGEP, 4},
		{"zlib checksum wrong", ggepTestBlock(ggepTestExt(0x20, "Z", AppendGGEPLength(nil, len(validZ)),
			append(append([]byte{}, validZ[:len(validZ)-1]...), validZ[len(validZ)-1]^1))), ErrBadGGEP, 4},
	}
	for _, tt := range tests {
		g, n, err := DecodeGGEP(tt.in)
		var e *Error
		if !errors.As(err, &e) || !errors.Is(err, tt.kind) {
			t.Errorf("%s: DecodeGGEP(% x) = %v, %d, %v; want %v", tt.name, tt.in, g, n, err, tt.kind)
			continue
		}
		if g != nil || n != 0 {
			t.Errorf("%s: failed decode returned %v, %d", tt.name, g, n)
		}
		if e.Offset != tt.offset {
			t.Errorf("%s: offset %d, want %d (%v)", tt.name, e.Offset, tt.offset, err)
		}
	}
	if g, n, err := DecodeGGEP(many(32)); err != nil || len(g) != 32 || n != 1+32*3 {
		t.Errorf("32 extensions: %d extensions, %d bytes, %v", len(g), n, err)
	}
}

func TestDecodeGGEPAcceptsLongLengthForm(t *testing.T) {
	// gtk-gnutella accepts a length written with more bytes than needed;
	// the block must then re-encode to those same bytes.
	in := ggepTestBlock(ggepTestExt(0, "A", []byte{0x80, 0x80, 0x41}, []byte{'x'}))
	g, n, err := DecodeGGEP(in)
	if err != nil || n != len(in) || string(g[0].Data) != "x" {
		t.Fatalf("DecodeGGEP(% x) = %+v, %d, %v", in, g, n, err)
	}
	if out, err := g.AppendTo(nil); err != nil || !bytes.Equal(out, in) {
		t.Fatalf("AppendTo = % x, %v; want % x", out, err, in)
	}
}

func TestDecodeGGEPAcceptsSpaceInID(t *testing.T) {
	// gtk-gnutella's rule: ASCII and not a control character.
	in := ggepTestBlock(ggepTestExt(0, "A B", []byte{0x40}, nil))
	g, _, err := DecodeGGEP(in)
	if err != nil || g[0].ID != "A B" {
		t.Fatalf("DecodeGGEP(% x) = %v, %v", in, g, err)
	}
}

func TestGGEPCOBSAndDeflateRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	random := make([]byte, 3000)
	for i := range random {
		random[i] = byte(rng.IntN(256))
	}
	datas := map[string][]byte{
		"empty":          {},
		"one zero":       {0},
		"text":           []byte("zebraquokka interop alpha"),
		"zeros":          make([]byte, 500),
		"254 non-zero":   cobsTestRun(254),
		"random":         random,
		"inflate limit":  bytes.Repeat([]byte("ab\x00"), MaxGGEPInflated/3+1)[:MaxGGEPInflated],
		"4096 non-zero":  cobsTestRun(4096),
		"random+zeros64": append(append([]byte{}, random[:64]...), make([]byte, 64)...),
	}
	for name, data := range datas {
		for _, mode := range []struct{ cobs, deflate bool }{{true, false}, {false, true}, {true, true}, {false, false}} {
			g := GGEP{
				{ID: "X", Data: data, COBS: mode.cobs, Deflate: mode.deflate},
				{ID: "GTKGV", Data: []byte{1, 2, 3}},
			}
			wire, err := g.AppendTo(nil)
			if err != nil {
				t.Fatalf("%s %+v: AppendTo: %v", name, mode, err)
			}
			flags := wire[1]
			if (flags&0x40 != 0) != mode.cobs || (flags&0x20 != 0) != mode.deflate || flags&0x80 != 0 {
				t.Errorf("%s %+v: flags 0x%02x", name, mode, flags)
			}
			if mode.cobs {
				_, size, _ := ParseGGEPLength(wire[3:])
				n, _, _ := ParseGGEPLength(wire[3:])
				if bytes.IndexByte(wire[3+size:3+size+n], 0) >= 0 {
					t.Errorf("%s %+v: COBS data holds a zero", name, mode)
				}
			}
			back, n, err := DecodeGGEP(wire)
			if err != nil || n != len(wire) {
				t.Fatalf("%s %+v: DecodeGGEP = %d, %v", name, mode, n, err)
			}
			if len(back) != 2 || back[0].ID != "X" || !bytes.Equal(back[0].Data, data) ||
				back[0].COBS != mode.cobs || back[0].Deflate != mode.deflate || string(back[1].Data) != "\x01\x02\x03" {
				t.Fatalf("%s %+v: decoded %v with X data of %d bytes", name, mode, back, len(back[0].Data))
			}
			again, err := back.AppendTo(nil)
			if err != nil || !bytes.Equal(again, wire) {
				t.Fatalf("%s %+v: re-encoding of the decoded block differs", name, mode)
			}
		}
	}
}

func TestGGEPAppendToRejectsDeflatePastInflateLimit(t *testing.T) {
	g := GGEP{{ID: "Z", Data: make([]byte, MaxGGEPInflated+1), Deflate: true}}
	out, err := g.AppendTo([]byte{0xAA})
	if !errors.Is(err, ErrTooLarge) || !bytes.Equal(out, []byte{0xAA}) {
		t.Fatalf("AppendTo = % x, %v; want ErrTooLarge and b unchanged", out, err)
	}
}

func TestDecodeGGEPInflateLimit(t *testing.T) {
	for _, tt := range []struct {
		size int
		kind error
	}{
		{MaxGGEPInflated, nil},
		{MaxGGEPInflated + 1, ErrTooLarge},
		{16 << 20, ErrTooLarge}, // a zlib bomb: 16 MiB of zeros in about 16 KB
	} {
		z := ggepTestZlib(t, make([]byte, tt.size))
		length := AppendGGEPLength(nil, len(z))
		in := ggepTestBlock(ggepTestExt(0x20, "Z", length, z))
		dataAt := 3 + len(length)
		g, _, err := DecodeGGEP(in)
		if tt.kind == nil {
			if err != nil || len(g[0].Data) != tt.size {
				t.Errorf("%d bytes: %v", tt.size, err)
			}
			continue
		}
		if !errors.Is(err, tt.kind) {
			t.Errorf("%d bytes in %d: err = %v, want %v", tt.size, len(z), err, tt.kind)
		} else if off := ErrorOffset(err); off != dataAt {
			t.Errorf("%d bytes: offset %d, want %d (the start of the data)", tt.size, off, dataAt)
		}
	}
}

func TestDecodeGGEPZlibBombAllocatesBoundedMemory(t *testing.T) {
	z := ggepTestZlib(t, make([]byte, 16<<20))
	in := ggepTestBlock(ggepTestExt(0x20, "Z", AppendGGEPLength(nil, len(z)), z))
	const runs = 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 0; i < runs; i++ {
		if _, _, err := DecodeGGEP(in); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("err = %v, want ErrTooLarge", err)
		}
	}
	runtime.ReadMemStats(&after)
	perRun := (after.TotalAlloc - before.TotalAlloc) / runs
	// The output buffers double up to MaxGGEPInflated+1 (under 2x the cap
	// in all); the zlib reader has its own 32 KiB window and tables.
	const limit = 2*MaxGGEPInflated + 96<<10
	t.Logf("a %d-byte bomb allocates %d bytes per decode", len(z), perRun)
	if perRun > limit {
		t.Fatalf("decoding a bomb allocates %d bytes, more than %d", perRun, limit)
	}
}

// ggepTestRecordedBlocks finds every GGEP block in the recordings by trying
// DecodeGGEP at each 0xC3 of each payload. It returns each block's bytes
// (cut to the length DecodeGGEP reports) by payload type and offset.
type ggepTestRecorded struct {
	where string
	typ   byte
	at    int
	wire  []byte
	g     GGEP
}

func ggepTestRecordedBlocks(t testing.TB) []ggepTestRecorded {
	t.Helper()
	var out []ggepTestRecorded
	for _, d := range coreRecordedPayloads(t) {
		for p, c := range d.payload {
			if c != GGEPMagic {
				continue
			}
			g, n, err := DecodeGGEP(d.payload[p:])
			if err != nil {
				continue
			}
			out = append(out, ggepTestRecorded{
				where: fmt.Sprintf("%s #%d", d.file, d.index),
				typ:   d.typ, at: p, wire: d.payload[p : p+n : p+n], g: g,
			})
		}
	}
	return out
}

func TestGGEPRecordedBlocksReencodeExactly(t *testing.T) {
	blocks := ggepTestRecordedBlocks(t)
	t.Logf("%d GGEP blocks in the recordings", len(blocks))
	found := make(map[string]bool)
	for _, r := range blocks {
		got, err := r.g.AppendTo(nil)
		if err != nil || !bytes.Equal(got, r.wire) {
			t.Errorf("%s at %d: AppendTo = % x, %v; want % x", r.where, r.at, got, err, r.wire)
		}
		found[strings.Join(r.g.IDs(), " ")] = true

		// The same block without NULs decodes to the same extensions.
		clean, err := r.g.appendTo(nil, true)
		if err != nil || bytes.IndexByte(clean, 0) >= 0 {
			t.Errorf("%s at %d: appendTo(noNUL) = % x, %v", r.where, r.at, clean, err)
			continue
		}
		if !bytes.Contains(r.wire, []byte{0}) && !bytes.Equal(clean, r.wire) {
			t.Errorf("%s at %d: a block without NUL changed under noNUL", r.where, r.at)
		}
		back, n, err := DecodeGGEP(clean)
		if err != nil || n != len(clean) || !ggepTestSameData(back, r.g) {
			t.Errorf("%s at %d: noNUL block % x decodes as %v, %v", r.where, r.at, clean, back, err)
		}
	}
	// What gtk-gnutella sent: Ping SCP, Pong VC/UP/DU, Query PR, and in the
	// hits H+CT in the record and GTKGV+BH in the private area.
	for _, ids := range []string{"SCP", "VC UP DU", "PR", "H CT", "GTKGV BH"} {
		if !found[ids] {
			t.Errorf("no recorded block with extensions %q (found %v)", ids, found)
		}
	}
	for _, r := range blocks {
		switch {
		case r.typ == 0x00 && r.at != 0, r.typ == 0x01 && r.at != 14:
			t.Errorf("%s: a GGEP block at %d of a type 0x%02x payload", r.where, r.at, r.typ)
		}
	}
}

func ggepTestSameData(a, b GGEP) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].ID != b[i].ID || !bytes.Equal(a[i].Data, b[i].Data) || a[i].Deflate != b[i].Deflate {
			return false
		}
	}
	return true
}

func TestGGEPAppendNoNULNeverEmitsZero(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	recorded := []byte{0xC3, 0x83, 'S', 'C', 'P', 0x41, 0x00} // the recorded Ping's block
	dec, _, err := DecodeGGEP(recorded)
	if err != nil {
		t.Fatal(err)
	}
	blocks := []GGEP{dec}
	for i := 0; i < 300; i++ {
		var g GGEP
		for k := 0; k < 1+rng.IntN(4); k++ {
			data := make([]byte, rng.IntN(600))
			for j := range data {
				if rng.IntN(4) != 0 {
					data[j] = byte(rng.IntN(256))
				}
			}
			g = append(g, Extension{
				ID: []string{"H", "GTKGV", "u", "ALT", "Z"}[rng.IntN(5)], Data: data,
				COBS: rng.IntN(4) == 0, Deflate: rng.IntN(3) == 0,
			})
		}
		blocks = append(blocks, g)
		// Its decoded form, whose remembered wire bytes may hold zeros.
		w, err := g.AppendTo(nil)
		if err != nil {
			t.Fatal(err)
		}
		d, _, err := DecodeGGEP(w)
		if err != nil {
			t.Fatal(err)
		}
		blocks = append(blocks, d)
	}
	for _, g := range blocks {
		out, err := g.appendTo([]byte{0x01}, true)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.IndexByte(out, 0) >= 0 {
			t.Fatalf("appendTo(noNUL) of %v emitted a zero: % x", g, out)
		}
		back, n, err := DecodeGGEP(out[1:])
		if err != nil || n != len(out)-1 || !ggepTestSameData(back, g) {
			t.Fatalf("appendTo(noNUL) of %v decodes as %v, %v", g, back, err)
		}
	}
	if out, _ := dec.appendTo(nil, true); !bytes.Equal(out, []byte{0xC3, 0xC3, 'S', 'C', 'P', 0x42, 0x01, 0x01}) {
		t.Errorf("noNUL SCP block = % x, want the data COBS-encoded", out)
	}
}

func TestGGEPEditedExtensionEncodesAfresh(t *testing.T) {
	// A long length form keeps the decoded wire bytes distinguishable from a
	// fresh encoding.
	in := ggepTestBlock(
		ggepTestExt(0, "A", []byte{0x80, 0x41}, []byte{'x'}),
		ggepTestExt(0, "B", []byte{0x80, 0x41}, []byte{'y'}),
	)
	tests := []struct {
		name string
		edit func(g GGEP)
		want []byte
	}{
		{"unchanged", func(GGEP) {}, in},
		{"Data replaced", func(g GGEP) { g[0].Data = []byte("z") },
			[]byte{0xC3, 0x01, 'A', 0x41, 'z', 0x81, 'B', 0x80, 0x41, 'y'}},
		{"Data replaced by an equal copy", func(g GGEP) { g[0].Data = []byte("x") },
			[]byte{0xC3, 0x01, 'A', 0x41, 'x', 0x81, 'B', 0x80, 0x41, 'y'}},
		{"ID changed", func(g GGEP) { g[1].ID = "C" },
			[]byte{0xC3, 0x01, 'A', 0x80, 0x41, 'x', 0x81, 'C', 0x41, 'y'}},
		{"COBS switched on", func(g GGEP) { g[0].COBS = true },
			[]byte{0xC3, 0x41, 'A', 0x42, 0x02, 'x', 0x81, 'B', 0x80, 0x41, 'y'}},
		{"order swapped", func(g GGEP) { g[0], g[1] = g[1], g[0] },
			[]byte{0xC3, 0x01, 'B', 0x80, 0x41, 'y', 0x81, 'A', 0x80, 0x41, 'x'}},
		{"Data edited in place (plain data aliases the wire)", func(g GGEP) { g[0].Data[0] = 'q' },
			[]byte{0xC3, 0x01, 'A', 0x80, 0x41, 'q', 0x81, 'B', 0x80, 0x41, 'y'}},
	}
	for _, tt := range tests {
		buf := append([]byte{}, in...)
		g, _, err := DecodeGGEP(buf)
		if err != nil {
			t.Fatal(err)
		}
		tt.edit(g)
		got, err := g.AppendTo(nil)
		if err != nil || !bytes.Equal(got, tt.want) {
			t.Errorf("%s: AppendTo = % x, %v; want % x", tt.name, got, err, tt.want)
		}
	}
	// Taking one decoded extension on its own makes it the last one.
	g, _, _ := DecodeGGEP(in)
	if got, err := g[:1].AppendTo(nil); err != nil || !bytes.Equal(got, []byte{0xC3, 0x81, 'A', 0x80, 0x41, 'x'}) {
		t.Errorf("first extension alone = % x, %v", got, err)
	}
}

func TestDecodeGGEPAliasesInput(t *testing.T) {
	in := ggepTestBlock(ggepTestExt(0, "DU", []byte{0x42}, []byte{0x10, 0x20}))
	g, _, err := DecodeGGEP(in)
	if err != nil {
		t.Fatal(err)
	}
	in[5] = 0x11
	if g[0].Data[0] != 0x11 {
		t.Error("plain Data does not alias the input")
	}
	// Appending to Data must not write over the input beyond the extension.
	full := append(append([]byte{}, in...), 0x77)
	g, _, _ = DecodeGGEP(full)
	_ = append(g[0].Data, 0xEE)
	if full[len(full)-1] != 0x77 {
		t.Error("appending to Data overwrote the byte after the block")
	}
}

func TestGGEPAppendToRejects(t *testing.T) {
	tests := []struct {
		name string
		g    GGEP
		kind error
	}{
		{"no extension", GGEP{}, ErrBadGGEP},
		{"nil block", nil, ErrBadGGEP},
		{"empty ID", GGEP{{ID: ""}}, ErrBadGGEP},
		{"16-byte ID", GGEP{{ID: "ABCDEFGHIJKLMNOP"}}, ErrBadGGEP},
		{"ID with NUL", GGEP{{ID: "A\x00"}}, ErrBadGGEP},
		{"ID with control byte", GGEP{{ID: "A\n"}}, ErrBadGGEP},
		{"ID with DEL", GGEP{{ID: "\x7F"}}, ErrBadGGEP},
		{"ID with high byte", GGEP{{ID: "\xC3"}}, ErrBadGGEP},
		{"33 extensions", make(GGEP, 33), ErrBadGGEP},
		{"data past the 3-byte length", GGEP{{ID: "A", Data: make([]byte, MaxGGEPLength+1)}}, ErrTooLarge},
		{"bad second extension", GGEP{{ID: "OK"}, {ID: ""}}, ErrBadGGEP},
	}
	for i := range tests[8].g {
		tests[8].g[i].ID = "A"
	}
	for _, tt := range tests {
		out, err := tt.g.AppendTo([]byte("keep"))
		if !errors.Is(err, tt.kind) || string(out) != "keep" {
			t.Errorf("%s: AppendTo = %q, %v; want %v and b unchanged", tt.name, out, err, tt.kind)
		}
	}
	if _, err := (GGEP{{ID: "A", Data: make([]byte, MaxGGEPLength)}}).AppendTo(nil); err != nil {
		t.Errorf("data of MaxGGEPLength bytes: %v", err)
	}
	if _, err := (GGEP{{ID: "ABCDEFGHIJKLMNO"}}).AppendTo(nil); err != nil {
		t.Errorf("15-byte ID: %v", err)
	}
}

func TestGGEPAccessors(t *testing.T) {
	g := GGEP{
		{ID: "DU", Data: []byte{1}},
		{ID: "H", Data: []byte{2}, COBS: true},
		{ID: "DU", Data: []byte{3}, Deflate: true},
	}
	if d, ok := g.Get("DU"); !ok || !bytes.Equal(d, []byte{1}) {
		t.Errorf("Get(DU) = % x, %v; want the first one", d, ok)
	}
	if d, ok := g.Get("du"); ok || d != nil {
		t.Errorf("Get is case-insensitive: % x", d)
	}
	if !g.Has("H") || g.Has("X") {
		t.Error("Has is wrong")
	}
	if ids := g.IDs(); !reflect.DeepEqual(ids, []string{"DU", "H", "DU"}) {
		t.Errorf("IDs() = %v", ids)
	}
	if s := g.String(); s != "GGEP[DU(1) H(1,cobs) DU(1,deflate)]" {
		t.Errorf("String() = %q", s)
	}
	if s := (GGEP{}).String(); s != "GGEP[]" {
		t.Errorf("empty String() = %q", s)
	}
}

func FuzzGGEP(f *testing.F) {
	for _, r := range ggepTestRecordedBlocks(f) {
		f.Add(r.wire)
	}
	f.Add([]byte{0xC3, 0x82, 0x42, 0x48, 0x40})
	f.Add(ggepTestBlock(ggepTestExt(0, "A", []byte{0x80, 0x80, 0x41}, []byte{'x'})))
	for _, g := range []GGEP{
		{{ID: "C", Data: []byte{0, 1, 0, 2}, COBS: true}},
		{{ID: "Z", Data: []byte("deflate deflate deflate"), Deflate: true}},
		{{ID: "CZ", Data: make([]byte, 300), COBS: true, Deflate: true}, {ID: "u", Data: []byte("sha1:X")}},
	} {
		w, err := g.AppendTo(nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(w)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		g, n, err := DecodeGGEP(b)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Offset < 0 || e.Offset > len(b) {
				t.Fatalf("error %v (%T) has no offset inside the input", err, err)
			}
			if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrBadGGEP) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v of an unexpected kind", err)
			}
			return
		}
		if n < 4 || n > len(b) || len(g) == 0 || len(g) > MaxGGEPExtensions {
			t.Fatalf("DecodeGGEP = %d extensions, %d of %d bytes", len(g), n, len(b))
		}
		out, err := g.AppendTo(nil)
		if err != nil || !bytes.Equal(out, b[:n]) {
			t.Fatalf("AppendTo = % x, %v; want % x", out, err, b[:n])
		}
		clean, err := g.appendTo(nil, true)
		if errors.Is(err, ErrTooLarge) {
			return
		}
		if err != nil || bytes.IndexByte(clean, 0) >= 0 {
			t.Fatalf("appendTo(noNUL) = % x, %v", clean, err)
		}
		back, m, err := DecodeGGEP(clean)
		if err != nil || m != len(clean) || !ggepTestSameData(back, g) {
			t.Fatalf("noNUL block % x decodes as %v, %v; want %v", clean, back, err, g)
		}
		// Fresh extensions with the decoded values encode canonically and
		// decode to the same data.
		fresh := make(GGEP, len(g))
		for i, e := range g {
			fresh[i] = Extension{ID: e.ID, Data: e.Data, COBS: e.COBS, Deflate: e.Deflate}
		}
		fw, err := fresh.AppendTo(nil)
		if errors.Is(err, ErrTooLarge) {
			return
		}
		if err != nil {
			t.Fatalf("fresh AppendTo: %v", err)
		}
		back, m, err = DecodeGGEP(fw)
		if err != nil || m != len(fw) || !ggepTestSameData(back, g) {
			t.Fatalf("fresh block % x decodes as %v, %v; want %v", fw, back, err, g)
		}
	})
}

// ggepTestPongBlock is a pong's GGEP block as LimeWire-era servents send it:
// daily uptime, vendor code and version, ultrapeer slots, locale.
func ggepTestPongBlock(t testing.TB) []byte {
	g := GGEP{
		{ID: "DU", Data: []byte{0x80, 0x51, 0x01}},
		{ID: "VC", Data: []byte("GTKG\x83")},
		{ID: "UP", Data: []byte{0x02, 0xFF, 0x32}},
		{ID: "LOC", Data: []byte("en_US")},
	}
	b, err := g.AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeGGEPPongAllocatesOnce(t *testing.T) {
	b := ggepTestPongBlock(t)
	allocs := testing.AllocsPerRun(200, func() {
		if _, _, err := DecodeGGEP(b); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 1 {
		t.Errorf("DecodeGGEP of a pong block allocates %v times, want 1 (the slice)", allocs)
	}
}

func BenchmarkGGEPDecode(b *testing.B) {
	buf := ggepTestPongBlock(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if _, _, err := DecodeGGEP(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGGEPAppendTo(b *testing.B) {
	g, _, err := DecodeGGEP(ggepTestPongBlock(b))
	if err != nil {
		b.Fatal(err)
	}
	out := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		if out, err = g.AppendTo(out[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

// Many small deflated extensions share one inflate budget per block: 16
// extensions of 64 KiB of zeros each are refused once their total passes
// MaxGGEPInflated, not inflated to a megabyte.
func TestGGEPInflateBudgetIsPerBlock(t *testing.T) {
	zeros := make([]byte, 40<<10)
	var g GGEP
	for i := 0; i < 16; i++ {
		g = append(g, Extension{ID: fmt.Sprintf("Z%d", i), Data: zeros, Deflate: true})
	}
	b, err := g.AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := DecodeGGEP(b); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("decoding %d bytes that inflate to %d: err %v, want ErrTooLarge", len(b), 16*len(zeros), err)
	}
	// one such extension alone is fine
	one, _ := g[:1].AppendTo(nil)
	if _, _, err := DecodeGGEP(one); err != nil {
		t.Fatal(err)
	}
}
