// Package routing holds the routing primitives a Gnutella servent composes:
// duplicate detection, reverse-path route tables for replies and pushes, the
// TTL/hops rules, drop counters, per-link abuse accounting and the search
// strategies (flooding, expanding ring, random walkers, gossip, dynamic
// querying) as logic over a Network interface (docs/protocol.md §3, §5, §7,
// §8.2, §8.7). It sits above protocol and below servent, which owns the
// links and calls these primitives for every descriptor it reads.
//
// Nothing here does I/O or starts goroutines. Time is always passed in by the
// caller (now time.Time), so expiry is deterministic and testable. The tables
// (DupCache, RouteTable, PushRoutes) are safe for concurrent use; each guards
// its state with one mutex.
//
// Links are named by LinkID values that the servent assigns. The package
// assumes a LinkID is never reused for another connection during the life of
// a table: ForgetLink relies on it to drop a closed link's routes lazily.
package routing

import "time"

// LinkID identifies one connection of the servent. The servent assigns IDs
// and must never reuse one for a later connection (ForgetLink depends on it).
type LinkID uint32

const (
	// NoLink is the zero LinkID: "no link". Tables ignore routes to it.
	NoLink LinkID = 0
	// Local is the reserved LinkID meaning "ourselves", e.g. the route of a
	// query we originated: replies routed to Local are for us to handle.
	Local LinkID = 1<<32 - 1
	// UDP is the reserved LinkID of a query that came over UDP (a GUESS
	// query): its hits go back by datagram to the querier, not on a link.
	UDP LinkID = 1<<32 - 2
)

// clock turns the caller's time.Time values into int64 nanosecond offsets
// from the first time the table saw. Offsets keep entries small, and
// time.Time.Sub uses the monotonic reading when both values carry one, so a
// wall-clock step does not expire (or resurrect) routes.
type clock struct {
	base time.Time
	set  bool
	last int64 // the latest offset seen
}

// at returns now as an offset and advances last.
func (c *clock) at(now time.Time) int64 {
	if !c.set {
		c.base, c.set = now, true
	}
	t := int64(now.Sub(c.base))
	if t > c.last {
		c.last = t
	}
	return t
}

// deadLinks remembers links closed by ForgetLink, so their routes can be
// dropped lazily when met instead of by a scan of the whole table. An entry
// records the clock's latest offset when the link was forgotten; once ttl
// has passed after it, every route the link could have had has expired by
// itself and the entry is pruned, so the set stays as small as the number
// of links closed within one route lifetime.
type deadLinks struct {
	m         map[LinkID]int64
	nextPrune int64
}

func (d *deadLinks) add(l LinkID, at int64) {
	if d.m == nil {
		d.m = make(map[LinkID]int64)
	}
	d.m[l] = at
}

func (d *deadLinks) has(l LinkID) bool {
	if len(d.m) == 0 {
		return false
	}
	_, ok := d.m[l]
	return ok
}

// prune drops the entries older than ttl; it scans the set at most once per
// quarter of ttl.
func (d *deadLinks) prune(now int64, ttl int64) {
	if len(d.m) == 0 || now < d.nextPrune {
		return
	}
	for l, at := range d.m {
		if at+ttl <= now {
			delete(d.m, l)
		}
	}
	d.nextPrune = now + max(ttl/4, 1)
}
