package ultrapeer

import (
	"slices"
	"testing"
	"unicode"
	"unicode/utf8"

	"gnutella/protocol"
)

// The vectors of docs/protocol.md §4.2 (QRP spec appendix A, checked against a Python port).
func TestQRPHashVectors(t *testing.T) {
	for _, v := range []struct {
		s    string
		bits uint8
		want uint32
	}{
		{"", 13, 0}, {"eb", 13, 6791}, {"ebcklmenq", 13, 3527},
		{"n", 16, 65003}, {"ndflalem", 16, 37658}, {"ndflaleme", 16, 45559},
		{"3NJA9", 10, 581}, {"zzzzzzzzzzz", 10, 944},
		{"test", 3, 2}, {"qrp", 3, 7},
		// gtk-gnutella's self-test in qrp_init.
		{"NDFLalem", 16, 37658}, {"7777a88a8a8a8", 10, 342},
	} {
		if got := QRPHash(v.s, v.bits); got != v.want {
			t.Errorf("QRPHash(%q, %d) = %d, want %d", v.s, v.bits, got, v.want)
		}
	}
}

// refHash is an independent implementation of docs/protocol.md §4.2 for the tests: Java's
// view of the string, UTF-16 code units built by hand.
func refHash(s string, bits uint8) uint32 {
	var units []uint16
	for _, r := range s { // invalid bytes come as U+FFFD, as Java would decode them
		r = unicode.ToLower(r)
		if r >= 0x10000 {
			r -= 0x10000
			units = append(units, uint16(0xD800+(r>>10)), uint16(0xDC00+(r&0x3FF)))
		} else {
			units = append(units, uint16(r))
		}
	}
	var x uint32
	for i, u := range units {
		x ^= uint32(u&0xFF) << (8 * (i % 4))
	}
	prod := uint64(x) * 0x4F1BBCDC
	h := uint32(prod) // the low 32 bits of the product
	if bits == 0 {
		return 0
	}
	return h >> (32 - uint32(bits))
}

func TestQRPHashNonASCII(t *testing.T) {
	words := []string{
		"é", "café", "CAFÉ", "naïve", "ÉCOLE", "straße", "日本語", "Ελληνικά", "ДОМ",
		"𝄞", "music𝄞", "𝄞𝄞score", "𐐀𐐁", // U+10400 lower-cases to U+10428
		"a𝄞b", "İstanbul", "\xff\xfeabc", "K", // invalid UTF-8, Kelvin sign
	}
	for _, w := range words {
		for _, bits := range []uint8{1, 8, 13, 16, 21, 32} {
			if got, want := QRPHash(w, bits), refHash(w, bits); got != want {
				t.Errorf("QRPHash(%q, %d) = %d, independent UTF-16 hash %d", w, bits, got, want)
			}
		}
	}
	// Case does not matter, in and out of ASCII.
	for _, p := range [][2]string{{"café", "CAFÉ"}, {"дом", "ДОМ"}, {"𐐨𐐩", "𐐀𐐁"}} {
		if QRPHash(p[0], 16) != QRPHash(p[1], 16) {
			t.Errorf("QRPHash(%q) != QRPHash(%q)", p[0], p[1])
		}
	}
	// é (U+00E9) hashes as its low byte 0xE9, not as its UTF-8 bytes C3 A9.
	if QRPHash("é", 16) != refHash("\u00e9", 16) || QRPHash("é", 16) == hashBytesForTest("\xc3\xa9", 16) {
		t.Error("é must hash as one UTF-16 unit")
	}
	// A rune above U+FFFF is two units: U+1D11E is D834 DD1E, low bytes 34 1E.
	units, mult := uint32(0x34|0x1E<<8), uint32(0x4F1BBCDC)
	if got, want := QRPHash("𝄞", 32), units*mult; got != want {
		t.Errorf("QRPHash(U+1D11E) = %#x, want %#x", got, want)
	}
}

// hashBytesForTest hashes raw bytes, the wrong way for non-ASCII.
func hashBytesForTest(s string, bits uint8) uint32 {
	var x uint32
	for i := 0; i < len(s); i++ {
		x ^= uint32(s[i]) << (8 * (i % 4))
	}
	return (x * 0x4F1BBCDC) >> (32 - bits)
}

func TestQRPHashBitsRange(t *testing.T) {
	if QRPHash("anything", 0) != 0 {
		t.Error("bits 0 must give slot 0")
	}
	if QRPHash("anything", 40) != QRPHash("anything", 32) {
		t.Error("bits above 32 must act as 32")
	}
	for b := uint8(1); b <= 32; b++ {
		if h := QRPHash("zebraquokka", b); uint64(h) >= 1<<b {
			t.Errorf("QRPHash(_, %d) = %d, out of range", b, h)
		}
	}
}

// prefixCodes gives the code of every prefix of at least 3 bytes that ends
// on a rune boundary, each equal to hashing that prefix alone.
func TestPrefixCodes(t *testing.T) {
	for _, w := range []string{"zebraquokka", "ab", "abc", "éa", "éé", "日本語", "a𝄞", "x𝄞yz", "ZEBRA", "\xffab", ""} {
		var got []uint32
		prefixCodes(w, func(c uint32) { got = append(got, c) })
		var want []uint32
		for i := 0; i < len(w); {
			_, n := utf8.DecodeRuneInString(w[i:])
			i += n
			if i >= 3 {
				want = append(want, hashCode(w[:i]))
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("prefixCodes(%q) = %v, want %v", w, got, want)
		}
	}
}

func TestURNCode(t *testing.T) {
	for i := 0; i < 100; i++ {
		var h protocol.SHA1
		for j := range h {
			h[j] = byte(i*31 + j*7)
		}
		if urnCode(h) != hashCode(h.String()) {
			t.Fatalf("urnCode(%v) differs", h)
		}
	}
}
