package protocol

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
)

// Vendor messages (0x31, and 0x32 for "standardised" ones), docs/protocol.md §1.6:
//
//	off 0 vendor code  4 bytes, case-sensitive ASCII; all zero = "null" vendor
//	off 4 selector     2 bytes LE
//	off 6 version      2 bytes LE
//	off 8 message-specific data
//
// Over TCP they travel with TTL 1, hops 0 and are never routed.

// VendorHeaderLen is the size of the vendor/selector/version prefix.
const VendorHeaderLen = 8

// VendorCode is a 4-byte vendor code such as "GTKG", "LIME" or "BEAR". The
// zero value is the "null" vendor of the standard messages.
type VendorCode [4]byte

// Well-known vendor codes.
var (
	VendorNull = VendorCode{}
	VendorBEAR = VendorCode{'B', 'E', 'A', 'R'}
	VendorGTKG = VendorCode{'G', 'T', 'K', 'G'}
	VendorLIME = VendorCode{'L', 'I', 'M', 'E'}
)

// IsNull reports whether c is the all-zero "null" vendor.
func (c VendorCode) IsNull() bool { return c == VendorCode{} }

// String is the code as text ("GTKG"), "null" for the null vendor, and
// hex ("0x00414243") when a byte is not printable ASCII.
func (c VendorCode) String() string {
	if c.IsNull() {
		return "null"
	}
	for _, x := range c {
		if x <= 0x20 || x >= 0x7F {
			return fmt.Sprintf("0x%02x%02x%02x%02x", c[0], c[1], c[2], c[3])
		}
	}
	return string(c[:])
}

// VendorMessageID names a vendor message: vendor, selector and version, as
// listed in Messages-Supported and written "BEAR/4v1".
type VendorMessageID struct {
	Vendor   VendorCode
	Selector uint16
	Version  uint16
}

// String is "BEAR/4v1".
func (id VendorMessageID) String() string {
	return fmt.Sprintf("%s/%dv%d", id.Vendor, id.Selector, id.Version)
}

// The vendor messages this package builds and reads, at the version it
// sends. The Push-Proxy Request goes out as v1: LimeWire rejects any later
// version, gtk-gnutella has sent v1 since 2009 and accepts v1 and v2. The
// Push-Proxy Ack goes out as v2, the only version LimeWire accepts.
var (
	MessagesSupportedID   = VendorMessageID{VendorNull, 0, 0}
	HopsFlowID            = VendorMessageID{VendorBEAR, 4, 1}
	TCPConnectBackID      = VendorMessageID{VendorBEAR, 7, 1}
	QueryStatusRequestID  = VendorMessageID{VendorBEAR, 11, 1}
	QueryStatusResponseID = VendorMessageID{VendorBEAR, 12, 1}
	PushProxyRequestID    = VendorMessageID{VendorLIME, 21, 1}
	PushProxyAckID        = VendorMessageID{VendorLIME, 22, 2}
	// Out-of-band hits (docs/protocol.md §11.6): the responder's "reply
	// number" LIME/12 and the querier's ack LIME/11. Both go out as v2, or
	// v3 (secure OOB, GGEP "SO") when the query asked for it.
	OOBReplyAckID        = VendorMessageID{VendorLIME, 11, 2}
	OOBReplyIndicationID = VendorMessageID{VendorLIME, 12, 2}
	// OOBProxyVetoID is LIME/13, a leaf's "do not OOB-proxy my queries"
	// (LimeWire's OOB Proxy Control; gtk-gnutella reads v1).
	OOBProxyVetoID = VendorMessageID{VendorLIME, 13, 1}
)

// GGEPSecureOOB ("SO") marks a query that speaks secure OOB (empty), and
// carries the querier's token in LIME/11v3 and in the hits that answer it.
const GGEPSecureOOB = "SO"

// GGEPNoOOBProxy ("NP"), empty, in a leaf's query asks its ultrapeer not
// to OOB-proxy it (LimeWire's; gtk-gnutella strips it and proxies anyway).
const GGEPNoOOBProxy = "NP"

// MaxOOBToken is the longest secure-OOB token read (gtk-gnutella's
// MAX_OOB_TOKEN_SIZE).
const MaxOOBToken = 16

// QueryStatusStop is the Query Status Response hit count that asks the
// ultrapeer to stop the dynamic query.
const QueryStatusStop = 0xFFFF

type vendorSelector struct {
	vendor   VendorCode
	selector uint16
}

// vendorNames are the names gtk-gnutella's vmsg.c gives its known messages.
var vendorNames = map[vendorSelector]string{
	{VendorNull, 0}:  "Messages-Supported",
	{VendorNull, 10}: "Features-Supported",
	{VendorBEAR, 4}:  "Hops-Flow",
	{VendorBEAR, 7}:  "TCP-Connect-Back",
	{VendorBEAR, 11}: "Query-Status-Request",
	{VendorBEAR, 12}: "Query-Status-Response",
	{VendorGTKG, 7}:  "UDP-Connect-Back",
	{VendorGTKG, 9}:  "Time-Sync-Request",
	{VendorGTKG, 10}: "Time-Sync-Reply",
	{VendorGTKG, 21}: "Push-Proxy-Cancel",
	{VendorGTKG, 22}: "Node-Info-Request",
	{VendorGTKG, 23}: "Node-Info-Reply",
	{VendorLIME, 5}:  "UDP-Crawler-Ping",
	{VendorLIME, 11}: "OOB-Reply-Ack",
	{VendorLIME, 12}: "OOB-Reply-Indication",
	{VendorLIME, 13}: "OOB-Proxy-Veto",
	{VendorLIME, 21}: "Push-Proxy-Request",
	{VendorLIME, 22}: "Push-Proxy-Ack",
	{VendorLIME, 23}: "HEAD-Ping",
	{VendorLIME, 24}: "HEAD-Pong",
}

// Vendor is the payload of a vendor message.
type Vendor struct {
	Kind     Type // TypeVendor (0x31) or TypeStdVendor (0x32)
	Vendor   VendorCode
	Selector uint16
	Version  uint16
	Data     []byte // the message-specific bytes after the 8-byte prefix
}

// DecodeVendor decodes a vendor message payload of type t (0x31 or 0x32):
// at least the 8-byte prefix. Data aliases b.
func DecodeVendor(t Type, b []byte) (*Vendor, error) {
	if t != TypeVendor && t != TypeStdVendor {
		return nil, errAt("vendor", -1, ErrMalformed, "type %s is not a vendor message", t)
	}
	if len(b) < VendorHeaderLen {
		return nil, errAt("vendor", len(b), ErrTruncated, "need %d bytes, have %d", VendorHeaderLen, len(b))
	}
	return &Vendor{
		Kind:     t,
		Vendor:   VendorCode(b[0:4]),
		Selector: binary.LittleEndian.Uint16(b[4:6]),
		Version:  binary.LittleEndian.Uint16(b[6:8]),
		Data:     b[VendorHeaderLen:],
	}, nil
}

// Type implements Payload: Kind when it is TypeStdVendor, else TypeVendor.
func (v *Vendor) Type() Type {
	if v.Kind == TypeStdVendor {
		return TypeStdVendor
	}
	return TypeVendor
}

// AppendTo implements Payload.
func (v *Vendor) AppendTo(b []byte) ([]byte, error) {
	b = append(b, v.Vendor[:]...)
	b = binary.LittleEndian.AppendUint16(b, v.Selector)
	b = binary.LittleEndian.AppendUint16(b, v.Version)
	return append(b, v.Data...), nil
}

// ID returns the vendor, selector and version of the message.
func (v *Vendor) ID() VendorMessageID {
	return VendorMessageID{Vendor: v.Vendor, Selector: v.Selector, Version: v.Version}
}

// Is reports whether v is the message id names, whatever its version: use
// it to dispatch, then let the typed reader check the version.
func (v *Vendor) Is(id VendorMessageID) bool {
	return v.Vendor == id.Vendor && v.Selector == id.Selector
}

// Name is the name of a known message ("Hops-Flow"), or "".
func (v *Vendor) Name() string {
	return vendorNames[vendorSelector{v.Vendor, v.Selector}]
}

func newVendor(id VendorMessageID, data []byte) *Vendor {
	return &Vendor{Kind: TypeVendor, Vendor: id.Vendor, Selector: id.Selector, Version: id.Version, Data: data}
}

// check makes sure v is message id at a version in [minVersion,
// maxVersion] carrying at least need data bytes. Offsets are payload
// offsets.
func (v *Vendor) check(id VendorMessageID, minVersion, maxVersion uint16, need int) error {
	what := "vendor " + id.String()
	if !v.Is(id) {
		return errAt(what, 0, ErrMalformed, "message is %s", v.ID())
	}
	if v.Version < minVersion || v.Version > maxVersion {
		return errAt(what, 6, ErrMalformed, "unsupported version %d", v.Version)
	}
	if len(v.Data) < need {
		return errAt(what, VendorHeaderLen+len(v.Data), ErrTruncated,
			"%d data bytes, need %d", len(v.Data), need)
	}
	return nil
}

// NewMessagesSupported builds Messages-Supported (null/0v0): a 2-byte LE
// count, then vendor(4) + selector(2 LE) + version(2 LE) per entry. At most
// 65535 entries are written.
func NewMessagesSupported(ids []VendorMessageID) *Vendor {
	ids = ids[:min(len(ids), 0xFFFF)]
	d := make([]byte, 0, 2+8*len(ids))
	d = binary.LittleEndian.AppendUint16(d, uint16(len(ids)))
	for _, id := range ids {
		d = append(d, id.Vendor[:]...)
		d = binary.LittleEndian.AppendUint16(d, id.Selector)
		d = binary.LittleEndian.AppendUint16(d, id.Version)
	}
	return newVendor(MessagesSupportedID, d)
}

// MessagesSupported reads a Messages-Supported message (version 0). Bytes
// after the counted entries are ignored, as gtk-gnutella does.
func (v *Vendor) MessagesSupported() ([]VendorMessageID, error) {
	if err := v.check(MessagesSupportedID, 0, 0, 2); err != nil {
		return nil, err
	}
	n := int(binary.LittleEndian.Uint16(v.Data))
	if need := 2 + 8*n; len(v.Data) < need {
		return nil, errAt("vendor "+MessagesSupportedID.String(), VendorHeaderLen+len(v.Data), ErrTruncated,
			"count %d needs %d data bytes, have %d", n, need, len(v.Data))
	}
	ids := make([]VendorMessageID, n)
	for i := range ids {
		e := v.Data[2+8*i:]
		ids[i] = VendorMessageID{
			Vendor:   VendorCode(e[0:4]),
			Selector: binary.LittleEndian.Uint16(e[4:6]),
			Version:  binary.LittleEndian.Uint16(e[6:8]),
		}
	}
	return ids, nil
}

// NewHopsFlow builds Hops-Flow (BEAR/4v1): only send me queries whose hop
// count is strictly below hops; 0 stops all queries.
func NewHopsFlow(hops uint8) *Vendor { return newVendor(HopsFlowID, []byte{hops}) }

// HopsFlow reads a Hops-Flow message.
func (v *Vendor) HopsFlow() (uint8, error) {
	if err := v.check(HopsFlowID, 1, 1, 1); err != nil {
		return 0, err
	}
	return v.Data[0], nil
}

// NewTCPConnectBack builds TCP Connect-Back (BEAR/7v1): connect to the
// sender's address on port.
func NewTCPConnectBack(port uint16) *Vendor {
	return newVendor(TCPConnectBackID, binary.LittleEndian.AppendUint16(nil, port))
}

// TCPConnectBack reads a TCP Connect-Back message. Port 0 is malformed (gtk
// and LimeWire ignore it).
func (v *Vendor) TCPConnectBack() (uint16, error) {
	if err := v.check(TCPConnectBackID, 1, 1, 2); err != nil {
		return 0, err
	}
	port := binary.LittleEndian.Uint16(v.Data)
	if port == 0 {
		return 0, errAt("vendor "+TCPConnectBackID.String(), VendorHeaderLen, ErrMalformed, "port 0")
	}
	return port, nil
}

// NewQueryStatusRequest builds Query Status Request (BEAR/11v1), empty; the
// descriptor's GUID is the query's MUID.
func NewQueryStatusRequest() *Vendor { return newVendor(QueryStatusRequestID, nil) }

// QueryStatusRequest checks that v is a Query Status Request.
func (v *Vendor) QueryStatusRequest() error {
	return v.check(QueryStatusRequestID, 1, 1, 0)
}

// NewQueryStatusResponse builds Query Status Response (BEAR/12v1) with the
// number of hits kept so far; QueryStatusStop asks to stop the query.
func NewQueryStatusResponse(hits uint16) *Vendor {
	return newVendor(QueryStatusResponseID, binary.LittleEndian.AppendUint16(nil, hits))
}

// QueryStatusResponse reads a Query Status Response message.
func (v *Vendor) QueryStatusResponse() (hits uint16, err error) {
	if err := v.check(QueryStatusResponseID, 1, 1, 2); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(v.Data), nil
}

// NewPushProxyRequest builds Push-Proxy Request (LIME/21v1), empty; the
// descriptor's GUID is the requester's servent ID.
func NewPushProxyRequest() *Vendor { return newVendor(PushProxyRequestID, nil) }

// PushProxyRequest checks that v is a Push-Proxy Request (v1 or v2).
func (v *Vendor) PushProxyRequest() error {
	return v.check(PushProxyRequestID, 1, 2, 0)
}

// NewPushProxyAck builds Push-Proxy Ack (LIME/22v2): the proxy's IPv4 in
// network order and its port LE. The descriptor's GUID is the servent ID of
// the leaf being proxied.
func NewPushProxyAck(ip [4]byte, port uint16) *Vendor {
	d := make([]byte, 0, 6)
	d = append(d, ip[:]...)
	return newVendor(PushProxyAckID, binary.LittleEndian.AppendUint16(d, port))
}

// PushProxyAck reads a Push-Proxy Ack. Only v2 is accepted: v1 carried no
// address and LimeWire rejects it.
func (v *Vendor) PushProxyAck() (netip.AddrPort, error) {
	if err := v.check(PushProxyAckID, 2, 2, 6); err != nil {
		return netip.AddrPort{}, err
	}
	ip := netip.AddrFrom4([4]byte(v.Data[0:4]))
	return netip.AddrPortFrom(ip, binary.LittleEndian.Uint16(v.Data[4:6])), nil
}

// OOBReplyIndication is LIME/12: how many hits the sender holds for the
// query of the descriptor's MUID, and whether it can receive unsolicited
// UDP. Secure says it answers a query that carried "SO" (v3).
type OOBReplyIndication struct {
	Hits        uint8 // 1..255; 255 means 255 or more
	Unsolicited bool  // the sender receives unsolicited UDP
	Secure      bool
}

// NewOOBReplyIndication builds LIME/12: v3 when i.Secure, else v2.
func NewOOBReplyIndication(i OOBReplyIndication) *Vendor {
	id := OOBReplyIndicationID
	if i.Secure {
		id.Version = 3
	}
	var flags byte
	if i.Unsolicited {
		flags = 1
	}
	return newVendor(id, []byte{i.Hits, flags})
}

// OOBReplyIndication reads LIME/12 v1 (one byte), v2 or v3 (two; later
// bytes are ignored, as the v3 text asks). Zero hits is malformed.
func (v *Vendor) OOBReplyIndication() (OOBReplyIndication, error) {
	need := 2
	if v.Version == 1 {
		need = 1
	}
	if err := v.check(OOBReplyIndicationID, 1, 3, need); err != nil {
		return OOBReplyIndication{}, err
	}
	i := OOBReplyIndication{Hits: v.Data[0], Secure: v.Version == 3}
	if i.Hits == 0 {
		return OOBReplyIndication{}, errAt("vendor "+OOBReplyIndicationID.String(), VendorHeaderLen, ErrMalformed, "no hits")
	}
	if v.Version > 1 {
		i.Unsolicited = v.Data[1]&1 != 0
	}
	return i, nil
}

// NewOOBReplyAck builds LIME/11: want hits (255: all), as v3 carrying
// token in GGEP "SO" when token is not empty, else as v2.
func NewOOBReplyAck(want uint8, token []byte) *Vendor {
	if len(token) == 0 {
		return newVendor(OOBReplyAckID, []byte{want})
	}
	id := OOBReplyAckID
	id.Version = 3
	d, err := GGEP{{ID: GGEPSecureOOB, Data: token}}.AppendTo([]byte{want})
	if err != nil { // a short token always encodes; keep the count at least
		d = []byte{want}
	}
	return newVendor(id, d)
}

// OOBReplyAck reads LIME/11 v2 or v3 (LimeWire never took v1): the number
// of hits wanted and, in v3, the secure-OOB token of its GGEP "SO" (1 to
// MaxOOBToken bytes; v3 without one, or with a longer one, is malformed).
func (v *Vendor) OOBReplyAck() (want uint8, token []byte, err error) {
	if err := v.check(OOBReplyAckID, 2, 3, 1); err != nil {
		return 0, nil, err
	}
	want = v.Data[0]
	if v.Version == 2 {
		return want, nil, nil
	}
	what := "vendor " + OOBReplyAckID.String()
	if len(v.Data) < 2 {
		return 0, nil, errAt(what, VendorHeaderLen+1, ErrTruncated, "v3 without its GGEP block")
	}
	g, _, err := DecodeGGEP(v.Data[1:])
	if err != nil {
		return 0, nil, shiftOffset(err, VendorHeaderLen+1)
	}
	token, ok := g.Get(GGEPSecureOOB)
	if !ok || len(token) == 0 || len(token) > MaxOOBToken {
		return 0, nil, errAt(what, VendorHeaderLen+1, ErrMalformed, "no secure-OOB token of 1 to %d bytes", MaxOOBToken)
	}
	return want, token, nil
}

// String summarises the message: its ID, its name when known, and the
// decoded content of the messages this package reads.
func (v *Vendor) String() string {
	var sb strings.Builder
	sb.WriteString(v.Type().String())
	sb.WriteByte(' ')
	sb.WriteString(v.ID().String())
	if n := v.Name(); n != "" {
		sb.WriteByte(' ')
		sb.WriteString(n)
	}
	if s, ok := v.summary(); ok {
		sb.WriteByte(' ')
		sb.WriteString(s)
	} else if len(v.Data) > 0 {
		fmt.Fprintf(&sb, " (%d data bytes)", len(v.Data))
	}
	return sb.String()
}

// summary decodes the content of the messages with a typed reader.
func (v *Vendor) summary() (string, bool) {
	switch {
	case v.Is(MessagesSupportedID):
		ids, err := v.MessagesSupported()
		if err != nil {
			return "", false
		}
		parts := make([]string, len(ids))
		for i, id := range ids {
			parts[i] = id.String()
		}
		return "[" + strings.Join(parts, " ") + "]", true
	case v.Is(HopsFlowID):
		h, err := v.HopsFlow()
		return fmt.Sprintf("hops<%d", h), err == nil
	case v.Is(TCPConnectBackID):
		p, err := v.TCPConnectBack()
		return fmt.Sprintf("port=%d", p), err == nil
	case v.Is(QueryStatusResponseID):
		h, err := v.QueryStatusResponse()
		if h == QueryStatusStop {
			return "stop", err == nil
		}
		return fmt.Sprintf("hits=%d", h), err == nil
	case v.Is(PushProxyAckID):
		ap, err := v.PushProxyAck()
		return ap.String(), err == nil
	case v.Is(OOBReplyIndicationID):
		i, err := v.OOBReplyIndication()
		return fmt.Sprintf("hits=%d unsolicited=%t", i.Hits, i.Unsolicited), err == nil
	case v.Is(OOBReplyAckID):
		n, tok, err := v.OOBReplyAck()
		return fmt.Sprintf("want=%d token=%x", n, tok), err == nil
	}
	return "", false
}

// NewOOBProxyVeto builds LIME/13v1 with its one byte: the highest OOB
// version whose queries the leaf does not want proxied (LimeWire's
// control byte: 0 allows proxying, 255 forbids it for every version).
func NewOOBProxyVeto(maxVersion uint8) *Vendor {
	return newVendor(OOBProxyVetoID, []byte{maxVersion})
}

// OOBProxyVeto reads LIME/13v1 as gtk-gnutella does: the leaf vetoes
// proxying unless the message carries a byte below 3 (proxying of OOB v3
// queries, the only version proxied, is not vetoed). No byte vetoes.
func (v *Vendor) OOBProxyVeto() (veto bool, err error) {
	if err := v.check(OOBProxyVetoID, 1, 1, 0); err != nil {
		return false, err
	}
	return len(v.Data) == 0 || v.Data[0] >= 3, nil
}
