package protocol

import (
	"bytes"
	"net/netip"
	"reflect"
	"testing"
)

func TestPushFieldsSitAtOffsets0_16_20_24(t *testing.T) {
	id := GUID{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	p := &Push{ServentID: id, Index: 0x11223344, IP: [4]byte{192, 0, 2, 7}, Port: 6346}
	want := []byte{
		0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, // servent ID at 0
		0x44, 0x33, 0x22, 0x11, // index LE at 16
		192, 0, 2, 7, // IP BE at 20
		0xCA, 0x18, // port 6346 LE at 24
	}
	payloadMustReencode(t, p, want)
	q, err := DecodePush(want)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(q, p) {
		t.Fatalf("decoded %+v, want %+v", q, p)
	}
	if got := q.AddrPort(); got != netip.MustParseAddrPort("192.0.2.7:6346") {
		t.Fatalf("AddrPort() = %v", got)
	}
}

func TestRecordedPushDecodesAndReencodesExactly(t *testing.T) {
	ds := walkAll(t, TypePush)
	if len(ds) != 1 {
		t.Fatalf("%d recorded pushes, want 1", len(ds))
	}
	d := ds[0]
	p, err := DecodePush(d.payload)
	if err != nil {
		t.Fatal(err)
	}
	payloadMustReencode(t, p, d.payload)
	if p.Index != 0 || p.GGEP != nil {
		t.Errorf("index %d GGEP %v, want index 0 and no GGEP", p.Index, p.GGEP)
	}
	if got := p.AddrPort(); got != netip.MustParseAddrPort("127.0.0.1:16357") {
		t.Errorf("AddrPort() = %v", got)
	}
	if got, want := p.ServentID.String(), "0efd31026d8def9548ee17f219e07503"; got != want {
		t.Errorf("servent ID %s, want %s", got, want)
	}
	t.Log(p)
}

func TestPushWithGGEPTailRoundTrips(t *testing.T) {
	p := &Push{Index: PushIndexRUDP, IP: [4]byte{127, 0, 0, 1}, Port: 1, GGEP: GGEP{{ID: "TLS"}}}
	b, err := p.AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0xC3, 0x83, 'T', 'L', 'S', 0x40}; !bytes.Equal(b[PushLen:], want) {
		t.Fatalf("tail % x, want % x", b[PushLen:], want)
	}
	q, err := DecodePush(b)
	if err != nil {
		t.Fatal(err)
	}
	if !q.GGEP.Has("TLS") || q.Index != PushIndexRUDP {
		t.Fatalf("decoded %v", q)
	}
	payloadMustReencode(t, q, b)
}

func TestDecodePushRejectsShortPayloadsAndImpureTails(t *testing.T) {
	head := make([]byte, PushLen)
	with := func(tail ...byte) []byte { return append(bytes.Clone(head), tail...) }
	big, err := GGEP{{ID: "X", Data: make([]byte, MaxGGEPPayload-4)}}.AppendTo(bytes.Clone(head))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   []byte
		kind error
		off  int
	}{
		{"25 bytes", head[:25], ErrTruncated, 25},
		{"legacy tail", with('x'), ErrMalformed, 26},
		{"bytes after the block", with(0xC3, 0x83, 'T', 'L', 'S', 0x40, 0), ErrMalformed, 32},
		{"ID byte not printable", with(0xC3, 0x82, 'T', 0x01, 0x40), ErrBadGGEP, 29},
		{"extension data cut", with(0xC3, 0x81, '6', 0x50, 1, 2), ErrTruncated, 29},
		{"tail over 1536 bytes", big, ErrTooLarge, PushLen + MaxGGEPPayload},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodePush(tc.in)
			payloadWantError(t, err, tc.kind, tc.off)
		})
	}
}

func FuzzPush(f *testing.F) {
	walkSeeds(f, TypePush)
	f.Add(make([]byte, PushLen))
	f.Add(append(make([]byte, PushLen), 0xC3, 0x83, 'T', 'L', 'S', 0x40))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodePush(b)
		if err != nil {
			payloadFuzzError(t, err)
			return
		}
		payloadMustReencode(t, p, b)
		_ = p.String()
	})
}

// A Push asks for a TLS callback with an empty GGEP "TLS" after its 26
// bytes (gtk-gnutella's build_push); one without it does not.
func TestPushSpeaksTLS(t *testing.T) {
	for _, want := range []bool{true, false} {
		p := &Push{ServentID: GUID{7}, Index: 3, IP: [4]byte{192, 0, 2, 9}, Port: 6346}
		if want {
			p.GGEP = GGEP{{ID: GGEPTLS}}
		}
		b, err := p.AppendTo(nil)
		if err != nil {
			t.Fatal(err)
		}
		if want && len(b) == PushLen || !want && len(b) != PushLen {
			t.Fatalf("Push of %d bytes", len(b))
		}
		back, err := DecodePush(b)
		if err != nil {
			t.Fatal(err)
		}
		if back.SpeaksTLS() != want {
			t.Errorf("SpeaksTLS %v, want %v", back.SpeaksTLS(), want)
		}
	}
}
