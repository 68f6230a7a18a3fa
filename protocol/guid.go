package protocol

import (
	"encoding/hex"
	"fmt"

	"github.com/google/uuid"
)

// GUID is a 16-byte message ID (MUID) or servent ID.
type GUID [16]byte

// NewGUID returns a random GUID with the "modern servent" marking:
// byte 8 = 0xFF and byte 15 = 0 (§1.2).
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

// Format implements fmt.Formatter so %x and %v both print hex.
func (g GUID) Format(f fmt.State, verb rune) {
	switch verb {
	case 'X':
		fmt.Fprintf(f, "%X", g[:])
	default:
		_, _ = f.Write([]byte(g.String()))
	}
}
