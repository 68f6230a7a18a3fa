package protocol

import (
	"bytes"
	"compress/zlib"
	"io"
	"reflect"
	"testing"
)

// The worked bytes of docs/protocol.md §4.4 ([QRP] appendix B): a table of 8 entries, the
// word "test" (hash 2), infinity 7.
var (
	qrpResetVector      = []byte{0x00, 0x08, 0x00, 0x00, 0x00, 0x07}
	qrpPatch4BitVector  = []byte{0x01, 0x01, 0x01, 0x00, 0x04, 0x00, 0xa0, 0x00, 0x00}
	qrpPatchZlibVector  = []byte{0x01, 0x01, 0x01, 0x01, 0x04, 0x78, 0x9c, 0x63, 0x58, 0xc0, 0xc0, 0x00, 0x00, 0x01, 0xe4, 0x00, 0xa1}
	qrpPatch8BitVector  = []byte{0x01, 0x01, 0x01, 0x00, 0x08, 0x00, 0x00, 0xfa, 0x00, 0x00, 0x00, 0x00, 0x00}
	qrpPatchZlibInflate = []byte{0x00, 0xa0, 0x00, 0x00}
)

func TestRouteTableResetMatchesTheSpecVectorWithItsHeader(t *testing.T) {
	r := &RouteTableReset{TableLength: 8, Infinity: 7}
	payloadMustReencode(t, r, qrpResetVector)

	id := NewGUID()
	m := Message{Header: Header{ID: id, TTL: 1, Hops: 0}, Payload: r}
	b, err := m.AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	wantHeader := []byte{0x30, 0x01, 0x00, 0x06, 0x00, 0x00, 0x00}
	if !bytes.Equal(b[:16], id[:]) || b[8] != 0xFF {
		t.Fatalf("GUID bytes % x", b[:16])
	}
	if !bytes.Equal(b[16:HeaderLen], wantHeader) {
		t.Fatalf("header bytes 16..22 = % x, want % x", b[16:HeaderLen], wantHeader)
	}
	if !bytes.Equal(b[HeaderLen:], qrpResetVector) {
		t.Fatalf("payload % x", b[HeaderLen:])
	}

	p, err := DecodeRouteTableUpdate(qrpResetVector)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p, r) {
		t.Fatalf("decoded %#v", p)
	}
	if err := p.(*RouteTableReset).Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestRouteTablePatchSpecVectorsDecodeAndReencode(t *testing.T) {
	tests := []struct {
		name string
		wire []byte
		want RouteTablePatch
	}{
		{"4-bit uncompressed", qrpPatch4BitVector,
			RouteTablePatch{SeqNo: 1, SeqSize: 1, Compressor: QRPCompressorNone, EntryBits: 4, Data: []byte{0x00, 0xa0, 0x00, 0x00}}},
		{"4-bit zlib", qrpPatchZlibVector,
			RouteTablePatch{SeqNo: 1, SeqSize: 1, Compressor: QRPCompressorZlib, EntryBits: 4, Data: qrpPatchZlibVector[5:]}},
		{"8-bit uncompressed", qrpPatch8BitVector,
			RouteTablePatch{SeqNo: 1, SeqSize: 1, Compressor: QRPCompressorNone, EntryBits: 8, Data: []byte{0, 0, 0xfa, 0, 0, 0, 0, 0}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := DecodeRouteTableUpdate(tc.wire)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := p.(*RouteTablePatch)
			if !ok || !reflect.DeepEqual(*got, tc.want) {
				t.Fatalf("decoded %#v, want %#v", p, tc.want)
			}
			payloadMustReencode(t, p, tc.wire)
			fresh := tc.want
			fresh.Data = bytes.Clone(fresh.Data)
			payloadMustReencode(t, &fresh, tc.wire)
		})
	}
	// The zlib chunk is a zlib stream (not raw deflate) of the 4-bit patch:
	// entry 2 is −6 (0xa in the high nibble of byte 1), the first entry of
	// each byte in the high nibble.
	zr, err := zlib.NewReader(bytes.NewReader(qrpPatchZlibVector[5:]))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(got, qrpPatchZlibInflate) || !bytes.Equal(got, qrpPatch4BitVector[5:]) {
		t.Fatalf("inflated % x, %v; want % x", got, err, qrpPatchZlibInflate)
	}
}

func TestEveryRecordedRouteTableUpdateDecodesAndReencodesExactly(t *testing.T) {
	ds := walkAll(t, TypeRouteTable)
	if len(ds) != 7 {
		t.Fatalf("%d recorded QRP messages, want 7", len(ds))
	}
	var resets, patches int
	for _, d := range ds {
		if d.header.TTL != 1 || d.header.Hops != 0 {
			t.Errorf("%s@%d: TTL %d hops %d", d.file, d.offset, d.header.TTL, d.header.Hops)
		}
		p, err := DecodeRouteTableUpdate(d.payload)
		if err != nil {
			t.Fatalf("%s@%d: %v", d.file, d.offset, err)
		}
		payloadMustReencode(t, p, d.payload)
		t.Logf("%s@%d: %v", d.file, d.offset, p)
		switch p := p.(type) {
		case *RouteTableReset:
			resets++
			if *p != (RouteTableReset{TableLength: 16384, Infinity: 2}) {
				t.Errorf("gtk RESET %v, want 16384 slots, infinity 2", p)
			}
			if err := p.Validate(); err != nil {
				t.Error(err)
			}
		case *RouteTablePatch:
			patches++
			if p.SeqNo != 1 || p.SeqSize != 1 || p.Compressor != QRPCompressorZlib {
				t.Errorf("gtk PATCH %v, want 1/1 zlib", p)
			}
			if p.EntryBits != 4 && p.EntryBits != 1 {
				t.Errorf("gtk PATCH entry bits %d", p.EntryBits)
			}
		}
	}
	if resets != 3 || patches != 4 {
		t.Errorf("%d RESETs and %d PATCHes, want 3 and 4", resets, patches)
	}
}

func TestDecodeRouteTableUpdateRejectsBadFraming(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		kind error
		off  int
	}{
		{"empty", nil, ErrTruncated, 0},
		{"unknown variant", []byte{0x02, 1, 1, 0, 4}, ErrBadQRP, 0},
		{"RESET of 5 bytes", []byte{0x00, 0x08, 0x00, 0x00, 0x00}, ErrTruncated, 5},
		{"RESET of 7 bytes", []byte{0x00, 0x08, 0x00, 0x00, 0x00, 0x07, 0x00}, ErrBadQRP, 6},
		{"RESET with infinity 0", []byte{0x00, 0x08, 0x00, 0x00, 0x00, 0x00}, ErrBadQRP, 5},
		{"PATCH of 4 bytes", []byte{0x01, 1, 1, 0}, ErrTruncated, 4},
		{"seq_no 0", []byte{0x01, 0, 1, 0, 4}, ErrBadQRP, 1},
		{"seq_size 0", []byte{0x01, 1, 0, 0, 4}, ErrBadQRP, 2},
		{"seq_no above seq_size", []byte{0x01, 3, 2, 0, 4}, ErrBadQRP, 1},
		{"compressor 2", []byte{0x01, 1, 1, 2, 4}, ErrBadQRP, 3},
		{"entry_bits 0", []byte{0x01, 1, 1, 0, 0}, ErrBadQRP, 4},
		{"entry_bits 3", []byte{0x01, 1, 1, 0, 3}, ErrBadQRP, 4},
		{"entry_bits 16", []byte{0x01, 1, 1, 0, 16}, ErrBadQRP, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := DecodeRouteTableUpdate(tc.in)
			if p != nil {
				t.Fatalf("payload %#v returned with the error", p)
			}
			payloadWantError(t, err, tc.kind, tc.off)
		})
	}
}

func TestRouteTablePatchAcceptsEveryEntryWidthAndEmptyData(t *testing.T) {
	for _, bits := range []uint8{1, 2, 4, 8} {
		in := []byte{0x01, 2, 2, 1, bits}
		p, err := DecodeRouteTableUpdate(in)
		if err != nil {
			t.Fatalf("entry_bits %d: %v", bits, err)
		}
		payloadMustReencode(t, p, in)
	}
	p, _ := DecodeRouteTableUpdate([]byte{0x01, 255, 255, 0, 8})
	if got, want := p.(*RouteTablePatch).String(), "RouteTablePatch 255/255 none 8-bit 0 bytes"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
}

func TestRouteTableResetValidateReportsNonPowerOfTwoLengths(t *testing.T) {
	tests := []struct {
		length uint32
		inf    uint8
		ok     bool
		off    int
	}{
		{1, 1, true, 0},
		{8, 7, true, 0},
		{65536, 2, true, 0},
		{1 << 31, 2, true, 0},
		{0, 2, false, 1},
		{3, 2, false, 1},
		{65535, 7, false, 1},
		{0xFFFFFFFF, 7, false, 1},
		{8, 0, false, 5},
	}
	for _, tc := range tests {
		r := &RouteTableReset{TableLength: tc.length, Infinity: tc.inf}
		err := r.Validate()
		if tc.ok {
			if err != nil {
				t.Errorf("%v: %v", r, err)
			}
			continue
		}
		payloadWantError(t, err, ErrBadQRP, tc.off)
	}
	// A non-power-of-two length still decodes: the table logic decides.
	in := []byte{0x00, 0x03, 0x00, 0x00, 0x00, 0x07}
	p, err := DecodeRouteTableUpdate(in)
	if err != nil {
		t.Fatal(err)
	}
	payloadWantError(t, p.(*RouteTableReset).Validate(), ErrBadQRP, 1)
	payloadMustReencode(t, p, in)
}

func TestRouteTableAppendToRefusesWhatTheDecoderRejects(t *testing.T) {
	tests := []struct {
		name string
		p    Payload
		off  int
	}{
		{"RESET infinity 0", &RouteTableReset{TableLength: 8}, 5},
		{"PATCH zero value", &RouteTablePatch{}, 2},
		{"PATCH seq_no 3 of 2", &RouteTablePatch{SeqNo: 3, SeqSize: 2, EntryBits: 4}, 1},
		{"PATCH compressor 9", &RouteTablePatch{SeqNo: 1, SeqSize: 1, Compressor: 9, EntryBits: 4}, 3},
		{"PATCH 5-bit", &RouteTablePatch{SeqNo: 1, SeqSize: 1, EntryBits: 5}, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := tc.p.AppendTo([]byte{7})
			payloadWantError(t, err, ErrBadQRP, tc.off)
			if !bytes.Equal(out, []byte{7}) {
				t.Fatalf("failed AppendTo left % x", out)
			}
			if tc.p.Type() != TypeRouteTable {
				t.Fatalf("Type() = %v", tc.p.Type())
			}
		})
	}
}

func FuzzRouteTableUpdate(f *testing.F) {
	walkSeeds(f, TypeRouteTable)
	for _, v := range [][]byte{qrpResetVector, qrpPatch4BitVector, qrpPatchZlibVector, qrpPatch8BitVector} {
		f.Add(bytes.Clone(v))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodeRouteTableUpdate(b)
		if err != nil {
			if p != nil {
				t.Fatalf("payload %#v returned with error %v", p, err)
			}
			payloadFuzzError(t, err)
			return
		}
		payloadMustReencode(t, p, b)
		_ = p.(interface{ String() string }).String()
		if r, ok := p.(*RouteTableReset); ok {
			if err := r.Validate(); err != nil {
				payloadFuzzError(t, err)
			}
		}
	})
}
