package routing

import (
	"fmt"
	"sync/atomic"
)

// Counters are the routing layer's drop and route counters, as gtk-gnutella
// keeps them in gnet_stats (MSG_DROP_*). All fields are atomic: any goroutine
// may count, and Snapshot reads them all. The zero value is ready to use.
type Counters struct {
	Received        atomic.Uint64 // messages offered to routing
	Routed          atomic.Uint64 // messages sent onward (each message once)
	Handled         atomic.Uint64 // messages handled locally
	Duplicates      atomic.Uint64 // duplicates dropped
	DupsHigherTTL   atomic.Uint64 // duplicates re-forwarded for a higher TTL
	NoRoute         atomic.Uint64 // replies or pushes without a route (MSG_DROP_NO_ROUTE)
	RouteLost       atomic.Uint64 // the route's link is gone (MSG_DROP_ROUTE_LOST)
	Expired         atomic.Uint64 // TTL ran out here: not forwarded
	DropTTLZero     atomic.Uint64 // arrived with TTL 0
	DropHops255     atomic.Uint64 // arrived with hops 255
	DropHardLimit   atomic.Uint64 // TTL+hops over the hard limit
	DropBadType     atomic.Uint64 // unknown payload type
	DropOther       atomic.Uint64 // any other drop (size, malformed, hostile, ...)
	DropInflateBomb atomic.Uint64 // GGEP inflating past the message's budget
	AbuseDisconnect atomic.Uint64 // links closed by LinkAbuse verdicts
}

// Stats is a point-in-time copy of Counters.
type Stats struct {
	Received, Routed, Handled                            uint64
	Duplicates, DupsHigherTTL                            uint64
	NoRoute, RouteLost, Expired                          uint64
	DropTTLZero, DropHops255, DropHardLimit, DropBadType uint64
	DropOther, DropInflateBomb, AbuseDisconnect          uint64
}

// CountVerdict increments the counter matching a non-Accept verdict.
func (c *Counters) CountVerdict(v Verdict) {
	switch v {
	case DropTTLZero:
		c.DropTTLZero.Add(1)
	case DropHops255:
		c.DropHops255.Add(1)
	case DropHardLimit:
		c.DropHardLimit.Add(1)
	}
}

// Snapshot returns the current values. Each field is read atomically; the
// fields are not read at one instant as a whole.
func (c *Counters) Snapshot() Stats {
	return Stats{
		Received:        c.Received.Load(),
		Routed:          c.Routed.Load(),
		Handled:         c.Handled.Load(),
		Duplicates:      c.Duplicates.Load(),
		DupsHigherTTL:   c.DupsHigherTTL.Load(),
		NoRoute:         c.NoRoute.Load(),
		RouteLost:       c.RouteLost.Load(),
		Expired:         c.Expired.Load(),
		DropTTLZero:     c.DropTTLZero.Load(),
		DropHops255:     c.DropHops255.Load(),
		DropHardLimit:   c.DropHardLimit.Load(),
		DropBadType:     c.DropBadType.Load(),
		DropOther:       c.DropOther.Load(),
		DropInflateBomb: c.DropInflateBomb.Load(),
		AbuseDisconnect: c.AbuseDisconnect.Load(),
	}
}

// Dropped is the total of the drop counters (duplicates not re-forwarded,
// no route, route lost, expired and every Drop* field).
func (s Stats) Dropped() uint64 {
	return s.Duplicates + s.NoRoute + s.RouteLost + s.Expired + s.DropTTLZero +
		s.DropHops255 + s.DropHardLimit + s.DropBadType + s.DropOther + s.DropInflateBomb
}

func (s Stats) String() string {
	return fmt.Sprintf("rx=%d routed=%d handled=%d dups=%d dups-higher-ttl=%d no-route=%d route-lost=%d "+
		"expired=%d ttl0=%d hops255=%d hard-limit=%d bad-type=%d other=%d inflate-bomb=%d abuse-bye=%d",
		s.Received, s.Routed, s.Handled, s.Duplicates, s.DupsHigherTTL, s.NoRoute, s.RouteLost,
		s.Expired, s.DropTTLZero, s.DropHops255, s.DropHardLimit, s.DropBadType, s.DropOther,
		s.DropInflateBomb, s.AbuseDisconnect)
}
