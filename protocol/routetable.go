package protocol

import (
	"encoding/binary"
	"fmt"
)

// Route-table update (0x30), the QRP message of docs/protocol.md §4.4. It travels with
// TTL 1, hops 0 and is never routed. Two variants:
//
//	RESET (6 bytes):  variant 0x00 | table length 4 bytes LE | infinity
//	PATCH (5+ bytes): variant 0x01 | seq_no | seq_size | compressor | entry_bits | data
//
// This file checks the framing of one message; the sequence rules across
// messages (RESET before PATCH, seq_no increasing, constant parameters) and
// the table contents belong to the QRP table logic.

// QRP variants and compressors.
const (
	QRPReset          = 0x00
	QRPPatch          = 0x01
	QRPCompressorNone = 0x00
	QRPCompressorZlib = 0x01 // a zlib stream (with header), not raw deflate

	// RouteTableResetLen is the size of a RESET payload.
	RouteTableResetLen = 6
	// RouteTablePatchHeaderLen is the size of a PATCH payload before its data.
	RouteTablePatchHeaderLen = 5
)

// RouteTableReset is the RESET variant: the receiver's table becomes
// TableLength slots, all set to Infinity.
type RouteTableReset struct {
	TableLength uint32 // a power of two; see Validate
	Infinity    uint8  // at least 1
}

// RouteTablePatch is one PATCH message: a chunk of the (possibly
// compressed) patch stream of an update sent as SeqSize messages.
type RouteTablePatch struct {
	SeqNo      uint8 // 1-based, at most SeqSize
	SeqSize    uint8
	Compressor uint8 // QRPCompressorNone or QRPCompressorZlib
	EntryBits  uint8 // 1, 2, 4 or 8 (4 and 8 per the spec; gtk also accepts 1 and 2)
	Data       []byte
}

// DecodeRouteTableUpdate decodes a route-table update payload into a
// *RouteTableReset or a *RouteTablePatch. A RESET must be exactly 6 bytes
// with infinity ≥ 1 (a table length that is not a power of two decodes;
// see RouteTableReset.Validate). A PATCH needs seq_no in 1..seq_size,
// compressor 0 or 1 and entry_bits in {1,2,4,8}; its data may be empty.
// Any other variant is ErrBadQRP. A patch's Data aliases b.
func DecodeRouteTableUpdate(b []byte) (Payload, error) {
	if len(b) == 0 {
		return nil, errAt("route table", 0, ErrTruncated, "empty payload")
	}
	switch b[0] {
	case QRPReset:
		r, err := decodeRouteTableReset(b)
		if err != nil {
			return nil, err
		}
		return r, nil
	case QRPPatch:
		p, err := decodeRouteTablePatch(b)
		if err != nil {
			return nil, err
		}
		return p, nil
	}
	return nil, errAt("route table", 0, ErrBadQRP, "unknown variant 0x%02x", b[0])
}

func decodeRouteTableReset(b []byte) (*RouteTableReset, error) {
	if len(b) < RouteTableResetLen {
		return nil, errAt("route table reset", len(b), ErrTruncated, "need %d bytes, have %d", RouteTableResetLen, len(b))
	}
	if len(b) > RouteTableResetLen {
		return nil, errAt("route table reset", RouteTableResetLen, ErrBadQRP, "%d bytes, a RESET has %d", len(b), RouteTableResetLen)
	}
	r := &RouteTableReset{TableLength: binary.LittleEndian.Uint32(b[1:5]), Infinity: b[5]}
	if r.Infinity == 0 {
		return nil, errAt("route table reset", 5, ErrBadQRP, "infinity 0")
	}
	return r, nil
}

func decodeRouteTablePatch(b []byte) (*RouteTablePatch, error) {
	if len(b) < RouteTablePatchHeaderLen {
		return nil, errAt("route table patch", len(b), ErrTruncated, "need %d bytes, have %d", RouteTablePatchHeaderLen, len(b))
	}
	p := &RouteTablePatch{SeqNo: b[1], SeqSize: b[2], Compressor: b[3], EntryBits: b[4], Data: b[5:]}
	if err := p.validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// Type implements Payload.
func (r *RouteTableReset) Type() Type { return TypeRouteTable }

// AppendTo implements Payload. It refuses infinity 0, which no decoder
// accepts.
func (r *RouteTableReset) AppendTo(b []byte) ([]byte, error) {
	if r.Infinity == 0 {
		return b, errAt("route table reset", 5, ErrBadQRP, "infinity 0")
	}
	b = append(b, QRPReset)
	b = binary.LittleEndian.AppendUint32(b, r.TableLength)
	return append(b, r.Infinity), nil
}

// Validate reports what gtk-gnutella would close the link for (Bye 413): a
// table length that is not a non-zero power of two, or infinity 0. The
// error wraps ErrBadQRP.
func (r *RouteTableReset) Validate() error {
	if r.TableLength == 0 || r.TableLength&(r.TableLength-1) != 0 {
		return errAt("route table reset", 1, ErrBadQRP, "table length %d is not a power of two", r.TableLength)
	}
	if r.Infinity == 0 {
		return errAt("route table reset", 5, ErrBadQRP, "infinity 0")
	}
	return nil
}

// String is "RouteTableReset length=16384 infinity=2".
func (r *RouteTableReset) String() string {
	return fmt.Sprintf("RouteTableReset length=%d infinity=%d", r.TableLength, r.Infinity)
}

// Type implements Payload.
func (p *RouteTablePatch) Type() Type { return TypeRouteTable }

// AppendTo implements Payload. It refuses the field values the decoder
// rejects.
func (p *RouteTablePatch) AppendTo(b []byte) ([]byte, error) {
	if err := p.validate(); err != nil {
		return b, err
	}
	b = append(b, QRPPatch, p.SeqNo, p.SeqSize, p.Compressor, p.EntryBits)
	return append(b, p.Data...), nil
}

// validate checks the header fields; offsets are payload offsets.
func (p *RouteTablePatch) validate() error {
	const what = "route table patch"
	switch {
	case p.SeqSize == 0:
		return errAt(what, 2, ErrBadQRP, "seq_size 0")
	case p.SeqNo == 0:
		return errAt(what, 1, ErrBadQRP, "seq_no 0")
	case p.SeqNo > p.SeqSize:
		return errAt(what, 1, ErrBadQRP, "seq_no %d above seq_size %d", p.SeqNo, p.SeqSize)
	case p.Compressor != QRPCompressorNone && p.Compressor != QRPCompressorZlib:
		return errAt(what, 3, ErrBadQRP, "unknown compressor %d", p.Compressor)
	}
	switch p.EntryBits {
	case 1, 2, 4, 8:
		return nil
	}
	return errAt(what, 4, ErrBadQRP, "entry_bits %d not in {1,2,4,8}", p.EntryBits)
}

// String is "RouteTablePatch 1/1 zlib 4-bit 56 bytes".
func (p *RouteTablePatch) String() string {
	c := "none"
	if p.Compressor == QRPCompressorZlib {
		c = "zlib"
	}
	return fmt.Sprintf("RouteTablePatch %d/%d %s %d-bit %d bytes", p.SeqNo, p.SeqSize, c, p.EntryBits, len(p.Data))
}
