package servent

import "gnutella/protocol"

// Dispatch: every descriptor a link reads goes to the handler of its type,
// in the file named after it (bye.go, vendor.go, ping.go, pong.go,
// query.go, queryhit.go, push.go, qrp.go). The router's state and
// primitives are in router.go.

// handle is called by a link's reader for every descriptor.
func (s *Servent) handle(l *Link, h protocol.Header, payload []byte) {
	r := s.router
	r.stats.Received.Add(1)
	l.abuse.Received()
	// A leaf never relays: anything from a leaf with hops > 0 is cut (docs/protocol.md §3.9).
	if l.Kind == LinkLeaf && h.Hops > 0 {
		l.Bye(protocol.ByeLeafRelaying, "Leaf node relayed")
		return
	}
	switch h.Type {
	case protocol.TypeBye:
		r.handleBye(l, h, payload)
	case protocol.TypeVendor, protocol.TypeStdVendor:
		r.handleVendor(l, h, payload)
	case protocol.TypePing:
		r.handlePing(l, h, payload)
	case protocol.TypePong:
		r.handlePong(l, h, payload)
	case protocol.TypeQuery:
		r.handleQuery(l, h, payload)
	case protocol.TypeQueryHit:
		r.handleQueryHit(l, h, payload)
	case protocol.TypePush:
		r.handlePush(l, h, payload)
	case protocol.TypeRouteTable:
		r.handleRouteTable(l, h, payload)
	default:
		r.stats.DropBadType.Add(1)
		r.trace(l, h, false)
	}
}

// TraceFunc sees every descriptor a link hands to the router, with whether
// it was a duplicate (Config.Trace).
type TraceFunc func(from *Link, h protocol.Header, dup bool)

func (r *router) trace(l *Link, h protocol.Header, dup bool) {
	if t := r.s.cfg.Trace; t != nil {
		t(l, h, dup)
	}
}
