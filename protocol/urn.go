package protocol

import (
	"encoding/base32"
	"errors"
	"strings"
)

// SHA1 is the 20-byte SHA-1 of a whole file, the identity HUGE gives it.
type SHA1 [20]byte

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// Base32 is the 32-character RFC 4648 form used after "urn:sha1:".
func (h SHA1) Base32() string { return b32.EncodeToString(h[:]) }

// String is the URN text, "urn:sha1:" plus base32.
func (h SHA1) String() string { return "urn:sha1:" + h.Base32() }

// IsZero reports whether h is unset.
func (h SHA1) IsZero() bool { return h == SHA1{} }

// ParseSHA1Base32 decodes 32 base32 characters (either case).
func ParseSHA1Base32(s string) (SHA1, error) {
	var h SHA1
	if len(s) != 32 {
		return h, errAt("urn", -1, ErrBadURN, "sha1 needs 32 base32 characters, got %d", len(s))
	}
	var up [32]byte
	for i := 0; i < 32; i++ {
		c := s[i]
		if !isBase32Char(c) {
			return h, errAt("urn", i, ErrBadURN, "%q is not a base32 character", c)
		}
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		up[i] = c
	}
	if _, err := b32.Decode(h[:], up[:]); err != nil {
		return h, errAt("urn", -1, ErrBadURN, "%v", err)
	}
	return h, nil
}

// ParseURN reads "urn:sha1:<32>" or "urn:bitprint:<32>.<39>" (reduced to its
// SHA-1 part), case-insensitively. Error offsets count bytes of s.
func ParseURN(s string) (SHA1, error) {
	const sha1P, bpP = "urn:sha1:", "urn:bitprint:"
	switch {
	case hasPrefixFold(s, sha1P):
		h, err := ParseSHA1Base32(s[len(sha1P):])
		return h, shiftOffset(err, len(sha1P))
	case hasPrefixFold(s, bpP):
		rest := s[len(bpP):]
		if len(rest) != 32+1+39 || rest[32] != '.' {
			return SHA1{}, errAt("urn", -1, ErrBadURN, "bitprint must be <32>.<39>")
		}
		for i := 33; i < len(rest); i++ {
			if !isBase32Char(rest[i]) {
				return SHA1{}, errAt("urn", len(bpP)+i, ErrBadURN, "%q is not a base32 character", rest[i])
			}
		}
		h, err := ParseSHA1Base32(rest[:32])
		return h, shiftOffset(err, len(bpP))
	}
	return SHA1{}, errAt("urn", -1, ErrBadURN, "%q is neither urn:sha1 nor urn:bitprint", truncate(s, 40))
}

// isBase32Char reports whether c is in the RFC 4648 base32 alphabet, in
// either case.
func isBase32Char(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '2' <= c && c <= '7'
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// GGEP "H" hash types.
const (
	GGEPHashSHA1     = 0x01
	GGEPHashBitprint = 0x02
)

// ParseGGEPHash reads the data of a GGEP "H" extension: a type byte, then 20
// bytes of SHA-1 (type 1) or 20 of SHA-1 and 24 of Tiger (type 2).
func ParseGGEPHash(data []byte) (SHA1, error) {
	var h SHA1
	if len(data) == 0 {
		return h, errAt("ggep H", 0, ErrBadURN, "empty")
	}
	switch data[0] {
	case GGEPHashSHA1:
		if len(data) != 21 {
			return h, errAt("ggep H", 0, ErrBadURN, "sha1 hash of %d bytes", len(data)-1)
		}
	case GGEPHashBitprint:
		if len(data) != 45 {
			return h, errAt("ggep H", 0, ErrBadURN, "bitprint hash of %d bytes", len(data)-1)
		}
	default:
		return h, errAt("ggep H", 0, ErrBadURN, "unknown hash type 0x%02x", data[0])
	}
	copy(h[:], data[1:21])
	return h, nil
}

// GGEPHash is the data of a GGEP "H" extension carrying h.
func GGEPHash(h SHA1) []byte { return append([]byte{GGEPHashSHA1}, h[:]...) }

// ParseGGEPURN reads the data of a GGEP "u" extension: URN text without the
// leading "urn:" (e.g. "sha1:..." or "bitprint:..."). Error offsets count
// bytes of data.
func ParseGGEPURN(data []byte) (SHA1, error) {
	h, err := ParseURN("urn:" + string(data))
	if err != nil {
		var e *Error
		if errors.As(err, &e) && e.Offset >= len("urn:") {
			err = shiftOffset(err, -len("urn:"))
		}
		return SHA1{}, err
	}
	return h, nil
}

// GGEPURN is the data of a GGEP "u" extension carrying h.
func GGEPURN(h SHA1) []byte { return []byte("sha1:" + h.Base32()) }
