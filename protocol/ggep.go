package protocol

import (
	"bytes"
	"compress/zlib"
	"strconv"
)

// GGEP (Gnutella Generic Extension Protocol) blocks, docs/protocol.md §1.10.
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
	// MaxGGEPInflated is the inflate budget of a block decoded on its own
	// (DecodeGGEP: a Ping's, Pong's or Push's block), shared by all its
	// deflated extensions, and the most an extension may hold when we
	// deflate it. Queries and QueryHits have the smaller budget
	// MaxInflatedPerMessage for all their blocks together (inflate.go).
	MaxGGEPInflated = 64 << 10
)

// Extension is one GGEP extension. Data holds the payload after COBS and
// deflate have been undone. COBS and Deflate say how it is (or is to be)
// carried on the wire.
//
// An extension produced by DecodeGGEP remembers its wire bytes and encodes
// back to exactly them for as long as ID, Data, COBS and Deflate keep their
// decoded values; assigning any of them makes it encode afresh. (Changing
// the bytes of a COBS or deflated extension's Data in place is not noticed:
// assign a new slice instead.)
type Extension struct {
	ID      string
	Data    []byte
	COBS    bool
	Deflate bool

	wire []byte // flags..data as received (aliasing the decoded input)
	data []byte // Data as decoded, to notice when the caller replaces it
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

// AppendGGEPLength appends the 1-3 byte GGEP length form of n. It panics if
// n is negative or above MaxGGEPLength.
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
// the number of bytes it took. Like gtk-gnutella it accepts a longer form
// than needed (0x80 0x40 for 0).
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

// validGGEPIDByte is gtk-gnutella's rule for ID bytes: ASCII, not a
// control character (so never 0x00).
func validGGEPIDByte(c byte) bool { return c >= 0x20 && c < 0x7F }

// scanGGEPExtension checks the header of the extension whose flags byte is
// b[i] and returns its flags, its ID, where its data starts and how long
// the data is. It guarantees that the data lies inside b.
func scanGGEPExtension(b []byte, i int) (flags byte, id []byte, data, n int, err error) {
	if i >= len(b) {
		return 0, nil, 0, 0, errAt("ggep", i, ErrTruncated, "missing extension header")
	}
	flags = b[i]
	if flags&ggepReserved != 0 {
		return 0, nil, 0, 0, errAt("ggep", i, ErrBadGGEP, "reserved flag 0x10 set")
	}
	idLen := int(flags & ggepIDMask)
	if idLen == 0 {
		return 0, nil, 0, 0, errAt("ggep", i, ErrBadGGEP, "ID length 0")
	}
	i++
	if idLen > len(b)-i {
		return 0, nil, 0, 0, errAt("ggep", len(b), ErrTruncated, "ID of %d bytes runs past the end", idLen)
	}
	id = b[i : i+idLen]
	for k, c := range id {
		if !validGGEPIDByte(c) {
			return 0, nil, 0, 0, errAt("ggep", i+k, ErrBadGGEP, "ID byte 0x%02x is not printable ASCII", c)
		}
	}
	i += idLen
	n, size, err := ParseGGEPLength(b[i:])
	if err != nil {
		return 0, nil, 0, 0, shiftOffset(err, i)
	}
	if n > len(b)-i-size {
		// The length field is the byte to blame: it claims more than there is.
		return 0, nil, 0, 0, errAt("ggep", i, ErrTruncated,
			"extension %q says %d bytes, %d remain", id, n, len(b)-i-size)
	}
	return flags, id, i + size, n, nil
}

// DecodeGGEP decodes the block at the start of b (which must begin with
// 0xC3) and returns it with the number of bytes it occupies. Errors carry
// offsets relative to b.
//
// The result aliases b: the Data of extensions that are neither COBS-encoded
// nor deflated, and the wire bytes every extension keeps for re-encoding,
// point into b. Apart from the returned slice, decoding allocates only for
// COBS and deflated data and for IDs outside the common set (ggepIDString).
//
// All the deflated extensions of the block share one inflate budget of
// MaxGGEPInflated; going over it is ErrInflateBudget.
func DecodeGGEP(b []byte) (GGEP, int, error) {
	return decodeGGEP(b, nil)
}

// decodeGGEP is DecodeGGEP charging its inflations to budget, which the
// caller may share with other blocks of the same message. A nil budget is
// that of a stand-alone block: MaxGGEPInflated of output, with every
// inflation's setup and input charges on top.
func decodeGGEP(b []byte, budget *inflateBudget) (GGEP, int, error) {
	if len(b) == 0 {
		return nil, 0, errAt("ggep", 0, ErrTruncated, "empty block")
	}
	if b[0] != GGEPMagic {
		return nil, 0, errAt("ggep", 0, ErrBadGGEP, "block starts with 0x%02x, not 0xC3", b[0])
	}
	// First pass: the structure, and how many extensions there are.
	count, end, charges := 0, 0, 0
	for i := 1; end == 0; count++ {
		if count == MaxGGEPExtensions {
			return nil, 0, errAt("ggep", i, ErrBadGGEP, "more than %d extensions", MaxGGEPExtensions)
		}
		flags, _, data, n, err := scanGGEPExtension(b, i)
		if err != nil {
			return nil, 0, err
		}
		if flags&ggepDeflate != 0 {
			charges += inflateSetupCost + inflateInputCost*n
		}
		i = data + n
		if flags&ggepLast != 0 {
			end = i
		}
	}
	if budget == nil {
		budget = newInflateBudget(MaxGGEPInflated + charges)
	}
	// Second pass: fill in the extensions, undoing COBS and deflate.
	g := make(GGEP, count)
	i := 1
	for k := range g {
		flags, id, at, n, _ := scanGGEPExtension(b, i)
		e := &g[k]
		e.ID = ggepIDString(id)
		e.COBS = flags&ggepCOBS != 0
		e.Deflate = flags&ggepDeflate != 0
		e.wire = b[i : at+n : at+n]
		data := b[at : at+n : at+n]
		var err error
		if e.COBS {
			if data, err = cobsDecode(make([]byte, 0, n), data); err != nil {
				return nil, 0, shiftOffset(err, at)
			}
		}
		if e.Deflate {
			if data, err = budget.inflate(data); err != nil {
				return nil, 0, shiftOffset(err, at)
			}
		}
		e.Data, e.data = data, data
		i = at + n
	}
	return g, end, nil
}

// ggepIDString returns id as a string without allocating for the IDs seen
// in practice (a switch on string(id) does not copy id).
func ggepIDString(id []byte) string {
	switch string(id) {
	case "A":
		return "A"
	case "ALT":
		return "ALT"
	case "ALT6":
		return "ALT6"
	case "ALT_TLS":
		return "ALT_TLS"
	case "BH":
		return "BH"
	case "C":
		return "C"
	case "CT":
		return "CT"
	case "DHT":
		return "DHT"
	case "DHTIPP":
		return "DHTIPP"
	case "DU":
		return "DU"
	case "F":
		return "F"
	case "FW":
		return "FW"
	case "GTKG.IPV6":
		return "GTKG.IPV6"
	case "GTKG.TLS":
		return "GTKG.TLS"
	case "GTKGV":
		return "GTKGV"
	case "GTKGV1":
		return "GTKGV1"
	case "GUE":
		return "GUE"
	case "H":
		return "H"
	case "HNAME":
		return "HNAME"
	case "I6":
		return "I6"
	case "IP":
		return "IP"
	case "IPP":
		return "IPP"
	case "IPP6":
		return "IPP6"
	case "IPP_TLS":
		return "IPP_TLS"
	case "LF":
		return "LF"
	case "LOC":
		return "LOC"
	case "M":
		return "M"
	case "NP":
		return "NP"
	case "P":
		return "P"
	case "PATH":
		return "PATH"
	case "PHC":
		return "PHC"
	case "PR":
		return "PR"
	case "PUSH":
		return "PUSH"
	case "PUSH_TLS":
		return "PUSH_TLS"
	case "QK":
		return "QK"
	case "SCP":
		return "SCP"
	case "SO":
		return "SO"
	case "T":
		return "T"
	case "TLS":
		return "TLS"
	case "u":
		return "u"
	case "UDPHC":
		return "UDPHC"
	case "UP":
		return "UP"
	case "V":
		return "V"
	case "VC":
		return "VC"
	case "WH":
		return "WH"
	case "XQ":
		return "XQ"
	case "Z":
		return "Z"
	case "6":
		return "6"
	}
	return string(id)
}

// AppendTo appends the encoded block to b. On error b is returned unchanged.
func (g GGEP) AppendTo(b []byte) ([]byte, error) { return g.appendTo(b, false) }

// appendTo encodes the block; with noNUL, extensions whose data would carry
// a 0x00 byte are COBS-encoded (QueryHit records allow no NUL), and then no
// byte of the block is 0x00.
func (g GGEP) appendTo(b []byte, noNUL bool) ([]byte, error) {
	if len(g) == 0 {
		return b, errAt("ggep", -1, ErrBadGGEP, "a block needs at least one extension")
	}
	if len(g) > MaxGGEPExtensions {
		return b, errAt("ggep", -1, ErrBadGGEP, "more than %d extensions", MaxGGEPExtensions)
	}
	orig := len(b)
	b = append(b, GGEPMagic)
	for i := range g {
		e := &g[i]
		start := len(b)
		if e.asDecoded() && !(noNUL && bytes.IndexByte(e.wire, 0) >= 0) {
			b = append(b, e.wire...)
			b[start] &^= ggepLast
		} else {
			var err error
			if b, err = e.appendFresh(b, noNUL); err != nil {
				return b[:orig], err
			}
		}
		if i == len(g)-1 {
			b[start] |= ggepLast
		}
	}
	return b, nil
}

// asDecoded reports whether e still has the values DecodeGGEP gave it, so
// that its wire bytes say the same thing.
func (e *Extension) asDecoded() bool {
	if e.wire == nil {
		return false
	}
	flags := e.wire[0]
	idLen := int(flags & ggepIDMask)
	return e.COBS == (flags&ggepCOBS != 0) && e.Deflate == (flags&ggepDeflate != 0) &&
		e.ID == string(e.wire[1:1+idLen]) &&
		len(e.Data) == len(e.data) && (len(e.Data) == 0 || &e.Data[0] == &e.data[0])
}

func (e *Extension) appendFresh(b []byte, noNUL bool) ([]byte, error) {
	if len(e.ID) == 0 || len(e.ID) > 15 {
		return b, errAt("ggep", -1, ErrBadGGEP, "ID %q must be 1 to 15 bytes", e.ID)
	}
	for i := 0; i < len(e.ID); i++ {
		if !validGGEPIDByte(e.ID[i]) {
			return b, errAt("ggep", -1, ErrBadGGEP, "ID %q is not printable ASCII", e.ID)
		}
	}
	data := e.Data
	flags := byte(len(e.ID))
	if e.Deflate {
		if len(data) > MaxGGEPInflated {
			return b, errAt("ggep", -1, ErrTooLarge, "extension %q inflates to %d bytes, limit %d",
				e.ID, len(data), MaxGGEPInflated)
		}
		var zb bytes.Buffer
		zw := zlib.NewWriter(&zb)
		_, _ = zw.Write(data)
		_ = zw.Close()
		data = zb.Bytes()
		flags |= ggepDeflate
	}
	if e.COBS || (noNUL && bytes.IndexByte(data, 0) >= 0) {
		data = cobsEncode(make([]byte, 0, len(data)+len(data)/254+1), data)
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
