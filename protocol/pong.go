package protocol

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"net/netip"
	"strings"
)

// Pong (0x01), docs/protocol.md §1.4:
//
//	off 0  port    2 bytes LE
//	off 2  IPv4    4 bytes BE (network order)
//	off 6  files   4 bytes LE
//	off 10 KB      4 bytes LE
//	off 14 optional GGEP block (nothing else)

// PongLen is the size of the fixed part of a Pong.
const PongLen = 14

// GGEP IDs read and written by the typed pong helpers.
const (
	ggepDailyUptime = "DU"
	// GGEPTLS, empty, says the host accepts TLS on its port (gtk-gnutella's
	// pongs and hits carry it).
	GGEPTLS        = "TLS"
	ggepVendorCode = "VC"
	ggepUltrapeer  = "UP"
)

// Pong is the payload of a Pong descriptor.
type Pong struct {
	Port  uint16
	IP    [4]byte // network order
	Files uint32  // number of shared files
	KB    uint32  // shared kilobytes; a power of two ≥ 8 marks an ultrapeer
	GGEP  GGEP    // optional extension block
}

// DecodePong decodes a Pong payload: 14 bytes, then nothing or exactly one
// GGEP block of at most MaxGGEPPayload bytes. The GGEP block aliases b
// (see DecodeGGEP).
func DecodePong(b []byte) (*Pong, error) {
	if len(b) < PongLen {
		return nil, errAt("pong", len(b), ErrTruncated, "need %d bytes, have %d", PongLen, len(b))
	}
	p := &Pong{
		Port:  binary.LittleEndian.Uint16(b[0:2]),
		IP:    [4]byte(b[2:6]),
		Files: binary.LittleEndian.Uint32(b[6:10]),
		KB:    binary.LittleEndian.Uint32(b[10:14]),
	}
	g, err := decodeGGEPTail("pong", b[PongLen:], PongLen)
	if err != nil {
		return nil, err
	}
	p.GGEP = g
	return p, nil
}

// Type implements Payload.
func (p *Pong) Type() Type { return TypePong }

// AppendTo implements Payload.
func (p *Pong) AppendTo(b []byte) ([]byte, error) {
	start := len(b)
	b = binary.LittleEndian.AppendUint16(b, p.Port)
	b = append(b, p.IP[:]...)
	b = binary.LittleEndian.AppendUint32(b, p.Files)
	b = binary.LittleEndian.AppendUint32(b, p.KB)
	b, err := appendGGEPTail("pong", b, p.GGEP)
	if err != nil {
		return b[:start], err
	}
	return b, nil
}

// AddrPort returns the advertised address.
func (p *Pong) AddrPort() netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4(p.IP), p.Port)
}

// Ultrapeer reports whether the pong advertises an ultrapeer: its KB count
// is a power of two and at least 8 (gtk-gnutella's pong_type rule), or it
// carries a GGEP "UP" extension.
func (p *Pong) Ultrapeer() bool {
	return isUltrapeerKB(p.KB) || p.GGEP.Has(ggepUltrapeer)
}

func isUltrapeerKB(kb uint32) bool { return kb >= 8 && kb&(kb-1) == 0 }

// UltrapeerKB adjusts a shared-KB count before it goes into our own pong, as
// gtk-gnutella does (pcache.c send_personal_info). An ultrapeer advertises
// the power of two nearest to kb (the lower one on a tie), at least 8. Any
// other node makes sure a non-zero count is odd, so never a power of two of
// 8 or more. Counts of 2^31 and above become 2^31 for an ultrapeer (gtk's
// next_pow2 would overflow there).
func UltrapeerKB(kb uint32, ultra bool) uint32 {
	if !ultra {
		if kb != 0 {
			kb |= 1
		}
		return kb
	}
	switch {
	case kb <= 8:
		return 8
	case kb >= 1<<31:
		return 1 << 31
	}
	next := uint32(1) << bits.Len32(kb-1) // smallest power of two ≥ kb
	prev := next / 2
	if next-kb < kb-prev {
		return next
	}
	return prev
}

// AppendVarint appends v as a GGEP little-endian variable-length integer:
// the little-endian bytes of v without trailing zero bytes, so 0 is encoded
// as no bytes at all. This is the encoding of "DU", "LF" and "M".
func AppendVarint(b []byte, v uint64) []byte {
	for ; v != 0; v >>= 8 {
		b = append(b, byte(v))
	}
	return b
}

// ParseVarint reads a GGEP little-endian variable-length integer of 0 to 8
// bytes. Like gtk-gnutella it accepts trailing zero bytes and reads an
// empty payload as 0; callers that require a non-zero value or a shorter
// form check that themselves.
func ParseVarint(b []byte) (uint64, error) {
	if len(b) > 8 {
		return 0, errAt("varint", 8, ErrTooLarge, "%d bytes, at most 8", len(b))
	}
	var v uint64
	for i, c := range b {
		v |= uint64(c) << (8 * i)
	}
	return v, nil
}

// MaxDailyUptime is the largest daily average uptime a pong advertises.
const MaxDailyUptime = 86400

// DailyUptimeExtension builds the GGEP "DU" extension (daily average uptime
// in seconds, little-endian varint), capped at MaxDailyUptime like
// gtk-gnutella does.
func DailyUptimeExtension(seconds uint32) Extension {
	seconds = min(seconds, MaxDailyUptime)
	return Extension{ID: ggepDailyUptime, Data: AppendVarint(nil, uint64(seconds))}
}

// DailyUptime reads the GGEP "DU" extension. ok is false when it is absent.
// A payload longer than 4 bytes is malformed (gtk-gnutella's rule).
func (p *Pong) DailyUptime() (seconds uint32, ok bool, err error) {
	d, ok := p.GGEP.Get(ggepDailyUptime)
	if !ok {
		return 0, false, nil
	}
	if len(d) > 4 {
		return 0, true, errAt("pong GGEP DU", 4, ErrMalformed, "%d bytes, at most 4", len(d))
	}
	v, _ := ParseVarint(d)
	return uint32(v), true, nil
}

// VendorVersion is the content of the GGEP "VC" extension: the vendor code
// and one version byte (gtk-gnutella puts its version code there).
type VendorVersion struct {
	Vendor  VendorCode
	Version uint8
}

// Extension builds the 5-byte GGEP "VC" extension.
func (v VendorVersion) Extension() Extension {
	d := make([]byte, 0, 5)
	d = append(d, v.Vendor[:]...)
	return Extension{ID: ggepVendorCode, Data: append(d, v.Version)}
}

// String is "GTKG/131".
func (v VendorVersion) String() string { return fmt.Sprintf("%s/%d", v.Vendor, v.Version) }

// VendorVersion reads the GGEP "VC" extension. ok is false when it is
// absent. At least the 4 vendor bytes must be there; a missing version byte
// reads as 0, and bytes after the fifth are ignored (gtk-gnutella's rule).
func (p *Pong) VendorVersion() (v VendorVersion, ok bool, err error) {
	d, ok := p.GGEP.Get(ggepVendorCode)
	if !ok {
		return v, false, nil
	}
	if len(d) < 4 {
		return v, true, errAt("pong GGEP VC", len(d), ErrTruncated, "%d bytes, need at least 4", len(d))
	}
	v.Vendor = VendorCode(d[:4])
	if len(d) > 4 {
		v.Version = d[4]
	}
	return v, true, nil
}

// UltrapeerInfo is the content of the GGEP "UP" extension.
type UltrapeerInfo struct {
	Version            uint8 // gtk-gnutella writes 0x02 (X-Query-Routing 0.2)
	FreeLeafSlots      uint8
	FreeUltrapeerSlots uint8
}

// Extension builds the 3-byte GGEP "UP" extension.
func (u UltrapeerInfo) Extension() Extension {
	return Extension{ID: ggepUltrapeer, Data: []byte{u.Version, u.FreeLeafSlots, u.FreeUltrapeerSlots}}
}

// String is "v2 leaves=255 ultrapeers=50".
func (u UltrapeerInfo) String() string {
	return fmt.Sprintf("v%d leaves=%d ultrapeers=%d", u.Version, u.FreeLeafSlots, u.FreeUltrapeerSlots)
}

// UltrapeerInfo reads the GGEP "UP" extension. ok is false when it is
// absent. It needs at least 3 bytes; further bytes are ignored.
func (p *Pong) UltrapeerInfo() (u UltrapeerInfo, ok bool, err error) {
	d, ok := p.GGEP.Get(ggepUltrapeer)
	if !ok {
		return u, false, nil
	}
	if len(d) < 3 {
		return u, true, errAt("pong GGEP UP", len(d), ErrTruncated, "%d bytes, need 3", len(d))
	}
	return UltrapeerInfo{Version: d[0], FreeLeafSlots: d[1], FreeUltrapeerSlots: d[2]}, true, nil
}

// PackedHostsExtension builds GGEP "IPP": the IPv4 addresses of addrs, 6
// bytes each (address in network order, port little-endian, as "PUSH");
// other addresses are left out.
func PackedHostsExtension(addrs []netip.AddrPort) Extension {
	d := make([]byte, 0, 6*len(addrs))
	for _, a := range addrs {
		if a.Addr().Unmap().Is4() {
			d = AppendPushProxy(d, a)
		}
	}
	return Extension{ID: GGEPPackedHosts, Data: d}
}

// PackedHosts reads GGEP "IPP". ok is false when it is absent; a length
// that is not a multiple of 6 is malformed (gtk-gnutella's rule). The
// addresses are not checked: the caller judges them.
func (p *Pong) PackedHosts() (addrs []netip.AddrPort, ok bool, err error) {
	d, ok := p.GGEP.Get(GGEPPackedHosts)
	if !ok {
		return nil, false, nil
	}
	if len(d)%6 != 0 {
		return nil, true, errAt("pong GGEP IPP", len(d)-len(d)%6, ErrMalformed, "%d bytes, not a multiple of 6", len(d))
	}
	return ipPorts(d), true, nil
}

// UDPHostCache reports whether the pong comes from a UDP host cache
// (GGEP "UDPHC").
func (p *Pong) UDPHostCache() bool { return p.GGEP.Has(GGEPUDPHostCache) }

// String summarises the pong: address, counts, role and extensions.
func (p *Pong) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "Pong %s files=%d kb=%d", p.AddrPort(), p.Files, p.KB)
	if p.Ultrapeer() {
		sb.WriteString(" ultrapeer")
	}
	if len(p.GGEP) > 0 {
		sb.WriteByte(' ')
		sb.WriteString(p.GGEP.String())
	}
	return sb.String()
}

// SpeaksTLS reports whether the pong carries GGEP "TLS": the host accepts
// TLS connections on its port.
func (p *Pong) SpeaksTLS() bool { return p.GGEP.Has(GGEPTLS) }
