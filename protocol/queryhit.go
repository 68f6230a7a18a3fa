package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"strconv"
	"strings"
)

// QueryHit (0x81) payload, docs/protocol.md §1.9:
//
//	N(1) port(2, LE) ip(4, BE) speed(4, LE)
//	N × { index(4, LE) size(4, LE) name NUL extension-area NUL }
//	[ vendor(4) open-size(1) open-data private-area ]   the trailer ("QHD")
//	servent-id(16)                                      always the last 16 bytes

const (
	hitHeaderLen     = 11
	hitMinPayload    = hitHeaderLen + 16
	hitMinRecord     = 4 + 4 + 1 + 1 // index, size, two NULs
	hitTrailerMinLen = 4 + 1         // vendor code and open-data size
	// HitMaxResults is the most records one QueryHit can count (N is a byte).
	HitMaxResults = 255
	// LargeFileSize in Result.Size says the real size is in GGEP "LF".
	LargeFileSize = 0xFFFFFFFF
)

// The bits of the two open-data bytes (docs/protocol.md §1.9). For Push, byte 0 carries the
// value and byte 1 says it is valid; for the others it is the other way round.
const (
	hitFlagPush          = 0x01
	hitFlagBusy          = 0x04
	hitFlagUploaded      = 0x08
	hitFlagSpeedMeasured = 0x10
	hitFlagGGEP          = 0x20
)

// QueryHit is a decoded QueryHit payload. A decoded QueryHit aliases the
// input: names, extension texts, open data and the private area point into it.
type QueryHit struct {
	Port    uint16
	IP      [4]byte // network order
	Speed   uint32  // kbit/s
	Results []Result

	// Vendor, OpenData and Private are the trailer. OpenData is the open
	// data as sent (usually 2 bytes, LimeWire 4); Private is everything
	// between it and the servent ID (gtk-gnutella: a GGEP block; LimeWire:
	// a chat byte, GGEP, XML).
	Vendor   VendorCode
	OpenData []byte
	Private  []byte
	// NoTrailer records a hit whose records are followed directly by the
	// servent ID; Vendor, OpenData and Private are then unused.
	NoTrailer bool

	// ServentID is the responder's GUID, the last 16 bytes of the payload.
	ServentID GUID

	err error // set by NewQueryHit when the trailer GGEP cannot be encoded
}

// Result is one record of a QueryHit.
type Result struct {
	Index uint32
	// Size is the file size; LargeFileSize means the size is in GGEP "LF"
	// (see FileSize).
	Size uint32
	// Name is the file name as sent, without its NUL.
	Name []byte
	// Extensions is the record's extension area (URNs, GGEP).
	Extensions ExtensionArea
}

// FileSize returns Size, or the GGEP "LF" value (a little-endian integer of
// 1 to 8 bytes) when Size is LargeFileSize and the record carries one.
func (r *Result) FileSize() uint64 {
	if r.Size == LargeFileSize {
		for k := range r.Extensions {
			if d, ok := r.Extensions[k].GGEP.Get("LF"); ok && len(d) >= 1 && len(d) <= 8 {
				var v uint64
				for i, c := range d {
					v |= uint64(c) << (8 * i)
				}
				return v
			}
		}
	}
	return uint64(r.Size)
}

// URNs returns the record's SHA-1 URNs (text and GGEP H/u).
func (r *Result) URNs() []SHA1 { return r.Extensions.URNs() }

// String summarises the record.
func (r *Result) String() string {
	var sb strings.Builder
	sb.WriteString("#")
	sb.WriteString(strconv.FormatUint(uint64(r.Index), 10))
	sb.WriteString(" ")
	sb.WriteString(strconv.Quote(string(r.Name)))
	sb.WriteString(" size=")
	sb.WriteString(strconv.FormatUint(r.FileSize(), 10))
	if len(r.Extensions) > 0 {
		sb.WriteString(" ext=")
		sb.WriteString(r.Extensions.String())
	}
	return sb.String()
}

// DecodeQueryHit decodes a QueryHit payload: at least 27 bytes, N ≥ 1,
// exactly N records each closed by two NULs (name, extension area), the
// optional trailer fitting before the servent ID. The per-record extension
// areas are decoded; the private area is kept as bytes (see TrailerGGEP).
// The result aliases b.
//
// The deflated GGEP extensions of all the records and of the trailer's
// GGEP block share one inflate budget of MaxInflatedPerMessage; a hit that
// goes over it fails with ErrInflateBudget (docs/protocol.md §1.10). A
// trailer block that is merely malformed is no error (TrailerGGEP is nil).
func DecodeQueryHit(b []byte) (*QueryHit, error) {
	if len(b) < hitMinPayload {
		return nil, errAt("queryhit", len(b), ErrTruncated, "payload of %d bytes, need at least %d", len(b), hitMinPayload)
	}
	n := int(b[0])
	if n == 0 {
		return nil, errAt("queryhit", 0, ErrMalformed, "no results")
	}
	end := len(b) - 16
	h := &QueryHit{
		Port:  binary.LittleEndian.Uint16(b[1:3]),
		IP:    [4]byte(b[3:7]),
		Speed: binary.LittleEndian.Uint32(b[7:11]),
	}
	copy(h.ServentID[:], b[end:])
	h.Results = make([]Result, 0, min(n, (end-hitHeaderLen)/hitMinRecord))
	items := make(ExtensionArea, 0, min(2*n, (end-hitHeaderLen)/hitMinRecord+1))
	budget := newInflateBudget(MaxInflatedPerMessage)
	i := hitHeaderLen
	for k := 0; k < n; k++ {
		if end-i < 8 {
			return nil, errAt("queryhit", i, ErrMalformed, "record %d of %d does not fit before the servent ID", k+1, n)
		}
		r := Result{
			Index: binary.LittleEndian.Uint32(b[i : i+4]),
			Size:  binary.LittleEndian.Uint32(b[i+4 : i+8]),
		}
		nameAt := i + 8
		nameEnd := bytes.IndexByte(b[nameAt:end], 0)
		if nameEnd < 0 {
			return nil, errAt("queryhit", nameAt, ErrMalformed, "record %d: file name has no NUL before the servent ID", k+1)
		}
		nameEnd += nameAt
		r.Name = b[nameAt:nameEnd:nameEnd]
		extAt := nameEnd + 1
		extEnd := bytes.IndexByte(b[extAt:end], 0)
		if extEnd < 0 {
			return nil, errAt("queryhit", extAt, ErrMalformed, "record %d: extension area has no NUL before the servent ID", k+1)
		}
		extEnd += extAt
		before := len(items)
		var err error
		items, _, err = decodeExtArea(items, b[extAt:extEnd], false, budget)
		if err != nil {
			if errors.Is(err, ErrTruncated) {
				// The block's own framing runs on past the record's NUL:
				// the block would hold a NUL, which records forbid.
				return nil, errAt("queryhit", extEnd, ErrMalformed, "record %d: NUL inside a GGEP block", k+1)
			}
			return nil, shiftOffset(asWhat(err, "queryhit"), extAt)
		}
		r.Extensions = itemsFrom(items, before)
		h.Results = append(h.Results, r)
		i = extEnd + 1
	}
	if t := end - i; t == 0 {
		h.NoTrailer = true
	} else {
		if t < hitTrailerMinLen {
			return nil, errAt("queryhit", i, ErrMalformed, "trailer of %d bytes, need at least %d", t, hitTrailerMinLen)
		}
		copy(h.Vendor[:], b[i:i+4])
		open := int(b[i+4])
		if open > t-hitTrailerMinLen {
			return nil, errAt("queryhit", i+4, ErrMalformed, "open data of %d bytes runs into the servent ID", open)
		}
		at := i + hitTrailerMinLen
		h.OpenData = b[at : at+open : at+open]
		if at+open < end {
			h.Private = b[at+open : end : end]
			if _, err := h.trailerGGEP(budget); errors.Is(err, ErrInflateBudget) {
				return nil, shiftOffset(err, at+open)
			}
		}
	}
	return h, nil
}

// HitTrailer is what NewQueryHit puts in the trailer of our own hits.
type HitTrailer struct {
	Vendor        VendorCode
	Push          bool // we are firewalled: downloaders must send a Push
	Busy          bool // no free upload slot
	Uploaded      bool // we have uploaded at least one file
	SpeedMeasured bool // Speed was measured, not set by the user
	// GGEP goes into the private area (e.g. "PUSH" proxies, "BH"); the
	// GGEP flag is set when it is not empty.
	GGEP GGEP
}

// NewQueryHit builds a hit the way gtk-gnutella writes its own: open data of
// 2 bytes, byte 0 = 0x04|0x08|0x20 (+0x01 when firewalled), byte 1 = 0x01 |
// busy | uploaded | GGEP, the speed bits only when SpeedMeasured is set, and
// t.GGEP as the private area. Records' GGEP data is COBS-encoded as needed
// when encoding. If t.GGEP cannot be encoded, AppendTo reports the error.
func NewQueryHit(ip [4]byte, port uint16, speed uint32, results []Result, t HitTrailer, servent GUID) *QueryHit {
	b0 := byte(hitFlagBusy | hitFlagUploaded | hitFlagGGEP)
	b1 := byte(hitFlagPush)
	if t.Push {
		b0 |= hitFlagPush
	}
	if t.Busy {
		b1 |= hitFlagBusy
	}
	if t.Uploaded {
		b1 |= hitFlagUploaded
	}
	if t.SpeedMeasured {
		b0 |= hitFlagSpeedMeasured
		b1 |= hitFlagSpeedMeasured
	}
	h := &QueryHit{
		Port: port, IP: ip, Speed: speed, Results: results,
		Vendor: t.Vendor, ServentID: servent,
	}
	if len(t.GGEP) > 0 {
		b1 |= hitFlagGGEP
		h.Private, h.err = t.GGEP.AppendTo(nil)
	}
	h.OpenData = []byte{b0, b1}
	return h
}

// Type implements Payload.
func (h *QueryHit) Type() Type { return TypeQueryHit }

// AppendTo implements Payload. A decoded QueryHit encodes to exactly the
// bytes it was decoded from.
func (h *QueryHit) AppendTo(b []byte) ([]byte, error) {
	if h.err != nil {
		return b, h.err
	}
	n := len(h.Results)
	if n == 0 || n > HitMaxResults {
		return b, errAt("queryhit", -1, ErrMalformed, "%d results; a hit carries 1 to %d", n, HitMaxResults)
	}
	if !h.NoTrailer && len(h.OpenData) > 0xFF {
		return b, errAt("queryhit", -1, ErrTooLarge, "open data of %d bytes", len(h.OpenData))
	}
	start := len(b)
	b = append(b, byte(n))
	b = binary.LittleEndian.AppendUint16(b, h.Port)
	b = append(b, h.IP[:]...)
	b = binary.LittleEndian.AppendUint32(b, h.Speed)
	for k := range h.Results {
		r := &h.Results[k]
		if bytes.IndexByte(r.Name, 0) >= 0 {
			return b[:start], errAt("queryhit", -1, ErrMalformed, "record %d: name holds a NUL", k+1)
		}
		b = binary.LittleEndian.AppendUint32(b, r.Index)
		b = binary.LittleEndian.AppendUint32(b, r.Size)
		b = append(b, r.Name...)
		b = append(b, 0)
		var err error
		if b, err = r.Extensions.appendTo(b, false); err != nil {
			return b[:start], err
		}
		b = append(b, 0)
	}
	if !h.NoTrailer {
		b = append(b, h.Vendor[:]...)
		b = append(b, byte(len(h.OpenData)))
		b = append(b, h.OpenData...)
		b = append(b, h.Private...)
	}
	b = append(b, h.ServentID[:]...)
	return b, nil
}

// HitFlags are the trailer's flags (docs/protocol.md §1.9).
type HitFlags struct {
	Push          bool // the responder is firewalled: use a Push
	Busy          bool // no free upload slot
	Uploaded      bool // has uploaded at least one file
	SpeedMeasured bool // Speed was measured
	GGEP          bool // the private area holds a GGEP block
}

// Flags reads the open data as gtk-gnutella does: status = byte0 & byte1,
// so a flag is true only when it is both set and marked valid. valid says
// which flags the responder marked valid (byte 1 for Push, byte 0 for the
// others). Open data shorter than 2 bytes carries no flags.
func (h *QueryHit) Flags() (flags HitFlags, valid HitFlags) {
	if h.NoTrailer || len(h.OpenData) < 2 {
		return
	}
	b0, b1 := h.OpenData[0], h.OpenData[1]
	s := b0 & b1
	flags = HitFlags{
		Push: s&hitFlagPush != 0, Busy: s&hitFlagBusy != 0, Uploaded: s&hitFlagUploaded != 0,
		SpeedMeasured: s&hitFlagSpeedMeasured != 0, GGEP: s&hitFlagGGEP != 0,
	}
	valid = HitFlags{
		Push: b1&hitFlagPush != 0, Busy: b0&hitFlagBusy != 0, Uploaded: b0&hitFlagUploaded != 0,
		SpeedMeasured: b0&hitFlagSpeedMeasured != 0, GGEP: b0&hitFlagGGEP != 0,
	}
	return
}

// ClearPush drops the push flag (the other flags stay): for a responder
// we have reached directly, whatever it believes of itself (a browse).
func (h *QueryHit) ClearPush() {
	if len(h.OpenData) >= 2 {
		h.OpenData[0] &^= hitFlagPush
	}
}

// TrailerGGEP decodes the GGEP block of the private area: at its start
// (gtk-gnutella) or after LimeWire's one-byte private flags. It returns nil
// when there is none or it does not decode. It parses on each call, with
// an inflate budget of MaxInflatedPerMessage.
func (h *QueryHit) TrailerGGEP() GGEP {
	g, _ := h.trailerGGEP(newInflateBudget(MaxInflatedPerMessage))
	return g
}

// trailerGGEP decodes the private area's GGEP block, charging its
// inflations to budget. The error is that of the last place tried (offsets
// relative to the private area); a nil block with a nil error means there
// is no block.
func (h *QueryHit) trailerGGEP(budget *inflateBudget) (GGEP, error) {
	p := h.Private
	var last error
	for at := 0; at < 2 && at < len(p); at++ {
		if p[at] != GGEPMagic {
			continue
		}
		g, _, err := decodeGGEP(p[at:], budget)
		if err == nil {
			return g, nil
		}
		last = shiftOffset(err, at)
		if errors.Is(err, ErrInflateBudget) {
			break // the budget is spent: trying further would not help
		}
	}
	return nil, last
}

// PushProxies returns the push proxies of the trailer's GGEP "PUSH"
// extension: N × 6 bytes of IPv4 (network order) and port (little-endian).
// An incomplete last entry is ignored.
func (h *QueryHit) PushProxies() []netip.AddrPort {
	d, ok := h.TrailerGGEP().Get("PUSH")
	if !ok {
		return nil
	}
	return ipPorts(d)
}

// SpeaksTLS reports whether the trailer's GGEP carries "TLS" (or
// gtk-gnutella's older "GTKG.TLS"), empty: the responder accepts TLS on
// its port (gtk-gnutella's qhit.c). A push callback to a downloader that
// asked for TLS in its Push (Push.SpeaksTLS) is made over TLS.
func (h *QueryHit) SpeaksTLS() bool {
	g := h.TrailerGGEP()
	return g.Has(GGEPTLS) || g.Has("GTKG.TLS")
}

// ipPorts reads N × 6 bytes of IPv4 (network order) and port
// (little-endian), the form of "PUSH" and "ALT". An incomplete last entry is
// ignored.
func ipPorts(d []byte) []netip.AddrPort {
	out := make([]netip.AddrPort, 0, len(d)/6)
	for ; len(d) >= 6; d = d[6:] {
		out = append(out, netip.AddrPortFrom(netip.AddrFrom4([4]byte(d[:4])), binary.LittleEndian.Uint16(d[4:6])))
	}
	return out
}

// AltLocs returns the alternate locations of the record's GGEP "ALT"
// extension (§1.9): N × 6 bytes as in "PUSH". They are not checked: the
// caller judges the addresses.
func (r *Result) AltLocs() []netip.AddrPort {
	d, ok := r.Extensions.GGEP().Get("ALT")
	if !ok {
		return nil
	}
	return ipPorts(d)
}

// AppendPushProxy appends one "PUSH" entry (6 bytes) for ap to b; ap must be
// an IPv4 address.
func AppendPushProxy(b []byte, ap netip.AddrPort) []byte {
	a := ap.Addr().Unmap().As4()
	b = append(b, a[:]...)
	return binary.LittleEndian.AppendUint16(b, ap.Port())
}

// AddrPort is the responder's address.
func (h *QueryHit) AddrPort() netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4(h.IP), h.Port)
}

// URNs returns the URNs of all records, without duplicates.
func (h *QueryHit) URNs() []SHA1 {
	var out []SHA1
	for k := range h.Results {
	next:
		for _, u := range h.Results[k].URNs() {
			for _, o := range out {
				if o == u {
					continue next
				}
			}
			out = append(out, u)
		}
	}
	return out
}

// String summarises the hit: address, speed, trailer, servent ID, records.
func (h *QueryHit) String() string {
	var sb strings.Builder
	sb.WriteString("QueryHit ")
	sb.WriteString(h.AddrPort().String())
	sb.WriteString(" speed=")
	sb.WriteString(strconv.FormatUint(uint64(h.Speed), 10))
	if h.NoTrailer {
		sb.WriteString(" no-trailer")
	} else {
		sb.WriteString(" vendor=")
		sb.WriteString(h.Vendor.String())
		f, v := h.Flags()
		sb.WriteString(" flags=")
		sb.WriteString(hitFlagsString(f, v))
		if g := h.TrailerGGEP(); g != nil {
			sb.WriteString(" ")
			sb.WriteString(g.String())
		} else if len(h.Private) > 0 {
			sb.WriteString(" private=")
			sb.WriteString(strconv.Itoa(len(h.Private)))
			sb.WriteString("B")
		}
	}
	sb.WriteString(" servent=")
	sb.WriteString(h.ServentID.String())
	sb.WriteString(" results=")
	sb.WriteString(strconv.Itoa(len(h.Results)))
	for k := range h.Results {
		sb.WriteString(" [")
		sb.WriteString(h.Results[k].String())
		sb.WriteString("]")
	}
	return sb.String()
}

func hitFlagsString(f, v HitFlags) string {
	var parts []string
	add := func(name string, set, valid bool) {
		switch {
		case !valid:
		case set:
			parts = append(parts, name)
		default:
			parts = append(parts, "!"+name)
		}
	}
	add("push", f.Push, v.Push)
	add("busy", f.Busy, v.Busy)
	add("uploaded", f.Uploaded, v.Uploaded)
	add("measured", f.SpeedMeasured, v.SpeedMeasured)
	add("ggep", f.GGEP, v.GGEP)
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ",")
}
