package protocol

import (
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestNewGUIDHasModernMarking(t *testing.T) {
	for i := 0; i < 100; i++ {
		g := NewGUID()
		if g[8] != 0xFF || g[15] != 0 {
			t.Fatalf("NewGUID() = %v: byte 8 = 0x%02x, byte 15 = 0x%02x, want 0xFF and 0", g, g[8], g[15])
		}
		if !g.IsModern() || g.IsZero() {
			t.Fatalf("NewGUID() = %v: IsModern %v, IsZero %v", g, g.IsModern(), g.IsZero())
		}
	}
}

func TestNewGUIDDiffersBetweenCalls(t *testing.T) {
	seen := make(map[GUID]bool)
	for i := 0; i < 1000; i++ {
		g := NewGUID()
		if seen[g] {
			t.Fatalf("NewGUID returned %v twice in %d calls", g, i+1)
		}
		seen[g] = true
	}
}

func TestGUIDStringAndParseRoundTrip(t *testing.T) {
	tests := []struct {
		g GUID
		s string
	}{
		{GUID{}, "00000000000000000000000000000000"},
		{GUID{0x0e, 0xfd, 0x31, 0x02, 0x6d, 0x8d, 0xef, 0x95, 0x48, 0xee, 0x17, 0xf2, 0x19, 0xe0, 0x75, 0x03},
			"0efd31026d8def9548ee17f219e07503"}, // the servent ID in the recorded Push
		{GUID{0xAB, 0xCD, 0xEF, 0, 0, 0, 0, 0, 0xFF, 0, 0, 0, 0, 0, 0, 0},
			"abcdef0000000000ff00000000000000"},
	}
	for _, tt := range tests {
		if got := tt.g.String(); got != tt.s {
			t.Errorf("String() = %q, want %q", got, tt.s)
		}
		for _, s := range []string{tt.s, strings.ToUpper(tt.s)} {
			g, err := ParseGUID(s)
			if err != nil || g != tt.g {
				t.Errorf("ParseGUID(%q) = %v, %v; want %v", s, g, err, tt.g)
			}
		}
	}
	g := NewGUID()
	if back, err := ParseGUID(g.String()); err != nil || back != g {
		t.Errorf("ParseGUID(%q) = %v, %v", g.String(), back, err)
	}
}

func TestParseGUIDRejectsBadInput(t *testing.T) {
	for _, s := range []string{
		"",
		"0efd31026d8def9548ee17f219e0750",   // 31 digits
		"0efd31026d8def9548ee17f219e075033", // 33 digits
		"0efd31026d8def9548ee17f219e0750g",  // not hex
		"0efd31026d8def9548ee17f219e0750 ",
		"0x0efd31026d8def9548ee17f219e075",
		"0efd3102-6d8d-ef95-48ee-17f219e0",
	} {
		g, err := ParseGUID(s)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseGUID(%q) = %v, %v; want ErrMalformed", s, g, err)
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("ParseGUID(%q): error %T is not *Error", s, err)
		}
	}
}

func TestGUIDFormatPrintsHex(t *testing.T) {
	g := GUID{0xAB, 1, 2, 3, 4, 5, 6, 7, 0xFF, 9, 10, 11, 12, 13, 14, 0}
	const lower = "ab01020304050607ff090a0b0c0d0e00"
	for verb, want := range map[string]string{
		"%v": lower, "%s": lower, "%x": lower, "%X": strings.ToUpper(lower),
	} {
		if got := fmt.Sprintf(verb, g); got != want {
			t.Errorf("Sprintf(%q) = %q, want %q", verb, got, want)
		}
	}
}

func TestGUIDBase32MatchesRFC4648(t *testing.T) {
	enc := base32.StdEncoding.WithPadding(base32.NoPadding)
	ones := GUID{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	some := GUID{0xdd, 0xad, 0xbe, 0xef, 0x00, 0x11, 0x22, 0x33, 0xff, 0xab, 0xcd, 0xef, 0x0a, 0x0b, 0x0c, 0xfe}
	for _, g := range []GUID{{}, some, ones} {
		s := g.Base32()
		if want := enc.EncodeToString(g[:]); s != want || len(s) != 26 {
			t.Errorf("%s.Base32() = %q, want %q", g, s, want)
		}
		for _, in := range []string{s, strings.ToLower(s), base32.StdEncoding.EncodeToString(g[:])} {
			if back, err := ParseGUIDBase32(in); err != nil || back != g {
				t.Errorf("ParseGUIDBase32(%q) = %s, %v; want %s", in, back, err, g)
			}
		}
	}
}

func TestParseGUIDBase32Refuses(t *testing.T) {
	s := GUID{1, 2, 3}.Base32()
	for _, in := range []string{"", s[:25], s + "A", s + "AAAAAA", s + "=======", "1" + s[1:], s[:25] + "8", s[:25] + "="} {
		if _, err := ParseGUIDBase32(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseGUIDBase32(%q) = %v, want ErrMalformed", in, err)
		}
	}
	// The 2 spare bits of the last character are ignored, as gtk-gnutella does.
	last := s[:25] + string("ABCD"[strings.IndexByte("ABCD", s[25])^3])
	if g, err := ParseGUIDBase32(last); err != nil || g != (GUID{1, 2, 3}) {
		t.Errorf("ParseGUIDBase32(%q) = %s, %v", last, g, err)
	}
}
