package protocol

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The file of the recorded upload, its SHA-1 and its Tiger tree root, as
// gtk-gnutella announced them (X-Gnutella-Content-URN, X-Thex-URI).
const (
	urnTestSHA1  = "X4W42LDG7CDMMJAJT2ODLN7IBG5UYDG7"
	urnTestTiger = "UZO27AB46I6G2FM5P6AL7ZZGK5R6YBR5PGQR57A"
)

func urnTestHash(t testing.TB) SHA1 {
	t.Helper()
	h, err := ParseSHA1Base32(urnTestSHA1)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestBase32Vector(t *testing.T) {
	// docs/protocol.md §1.11: bytes 0F F5 -> B72Q, through the package's own encoding.
	if got := b32.EncodeToString([]byte{0x0F, 0xF5}); got != "B72Q" {
		t.Fatalf("base32(0F F5) = %q, want B72Q", got)
	}
	got, err := b32.DecodeString("B72Q")
	if err != nil || !bytes.Equal(got, []byte{0x0F, 0xF5}) {
		t.Fatalf("base32 decode of B72Q = % x, %v", got, err)
	}
}

func TestRecordedURNMatchesTheRecordedFile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "gtk-gnutella", "push-giv-and-upload.bin"))
	if err != nil {
		t.Fatal(err)
	}
	const size = 300000
	if len(b) < size {
		t.Fatalf("recording has %d bytes", len(b))
	}
	sum := SHA1(sha1.Sum(b[len(b)-size:]))
	if got := sum.Base32(); got != urnTestSHA1 {
		t.Fatalf("base32 of the file's SHA-1 = %s, want %s", got, urnTestSHA1)
	}
	if !bytes.Contains(b, []byte("X-Gnutella-Content-URN: "+sum.String()+"\r\n")) {
		t.Fatalf("%s is not the URN the upload announced", sum)
	}
}

func TestURNRoundTrip(t *testing.T) {
	const urn = "urn:sha1:" + urnTestSHA1
	h, err := ParseURN(urn)
	if err != nil {
		t.Fatal(err)
	}
	if h.String() != urn || h.Base32() != urnTestSHA1 {
		t.Fatalf("String() = %q, Base32() = %q", h.String(), h.Base32())
	}
	back, err := ParseURN(h.String())
	if err != nil || back != h {
		t.Fatalf("re-parse = %v, %v", back, err)
	}
	if h.IsZero() || !(SHA1{}).IsZero() {
		t.Fatal("IsZero is wrong")
	}
}

func TestParseURNAccepts(t *testing.T) {
	want := urnTestHash(t)
	for _, s := range []string{
		"urn:sha1:" + urnTestSHA1,
		"urn:sha1:" + strings.ToLower(urnTestSHA1),
		"URN:SHA1:" + urnTestSHA1,
		"Urn:Sha1:x4w42ldg7cdmmjajt2odln7ibg5uydg7",
		"urn:bitprint:" + urnTestSHA1 + "." + urnTestTiger,
		"urn:bitprint:" + strings.ToLower(urnTestSHA1+"."+urnTestTiger),
		"URN:BITPRINT:" + urnTestSHA1 + "." + urnTestTiger,
	} {
		h, err := ParseURN(s)
		if err != nil || h != want {
			t.Errorf("ParseURN(%q) = %v, %v; want %v", s, h, err, want)
		}
	}
}

func TestParseURNRejectsGarbage(t *testing.T) {
	const bp = "urn:bitprint:"
	tests := []struct {
		s      string
		offset int // -1: no single byte to blame
	}{
		{"", -1},
		{"urn:", -1},
		{"urn:sha1:", -1},
		{"urn:sha1:" + urnTestSHA1[:31], -1},
		{"urn:sha1:" + urnTestSHA1 + "A", -1},
		{"urn:sha1:" + urnTestSHA1 + " ", -1},
		{" urn:sha1:" + urnTestSHA1, -1},
		{"urn:sha1:1" + urnTestSHA1[1:], 9}, // '1' is not base32
		{"urn:sha1:" + urnTestSHA1[:5] + "0" + urnTestSHA1[6:], 14},
		{"urn:sha1:" + urnTestSHA1[:31] + "8", 40},
		{"urn:sha1:" + urnTestSHA1[:31] + "=", 40},
		{"urn:sha1:" + urnTestSHA1[:10] + "\x00" + urnTestSHA1[11:], 19},
		{"urn:md5:" + urnTestSHA1, -1},
		{"urn:tree:tiger/:" + urnTestTiger, -1},
		{"sha1:" + urnTestSHA1, -1},
		{urnTestSHA1, -1},
		{bp + urnTestSHA1, -1},
		{bp + urnTestSHA1 + urnTestTiger, -1},
		{bp + urnTestSHA1 + ":" + urnTestTiger, -1},
		{bp + urnTestSHA1 + "." + urnTestTiger[:38], -1},
		{bp + urnTestSHA1 + "." + urnTestTiger + "A", -1},
		{bp + urnTestSHA1 + "." + urnTestTiger[:38] + "1", len(bp) + 33 + 38},
		{bp + "9" + urnTestSHA1[1:] + "." + urnTestTiger, len(bp)},
	}
	for _, tt := range tests {
		h, err := ParseURN(tt.s)
		if !errors.Is(err, ErrBadURN) {
			t.Errorf("ParseURN(%q) = %v, %v; want ErrBadURN", tt.s, h, err)
			continue
		}
		if off := ErrorOffset(err); off != tt.offset {
			t.Errorf("ParseURN(%q): error offset %d, want %d (%v)", tt.s, off, tt.offset, err)
		}
	}
}

func TestParseSHA1Base32(t *testing.T) {
	if _, err := ParseSHA1Base32(strings.ToLower(urnTestSHA1)); err != nil {
		t.Fatalf("lower case: %v", err)
	}
	for _, s := range []string{"", urnTestSHA1[:31], urnTestSHA1 + "A", "urn:sha1:" + urnTestSHA1} {
		if _, err := ParseSHA1Base32(s); !errors.Is(err, ErrBadURN) {
			t.Errorf("ParseSHA1Base32(%q): err = %v, want ErrBadURN", s, err)
		}
	}
	_, err := ParseSHA1Base32(urnTestSHA1[:7] + "!" + urnTestSHA1[8:])
	if !errors.Is(err, ErrBadURN) || ErrorOffset(err) != 7 {
		t.Errorf("bad character at 7: err = %v, offset %d", err, ErrorOffset(err))
	}
}

func TestGGEPHash(t *testing.T) {
	h := urnTestHash(t)
	tiger, err := b32.DecodeString(urnTestTiger)
	if err != nil || len(tiger) != 24 {
		t.Fatalf("tiger root: % x, %v", tiger, err)
	}

	data := GGEPHash(h)
	if len(data) != 21 || data[0] != GGEPHashSHA1 || !bytes.Equal(data[1:], h[:]) {
		t.Fatalf("GGEPHash = % x", data)
	}
	tests := []struct {
		name string
		data []byte
		ok   bool
	}{
		{"sha1", data, true},
		{"bitprint", append(append([]byte{GGEPHashBitprint}, h[:]...), tiger...), true},
		{"empty", nil, false},
		{"type only", []byte{GGEPHashSHA1}, false},
		{"sha1 of 19 bytes", data[:20], false},
		{"sha1 of 21 bytes", append(append([]byte{}, data...), 0), false},
		{"bitprint of 20 bytes", append([]byte{GGEPHashBitprint}, h[:]...), false},
		{"bitprint of 43 bytes", append(append([]byte{GGEPHashBitprint}, h[:]...), tiger[:23]...), false},
		{"bitprint of 45 bytes", append(append(append([]byte{GGEPHashBitprint}, h[:]...), tiger...), 0), false},
		{"md5 type", append([]byte{0x03}, make([]byte, 16)...), false},
		{"type 0", append([]byte{0x00}, h[:]...), false},
	}
	for _, tt := range tests {
		got, err := ParseGGEPHash(tt.data)
		switch {
		case tt.ok && (err != nil || got != h):
			t.Errorf("%s: ParseGGEPHash = %v, %v; want %v", tt.name, got, err, h)
		case !tt.ok && !errors.Is(err, ErrBadURN):
			t.Errorf("%s: ParseGGEPHash = %v, %v; want ErrBadURN", tt.name, got, err)
		}
	}
}

func TestGGEPHashInRecordedQueryHit(t *testing.T) {
	// ultrapeer-to-leaf.bin carries a hit for the recorded upload, with a
	// GGEP "H" of type 2 (bitprint) in its record.
	want := urnTestHash(t)
	found := false
	for _, d := range coreRecordedPayloads(t) {
		if d.typ != 0x81 {
			continue
		}
		for p := bytes.IndexByte(d.payload, GGEPMagic); p >= 0; {
			if g, _, err := DecodeGGEP(d.payload[p:]); err == nil {
				if data, ok := g.Get("H"); ok {
					h, err := ParseGGEPHash(data)
					if err != nil {
						t.Fatalf("%s #%d: H = % x: %v", d.file, d.index, data, err)
					}
					if data[0] != GGEPHashBitprint {
						t.Errorf("%s #%d: H type %d, want 2", d.file, d.index, data[0])
					}
					if h == want {
						found = true
					}
				}
			}
			next := bytes.IndexByte(d.payload[p+1:], GGEPMagic)
			if next < 0 {
				break
			}
			p += 1 + next
		}
	}
	if !found {
		t.Fatal("no recorded hit carries H for " + urnTestSHA1)
	}
}

func TestGGEPURN(t *testing.T) {
	h := urnTestHash(t)
	data := GGEPURN(h)
	if string(data) != "sha1:"+urnTestSHA1 {
		t.Fatalf("GGEPURN = %q", data)
	}
	for _, s := range []string{
		"sha1:" + urnTestSHA1,
		"SHA1:" + strings.ToLower(urnTestSHA1),
		"bitprint:" + urnTestSHA1 + "." + urnTestTiger,
	} {
		got, err := ParseGGEPURN([]byte(s))
		if err != nil || got != h {
			t.Errorf("ParseGGEPURN(%q) = %v, %v; want %v", s, got, err, h)
		}
	}
	tests := []struct {
		data   string
		offset int
	}{
		{"", -1},
		{"urn:sha1:" + urnTestSHA1, -1},
		{"sha1:" + urnTestSHA1[:20], -1},
		{"md5:" + urnTestSHA1, -1},
		{"sha1:" + urnTestSHA1[:3] + "1" + urnTestSHA1[4:], 8}, // offset within data
	}
	for _, tt := range tests {
		_, err := ParseGGEPURN([]byte(tt.data))
		if !errors.Is(err, ErrBadURN) {
			t.Errorf("ParseGGEPURN(%q): err = %v, want ErrBadURN", tt.data, err)
			continue
		}
		if off := ErrorOffset(err); off != tt.offset {
			t.Errorf("ParseGGEPURN(%q): offset %d, want %d", tt.data, off, tt.offset)
		}
	}
}

func FuzzURN(f *testing.F) {
	for _, s := range []string{
		"urn:sha1:" + urnTestSHA1,
		"urn:sha1:" + strings.ToLower(urnTestSHA1),
		"urn:bitprint:" + urnTestSHA1 + "." + urnTestTiger,
		"urn:sha1:", "urn:", "", "urn:sha1:" + urnTestSHA1[:31] + "8",
		"urn:bitprint:" + urnTestSHA1 + "." + urnTestTiger[:38] + "1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseURN(s)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, ErrBadURN) {
				t.Fatalf("ParseURN(%q): error %v is not an *Error wrapping ErrBadURN", s, err)
			}
			if e.Offset < -1 || e.Offset >= len(s) {
				t.Fatalf("ParseURN(%q): offset %d outside the input", s, e.Offset)
			}
			return
		}
		if !hasPrefixFold(s, "urn:sha1:") && !hasPrefixFold(s, "urn:bitprint:") {
			t.Fatalf("ParseURN accepted %q", s)
		}
		text := h.String()
		back, err := ParseURN(text)
		if err != nil || back != h {
			t.Fatalf("ParseURN(%q) = %v, re-parse of %q = %v, %v", s, h, text, back, err)
		}
		if hasPrefixFold(s, "urn:sha1:") && !strings.EqualFold(text, s) {
			t.Fatalf("ParseURN(%q) prints back as %q", s, text)
		}
		if u, err := ParseGGEPURN(GGEPURN(h)); err != nil || u != h {
			t.Fatalf("GGEP u round trip of %v = %v, %v", h, u, err)
		}
		if x, err := ParseGGEPHash(GGEPHash(h)); err != nil || x != h {
			t.Fatalf("GGEP H round trip of %v = %v, %v", h, x, err)
		}
	})
}
