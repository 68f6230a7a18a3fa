package protocol

import (
	"encoding/binary"
	"strconv"
)

// HeaderLen is the size of a descriptor header.
const HeaderLen = 23

// Type is the payload type (function) byte of a descriptor header.
type Type uint8

// The payload types of docs/protocol.md §1.2.
const (
	TypePing       Type = 0x00
	TypePong       Type = 0x01
	TypeBye        Type = 0x02
	TypeRouteTable Type = 0x30 // QRP route-table update
	TypeVendor     Type = 0x31
	TypeStdVendor  Type = 0x32 // "standardised" vendor message
	TypePush       Type = 0x40
	TypeRUDP       Type = 0x41
	TypeDHT        Type = 0x44
	TypeQuery      Type = 0x80
	TypeQueryHit   Type = 0x81
	TypeHSEP       Type = 0xCD // gtk-gnutella's horizon estimation; relayed raw
)

var typeNames = map[Type]string{
	TypePing: "Ping", TypePong: "Pong", TypeBye: "Bye", TypeRouteTable: "RouteTableUpdate",
	TypeVendor: "Vendor", TypeStdVendor: "StdVendor", TypePush: "Push", TypeRUDP: "RUDP",
	TypeDHT: "DHT", TypeQuery: "Query", TypeQueryHit: "QueryHit", TypeHSEP: "HSEP",
}

func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return "0x" + strconv.FormatUint(uint64(t), 16)
}

// Known reports whether t is one of the types this package decodes into a
// structured payload.
func (t Type) Known() bool {
	switch t {
	case TypePing, TypePong, TypeBye, TypeRouteTable, TypeVendor, TypeStdVendor,
		TypePush, TypeQuery, TypeQueryHit:
		return true
	}
	return false
}

// Header is the 23-byte descriptor header. Length is the payload length as
// it stands on the wire (little-endian); validating it is the Reader's job.
type Header struct {
	ID     GUID
	Type   Type
	TTL    uint8
	Hops   uint8
	Length uint32
}

// ParseHeader decodes the first 23 bytes of b. It does not allocate.
func ParseHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < HeaderLen {
		return h, errAt("header", len(b), ErrTruncated, "need %d bytes, have %d", HeaderLen, len(b))
	}
	copy(h.ID[:], b[:16])
	h.Type = Type(b[16])
	h.TTL = b[17]
	h.Hops = b[18]
	h.Length = binary.LittleEndian.Uint32(b[19:23])
	return h, nil
}

// Put writes the header into b[:23].
func (h *Header) Put(b []byte) {
	_ = b[HeaderLen-1]
	copy(b[:16], h.ID[:])
	b[16] = byte(h.Type)
	b[17] = h.TTL
	b[18] = h.Hops
	binary.LittleEndian.PutUint32(b[19:23], h.Length)
}

// AppendTo appends the 23 header bytes to b.
func (h *Header) AppendTo(b []byte) []byte {
	var buf [HeaderLen]byte
	h.Put(buf[:])
	return append(b, buf[:]...)
}
