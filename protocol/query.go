package protocol

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Query (0x80) payload, docs/protocol.md §1.8:
//
//	flags(2, big-endian) search-text NUL [extension area] [NUL]
//
// The decoder only frames the payload: zero flags, invalid UTF-8 or a too
// short search text decode fine and are left to the servent's policy (docs/protocol.md §3.8).

// QueryFlags is the 2-byte "min speed / flags" field, read big-endian so that
// the flag bits sit in the first byte on the wire (docs/protocol.md §1.1, §1.8).
type QueryFlags uint16

// The flag bits of QueryFlags. They mean flags only when QueryFlagMark is set;
// otherwise the field is a legacy minimum speed.
const (
	QueryFlagMark       QueryFlags = 0x8000 // the field holds flags; always set when originating
	QueryFlagFirewalled QueryFlags = 0x4000 // the requester is firewalled
	QueryFlagXML        QueryFlags = 0x2000 // the requester wants XML metadata
	QueryFlagLeafGuided QueryFlags = 0x1000 // leaf-guided dynamic query
	QueryFlagGGEPH      QueryFlags = 0x0800 // the requester understands GGEP "H" in hits
	QueryFlagOOB        QueryFlags = 0x0400 // hits may go by UDP to the address in the MUID
	QueryFlagFWTransfer QueryFlags = 0x0200 // the requester can do firewall-to-firewall transfers
	queryFlagsLowBits   QueryFlags = 0x01FF // max hits (and gtk's semi-reliable UDP bit 8)
)

const (
	minQueryPayload      = 3 // flags and the search text's NUL
	queryFlagsFieldBytes = 2
)

var queryFlagNames = [...]struct {
	f    QueryFlags
	name string
}{
	{QueryFlagMark, "mark"}, {QueryFlagFirewalled, "firewalled"}, {QueryFlagXML, "xml"},
	{QueryFlagLeafGuided, "leaf-guided"}, {QueryFlagGGEPH, "ggep-h"}, {QueryFlagOOB, "oob"},
	{QueryFlagFWTransfer, "fw-transfer"},
}

// Has reports whether every bit of f is set.
func (q QueryFlags) Has(f QueryFlags) bool { return q&f == f }

// String names the set bits joined by '|', with the low bits as "+0x..."; a
// field without QueryFlagMark prints as "speed=N".
func (q QueryFlags) String() string {
	if !q.Has(QueryFlagMark) {
		return "speed=" + strconv.Itoa(int(q))
	}
	var sb strings.Builder
	for _, n := range queryFlagNames {
		if q.Has(n.f) {
			if sb.Len() > 0 {
				sb.WriteByte('|')
			}
			sb.WriteString(n.name)
		}
	}
	if low := q & queryFlagsLowBits; low != 0 {
		sb.WriteString("+0x")
		sb.WriteString(strconv.FormatUint(uint64(low), 16))
	}
	return sb.String()
}

// Query is a decoded Query payload. A decoded Query aliases the input: Search
// and the text items of Extensions point into it.
type Query struct {
	Flags QueryFlags
	// Search is the search text as sent, without its NUL. It is not
	// validated and may be invalid UTF-8.
	Search []byte
	// Extensions is the extension area after the search text.
	Extensions ExtensionArea
	// FinalNUL records a 0x00 closing the extension area (LimeWire writes
	// one; gtk-gnutella does not).
	FinalNUL bool

	ext1 [1]ExtensionItem // backing store for the common one-item area
}

// DecodeQuery decodes a Query payload. It needs at least 3 bytes, and the
// search text ends at the first NUL. The result aliases b.
//
// All the deflated GGEP extensions of the extension area share one inflate
// budget of MaxInflatedPerMessage; a query that goes over it fails with
// ErrInflateBudget (docs/protocol.md §1.10).
func DecodeQuery(b []byte) (*Query, error) {
	if len(b) < minQueryPayload {
		return nil, errAt("query", len(b), ErrTruncated, "payload of %d bytes, need at least %d", len(b), minQueryPayload)
	}
	nul := bytes.IndexByte(b[queryFlagsFieldBytes:], 0)
	if nul < 0 {
		return nil, errAt("query", queryFlagsFieldBytes, ErrMalformed, "search text has no NUL terminator")
	}
	nul += queryFlagsFieldBytes
	q := &Query{
		Flags:  QueryFlags(uint16(b[0])<<8 | uint16(b[1])),
		Search: b[queryFlagsFieldBytes:nul:nul],
	}
	all, finalNUL, err := decodeExtArea(q.ext1[:0], b[nul+1:], true, newInflateBudget(MaxInflatedPerMessage))
	if err != nil {
		return nil, shiftOffset(asWhat(err, "query"), nul+1)
	}
	q.Extensions, q.FinalNUL = itemsFrom(all, 0), finalNUL
	return q, nil
}

// QueryHasGGEP reports whether the Query payload b carries a GGEP
// extension with the given ID in its extension area, reading only the
// framing: nothing is COBS-decoded or inflated. A router uses it to pick a
// handling (a random walker's "GNUT.RW") before paying for DecodeQuery.
// A payload that does not frame is reported as false.
func QueryHasGGEP(b []byte, id string) bool {
	if len(b) < minQueryPayload {
		return false
	}
	nul := bytes.IndexByte(b[queryFlagsFieldBytes:], 0)
	if nul < 0 {
		return false
	}
	return extAreaHasGGEP(b[queryFlagsFieldBytes+nul+1:], true, id)
}

// asWhat relabels an extension-area error as belonging to the unit that
// holds the area, keeping nested GGEP errors as they are.
func asWhat(err error, what string) error {
	if e, ok := err.(*Error); ok && e.What == "extension area" {
		c := *e
		c.What = what
		return &c
	}
	return err
}

// NewQuery builds a Query as gtk-gnutella writes one: QueryFlagMark is always
// set, and each URN goes into the extension area as a "urn:sha1:..." text
// item. A query by hash has an empty search text and at least one URN.
func NewQuery(search string, flags QueryFlags, urns ...SHA1) *Query {
	q := &Query{Flags: flags | QueryFlagMark, Search: []byte(search)}
	for _, h := range urns {
		q.Extensions = append(q.Extensions, TextItem(h.String()))
	}
	return q
}

// Type implements Payload.
func (q *Query) Type() Type { return TypeQuery }

// AppendTo implements Payload. A decoded Query encodes to exactly the bytes
// it was decoded from.
func (q *Query) AppendTo(b []byte) ([]byte, error) {
	if bytes.IndexByte(q.Search, 0) >= 0 {
		return b, errAt("query", -1, ErrMalformed, "search text holds a NUL")
	}
	start := len(b)
	b = append(b, byte(q.Flags>>8), byte(q.Flags))
	b = append(b, q.Search...)
	b = append(b, 0)
	b, err := q.Extensions.appendTo(b, true)
	if err != nil {
		return b[:start], err
	}
	if q.FinalNUL {
		b = append(b, 0)
	}
	return b, nil
}

// URNs returns the SHA-1 URNs of the extension area (text and GGEP H/u).
func (q *Query) URNs() []SHA1 { return q.Extensions.URNs() }

// SearchString returns the search text and whether it is valid UTF-8.
func (q *Query) SearchString() (string, bool) {
	return string(q.Search), utf8.Valid(q.Search)
}

// String summarises the query: flags, search text, extension area.
func (q *Query) String() string {
	var sb strings.Builder
	sb.WriteString("Query flags=")
	sb.WriteString(q.Flags.String())
	sb.WriteString(" search=")
	sb.WriteString(strconv.Quote(string(q.Search)))
	if len(q.Extensions) > 0 {
		sb.WriteString(" ext=")
		sb.WriteString(q.Extensions.String())
	}
	if q.FinalNUL {
		sb.WriteString(" +NUL")
	}
	return sb.String()
}
