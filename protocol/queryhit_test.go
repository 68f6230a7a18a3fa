package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestQueryHitRecordedHitsRoundTripExactly(t *testing.T) {
	payloads := recordedPayloads(t, TypeQueryHit)
	want := []struct {
		port    uint16
		index   uint32
		size    uint64
		name    string
		urn     string
		servent string
	}{
		{16357, 1, 50000, "platypus_beta_only_on_b.txt", "urn:sha1:LOHRPIYSTWZMDOI26JO6GZHXKJRRWYGS", "c940310227d6b24c42a0ce563c942dcd"},
		{16356, 2, 300000, "zebraquokka_interop_alpha.txt", "urn:sha1:X4W42LDG7CDMMJAJT2ODLN7IBG5UYDG7", "0efd31026d8def9548ee17f219e07503"},
	}
	if len(payloads) != len(want) {
		t.Fatalf("%d recorded hits, want %d", len(payloads), len(want))
	}
	for i, p := range payloads {
		w := want[i]
		h, err := DecodeQueryHit(p)
		if err != nil {
			t.Fatalf("hit %d: %v", i, err)
		}
		enc, err := h.AppendTo(nil)
		if err != nil {
			t.Fatalf("hit %d: encode: %v", i, err)
		}
		if !bytes.Equal(enc, p) {
			t.Errorf("hit %d: re-encoded\n got %x\nwant %x", i, enc, p)
		}
		if got := h.AddrPort(); got != netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), w.port) {
			t.Errorf("hit %d: address %v", i, got)
		}
		if h.Speed != 16 {
			t.Errorf("hit %d: speed %d, want 16", i, h.Speed)
		}
		if len(h.Results) != 1 {
			t.Fatalf("hit %d: %d results, want 1", i, len(h.Results))
		}
		r := &h.Results[0]
		if r.Index != w.index || r.FileSize() != w.size || string(r.Name) != w.name {
			t.Errorf("hit %d: result #%d %q size %d, want #%d %q %d", i, r.Index, r.Name, r.FileSize(), w.index, w.name, w.size)
		}
		// gtk-gnutella answered a query with QueryFlagGGEPH: the URN is a
		// GGEP "H" bitprint, followed by "CT" in the same block.
		if u := r.URNs(); len(u) != 1 || u[0].String() != w.urn {
			t.Errorf("hit %d: URNs %v, want [%s]", i, u, w.urn)
		}
		if ids := strings.Join(r.Extensions.GGEP().IDs(), " "); ids != "H CT" {
			t.Errorf("hit %d: record GGEP %q, want \"H CT\"", i, ids)
		}
		if h.Vendor != VendorGTKG || h.NoTrailer {
			t.Errorf("hit %d: vendor %v (no trailer %v), want GTKG", i, h.Vendor, h.NoTrailer)
		}
		if !bytes.Equal(h.OpenData, []byte{0x2C, 0x21}) {
			t.Errorf("hit %d: open data %x, want 2c21", i, h.OpenData)
		}
		flags, valid := h.Flags()
		if (flags != HitFlags{GGEP: true}) || (valid != HitFlags{Push: true, Busy: true, Uploaded: true, GGEP: true}) {
			t.Errorf("hit %d: flags %+v valid %+v", i, flags, valid)
		}
		if ids := strings.Join(h.TrailerGGEP().IDs(), " "); ids != "GTKGV BH" {
			t.Errorf("hit %d: trailer GGEP %q, want \"GTKGV BH\"", i, ids)
		}
		if h.ServentID.String() != w.servent || !bytes.Equal(h.ServentID[:], p[len(p)-16:]) {
			t.Errorf("hit %d: servent %v, want %s", i, h.ServentID, w.servent)
		}
		if s := h.String(); !strings.Contains(s, w.name) || !strings.Contains(s, w.urn) || !strings.Contains(s, "GTKG") {
			t.Errorf("hit %d: String %q lacks name, URN or vendor", i, s)
		}
	}
}

func TestQueryHitDecodePayloadDispatchesToQueryHit(t *testing.T) {
	p := recordedPayloads(t, TypeQueryHit)[0]
	pl, err := DecodePayload(TypeQueryHit, p)
	if err != nil {
		t.Fatal(err)
	}
	if h, ok := pl.(*QueryHit); !ok || h.Type() != TypeQueryHit {
		t.Errorf("DecodePayload gave %T", pl)
	}
}

func TestQueryHitFlagsAreByte0AndByte1(t *testing.T) {
	tests := []struct {
		name  string
		open  []byte
		flags HitFlags
		valid HitFlags
	}{
		{"gtk firewalled and busy", []byte{0x2D, 0x25}, HitFlags{Push: true, Busy: true, GGEP: true}, HitFlags{Push: true, Busy: true, Uploaded: true, GGEP: true}},
		{"push set but not marked valid", []byte{0x01, 0x00}, HitFlags{}, HitFlags{}},
		{"push valid but not set", []byte{0x00, 0x01}, HitFlags{}, HitFlags{Push: true}},
		{"busy value without its valid bit", []byte{0x00, 0x04}, HitFlags{}, HitFlags{}},
		{"uploaded and measured", []byte{0x18, 0x18}, HitFlags{Uploaded: true, SpeedMeasured: true}, HitFlags{Uploaded: true, SpeedMeasured: true}},
		{"LimeWire 4 bytes", []byte{0x3C, 0x31, 0x10, 0x00}, HitFlags{SpeedMeasured: true, GGEP: true}, HitFlags{Push: true, Busy: true, Uploaded: true, SpeedMeasured: true, GGEP: true}},
		{"one byte carries nothing", []byte{0xFF}, HitFlags{}, HitFlags{}},
		{"no open data", nil, HitFlags{}, HitFlags{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &QueryHit{OpenData: tt.open}
			f, v := h.Flags()
			if f != tt.flags || v != tt.valid {
				t.Errorf("flags %+v valid %+v, want %+v %+v", f, v, tt.flags, tt.valid)
			}
		})
	}
}

func TestNewQueryHitWritesTheTrailerAsGTKGnutella(t *testing.T) {
	proxies := []netip.AddrPort{netip.MustParseAddrPort("10.0.0.1:6346"), netip.MustParseAddrPort("192.168.1.2:80")}
	var pushData []byte
	for _, ap := range proxies {
		pushData = AppendPushProxy(pushData, ap)
	}
	tests := []struct {
		name         string
		trailer      HitTrailer
		byte0, byte1 byte
	}{
		{"plain", HitTrailer{}, 0x2C, 0x01},
		{"firewalled puts push in byte 0", HitTrailer{Push: true}, 0x2D, 0x01},
		{"busy and uploaded go to byte 1", HitTrailer{Busy: true, Uploaded: true}, 0x2C, 0x0D},
		{"GGEP flag in byte 1", HitTrailer{Push: true, GGEP: GGEP{{ID: "PUSH", Data: pushData}}}, 0x2D, 0x21},
		{"measured speed in both", HitTrailer{SpeedMeasured: true}, 0x3C, 0x11},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.trailer.Vendor = VendorGTKG
			servent := GUID{1, 2, 3, 4, 5, 6, 7, 8, 0xFF, 10, 11, 12, 13, 14, 15, 0}
			res := []Result{{Index: 7, Size: 1234, Name: []byte("a.txt"), Extensions: ResultExtensions(testSHA1(9), false, nil)}}
			h := NewQueryHit([4]byte{192, 0, 2, 1}, 6346, 100, res, tt.trailer, servent)
			b, err := h.AppendTo(nil)
			if err != nil {
				t.Fatal(err)
			}
			// Header offsets 0/1/3/7, LE port and speed, BE address.
			if b[0] != 1 || binary.LittleEndian.Uint16(b[1:]) != 6346 || !bytes.Equal(b[3:7], []byte{192, 0, 2, 1}) ||
				binary.LittleEndian.Uint32(b[7:]) != 100 {
				t.Errorf("header %x", b[:11])
			}
			if !bytes.Equal(b[len(b)-16:], servent[:]) {
				t.Errorf("last 16 bytes %x, want the servent ID", b[len(b)-16:])
			}
			rec := cat([]byte{7, 0, 0, 0, 0xD2, 0x04, 0, 0}, []byte("a.txt\x00"), []byte(testSHA1(9).String()), []byte{0})
			if !bytes.Equal(b[11:11+len(rec)], rec) {
				t.Errorf("record %q, want %q", b[11:11+len(rec)], rec)
			}
			tr := b[11+len(rec):]
			if string(tr[:4]) != "GTKG" || tr[4] != 2 || tr[5] != tt.byte0 || tr[6] != tt.byte1 {
				t.Errorf("trailer %x, want GTKG 02 %02x %02x", tr[:7], tt.byte0, tt.byte1)
			}
			back, err := DecodeQueryHit(b)
			if err != nil {
				t.Fatal(err)
			}
			f, _ := back.Flags()
			want := HitFlags{Push: tt.trailer.Push, Busy: tt.trailer.Busy, Uploaded: tt.trailer.Uploaded,
				SpeedMeasured: tt.trailer.SpeedMeasured, GGEP: len(tt.trailer.GGEP) > 0}
			if f != want {
				t.Errorf("flags read back %+v, want %+v", f, want)
			}
			if got := back.PushProxies(); len(tt.trailer.GGEP) > 0 && (len(got) != 2 || got[0] != proxies[0] || got[1] != proxies[1]) {
				t.Errorf("push proxies %v, want %v", got, proxies)
			}
			if enc, _ := back.AppendTo(nil); !bytes.Equal(enc, b) {
				t.Errorf("decoded hit re-encodes differently")
			}
		})
	}
}

func TestNewQueryHitWithUnencodableGGEPFailsOnAppend(t *testing.T) {
	h := NewQueryHit([4]byte{1, 2, 3, 4}, 1, 1, []Result{{Name: []byte("x")}}, HitTrailer{GGEP: GGEP{{ID: ""}}}, GUID{})
	if _, err := h.AppendTo(nil); !errors.Is(err, ErrBadGGEP) {
		t.Errorf("error %v, want ErrBadGGEP", err)
	}
}

// hitBytes builds a hit payload: header, records, trailer, servent ID.
func hitBytes(n byte, records, trailer []byte) []byte {
	b := []byte{n, 0xCA, 0x18, 10, 0, 0, 1, 0x40, 0, 0, 0}
	b = append(b, records...)
	b = append(b, trailer...)
	return append(b, bytes.Repeat([]byte{0xEE}, 16)...)
}

func record(index, size uint32, name string, ext []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, index)
	b = binary.LittleEndian.AppendUint32(b, size)
	b = append(b, name...)
	b = append(b, 0)
	b = append(b, ext...)
	return append(b, 0)
}

func TestQueryHitLimeWireTrailerWithFourByteOpenData(t *testing.T) {
	// LimeWire: open data 4 bytes (flags, controls, XML size LE), then a
	// private byte, the GGEP block, and the NUL-terminated XML.
	xml := `<?xml version="1.0"?><audios/>` + "\x00"
	ggep := ggepBytes(t, GGEP{{ID: "PUSH", Data: []byte{10, 0, 0, 9, 0xAA, 0x1A}}, {ID: "BH"}})
	trailer := cat([]byte("LIME"), []byte{4, 0x3D, 0x31, byte(len(xml)), 0}, []byte{0x01}, ggep, []byte(xml))
	p := hitBytes(1, record(3, 99, "song.mp3", []byte(testSHA1(1).String())), trailer)
	h, err := DecodeQueryHit(p)
	if err != nil {
		t.Fatal(err)
	}
	if h.Vendor != VendorLIME || len(h.OpenData) != 4 || binary.LittleEndian.Uint16(h.OpenData[2:]) != uint16(len(xml)) {
		t.Errorf("vendor %v open data %x", h.Vendor, h.OpenData)
	}
	f, _ := h.Flags()
	if (f != HitFlags{Push: true, SpeedMeasured: true, GGEP: true}) {
		t.Errorf("flags %+v", f)
	}
	if !bytes.HasSuffix(h.Private, []byte(xml)) || h.Private[0] != 0x01 {
		t.Errorf("private area %q", h.Private)
	}
	if got := h.PushProxies(); len(got) != 1 || got[0] != netip.MustParseAddrPort("10.0.0.9:6826") {
		t.Errorf("push proxies %v", got)
	}
	if enc, err := h.AppendTo(nil); err != nil || !bytes.Equal(enc, p) {
		t.Errorf("re-encoded %x (%v), want %x", enc, err, p)
	}
	if h.AddrPort() != netip.MustParseAddrPort("10.0.0.1:6346") {
		t.Errorf("address %v", h.AddrPort())
	}
}

func TestQueryHitRecordExtensionShapes(t *testing.T) {
	h := testSHA1(0x77)
	bitprint := "urn:bitprint:" + h.Base32() + "." + strings.Repeat("T", 39)
	lf := ggepBytes(t, GGEP{{ID: "LF", Data: []byte{0x00, 0x00, 0x00, 0x00, 0x01}, COBS: true}})
	tests := []struct {
		name string
		size uint32
		ext  []byte
		urns int
		file uint64
	}{
		{"no extensions", 10, nil, 0, 10},
		{"sha1 text", 10, []byte(h.String()), 1, 10},
		{"bitprint text", 10, []byte(bitprint), 1, 10},
		{"bare urn: and empty items kept", 10, []byte("urn:\x1C\x1C"), 0, 10},
		{"GGEP H (type 1)", 10, ggepBytes(t, GGEP{{ID: "H", Data: GGEPHash(h)}}), 1, 10},
		{"LF size above 4 GiB (COBS)", LargeFileSize, cat([]byte(h.String()), []byte{0x1C}, lf), 1, 1 << 32},
		{"0xFFFFFFFF without LF", LargeFileSize, nil, 0, LargeFileSize},
		{"XML text", 10, []byte("<audio/>"), 0, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := hitBytes(2, cat(record(1, tt.size, "a", tt.ext), record(2, 5, "b", nil)), []byte("GTKG\x02\x2c\x01"))
			hit, err := DecodeQueryHit(p)
			if err != nil {
				t.Fatal(err)
			}
			r := hit.Results[0]
			if u := r.URNs(); len(u) != tt.urns || (tt.urns == 1 && u[0] != h) {
				t.Errorf("URNs %v, want %d of %v", u, tt.urns, h)
			}
			if r.FileSize() != tt.file {
				t.Errorf("FileSize %d, want %d", r.FileSize(), tt.file)
			}
			if len(hit.Results[1].Extensions) != 0 || string(hit.Results[1].Name) != "b" {
				t.Errorf("second record %+v", hit.Results[1])
			}
			if enc, err := hit.AppendTo(nil); err != nil || !bytes.Equal(enc, p) {
				t.Errorf("re-encoded %x (%v), want %x", enc, err, p)
			}
		})
	}
}

func TestQueryHitFreshRecordGGEPIsCOBSEncodedToAvoidNUL(t *testing.T) {
	alt := []byte{10, 0, 0, 1, 0xCA, 0x18} // holds zeros
	res := []Result{{Index: 1, Size: LargeFileSize, Name: []byte("big.iso"),
		Extensions: ResultExtensions(testSHA1(3), true, GGEP{{ID: "LF", Data: []byte{0, 0, 0, 0, 2}}, {ID: "ALT", Data: alt}})}}
	h := NewQueryHit([4]byte{1, 1, 1, 1}, 1, 1, res, HitTrailer{Vendor: VendorGTKG}, GUID{})
	b, err := h.AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeQueryHit(b)
	if err != nil {
		t.Fatalf("decode %x: %v", b, err)
	}
	r := back.Results[0]
	if r.FileSize() != 2<<32 {
		t.Errorf("FileSize %d, want %d", r.FileSize(), uint64(2)<<32)
	}
	if d, _ := r.Extensions.GGEP().Get("ALT"); !bytes.Equal(d, alt) {
		t.Errorf("ALT %x, want %x", d, alt)
	}
	if u := r.URNs(); len(u) != 1 || u[0] != testSHA1(3) {
		t.Errorf("URNs %v", u)
	}
}

func TestQueryHitWithoutTrailer(t *testing.T) {
	p := hitBytes(1, record(1, 2, "x", nil), nil)
	h, err := DecodeQueryHit(p)
	if err != nil {
		t.Fatal(err)
	}
	if !h.NoTrailer || h.OpenData != nil || h.Private != nil {
		t.Errorf("NoTrailer %v open %x private %x", h.NoTrailer, h.OpenData, h.Private)
	}
	if f, v := h.Flags(); f != (HitFlags{}) || v != (HitFlags{}) {
		t.Errorf("flags %+v %+v, want none", f, v)
	}
	if enc, err := h.AppendTo(nil); err != nil || !bytes.Equal(enc, p) {
		t.Errorf("re-encoded %x (%v), want %x", enc, err, p)
	}
	if !strings.Contains(h.String(), "no-trailer") {
		t.Errorf("String %q", h.String())
	}
}

func TestDecodeQueryHitErrorsCarryKindAndOffset(t *testing.T) {
	good := record(1, 2, "x", nil) // 11 bytes
	bh := ggepBytes(t, GGEP{{ID: "BH"}})
	nulGGEP := []byte{0xC3, 0x81, 'A', 0x42, 'z', 0x00} // data "z\x00" would carry a NUL
	tests := []struct {
		name    string
		payload []byte
		kind    error
		offset  int
	}{
		{"shorter than 27 bytes", make([]byte, 26), ErrTruncated, 26},
		{"zero results", hitBytes(0, good, nil), ErrMalformed, 0},
		{"count says 2, one record", hitBytes(2, good, nil), ErrMalformed, 22},
		{"record header runs into the servent ID", hitBytes(1, []byte{1, 2, 3}, nil), ErrMalformed, 11},
		{"name without NUL", hitBytes(1, []byte{1, 0, 0, 0, 2, 0, 0, 0, 'a', 'b'}, nil), ErrMalformed, 19},
		{"extension area without NUL", hitBytes(1, []byte{1, 0, 0, 0, 2, 0, 0, 0, 'a', 0, 'u'}, nil), ErrMalformed, 21},
		{"NUL inside a record GGEP block", hitBytes(1, cat(good[:10], nulGGEP, []byte{0}), nil), ErrMalformed, 26},
		{"junk after a record GGEP block", hitBytes(1, cat(good[:10], bh, []byte("x"), []byte{0}), nil), ErrMalformed, 21 + len(bh)},
		{"bad record GGEP", hitBytes(1, cat(good[:10], []byte{0xC3, 0x81, 0x7F, 0x40}, []byte{0}), nil), ErrBadGGEP, 23},
		{"trailer of 3 bytes", hitBytes(1, good, []byte("GTK")), ErrMalformed, 22},
		{"open data past the servent ID", hitBytes(1, good, []byte("GTKG\x03\x2c\x01")), ErrMalformed, 26},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := DecodeQueryHit(tt.payload)
			if h != nil || !errors.Is(err, tt.kind) {
				t.Fatalf("got %v, %v; want kind %v", h, err, tt.kind)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("%T is not *Error", err)
			}
			if e.Offset != tt.offset {
				t.Errorf("offset %d, want %d (%v)", e.Offset, tt.offset, err)
			}
		})
	}
}

func TestQueryHitAppendToRejectsWhatWouldNotDecodeBack(t *testing.T) {
	one := []Result{{Name: []byte("x")}}
	tests := []struct {
		name string
		h    *QueryHit
	}{
		{"no results", &QueryHit{}},
		{"256 results", &QueryHit{Results: make([]Result, 256)}},
		{"NUL in a name", &QueryHit{Results: []Result{{Name: []byte("a\x00b")}}}},
		{"open data over 255 bytes", &QueryHit{Results: one, OpenData: make([]byte, 256)}},
		{"text item with a NUL", &QueryHit{Results: []Result{{Name: []byte("x"), Extensions: ExtensionArea{TextItem("a\x00")}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.h.AppendTo([]byte("keep"))
			if err == nil {
				t.Fatal("no error")
			}
			if string(b) != "keep" {
				t.Errorf("AppendTo left %q in the buffer, want it untouched", b)
			}
		})
	}
}

func FuzzQueryHit(f *testing.F) {
	for _, p := range recordedPayloads(f, TypeQueryHit) {
		f.Add(p)
	}
	h := testSHA1(0x44)
	f.Add(hitBytes(2, cat(record(1, 2, "a", []byte(h.String()+"\x1C\x1C")), record(3, LargeFileSize, "b",
		ggepBytes(f, GGEP{{ID: "LF", Data: []byte{1, 2, 3, 4, 5}}}))), []byte("LIME\x04\x3c\x31\x00\x00\x01")))
	f.Add(hitBytes(1, record(1, 2, "x", nil), nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		hit, err := DecodeQueryHit(b)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not *Error", err)
			}
			return
		}
		enc, err := hit.AppendTo(nil)
		if err != nil {
			t.Fatalf("decoded %x but cannot encode: %v", b, err)
		}
		if !bytes.Equal(enc, b) {
			t.Fatalf("round trip\n got %x\nwant %x", enc, b)
		}
		_ = hit.String()
		_ = hit.URNs()
		_ = hit.PushProxies()
		for i := range hit.Results {
			_ = hit.Results[i].FileSize()
		}
	})
}

func TestQueryHitURNsCollectsEveryRecordOnce(t *testing.T) {
	a, b := testSHA1(1), testSHA1(2)
	h := &QueryHit{Results: []Result{
		{Extensions: ResultExtensions(a, false, nil)},
		{Extensions: ResultExtensions(a, true, nil)},
		{Extensions: ResultExtensions(b, false, nil)},
		{},
	}}
	if u := h.URNs(); len(u) != 2 || u[0] != a || u[1] != b {
		t.Errorf("URNs %v, want [%v %v]", u, a, b)
	}
}

// GGEP "ALT" of a record comes back as its alternate locations, through an
// encode and decode; an incomplete last entry is ignored.
func TestResultAltLocs(t *testing.T) {
	alt := AppendPushProxy(AppendPushProxy(nil, netip.MustParseAddrPort("127.0.0.7:6346")), netip.MustParseAddrPort("127.0.0.8:1"))
	alt = append(alt, 1, 2, 3)
	r := Result{Index: 1, Size: 5, Name: []byte("a.bin"), Extensions: ResultExtensions(testSHA1(1), true, GGEP{{ID: "ALT", Data: alt}})}
	hit := NewQueryHit([4]byte{127, 0, 0, 1}, 6346, 1, []Result{r}, HitTrailer{Vendor: VendorLIME}, GUID{1})
	b, err := hit.AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeQueryHit(b)
	if err != nil {
		t.Fatal(err)
	}
	got := back.Results[0].AltLocs()
	if len(got) != 2 || got[0] != netip.MustParseAddrPort("127.0.0.7:6346") || got[1] != netip.MustParseAddrPort("127.0.0.8:1") {
		t.Errorf("alt-locs %v", got)
	}
	if (&Result{}).AltLocs() != nil {
		t.Error("alt-locs of a record without ALT")
	}
}

func TestClearPushKeepsTheOtherFlags(t *testing.T) {
	h := NewQueryHit([4]byte{192, 0, 2, 1}, 6346, 100, []Result{{Index: 1, Size: 5, Name: []byte("a")}},
		HitTrailer{Vendor: VendorCode{'G', 'N', 'U', 'T'}, Push: true, Busy: true}, GUID{1})
	b, err := h.AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := DecodeQueryHit(b)
	if err != nil {
		t.Fatal(err)
	}
	if f, v := d.Flags(); !(f.Push && v.Push && f.Busy && v.Busy) {
		t.Fatalf("before: flags %+v valid %+v", f, v)
	}
	d.ClearPush()
	if f, v := d.Flags(); f.Push || !v.Push || !(f.Busy && v.Busy) {
		t.Fatalf("after: flags %+v valid %+v", f, v)
	}
}

// A hit says it takes TLS with an empty GGEP "TLS" in its trailer
// (gtk-gnutella's qhit.c), or the older "GTKG.TLS"; the wire form read
// back says the same.
func TestQueryHitSpeaksTLS(t *testing.T) {
	res := []Result{{Index: 1, Size: 10, Name: []byte("a.txt")}}
	for _, tc := range []struct {
		ggep GGEP
		want bool
	}{
		{GGEP{{ID: GGEPTLS}}, true},
		{GGEP{{ID: "BH"}, {ID: "GTKG.TLS"}}, true},
		{GGEP{{ID: "BH"}}, false},
		{nil, false},
	} {
		h := NewQueryHit([4]byte{192, 0, 2, 1}, 6346, 100, res, HitTrailer{Vendor: VendorGTKG, GGEP: tc.ggep}, GUID{1})
		b, err := h.AppendTo(nil)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeQueryHit(b)
		if err != nil {
			t.Fatal(err)
		}
		if got := back.SpeaksTLS(); got != tc.want {
			t.Errorf("trailer GGEP %v: SpeaksTLS %v, want %v", tc.ggep, got, tc.want)
		}
	}
}
