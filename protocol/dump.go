package protocol

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Dump prints one direction of a recorded connection in readable form, one
// item a line, each starting with its stream offset:
//
//   - a Gnutella stream: zero or more handshake blocks (a first line starting
//     with "GNUTELLA", headers, an empty line), each printed as its first
//     line and its headers, then every descriptor as
//     "offset type guid ttl=N hops=N len=N payload" with the payload's
//     String();
//   - a push callback: the "GIV ..." line, then the HTTP messages that follow
//     (status or request line and headers; for a response body, its length
//     and urn:sha1);
//   - an HTTP request stream starting with "GET " or "HEAD ".
//
// It stops at the end of the stream, or at the first bad byte with an
// *Error whose Offset is the stream offset of that byte (for a stream cut
// short, the offset where it ends). Errors writing to w are returned as
// they are.
func Dump(w io.Writer, r io.Reader) error {
	cr := &countingReader{r: r}
	out := bufio.NewWriter(w)
	d := &dumper{out: out, cr: cr, br: bufio.NewReader(cr)}
	err := d.run()
	if ferr := out.Flush(); err == nil {
		err = ferr
	}
	return err
}

// countingReader counts the bytes read from r.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

type dumper struct {
	out *bufio.Writer
	cr  *countingReader
	br  *bufio.Reader
}

// pos is the stream offset of the next unread byte.
func (d *dumper) pos() int64 { return d.cr.n - int64(d.br.Buffered()) }

// peek returns up to n next bytes, fewer at the end of the stream.
func (d *dumper) peek(n int) ([]byte, error) {
	b, err := d.br.Peek(n)
	if err != nil && err != io.EOF {
		return nil, err
	}
	return b, nil
}

func (d *dumper) run() error {
	head, err := d.peek(8)
	if err != nil {
		return err
	}
	switch {
	case bytes.HasPrefix(head, []byte(givPrefix)):
		if err := d.giv(); err != nil {
			return err
		}
		return d.http()
	case bytes.HasPrefix(head, []byte("GET ")), bytes.HasPrefix(head, []byte("HEAD ")):
		return d.http()
	}
	for bytes.HasPrefix(head, []byte("GNUTELLA")) {
		if err := d.handshakeBlock(); err != nil {
			return err
		}
		if head, err = d.peek(8); err != nil {
			return err
		}
	}
	return d.descriptors()
}

// at moves the offset of a block-relative error to the stream.
func at(err error, blockStart int64) error {
	return shiftOffset(err, int(blockStart))
}

// handshakeBlock prints one Gnutella handshake block.
func (d *dumper) handshakeBlock() error {
	start := d.pos()
	line, err := ReadLine(d.br)
	if err != nil {
		return at(err, start)
	}
	used := int(d.pos() - start)
	if strings.HasPrefix(line, hsConnectPrefix) {
		_, err = ParseRequestLine(line)
	} else {
		_, _, _, err = hsParseStatusLine(line)
	}
	if err != nil {
		return at(err, start)
	}
	h, err := ReadHeaders(d.br, used)
	if err != nil {
		return at(err, start)
	}
	d.block(start, line, &h)
	return nil
}

// block prints a first line and its headers.
func (d *dumper) block(start int64, line string, h *Headers) {
	fmt.Fprintf(d.out, "%d %s\n", start, line)
	h.Each(func(name, value string) {
		fmt.Fprintf(d.out, "    %s: %s\n", name, value)
	})
}

// descriptors prints every descriptor up to the end of the stream.
func (d *dumper) descriptors() error {
	r := NewReader(d.br, DefaultLimits())
	r.off = d.pos()
	for {
		start := r.Offset()
		m, err := r.ReadMessage()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		h := &m.Header
		fmt.Fprintf(d.out, "%d %v %v ttl=%d hops=%d len=%d %s\n",
			start, h.Type, h.ID, h.TTL, h.Hops, h.Length, payloadString(m.Payload))
	}
}

// payloadString is the payload's String(), or a hex summary for payloads
// without one (*Raw).
func payloadString(p Payload) string {
	if s, ok := p.(fmt.Stringer); ok {
		return s.String()
	}
	b, err := p.AppendTo(nil)
	if err != nil {
		return fmt.Sprintf("(%T: %v)", p, err)
	}
	const show = 32
	if len(b) > show {
		return hex.EncodeToString(b[:show]) + "..."
	}
	return hex.EncodeToString(b)
}

// giv prints the "GIV ..." block of a push callback.
func (d *dumper) giv() error {
	start := d.pos()
	g, err := ReadGIV(d.br)
	if err != nil {
		return at(err, start)
	}
	fmt.Fprintf(d.out, "%d %s\n", start, g)
	return nil
}

// http prints HTTP messages up to the end of the stream.
func (d *dumper) http() error {
	for {
		head, err := d.peek(1)
		if err != nil {
			return err
		}
		if len(head) == 0 {
			return nil
		}
		if err := d.httpMessage(); err != nil {
			return err
		}
	}
}

// httpMessage prints one HTTP request or response: its first line, its
// headers and, for a body, the body's length and SHA-1.
func (d *dumper) httpMessage() error {
	start := d.pos()
	line, err := ReadLine(d.br)
	if err != nil {
		return at(err, start)
	}
	used := int(d.pos() - start)
	code, err := parseHTTPFirstLine(line)
	if err != nil {
		return at(err, start)
	}
	h, err := ReadHeaders(d.br, used)
	if err != nil {
		return at(err, start)
	}
	d.block(start, line, &h)

	response := code != 0
	if response && (code < 200 || code == 204 || code == 304) {
		return nil
	}
	length := int64(-1) // to the end of the stream
	if v := h.Get("Content-Length"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return errAt("http", int(start), ErrMalformed, "bad Content-Length %q", truncate(v, 30))
		}
		length = n
	} else if !response {
		length = 0 // a request without Content-Length has no body
	}
	if length == 0 {
		return nil
	}
	bodyStart := d.pos()
	sum := sha1.New()
	var n int64
	if length < 0 {
		n, err = io.Copy(sum, d.br)
	} else {
		n, err = io.CopyN(sum, d.br, length)
	}
	switch {
	case err == io.EOF && n == 0:
		// Headers only: the answer to a HEAD request.
		fmt.Fprintf(d.out, "%d no body follows (answer to HEAD?)\n", bodyStart)
		return nil
	case err == io.EOF:
		return errAt("http", int(d.pos()), ErrTruncated, "body ends after %d of %d bytes", n, length)
	case err != nil:
		return err
	}
	var urn SHA1
	sum.Sum(urn[:0])
	note := ""
	if v := h.Get("X-Gnutella-Content-URN"); v != "" && code == 200 {
		if claimed, err := ParseURN(v); err == nil && claimed == urn {
			note = " (matches X-Gnutella-Content-URN)"
		} else {
			note = " (X-Gnutella-Content-URN says " + truncate(v, 80) + ")"
		}
	}
	fmt.Fprintf(d.out, "%d body %d bytes %v%s\n", bodyStart, n, urn, note)
	return nil
}

// parseHTTPFirstLine checks a status line ("HTTP/1.1 200 OK", giving the
// code) or a request line ("GET /path HTTP/1.1", giving 0).
func parseHTTPFirstLine(line string) (code int, err error) {
	if rest, ok := strings.CutPrefix(line, "HTTP/"); ok {
		sp := strings.IndexByte(rest, ' ')
		if sp < 0 {
			return 0, errAt("http", len(line), ErrMalformed, "status line without a code")
		}
		at := len("HTTP/") + sp + 1
		for i := 0; i < 3; i++ {
			if at+i >= len(line) || line[at+i] < '0' || line[at+i] > '9' {
				return 0, errAt("http", at+i, ErrMalformed, "status code is not three digits")
			}
			code = code*10 + int(line[at+i]-'0')
		}
		return code, nil
	}
	sp := strings.IndexByte(line, ' ')
	if sp <= 0 {
		return 0, errAt("http", max(sp, 0), ErrMalformed, "not an HTTP request or status line: %q", truncate(line, 40))
	}
	for i := 0; i < sp; i++ {
		if c := line[i]; c < 'A' || c > 'Z' {
			return 0, errAt("http", i, ErrMalformed, "request method is not upper-case letters")
		}
	}
	if !strings.Contains(line[sp+1:], " HTTP/") {
		return 0, errAt("http", len(line), ErrMalformed, "request line without an HTTP version")
	}
	return 0, nil
}
