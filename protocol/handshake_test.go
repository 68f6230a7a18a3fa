package protocol

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
)

// hsCountingReader serves size bytes of fill (then src, if any) at most
// chunk bytes per Read, as a socket would, and counts what was read.
type hsCountingReader struct {
	src   io.Reader
	chunk int
	n     int
}

func (c *hsCountingReader) Read(p []byte) (int, error) {
	if c.chunk > 0 && len(p) > c.chunk {
		p = p[:c.chunk]
	}
	n, err := c.src.Read(p)
	c.n += n
	return n, err
}

// hsRepeat is an endless reader of one byte pattern.
type hsRepeat struct {
	pat []byte
	off int
}

func (r *hsRepeat) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.pat[r.off]
		r.off = (r.off + 1) % len(r.pat)
	}
	return len(p), nil
}

func hsReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }

func hsFields(h *Headers) [][2]string {
	var out [][2]string
	h.Each(func(n, v string) { out = append(out, [2]string{n, v}) })
	return out
}

func hsWantKind(t *testing.T, err, kind error) {
	t.Helper()
	if kind == nil {
		if err != nil {
			t.Fatalf("unexpected error %v", err)
		}
		return
	}
	if !errors.Is(err, kind) {
		t.Fatalf("error = %v, want %v", err, kind)
	}
	if kind != io.EOF {
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("error %v (%T) is not an *Error", err, err)
		}
	}
}

func hsReadFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/gtk-gnutella/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// hsCheckDescriptorNext checks that the next 23 bytes of r are a
// descriptor header of a type gtk-gnutella sends.
func hsCheckDescriptorNext(t *testing.T, r *bufio.Reader) {
	t.Helper()
	b, err := r.Peek(HeaderLen)
	if err != nil {
		t.Fatalf("peek descriptor header: %v", err)
	}
	h, err := ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	if !h.Type.Known() && h.Type != TypeHSEP {
		t.Fatalf("bytes after the handshake are not a descriptor header: type %v", h.Type)
	}
	if h.Length > MaxPayloadLength {
		t.Fatalf("descriptor header after the handshake has length %d", h.Length)
	}
}

func TestHandshakeRecordingLeafRequestAndFinal200(t *testing.T) {
	r := bufio.NewReader(bytes.NewReader(hsReadFile(t, "leaf-to-ultrapeer.bin")))
	q, err := ReadHandshakeRequest(r)
	if err != nil {
		t.Fatal(err)
	}
	if q.Version != "0.6" {
		t.Errorf("version %q", q.Version)
	}
	if q.Headers.Len() != 18 {
		t.Errorf("%d headers, want 18: %v", q.Headers.Len(), hsFields(&q.Headers))
	}
	for name, want := range map[string]string{
		"User-Agent":                "gtk-gnutella/1.2.3 (2024-03-03; Topless; Linux x86_64)",
		"Pong-Caching":              "0.1",
		"Bye-Packet":                "0.1",
		"GGEP":                      "0.5",
		"Vendor-Message":            "0.2",
		"X-Requeries":               "False",
		"X-Degree":                  "32",
		"X-Max-TTL":                 "4",
		"X-Features":                "browse/1.0, sflag/0.1, HSEP/0.2",
		"x-dynamic-querying":        "0.1",
		"X-ULTRAPEER-QUERY-ROUTING": "0.1",
		"Remote-IP":                 "127.0.0.1",
		"X-Token":                   "awHKHca4ieZS+N7oA3uE4e5Q4D68xSCcg0mu; wDBfhqCs",
		"X-Live-Since":              "Sat, 21 Nov 2026 16:43:06 +0000",
	} {
		if got := q.Headers.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if up, ok := q.Headers.Bool("X-Ultrapeer"); !ok || up {
		t.Errorf("X-Ultrapeer = %v, %v; want False", up, ok)
	}
	// The recordings were made with stream compression off.
	if q.Headers.Has("Accept-Encoding") || q.Headers.Has("Content-Encoding") {
		t.Errorf("unexpected encoding headers")
	}
	if g, err := ParseGUID(q.Headers.Get("GUID")); err != nil || g.String() != "c940310227d6b24c42a0ce563c942dcd" {
		t.Errorf("GUID %v, %v", g, err)
	}
	if ap, err := ParseListenAddr(q.Headers.Get("Node")); err != nil || ap != netip.MustParseAddrPort("127.0.0.1:16357") {
		t.Errorf("Node %v, %v", ap, err)
	}
	if maj, minor, err := ParseVersion(q.Headers.Get("X-Query-Routing")); err != nil || maj != 0 || minor != 2 {
		t.Errorf("X-Query-Routing %d.%d, %v", maj, minor, err)
	}

	s, err := ReadHandshakeResponse(r)
	if err != nil {
		t.Fatal(err)
	}
	if s.Version != "0.6" || s.Code != 200 || s.Reason != "OK" || s.Headers.Len() != 0 || !s.OK() {
		t.Errorf("final response %+v", s)
	}
	hsCheckDescriptorNext(t, r)
	if h, _ := r.Peek(HeaderLen); Type(h[16]) != TypeRouteTable {
		t.Errorf("first descriptor of the leaf is %v, want its QRP RESET", Type(h[16]))
	}
}

func TestHandshakeRecordingUltrapeer200(t *testing.T) {
	for _, tc := range []struct {
		file  string
		qrp   string
		token bool
	}{
		{"ultrapeer-to-leaf.bin", "0.2", true},
		{"ultrapeer-to-other-leaf-1.bin", "0.1", false},
		{"ultrapeer-to-other-leaf-2.bin", "0.1", false},
	} {
		t.Run(tc.file, func(t *testing.T) {
			r := bufio.NewReader(bytes.NewReader(hsReadFile(t, tc.file)))
			s, err := ReadHandshakeResponse(r)
			if err != nil {
				t.Fatal(err)
			}
			if s.Version != "0.6" || s.Code != 200 || s.Reason != "OK" || !s.OK() {
				t.Errorf("status %q %d %q", s.Version, s.Code, s.Reason)
			}
			for name, want := range map[string]string{
				"X-Degree":                  "25",
				"X-Max-TTL":                 "4",
				"X-Ext-Probes":              "0.1",
				"X-Dynamic-Querying":        "0.1",
				"X-Ultrapeer-Query-Routing": "0.1",
				"X-Query-Routing":           tc.qrp,
				"Remote-IP":                 "127.0.0.1",
				"GGEP":                      "0.5",
			} {
				if got := s.Headers.Get(name); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
			for _, name := range []string{"X-Ultrapeer", "X-Ultrapeer-Needed"} {
				if v, ok := s.Headers.Bool(name); !v || !ok {
					t.Errorf("%s = %v, %v; want True", name, v, ok)
				}
			}
			if got := s.Headers.Has("X-Token"); got != tc.token {
				t.Errorf("X-Token present = %v", got)
			}
			if s.Headers.Has("Content-Encoding") {
				t.Errorf("Content-Encoding present in an uncompressed recording")
			}
			if g, err := ParseGUID(s.Headers.Get("guid")); err != nil || g.String() != "0efd31026d8def9548ee17f219e07503" {
				t.Errorf("GUID %v, %v", g, err)
			}
			hsCheckDescriptorNext(t, r)
		})
	}
}

func TestReadHandshakeRequestForms(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		version string
		fields  [][2]string
		rest    string
		err     error
	}{
		{name: "0.6 CRLF", in: "GNUTELLA CONNECT/0.6\r\nUser-Agent: x\r\n\r\nBIN",
			version: "0.6", fields: [][2]string{{"User-Agent", "x"}}, rest: "BIN"},
		{name: "0.6 bare LF", in: "GNUTELLA CONNECT/0.6\nA: 1\nB:2\n\nBIN",
			version: "0.6", fields: [][2]string{{"A", "1"}, {"B", "2"}}, rest: "BIN"},
		{name: "0.6 no headers", in: "GNUTELLA CONNECT/0.6\r\n\r\n", version: "0.6"},
		{name: "0.4", in: "GNUTELLA CONNECT/0.4\n\nBIN", version: "0.4", rest: "BIN"},
		{name: "0.4 CRLF", in: "GNUTELLA CONNECT/0.4\r\n\r\n", version: "0.4"},
		{name: "0.4 followed by headers", in: "GNUTELLA CONNECT/0.4\nA: b\n\n", err: ErrBadHandshake},
		{name: "higher minor version", in: "GNUTELLA CONNECT/0.7\r\nX-Ultrapeer: True\r\n\r\n",
			version: "0.7", fields: [][2]string{{"X-Ultrapeer", "True"}}},
		{name: "higher major version", in: "GNUTELLA CONNECT/1.0\r\n\r\n", version: "1.0"},
		{name: "trailing blanks after version", in: "GNUTELLA CONNECT/0.6 \t\r\n\r\n", version: "0.6"},
		{name: "repeated and continued fields",
			in:      "GNUTELLA CONNECT/0.6\r\nX-Try: 1.2.3.4:1\r\nX-Try: 5.6.7.8:2,\r\n  9.9.9.9:3\r\n\tand more \r\nEmpty:\r\n  filled\r\nSp:   \t v  \r\n\r\n",
			version: "0.6", fields: [][2]string{{"X-Try", "1.2.3.4:1"}, {"X-Try", "5.6.7.8:2, 9.9.9.9:3 and more"},
				{"Empty", "filled"}, {"Sp", "v"}}},
		{name: "blank continuation is ignored", in: "GNUTELLA CONNECT/0.6\r\nA: b\r\n \t \r\n\r\n",
			version: "0.6", fields: [][2]string{{"A", "b"}}},
		{name: "name with trailing blanks", in: "GNUTELLA CONNECT/0.6\r\nA \t: b:c\r\n\r\n",
			version: "0.6", fields: [][2]string{{"A", "b:c"}}},
		{name: "empty value", in: "GNUTELLA CONNECT/0.6\r\nA:\r\n\r\n", version: "0.6", fields: [][2]string{{"A", ""}}},
		{name: "line without colon", in: "GNUTELLA CONNECT/0.6\r\nNoColon\r\n\r\n", err: ErrBadHandshake},
		{name: "empty name", in: "GNUTELLA CONNECT/0.6\r\n: v\r\n\r\n", err: ErrBadHandshake},
		{name: "continuation first", in: "GNUTELLA CONNECT/0.6\r\n cont\r\n\r\n", err: ErrBadHandshake},
		{name: "not gnutella", in: "GET / HTTP/1.1\r\n\r\n", err: ErrBadHandshake},
		{name: "lower case", in: "gnutella connect/0.6\r\n\r\n", err: ErrBadHandshake},
		{name: "no version", in: "GNUTELLA CONNECT/\r\n\r\n", err: ErrBadHandshake},
		{name: "bad version", in: "GNUTELLA CONNECT/0.6a\r\n\r\n", err: ErrBadHandshake},
		{name: "three-part version", in: "GNUTELLA CONNECT/0.6.1\r\n\r\n", err: ErrBadHandshake},
		{name: "huge version number", in: "GNUTELLA CONNECT/0.12345678901\r\n\r\n", err: ErrBadHandshake},
		{name: "empty stream", in: "", err: io.EOF},
		{name: "ends in first line", in: "GNUTELLA CONN", err: ErrTruncated},
		{name: "ends in headers", in: "GNUTELLA CONNECT/0.6\r\nA: b\r\n", err: ErrTruncated},
		{name: "ends inside header line", in: "GNUTELLA CONNECT/0.6\r\nA: b", err: ErrTruncated},
		{name: "0.4 ends before empty line", in: "GNUTELLA CONNECT/0.4\n", err: ErrTruncated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := hsReader(tc.in)
			q, err := ReadHandshakeRequest(r)
			hsWantKind(t, err, tc.err)
			if tc.err != nil {
				return
			}
			if q.Version != tc.version {
				t.Errorf("version %q, want %q", q.Version, tc.version)
			}
			if got := hsFields(&q.Headers); !slices.Equal(got, tc.fields) {
				t.Errorf("fields %q, want %q", got, tc.fields)
			}
			rest, _ := io.ReadAll(r)
			if string(rest) != tc.rest {
				t.Errorf("left %q, want %q", rest, tc.rest)
			}
		})
	}
}

func TestReadHandshakeResponseForms(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		version string
		code    int
		reason  string
		ok      bool
		fields  [][2]string
		err     error
	}{
		{name: "200 OK", in: "GNUTELLA/0.6 200 OK\r\nA: b\r\n\r\n", version: "0.6", code: 200, reason: "OK", ok: true,
			fields: [][2]string{{"A", "b"}}},
		{name: "0.4 GNUTELLA OK", in: "GNUTELLA OK\n\n", version: "0.4", code: 200, reason: "OK", ok: true},
		{name: "0.4 GNUTELLA OK CRLF", in: "GNUTELLA OK\r\n\r\n", version: "0.4", code: 200, reason: "OK", ok: true},
		{name: "0.4 followed by a header", in: "GNUTELLA OK\nA: b\n\n", err: ErrBadHandshake},
		{name: "no reason", in: "GNUTELLA/0.6 200\r\n\r\n", version: "0.6", code: 200, ok: true},
		{name: "no reason trailing space", in: "GNUTELLA/0.6 200 \r\n\r\n", version: "0.6", code: 200, ok: true},
		{name: "odd reason", in: "GNUTELLA/0.6 200 Ça va: très bien / 100%\r\n\r\n", version: "0.6", code: 200,
			reason: "Ça va: très bien / 100%", ok: true},
		{name: "shielded leaf 204", in: "GNUTELLA/0.6 204 Shielded leaf node\r\n\r\n", version: "0.6", code: 204,
			reason: "Shielded leaf node", ok: true},
		{name: "503 with try list", in: "GNUTELLA/0.6 503 Too many leaf connections\r\nX-Try-Ultrapeers: 1.2.3.4:6346\r\n\r\n",
			version: "0.6", code: 503, reason: "Too many leaf connections",
			fields: [][2]string{{"X-Try-Ultrapeers", "1.2.3.4:6346"}}},
		{name: "lowercase reason", in: "GNUTELLA/0.6 403 gnet connection not compressed\r\n\r\n", version: "0.6",
			code: 403, reason: "gnet connection not compressed"},
		{name: "tab before reason", in: "GNUTELLA/0.6 200\tfine\r\n\r\n", version: "0.6", code: 200, reason: "fine", ok: true},
		{name: "higher version", in: "GNUTELLA/0.7 200 OK\r\n\r\n", version: "0.7", code: 200, reason: "OK", ok: true},
		{name: "code 299 is ok", in: "GNUTELLA/0.6 299 x\r\n\r\n", version: "0.6", code: 299, reason: "x", ok: true},
		{name: "code 300 is not", in: "GNUTELLA/0.6 300 x\r\n\r\n", version: "0.6", code: 300, reason: "x"},
		{name: "two-digit code", in: "GNUTELLA/0.6 20 OK\r\n\r\n", err: ErrBadHandshake},
		{name: "four-digit code", in: "GNUTELLA/0.6 2000 OK\r\n\r\n", err: ErrBadHandshake},
		{name: "code glued to reason", in: "GNUTELLA/0.6 200OK\r\n\r\n", err: ErrBadHandshake},
		{name: "no code", in: "GNUTELLA/0.6\r\n\r\n", err: ErrBadHandshake},
		{name: "status line with legacy version", in: "GNUTELLA/0.4 200 OK\r\n\r\n", err: ErrBadHandshake},
		{name: "http", in: "HTTP/1.1 200 OK\r\n\r\n", err: ErrBadHandshake},
		{name: "empty stream", in: "", err: io.EOF},
		{name: "truncated", in: "GNUTELLA/0.6 200 OK\r\nA: b\r\n", err: ErrTruncated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ReadHandshakeResponse(hsReader(tc.in))
			hsWantKind(t, err, tc.err)
			if tc.err != nil {
				return
			}
			if s.Version != tc.version || s.Code != tc.code || s.Reason != tc.reason || s.OK() != tc.ok {
				t.Errorf("got %q %d %q ok=%v", s.Version, s.Code, s.Reason, s.OK())
			}
			if got := hsFields(&s.Headers); !slices.Equal(got, tc.fields) {
				t.Errorf("fields %q, want %q", got, tc.fields)
			}
		})
	}
}

func TestHandshakeErrorOffsets(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		resp bool
		off  int
	}{
		{"bad prefix", "GNUTELLA CONNEXT/0.6\r\n\r\n", false, 14},
		{"bad version digit", "GNUTELLA CONNECT/0.x\r\n\r\n", false, 19},
		{"header without colon", "GNUTELLA CONNECT/0.6\r\nA: b\r\nBad\r\n\r\n", false, 22 + 6},
		{"truncated block", "GNUTELLA CONNECT/0.6\r\nA: b\r\n", false, 22 + 6},
		{"bad code digit", "GNUTELLA/0.6 2x0 OK\r\n\r\n", true, 14},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.resp {
				_, err = ReadHandshakeResponse(hsReader(tc.in))
			} else {
				_, err = ReadHandshakeRequest(hsReader(tc.in))
			}
			if got := ErrorOffset(err); got != tc.off {
				t.Errorf("offset %d, want %d (%v)", got, tc.off, err)
			}
		})
	}
}

func TestReadLineLimitAndEndings(t *testing.T) {
	long := strings.Repeat("a", MaxHandshakeLine)
	for _, tc := range []struct {
		name string
		in   string
		want string
		err  error
	}{
		{"crlf", "abc\r\nrest", "abc", nil},
		{"lf", "abc\nrest", "abc", nil},
		{"only one cr dropped", "abc\r\r\n", "abc\r", nil},
		{"inner cr kept", "a\rb\n", "a\rb", nil},
		{"empty crlf", "\r\n", "", nil},
		{"exactly the limit crlf", long + "\r\n", long, nil},
		{"exactly the limit lf", long + "\n", long, nil},
		{"one over the limit", long + "a\n", "", ErrLineTooLong},
		{"one over the limit crlf", long + "a\r\n", "", ErrLineTooLong},
		{"no ending within limit", long + "aaaaaaaa", "", ErrLineTooLong},
		{"eof", "", "", io.EOF},
		{"eof inside", "abc", "", ErrTruncated},
		{"eof after cr", "abc\r", "", ErrTruncated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A tiny buffer makes long lines span several fills.
			r := bufio.NewReaderSize(strings.NewReader(tc.in), 16)
			got, err := ReadLine(r)
			hsWantKind(t, err, tc.err)
			if got != tc.want {
				t.Errorf("line %q, want %q", truncate(got, 20), truncate(tc.want, 20))
			}
			if errors.Is(err, ErrLineTooLong) && ErrorOffset(err) != MaxHandshakeLine {
				t.Errorf("offset %d", ErrorOffset(err))
			}
		})
	}
}

func TestReadLineLeavesTheRestBuffered(t *testing.T) {
	r := hsReader("first\r\nsecond\nthird")
	for _, want := range []string{"first", "second"} {
		if got, err := ReadLine(r); err != nil || got != want {
			t.Fatalf("ReadLine = %q, %v; want %q", got, err, want)
		}
	}
	rest, _ := io.ReadAll(r)
	if string(rest) != "third" {
		t.Fatalf("rest %q", rest)
	}
}

func TestReadLineStopsEarlyOnHostileLine(t *testing.T) {
	for _, tc := range []struct {
		name  string
		chunk int // bytes per Read of the "socket"; 0 = as much as asked
		size  int // bufio buffer size
		max   int
	}{
		{"socket chunks of 64", 64, 4096, MaxHandshakeLine + 2 + 64},
		{"socket chunks of 1", 1, 4096, MaxHandshakeLine + 2},
		{"full buffer reads", 0, 4096, 4096},
		{"small buffer", 0, 16, MaxHandshakeLine + 2 + 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &hsCountingReader{src: io.LimitReader(&hsRepeat{pat: []byte("x")}, 1<<20), chunk: tc.chunk}
			_, err := ReadLine(bufio.NewReaderSize(src, tc.size))
			hsWantKind(t, err, ErrLineTooLong)
			if src.n > tc.max {
				t.Errorf("read %d bytes of a 1 MB line, want at most %d", src.n, tc.max)
			}
		})
	}
}

func TestReadHeadersStopsEarlyOnEndlessHeaders(t *testing.T) {
	for _, tc := range []struct {
		name string
		line string
		kind error
	}{
		{"many short lines", "A: b\r\n", ErrTooManyLines},
		{"many long lines", "A: " + strings.Repeat("b", 1000) + "\r\n", ErrHeadersTooLarge},
		{"many continuations", " more\r\n", ErrTooManyLines},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &hsCountingReader{
				src:   io.MultiReader(strings.NewReader("GNUTELLA CONNECT/0.6\r\nA: b\r\n"), &hsRepeat{pat: []byte(tc.line)}),
				chunk: 256,
			}
			_, err := ReadHandshakeRequest(bufio.NewReader(src))
			hsWantKind(t, err, tc.kind)
			if src.n > MaxHandshakeBytes+MaxHandshakeLine+256 {
				t.Errorf("read %d bytes before refusing", src.n)
			}
		})
	}
}

// hsBlock builds a request with the given header lines.
func hsBlock(lines []string) string {
	return "GNUTELLA CONNECT/0.6\r\n" + strings.Join(lines, "") + "\r\n"
}

func TestHandshakeLineCountLimit(t *testing.T) {
	mk := func(n int) []string {
		var ls []string
		for range n {
			ls = append(ls, "X: y\r\n")
		}
		return ls
	}
	q, err := ReadHandshakeRequest(hsReader(hsBlock(mk(MaxHandshakeLines))))
	if err != nil || q.Headers.Len() != MaxHandshakeLines {
		t.Fatalf("%d lines refused: %v", MaxHandshakeLines, err)
	}
	_, err = ReadHandshakeRequest(hsReader(hsBlock(mk(MaxHandshakeLines + 1))))
	hsWantKind(t, err, ErrTooManyLines)
	if off := ErrorOffset(err); off != 22+MaxHandshakeLines*6 {
		t.Errorf("offset %d, want the start of line %d", off, MaxHandshakeLines+1)
	}
	// Continuation lines count as lines.
	ls := append([]string{"X: y\r\n"}, mk(MaxHandshakeLines)...)
	for i := 1; i < len(ls); i++ {
		ls[i] = " z\r\n"
	}
	_, err = ReadHandshakeRequest(hsReader(hsBlock(ls)))
	hsWantKind(t, err, ErrTooManyLines)
}

func TestHandshakeByteLimit(t *testing.T) {
	// A block of exactly total bytes: the first line, 16 full lines and one
	// filler line, and the final empty line.
	mk := func(total int) string {
		first := "GNUTELLA CONNECT/0.6\r\n"
		n := total - len(first) - 2
		var ls []string
		for n > 0 {
			k := min(n, MaxHandshakeLine+2)
			if n-k > 0 && n-k < 5 {
				k -= 5 // keep the last line long enough for "X: \r\n"
			}
			ls = append(ls, "X: "+strings.Repeat("v", k-5)+"\r\n")
			n -= k
		}
		s := hsBlock(ls)
		if len(s) != total {
			t.Fatalf("built %d bytes, want %d", len(s), total)
		}
		return s
	}
	if _, err := ReadHandshakeRequest(hsReader(mk(MaxHandshakeBytes))); err != nil {
		t.Fatalf("block of exactly %d bytes refused: %v", MaxHandshakeBytes, err)
	}
	_, err := ReadHandshakeRequest(hsReader(mk(MaxHandshakeBytes + 1)))
	hsWantKind(t, err, ErrHeadersTooLarge)
	if ErrorOffset(err) != MaxHandshakeBytes {
		t.Errorf("offset %d", ErrorOffset(err))
	}
	// The byte budget counts what the caller says it used for the first line.
	_, err = ReadHeaders(hsReader("A: b\r\n\r\n"), MaxHandshakeBytes-7)
	hsWantKind(t, err, ErrHeadersTooLarge)
	if _, err := ReadHeaders(hsReader("A: b\r\n\r\n"), MaxHandshakeBytes-8); err != nil {
		t.Errorf("block at the limit refused: %v", err)
	}
}

func TestHandshakeLongLineInBlock(t *testing.T) {
	_, err := ReadHandshakeRequest(hsReader(hsBlock([]string{"A: " + strings.Repeat("v", MaxHandshakeLine) + "\r\n"})))
	hsWantKind(t, err, ErrLineTooLong)
	if off := ErrorOffset(err); off != 22+MaxHandshakeLine {
		t.Errorf("offset %d", off)
	}
	_, err = ReadHandshakeResponse(hsReader("GNUTELLA/0.6 200 " + strings.Repeat("v", MaxHandshakeLine) + "\r\n\r\n"))
	hsWantKind(t, err, ErrLineTooLong)
	if !IsHandshakeLimit(err) || IsHandshakeLimit(io.EOF) {
		t.Errorf("IsHandshakeLimit wrong")
	}
}

func TestReadHandshakeRequestAfterListenerDemux(t *testing.T) {
	in := "GNUTELLA CONNECT/0.6\r\nUser-Agent: u\r\nX-Ultrapeer: true\r\n\r\n\x00\x01"
	r := hsReader(in)
	first, err := ReadLine(r)
	if err != nil || !strings.HasPrefix(first, "GNUTELLA CONNECT/") {
		t.Fatalf("first line %q, %v", first, err)
	}
	q, err := ReadHandshakeRequestAfter(first, r)
	if err != nil {
		t.Fatal(err)
	}
	if up, ok := q.Headers.Bool("x-ultrapeer"); !up || !ok || q.Version != "0.6" || q.Headers.Get("user-agent") != "u" {
		t.Errorf("got %+v", q)
	}
	rest, _ := io.ReadAll(r)
	if string(rest) != "\x00\x01" {
		t.Errorf("rest %q", rest)
	}
	r = hsReader("GNUTELLA CONNECT/0.4\n\n")
	first, _ = ReadLine(r)
	if q, err := ReadHandshakeRequestAfter(first, r); err != nil || q.Version != "0.4" || q.Headers.Len() != 0 {
		t.Errorf("0.4: %+v, %v", q, err)
	}
	if _, err := ReadHandshakeRequestAfter("GET / HTTP/1.1", hsReader("")); !errors.Is(err, ErrBadHandshake) {
		t.Errorf("GET accepted: %v", err)
	}
}

func TestParseRequestLine(t *testing.T) {
	for in, want := range map[string]string{
		"GNUTELLA CONNECT/0.6": "0.6", "GNUTELLA CONNECT/0.7": "0.7", "GNUTELLA CONNECT/0.4": "0.4",
		"GNUTELLA CONNECT/12.34 ": "12.34",
	} {
		if got, err := ParseRequestLine(in); err != nil || got != want {
			t.Errorf("%q: %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "GNUTELLA CONNECT", "GNUTELLA CONNECT/", "GNUTELLA CONNECT/.6", "GNUTELLA CONNECT/0.",
		"GNUTELLA CONNECT/0.6 x", "GNUTELLA  CONNECT/0.6", "GNUTELLA/0.6 200 OK"} {
		if _, err := ParseRequestLine(in); !errors.Is(err, ErrBadHandshake) {
			t.Errorf("%q accepted (%v)", in, err)
		}
	}
}

func TestHeadersAccessors(t *testing.T) {
	var h Headers
	h.Add("X-Try", "a")
	h.Add("User-Agent", "u")
	h.Add("x-try", "b")
	h.Add("X-Ultrapeer", "TRUE")
	h.Add("X-Ultrapeer-Needed", "maybe")
	if h.Get("X-TRY") != "a" || !slices.Equal(h.Values("X-Try"), []string{"a", "b"}) || h.Len() != 5 {
		t.Fatalf("Get/Values: %q %q", h.Get("X-TRY"), h.Values("X-Try"))
	}
	if h.Get("missing") != "" || h.Values("missing") != nil || h.Has("missing") {
		t.Errorf("missing field found")
	}
	for _, tc := range []struct {
		name           string
		value, present bool
	}{{"X-Ultrapeer", true, true}, {"X-Ultrapeer-Needed", false, true}, {"Nope", false, false}} {
		if v, p := h.Bool(tc.name); v != tc.value || p != tc.present {
			t.Errorf("Bool(%s) = %v, %v", tc.name, v, p)
		}
	}
	h.Set("X-TRY", "c")
	want := [][2]string{{"X-TRY", "c"}, {"User-Agent", "u"}, {"X-Ultrapeer", "TRUE"}, {"X-Ultrapeer-Needed", "maybe"}}
	if got := hsFields(&h); !slices.Equal(got, want) {
		t.Errorf("after Set: %q", got)
	}
	h.Set("New", "n")
	if got := hsFields(&h); got[len(got)-1] != [2]string{"New", "n"} {
		t.Errorf("Set of a new name did not append: %q", got)
	}
	h.Del("x-ultrapeer")
	if h.Has("X-Ultrapeer") || !h.Has("X-Ultrapeer-Needed") || h.Len() != 4 {
		t.Errorf("after Del: %q", hsFields(&h))
	}
	got := string(h.AppendTo(nil))
	if got != "X-TRY: c\r\nUser-Agent: u\r\nX-Ultrapeer-Needed: maybe\r\nNew: n\r\n" {
		t.Errorf("AppendTo %q", got)
	}
	var nilH *Headers
	if nilH.Len() != 0 || nilH.Get("a") != "" || nilH.Has("a") || len(nilH.AppendTo(nil)) != 0 {
		t.Errorf("nil Headers not empty")
	}
}

func TestHeadersAppendToKeepsOneFieldOneLine(t *testing.T) {
	var h Headers
	h.Add("Evil", "a\r\nInjected: yes")
	h.Add("Empty", "")
	b := h.AppendTo(nil)
	got, err := ReadHeaders(bufio.NewReader(bytes.NewReader(append(b, "\r\n"...))), 0)
	if err != nil {
		t.Fatal(err)
	}
	if got.Has("Injected") || got.Get("Evil") != "a\r Injected: yes" || !got.Has("Empty") || got.Len() != 2 {
		t.Errorf("read back %q from %q", hsFields(&got), b)
	}
}

func TestHeadersAppendToFoldsLongValues(t *testing.T) {
	var words []string
	for i := range 900 {
		words = append(words, strings.Repeat("w", i%13+1))
	}
	long := strings.Join(words, " ")
	var h Headers
	h.Add("X-Long", long)
	h.Add("X-Spaces", "a  b") // two spaces never a fold point
	b := h.AppendTo(nil)
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\r\n"), "\r\n") {
		if len(line) > MaxHandshakeLine {
			t.Fatalf("line of %d bytes", len(line))
		}
	}
	if n := bytes.Count(b, []byte("\r\n ")); n < 5 {
		t.Errorf("only %d continuation lines for %d bytes", n, len(long))
	}
	got, err := ReadHeaders(bufio.NewReader(bytes.NewReader(append(b, "\r\n"...))), 0)
	if err != nil {
		t.Fatal(err)
	}
	if got.Get("X-Long") != long || got.Get("X-Spaces") != "a  b" {
		t.Errorf("folded value did not read back")
	}
}

func TestHandshakeAppendToReadRoundTrip(t *testing.T) {
	var h Headers
	h.Add("User-Agent", "Test/1.0")
	h.Add("X-Ultrapeer", "False")
	h.Add("X-Try-Ultrapeers", FormatTryList([]netip.AddrPort{netip.MustParseAddrPort("1.2.3.4:6346"),
		netip.MustParseAddrPort("[2001:db8::1]:6347")}))
	h.Add("X-Try-Ultrapeers", "5.6.7.8:1")
	h.Add("Reason-Like", "with: colon")

	requests := []struct {
		q    HandshakeRequest
		wire string
	}{
		{HandshakeRequest{Version: "0.6", Headers: h}, ""},
		{HandshakeRequest{Version: "0.7"}, "GNUTELLA CONNECT/0.7\r\n\r\n"},
		{HandshakeRequest{Version: "0.4"}, "GNUTELLA CONNECT/0.4\n\n"},
		{HandshakeRequest{}, "GNUTELLA CONNECT/0.6\r\n\r\n"},
	}
	for _, tc := range requests {
		b := tc.q.AppendTo(nil)
		if tc.wire != "" && string(b) != tc.wire {
			t.Errorf("request wire %q, want %q", b, tc.wire)
		}
		got, err := ReadHandshakeRequest(bufio.NewReader(bytes.NewReader(append(b, 0xAA))))
		if err != nil {
			t.Fatalf("%q: %v", b, err)
		}
		wantV := tc.q.Version
		if wantV == "" {
			wantV = "0.6"
		}
		if got.Version != wantV || !slices.Equal(hsFields(&got.Headers), hsFields(&tc.q.Headers)) {
			t.Errorf("round trip %+v, want %+v", got, tc.q)
		}
	}
	if string((&HandshakeRequest{Version: "0.6", Headers: h}).AppendTo(nil)[:22]) != "GNUTELLA CONNECT/0.6\r\n" {
		t.Errorf("request line")
	}

	responses := []struct {
		s    HandshakeResponse
		wire string
	}{
		{HandshakeResponse{Version: "0.6", Code: 200, Reason: "OK", Headers: h}, ""},
		{HandshakeResponse{Version: "0.6", Code: 200, Reason: "OK"}, "GNUTELLA/0.6 200 OK\r\n\r\n"},
		{HandshakeResponse{Code: 503, Reason: "Busy"}, "GNUTELLA/0.6 503 Busy\r\n\r\n"},
		{HandshakeResponse{Version: "0.6", Code: 204}, "GNUTELLA/0.6 204\r\n\r\n"},
		{HandshakeResponse{Version: "0.4", Code: 200, Reason: "OK"}, "GNUTELLA OK\n\n"},
	}
	for _, tc := range responses {
		b := tc.s.AppendTo(nil)
		if tc.wire != "" && string(b) != tc.wire {
			t.Errorf("response wire %q, want %q", b, tc.wire)
		}
		got, err := ReadHandshakeResponse(bufio.NewReader(bytes.NewReader(b)))
		if err != nil {
			t.Fatalf("%q: %v", b, err)
		}
		wantV := tc.s.Version
		if wantV == "" {
			wantV = "0.6"
		}
		if got.Version != wantV || got.Code != tc.s.Code || got.Reason != tc.s.Reason ||
			!slices.Equal(hsFields(&got.Headers), hsFields(&tc.s.Headers)) {
			t.Errorf("round trip %+v, want %+v", got, tc.s)
		}
	}
}

func TestRecordedBlocksReencodeExactly(t *testing.T) {
	// gtk-gnutella writes "Name: value\r\n" exactly as AppendTo does, so its
	// blocks re-encode byte for byte.
	data := hsReadFile(t, "leaf-to-ultrapeer.bin")
	r := bufio.NewReader(bytes.NewReader(data))
	q, err := ReadHandshakeRequest(r)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ReadHandshakeResponse(r)
	if err != nil {
		t.Fatal(err)
	}
	enc := s.AppendTo(q.AppendTo(nil))
	if !bytes.Equal(enc, data[:len(enc)]) {
		t.Errorf("leaf blocks re-encode differently:\n%q\n%q", enc, data[:len(enc)])
	}
	data = hsReadFile(t, "ultrapeer-to-leaf.bin")
	s, err = ReadHandshakeResponse(bufio.NewReader(bytes.NewReader(data)))
	if err != nil {
		t.Fatal(err)
	}
	if enc := s.AppendTo(nil); !bytes.Equal(enc, data[:len(enc)]) {
		t.Errorf("ultrapeer block re-encodes differently")
	}
}

func TestParseTryList(t *testing.T) {
	ap := netip.MustParseAddrPort
	for _, tc := range []struct {
		in   string
		want []netip.AddrPort
	}{
		{"1.2.3.4:6346,5.6.7.8:6347", []netip.AddrPort{ap("1.2.3.4:6346"), ap("5.6.7.8:6347")}},
		{" 1.2.3.4:6346 , 5.6.7.8 ", []netip.AddrPort{ap("1.2.3.4:6346"), ap("5.6.7.8:6346")}},
		{"1.2.3.4:6346 2024-01-01T12:00Z,5.6.7.8:1 junk", []netip.AddrPort{ap("1.2.3.4:6346"), ap("5.6.7.8:1")}},
		{"1.2.3.4:6346abc", []netip.AddrPort{ap("1.2.3.4:6346")}},
		{"[2001:db8::1]:6348,[::ffff:10.0.0.1]:5", []netip.AddrPort{ap("[2001:db8::1]:6348"), ap("10.0.0.1:5")}},
		{"2001:db8::2", []netip.AddrPort{ap("[2001:db8::2]:6346")}},
		{"[2001:db8::3]", []netip.AddrPort{ap("[2001:db8::3]:6346")}},
		{"host.example:6346,1.2.3.4:0,0.0.0.0:6346,1.2.3.4:65536,1.2.3.4:,256.1.1.1:1,[::1,,", nil},
		{"junk,9.9.9.9:9,1.2.3:4", []netip.AddrPort{ap("9.9.9.9:9")}},
		{"", nil},
	} {
		if got := ParseTryList(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("ParseTryList(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestFormatTryListParsesBack(t *testing.T) {
	addrs := []netip.AddrPort{netip.MustParseAddrPort("1.2.3.4:6346"), netip.MustParseAddrPort("[2001:db8::1]:1")}
	s := FormatTryList(addrs)
	if s != "1.2.3.4:6346,[2001:db8::1]:1" {
		t.Errorf("FormatTryList = %q", s)
	}
	if got := ParseTryList(s); !slices.Equal(got, addrs) {
		t.Errorf("parsed back %v", got)
	}
	if FormatTryList(nil) != "" {
		t.Errorf("empty list")
	}
}

func TestParseListenAddr(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:16357": "127.0.0.1:16357", " 1.2.3.4:6346 ": "1.2.3.4:6346",
		"[2001:db8::1]:6346": "[2001:db8::1]:6346", "[::ffff:1.2.3.4]:5": "1.2.3.4:5",
	} {
		if got, err := ParseListenAddr(in); err != nil || got != netip.MustParseAddrPort(want) {
			t.Errorf("ParseListenAddr(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "1.2.3.4", "1.2.3.4:0", "1.2.3.4:70000", "host:6346", "1.2.3.4:6346x", "[fe80::1%eth0]:1"} {
		if _, err := ParseListenAddr(in); !errors.Is(err, ErrBadHandshake) {
			t.Errorf("ParseListenAddr(%q) accepted (%v)", in, err)
		}
	}
}

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct {
		in         string
		maj, minor int
		ok         bool
	}{
		{"0.1", 0, 1, true}, {"0.2", 0, 2, true}, {" 1.10 ", 1, 10, true},
		{"", 0, 0, false}, {"1", 0, 0, false}, {"0.1a", 0, 0, false}, {"a.1", 0, 0, false}, {"0.1.2", 0, 0, false},
		{"-1.0", 0, 0, false}, {"9999999999.0", 0, 0, false},
	} {
		maj, minor, err := ParseVersion(tc.in)
		if (err == nil) != tc.ok || maj != tc.maj || minor != tc.minor {
			t.Errorf("ParseVersion(%q) = %d, %d, %v", tc.in, maj, minor, err)
		}
		if err != nil && !errors.Is(err, ErrBadHandshake) {
			t.Errorf("error kind %v", err)
		}
	}
}

// hsSeedBlocks returns the recorded handshake streams and some of ours.
func hsSeedBlocks(f *testing.F) [][]byte {
	var seeds [][]byte
	for _, name := range []string{"leaf-to-ultrapeer.bin", "ultrapeer-to-leaf.bin", "ultrapeer-to-other-leaf-1.bin"} {
		b := hsReadFile(f, name)
		seeds = append(seeds, b[:min(len(b), 1500)])
	}
	return append(seeds,
		[]byte("GNUTELLA CONNECT/0.4\n\n"), []byte("GNUTELLA OK\n\n"),
		[]byte("GNUTELLA CONNECT/0.7\r\nA: b\r\n c\r\nA:d\r\n\r\n"),
		[]byte("GNUTELLA/0.6 503 Busy now\nX-Try-Ultrapeers: 1.2.3.4:6346\n\n"),
		[]byte("GNUTELLA/0.6 200\r\nEmpty:\r\n\tcont\r\n\r\n"),
		// A field at the line limit without a space after the colon, and a
		// value continued past the line limit.
		[]byte("GNUTELLA CONNECT/0.6\r\nA:"+strings.Repeat("x", MaxHandshakeLine-2)+"\r\n\r\n"),
		[]byte("GNUTELLA/0.6 200 OK\r\nA: "+strings.Repeat("xxxxxxx yy\r\n ", 200)+"z\r\n\r\n"),
	)
}

// hsExceedsLimits reports whether an encoded block breaks one of the
// handshake limits by itself: only then may reading it back fail.
func hsExceedsLimits(enc []byte) bool {
	lines := strings.SplitAfter(string(enc), "\n")
	for _, l := range lines {
		if len(strings.TrimSuffix(strings.TrimSuffix(l, "\n"), "\r")) > MaxHandshakeLine {
			return true
		}
	}
	return len(lines)-3 > MaxHandshakeLines || len(enc) > MaxHandshakeBytes
}

func hsCheckReadError(t *testing.T, err error) {
	t.Helper()
	if err == io.EOF {
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not an *Error", err)
	}
	switch e.Kind {
	case ErrLineTooLong, ErrTooManyLines, ErrHeadersTooLarge, ErrBadHandshake, ErrTruncated:
	default:
		t.Fatalf("error kind %v", e.Kind)
	}
}

func FuzzHandshakeRequest(f *testing.F) {
	for _, s := range hsSeedBlocks(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReaderSize(bytes.NewReader(data), 64)
		q, err := ReadHandshakeRequest(r)
		if err != nil {
			hsCheckReadError(t, err)
			return
		}
		rest, _ := io.ReadAll(r)
		if !bytes.HasSuffix(data, rest) {
			t.Fatalf("consumed bytes after the block")
		}
		enc := q.AppendTo(nil)
		q2, err := ReadHandshakeRequest(bufio.NewReader(bytes.NewReader(enc)))
		if err != nil {
			if IsHandshakeLimit(err) && hsExceedsLimits(enc) {
				return
			}
			t.Fatalf("re-encoded block %q does not read back: %v", enc, err)
		}
		if q2.Version != q.Version || !slices.Equal(hsFields(&q2.Headers), hsFields(&q.Headers)) {
			t.Fatalf("round trip changed the block:\n%+v\n%+v", q, q2)
		}
		if enc2 := q2.AppendTo(nil); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not stable: %q vs %q", enc, enc2)
		}
	})
}

func FuzzHandshakeResponse(f *testing.F) {
	for _, s := range hsSeedBlocks(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReaderSize(bytes.NewReader(data), 64)
		s, err := ReadHandshakeResponse(r)
		if err != nil {
			hsCheckReadError(t, err)
			return
		}
		if s.Code < 0 || s.Code > 999 || s.OK() != (s.Code/100 == 2) {
			t.Fatalf("code %d", s.Code)
		}
		enc := s.AppendTo(nil)
		s2, err := ReadHandshakeResponse(bufio.NewReader(bytes.NewReader(enc)))
		if err != nil {
			if IsHandshakeLimit(err) && hsExceedsLimits(enc) {
				return
			}
			t.Fatalf("re-encoded block %q does not read back: %v", enc, err)
		}
		if s2.Version != s.Version || s2.Code != s.Code || s2.Reason != s.Reason ||
			!slices.Equal(hsFields(&s2.Headers), hsFields(&s.Headers)) {
			t.Fatalf("round trip changed the block:\n%+v\n%+v", s, s2)
		}
		if enc2 := s2.AppendTo(nil); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not stable: %q vs %q", enc, enc2)
		}
	})
}

var errHsTimeout = errors.New("i/o timeout")

func TestHandshakeReadErrorsPassThrough(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		read func(*bufio.Reader) error
	}{
		{"ReadLine before any byte", "", func(r *bufio.Reader) error { _, err := ReadLine(r); return err }},
		{"ReadLine inside a line", "GNUT", func(r *bufio.Reader) error { _, err := ReadLine(r); return err }},
		{"request headers", "GNUTELLA CONNECT/0.6\r\nA: b\r\n", func(r *bufio.Reader) error {
			_, err := ReadHandshakeRequest(r)
			return err
		}},
		{"0.4 end", "GNUTELLA OK\n", func(r *bufio.Reader) error { _, err := ReadHandshakeResponse(r); return err }},
		{"GIV line", "GIV 0:", func(r *bufio.Reader) error { _, err := ReadGIV(r); return err }},
		{"GIV empty line", "GIV 0:0efd31026d8def9548ee17f219e07503/file\n", func(r *bufio.Reader) error {
			_, err := ReadGIV(r)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := io.MultiReader(strings.NewReader(tc.in), hsErrReader{errHsTimeout})
			if err := tc.read(bufio.NewReader(src)); err != errHsTimeout {
				t.Errorf("error %v, want the reader's own error unchanged", err)
			}
		})
	}
}

type hsErrReader struct{ err error }

func (r hsErrReader) Read([]byte) (int, error) { return 0, r.err }
