package protocol

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
)

// recordedPayloads returns the payloads of every descriptor of type typ in
// the gtk-gnutella recordings, in file order.
func recordedPayloads(t testing.TB, typ Type) [][]byte {
	t.Helper()
	var out [][]byte
	for _, f := range descriptorFiles {
		body, _ := recordedDescriptors(t, f.name)
		for _, d := range splitDescriptors(t, body) {
			if Type(d[16]) == typ {
				out = append(out, d[HeaderLen:])
			}
		}
	}
	return out
}

func TestQueryRecordedQueriesRoundTripExactly(t *testing.T) {
	payloads := recordedPayloads(t, TypeQuery)
	wantSearch := []string{"zebraquokka", "emu", "red kangaroo", "platypus", "wallaby"}
	if len(payloads) != len(wantSearch) {
		t.Fatalf("%d recorded queries, want %d", len(payloads), len(wantSearch))
	}
	for i, p := range payloads {
		q, err := DecodeQuery(p)
		if err != nil {
			t.Fatalf("query %d (%x): %v", i, p, err)
		}
		enc, err := q.AppendTo(nil)
		if err != nil {
			t.Fatalf("query %d: encode: %v", i, err)
		}
		if !bytes.Equal(enc, p) {
			t.Errorf("query %d: re-encoded %x, want %x", i, enc, p)
		}
		// gtk-gnutella sends B9 00: mark, XML, leaf-guided, GGEP H, and bit 8.
		if q.Flags != 0xB900 || p[0] != 0xB9 || p[1] != 0x00 {
			t.Errorf("query %d: flags %#04x (%v), want 0xb900", i, uint16(q.Flags), q.Flags)
		}
		for _, f := range []QueryFlags{QueryFlagMark, QueryFlagXML, QueryFlagLeafGuided, QueryFlagGGEPH} {
			if !q.Flags.Has(f) {
				t.Errorf("query %d: flag %v not set", i, f)
			}
		}
		for _, f := range []QueryFlags{QueryFlagFirewalled, QueryFlagOOB, QueryFlagFWTransfer} {
			if q.Flags.Has(f) {
				t.Errorf("query %d: flag %v set", i, f)
			}
		}
		s, ok := q.SearchString()
		if s != wantSearch[i] || !ok {
			t.Errorf("query %d: search %q (utf8 %v), want %q", i, s, ok, wantSearch[i])
		}
		if u := q.URNs(); len(u) != 0 {
			t.Errorf("query %d: URNs %v, want none", i, u)
		}
		if g := q.Extensions.GGEP(); len(g) != 1 || g[0].ID != "PR" || len(g[0].Data) != 0 {
			t.Errorf("query %d: GGEP %v, want GGEP[PR(0)]", i, g)
		}
		if q.FinalNUL || q.Extensions.WantsURNs() {
			t.Errorf("query %d: FinalNUL %v WantsURNs %v, want false", i, q.FinalNUL, q.Extensions.WantsURNs())
		}
		if got := q.String(); !strings.Contains(got, `"`+wantSearch[i]+`"`) || !strings.Contains(got, "GGEP[PR(0)]") {
			t.Errorf("query %d: String %q lacks the search or the GGEP", i, got)
		}
	}
}

func TestQueryDecodePayloadDispatchesToQuery(t *testing.T) {
	p := recordedPayloads(t, TypeQuery)[0]
	pl, err := DecodePayload(TypeQuery, p)
	if err != nil {
		t.Fatal(err)
	}
	if q, ok := pl.(*Query); !ok || string(q.Search) != "zebraquokka" || q.Type() != TypeQuery {
		t.Errorf("DecodePayload gave %T %v", pl, pl)
	}
}

func TestQueryFlagsSitInTheFirstWireByte(t *testing.T) {
	tests := []struct {
		name  string
		flags QueryFlags
		byte0 byte
		byte1 byte
	}{
		{"originated query always has the mark", 0, 0x80, 0x00},
		{"firewalled sets 0x40 in byte 0", QueryFlagFirewalled, 0xC0, 0x00},
		{"OOB sets 0x04 in byte 0", QueryFlagOOB, 0x84, 0x00},
		{"GGEP H sets 0x08 in byte 0", QueryFlagGGEPH, 0x88, 0x00},
		{"XML and leaf-guided", QueryFlagXML | QueryFlagLeafGuided, 0xB0, 0x00},
		{"fw-transfer sets 0x02 in byte 0", QueryFlagFWTransfer, 0x82, 0x00},
		{"low bits go to byte 1", 0x0132, 0x81, 0x32},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := NewQuery("abc", tt.flags)
			b, err := q.AppendTo(nil)
			if err != nil {
				t.Fatal(err)
			}
			if b[0] != tt.byte0 || b[1] != tt.byte1 {
				t.Errorf("flag bytes %02x %02x, want %02x %02x", b[0], b[1], tt.byte0, tt.byte1)
			}
			if b[0]&0x80 == 0 {
				t.Error("originated query lacks 0x80 in byte 0")
			}
			back, err := DecodeQuery(b)
			if err != nil {
				t.Fatal(err)
			}
			if back.Flags != tt.flags|QueryFlagMark {
				t.Errorf("decoded flags %v, want %v", back.Flags, tt.flags|QueryFlagMark)
			}
		})
	}
}

func TestQueryFlagsString(t *testing.T) {
	tests := []struct {
		f    QueryFlags
		want string
	}{
		{0xB900, "mark|xml|leaf-guided|ggep-h+0x100"},
		{QueryFlagMark | QueryFlagFirewalled | QueryFlagOOB, "mark|firewalled|oob"},
		{QueryFlagMark | QueryFlagFWTransfer, "mark|fw-transfer"},
		{0x0040, "speed=64"},
		{0, "speed=0"},
	}
	for _, tt := range tests {
		if got := tt.f.String(); got != tt.want {
			t.Errorf("%#04x: String = %q, want %q", uint16(tt.f), got, tt.want)
		}
	}
}

func TestNewQueryPutsURNsAsTextItems(t *testing.T) {
	a, b := testSHA1(0xA0), testSHA1(0xB0)
	q := NewQuery("", QueryFlagGGEPH, a, b)
	enc, err := q.AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := cat([]byte{0x88, 0x00, 0x00}, []byte(a.String()), []byte{0x1C}, []byte(b.String()))
	if !bytes.Equal(enc, want) {
		t.Errorf("encoded %q, want %q", enc, want)
	}
	back, err := DecodeQuery(enc)
	if err != nil {
		t.Fatal(err)
	}
	if u := back.URNs(); len(u) != 2 || u[0] != a || u[1] != b {
		t.Errorf("URNs %v, want [%v %v]", u, a, b)
	}
	if !strings.Contains(back.String(), a.String()) {
		t.Errorf("String %q lacks %v", back.String(), a)
	}
}

func TestQueryDecoderIsFramingOnly(t *testing.T) {
	tests := []struct {
		name    string
		payload []byte
		flags   QueryFlags
		search  string
		utf8    bool
	}{
		{"flags zero (ancient)", []byte("\x00\x00abc\x00"), 0, "abc", true},
		{"invalid UTF-8", []byte("\x80\x00\xff\xfe\x00"), QueryFlagMark, "\xff\xfe", false},
		{"one-byte text", []byte("\x80\x00a\x00"), QueryFlagMark, "a", true},
		{"empty text, 3 bytes", []byte("\x80\x00\x00"), QueryFlagMark, "", true},
		{"UTF-8 text", []byte("\x80\x00k\xc3\xa4nguru\x00"), QueryFlagMark, "känguru", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := DecodeQuery(tt.payload)
			if err != nil {
				t.Fatal(err)
			}
			s, ok := q.SearchString()
			if q.Flags != tt.flags || s != tt.search || ok != tt.utf8 {
				t.Errorf("flags %v search %q utf8 %v, want %v %q %v", q.Flags, s, ok, tt.flags, tt.search, tt.utf8)
			}
			enc, err := q.AppendTo(nil)
			if err != nil || !bytes.Equal(enc, tt.payload) {
				t.Errorf("re-encoded %x (%v), want %x", enc, err, tt.payload)
			}
		})
	}
}

func TestQueryKeepsEveryExtensionAreaShapeExactly(t *testing.T) {
	h := testSHA1(0x5A)
	bitprint := "urn:bitprint:" + h.Base32() + "." + strings.Repeat("Q", 39)
	hashGGEP := ggepBytes(t, GGEP{{ID: "H", Data: GGEPHash(h)}})
	tests := []struct {
		name      string
		area      []byte
		urns      int
		wantsURNs bool
		finalNUL  bool
	}{
		{"bare urn: request", []byte("urn:"), 0, true, false},
		{"urn:sha1: request and final NUL (LimeWire)", []byte("urn:sha1:\x00"), 0, true, true},
		{"sha1 urn", []byte(h.String()), 1, false, false},
		{"bitprint urn", []byte(bitprint), 1, false, false},
		{"bitprint and the same sha1", []byte(bitprint + "\x1C" + h.String()), 1, false, false},
		{"GGEP H", hashGGEP, 1, false, false},
		{"GGEP H then final NUL", cat(hashGGEP, []byte{0}), 1, false, true},
		{"XML then GGEP", cat([]byte(`<?xml?><audios/>`), []byte{0x1C}, hashGGEP), 1, false, false},
		{"empty items", []byte("\x1C\x1C\x1C"), 0, false, false},
		{"unknown text", []byte("some future thing"), 0, false, false},
		{"NUL-separated legacy items", []byte("urn:\x00" + h.String()), 1, true, false},
		{"just a final NUL", []byte{0}, 0, false, true},
		{"two final NULs", []byte{0, 0}, 0, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := cat([]byte{0x80, 0x00}, []byte("abc\x00"), tt.area)
			q, err := DecodeQuery(p)
			if err != nil {
				t.Fatal(err)
			}
			if string(q.Search) != "abc" {
				t.Errorf("search %q", q.Search)
			}
			if u := q.URNs(); len(u) != tt.urns || (tt.urns == 1 && u[0] != h) {
				t.Errorf("URNs %v, want %d of %v", u, tt.urns, h)
			}
			if q.Extensions.WantsURNs() != tt.wantsURNs || q.FinalNUL != tt.finalNUL {
				t.Errorf("WantsURNs %v FinalNUL %v, want %v %v", q.Extensions.WantsURNs(), q.FinalNUL, tt.wantsURNs, tt.finalNUL)
			}
			enc, err := q.AppendTo(nil)
			if err != nil || !bytes.Equal(enc, p) {
				t.Errorf("re-encoded %x (%v), want %x", enc, err, p)
			}
		})
	}
}

func TestDecodeQueryErrorsCarryKindAndOffset(t *testing.T) {
	bh := ggepBytes(t, GGEP{{ID: "BH"}})
	tests := []struct {
		name    string
		payload []byte
		kind    error
		offset  int
	}{
		{"empty payload", nil, ErrTruncated, 0},
		{"flags only", []byte{0x80, 0x00}, ErrTruncated, 2},
		{"no NUL after the text", []byte("\x80\x00abc"), ErrMalformed, 2},
		{"junk after a GGEP block", cat([]byte("\x80\x00a\x00"), bh, []byte("x")), ErrMalformed, 4 + len(bh)},
		{"GGEP with reserved flag", []byte("\x80\x00a\x00\xC3\x91A\x40"), ErrBadGGEP, 5},
		{"GGEP cut short", []byte("\x80\x00a\x00\xC3\x81A\x45\x01"), ErrTruncated, 7},
		{"GGEP ID not printable", []byte("\x80\x00\x00urn:\x1C\xC3\x81\x01\x40"), ErrBadGGEP, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := DecodeQuery(tt.payload)
			if q != nil || !errors.Is(err, tt.kind) {
				t.Fatalf("got %v, %v; want kind %v", q, err, tt.kind)
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

func TestQueryAppendToRejectsWhatWouldNotDecodeBack(t *testing.T) {
	tests := []struct {
		name string
		q    *Query
	}{
		{"NUL in the search text", &Query{Flags: QueryFlagMark, Search: []byte("a\x00b")}},
		{"text item with a separator", &Query{Flags: QueryFlagMark, Extensions: ExtensionArea{TextItem("a\x1Cb")}}},
		{"GGEP item with a bad ID", &Query{Flags: QueryFlagMark, Extensions: ExtensionArea{GGEPItem(GGEP{{ID: ""}})}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.q.AppendTo([]byte("keep"))
			if err == nil {
				t.Fatal("no error")
			}
			if string(b) != "keep" {
				t.Errorf("AppendTo left %q in the buffer, want it untouched", b)
			}
		})
	}
}

func TestQueryWithFreshGGEPHoldingNULRoundTrips(t *testing.T) {
	// Query areas allow NULs inside GGEP data: the block frames itself.
	g := GGEP{{ID: "M", Data: []byte{0x04, 0x00}}, {ID: "NP"}}
	q := &Query{Flags: QueryFlagMark, Search: []byte("song"), Extensions: ExtensionArea{GGEPItem(g)}}
	enc, err := q.AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeQuery(enc)
	if err != nil {
		t.Fatalf("decode %x: %v", enc, err)
	}
	if d, _ := back.Extensions.GGEP().Get("M"); !bytes.Equal(d, []byte{4, 0}) || !back.Extensions.GGEP().Has("NP") {
		t.Errorf("GGEP back %v", back.Extensions.GGEP())
	}
}

func FuzzQuery(f *testing.F) {
	for _, p := range recordedPayloads(f, TypeQuery) {
		f.Add(p)
	}
	h := testSHA1(0x33)
	f.Add([]byte("\x80\x00\x00urn:sha1:\x00"))
	f.Add([]byte("\x80\x00abc\x00" + h.String() + "\x1C\x1C<xml/>\x00"))
	f.Add([]byte("\x00\x00\x00\x00\x00"))
	f.Add(cat([]byte("\x80\x00a\x00"), ggepBytes(f, GGEP{{ID: "H", Data: GGEPHash(h)}, {ID: "M", Data: []byte{0}}}), []byte{0x1C}))
	f.Add(cat([]byte("\x80\x00a\x00"), ggepBytes(f, GGEP{{ID: "Z", Data: make([]byte, 65000), Deflate: true}}),
		[]byte{0x1C}, ggepBytes(f, GGEP{{ID: "GNUT.RW", Data: make([]byte, 2000), Deflate: true}})))
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := DecodeQuery(b)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not *Error", err)
			}
			return
		}
		enc, err := q.AppendTo(nil)
		if err != nil {
			t.Fatalf("decoded %x but cannot encode: %v", b, err)
		}
		if !bytes.Equal(enc, b) {
			t.Fatalf("round trip\n got %x\nwant %x", enc, b)
		}
		_ = q.String()
		_ = q.URNs()
		// the framing scan agrees with the decode
		ids := q.Extensions.GGEP().IDs()
		for _, id := range ids {
			if !QueryHasGGEP(b, id) {
				t.Fatalf("QueryHasGGEP(%q) = false for %x", id, b)
			}
		}
		if !slices.Contains(ids, "GNUT.RW") && QueryHasGGEP(b, "GNUT.RW") {
			t.Fatalf("QueryHasGGEP finds a GNUT.RW the decode has not in %x", b)
		}
	})
}
