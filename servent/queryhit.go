package servent

import (
	"gnutella/protocol"
	"gnutella/routing"
)

// QueryHit: routed back along the query's path (route.go's forwardReply),
// or handed to our searches when the query was ours. Building our own hits
// is answerQuery (query.go).

// hitForwardSize is gtk's forward-size limit for a QueryHit.
const hitForwardSize = 16384

func (r *router) handleQueryHit(l *Link, h protocol.Header, payload []byte) {
	s := r.s
	r.trace(l, h, false)
	if len(payload) < 27 || len(payload) > hitForwardSize || payload[0] == 0 {
		r.stats.DropOther.Add(1)
		return
	}
	now := s.now()
	dst, ok := r.query.Lookup(h.ID, now)
	if !ok {
		r.stats.NoRoute.Add(1)
		return
	}
	var servent protocol.GUID
	copy(servent[:], payload[len(payload)-16:])
	r.pushes.Learn(servent, l.ID, now)
	r.query.Touch(h.ID, now)
	if dst == routing.UDP {
		s.guessRelayHit(h, payload, now) // a GUESS query's: by datagram (guess.go)
		return
	}
	if dst == routing.Local {
		if s.oobProxyHit(h, payload, false) {
			return // a leaf's query we proxy: relayed to the leaf (oobproxy.go)
		}
		// Only hits for our own searches are decoded; the others go on as
		// bytes, so a relayed GGEP bomb costs us nothing.
		r.stats.Handled.Add(1)
		hit, err := protocol.DecodeQueryHit(payload)
		if err != nil {
			r.undecodable(l, h, err)
			return
		}
		s.searches.deliver(h, hit, now)
		return
	}
	r.forwardReply(dst, h, payload)
}
