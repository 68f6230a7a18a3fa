package servent

import (
	"gnutella/protocol"
	"gnutella/routing"
)

// Push: routed toward a servent ID (to a neighbour with it, or along the
// links its hits came in on); one addressed to us is answered by a
// connect-back with GIV and the upload (Node.push).

func (r *router) handlePush(l *Link, h protocol.Header, payload []byte) {
	s := r.s
	p, err := protocol.DecodePush(payload)
	if err != nil {
		r.stats.DropOther.Add(1)
		return
	}
	if !r.fresh(l, h) {
		return
	}
	if p.ServentID == s.id {
		r.stats.Handled.Add(1)
		if s.cfg.Hooks.Push != nil {
			s.cfg.Hooks.Push(p, h)
		}
		return
	}
	if s.isLeaf() {
		r.stats.DropOther.Add(1)
		return
	}
	out, ok := r.ttl.Forward(h)
	if !ok {
		r.stats.Expired.Add(1)
		return
	}
	r.routePush(l.ID, p.ServentID, out, payload)
}

// routePush sends a Push toward servent: to a neighbour with that GUID, or
// along every link a QueryHit from it came in on.
func (r *router) routePush(from routing.LinkID, servent protocol.GUID, h protocol.Header, payload []byte) int {
	sent := 0
	for _, o := range r.s.Links() {
		if o.PeerID == servent && o.ID != from {
			if o.send(h, payload) == enqueued {
				sent++
			}
		}
	}
	if sent == 0 {
		var buf [4]routing.LinkID
		for _, id := range r.pushes.Lookup(servent, r.s.now(), buf[:0]) {
			if id == from {
				continue
			}
			if o := r.s.linkByID(id); o != nil && o.send(h, payload) == enqueued {
				sent++
			}
		}
	}
	if sent == 0 {
		r.stats.NoRoute.Add(1)
	} else {
		r.stats.Routed.Add(1)
	}
	return sent
}

// SendPush routes a Push we originate toward the servent that sent a hit.
func (s *Servent) SendPush(p *protocol.Push, ttl uint8) int {
	payload, err := p.AppendTo(nil)
	if err != nil {
		return 0
	}
	id := protocol.NewGUID()
	s.router.dups.Check(id, protocol.TypePush, ttl)
	return s.router.routePush(routing.NoLink, p.ServentID, protocol.Header{ID: id, Type: protocol.TypePush, TTL: ttl}, payload)
}
