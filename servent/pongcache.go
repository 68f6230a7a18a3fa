package servent

import (
	"net/netip"
	"sort"
	"sync"
	"time"

	"gnutella/protocol"
	"gnutella/routing"
)

// pongCache answers pings from what recent pongs said (docs/protocol.md §3.4, [PONG]):
// pings are not flooded; each is answered with up to pongsPerPing cached
// pongs spread across hop counts, none from the asking link. When the cache
// is older than PongCacheLifetime, our neighbours are pinged to refresh it.
type pongCache struct {
	s           *Servent
	mu          sync.Mutex
	entries     []cachedPong
	lastRefresh time.Time
}

type cachedPong struct {
	addr    netip.AddrPort
	payload []byte // the pong payload as received (shared, never written)
	hops    uint8
	from    routing.LinkID
	at      time.Time
}

const (
	pongsPerPing   = 10
	pongCacheSize  = 64
	maxCachedHops  = 4 // gtk MAX_CACHE_HOPS
	pongEntryLives = 5 // lifetimes an entry is served before it is dropped
)

func newPongCache(s *Servent) *pongCache { return &pongCache{s: s} }

// add remembers a pong (one entry per address, the nearest wins).
func (c *pongCache) add(p *protocol.Pong, payload []byte, hops uint8, from routing.LinkID, now time.Time) {
	if hops > maxCachedHops {
		return
	}
	addr := p.AddrPort()
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.entries {
		if c.entries[i].addr == addr {
			if hops <= c.entries[i].hops {
				c.entries[i] = cachedPong{addr, payload, hops, from, now}
			} else {
				c.entries[i].at = now
			}
			return
		}
	}
	e := cachedPong{addr, payload, hops, from, now}
	if len(c.entries) < pongCacheSize {
		c.entries = append(c.entries, e)
		return
	}
	oldest := 0
	for i := range c.entries {
		if c.entries[i].at.Before(c.entries[oldest].at) {
			oldest = i
		}
	}
	c.entries[oldest] = e
}

// answer sends cached pongs for ping h received on l, rewritten with the
// ping's GUID.
func (c *pongCache) answer(l *Link, h protocol.Header) {
	now := c.s.now()
	maxAge := time.Duration(pongEntryLives) * c.s.cfg.PongCacheLifetime
	c.mu.Lock()
	picks := make([]cachedPong, 0, len(c.entries))
	kept := c.entries[:0]
	for _, e := range c.entries {
		if now.Sub(e.at) > maxAge {
			continue
		}
		kept = append(kept, e)
		if e.from != l.ID && e.addr != l.Listen {
			picks = append(picks, e)
		}
	}
	for i := len(kept); i < len(c.entries); i++ {
		c.entries[i] = cachedPong{}
	}
	c.entries = kept
	c.mu.Unlock()
	// spread across hop counts: take the newest of each hop count in turn
	sort.SliceStable(picks, func(i, j int) bool {
		if picks[i].hops != picks[j].hops {
			return picks[i].hops < picks[j].hops
		}
		return picks[i].at.After(picks[j].at)
	})
	var chosen []cachedPong
	for round := 0; len(chosen) < pongsPerPing && len(picks) > 0; round++ {
		rest := picks[:0]
		var last uint8 = 255
		for _, e := range picks {
			if e.hops != last && len(chosen) < pongsPerPing {
				chosen = append(chosen, e)
				last = e.hops
				continue
			}
			rest = append(rest, e)
		}
		picks = rest
	}
	ttl := c.s.router.ttl.PongTTL(h.Hops)
	for _, e := range chosen {
		payload := e.payload
		if !l.Caps.GGEP && len(payload) > 14 {
			payload = payload[:14]
		}
		l.send(protocol.Header{ID: h.ID, Type: protocol.TypePong, TTL: ttl, Hops: e.hops + 1}, payload)
	}
}

// refresh pings some neighbours when the cache has grown old: 20 % of the
// ultrapeer links, at least 3, with our max TTL. A leaf never refreshes:
// its only neighbours are its ultrapeers, which accept one ping a minute
// from a leaf (gtk-gnutella's PING_LEAF_THROTTLE) and would drop the rest;
// the leaf's alive pings (link.go) are all it sends them.
func (c *pongCache) refresh(now time.Time) {
	links := c.s.Links()
	if len(links) == 0 || !c.s.cfg.PongCaching || c.s.isLeaf() {
		return
	}
	c.mu.Lock()
	due := now.Sub(c.lastRefresh) >= c.s.cfg.PongCacheLifetime
	if due {
		c.lastRefresh = now
	}
	c.mu.Unlock()
	if !due {
		return
	}
	n := max(3, len(links)/5)
	id := protocol.NewGUID()
	r := c.s.router
	r.dups.Check(id, protocol.TypePing, c.s.cfg.MaxTTL)
	r.pings.Add(id, routing.Local, now)
	h := protocol.Header{ID: id, Type: protocol.TypePing, TTL: c.s.cfg.MaxTTL}
	for _, o := range links {
		if n == 0 {
			break
		}
		if o.Kind == LinkLeaf {
			continue
		}
		o.send(h, nil)
		n--
	}
}

// Len is the number of cached pongs.
func (c *pongCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
