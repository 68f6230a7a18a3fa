package protocol

import (
	"errors"
	"fmt"
)

// Kinds of failure. Every error returned by a decoder in this package wraps
// exactly one of these (ErrInflateBudget being a kind of ErrTooLarge), so callers test with errors.Is and choose their
// reaction (a Bye code, a 4xx answer, a dropped message) from the kind alone.
var (
	// ErrTruncated: the input ended before the structure did.
	ErrTruncated = errors.New("truncated")
	// ErrTooLarge: a length is above the limit that applies to it. On a
	// Gnutella link this desynchronises nothing yet, but the link must go
	// (Bye 400), because skipping the payload would mean reading it.
	ErrTooLarge = errors.New("too large")
	// ErrInflateBudget: the deflated GGEP data of one message inflates
	// past its budget (MaxInflatedPerMessage): a zlib bomb rather than
	// garbage. It wraps ErrTooLarge, so errors.Is(err, ErrTooLarge) holds
	// too.
	ErrInflateBudget = fmt.Errorf("%w: GGEP inflate budget exceeded", ErrTooLarge)
	// ErrMalformed: the bytes are there but do not follow the layout.
	ErrMalformed = errors.New("malformed")
	// ErrBadGGEP: a GGEP block breaks one of the rules of docs/protocol.md §1.10.
	ErrBadGGEP = errors.New("bad GGEP block")
	// ErrBadURN: a URN that is not urn:sha1 / urn:bitprint, or bad base32.
	ErrBadURN = errors.New("bad URN")
	// ErrBadHandshake: a handshake line that is not what the protocol allows.
	ErrBadHandshake = errors.New("bad handshake")
	// ErrLineTooLong, ErrTooManyLines and ErrHeadersTooLarge are the
	// handshake limits of docs/protocol.md §2.2 (1024-byte lines, 128 lines, 16 KiB).
	ErrLineTooLong     = errors.New("handshake line too long")
	ErrTooManyLines    = errors.New("too many handshake lines")
	ErrHeadersTooLarge = errors.New("handshake headers too large")
	// ErrBadQRP: a route-table update that breaks the QRP framing rules.
	ErrBadQRP = errors.New("bad QRP message")
)

// Error says what went wrong and where. Offset counts bytes from the start
// of the unit being decoded (a payload, a GGEP block, a stream), or is -1
// when no single byte is to blame.
type Error struct {
	What   string // the structure being decoded: "query", "ggep", "header", ...
	Offset int
	Kind   error // one of the Err* values above
	Detail string
}

func (e *Error) Error() string {
	s := e.What + ": " + e.Kind.Error()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Offset >= 0 {
		s += fmt.Sprintf(" (at byte %d)", e.Offset)
	}
	return s
}

// Unwrap makes errors.Is(err, ErrTruncated) and friends work.
func (e *Error) Unwrap() error { return e.Kind }

func errAt(what string, off int, kind error, format string, args ...any) error {
	return &Error{What: what, Offset: off, Kind: kind, Detail: fmt.Sprintf(format, args...)}
}

// ErrorOffset returns the offset carried by err, or -1.
func ErrorOffset(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Offset
	}
	return -1
}

// shiftOffset moves the offset of a nested error by base, so that an error
// found inside an extension reports its place in the whole payload.
func shiftOffset(err error, base int) error {
	var e *Error
	if errors.As(err, &e) && e.Offset >= 0 {
		c := *e
		c.Offset += base
		return &c
	}
	return err
}
