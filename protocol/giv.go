package protocol

import (
	"bufio"
	"encoding/hex"
	"io"
	"strconv"
	"strings"
)

// GIV is the first line a firewalled servent sends when it connects back
// after a Push (docs/protocol.md §6.4): "GIV <index>:<servent ID in hex>/<name>\n\n". The
// downloader then sends an HTTP request on the same socket.
type GIV struct {
	Index     uint32 // file index from the Push
	ServentID GUID   // the caller's servent ID, as in its QueryHits
	Name      string // informational file name; gtk-gnutella sends "file"
}

const givPrefix = "GIV "

// ParseGIV reads "GIV <index>:<32 hex>/<name>" (line ending already
// stripped). The hex may be in either case; the name may be empty or absent
// (no '/'), and loses any trailing "\r". Errors wrap ErrBadHandshake, with
// the offset of the offending byte in the line.
func ParseGIV(line string) (GIV, error) {
	var g GIV
	if !strings.HasPrefix(line, givPrefix) {
		return g, errAt("giv", hsMismatch(line, givPrefix), ErrBadHandshake, "not a GIV line: %q", truncate(line, 40))
	}
	i := len(givPrefix)
	start := i
	var index uint64
	for i < len(line) && line[i] >= '0' && line[i] <= '9' {
		index = index*10 + uint64(line[i]-'0')
		if index > 0xFFFFFFFF {
			return g, errAt("giv", i, ErrBadHandshake, "file index above 2^32-1")
		}
		i++
	}
	if i == start {
		return g, errAt("giv", i, ErrBadHandshake, "missing file index")
	}
	if i >= len(line) || line[i] != ':' {
		return g, errAt("giv", i, ErrBadHandshake, "want ':' after the file index")
	}
	i++
	if len(line)-i < 32 {
		return g, errAt("giv", len(line), ErrBadHandshake, "servent ID shorter than 32 hex digits")
	}
	for k := 0; k < 32; k++ {
		if !givIsHex(line[i+k]) {
			return g, errAt("giv", i+k, ErrBadHandshake, "servent ID is not hex")
		}
	}
	_, _ = hex.Decode(g.ServentID[:], []byte(line[i:i+32]))
	i += 32
	switch {
	case i == len(line):
	case line[i] == '/':
		g.Name = strings.TrimRight(line[i+1:], "\r")
	default:
		return g, errAt("giv", i, ErrBadHandshake, "want '/' after the servent ID")
	}
	g.Index = uint32(index)
	return g, nil
}

func givIsHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// ReadGIV reads the GIV line and the empty line after it ("\n\n" or
// "\r\n\r\n"), each within MaxHandshakeLine. It returns io.EOF if the stream
// ends before the first byte, and ErrTruncated (offset in the block) if it
// ends later. The HTTP request that follows stays in r.
func ReadGIV(r *bufio.Reader) (GIV, error) {
	line, n, err := hsReadLine(r)
	if err != nil {
		if e, ok := err.(*Error); ok {
			c := *e
			c.What = "giv"
			return GIV{}, &c
		}
		return GIV{}, err
	}
	g, err := ParseGIV(line)
	if err != nil {
		return GIV{}, err
	}
	empty, _, err := hsReadLine(r)
	switch {
	case err == io.EOF:
		return GIV{}, errAt("giv", n, ErrTruncated, "stream ended before the empty line")
	case err != nil:
		if e, ok := err.(*Error); ok {
			c := *e
			c.What = "giv"
			c.Offset += n
			return GIV{}, &c
		}
		return GIV{}, err
	case empty != "":
		return GIV{}, errAt("giv", n, ErrBadHandshake, "GIV line not followed by an empty line")
	}
	return g, nil
}

// AppendTo appends "GIV <index>:<lower-case hex>/<name>\n\n". A "\n" in the
// name is written as a space.
func (g GIV) AppendTo(b []byte) []byte {
	b = append(b, givPrefix...)
	b = strconv.AppendUint(b, uint64(g.Index), 10)
	b = append(b, ':')
	b = hex.AppendEncode(b, g.ServentID[:])
	b = append(b, '/')
	b = hsAppendSafe(b, g.Name)
	return append(b, '\n', '\n')
}

// String is the GIV line without its line endings.
func (g GIV) String() string {
	b := g.AppendTo(nil)
	return string(b[:len(b)-2])
}
