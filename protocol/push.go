package protocol

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Push (0x40), docs/protocol.md §1.7:
//
//	off 0  servent ID of the target  16 bytes
//	off 16 file index                 4 bytes LE
//	off 20 IPv4 to connect back to    4 bytes BE (network order)
//	off 24 port                       2 bytes LE
//	off 26 optional GGEP block (nothing else), e.g. "TLS" or "6"

// PushLen is the size of the fixed part of a Push.
const PushLen = 26

// PushIndexRUDP is the file index gtk-gnutella uses to ask for a
// firewall-to-firewall (RUDP) transfer. Index 0 means "any file": transfers
// are by URN nowadays.
const PushIndexRUDP = 0x7FFFFFFD

// Push is the payload of a Push descriptor.
type Push struct {
	ServentID GUID   // the servent that should connect back (from its QueryHit trailer)
	Index     uint32 // file index
	IP        [4]byte
	Port      uint16
	GGEP      GGEP // optional extension block
}

// DecodePush decodes a Push payload: 26 bytes, then nothing or exactly one
// GGEP block of at most MaxGGEPPayload bytes. The GGEP block aliases b
// (see DecodeGGEP).
func DecodePush(b []byte) (*Push, error) {
	if len(b) < PushLen {
		return nil, errAt("push", len(b), ErrTruncated, "need %d bytes, have %d", PushLen, len(b))
	}
	p := &Push{
		ServentID: GUID(b[0:16]),
		Index:     binary.LittleEndian.Uint32(b[16:20]),
		IP:        [4]byte(b[20:24]),
		Port:      binary.LittleEndian.Uint16(b[24:26]),
	}
	g, err := decodeGGEPTail("push", b[PushLen:], PushLen)
	if err != nil {
		return nil, err
	}
	p.GGEP = g
	return p, nil
}

// Type implements Payload.
func (p *Push) Type() Type { return TypePush }

// AppendTo implements Payload.
func (p *Push) AppendTo(b []byte) ([]byte, error) {
	start := len(b)
	b = append(b, p.ServentID[:]...)
	b = binary.LittleEndian.AppendUint32(b, p.Index)
	b = append(b, p.IP[:]...)
	b = binary.LittleEndian.AppendUint16(b, p.Port)
	b, err := appendGGEPTail("push", b, p.GGEP)
	if err != nil {
		return b[:start], err
	}
	return b, nil
}

// AddrPort returns the address the target should connect back to.
func (p *Push) AddrPort() netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4(p.IP), p.Port)
}

// SpeaksTLS reports whether the Push carries GGEP "TLS": the requester
// accepts TLS at the address it gives, so the GIV callback should be made
// over TLS (gtk-gnutella's build_push and uploads.c).
func (p *Push) SpeaksTLS() bool { return p.GGEP.Has(GGEPTLS) }

// String summarises the push.
func (p *Push) String() string {
	s := fmt.Sprintf("Push servent=%s index=%d to %s", p.ServentID, p.Index, p.AddrPort())
	if len(p.GGEP) > 0 {
		s += " " + p.GGEP.String()
	}
	return s
}
