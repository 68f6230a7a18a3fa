package transfer

import (
	"bufio"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"gnutella/protocol"
)

// parseStatusLine reads "HTTP/1.1 206 Partial Content", "HTTP/1.0 503" or the
// bare "HTTP 200 OK" of old 0.4 servents. minor is the HTTP minor version
// (1 for the bare form and anything above 1.1).
func parseStatusLine(line string) (minor int, code int, reason string, ok bool) {
	rest, found := strings.CutPrefix(line, "HTTP")
	if !found {
		return 0, 0, "", false
	}
	minor = 1
	if v, r, found := strings.Cut(rest, " "); found && strings.HasPrefix(v, "/") {
		switch v {
		case "/1.0":
			minor = 0
		case "/1.1":
		default:
			if !strings.HasPrefix(v, "/1.") {
				return 0, 0, "", false
			}
		}
		rest = r
	} else if !found || v != "" {
		return 0, 0, "", false
	} else {
		rest = r
	}
	rest = strings.TrimLeft(rest, " ")
	codeText, reason, _ := strings.Cut(rest, " ")
	if len(codeText) != 3 {
		return 0, 0, "", false
	}
	code, err := strconv.Atoi(codeText)
	if err != nil || code < 100 {
		return 0, 0, "", false
	}
	return minor, code, reason, true
}

// parseContentRange reads "bytes a-b/total" (total may be "*", returned as
// -1). It refuses b < a and b >= total.
func parseContentRange(v string) (start, end, total int64, ok bool) {
	v = strings.TrimSpace(v)
	unit, rest, found := strings.Cut(v, " ")
	if !found || !strings.EqualFold(unit, "bytes") {
		// some servents wrote "bytes=a-b/total"
		unit, rest, found = strings.Cut(v, "=")
		if !found || !strings.EqualFold(strings.TrimSpace(unit), "bytes") {
			return 0, 0, 0, false
		}
	}
	rng, tot, found := strings.Cut(strings.TrimSpace(rest), "/")
	if !found {
		return 0, 0, 0, false
	}
	a, b, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, 0, false
	}
	var err error
	if start, err = parseDigits(strings.TrimSpace(a)); err != nil {
		return 0, 0, 0, false
	}
	if end, err = parseDigits(strings.TrimSpace(b)); err != nil || end < start {
		return 0, 0, 0, false
	}
	tot = strings.TrimSpace(tot)
	if tot == "*" {
		return start, end, -1, true
	}
	if total, err = parseDigits(tot); err != nil || end >= total {
		return 0, 0, 0, false
	}
	return start, end, total, true
}

// parseDigits is strconv.ParseInt for unsigned decimal text only (no sign,
// no blanks), below 2^62 so that sums of two values never overflow.
func parseDigits(s string) (int64, error) {
	if s == "" || len(s) > 18 {
		return 0, strconv.ErrSyntax
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, strconv.ErrSyntax
		}
		n = n*10 + int64(c-'0')
	}
	return n, nil
}

// parseRetryAfter reads a Retry-After value: seconds, or an HTTP date.
// It returns ok=false when the header is absent or unreadable.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := parseDigits(v); err == nil {
		if n > int64(maxRetryAfter/time.Second) {
			n = int64(maxRetryAfter / time.Second)
		}
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, maxRetryAfter), true
		}
		return 0, true
	}
	return 0, false
}

// readResponseHead reads a status line and its headers with the handshake
// limits.
func readResponseHead(br *bufio.Reader) (code int, minor int, reason string, h protocol.Headers, err error) {
	line, err := protocol.ReadLine(br)
	if err != nil {
		return 0, 0, "", h, err
	}
	// Tolerate one stray empty line (a CRLF left over by a sloppy server).
	if line == "" {
		if line, err = protocol.ReadLine(br); err != nil {
			return 0, 0, "", h, err
		}
	}
	minor, code, reason, ok := parseStatusLine(line)
	if !ok {
		return 0, 0, "", h, &protoError{"bad HTTP status line " + strconv.Quote(truncate(line, 60))}
	}
	h, err = protocol.ReadHeaders(br, len(line)+2)
	return code, minor, reason, h, err
}

type protoError struct{ msg string }

func (e *protoError) Error() string { return e.msg }

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// SanitizeName turns a file name that came from the network into one that is
// safe to create inside the download folder: path separators become '_',
// control characters and invalid UTF-8 go, leading dots and blanks go (no
// hidden files, no "." or ".."), trailing dots and blanks go, and the result
// is at most 240 bytes (the extension is kept). An empty result becomes
// "download".
func SanitizeName(name string) string {
	name = strings.ToValidUTF8(name, "")
	var b strings.Builder
	for _, r := range name {
		switch {
		case r == '/' || r == '\\' || r == filepath.Separator:
			b.WriteByte('_')
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			// control characters, C0 and C1
		case r == utf8.RuneError:
		case unicode.Is(unicode.Cf, r) && r != 0x200d:
			// format characters such as RLO (U+202E) that disguise extensions
		default:
			b.WriteRune(r)
		}
	}
	s := strings.TrimLeft(b.String(), ". \t")
	s = strings.TrimRight(s, ". \t")
	const maxLen = 240
	if len(s) > maxLen {
		ext := filepath.Ext(s)
		if len(ext) > 16 || len(ext) >= maxLen {
			ext = ""
		}
		base := s[:len(s)-len(ext)]
		cut := maxLen - len(ext)
		for cut > 0 && !utf8.RuneStart(base[cut]) {
			cut--
		}
		s = strings.TrimRight(base[:cut], ". \t") + ext
	}
	if s == "" || s == "." || s == ".." {
		return "download"
	}
	return s
}

// addrPortOf returns the IP:port of a net.Addr, with IPv4-mapped addresses
// unmapped; zero when it is not an IP address.
func addrPortOf(a net.Addr) netip.AddrPort {
	switch ta := a.(type) {
	case *net.TCPAddr:
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	case nil:
		return netip.AddrPort{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
