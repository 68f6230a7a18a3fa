package servent

import (
	"gnutella/protocol"
	"gnutella/routing"
)

// Ping: answered from the pong cache (0.6, see pong.go and pongcache.go), or
// flooded with its pongs routed back (0.4). Alive pings (TTL 1, hops 0) are
// answered with our own pong; TTL 0 is gtk-gnutella's alive acknowledgement.

func (r *router) handlePing(l *Link, h protocol.Header, payload []byte) {
	s := r.s
	if h.TTL == 0 {
		r.trace(l, h, false) // gtk: an "alive" acknowledgement, no Pong
		return
	}
	if _, err := protocol.DecodePing(payload); err != nil {
		r.stats.DropOther.Add(1)
		return
	}
	if h.Hops == 0 && h.TTL == 1 {
		// the handshake / alive ping: always answered with our own pong
		r.trace(l, h, false)
		r.stats.Handled.Add(1)
		s.sendOwnPong(l, h, true)
		return
	}
	if !r.fresh(l, h) {
		return
	}
	r.stats.Handled.Add(1)
	if s.cfg.PongCaching {
		now := s.now()
		throttle := s.cfg.PingThrottle
		if !l.DeflateIn {
			throttle *= 2
		}
		if l.Kind == LinkLeaf {
			throttle = 20 * s.cfg.PingThrottle
		}
		if l.lastPing != 0 && now.UnixNano()-l.lastPing < int64(throttle) {
			r.stats.DropOther.Add(1)
			return
		}
		l.lastPing = now.UnixNano()
		s.sendOwnPong(l, h, false)
		if !s.isLeaf() {
			s.pongs.answer(l, h) // leaves answer with their own pong only
		}
		return
	}
	// 0.4: flood the ping and route the pongs back.
	r.pings.Add(h.ID, l.ID, s.now())
	s.sendOwnPong(l, h, false)
	if out, ok := r.ttl.Forward(h); ok {
		r.flood(l, out, payload, false, nil)
	} else {
		r.stats.Expired.Add(1)
	}
}

// PingNetwork sends our own ping with the given TTL to every ultrapeer and
// normal link; the pongs come back to us (0.4 mode floods it).
func (s *Servent) PingNetwork(ttl uint8) protocol.GUID {
	id := protocol.NewGUID()
	s.router.dups.Check(id, protocol.TypePing, ttl)
	s.router.pings.Add(id, routing.Local, s.now())
	s.router.flood(nil, protocol.Header{ID: id, Type: protocol.TypePing, TTL: ttl}, nil, false, nil)
	return id
}
