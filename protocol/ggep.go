package protocol

import (
	"bytes"
	"compress/zlib"
	"io"
	"strconv"
)

// GGEP (Gnutella Generic Extension Protocol) blocks, §1.10.
//
//	block     = 0xC3 extension+
//	extension = flags(1) id(1..15) length(1..3) data
//
// Flags: 0x80 last, 0x40 COBS, 0x20 deflated (zlib), 0x10 reserved, low
// nibble = ID length. Each length byte carries 6 bits, big-endian, with 0x80
// "more follows" or 0x40 "last byte" (exactly one of them).

// GGEPMagic is the byte that starts a GGEP block.
const GGEPMagic = 0xC3

const (
	ggepLast     = 0x80
	ggepCOBS     = 0x40
	ggepDeflate  = 0x20
	ggepReserved = 0x10
	ggepIDMask   = 0x0F

	// MaxGGEPExtensions caps the extensions of one block (gtk's MAX_EXTVEC).
	MaxGGEPExtensions = 32
	// MaxGGEPLength is the largest length the 3-byte form can say.
	MaxGGEPLength = 1<<18 - 1
	// MaxGGEPInflated bounds what one deflated extension may inflate to, so a
	// small payload cannot become a large allocation.
	MaxGGEPInflated = 64 << 10
)

// Extension is one GGEP extension. Data holds the payload after COBS and
// deflate have been undone. COBS and Deflate say how it is (or is to be)
// carried on the wire.
//
// An extension produced by DecodeGGEP remembers its wire bytes and encodes
// back to exactly them; build a new Extension to change one.
type Extension struct {
	ID      string
	Data    []byte
	COBS    bool
	Deflate bool

	wire []byte // flags..data as received, with the "last" bit cleared
}

// GGEP is a decoded block: its extensions in wire order.
type GGEP []Extension

// Get returns the data of the first extension with the given ID.
func (g GGEP) Get(id string) ([]byte, bool) {
	for i := range g {
		if g[i].ID == id {
			return g[i].Data, true
		}
	}
	return nil, false
}

// Has reports whether an extension with the given ID is present.
func (g GGEP) Has(id string) bool {
	_, ok := g.Get(id)
	return ok
}

// IDs lists the extension IDs in wire order.
func (g GGEP) IDs() []string {
	ids := make([]string, len(g))
	for i := range g {
		ids[i] = g[i].ID
	}
	return ids
}

// AppendGGEPLength appends the 1-3 byte GGEP length form of n.
func AppendGGEPLength(b []byte, n int) []byte {
	switch {
	case n < 0 || n > MaxGGEPLength:
		panic("protocol: GGEP length out of range")
	case n < 1<<6:
		return append(b, 0x40|byte(n))
	case n < 1<<12:
		return append(b, 0x80|byte(n>>6), 0x40|byte(n&0x3F))
	default:
		return append(b, 0x80|byte(n>>12), 0x80|byte(n>>6&0x3F), 0x40|byte(n&0x3F))
	}
}

// ParseGGEPLength reads a GGEP length at the start of b and returns it with
// the number of bytes it took.
func ParseGGEPLength(b []byte) (n, size int, err error) {
	for i := 0; i < 3; i++ {
		if i >= len(b) {
			return 0, 0, errAt("ggep", i, ErrTruncated, "length runs past the end")
		}
		c := b[i]
		more, last := c&0x80 != 0, c&0x40 != 0
		if more == last {
			return 0, 0, errAt("ggep", i, ErrBadGGEP, "length byte 0x%02x has both or neither of 0x80/0x40", c)
		}
		n = n<<6 | int(c&0x3F)
		if last {
			return n, i + 1, nil
		}
	}
	return 0, 0, errAt("ggep", 2, ErrBadGGEP, "length longer than 3 bytes")
}

// DecodeGGEP decodes the block at the start of b (which must begin with
// 0xC3) and returns it with the number of bytes it occupies. Errors carry
// offsets relative to b.
func DecodeGGEP(b []byte) (GGEP, int, error) {
	if len(b) == 0 {
		return nil, 0, errAt("ggep", 0, ErrTruncated, "empty block")
	}
	if b[0] != GGEPMagic {
		return nil, 0, errAt("ggep", 0, ErrBadGGEP, "block starts with 0x%02x, not 0xC3", b[0])
	}
	var g GGEP
	i := 1
	for {
		if len(g) == MaxGGEPExtensions {
			return nil, 0, errAt("ggep", i, ErrBadGGEP, "more than %d extensions", MaxGGEPExtensions)
		}
		start := i
		if i >= len(b) {
			return nil, 0, errAt("ggep", i, ErrTruncated, "missing extension header")
		}
		flags := b[i]
		if flags&ggepReserved != 0 {
			return nil, 0, errAt("ggep", i, ErrBadGGEP, "reserved flag 0x10 set")
		}
		idLen := int(flags & ggepIDMask)
		if idLen == 0 {
			return nil, 0, errAt("ggep", i, ErrBadGGEP, "ID length 0")
		}
		i++
		if idLen > len(b)-i {
			return nil, 0, errAt("ggep", i, ErrTruncated, "ID runs past the end")
		}
		id := b[i : i+idLen]
		for k, c := range id {
			if c <= 0x20 || c >= 0x7F {
				return nil, 0, errAt("ggep", i+k, ErrBadGGEP, "ID byte 0x%02x is not printable ASCII", c)
			}
		}
		i += idLen
		n, size, err := ParseGGEPLength(b[i:])
		if err != nil {
			return nil, 0, shiftOffset(err, i)
		}
		i += size
		if n > len(b)-i {
			return nil, 0, errAt("ggep", i, ErrTruncated, "extension %q says %d bytes, %d remain", id, n, len(b)-i)
		}
		ext := Extension{
			ID:      string(id),
			COBS:    flags&ggepCOBS != 0,
			Deflate: flags&ggepDeflate != 0,
			wire:    append([]byte{flags &^ ggepLast}, b[start+1:i+n]...),
		}
		data := b[i : i+n]
		if ext.COBS {
			data, err = cobsDecode(nil, data)
			if err != nil {
				return nil, 0, shiftOffset(err, i)
			}
		}
		if ext.Deflate {
			data, err = inflateGGEP(data)
			if err != nil {
				return nil, 0, shiftOffset(err, i)
			}
		}
		if !ext.COBS && !ext.Deflate {
			data = ext.wire[len(ext.wire)-n:]
		}
		ext.Data = data
		g = append(g, ext)
		i += n
		if flags&ggepLast != 0 {
			return g, i, nil
		}
	}
}

func inflateGGEP(data []byte) ([]byte, error) {
	if len(data) < 6 {
		return nil, errAt("ggep", 0, ErrBadGGEP, "deflated data of %d bytes, need at least 6", len(data))
	}
	zr, err := zlib.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, errAt("ggep", 0, ErrBadGGEP, "bad zlib header: %v", err)
	}
	out, err := io.ReadAll(io.LimitReader(zr, MaxGGEPInflated+1))
	if err != nil {
		return nil, errAt("ggep", 0, ErrBadGGEP, "inflate: %v", err)
	}
	if len(out) > MaxGGEPInflated {
		return nil, errAt("ggep", 0, ErrTooLarge, "inflates past %d bytes", MaxGGEPInflated)
	}
	return out, nil
}

// AppendTo appends the encoded block to b.
func (g GGEP) AppendTo(b []byte) ([]byte, error) { return g.appendTo(b, false) }

// appendTo encodes the block; with noNUL, extensions whose data would carry
// a 0x00 byte are COBS-encoded (QueryHit records allow no NUL).
func (g GGEP) appendTo(b []byte, noNUL bool) ([]byte, error) {
	if len(g) == 0 {
		return b, errAt("ggep", -1, ErrBadGGEP, "a block needs at least one extension")
	}
	if len(g) > MaxGGEPExtensions {
		return b, errAt("ggep", -1, ErrBadGGEP, "more than %d extensions", MaxGGEPExtensions)
	}
	b = append(b, GGEPMagic)
	for i := range g {
		e := &g[i]
		start := len(b)
		if e.wire != nil && !(noNUL && bytes.IndexByte(e.wire, 0) >= 0) {
			b = append(b, e.wire...)
		} else {
			var err error
			if b, err = e.appendFresh(b, noNUL); err != nil {
				return b, err
			}
		}
		if i == len(g)-1 {
			b[start] |= ggepLast
		}
	}
	return b, nil
}

func (e *Extension) appendFresh(b []byte, noNUL bool) ([]byte, error) {
	if len(e.ID) == 0 || len(e.ID) > 15 {
		return b, errAt("ggep", -1, ErrBadGGEP, "ID %q must be 1 to 15 bytes", e.ID)
	}
	for i := 0; i < len(e.ID); i++ {
		if c := e.ID[i]; c <= 0x20 || c >= 0x7F {
			return b, errAt("ggep", -1, ErrBadGGEP, "ID %q is not printable ASCII", e.ID)
		}
	}
	data := e.Data
	flags := byte(len(e.ID))
	if e.Deflate {
		var zb bytes.Buffer
		zw := zlib.NewWriter(&zb)
		_, _ = zw.Write(data)
		_ = zw.Close()
		data = zb.Bytes()
		flags |= ggepDeflate
	}
	cobs := e.COBS || (noNUL && bytes.IndexByte(data, 0) >= 0)
	if cobs {
		data = cobsEncode(nil, data)
		flags |= ggepCOBS
	}
	if len(data) > MaxGGEPLength {
		return b, errAt("ggep", -1, ErrTooLarge, "extension %q has %d bytes", e.ID, len(data))
	}
	b = append(b, flags)
	b = append(b, e.ID...)
	b = AppendGGEPLength(b, len(data))
	return append(b, data...), nil
}

// String lists the extensions as ID(length), marking COBS and deflate.
func (g GGEP) String() string {
	var sb bytes.Buffer
	sb.WriteString("GGEP[")
	for i := range g {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(g[i].ID)
		sb.WriteByte('(')
		sb.WriteString(strconv.Itoa(len(g[i].Data)))
		if g[i].COBS {
			sb.WriteString(",cobs")
		}
		if g[i].Deflate {
			sb.WriteString(",deflate")
		}
		sb.WriteByte(')')
	}
	sb.WriteByte(']')
	return sb.String()
}
