package protocol

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/netip"
	"strings"
)

// Limits on a handshake block (docs/protocol.md §2.2, gtk-gnutella's MAX_LINE_SIZE and
// HEAD_MAX_LINES / HEAD_MAX_SIZE). They hold against a hostile peer: no
// function here reads more than a line's limit (plus what the bufio.Reader
// already holds) before refusing.
const (
	MaxHandshakeLine  = 1024     // bytes per line, excluding the line ending
	MaxHandshakeLines = 128      // header lines per block
	MaxHandshakeBytes = 16 << 10 // bytes per block
)

// hsMaxRawLine is the most a line may take on the wire: the text, a "\r"
// and the "\n".
const hsMaxRawLine = MaxHandshakeLine + 2

// hsField is one header field as received or added.
type hsField struct{ name, value string }

// Headers is an ordered list of handshake header fields with
// case-insensitive names. The zero value is an empty list ready to use; a
// nil *Headers reads as empty.
type Headers struct {
	fields []hsField
}

// Add appends a field, keeping any earlier fields of the same name.
func (h *Headers) Add(name, value string) {
	h.fields = append(h.fields, hsField{name, value})
}

// Set replaces every field called name by one field holding value. The new
// field takes the place of the first old one, or goes last if there was none.
func (h *Headers) Set(name, value string) {
	out := h.fields[:0]
	done := false
	for _, f := range h.fields {
		if !strings.EqualFold(f.name, name) {
			out = append(out, f)
			continue
		}
		if !done {
			out = append(out, hsField{name, value})
			done = true
		}
	}
	clear(h.fields[len(out):])
	h.fields = out
	if !done {
		h.fields = append(h.fields, hsField{name, value})
	}
}

// Get returns the value of the first field called name, or "" if absent.
func (h *Headers) Get(name string) string {
	if h == nil {
		return ""
	}
	for _, f := range h.fields {
		if strings.EqualFold(f.name, name) {
			return f.value
		}
	}
	return ""
}

// Values returns the values of every field called name, in order, or nil.
func (h *Headers) Values(name string) []string {
	if h == nil {
		return nil
	}
	var vs []string
	for _, f := range h.fields {
		if strings.EqualFold(f.name, name) {
			vs = append(vs, f.value)
		}
	}
	return vs
}

// Has reports whether a field called name is present.
func (h *Headers) Has(name string) bool {
	if h == nil {
		return false
	}
	for _, f := range h.fields {
		if strings.EqualFold(f.name, name) {
			return true
		}
	}
	return false
}

// Bool reads a truth value such as X-Ultrapeer: "True" or "False" in any
// case. A present field with other text gives (false, true).
func (h *Headers) Bool(name string) (value, present bool) {
	if !h.Has(name) {
		return false, false
	}
	return strings.EqualFold(h.Get(name), "true"), true
}

// HasFeature reports whether X-Features names feature, in any version:
// "X-Features: tls/1.0, browse/1.0, fwalt/0.1" has "tls", "browse" and
// "fwalt" (names compared without case).
func (h *Headers) HasFeature(feature string) bool {
	for _, v := range h.Values("X-Features") {
		for f := range strings.SplitSeq(v, ",") {
			name, _, _ := strings.Cut(strings.TrimSpace(f), "/")
			if strings.EqualFold(name, feature) {
				return true
			}
		}
	}
	return false
}

// Del removes every field called name.
func (h *Headers) Del(name string) {
	out := h.fields[:0]
	for _, f := range h.fields {
		if !strings.EqualFold(f.name, name) {
			out = append(out, f)
		}
	}
	clear(h.fields[len(out):])
	h.fields = out
}

// Len returns the number of fields.
func (h *Headers) Len() int {
	if h == nil {
		return 0
	}
	return len(h.fields)
}

// Each calls fn for every field in order, with the name as it was spelt.
func (h *Headers) Each(fn func(name, value string)) {
	if h == nil {
		return
	}
	for _, f := range h.fields {
		fn(f.name, f.value)
	}
}

// AppendTo appends "Name: value\r\n" for every field in order, without the
// empty line that ends a block. A value too long for one line
// (MaxHandshakeLine) is folded into continuation lines at single spaces, so
// that it reads back as the same value. A "\n" in a name or value (which
// ReadHeaders never produces) is written as a space, so one field can never
// turn into two lines.
func (h *Headers) AppendTo(b []byte) []byte {
	if h == nil {
		return b
	}
	for _, f := range h.fields {
		b = hsAppendSafe(b, f.name)
		b = append(b, ':')
		if f.value != "" {
			b = append(b, ' ')
			b = hsAppendFolded(b, f.value, MaxHandshakeLine-len(f.name)-2)
		}
		b = append(b, '\r', '\n')
	}
	return b
}

// hsAppendSafe appends s with every "\n" written as a space.
func hsAppendSafe(b []byte, s string) []byte {
	for {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			return append(b, s...)
		}
		b = append(b, s[:i]...)
		b = append(b, ' ')
		s = s[i+1:]
	}
}

// hsAppendFolded appends value, breaking it into "\r\n " continuation lines
// when it does not fit in room bytes. It breaks only at a space that has no
// space or tab on either side, because ReadHeaders joins continuation lines
// with exactly one space after trimming them.
func hsAppendFolded(b []byte, value string, room int) []byte {
	for len(value) > room {
		cut := -1
		for i := 1; i < len(value)-1; i++ {
			if value[i] != ' ' || hsIsBlank(value[i-1]) || hsIsBlank(value[i+1]) {
				continue
			}
			if cut < 0 || i <= room {
				cut = i // the last break that fits, else the first one
			}
			if i > room {
				break
			}
		}
		if cut < 0 {
			break // no place to fold: the line stays long
		}
		b = hsAppendSafe(b, value[:cut])
		b = append(b, "\r\n "...)
		value = value[cut+1:]
		room = MaxHandshakeLine - 1
	}
	return hsAppendSafe(b, value)
}

func hsIsBlank(c byte) bool { return c == ' ' || c == '\t' }

// hsTrim removes spaces and tabs at both ends of s.
func hsTrim(s string) string {
	i, j := 0, len(s)
	for i < j && hsIsBlank(s[i]) {
		i++
	}
	for j > i && hsIsBlank(s[j-1]) {
		j--
	}
	return s[i:j]
}

// ReadLine reads one line ending in "\n" (a preceding "\r" is dropped) of at
// most MaxHandshakeLine bytes, without reading past that limit: it consumes
// at most MaxHandshakeLine+2 bytes from r and asks the underlying reader for
// more only when r's buffer is empty. It returns io.EOF when the stream ends
// before the first byte, an *Error wrapping ErrTruncated when it ends inside
// the line, one wrapping ErrLineTooLong (offset MaxHandshakeLine) for a line
// over the limit, and any other read error unchanged. The line is used to
// demultiplex the first line of a connection.
func ReadLine(r *bufio.Reader) (string, error) {
	line, _, err := hsReadLine(r)
	return line, err
}

// hsReadLine is ReadLine that also returns how many bytes it consumed.
func hsReadLine(r *bufio.Reader) (line string, n int, err error) {
	var acc []byte // only used when a line spans more than one buffer fill
	for {
		if r.Buffered() == 0 {
			if _, err := r.Peek(1); err != nil {
				n := len(acc)
				if err == io.EOF {
					if n == 0 {
						return "", 0, io.EOF
					}
					return "", n, errAt("handshake", n, ErrTruncated, "stream ended inside a line")
				}
				return "", n, err
			}
		}
		avail, _ := r.Peek(r.Buffered())
		if room := hsMaxRawLine - len(acc); len(avail) > room {
			avail = avail[:room]
		}
		i := bytes.IndexByte(avail, '\n')
		if i < 0 {
			acc = append(acc, avail...)
			_, _ = r.Discard(len(avail))
			if len(acc) >= hsMaxRawLine {
				return "", len(acc), errAt("handshake", MaxHandshakeLine, ErrLineTooLong,
					"no line ending within %d bytes", MaxHandshakeLine)
			}
			continue
		}
		var text []byte
		if acc == nil {
			text = avail[:i]
		} else {
			acc = append(acc, avail[:i]...)
			text = acc
		}
		n = len(text) + 1
		if k := len(text); k > 0 && text[k-1] == '\r' {
			text = text[:k-1]
		}
		if len(text) > MaxHandshakeLine {
			_, _ = r.Discard(i + 1)
			return "", n, errAt("handshake", MaxHandshakeLine, ErrLineTooLong,
				"line of %d bytes", len(text))
		}
		line = string(text)
		_, _ = r.Discard(i + 1)
		return line, n, nil
	}
}

// ReadHeaders reads header lines up to and including the empty line that
// ends the block, enforcing MaxHandshakeLines (header lines, not counting
// the first line or the final empty one) and MaxHandshakeBytes (every byte
// of the block as received, line endings included). The byte budget
// includes the first line already read: pass its length as used. A line
// that starts with a space or tab continues the previous field: its trimmed
// text is added to the value after one space. Names lose trailing blanks and
// values leading and trailing blanks. Error offsets count from the start of
// the block, taking the first line as used bytes. The bytes after the empty
// line stay in r.
func ReadHeaders(r *bufio.Reader, used int) (Headers, error) {
	var h Headers
	pos, lines := used, 0
	for {
		line, n, err := hsReadLine(r)
		if err != nil {
			if err == io.EOF {
				return h, errAt("handshake", pos, ErrTruncated, "stream ended before the empty line")
			}
			return h, shiftOffset(err, pos)
		}
		if pos+n > MaxHandshakeBytes {
			return h, errAt("handshake", max(pos, MaxHandshakeBytes), ErrHeadersTooLarge,
				"block longer than %d bytes", MaxHandshakeBytes)
		}
		start := pos
		pos += n
		if line == "" {
			return h, nil
		}
		lines++
		if lines > MaxHandshakeLines {
			return h, errAt("handshake", start, ErrTooManyLines, "more than %d header lines", MaxHandshakeLines)
		}
		if hsIsBlank(line[0]) {
			if len(h.fields) == 0 {
				return h, errAt("handshake", start, ErrBadHandshake, "continuation line before any field")
			}
			more := hsTrim(line)
			if more == "" {
				continue
			}
			last := &h.fields[len(h.fields)-1]
			if last.value == "" {
				last.value = more
			} else {
				last.value += " " + more
			}
			continue
		}
		colon := strings.IndexByte(line, ':')
		if colon < 0 {
			return h, errAt("handshake", start, ErrBadHandshake, "header line without ':'")
		}
		name := strings.TrimRight(line[:colon], " \t")
		if name == "" {
			return h, errAt("handshake", start, ErrBadHandshake, "empty header name")
		}
		h.Add(name, hsTrim(line[colon+1:]))
	}
}

// HandshakeRequest is the first block of a Gnutella connection:
// "GNUTELLA CONNECT/<version>" and, from 0.6 on, headers.
type HandshakeRequest struct {
	Version string  // "0.6" (any higher version is kept as sent, e.g. "0.7"), or "0.4"
	Headers Headers // empty for 0.4
}

// HandshakeResponse is a status block: "GNUTELLA/<version> <code> <reason>"
// and headers, or the 0.4 "GNUTELLA OK".
type HandshakeResponse struct {
	Version string // as sent, e.g. "0.6"; "0.4" for the 0.4 "GNUTELLA OK"
	Code    int    // three digits
	Reason  string // any text, possibly empty
	Headers Headers
}

const (
	hsConnectPrefix = "GNUTELLA CONNECT/"
	hsStatusPrefix  = "GNUTELLA/"
	hsLegacyOK      = "GNUTELLA OK"
)

// hsParseVersionText checks "<digits>.<digits>" and returns both numbers.
// Each part has 1 to 9 digits so that it cannot overflow.
func hsParseVersionText(v string) (major, minor int, bad int) {
	dot := strings.IndexByte(v, '.')
	if dot < 0 {
		return 0, 0, hsFirstNonDigit(v, 0)
	}
	major, bad = hsDigits(v[:dot], 0)
	if bad >= 0 {
		return 0, 0, bad
	}
	minor, bad = hsDigits(v[dot+1:], dot+1)
	return major, minor, bad
}

// hsDigits parses 1 to 9 decimal digits; bad is the offset (plus base) of
// the first offending byte, or -1.
func hsDigits(s string, base int) (n, bad int) {
	if s == "" || len(s) > 9 {
		return 0, base + min(len(s), 9)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, base + i
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, -1
}

func hsFirstNonDigit(s string, base int) int {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return base + i
		}
	}
	return base + len(s)
}

// hsLegacy reports whether a version is below 0.6, i.e. uses the 0.4 form
// without headers. Unparsable versions are not legacy.
func hsLegacy(v string) bool {
	major, minor, bad := hsParseVersionText(v)
	return bad < 0 && major == 0 && minor < 6
}

// ParseRequestLine reads "GNUTELLA CONNECT/<version>" (trailing blanks
// allowed) and returns the version as sent, e.g. "0.6". The version must be
// "<digits>.<digits>"; any value is accepted, the caller decides what it
// supports.
func ParseRequestLine(line string) (version string, err error) {
	if !strings.HasPrefix(line, hsConnectPrefix) {
		return "", errAt("handshake", hsMismatch(line, hsConnectPrefix), ErrBadHandshake,
			"not a GNUTELLA CONNECT line: %q", truncate(line, 40))
	}
	v := strings.TrimRight(line[len(hsConnectPrefix):], " \t")
	if _, _, bad := hsParseVersionText(v); bad >= 0 {
		return "", errAt("handshake", len(hsConnectPrefix)+bad, ErrBadHandshake, "bad version %q", truncate(v, 20))
	}
	return v, nil
}

// hsMismatch returns the offset of the first byte of s that differs from
// prefix.
func hsMismatch(s, prefix string) int {
	i := 0
	for i < len(s) && i < len(prefix) && s[i] == prefix[i] {
		i++
	}
	return i
}

// hsParseStatusLine reads "GNUTELLA/<version> <code>[ <reason>]" or
// "GNUTELLA OK".
func hsParseStatusLine(line string) (version string, code int, reason string, err error) {
	if hsTrim(line) == hsLegacyOK && strings.HasPrefix(line, hsLegacyOK) {
		return "0.4", 200, "OK", nil
	}
	if !strings.HasPrefix(line, hsStatusPrefix) {
		return "", 0, "", errAt("handshake", hsMismatch(line, hsStatusPrefix), ErrBadHandshake,
			"not a GNUTELLA status line: %q", truncate(line, 40))
	}
	rest := line[len(hsStatusPrefix):]
	sp := strings.IndexByte(rest, ' ')
	if sp < 0 {
		return "", 0, "", errAt("handshake", len(line), ErrBadHandshake, "status line without a code")
	}
	version = rest[:sp]
	major, minor, bad := hsParseVersionText(version)
	if bad >= 0 {
		return "", 0, "", errAt("handshake", len(hsStatusPrefix)+bad, ErrBadHandshake, "bad version %q", truncate(version, 20))
	}
	if major == 0 && minor < 6 {
		return "", 0, "", errAt("handshake", len(hsStatusPrefix), ErrBadHandshake, "status line with version %s", version)
	}
	at := len(hsStatusPrefix) + sp + 1
	s := line[at:]
	for i := 0; i < 3; i++ {
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return "", 0, "", errAt("handshake", at+i, ErrBadHandshake, "status code is not three digits")
		}
		code = code*10 + int(s[i]-'0')
	}
	if len(s) > 3 && !hsIsBlank(s[3]) {
		return "", 0, "", errAt("handshake", at+3, ErrBadHandshake, "status code is not three digits")
	}
	return version, code, hsTrim(s[3:]), nil
}

// ReadHandshakeRequest reads a request block: the first line and, from 0.6
// on, the headers up to the empty line. It returns io.EOF if the stream ends
// before the first byte. The bytes after the block stay in r.
func ReadHandshakeRequest(r *bufio.Reader) (*HandshakeRequest, error) {
	first, n, err := hsReadLine(r)
	if err != nil {
		return nil, err
	}
	return hsReadRequestAfter(first, n, r)
}

// ReadHandshakeRequestAfter is ReadHandshakeRequest when the first line has
// already been read (with ReadLine, to demultiplex a listening socket).
func ReadHandshakeRequestAfter(first string, r *bufio.Reader) (*HandshakeRequest, error) {
	return hsReadRequestAfter(first, len(first), r)
}

func hsReadRequestAfter(first string, used int, r *bufio.Reader) (*HandshakeRequest, error) {
	v, err := ParseRequestLine(first)
	if err != nil {
		return nil, err
	}
	q := &HandshakeRequest{Version: v}
	if hsLegacy(v) {
		return q, hsReadLegacyEnd(r, used)
	}
	q.Headers, err = ReadHeaders(r, used)
	if err != nil {
		return nil, err
	}
	return q, nil
}

// hsReadLegacyEnd reads the empty line that ends a 0.4 block.
func hsReadLegacyEnd(r *bufio.Reader, used int) error {
	line, _, err := hsReadLine(r)
	switch {
	case err == io.EOF:
		return errAt("handshake", used, ErrTruncated, "stream ended before the empty line")
	case err != nil:
		return shiftOffset(err, used)
	case line != "":
		return errAt("handshake", used, ErrBadHandshake, "0.4 handshake line not followed by an empty line")
	}
	return nil
}

// ReadHandshakeResponse reads a status block: "GNUTELLA/<version> <code>
// <reason>" and headers up to the empty line, or the 0.4 "GNUTELLA OK" and
// its empty line. It returns io.EOF if the stream ends before the first
// byte. The bytes after the block stay in r.
func ReadHandshakeResponse(r *bufio.Reader) (*HandshakeResponse, error) {
	first, n, err := hsReadLine(r)
	if err != nil {
		return nil, err
	}
	v, code, reason, err := hsParseStatusLine(first)
	if err != nil {
		return nil, err
	}
	s := &HandshakeResponse{Version: v, Code: code, Reason: reason}
	if v == "0.4" {
		return s, hsReadLegacyEnd(r, n)
	}
	s.Headers, err = ReadHeaders(r, n)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// AppendTo appends the request block: for 0.6 and later
// "GNUTELLA CONNECT/0.6\r\n", the headers and "\r\n"; for versions below 0.6
// "GNUTELLA CONNECT/0.4\n\n" without headers. An empty Version means "0.6".
func (q *HandshakeRequest) AppendTo(b []byte) []byte {
	v := q.Version
	if v == "" {
		v = "0.6"
	}
	b = append(b, hsConnectPrefix...)
	b = hsAppendSafe(b, v)
	if hsLegacy(v) {
		return append(b, '\n', '\n')
	}
	b = append(b, '\r', '\n')
	b = q.Headers.AppendTo(b)
	return append(b, '\r', '\n')
}

// AppendTo appends the status block: "GNUTELLA/0.6 200 OK\r\n", the headers
// and "\r\n" (no reason gives "GNUTELLA/0.6 200\r\n"). Version "0.4" (or any
// version below 0.6) gives the 0.4 "GNUTELLA OK\n\n", whatever the code. An empty Version means
// "0.6". Code should be within 100..999.
func (s *HandshakeResponse) AppendTo(b []byte) []byte {
	v := s.Version
	if v == "" {
		v = "0.6"
	}
	if hsLegacy(v) {
		return append(b, hsLegacyOK+"\n\n"...)
	}
	b = append(b, hsStatusPrefix...)
	b = hsAppendSafe(b, v)
	b = append(b, ' ')
	code := s.Code
	if code < 0 || code > 999 {
		code = 500
	}
	b = append(b, byte('0'+code/100), byte('0'+code/10%10), byte('0'+code%10))
	if s.Reason != "" {
		b = append(b, ' ')
		b = hsAppendSafe(b, s.Reason)
	}
	b = append(b, '\r', '\n')
	b = s.Headers.AppendTo(b)
	return append(b, '\r', '\n')
}

// OK reports whether the code is 2xx, the only codes that let a handshake go
// on.
func (s *HandshakeResponse) OK() bool { return s.Code >= 200 && s.Code <= 299 }

// DefaultPort is the Gnutella port assumed when an address (an X-Try entry,
// a --peer) comes without one.
const DefaultPort = 6346

// ParseTryList reads an X-Try / X-Try-Ultrapeers value: entries separated by
// commas, each "host[:port][junk]" where host is an IPv4 address, a
// bracketed IPv6 address ("[2001:db8::1]:6346") or a bare IPv6 address
// (then without a port). The port defaults to 6346 and anything after it
// (such as a timestamp) is ignored. Entries that are not an IP address, with
// port 0, a port above 65535 or an unspecified address are skipped, so the
// result may be empty. IPv4-mapped IPv6 addresses come back as IPv4.
func ParseTryList(v string) []netip.AddrPort {
	var out []netip.AddrPort
	for entry := range strings.SplitSeq(v, ",") {
		if ap, ok := hsParseTryEntry(hsTrim(entry)); ok {
			out = append(out, ap)
		}
	}
	return out
}

// ParseTryEntry reads one entry of ParseTryList's grammar, blanks around it
// ignored. The items of the download mesh's X-Alt have the same form.
func ParseTryEntry(e string) (netip.AddrPort, bool) { return hsParseTryEntry(hsTrim(e)) }

func hsParseTryEntry(e string) (netip.AddrPort, bool) {
	var addr netip.Addr
	var rest string
	switch {
	case strings.HasPrefix(e, "["):
		end := strings.IndexByte(e, ']')
		if end < 0 {
			return netip.AddrPort{}, false
		}
		a, err := netip.ParseAddr(e[1:end])
		if err != nil || a.Zone() != "" {
			return netip.AddrPort{}, false
		}
		addr, rest = a, e[end+1:]
	default:
		i := 0
		for i < len(e) && (e[i] == '.' || (e[i] >= '0' && e[i] <= '9')) {
			i++
		}
		if a, err := netip.ParseAddr(e[:i]); err == nil && a.Is4() {
			addr, rest = a, e[i:]
			break
		}
		// A bare IPv6 address, up to the first blank.
		end := strings.IndexAny(e, " \t")
		if end < 0 {
			end = len(e)
		}
		a, err := netip.ParseAddr(e[:end])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return netip.AddrPort{}, false
		}
		addr, rest = a, ""
	}
	port := DefaultPort
	if strings.HasPrefix(rest, ":") {
		rest = rest[1:]
		n, i := 0, 0
		for i < len(rest) && i < 6 && rest[i] >= '0' && rest[i] <= '9' {
			n = n*10 + int(rest[i]-'0')
			i++
		}
		if i == 0 {
			return netip.AddrPort{}, false
		}
		port = n
	}
	addr = addr.Unmap()
	if port == 0 || port > 65535 || addr.IsUnspecified() {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(addr, uint16(port)), true
}

// FormatTryList writes addresses as an X-Try-Ultrapeers value:
// "a.b.c.d:port,[v6]:port,...".
func FormatTryList(addrs []netip.AddrPort) string {
	var b []byte
	for i, a := range addrs {
		if i > 0 {
			b = append(b, ',')
		}
		b = a.AppendTo(b)
	}
	return string(b)
}

// ParseListenAddr reads the sender's own listening address from Listen-IP,
// X-My-Address, Node or X-Node: "a.b.c.d:port" or "[v6]:port", blanks
// around it allowed. The port is required and must not be 0. IPv4-mapped
// IPv6 addresses come back as IPv4.
func ParseListenAddr(v string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(hsTrim(v))
	if err != nil {
		return netip.AddrPort{}, errAt("listen address", -1, ErrBadHandshake, "%q: want ip:port", truncate(v, 60))
	}
	if ap.Port() == 0 || ap.Addr().Zone() != "" {
		return netip.AddrPort{}, errAt("listen address", -1, ErrBadHandshake, "%q: want ip:port", truncate(v, 60))
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// ParseVersion reads a header version such as "0.1" or "0.2" (X-Query-Routing,
// X-Dynamic-Querying, ...): two decimal numbers separated by a dot, blanks
// around it allowed.
func ParseVersion(v string) (major, minor int, err error) {
	t := hsTrim(v)
	major, minor, bad := hsParseVersionText(t)
	if bad >= 0 {
		return 0, 0, errAt("version", -1, ErrBadHandshake, "%q: want <major>.<minor>", truncate(v, 20))
	}
	return major, minor, nil
}

// IsHandshakeLimit reports whether err is one of the handshake size limits
// (ErrLineTooLong, ErrTooManyLines, ErrHeadersTooLarge), which gtk-gnutella
// answers with a 413 before closing.
func IsHandshakeLimit(err error) bool {
	return errors.Is(err, ErrLineTooLong) || errors.Is(err, ErrTooManyLines) || errors.Is(err, ErrHeadersTooLarge)
}
