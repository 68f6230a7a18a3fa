package protocol

import (
	"bytes"
	"net/netip"
	"reflect"
	"testing"
)

// gtkPong is the first Pong of ultrapeer-to-leaf.bin: 127.0.0.1:16356,
// 2 files, 512 KB, GGEP VC=GTKG/0x83, UP=02 ff 32, DU=1.
var gtkPong = []byte{
	0xe4, 0x3f, 0x7f, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00,
	0xc3, 0x02, 'V', 'C', 0x45, 'G', 'T', 'K', 'G', 0x83,
	0x02, 'U', 'P', 0x43, 0x02, 0xff, 0x32,
	0x82, 'D', 'U', 0x41, 0x01,
}

func TestPongFieldsSitAtTheirOffsetsWithPortLEAndIPBE(t *testing.T) {
	p := &Pong{Port: 0x1234, IP: [4]byte{10, 1, 2, 3}, Files: 0x01020304, KB: 0x0A0B0C0D}
	want := []byte{
		0x34, 0x12, // port LE at 0
		10, 1, 2, 3, // IP BE at 2
		0x04, 0x03, 0x02, 0x01, // files LE at 6
		0x0D, 0x0C, 0x0B, 0x0A, // KB LE at 10
	}
	payloadMustReencode(t, p, want)
	q, err := DecodePong(want)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(q, p) {
		t.Fatalf("decoded %+v, want %+v", q, p)
	}
	if got, wantAP := q.AddrPort(), netip.MustParseAddrPort("10.1.2.3:4660"); got != wantAP {
		t.Fatalf("AddrPort() = %v, want %v", got, wantAP)
	}
}

func TestEveryRecordedPongHasVCUPDUAndReencodesExactly(t *testing.T) {
	ds := walkAll(t, TypePong)
	if len(ds) != 7 {
		t.Fatalf("%d recorded pongs, want 7", len(ds))
	}
	for _, d := range ds {
		p, err := DecodePong(d.payload)
		if err != nil {
			t.Fatalf("%s@%d: %v", d.file, d.offset, err)
		}
		payloadMustReencode(t, p, d.payload)
		t.Logf("%s@%d: %v keys=%v", d.file, d.offset, p, p.GGEP.IDs())
		if ids := p.GGEP.IDs(); !reflect.DeepEqual(ids, []string{"VC", "UP", "DU"}) {
			t.Errorf("GGEP keys %v, want [VC UP DU]", ids)
		}
		if got := p.AddrPort(); got != netip.MustParseAddrPort("127.0.0.1:16356") {
			t.Errorf("AddrPort() = %v", got)
		}
		if !p.Ultrapeer() || !isUltrapeerKB(p.KB) {
			t.Errorf("KB %d: the gtk ultrapeer's pong is not marked ultra", p.KB)
		}
		vc, ok, err := p.VendorVersion()
		if !ok || err != nil || vc.Vendor != VendorGTKG {
			t.Errorf("VC = %v, %v, %v", vc, ok, err)
		}
		up, ok, err := p.UltrapeerInfo()
		if !ok || err != nil || up.Version != 2 {
			t.Errorf("UP = %v, %v, %v", up, ok, err)
		}
		du, ok, err := p.DailyUptime()
		if !ok || err != nil || du > MaxDailyUptime {
			t.Errorf("DU = %d, %v, %v", du, ok, err)
		}
	}
}

func TestFreshPongWithTypedExtensionsEncodesExactlyAsGtkDid(t *testing.T) {
	p := &Pong{
		Port: 16356, IP: [4]byte{127, 0, 0, 1}, Files: 2, KB: UltrapeerKB(600, true),
		GGEP: GGEP{
			VendorVersion{Vendor: VendorGTKG, Version: 0x83}.Extension(),
			UltrapeerInfo{Version: 2, FreeLeafSlots: 255, FreeUltrapeerSlots: 50}.Extension(),
			DailyUptimeExtension(1),
		},
	}
	payloadMustReencode(t, p, gtkPong)
	want := "Pong 127.0.0.1:16356 files=2 kb=512 ultrapeer GGEP[VC(5) UP(3) DU(1)]"
	if got := p.String(); got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
}

func TestPongUltrapeerMarking(t *testing.T) {
	up := GGEP{UltrapeerInfo{Version: 2}.Extension()}
	tests := []struct {
		kb   uint32
		ggep GGEP
		want bool
	}{
		{0, nil, false},
		{1, nil, false},
		{4, nil, false},
		{7, nil, false},
		{8, nil, true},
		{12, nil, false},
		{16, nil, true},
		{513, nil, false},
		{1 << 31, nil, true},
		{0xFFFFFFFF, nil, false},
		{3, up, true},
	}
	for _, tc := range tests {
		p := &Pong{KB: tc.kb, GGEP: tc.ggep}
		if got := p.Ultrapeer(); got != tc.want {
			t.Errorf("KB %d GGEP %v: Ultrapeer() = %v, want %v", tc.kb, tc.ggep, got, tc.want)
		}
	}
}

func TestUltrapeerKBRoundsToTheNearestPowerOfTwoOrMakesItOdd(t *testing.T) {
	tests := []struct {
		kb    uint32
		ultra bool
		want  uint32
	}{
		{0, true, 8},
		{5, true, 8},
		{8, true, 8},
		{11, true, 8},
		{12, true, 8}, // tie: gtk keeps the lower power
		{13, true, 16},
		{512, true, 512},
		{600, true, 512},
		{800, true, 1024},
		{1<<31 + 5, true, 1 << 31},
		{0xFFFFFFFF, true, 1 << 31},
		{0, false, 0},
		{1, false, 1},
		{8, false, 9},
		{512, false, 513},
		{513, false, 513},
		{0xFFFFFFFF, false, 0xFFFFFFFF},
	}
	for _, tc := range tests {
		got := UltrapeerKB(tc.kb, tc.ultra)
		if got != tc.want {
			t.Errorf("UltrapeerKB(%d, %v) = %d, want %d", tc.kb, tc.ultra, got, tc.want)
		}
		if p := (&Pong{KB: got}); p.Ultrapeer() != tc.ultra && got != 0 && got != 1 {
			t.Errorf("UltrapeerKB(%d, %v) = %d reads back as ultra=%v", tc.kb, tc.ultra, got, p.Ultrapeer())
		}
	}
}

func TestVarintIsLittleEndianWithoutTrailingZeros(t *testing.T) {
	tests := []struct {
		v    uint64
		wire []byte
	}{
		{0, nil},
		{1, []byte{0x01}},
		{0xFF, []byte{0xFF}},
		{0x100, []byte{0x00, 0x01}},
		{86400, []byte{0x80, 0x51, 0x01}},
		{0x0102030405060708, []byte{8, 7, 6, 5, 4, 3, 2, 1}},
		{^uint64(0), bytes.Repeat([]byte{0xFF}, 8)},
	}
	for _, tc := range tests {
		got := AppendVarint(nil, tc.v)
		if !bytes.Equal(got, tc.wire) {
			t.Errorf("AppendVarint(%d) = % x, want % x", tc.v, got, tc.wire)
		}
		v, err := ParseVarint(tc.wire)
		if err != nil || v != tc.v {
			t.Errorf("ParseVarint(% x) = %d, %v, want %d", tc.wire, v, err, tc.v)
		}
	}
	if v, err := ParseVarint([]byte{0x05, 0x00, 0x00}); err != nil || v != 5 {
		t.Errorf("trailing zeros: %d, %v; gtk reads them as 5", v, err)
	}
	_, err := ParseVarint(make([]byte, 9))
	payloadWantError(t, err, ErrTooLarge, 8)
}

func TestPongTypedReaders(t *testing.T) {
	ext := func(id string, d ...byte) *Pong { return &Pong{GGEP: GGEP{{ID: id, Data: d}}} }

	if _, ok, err := (&Pong{}).DailyUptime(); ok || err != nil {
		t.Errorf("absent DU: ok=%v err=%v", ok, err)
	}
	if v, ok, err := ext("DU").DailyUptime(); !ok || err != nil || v != 0 {
		t.Errorf("empty DU = %d, %v, %v; gtk reads it as 0", v, ok, err)
	}
	if v, _, err := ext("DU", 0x80, 0x51, 0x01).DailyUptime(); err != nil || v != 86400 {
		t.Errorf("DU = %d, %v", v, err)
	}
	_, _, err := ext("DU", 1, 2, 3, 4, 5).DailyUptime()
	payloadWantError(t, err, ErrMalformed, 4)
	if d := DailyUptimeExtension(200000).Data; !bytes.Equal(d, []byte{0x80, 0x51, 0x01}) {
		t.Errorf("DU of 200000 s = % x, want the 86400 cap", d)
	}

	if v, ok, err := ext("VC", 'L', 'I', 'M', 'E').VendorVersion(); !ok || err != nil || v != (VendorVersion{VendorLIME, 0}) {
		t.Errorf("4-byte VC = %v, %v, %v", v, ok, err)
	}
	if v, _, err := ext("VC", 'G', 'T', 'K', 'G', 0x83, 9).VendorVersion(); err != nil || v.String() != "GTKG/131" {
		t.Errorf("6-byte VC = %v, %v", v, err)
	}
	_, _, err = ext("VC", 'G', 'T', 'K').VendorVersion()
	payloadWantError(t, err, ErrTruncated, 3)

	if u, ok, err := ext("UP", 2, 30, 4).UltrapeerInfo(); !ok || err != nil || u != (UltrapeerInfo{2, 30, 4}) {
		t.Errorf("UP = %v, %v, %v", u, ok, err)
	}
	_, _, err = ext("UP", 2, 30).UltrapeerInfo()
	payloadWantError(t, err, ErrTruncated, 2)
	if _, ok, _ := (&Pong{}).UltrapeerInfo(); ok {
		t.Error("absent UP reported present")
	}
}

func TestDecodePongRejectsShortPayloadsAndImpureTails(t *testing.T) {
	head := gtkPong[:PongLen]
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
		{"empty", nil, ErrTruncated, 0},
		{"13 bytes", head[:13], ErrTruncated, 13},
		{"legacy text tail", with('a', 'b'), ErrMalformed, 14},
		{"NUL tail", with(0), ErrMalformed, 14},
		{"bytes after the block", with(0xC3, 0x82, 'B', 'H', 0x40, 0x1C), ErrMalformed, 19},
		{"magic alone", with(0xC3), ErrTruncated, 15},
		{"ID length 0", with(0xC3, 0x80, 0x40), ErrBadGGEP, 15},
		{"bad length byte", with(0xC3, 0x82, 'B', 'H', 0xC0), ErrBadGGEP, 18},
		{"tail over 1536 bytes", big, ErrTooLarge, PongLen + MaxGGEPPayload},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodePong(tc.in)
			payloadWantError(t, err, tc.kind, tc.off)
		})
	}
}

func TestDecodePongWithoutGGEPAndViaDecodePayload(t *testing.T) {
	p, err := DecodePayload(TypePong, gtkPong[:PongLen])
	if err != nil {
		t.Fatal(err)
	}
	pong, ok := p.(*Pong)
	if !ok || pong.GGEP != nil || pong.KB != 512 || pong.Files != 2 {
		t.Fatalf("DecodePayload = %#v", p)
	}
	if p.Type() != TypePong {
		t.Fatalf("Type() = %v", p.Type())
	}
	if _, err := DecodePayload(TypePong, gtkPong[:3]); err == nil {
		t.Fatal("short pong accepted through DecodePayload")
	}
}

func FuzzPong(f *testing.F) {
	walkSeeds(f, TypePong)
	f.Add(bytes.Clone(gtkPong[:PongLen]))
	f.Add(append(bytes.Clone(gtkPong[:PongLen]), 0xC3, 0x82, 'B', 'H', 0x40))
	f.Add(append(bytes.Clone(gtkPong[:PongLen]), 0xC3, 0xC2, 'D', 'U', 0x42, 0x01, 0x01))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodePong(b)
		if err != nil {
			payloadFuzzError(t, err)
			return
		}
		payloadMustReencode(t, p, b)
		_ = p.String()
		_, _, _ = p.DailyUptime()
		_, _, _ = p.VendorVersion()
		_, _, _ = p.UltrapeerInfo()
	})
}

func BenchmarkPongDecode(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(gtkPong)))
	for b.Loop() {
		if _, err := DecodePong(gtkPong); err != nil {
			b.Fatal(err)
		}
	}
}
