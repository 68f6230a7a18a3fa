package protocol

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"

	"github.com/google/uuid"
)

// GUID is a 16-byte message ID (MUID) or servent ID.
type GUID [16]byte

// NewGUID returns a random GUID with the "modern servent" marking:
// byte 8 = 0xFF and byte 15 = 0 (docs/protocol.md §1.2).
func NewGUID() GUID {
	g := GUID(uuid.New())
	g[8] = 0xFF
	g[15] = 0
	return g
}

// IsModern reports whether g carries the modern marking (byte 8 = 0xFF).
// Informational only: never reject a message on it.
func (g GUID) IsModern() bool { return g[8] == 0xFF }

// IsZero reports whether every byte is zero.
func (g GUID) IsZero() bool { return g == GUID{} }

// String is the 32 lower-case hex digits used by the GUID handshake header
// and by GIV lines.
func (g GUID) String() string { return hex.EncodeToString(g[:]) }

// ParseGUID reads 32 hex digits (either case).
func ParseGUID(s string) (GUID, error) {
	var g GUID
	if len(s) != 32 {
		return g, errAt("guid", -1, ErrMalformed, "want 32 hex digits, got %d characters", len(s))
	}
	if _, err := hex.Decode(g[:], []byte(s)); err != nil {
		return g, errAt("guid", -1, ErrMalformed, "%v", err)
	}
	return g, nil
}

// Base32 is the RFC 4648 base32 form of the GUID: 26 upper-case characters,
// no padding. Push-proxy requests name a servent this way
// (GET /gnutella/push-proxy?ServerId=<base32>, docs/protocol.md §6.5).
func (g GUID) Base32() string { return b32.EncodeToString(g[:]) }

// ParseGUIDBase32 reads the base32 form of a GUID, in either case: 26
// characters, or 32 ending in the padding "======". As in gtk-gnutella, the
// 2 spare bits of the last character are ignored.
func ParseGUIDBase32(s string) (GUID, error) {
	var g GUID
	switch len(s) {
	case 26:
	case 32:
		if s[26:] != "======" {
			return g, errAt("guid", 26, ErrMalformed, "base32 GUID: 32 characters must end in \"======\"")
		}
		s = s[:26]
	default:
		return g, errAt("guid", -1, ErrMalformed, "base32 GUID: want 26 characters (or 32 padded), got %d", len(s))
	}
	var acc uint32
	bits, n := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isBase32Char(c) {
			return GUID{}, errAt("guid", i, ErrMalformed, "%q is not a base32 character", c)
		}
		acc = acc<<5 | uint32(base32Value(c))
		bits += 5
		if bits >= 8 {
			bits -= 8
			g[n] = byte(acc >> bits)
			n++
		}
	}
	// 26 × 5 = 130 bits: 16 bytes and 2 spare bits.
	return g, nil
}

// base32Value is the 5-bit value of a base32 character (either case).
func base32Value(c byte) byte {
	switch {
	case c >= 'a' && c <= 'z':
		return c - 'a'
	case c >= 'A' && c <= 'Z':
		return c - 'A'
	}
	return c - '2' + 26
}

// Format implements fmt.Formatter so %x and %v both print hex.
func (g GUID) Format(f fmt.State, verb rune) {
	switch verb {
	case 'X':
		fmt.Fprintf(f, "%X", g[:])
	default:
		_, _ = f.Write([]byte(g.String()))
	}
}

// NewOOBGUID returns a query MUID that names ap as the address for
// out-of-band hits (docs/protocol.md §11.6): bytes 0..3 the IPv4 address
// in network order, bytes 13..14 the port little-endian, the rest random
// with the modern marking of NewGUID. ap must be IPv4.
func NewOOBGUID(ap netip.AddrPort) GUID {
	return NewGUID().WithOOBAddrPort(ap)
}

// WithOOBAddrPort is g with its bytes 0..3 and 13..14 naming ap, as in
// NewOOBGUID, and its other bytes kept: the MUID an ultrapeer gives a
// leaf's query it OOB-proxies (gtk-gnutella's "mangled" MUID). ap must be
// IPv4.
func (g GUID) WithOOBAddrPort(ap netip.AddrPort) GUID {
	ip := ap.Addr().Unmap().As4()
	copy(g[0:4], ip[:])
	binary.LittleEndian.PutUint16(g[13:15], ap.Port())
	return g
}

// OOBAddrPort is the reply address an out-of-band query's MUID names
// (see NewOOBGUID). It is whatever the bytes say: the caller checks it.
func (g GUID) OOBAddrPort() netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte(g[0:4])), binary.LittleEndian.Uint16(g[13:15]))
}
