package protocol

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// testSHA1 returns a SHA-1 whose bytes all equal c.
func testSHA1(c byte) SHA1 {
	var h SHA1
	for i := range h {
		h[i] = c
	}
	return h
}

// ggepBytes encodes g, failing the test on error.
func ggepBytes(t testing.TB, g GGEP) []byte {
	t.Helper()
	b, err := g.AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// itemKinds describes an area as a short string: G for a GGEP item, T:text
// for a text item, E for an empty item; a leading 0 marks a NUL separator.
func itemKinds(a ExtensionArea) string {
	var parts []string
	for _, it := range a {
		s := ""
		if it.nulBefore {
			s = "0"
		}
		switch {
		case len(it.GGEP) > 0:
			s += "G"
		case len(it.Text) > 0:
			s += "T:" + string(it.Text)
		default:
			s += "E"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ",")
}

func TestExtensionAreaDecodesItemsAndEncodesBackExactly(t *testing.T) {
	h := testSHA1(0x11)
	bh := ggepBytes(t, GGEP{{ID: "BH"}})
	bitprint := "urn:bitprint:" + h.Base32() + "." + strings.Repeat("A", 39)
	tests := []struct {
		name     string
		area     []byte
		query    bool
		want     string
		finalNUL bool
	}{
		{"empty area", nil, false, "", false},
		{"one urn", []byte(h.String()), false, "T:" + h.String(), false},
		{"bitprint", []byte(bitprint), false, "T:" + bitprint, false},
		{"bare urn:", []byte("urn:"), true, "T:urn:", false},
		{"xml text", []byte(`<?xml version="1.0"?><audios/>`), false, `T:<?xml version="1.0"?><audios/>`, false},
		{"unknown text kept", []byte("whatever\x01\x02"), false, "T:whatever\x01\x02", false},
		{"ggep only", bh, false, "G", false},
		{"urn then ggep", cat([]byte(h.String()), []byte{0x1C}, bh), false, "T:" + h.String() + ",G", false},
		{"ggep then urn", cat(bh, []byte{0x1C}, []byte(h.String())), false, "G,T:" + h.String(), false},
		{"two separators make three empty items", []byte{0x1C, 0x1C}, false, "E,E,E", false},
		{"empty items around text", []byte("\x1Cabc\x1C"), false, "E,T:abc,E", false},
		{"ggep then separator at end", cat(bh, []byte{0x1C}), false, "G,E", false},
		{"two ggep blocks", cat(bh, []byte{0x1C}, bh), false, "G,G", false},
		{"query final NUL", cat(bh, []byte{0}), true, "G", true},
		{"query text then final NUL", []byte("urn:\x00"), true, "T:urn:", true},
		{"query only a final NUL", []byte{0}, true, "", true},
		{"query NUL as separator", []byte("abc\x00def"), true, "T:abc,0T:def", false},
		{"query two NULs", []byte{0, 0}, true, "E,0E", true},
		{"query ggep NUL ggep", cat(bh, []byte{0}, bh), true, "G,0G", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, finalNUL, err := decodeExtArea(nil, tt.area, tt.query, newInflateBudget(MaxInflatedPerMessage))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if got := itemKinds(a); got != tt.want || finalNUL != tt.finalNUL {
				t.Errorf("items %q finalNUL %v, want %q %v", got, finalNUL, tt.want, tt.finalNUL)
			}
			enc, err := a.appendTo(nil, tt.query)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			if finalNUL {
				enc = append(enc, 0)
			}
			if !bytes.Equal(enc, tt.area) {
				t.Errorf("re-encoded %x, want %x", enc, tt.area)
			}
		})
	}
}

func TestExtensionAreaDecodeErrorsCarryKindAndOffset(t *testing.T) {
	bh := ggepBytes(t, GGEP{{ID: "BH"}})
	tests := []struct {
		name   string
		area   []byte
		query  bool
		kind   error
		offset int
	}{
		{"junk right after a GGEP block", cat([]byte("x\x1C"), bh, []byte("y")), false, ErrMalformed, 2 + len(bh)},
		{"NUL after GGEP in a record area", cat(bh, []byte{0}), false, ErrMalformed, len(bh)},
		{"reserved GGEP flag", []byte{0xC3, 0x91, 'A', 0x40}, false, ErrBadGGEP, 1},
		{"GGEP ID length 0 after a text item", []byte{'a', 0x1C, 0xC3, 0x80, 0x40}, false, ErrBadGGEP, 3},
		{"GGEP data past the end", []byte{0xC3, 0x81, 'A', 0x45, 1, 2}, true, ErrTruncated, 3},
		{"NUL inside a record area text", []byte("ab\x00c"), false, ErrMalformed, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := decodeExtArea(nil, tt.area, tt.query, newInflateBudget(MaxInflatedPerMessage))
			if !errors.Is(err, tt.kind) {
				t.Fatalf("error %v, want kind %v", err, tt.kind)
			}
			if got := ErrorOffset(err); got != tt.offset {
				t.Errorf("offset %d, want %d (%v)", got, tt.offset, err)
			}
		})
	}
}

func TestExtensionAreaEncodeRejectsItemsThatWouldNotDecodeBack(t *testing.T) {
	tests := []struct {
		name string
		item ExtensionItem
	}{
		{"text holding the separator", TextItem("a\x1Cb")},
		{"text holding a NUL", TextItem("a\x00b")},
		{"text starting with the GGEP magic", TextItem("\xC3abc")},
		{"both GGEP and text", ExtensionItem{GGEP: GGEP{{ID: "BH"}}, Text: []byte("x")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := (ExtensionArea{tt.item}).appendTo(nil, true); !errors.Is(err, ErrMalformed) {
				t.Errorf("error %v, want ErrMalformed", err)
			}
		})
	}
}

func TestExtensionAreaURNsFromTextAndGGEPDeduplicated(t *testing.T) {
	a, b, c, d := testSHA1(1), testSHA1(2), testSHA1(3), testSHA1(4)
	bitprint := "URN:BITPRINT:" + b.Base32() + "." + strings.Repeat("B", 39)
	bitprintH := append(GGEPHash(c), make([]byte, 24)...)
	bitprintH[0] = GGEPHashBitprint
	area := ExtensionArea{
		TextItem(a.String()),
		TextItem(strings.ToLower(a.String())), // same URN, lower case
		TextItem(bitprint),
		TextItem("urn:sha1:TOOSHORT"),                   // skipped
		TextItem("urn:sha1:" + strings.Repeat("1", 32)), // not base32: skipped
		TextItem("urn:"),
		{},
		GGEPItem(GGEP{{ID: "H", Data: bitprintH}, {ID: "u", Data: GGEPURN(d)}, {ID: "H", Data: []byte{9, 9}}}),
		GGEPItem(GGEP{{ID: "H", Data: GGEPHash(a)}}), // duplicate
	}
	got := area.URNs()
	want := []SHA1{a, b, c, d}
	if len(got) != len(want) {
		t.Fatalf("URNs %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("URN %d = %v, want %v", i, got[i], want[i])
		}
	}
}

func TestExtensionAreaWantsURNsOnBareURNItemsOnly(t *testing.T) {
	tests := []struct {
		text string
		want bool
	}{
		{"urn:", true},
		{"URN:", true},
		{"urn:sha1:", true},
		{"urn:SHA1:", true},
		{testSHA1(7).String(), false},
		{"urn:bitprint:", false},
		{"urn", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			if got := (ExtensionArea{TextItem("x"), TextItem(tt.text)}).WantsURNs(); got != tt.want {
				t.Errorf("WantsURNs = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestExtensionAreaGGEPConcatenatesAllBlocks(t *testing.T) {
	one := GGEP{{ID: "H", Data: GGEPHash(testSHA1(1))}}
	two := GGEP{{ID: "LF", Data: []byte{1, 2, 3, 4, 5}}, {ID: "ALT", Data: make([]byte, 6)}}
	a := ExtensionArea{GGEPItem(one), TextItem("urn:"), GGEPItem(two)}
	g := a.GGEP()
	if got := strings.Join(g.IDs(), " "); got != "H LF ALT" {
		t.Errorf("IDs %q, want \"H LF ALT\"", got)
	}
	if one[0].ID != "H" || len(one) != 1 {
		t.Errorf("GGEP() modified the first block: %v", one)
	}
	if g := (ExtensionArea{TextItem("x")}).GGEP(); g != nil {
		t.Errorf("area without GGEP gives %v, want nil", g)
	}
}

func TestResultExtensionsPutsURNsAsGTKGnutellaDoes(t *testing.T) {
	h := testSHA1(0x42)
	extra := GGEP{{ID: "LF", Data: []byte{0, 0, 0, 0, 1}}}
	tests := []struct {
		name   string
		ggepH  bool
		extra  GGEP
		kinds  string
		ggepID string
	}{
		{"ascii urn without GGEP H", false, nil, "T:" + h.String(), ""},
		{"ascii urn then the extra GGEP", false, extra, "T:" + h.String() + ",G", "LF"},
		{"GGEP H alone", true, nil, "G", "H"},
		{"GGEP H first in one block with the extra", true, extra, "G", "H LF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := ResultExtensions(h, tt.ggepH, tt.extra)
			if got := itemKinds(a); got != tt.kinds {
				t.Errorf("items %q, want %q", got, tt.kinds)
			}
			if got := strings.Join(a.GGEP().IDs(), " "); got != tt.ggepID {
				t.Errorf("GGEP IDs %q, want %q", got, tt.ggepID)
			}
			// In a record, no NUL may appear: LF's zero bytes get COBS.
			enc, err := a.appendTo(nil, false)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.IndexByte(enc, 0) >= 0 {
				t.Errorf("record area %x holds a NUL", enc)
			}
			back, _, err := decodeExtArea(nil, enc, false, newInflateBudget(MaxInflatedPerMessage))
			if err != nil {
				t.Fatalf("decode back: %v", err)
			}
			if u := back.URNs(); len(u) != 1 || u[0] != h {
				t.Errorf("URNs after round trip %v, want [%v]", u, h)
			}
			if tt.extra != nil {
				if d, _ := back.GGEP().Get("LF"); !bytes.Equal(d, tt.extra[0].Data) {
					t.Errorf("LF after COBS round trip %x, want %x", d, tt.extra[0].Data)
				}
			}
		})
	}
	if a := ResultExtensions(SHA1{}, false, nil); a != nil {
		t.Errorf("zero URN and no extra gives %v, want nil", a)
	}
}

func TestExtensionAreaStringShowsURNsGGEPAndText(t *testing.T) {
	h := testSHA1(5)
	a := ExtensionArea{TextItem(h.String()), GGEPItem(GGEP{{ID: "BH"}}), TextItem("<xml/>"), {}}
	want := `[` + h.String() + ` GGEP[BH(0)] "<xml/>" ""]`
	if got := a.String(); got != want {
		t.Errorf("String = %s, want %s", got, want)
	}
}
