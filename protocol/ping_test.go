package protocol

import (
	"bytes"
	"reflect"
	"testing"
)

func TestDecodePingEmptyPayloadIsAPlainPing(t *testing.T) {
	for _, in := range [][]byte{nil, {}} {
		p, err := DecodePing(in)
		if err != nil {
			t.Fatal(err)
		}
		if p.GGEP != nil {
			t.Fatalf("GGEP = %v, want nil", p.GGEP)
		}
		payloadMustReencode(t, p, nil)
		if got := p.String(); got != "Ping" {
			t.Fatalf("String() = %q", got)
		}
	}
}

func TestEveryRecordedPingDecodesWithSCPAndReencodesExactly(t *testing.T) {
	ds := walkAll(t, TypePing)
	if len(ds) != 6 {
		t.Fatalf("%d recorded pings, want 6", len(ds))
	}
	for _, d := range ds {
		p, err := DecodePing(d.payload)
		if err != nil {
			t.Fatalf("%s@%d: %v", d.file, d.offset, err)
		}
		if ids := p.GGEP.IDs(); !reflect.DeepEqual(ids, []string{"SCP"}) {
			t.Errorf("%s@%d: GGEP IDs %v, want [SCP]", d.file, d.offset, ids)
		}
		payloadMustReencode(t, p, d.payload)
	}
}

func TestFreshPingWithGGEPEncodesAsGtkDoes(t *testing.T) {
	// gtk's ultrapeer ping: SCP with the ultra flag, as recorded.
	p := &Ping{GGEP: GGEP{{ID: "SCP", Data: []byte{1}}}}
	want := []byte{0xC3, 0x83, 'S', 'C', 'P', 0x41, 0x01}
	payloadMustReencode(t, p, want)
	q, err := DecodePing(want)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := q.GGEP.Get("SCP"); !bytes.Equal(d, []byte{1}) {
		t.Fatalf("SCP = % x", d)
	}
	if got := q.String(); got != "Ping GGEP[SCP(1)]" {
		t.Fatalf("String() = %q", got)
	}
}

func TestDecodePingRejectsAnythingButOnePureGGEPBlock(t *testing.T) {
	big, err := GGEP{{ID: "X", Data: make([]byte, MaxGGEPPayload-4)}}.AppendTo(nil)
	if err != nil || len(big) != MaxGGEPPayload+1 {
		t.Fatalf("setup: %d bytes, %v", len(big), err)
	}
	tests := []struct {
		name string
		in   []byte
		kind error
		off  int
	}{
		{"legacy text", []byte("hello"), ErrMalformed, 0},
		{"NUL byte", []byte{0}, ErrMalformed, 0},
		{"bytes after the block", []byte{0xC3, 0x82, 'B', 'H', 0x40, 0x00}, ErrMalformed, 5},
		{"second block", []byte{0xC3, 0x82, 'B', 'H', 0x40, 0xC3, 0x82, 'B', 'H', 0x40}, ErrMalformed, 5},
		{"magic alone", []byte{0xC3}, ErrTruncated, 1},
		{"reserved flag", []byte{0xC3, 0x92, 'B', 'H', 0x40}, ErrBadGGEP, 1},
		{"data past the end", []byte{0xC3, 0x82, 'B', 'H', 0x45, 1}, ErrTruncated, 4},
		{"over 1536 bytes", big, ErrTooLarge, MaxGGEPPayload},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodePing(tc.in)
			payloadWantError(t, err, tc.kind, tc.off)
		})
	}
}

func TestPingGGEPOfExactly1536BytesIsAcceptedAndOneMoreIsRefused(t *testing.T) {
	// 0xC3 + flags + "X" + 2-byte length + data = 1536 bytes.
	data := bytes.Repeat([]byte{'a'}, MaxGGEPPayload-5)
	p := &Ping{GGEP: GGEP{{ID: "X", Data: data}}}
	b, err := p.AppendTo(nil)
	if err != nil || len(b) != MaxGGEPPayload {
		t.Fatalf("len %d err %v, want %d bytes", len(b), err, MaxGGEPPayload)
	}
	if _, err := DecodePing(b); err != nil {
		t.Fatalf("a %d-byte block is rejected: %v", MaxGGEPPayload, err)
	}
	p.GGEP[0].Data = append(data, 'a')
	out, err := p.AppendTo([]byte{1, 2})
	payloadWantError(t, err, ErrTooLarge, -1)
	if !bytes.Equal(out, []byte{1, 2}) {
		t.Fatalf("failed AppendTo left % x", out)
	}
}

func FuzzPing(f *testing.F) {
	walkSeeds(f, TypePing)
	f.Add([]byte{})
	f.Add([]byte{0xC3, 0x82, 'B', 'H', 0x40})
	f.Add([]byte{0xC3, 0x03, 'S', 'C', 'P', 0x41, 0x00, 0x82, 'Q', 'K', 0x40})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodePing(b)
		if err != nil {
			payloadFuzzError(t, err)
			return
		}
		payloadMustReencode(t, p, b)
		_ = p.String()
	})
}
