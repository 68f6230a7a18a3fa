package routing

import (
	"sync"
	"time"

	"gnutella/protocol"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Route lifetimes and bound, as LimeWire's MessageRouterImpl keeps them
// (docs/protocol.md §3.2).
const (
	PingRouteTTL          = 2 * time.Minute // Ping GUID → link, for Pongs
	QueryRouteTTL         = 5 * time.Minute // Query GUID → link, for QueryHits
	PushRouteTTL          = 7 * time.Minute // servent ID → links, for Pushes
	DefaultRouteTableSize = 100_000
)

// reclaimPerAdd bounds how many expired or dead entries an insertion removes
// from the old end of a table, so that an idle table shrinks without scans.
const reclaimPerAdd = 2

// route is one reverse-path entry.
type route struct {
	link LinkID
	exp  int64 // clock offset at which the route expires
}

// RouteTable maps a request's GUID to the link it came from, so that its
// replies travel back the same path: Query → QueryHit and Ping → Pong
// (docs/protocol.md §3.1, §3.6). Use one table per request type.
//
// The table is bounded (least recently added or touched GUIDs go first) and
// each route expires ttl after it was added or last touched. A closed link's
// routes are dropped lazily by ForgetLink, which assumes LinkIDs are never
// reused. It is safe for concurrent use.
type RouteTable struct {
	mu   sync.Mutex
	lru  *simplelru.LRU[protocol.GUID, route]
	ttl  int64
	clk  clock
	dead deadLinks
}

// NewRouteTable returns a table of at most size routes (DefaultRouteTableSize
// when size <= 0) that live ttl each (QueryRouteTTL when ttl <= 0).
func NewRouteTable(size int, ttl time.Duration) *RouteTable {
	if size <= 0 {
		size = DefaultRouteTableSize
	}
	if ttl <= 0 {
		ttl = QueryRouteTTL
	}
	l, err := simplelru.NewLRU[protocol.GUID, route](size, nil)
	if err != nil {
		panic(err)
	}
	return &RouteTable{lru: l, ttl: int64(ttl)}
}

// live reports whether r is usable at clock offset t.
func (t *RouteTable) live(r route, at int64) bool {
	return r.exp > at && !t.dead.has(r.link)
}

// Add records that the request id came from link from. The first route wins:
// while a live route for id exists, Add changes nothing (a duplicate request
// does not redirect the replies). A route to NoLink or to a forgotten link is
// not recorded.
func (t *RouteTable) Add(id protocol.GUID, from LinkID, now time.Time) {
	if from == NoLink {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	at := t.clk.at(now)
	if t.dead.has(from) {
		return
	}
	if r, ok := t.lru.Peek(id); ok && t.live(r, at) {
		return
	}
	t.lru.Add(id, route{link: from, exp: at + t.ttl})
	t.reclaim(at)
	t.dead.prune(at, t.ttl)
}

// reclaim removes up to reclaimPerAdd unusable entries from the old end.
// Entries are ordered by last Add/Touch, hence by expiry when time moves
// forward, so the oldest entries are the first to expire.
func (t *RouteTable) reclaim(at int64) {
	for range reclaimPerAdd {
		_, r, ok := t.lru.GetOldest()
		if !ok || t.live(r, at) {
			return
		}
		t.lru.RemoveOldest()
	}
}

// Lookup returns the link the request id came from. An unknown, expired or
// forgotten route gives false (and is removed). Lookup does not extend the
// route's life; Touch does.
func (t *RouteTable) Lookup(id protocol.GUID, now time.Time) (LinkID, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	at := t.clk.at(now)
	r, ok := t.lru.Peek(id)
	if !ok {
		return NoLink, false
	}
	if !t.live(r, at) {
		t.lru.Remove(id)
		return NoLink, false
	}
	return r.link, true
}

// Touch "revitalises" a live route used by a reply (as gtk-gnutella does):
// it lives ttl from now and becomes the most recently used entry. An unknown,
// expired or forgotten route is left absent.
func (t *RouteTable) Touch(id protocol.GUID, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	at := t.clk.at(now)
	r, ok := t.lru.Peek(id)
	if !ok {
		return
	}
	if !t.live(r, at) {
		t.lru.Remove(id)
		return
	}
	r.exp = at + t.ttl
	t.lru.Add(id, r)
}

// ForgetLink drops every route through the closed link l. It costs O(1): the
// routes are discarded when next met (Lookup, Touch, or reclaimed by Add).
// The table remembers l as closed for at least ttl, until every route it
// could have had has expired, and Add refuses routes to it meanwhile; the
// servent must not add routes to a closed link after that either. This
// relies on l never being reused for another connection.
func (t *RouteTable) ForgetLink(l LinkID) {
	if l == NoLink {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dead.add(l, t.clk.last)
}

// Len returns the number of entries held, which never exceeds the size. It
// may count expired or forgotten routes not reclaimed yet.
func (t *RouteTable) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lru.Len()
}

// MaxPushRoutes is how many links PushRoutes remembers per servent ID.
const MaxPushRoutes = 4

// pushRoute holds the links QueryHits from one servent arrived on.
type pushRoute struct {
	links [MaxPushRoutes]LinkID // NoLink marks a free slot
	exp   [MaxPushRoutes]int64
}

// PushRoutes maps a servent ID (the last 16 bytes of a QueryHit) to up to
// MaxPushRoutes links its QueryHits came from, so that a Push for that
// servent can be routed back along them (docs/protocol.md §3.6, §3.7). Each link
// expires ttl after a QueryHit from the servent last came over it; when all
// slots are in use a new link replaces the one that expires first. The table
// is bounded like RouteTable, forgets closed links lazily under the same
// never-reused assumption, and is safe for concurrent use.
type PushRoutes struct {
	mu   sync.Mutex
	lru  *simplelru.LRU[protocol.GUID, pushRoute]
	ttl  int64
	clk  clock
	dead deadLinks
}

// NewPushRoutes returns a table of at most size servent IDs
// (DefaultRouteTableSize when size <= 0) whose links live ttl each
// (PushRouteTTL when ttl <= 0).
func NewPushRoutes(size int, ttl time.Duration) *PushRoutes {
	if size <= 0 {
		size = DefaultRouteTableSize
	}
	if ttl <= 0 {
		ttl = PushRouteTTL
	}
	l, err := simplelru.NewLRU[protocol.GUID, pushRoute](size, nil)
	if err != nil {
		panic(err)
	}
	return &PushRoutes{lru: l, ttl: int64(ttl)}
}

func (p *PushRoutes) slotLive(r *pushRoute, i int, at int64) bool {
	return r.links[i] != NoLink && r.exp[i] > at && !p.dead.has(r.links[i])
}

func (p *PushRoutes) anyLive(r *pushRoute, at int64) bool {
	for i := range r.links {
		if p.slotLive(r, i, at) {
			return true
		}
	}
	return false
}

// Learn records that a QueryHit from servent arrived on link via. A known
// link is refreshed; a new one takes a free or unusable slot, else the slot
// that expires first. NoLink and forgotten links are ignored.
func (p *PushRoutes) Learn(servent protocol.GUID, via LinkID, now time.Time) {
	if via == NoLink {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	at := p.clk.at(now)
	if p.dead.has(via) {
		return
	}
	r, _ := p.lru.Peek(servent)
	slot, free := -1, -1
	for i := range r.links {
		if r.links[i] == via {
			slot = i
			break
		}
		if free < 0 && !p.slotLive(&r, i, at) {
			free = i
		}
	}
	if slot < 0 {
		slot = free
	}
	if slot < 0 { // all live: replace the one expiring first
		slot = 0
		for i := 1; i < len(r.exp); i++ {
			if r.exp[i] < r.exp[slot] {
				slot = i
			}
		}
	}
	r.links[slot], r.exp[slot] = via, at+p.ttl
	p.lru.Add(servent, r)
	for range reclaimPerAdd {
		_, old, ok := p.lru.GetOldest()
		if !ok || p.anyLive(&old, at) {
			break
		}
		p.lru.RemoveOldest()
	}
	p.dead.prune(at, p.ttl)
}

// Lookup appends to dst the live links known for servent and returns the
// extended slice; it allocates nothing when dst has room for MaxPushRoutes
// more. An entry with no live link left is removed.
func (p *PushRoutes) Lookup(servent protocol.GUID, now time.Time, dst []LinkID) []LinkID {
	p.mu.Lock()
	defer p.mu.Unlock()
	at := p.clk.at(now)
	r, ok := p.lru.Peek(servent)
	if !ok {
		return dst
	}
	n := len(dst)
	for i := range r.links {
		if p.slotLive(&r, i, at) {
			dst = append(dst, r.links[i])
		}
	}
	if len(dst) == n {
		p.lru.Remove(servent)
	}
	return dst
}

// ForgetLink drops the closed link l from every servent's routes, lazily and
// in O(1), with the same rules as RouteTable.ForgetLink.
func (p *PushRoutes) ForgetLink(l LinkID) {
	if l == NoLink {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dead.add(l, p.clk.last)
}

// Len returns the number of servent IDs held, which never exceeds the size.
// It may count entries whose links have all expired or been forgotten.
func (p *PushRoutes) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lru.Len()
}
