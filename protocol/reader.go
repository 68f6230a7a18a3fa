package protocol

import (
	"errors"
	"io"
)

// MaxPayloadLength is the architectural limit on a payload length (docs/protocol.md §1.2):
// a length with any bit above 0xFFFF is gtk-gnutella's "marked" form, valid
// only between peers that announced sflag, which this package never does.
const MaxPayloadLength = 0xFFFF

// Limits are the per-type payload caps ("kick sizes"): a length above its
// cap is refused before anything is allocated for it (docs/protocol.md §3.8, §8.1). A peer
// that sends such a length must be sent Bye 400 and dropped, because the
// stream cannot be resynchronised without reading the payload.
type Limits struct {
	Query    uint32 // Query (0x80)
	QueryHit uint32 // QueryHit (0x81)
	Bye      uint32 // Bye (0x02)
	Other    uint32 // every other type
}

// DefaultLimits returns gtk-gnutella's kick sizes: Query 1024, QueryHit
// 65536, Bye 4096, everything else 40960 (docs/protocol.md §7).
func DefaultLimits() Limits {
	return Limits{Query: 1024, QueryHit: 65536, Bye: 4096, Other: 40960}
}

// For returns the cap on the payload length of a descriptor of type t.
func (l Limits) For(t Type) uint32 {
	switch t {
	case TypeQuery:
		return l.Query
	case TypeQueryHit:
		return l.QueryHit
	case TypeBye:
		return l.Bye
	}
	return l.Other
}

// Reader reads descriptors from one direction of a Gnutella connection,
// after the handshake (and after stream decompression, if any).
//
// A Reader does no buffering of its own: it reads exactly the 23 header
// bytes and then exactly the payload of each descriptor, so it can take
// over a *bufio.Reader left from the handshake (whose buffer may already
// hold the first descriptors) or a zlib reader. Over a bare net.Conn, wrap
// the connection in a bufio.Reader first to avoid two reads per descriptor.
type Reader struct {
	r   io.Reader
	lim Limits
	off int64
	hdr [HeaderLen]byte
}

// NewReader returns a Reader over r that enforces the caps l. The zero
// Limits value stands for DefaultLimits.
func NewReader(r io.Reader, l Limits) *Reader {
	if l == (Limits{}) {
		l = DefaultLimits()
	}
	return &Reader{r: r, lim: l}
}

// Offset returns the number of stream bytes consumed so far. After an error
// it counts the bytes read before the error.
func (r *Reader) Offset() int64 { return r.off }

// ReadRaw returns the next header and its payload bytes, a fresh slice the
// caller owns.
//
// A length with any bit above 0xFFFF, or above the cap for its type, is an
// *Error wrapping ErrTooLarge whose Offset is the stream offset of the
// length field; it is returned, with the header, after reading only the 23
// header bytes, and nothing is allocated for the payload. A clean EOF
// between descriptors returns io.EOF; an EOF inside one returns an *Error
// wrapping ErrTruncated whose Offset is the stream offset where the data
// stopped. Other read errors are returned as they are.
func (r *Reader) ReadRaw() (Header, []byte, error) {
	start := r.off
	n, err := io.ReadFull(r.r, r.hdr[:])
	r.off += int64(n)
	if err != nil {
		if err == io.EOF {
			return Header{}, nil, io.EOF
		}
		if err == io.ErrUnexpectedEOF {
			return Header{}, nil, errAt("header", int(r.off), ErrTruncated,
				"stream ends %d bytes into the header of the descriptor at %d", n, start)
		}
		return Header{}, nil, err
	}
	h, _ := ParseHeader(r.hdr[:])
	if h.Length > MaxPayloadLength {
		return h, nil, errAt("header", int(start)+19, ErrTooLarge,
			"%v payload length 0x%08x has bits above 0xFFFF (marked lengths need sflag)", h.Type, h.Length)
	}
	if limit := r.lim.For(h.Type); h.Length > limit {
		return h, nil, errAt("header", int(start)+19, ErrTooLarge,
			"%v payload of %d bytes is over the limit of %d", h.Type, h.Length, limit)
	}
	payload := make([]byte, h.Length)
	n, err = io.ReadFull(r.r, payload)
	r.off += int64(n)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return h, nil, errAt("payload", int(r.off), ErrTruncated,
				"stream ends %d bytes into the %d-byte %v payload of the descriptor at %d", n, h.Length, h.Type, start)
		}
		return h, nil, err
	}
	return h, payload, nil
}

// ReadMessage reads the next descriptor and decodes its payload with
// DecodePayload. The payload may alias a buffer owned by the message. A
// decode error is returned with the header (and a nil Payload); its Offset
// is a stream offset, and the stream is positioned after the bad
// descriptor, so the caller may go on reading if it chooses to.
func (r *Reader) ReadMessage() (Message, error) {
	h, b, err := r.ReadRaw()
	if err != nil {
		return Message{Header: h}, err
	}
	p, err := DecodePayload(h.Type, b)
	if err != nil {
		return Message{Header: h}, shiftOffset(err, int(r.off)-len(b))
	}
	return Message{Header: h, Payload: p}, nil
}
