package protocol

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"testing"
	"testing/iotest"
)

// rawDescriptor assembles header bytes followed by payload, with the length
// field set to claim (which need not be len(payload)).
func rawDescriptor(t Type, ttl, hops uint8, claim uint32, payload []byte) []byte {
	h := Header{Type: t, TTL: ttl, Hops: hops, Length: claim}
	for i := range h.ID {
		h.ID[i] = byte(i + 1)
	}
	return append(h.AppendTo(nil), payload...)
}

func TestLimitsForPicksTheCapOfEachType(t *testing.T) {
	l := DefaultLimits()
	cases := []struct {
		t    Type
		want uint32
	}{
		{TypeQuery, 1024},
		{TypeQueryHit, 65536},
		{TypeBye, 4096},
		{TypePing, 40960},
		{TypePong, 40960},
		{TypePush, 40960},
		{TypeVendor, 40960},
		{TypeRouteTable, 40960},
		{TypeHSEP, 40960},
		{Type(0x99), 40960},
	}
	for _, c := range cases {
		if got := l.For(c.t); got != c.want {
			t.Errorf("DefaultLimits().For(%v) = %d, want %d", c.t, got, c.want)
		}
	}
}

func TestReadRawReturnsEachDescriptorAndItsOffset(t *testing.T) {
	var stream []byte
	payloads := [][]byte{nil, []byte("hello"), bytes.Repeat([]byte{0xAB}, 1024), {0}}
	types := []Type{TypePing, TypeVendor, TypeQuery, TypeHSEP}
	for i, p := range payloads {
		stream = append(stream, rawDescriptor(types[i], 7, uint8(i), uint32(len(p)), p)...)
	}
	wrappers := []struct {
		name string
		wrap func(io.Reader) io.Reader
	}{
		{"plain", func(r io.Reader) io.Reader { return r }},
		{"one byte per read", iotest.OneByteReader},
		{"half reads", iotest.HalfReader},
		{"EOF with the last data", iotest.DataErrReader},
	}
	for _, w := range wrappers {
		t.Run(w.name, func(t *testing.T) {
			r := NewReader(w.wrap(bytes.NewReader(stream)), DefaultLimits())
			var off int64
			for i, p := range payloads {
				h, b, err := r.ReadRaw()
				if err != nil {
					t.Fatalf("descriptor %d: %v", i, err)
				}
				if h.Type != types[i] || h.TTL != 7 || h.Hops != uint8(i) || h.Length != uint32(len(p)) {
					t.Errorf("descriptor %d: header %+v", i, h)
				}
				if !bytes.Equal(b, p) || len(b) != len(p) {
					t.Errorf("descriptor %d: payload %x, want %x", i, b, p)
				}
				off += int64(HeaderLen + len(p))
				if r.Offset() != off {
					t.Errorf("descriptor %d: Offset() = %d, want %d", i, r.Offset(), off)
				}
			}
			if _, _, err := r.ReadRaw(); err != io.EOF {
				t.Fatalf("after the last descriptor: err = %v, want io.EOF", err)
			}
		})
	}
}

func TestReadRawPayloadIsAFreshSlice(t *testing.T) {
	stream := append(rawDescriptor(TypeVendor, 1, 0, 3, []byte("abc")), rawDescriptor(TypeVendor, 1, 0, 3, []byte("xyz"))...)
	r := NewReader(bytes.NewReader(stream), DefaultLimits())
	_, first, _ := r.ReadRaw()
	_, second, _ := r.ReadRaw()
	if string(first) != "abc" || string(second) != "xyz" {
		t.Fatalf("payloads %q %q: the second read overwrote the first", first, second)
	}
}

func TestReadRawOnEmptyStreamIsCleanEOF(t *testing.T) {
	r := NewReader(bytes.NewReader(nil), DefaultLimits())
	if _, _, err := r.ReadRaw(); err != io.EOF {
		t.Fatalf("err = %v, want io.EOF", err)
	}
}

func TestReadRawTruncatedDescriptorIsErrTruncatedAtTheEnd(t *testing.T) {
	first := rawDescriptor(TypePing, 1, 0, 0, nil)
	second := rawDescriptor(TypeQuery, 3, 0, 10, []byte("0123456789"))
	cases := []struct {
		name string
		keep int // bytes of second kept
	}{
		{"one header byte", 1},
		{"inside the header", 10},
		{"header without payload", HeaderLen},
		{"inside the payload", HeaderLen + 4},
		{"one payload byte short", HeaderLen + 9},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stream := append(append([]byte{}, first...), second[:c.keep]...)
			r := NewReader(bytes.NewReader(stream), DefaultLimits())
			if _, _, err := r.ReadRaw(); err != nil {
				t.Fatal(err)
			}
			_, _, err := r.ReadRaw()
			if !errors.Is(err, ErrTruncated) {
				t.Fatalf("err = %v, want ErrTruncated", err)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err %T is not *Error", err)
			}
			if e.Offset != len(stream) {
				t.Errorf("Offset = %d, want %d (the end of the stream)", e.Offset, len(stream))
			}
			if r.Offset() != int64(len(stream)) {
				t.Errorf("Reader.Offset() = %d, want %d", r.Offset(), len(stream))
			}
		})
	}
}

func TestReadRawRefusesLengthsOverTheCapsAfterTheHeader(t *testing.T) {
	small := Limits{Query: 10, QueryHit: 20, Bye: 5, Other: 8}
	cases := []struct {
		name  string
		lim   Limits
		t     Type
		claim uint32
		ok    bool
	}{
		{"query at its cap", DefaultLimits(), TypeQuery, 1024, true},
		{"query one over its cap", DefaultLimits(), TypeQuery, 1025, false},
		{"bye at its cap", DefaultLimits(), TypeBye, 4096, true},
		{"bye one over its cap", DefaultLimits(), TypeBye, 4097, false},
		{"ping at the other cap", DefaultLimits(), TypePing, 40960, true},
		{"ping one over the other cap", DefaultLimits(), TypePing, 40961, false},
		{"vendor one over the other cap", DefaultLimits(), TypeVendor, 40961, false},
		{"queryhit at the 64 KiB limit", DefaultLimits(), TypeQueryHit, 0xFFFF, true},
		{"queryhit of 65536 bytes needs bit 16", DefaultLimits(), TypeQueryHit, 0x10000, false},
		{"marked length (sflag form)", DefaultLimits(), TypePing, 0x80000004, false},
		{"marked length under a huge cap", Limits{1 << 31, 1 << 31, 1 << 31, 1 << 31}, TypePing, 0x80000004, false},
		{"all bits set", DefaultLimits(), TypeHSEP, 0xFFFFFFFF, false},
		{"custom query cap", small, TypeQuery, 11, false},
		{"custom query cap met", small, TypeQuery, 10, true},
		{"custom hit cap", small, TypeQueryHit, 21, false},
		{"custom bye cap", small, TypeBye, 6, false},
		{"custom other cap", small, TypePong, 9, false},
		{"custom other cap met", small, TypePong, 8, true},
		{"zero limits mean the defaults", Limits{}, TypeQuery, 1024, true},
		{"zero limits mean the defaults, over", Limits{}, TypeQuery, 1025, false},
	}
	prefix := rawDescriptor(TypeVendor, 1, 0, 5, []byte("hello")) // the bad one starts at 28
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			payload := make([]byte, 0)
			if c.ok {
				payload = make([]byte, c.claim)
			}
			stream := append(append([]byte{}, prefix...), rawDescriptor(c.t, 1, 0, c.claim, payload)...)
			r := NewReader(bytes.NewReader(stream), c.lim)
			if _, _, err := r.ReadRaw(); err != nil {
				t.Fatal(err)
			}
			h, b, err := r.ReadRaw()
			if c.ok {
				if err != nil || len(b) != int(c.claim) {
					t.Fatalf("err = %v, len = %d; want a %d-byte payload", err, len(b), c.claim)
				}
				return
			}
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("err = %v, want ErrTooLarge", err)
			}
			if off := ErrorOffset(err); off != len(prefix)+19 {
				t.Errorf("error offset = %d, want %d (the length field)", off, len(prefix)+19)
			}
			if r.Offset() != int64(len(prefix)+HeaderLen) {
				t.Errorf("read %d bytes, want %d (just the header)", r.Offset(), len(prefix)+HeaderLen)
			}
			if h.Type != c.t || h.Length != c.claim || b != nil {
				t.Errorf("header %+v payload %d bytes; want the refused header and no payload", h, len(b))
			}
		})
	}
}

// endlessReader serves a header and then zeros forever, counting bytes.
type endlessReader struct {
	head []byte
	n    int64
}

func (e *endlessReader) Read(p []byte) (int, error) {
	for i := range p {
		if e.n < int64(len(e.head)) {
			p[i] = e.head[e.n]
		} else {
			p[i] = 0
		}
		e.n++
	}
	return len(p), nil
}

func TestReadRawRefusesAHugeClaimWithoutAllocatingIt(t *testing.T) {
	const claim = 40_000_000
	head := rawDescriptor(TypeQueryHit, 3, 0, claim, nil)
	src := &endlessReader{head: head}
	r := NewReader(src, Limits{Query: 1 << 31, QueryHit: 1 << 31, Bye: 1 << 31, Other: 1 << 31})
	_, _, err := r.ReadRaw()
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if src.n != HeaderLen {
		t.Errorf("read %d bytes from the source, want exactly %d", src.n, HeaderLen)
	}
	if ErrorOffset(err) != 19 {
		t.Errorf("error offset %d, want 19", ErrorOffset(err))
	}

	// The same again under the default caps, measuring what is allocated.
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const rounds = 20
	for i := 0; i < rounds; i++ {
		src := &endlessReader{head: head}
		if _, _, err := NewReader(src, DefaultLimits()).ReadRaw(); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("err = %v", err)
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / rounds; per > 4096 {
		t.Errorf("refusing a %d-byte claim allocated %d bytes per call", claim, per)
	}
	allocs := testing.AllocsPerRun(20, func() {
		src := &endlessReader{head: head}
		_, _, _ = NewReader(src, DefaultLimits()).ReadRaw()
	})
	if allocs > 8 {
		t.Errorf("%v allocations per refused descriptor, want a handful (reader, error)", allocs)
	}
}

type failingReader struct{ err error }

func (f failingReader) Read([]byte) (int, error) { return 0, f.err }

func TestReadRawPassesOtherReadErrorsThrough(t *testing.T) {
	boom := errors.New("connection reset")
	r := NewReader(io.MultiReader(bytes.NewReader(rawDescriptor(TypePing, 1, 0, 0, nil)[:5]), failingReader{boom}), DefaultLimits())
	if _, _, err := r.ReadRaw(); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want %v", err, boom)
	}
	r = NewReader(io.MultiReader(bytes.NewReader(rawDescriptor(TypeVendor, 1, 0, 9, []byte("abc"))), failingReader{boom}), DefaultLimits())
	if _, _, err := r.ReadRaw(); !errors.Is(err, boom) {
		t.Fatalf("in the payload: err = %v, want %v", err, boom)
	}
}

func TestReadMessageDecodesEveryRecordedDescriptor(t *testing.T) {
	for _, f := range descriptorFiles {
		t.Run(f.name, func(t *testing.T) {
			body, base := recordedDescriptors(t, f.name)
			r := NewReader(bytes.NewReader(body), DefaultLimits())
			n := 0
			for {
				m, err := r.ReadMessage()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("descriptor %d at stream offset %d: %v", n, base+int(r.Offset()), err)
				}
				if m.Payload == nil || m.Payload.Type() != m.Header.Type {
					t.Fatalf("descriptor %d: payload %T for type %v", n, m.Payload, m.Header.Type)
				}
				n++
			}
			if n != f.descriptors {
				t.Errorf("%d descriptors, want %d", n, f.descriptors)
			}
		})
	}
}

func TestReadMessageReportsDecodeErrorsAtStreamOffsets(t *testing.T) {
	// A Pong whose 14 fixed bytes are followed by a GGEP block with the
	// reserved flag 0x10 set: the flags byte is at payload offset 15.
	pong := make([]byte, 14)
	pong = append(pong, GGEPMagic, 0x90|1, 'X', 0x40)
	prefix := rawDescriptor(TypePing, 1, 0, 0, nil)
	stream := append(append([]byte{}, prefix...), rawDescriptor(TypePong, 1, 0, uint32(len(pong)), pong)...)
	stream = append(stream, rawDescriptor(TypePing, 1, 0, 0, nil)...)
	r := NewReader(bytes.NewReader(stream), DefaultLimits())
	if _, err := r.ReadMessage(); err != nil {
		t.Fatal(err)
	}
	m, err := r.ReadMessage()
	if !errors.Is(err, ErrBadGGEP) {
		t.Fatalf("err = %v, want ErrBadGGEP", err)
	}
	if want := len(prefix) + HeaderLen + 15; ErrorOffset(err) != want {
		t.Errorf("error offset %d, want %d (the GGEP flags byte in the stream)", ErrorOffset(err), want)
	}
	if m.Header.Type != TypePong || m.Payload != nil {
		t.Errorf("message %+v: want the Pong header and no payload", m)
	}
	// The framing is intact: the next descriptor reads.
	if m, err := r.ReadMessage(); err != nil || m.Header.Type != TypePing {
		t.Fatalf("after the bad pong: %v %v", m.Header.Type, err)
	}
}

// FuzzReaderStream reads arbitrary bytes as a descriptor stream. Framing
// must hold (every descriptor read re-encodes, with WriteRaw, to exactly
// the bytes consumed), every payload the decoders accept must re-encode to
// exactly its bytes, and an error must be an *Error with an offset inside
// the input, or io.EOF at a descriptor boundary.
func FuzzReaderStream(f *testing.F) {
	for _, rf := range descriptorFiles {
		body, _ := recordedDescriptors(f, rf.name)
		f.Add(body)
		for _, d := range splitDescriptors(f, body) {
			f.Add(d)
		}
	}
	f.Add(rawDescriptor(TypeQuery, 1, 0, 2000, nil))
	f.Add(rawDescriptor(TypePing, 1, 0, 0x80000001, []byte{0}))
	f.Add([]byte("short"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var out []byte // the descriptors read, written back
		r := NewReader(bytes.NewReader(in), DefaultLimits())
		var framed int64 // bytes of the whole descriptors read
		for {
			start := r.Offset()
			h, p, err := r.ReadRaw()
			if err == io.EOF {
				if start != int64(len(in)) {
					t.Fatalf("io.EOF at %d of %d bytes", start, len(in))
				}
				break
			}
			if err != nil {
				var e *Error
				if !errors.As(err, &e) || e.Offset < int(start) || e.Offset > len(in) {
					t.Fatalf("error %v (offset %d) for the descriptor at %d of %d bytes", err, ErrorOffset(err), start, len(in))
				}
				break
			}
			framed = r.Offset()
			h.Length = uint32(len(p))
			out = append(h.AppendTo(out), p...)
			payload, err := DecodePayload(h.Type, p)
			if err != nil {
				if off := ErrorOffset(err); off < -1 || off > len(p) {
					t.Fatalf("%v: error offset %d outside the %d-byte payload: %v", h.Type, off, len(p), err)
				}
				continue
			}
			enc, err := payload.AppendTo(nil)
			if err != nil {
				t.Fatalf("%v: re-encoding an accepted payload: %v", h.Type, err)
			}
			if !bytes.Equal(enc, p) {
				t.Fatalf("%v: re-encoding differs\n got %x\nwant %x", h.Type, enc, p)
			}
		}
		if !bytes.Equal(out, in[:framed]) {
			t.Fatalf("the descriptors read do not write back to the input")
		}
	})
}
