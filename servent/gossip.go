package servent

import "gnutella/protocol"

// Gossip queries: forwarded to each neighbour with the query's probability.

// gossip forwards a gossip query to each other neighbour with probability p.
func (r *router) gossip(from *Link, h protocol.Header, payload []byte, p float64) {
	sent := 0
	for _, o := range r.s.Links() {
		if o == from || o.Kind == LinkLeaf || o.closing.Load() {
			continue
		}
		if o.Caps.Gossip && r.float64() >= p {
			continue // peers that do not gossip get it anyway: they would flood it
		}
		if o.send(h, payload) == enqueued {
			sent++
		}
	}
	if sent > 0 {
		r.stats.Routed.Add(1)
	}
}
