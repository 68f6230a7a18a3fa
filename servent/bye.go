package servent

import (
	"io"

	"github.com/rs/zerolog"

	"gnutella/protocol"
)

// Bye (docs/protocol.md §1.7): a Bye from a neighbour ends the link; it is never relayed.
// We say Bye (Link.Bye) before closing a link for a reason; after one for
// a broken stream the reader drains until the peer goes.

// handleBye takes a neighbour's Bye: note its code and end the link.
func (r *router) handleBye(l *Link, h protocol.Header, payload []byte) {
	r.trace(l, h, false)
	if h.Hops != 0 || h.TTL > 1 {
		r.stats.DropOther.Add(1) // a Bye is never relayed: discard
		return
	}
	if b, err := protocol.DecodeBye(payload); err == nil {
		l.byeCode.CompareAndSwap(0, uint32(b.Code))
		l.log(zerolog.DebugLevel).Int("code", int(b.Code)).Str("reason", b.Reason()).Msg("peer said bye")
	}
	l.close(nil)
}

// Bye ends the link politely: the Bye is the last message we send, then we
// half-close and read until the peer closes or ByeGrace passes. Only the
// first call counts.
func (l *Link) Bye(code protocol.ByeCode, reason string) {
	if !l.byeSent.CompareAndSwap(false, true) {
		return
	}
	l.closing.Store(true)
	l.byeCode.CompareAndSwap(0, uint32(code))
	l.log(zerolog.DebugLevel).Int("code", int(code)).Str("reason", reason).Msg("sending bye")
	if !l.Caps.ByePacket {
		l.close(nil) // only peers that announced Bye-Packet get a Bye (docs/protocol.md §1.5)
		return
	}
	payload, err := protocol.NewBye(code, reason).AppendTo(nil)
	if err != nil {
		l.close(err)
		return
	}
	h := protocol.Header{ID: protocol.NewGUID(), Type: protocol.TypeBye, TTL: 1}
	// Bypass send(): byeSent is already set.
	if l.q.push(newOutMsg(h, payload)) != enqueued {
		l.close(nil)
		return
	}
	l.s.sentMsgs.Add(1)
}

// drainAfterBye runs in the reader goroutine after a Bye for a broken
// stream: it reads and discards what the peer still sends until the peer
// closes or ByeGrace passes, then ends the link. (The stream cannot be
// parsed any more; the raw bytes are enough to see the peer go.)
func (l *Link) drainAfterBye() {
	_ = l.conn.SetReadDeadline(l.s.now().Add(l.s.cfg.ByeGrace))
	_, _ = io.Copy(io.Discard, l.br)
	l.close(nil)
}
