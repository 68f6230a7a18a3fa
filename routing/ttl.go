package routing

import (
	"strconv"

	"gnutella/protocol"
)

// TTLPolicy holds the TTL/hops limits of docs/protocol.md §3.3 and §8.2.
type TTLPolicy struct {
	// MaxTTL bounds hops+TTL of a relayed request: gtk-gnutella's max_ttl
	// by default, 7 for a 0.4-style network.
	MaxTTL uint8
	// HardLimit drops a request whose TTL+hops exceeds it (gtk's
	// hard_ttl_limit). Replies are trimmed to HardLimit+1 instead.
	HardLimit uint8
}

// DefaultTTLPolicy returns gtk-gnutella's defaults: MaxTTL 4, HardLimit 15.
// It is the one place they live (servent.DefaultConfig takes them).
func DefaultTTLPolicy() TTLPolicy { return TTLPolicy{MaxTTL: 4, HardLimit: 15} }

// Verdict is the outcome of checking a header on arrival.
type Verdict uint8

// The verdicts of TTLPolicy.Check.
const (
	Accept        Verdict = iota // the header passes the TTL/hops rules
	DropTTLZero                  // TTL 0: invalid on TCP, count as bad (BYE 408 exists for it)
	DropHops255                  // hops 255: cannot be incremented, count as bad
	DropHardLimit                // TTL+hops over HardLimit (may lead to BYE 403, see LinkAbuse)
)

func (v Verdict) String() string {
	switch v {
	case Accept:
		return "accept"
	case DropTTLZero:
		return "drop: TTL 0"
	case DropHops255:
		return "drop: hops 255"
	case DropHardLimit:
		return "drop: hard TTL limit"
	}
	return "Verdict(" + strconv.Itoa(int(v)) + ")"
}

// Check applies the arrival rules to a request (Ping, Query, Push), in
// gtk-gnutella's order (routing.c forward_message): TTL+hops over HardLimit,
// then hops 255, then TTL 0. It does not modify h.
func (p TTLPolicy) Check(h *protocol.Header) Verdict {
	switch {
	case int(h.TTL)+int(h.Hops) > int(p.HardLimit):
		return DropHardLimit
	case h.Hops == 255:
		return DropHops255
	case h.TTL == 0:
		return DropTTLZero
	}
	return Accept
}

// CheckReply applies the arrival rules to a reply (Pong, QueryHit). Replies
// are precious and travel one path, so gtk-gnutella never drops them for a
// high TTL (ForwardReply trims it instead); hops 255 and TTL 0 are still
// reported.
func (p TTLPolicy) CheckReply(h *protocol.Header) Verdict {
	switch {
	case h.Hops == 255:
		return DropHops255
	case h.TTL == 0:
		return DropTTLZero
	}
	return Accept
}

// ForwardTTL returns the TTL a request would be relayed with before the
// decrement, after gtk's clamp (routing.c route_max_forward_ttl): when
// hops+TTL > MaxTTL the TTL becomes max(MaxTTL-hops, 1). This is also the
// "effective TTL" gtk compares when it meets a duplicate (DupCache.Check).
func (p TTLPolicy) ForwardTTL(h protocol.Header) uint8 {
	if int(h.Hops)+int(h.TTL) > int(p.MaxTTL) {
		return uint8(max(int(p.MaxTTL)-int(h.Hops), 1))
	}
	return h.TTL
}

// Forward returns the header to send a request onward: TTL clamped as
// ForwardTTL does, then TTL-1 and hops+1. ok is false when the new TTL would
// be 0 (a message is never sent with TTL 0), or when TTL is already 0 or
// hops is 255; out is then h unchanged and must not be sent. Forward does
// not apply HardLimit: Check does, on arrival.
func (p TTLPolicy) Forward(h protocol.Header) (out protocol.Header, ok bool) {
	if h.TTL == 0 || h.Hops == 255 {
		return h, false
	}
	ttl := p.ForwardTTL(h)
	if ttl <= 1 {
		return h, false
	}
	out = h
	out.TTL = ttl - 1
	out.Hops = h.Hops + 1
	return out, true
}

// ForwardReply returns the header to route a reply (QueryHit, Pong) one hop
// onward, as gtk-gnutella's route_query_hit does: a TTL over HardLimit+1 is
// trimmed to HardLimit+1 (never dropped); a TTL of 0 or 1 would expire here,
// unless the next hop is one of our leaves (toLeaf), in which case it is
// bumped to 2 so the leaf gets it. Then TTL-1 and hops+1. ok is false when
// the reply must not be sent (expired, or hops 255); out is then h.
func (p TTLPolicy) ForwardReply(h protocol.Header, toLeaf bool) (out protocol.Header, ok bool) {
	if h.Hops == 255 {
		return h, false
	}
	ttl := int(h.TTL)
	if ttl <= 1 {
		if !toLeaf {
			return h, false
		}
		ttl = 2
	}
	ttl = min(ttl, int(p.HardLimit)+1)
	if ttl <= 1 { // only with HardLimit 0
		return h, false
	}
	out = h
	out.TTL = uint8(ttl - 1)
	out.Hops = h.Hops + 1
	return out, true
}

// ReplyTTL is the TTL of a QueryHit we send for a query that arrived with
// queryHops hops (as on the wire). gtk-gnutella (qhit.c qhit_send_node) uses
// the query's hops after its own increment plus a margin of 5, trimmed to
// hard_ttl_limit: min(queryHops+1+5, HardLimit), and at least 1.
func (p TTLPolicy) ReplyTTL(queryHops uint8) uint8 {
	return uint8(max(min(int(queryHops)+1+5, int(p.HardLimit)), 1))
}

// PongTTL is the TTL of a Pong we send for a ping that arrived with pingHops
// hops: min(pingHops+1, MaxTTL), and at least 1.
func (p TTLPolicy) PongTTL(pingHops uint8) uint8 {
	return uint8(max(min(int(pingHops)+1, int(p.MaxTTL)), 1))
}
