package ultrapeer

import (
	"encoding/base32"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"gnutella/protocol"
)

// qrpMultiplier is A_INT of the QRP spec's multiplicative hash.
const qrpMultiplier = 0x4F1BBCDC

// QRPHash is the QRP hash of docs/protocol.md §4.2, bit-exact with LimeWire's HashFunction and
// gtk-gnutella's qrp_hashcode: over the UTF-16 code units of the lower-cased
// keyword (unicode.ToLower per rune, as strings.ToLower), the low byte b of
// each unit is folded in as x ^= b << j; j = (j+8) & 24; the slot is then
// (x * 0x4F1BBCDC) >> (32-bits) on uint32. A rune above U+FFFF counts as its
// two surrogates; a byte that is not valid UTF-8 counts as U+FFFD.
//
// bits is the log2 of the table size, 0..32; bits 0 gives 0 (a table of one
// slot) and anything above 32 is taken as 32.
func QRPHash(keyword string, bits uint8) uint32 {
	return restrict(hashCode(keyword), bits)
}

// restrict turns a 32-bit hash code into a slot of a 2^bits table.
func restrict(code uint32, bits uint8) uint32 {
	if bits == 0 {
		return 0
	}
	if bits >= 32 {
		return code
	}
	return code >> (32 - bits)
}

// hashCode is the QRP hash code before it is restricted to a table size:
// the same for every table, so a query is hashed once for all tables.
func hashCode(keyword string) uint32 {
	var x uint32
	var j uint
	for i := 0; i < len(keyword); i++ {
		c := keyword[i]
		if c >= utf8.RuneSelf {
			x, _ = foldRunes(keyword[i:], x, j)
			break
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		x ^= uint32(c) << j
		j = (j + 8) & 24
	}
	return x * qrpMultiplier
}

// foldRunes continues the hash fold over s, from the state (x, j).
func foldRunes(s string, x uint32, j uint) (uint32, uint) {
	for _, r := range s {
		x, j = foldRune(r, x, j)
	}
	return x, j
}

// foldRune folds one rune, lower-cased, as one or two UTF-16 code units.
func foldRune(r rune, x uint32, j uint) (uint32, uint) {
	r = unicode.ToLower(r)
	if r >= 0x10000 {
		hi, lo := utf16.EncodeRune(r)
		x ^= uint32(hi&0xFF) << j
		j = (j + 8) & 24
		r = lo
	}
	x ^= uint32(r&0xFF) << j
	return x, (j + 8) & 24
}

// minHashedBytes is the length below which a word is neither inserted nor
// looked up: gtk-gnutella hashes only query words of at least 3 bytes.
const minHashedBytes = 3

// prefixCodes calls f with the hash code of every prefix of w that ends on a
// rune boundary and is at least minHashedBytes long, w itself included. It
// hashes the word once: the fold of a prefix is the running fold.
func prefixCodes(w string, f func(code uint32)) {
	var x uint32
	var j uint
	for i, r := range w {
		if r < utf8.RuneSelf {
			c := uint32(r)
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			x ^= c << j
			j = (j + 8) & 24
			if i+1 >= minHashedBytes {
				f(x * qrpMultiplier)
			}
			continue
		}
		x, j = foldRune(r, x, j)
		if end := i + runeLenAt(w, i); end >= minHashedBytes {
			f(x * qrpMultiplier)
		}
	}
}

// runeLenAt is the byte length of the rune at w[i], as range counts it.
func runeLenAt(w string, i int) int {
	_, n := utf8.DecodeRuneInString(w[i:])
	return n
}

var urnBase32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// urnCode is hashCode(h.String()) without building the string.
func urnCode(h protocol.SHA1) uint32 {
	var b [9 + 32]byte
	copy(b[:], "urn:sha1:")
	urnBase32.Encode(b[9:], h[:])
	var x uint32
	var j uint
	for _, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		x ^= uint32(c) << j
		j = (j + 8) & 24
	}
	return x * qrpMultiplier
}
