package servent

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"gnutella/protocol"
	"gnutella/routing"
)

// The router's state and the primitives every message handler uses:
// arrival checks (TTL, hops, duplicates), flooding, and routing a reply
// one hop back. Dispatch is in route.go; each message's handling is in the
// file named after it.

// router applies the routing rules of docs/protocol.md §3 to every descriptor a link reads:
// duplicate detection, reverse-path route tables, TTL rules, flooding,
// reverse-path delivery of replies and Push routing by servent ID.
type router struct {
	s      *Servent
	ttl    routing.TTLPolicy
	dups   *routing.DupCache
	pings  *routing.RouteTable // Ping GUID → link, for Pongs (0.4 flooding mode and our own pings)
	query  *routing.RouteTable // Query GUID → link, for QueryHits
	pushes *routing.PushRoutes // servent ID → links, learned from QueryHits
	stats  routing.Counters

	leafDeliveries atomic.Uint64 // queries sent to leaves (all passed their QRP table)
	lastHopSaved   atomic.Uint64 // last-hop queries not sent to an ultrapeer whose table said no

	rngMu sync.Mutex
	rng   *rand.Rand // walker hops and gossip draws: seeded from Config.Seed when set

	walkers  *routing.DupCache // GUIDs of walker queries seen (their hits route without TTL trim)
	stopped  *routing.DupCache // walker GUIDs whose originator said STOP
	checking chan struct{}     // bounds walker checks in flight

}

func newRouter(s *Servent) *router {
	r := &router{
		s:      s,
		ttl:    routing.TTLPolicy{MaxTTL: s.cfg.MaxTTL, HardLimit: s.cfg.HardTTL},
		dups:   routing.NewDupCache(s.cfg.DupCacheSize),
		pings:  routing.NewRouteTable(s.cfg.RouteTableSize, routing.PingRouteTTL),
		query:  routing.NewRouteTable(s.cfg.RouteTableSize, routing.QueryRouteTTL),
		pushes: routing.NewPushRoutes(s.cfg.RouteTableSize, routing.PushRouteTTL),

		walkers:  routing.NewDupCache(4096),
		stopped:  routing.NewDupCache(4096),
		checking: make(chan struct{}, 64),
	}
	seed := s.cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	r.rng = rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d))
	return r
}

func (r *router) float64() float64 {
	r.rngMu.Lock()
	defer r.rngMu.Unlock()
	return r.rng.Float64()
}

func (r *router) forgetLink(id routing.LinkID) {
	r.pings.ForgetLink(id)
	r.query.ForgetLink(id)
	r.pushes.ForgetLink(id)
}

// Stats returns the routing counters.
func (s *Servent) Stats() routing.Stats { return s.router.stats.Snapshot() }

// checkArrival applies the TTL/hops rules to a message that would be
// routed; it counts and punishes what it drops.
func (r *router) checkArrival(l *Link, h *protocol.Header) bool {
	v := r.ttl.Check(h)
	if v == routing.Accept {
		return true
	}
	r.stats.CountVerdict(v)
	if v == routing.DropHardLimit {
		if code, reason := l.abuse.HighTTL(h.Type, h.Hops); code != 0 {
			r.stats.AbuseDisconnect.Add(1)
			l.Bye(protocol.ByeCode(code), reason)
		}
	}
	return false
}

// fresh applies the arrival checks and duplicate detection to a message
// that would be routed, and traces it when it passes.
func (r *router) fresh(l *Link, h protocol.Header) bool {
	if !r.checkArrival(l, &h) {
		return false
	}
	if dup, _ := r.duplicate(l, h); dup {
		return false
	}
	r.trace(l, h, false)
	return true
}

// duplicate checks (GUID, type); for a duplicate it counts, traces and
// punishes, and reports whether the copy carries a higher TTL.
func (r *router) duplicate(l *Link, h protocol.Header) (dup, higher bool) {
	dup, higher, same := r.dups.CheckFrom(h.ID, h.Type, r.ttl.ForwardTTL(h), l.ID)
	if !dup {
		return false, false
	}
	l.dups.Add(1)
	r.trace(l, h, true)
	if higher {
		r.stats.DupsHigherTTL.Add(1)
	} else {
		r.stats.Duplicates.Add(1)
	}
	if same {
		if code, reason := l.abuse.Duplicate(higher); code != 0 {
			r.stats.AbuseDisconnect.Add(1)
			l.Bye(protocol.ByeCode(code), reason)
		}
	}
	return true, higher
}

// forwardReply sends a Pong or QueryHit one hop back along its route.
func (r *router) forwardReply(dst routing.LinkID, h protocol.Header, payload []byte) {
	to := r.s.linkByID(dst)
	if to == nil {
		r.stats.RouteLost.Add(1)
		return
	}
	out, ok := r.ttl.ForwardReply(h, to.Kind == LinkLeaf)
	if h.Type == protocol.TypeQueryHit && r.walkers.Seen(h.ID, protocol.TypeQuery) {
		// a walker's hit retraces a walk that may be longer than any TTL
		out, ok = h, true
		out.Hops = min(h.Hops, 254) + 1
		out.TTL = max(h.TTL, 2) - 1
	}
	if !ok {
		r.stats.Expired.Add(1)
		return
	}
	if to.send(out, payload) == enqueued {
		r.stats.Routed.Add(1)
		if to.Kind == LinkLeaf && h.Type == protocol.TypeQueryHit {
			r.s.relayedToLeaf(h.ID, int(payload[0]))
		}
	}
}

// flood sends a message to every link but from. Leaves get nothing here:
// queries reach leaves only through their QRP tables (toLeaves). For the
// last hop (TTL 1) an ultrapeer that sent us its table gets a query only
// when the table matches qq (docs/protocol.md §3.5). A leaf relays nothing.
func (r *router) flood(from *Link, h protocol.Header, payload []byte, ultrapeersOnly bool, qq *lazyQRP) int {
	if from != nil && r.s.isLeaf() {
		return 0
	}
	sent := 0
	for _, o := range r.s.Links() {
		if o == from || o.Kind == LinkLeaf || o.closing.Load() {
			continue
		}
		if h.Type == protocol.TypeQuery && !o.wantsQueryHops(h.Hops) {
			continue
		}
		if ultrapeersOnly && o.Kind != LinkUltrapeer {
			continue
		}
		if qq != nil && h.TTL == 1 && o.Kind == LinkUltrapeer && o.Caps.UltrapeerQueryRouting {
			if t := o.qrt.Load(); t != nil && !t.MatchesQuery(qq.get()) {
				r.lastHopSaved.Add(1)
				continue
			}
		}
		if o.send(h, payload) == enqueued {
			sent++
		}
	}
	if sent > 0 {
		r.stats.Routed.Add(1)
	}
	return sent
}

func (s *Servent) linkByID(id routing.LinkID) *Link {
	s.mu.Lock()
	l := s.links[id]
	s.mu.Unlock()
	return l
}
