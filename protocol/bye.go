package protocol

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// Bye (0x02), docs/protocol.md §1.5:
//
//	off 0 code     2 bytes LE
//	off 2 message  NUL-terminated string
//
// The message is a short reason, or a reason line followed by "\r\n" and
// HTTP-style headers. It travels with TTL 1, hops 0 and is the last message
// on a link.

// MaxByeSize is the largest Bye payload gtk-gnutella accepts (BYE_MAX_SIZE).
const MaxByeSize = 4096

// ByeCode is the SMTP-like code of a Bye: 2xx the local side chose to close,
// 4xx the peer did something wrong, 5xx a local error.
type ByeCode uint16

// The registered Bye codes (gtk-gnutella doc/public/bye_codes).
const (
	ByeShutdown             ByeCode = 200 // servent shutdown
	ByeManualRemoval        ByeCode = 201 // the user removed the link
	ByeLocalNodePreferred   ByeCode = 202 // a local node is preferred
	ByeChangingPeerMode     ByeCode = 203 // changing peer mode (leaf/ultrapeer)
	ByeMessageTooLarge      ByeCode = 400 // message too large
	ByeTooManyDuplicates    ByeCode = 401 // too many duplicate messages
	ByeImproperQueries      ByeCode = 402 // relayed improper queries
	ByeHighTTL              ByeCode = 403 // relayed a high-TTL message
	ByeTooManyUnknown       ByeCode = 404 // too many unknown messages
	ByeActivityTimeout      ByeCode = 405 // inactivity timeout
	ByeNoAliveReply         ByeCode = 406 // no reply to alive pings
	ByeNotSharing           ByeCode = 407 // not sharing enough
	ByeTTLZero              ByeCode = 408 // sent a message with TTL 0
	ByeTooManyErrors        ByeCode = 409 // too many errors
	ByeExcessiveMessages    ByeCode = 410 // excessive messages
	ByeInvalidPayload       ByeCode = 411 // invalid payload
	ByeSecurityViolation    ByeCode = 412 // security violation
	ByeInvalidQRPSequence   ByeCode = 413 // invalid QRP sequence
	ByeLeafRelaying         ByeCode = 414 // a leaf relayed a message
	ByeHostilePeer          ByeCode = 415 // hostile peer (sent by gtk-gnutella, docs/protocol.md §8)
	ByeInternalError        ByeCode = 500 // servent internal error
	ByeProtocolDesync       ByeCode = 501 // protocol desynchronised
	ByeSendQueueFull        ByeCode = 502 // send queue full
	ByeClosing              ByeCode = 503 // servent closing the connection
	ByeLeafUltraSwitch      ByeCode = 504 // leaf/ultrapeer switch during handshake
	ByeProtocolNotSupported ByeCode = 505 // protocol not supported
)

var byeCodeNames = map[ByeCode]string{
	ByeShutdown: "shutdown", ByeManualRemoval: "manual removal",
	ByeLocalNodePreferred: "local node preferred", ByeChangingPeerMode: "changing peer mode",
	ByeMessageTooLarge: "message too large", ByeTooManyDuplicates: "too many duplicates",
	ByeImproperQueries: "improper queries", ByeHighTTL: "high-TTL message",
	ByeTooManyUnknown: "too many unknown messages", ByeActivityTimeout: "activity timeout",
	ByeNoAliveReply: "no reply to alive pings", ByeNotSharing: "not sharing",
	ByeTTLZero: "TTL=0 message", ByeTooManyErrors: "too many errors",
	ByeExcessiveMessages: "excessive messages", ByeInvalidPayload: "invalid payload",
	ByeSecurityViolation: "security violation", ByeInvalidQRPSequence: "invalid QRP sequence",
	ByeLeafRelaying: "leaf relaying", ByeHostilePeer: "hostile peer",
	ByeInternalError: "internal error", ByeProtocolDesync: "protocol desync",
	ByeSendQueueFull: "send queue full", ByeClosing: "closing",
	ByeLeafUltraSwitch:      "leaf/ultra switch during handshake",
	ByeProtocolNotSupported: "protocol not supported",
}

// String is the number followed by the registered meaning, if any:
// "200 shutdown", "299".
func (c ByeCode) String() string {
	s := strconv.Itoa(int(c))
	if n, ok := byeCodeNames[c]; ok {
		s += " " + n
	}
	return s
}

// Bye is the payload of a Bye descriptor.
type Bye struct {
	Code ByeCode
	// Message is the text before the first NUL (or all of it if there is
	// none): a reason, possibly followed by "\r\n" and headers.
	Message string
	// NoNUL records that the message was not NUL-terminated on the wire.
	// Fresh values leave it false and get the terminating NUL.
	NoNUL bool
	// Trailer holds any bytes after the terminating NUL, kept so that the
	// payload re-encodes exactly. Fresh values leave it nil.
	Trailer []byte
}

// NewBye returns a Bye with the short form of the message: the reason alone,
// NUL-terminated, as gtk-gnutella sends it. Callers that want headers append
// "\r\n" and header lines to Message themselves.
func NewBye(code ByeCode, reason string) *Bye {
	return &Bye{Code: code, Message: reason}
}

// DecodeBye decodes a Bye payload: at least the 2-byte code, at most
// MaxByeSize bytes. A missing NUL and bytes after the NUL are tolerated
// and kept. Trailer aliases b.
func DecodeBye(b []byte) (*Bye, error) {
	if len(b) < 2 {
		return nil, errAt("bye", len(b), ErrTruncated, "need the 2-byte code, have %d bytes", len(b))
	}
	if len(b) > MaxByeSize {
		return nil, errAt("bye", MaxByeSize, ErrTooLarge, "%d bytes, limit %d", len(b), MaxByeSize)
	}
	y := &Bye{Code: ByeCode(binary.LittleEndian.Uint16(b))}
	rest := b[2:]
	i := bytes.IndexByte(rest, 0)
	if i < 0 {
		y.Message = string(rest)
		y.NoNUL = true
		return y, nil
	}
	y.Message = string(rest[:i])
	if i+1 < len(rest) {
		y.Trailer = rest[i+1:]
	}
	return y, nil
}

// Type implements Payload.
func (y *Bye) Type() Type { return TypeBye }

// AppendTo implements Payload. It refuses a Message containing NUL, a
// Trailer without the NUL, and a payload over MaxByeSize.
func (y *Bye) AppendTo(b []byte) ([]byte, error) {
	if i := strings.IndexByte(y.Message, 0); i >= 0 {
		return b, errAt("bye", 2+i, ErrMalformed, "message contains NUL")
	}
	if y.NoNUL && len(y.Trailer) > 0 {
		return b, errAt("bye", -1, ErrMalformed, "trailer without a terminating NUL")
	}
	n := 2 + len(y.Message) + len(y.Trailer)
	if !y.NoNUL {
		n++
	}
	if n > MaxByeSize {
		return b, errAt("bye", -1, ErrTooLarge, "%d bytes, limit %d", n, MaxByeSize)
	}
	b = binary.LittleEndian.AppendUint16(b, uint16(y.Code))
	b = append(b, y.Message...)
	if !y.NoNUL {
		b = append(b, 0)
	}
	return append(b, y.Trailer...), nil
}

// Reason is the first line of Message, without the headers that may follow.
func (y *Bye) Reason() string {
	if i := strings.Index(y.Message, "\r\n"); i >= 0 {
		return y.Message[:i]
	}
	return y.Message
}

// String summarises the Bye: `Bye 200 shutdown "Servent shutdown"`.
func (y *Bye) String() string {
	s := fmt.Sprintf("Bye %s %q", y.Code, y.Message)
	if y.NoNUL {
		s += " (no NUL)"
	}
	if len(y.Trailer) > 0 {
		s += fmt.Sprintf(" +%d trailing bytes", len(y.Trailer))
	}
	return s
}
