package protocol

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// coreRecordedPayload is one descriptor of a gtk-gnutella recording, cut
// by the test's own reading of the framing (not by code under test).
type coreRecordedPayload struct {
	file    string
	index   int    // descriptor number in the file
	raw     []byte // header and payload
	typ     byte
	payload []byte
}

// coreRecordedPayloads reads every descriptor of the four descriptor
// recordings: skip the "GNUTELLA..." handshake blocks up to their blank
// line, then cut 23-byte headers and their little-endian payload lengths.
func coreRecordedPayloads(t testing.TB) []coreRecordedPayload {
	t.Helper()
	var out []coreRecordedPayload
	for _, name := range []string{
		"leaf-to-ultrapeer.bin", "ultrapeer-to-leaf.bin",
		"ultrapeer-to-other-leaf-1.bin", "ultrapeer-to-other-leaf-2.bin",
	} {
		b, err := os.ReadFile(filepath.Join("testdata", "gtk-gnutella", name))
		if err != nil {
			t.Fatal(err)
		}
		for bytes.HasPrefix(b, []byte("GNUTELLA")) {
			i := bytes.Index(b, []byte("\r\n\r\n"))
			if i < 0 {
				t.Fatalf("%s: unterminated handshake block", name)
			}
			b = b[i+4:]
		}
		for k := 0; len(b) > 0; k++ {
			if len(b) < 23 {
				t.Fatalf("%s: %d stray bytes at the end", name, len(b))
			}
			n := 23 + (int(b[19]) | int(b[20])<<8 | int(b[21])<<16 | int(b[22])<<24)
			if n > len(b) {
				t.Fatalf("%s: descriptor %d runs past the end", name, k)
			}
			out = append(out, coreRecordedPayload{
				file: name, index: k, raw: b[:n:n], typ: b[16], payload: b[23:n:n],
			})
			b = b[n:]
		}
	}
	if len(out) != 28+14+5+7 {
		t.Fatalf("read %d descriptors from the recordings, want 54", len(out))
	}
	return out
}

func TestParseHeaderReadsEveryField(t *testing.T) {
	b := []byte{
		0, 1, 2, 3, 4, 5, 6, 7, 0xFF, 9, 10, 11, 12, 13, 14, 0, // GUID
		0x80, // Query
		7, 2, // TTL, hops
		4, 3, 2, 1, // length 0x01020304, little-endian
		0xAA, // a payload byte that must be ignored
	}
	h, err := ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	want := Header{
		ID:   GUID{0, 1, 2, 3, 4, 5, 6, 7, 0xFF, 9, 10, 11, 12, 13, 14, 0},
		Type: TypeQuery, TTL: 7, Hops: 2, Length: 0x01020304,
	}
	if h != want {
		t.Fatalf("ParseHeader = %+v, want %+v", h, want)
	}
}

func TestHeaderPutWritesLengthLittleEndian(t *testing.T) {
	tests := []struct {
		length uint32
		want   [4]byte
	}{
		{6, [4]byte{0x06, 0x00, 0x00, 0x00}}, // docs/protocol.md §9
		{0, [4]byte{0, 0, 0, 0}},
		{0x1234, [4]byte{0x34, 0x12, 0, 0}},
		{65536, [4]byte{0, 0, 1, 0}},
		{0x80000001, [4]byte{0x01, 0, 0, 0x80}},
	}
	for _, tt := range tests {
		h := Header{ID: GUID{1}, Type: TypePong, TTL: 1, Length: tt.length}
		var b [HeaderLen]byte
		h.Put(b[:])
		if got := [4]byte(b[19:23]); got != tt.want {
			t.Errorf("length %d: bytes 19..22 = % x, want % x", tt.length, got, tt.want)
		}
		if b[16] != 0x01 || b[17] != 1 || b[18] != 0 || b[0] != 1 {
			t.Errorf("length %d: type/TTL/hops/ID bytes wrong: % x", tt.length, b)
		}
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	hs := []Header{
		{},
		{ID: NewGUID(), Type: TypePing, TTL: 4, Hops: 0, Length: 7},
		{ID: GUID{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF},
			Type: TypeHSEP, TTL: 255, Hops: 255, Length: 0xFFFFFFFF},
		{ID: NewGUID(), Type: Type(0x99), TTL: 1, Hops: 6, Length: 65536},
	}
	for _, h := range hs {
		var buf [HeaderLen]byte
		h.Put(buf[:])
		got, err := ParseHeader(buf[:])
		if err != nil || got != h {
			t.Errorf("Put then ParseHeader of %+v = %+v, %v", h, got, err)
		}
		app := h.AppendTo([]byte("prefix"))
		if !bytes.Equal(app[:6], []byte("prefix")) || !bytes.Equal(app[6:], buf[:]) {
			t.Errorf("AppendTo of %+v = % x, want prefix then % x", h, app, buf)
		}
	}
}

func TestHeaderRoundTripsEveryRecordedHeader(t *testing.T) {
	for _, d := range coreRecordedPayloads(t) {
		h, err := ParseHeader(d.raw)
		if err != nil {
			t.Fatalf("%s #%d: %v", d.file, d.index, err)
		}
		if h.Type != Type(d.typ) || int(h.Length) != len(d.payload) {
			t.Errorf("%s #%d: type %v length %d, want 0x%02x and %d", d.file, d.index, h.Type, h.Length, d.typ, len(d.payload))
		}
		if got := h.AppendTo(nil); !bytes.Equal(got, d.raw[:HeaderLen]) {
			t.Errorf("%s #%d: re-encoded header % x, want % x", d.file, d.index, got, d.raw[:HeaderLen])
		}
	}
}

func TestParseHeaderTruncatedInput(t *testing.T) {
	full := make([]byte, HeaderLen)
	for n := 0; n < HeaderLen; n++ {
		_, err := ParseHeader(full[:n])
		if !errors.Is(err, ErrTruncated) {
			t.Fatalf("%d bytes: err = %v, want ErrTruncated", n, err)
		}
		if off := ErrorOffset(err); off != n {
			t.Errorf("%d bytes: error offset %d, want %d (where the input ended)", n, off, n)
		}
	}
	if _, err := ParseHeader(full); err != nil {
		t.Fatalf("23 bytes: %v", err)
	}
}

func TestHeaderPutPanicsOnShortBuffer(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Put into 22 bytes did not panic")
		}
	}()
	var h Header
	h.Put(make([]byte, HeaderLen-1))
}

func TestParseHeaderAndPutDoNotAllocate(t *testing.T) {
	b := make([]byte, HeaderLen)
	b[19] = 6
	var sink Header
	if n := testing.AllocsPerRun(100, func() { sink, _ = ParseHeader(b) }); n != 0 {
		t.Errorf("ParseHeader allocates %v times per call", n)
	}
	if n := testing.AllocsPerRun(100, func() { sink.Put(b) }); n != 0 {
		t.Errorf("Put allocates %v times per call", n)
	}
}

func TestTypeNames(t *testing.T) {
	tests := []struct {
		t     Type
		name  string
		known bool
	}{
		{TypePing, "Ping", true}, {TypePong, "Pong", true}, {TypeBye, "Bye", true},
		{TypeRouteTable, "RouteTableUpdate", true}, {TypeVendor, "Vendor", true},
		{TypeStdVendor, "StdVendor", true}, {TypePush, "Push", true},
		{TypeQuery, "Query", true}, {TypeQueryHit, "QueryHit", true},
		{TypeHSEP, "HSEP", false}, {TypeRUDP, "RUDP", false}, {TypeDHT, "DHT", false},
		{Type(0x99), "0x99", false},
	}
	for _, tt := range tests {
		if got := tt.t.String(); got != tt.name {
			t.Errorf("Type(0x%02x).String() = %q, want %q", uint8(tt.t), got, tt.name)
		}
		if got := tt.t.Known(); got != tt.known {
			t.Errorf("Type(0x%02x).Known() = %v, want %v", uint8(tt.t), got, tt.known)
		}
	}
}

func FuzzHeader(f *testing.F) {
	for _, d := range coreRecordedPayloads(f) {
		f.Add(d.raw[:HeaderLen])
	}
	f.Add([]byte{})
	f.Add(make([]byte, HeaderLen-1))
	f.Add(bytes.Repeat([]byte{0xFF}, HeaderLen+5))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if len(b) < HeaderLen {
			if !errors.Is(err, ErrTruncated) || ErrorOffset(err) != len(b) {
				t.Fatalf("%d bytes: err = %v, want ErrTruncated at %d", len(b), err, len(b))
			}
			return
		}
		if err != nil {
			t.Fatalf("%d bytes: %v", len(b), err)
		}
		if got := h.AppendTo(nil); !bytes.Equal(got, b[:HeaderLen]) {
			t.Fatalf("AppendTo = % x, want % x", got, b[:HeaderLen])
		}
		var buf [HeaderLen]byte
		h.Put(buf[:])
		if !bytes.Equal(buf[:], b[:HeaderLen]) {
			t.Fatalf("Put = % x, want % x", buf, b[:HeaderLen])
		}
	})
}

func BenchmarkParseHeader(b *testing.B) {
	buf := (&Header{ID: NewGUID(), Type: TypeQuery, TTL: 4, Length: 19}).AppendTo(nil)
	b.ReportAllocs()
	b.SetBytes(HeaderLen)
	var sink Header
	for b.Loop() {
		h, err := ParseHeader(buf)
		if err != nil {
			b.Fatal(err)
		}
		sink = h
	}
	_ = sink
}
