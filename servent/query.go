package servent

import (
	"unicode/utf8"

	"gnutella/protocol"
	"gnutella/routing"
)

// Query: arrival checks, answering from the Library, delivery to our leaves
// by their QRP tables, and flooding (walkers are in walker.go, gossip in
// gossip.go, a leaf's query run as a dynamic query in dq.go).

// queryForwardSize is gtk's forward-size limit for a Query: a bigger one
// is neither handled nor relayed.
const queryForwardSize = 256

func (r *router) handleQuery(l *Link, h protocol.Header, payload []byte) {
	s := r.s
	if len(payload) > queryForwardSize {
		r.stats.DropOther.Add(1)
		return
	}
	if l.FlowControlled() {
		// our queue to it is full: its hits would have nowhere to go (gtk)
		r.stats.DropOther.Add(1)
		return
	}
	if !r.checkArrival(l, &h) {
		return
	}
	// Duplicates are dropped before anything is decoded: decoding costs
	// (GGEP may be deflated, docs/protocol.md §1.10) and a copy gains
	// nothing. Walkers are the exception: each visit is a Query of TTL 1
	// and a walk may come back here and must go on (walker.go), so they are
	// told apart first, by a scan of the GGEP framing that inflates nothing.
	var q *protocol.Query
	if l.Kind != LinkLeaf && protocol.QueryHasGGEP(payload, routing.WalkerExtension) {
		if q = r.decodeQuery(l, h, payload); q == nil {
			return
		}
		if w, ok := routing.WalkerOf(q); ok {
			r.handleWalker(l, h, q, w)
			return
		}
	}
	dup, higher := r.duplicate(l, h)
	if dup && !higher {
		return
	}
	if q == nil {
		if q = r.decodeQuery(l, h, payload); q == nil {
			return
		}
	}
	if !dup {
		r.query.Add(h.ID, l.ID, s.now())
		r.trace(l, h, false)
		if !acceptableQuery(q) {
			r.stats.DropOther.Add(1)
			return
		}
		r.stats.Handled.Add(1)
		s.answerQuery(l, h, q, 0)
	}
	if s.isLeaf() {
		return // a leaf never relays (docs/protocol.md §3.9)
	}
	leafID := h.ID // the leaf's MUID, for its dynamic query
	if !dup && l.Kind == LinkLeaf {
		// A leaf's query that asks for no out-of-band hits: we ask for
		// them in its place, under a MUID of ours (oobproxy.go).
		if ph, pq, pp, ok := s.oobProxyQuery(l, h, q); ok {
			h, q, payload = ph, pq, pp
		}
	}
	qq := &lazyQRP{q: q}
	out, ok := r.ttl.Forward(h)
	if !dup {
		// Our leaves get it where their table matches, whatever the TTL
		// (docs/protocol.md §3.5); a higher-TTL copy is not sent again.
		toLeaf := out
		if !ok {
			toLeaf = h
			toLeaf.Hops, toLeaf.TTL = min(h.Hops, 254)+1, 1
		}
		r.toLeaves(l, toLeaf, payload, qq)
	}
	if l.Kind == LinkLeaf {
		// A leaf's query: we run it as a dynamic query instead of flooding
		// it with the leaf's TTL (docs/protocol.md §5.4).
		if !dup && s.startLeafDQ(l, leafID, h, q) {
			return
		}
	}
	if !ok {
		r.stats.Expired.Add(1)
		return
	}
	if !l.Caps.DynamicQuerying && out.TTL+out.Hops > s.cfg.MaxTTL {
		// gtk clamps queries from peers without dynamic querying to my_ttl
		if s.cfg.MaxTTL > out.Hops {
			out.TTL = s.cfg.MaxTTL - out.Hops
		}
	}
	if p, ok := routing.GossipProbability(q); ok {
		r.gossip(l, out, payload, p)
		return
	}
	r.flood(l, out, payload, higher, qq)
}

// decodeQuery decodes a Query's payload, or counts and punishes one that
// does not decode (hostiles.go) and returns nil.
func (r *router) decodeQuery(l *Link, h protocol.Header, payload []byte) *protocol.Query {
	q, err := protocol.DecodeQuery(payload)
	if err != nil {
		r.undecodable(l, h, err)
		return nil
	}
	return q
}

// toLeaves sends a query to the leaves whose QRP table matches it (never
// to one that has not sent its table yet), honouring their Hops-Flow.
func (r *router) toLeaves(from *Link, h protocol.Header, payload []byte, qq *lazyQRP) int {
	if !r.s.qrp.hasLeaves() {
		return 0
	}
	var buf [32]*Link
	sent := 0
	for _, o := range r.s.qrp.matchLeaves(qq.get(), buf[:0]) {
		if o == from || o.closing.Load() || !o.wantsQueryHops(h.Hops) {
			continue
		}
		if o.send(h, payload) == enqueued {
			sent++
		}
	}
	if sent > 0 {
		r.stats.Routed.Add(1)
		r.leafDeliveries.Add(uint64(sent))
	}
	return sent
}

// acceptableQuery applies gtk-gnutella's drops (docs/protocol.md §1.8, §3.8): flags 0,
// invalid UTF-8, or a search string that says too little with no URN.
func acceptableQuery(q *protocol.Query) bool {
	if q.Flags == 0 {
		return false
	}
	if !utf8.Valid(q.Search) {
		return false
	}
	if len(q.URNs()) > 0 {
		return true
	}
	useful := 0
	for _, c := range string(q.Search) {
		if c != ' ' && c != '\t' {
			useful++
		}
	}
	return useful >= 2
}

// answerQuery asks the Library and sends our hits back on l.
// walkSteps is the walk's length so far for a walker (0 otherwise): its hits
// need a TTL that lasts the whole way back.
func (s *Servent) answerQuery(l *Link, h protocol.Header, q *protocol.Query, walkSteps uint16) {
	if s.cfg.Library == nil {
		return
	}
	if q.Flags.Has(protocol.QueryFlagMark) && q.Flags.Has(protocol.QueryFlagFirewalled) && s.firewalled() {
		return // firewalled to firewalled cannot transfer
	}
	results := s.cfg.Library.Answer(q, h)
	if len(results) == 0 || s.offerOOB(h, q, results) {
		return // none, or offered by UDP (oob.go)
	}
	ttl := s.router.ttl.ReplyTTL(h.Hops)
	if walkSteps > 0 {
		ttl = uint8(min(int(walkSteps)+6, 255))
	}
	s.ourHits(results, func(hit *protocol.QueryHit) bool {
		_ = l.sendMessage(protocol.Header{ID: h.ID, TTL: ttl}, hit)
		return true
	})
}

// hitRecords is how many records one of our QueryHits carries at most.
const hitRecords = 10

// ourHits builds our QueryHits for results, hitRecords records each, with
// our address, our servent ID and the trailer (firewalled, busy, push
// proxies, Browse Host, TLS), and hands each to emit until it returns false.
// It builds nothing while we have no IPv4 address to put in them. Query
// answers and Browse Host (browse.go) both use it.
func (s *Servent) ourHits(results []protocol.Result, emit func(*protocol.QueryHit) bool) {
	s.buildHits(results, hitRecords, nil, emit)
}

// buildHits is ourHits with per records a hit and extra GGEP in each
// trailer (out-of-band hits, oob.go: smaller datagrams, the "SO" token).
func (s *Servent) buildHits(results []protocol.Result, per int, extra protocol.GGEP, emit func(*protocol.QueryHit) bool) {
	self := s.Addr()
	ip4 := self.Addr().Unmap()
	if !ip4.Is4() {
		return
	}
	trailer := protocol.HitTrailer{Vendor: VendorCode, Push: s.firewalled(), Busy: s.busy()}
	trailer.GGEP = s.pushProxyGGEP()
	if s.servesBrowse() {
		trailer.GGEP = append(trailer.GGEP, protocol.Extension{ID: "BH"})
	}
	if s.cfg.TLS {
		// we accept TLS on our port: a direct download, or the Push that
		// asks for a callback over TLS, can use it (gtk-gnutella's qhit.c)
		trailer.GGEP = append(trailer.GGEP, protocol.Extension{ID: protocol.GGEPTLS})
	}
	trailer.GGEP = append(trailer.GGEP, extra...)
	for start := 0; start < len(results); start += per {
		end := min(start+per, len(results))
		if !emit(protocol.NewQueryHit(ip4.As4(), self.Port(), s.hitSpeed(), results[start:end], trailer, s.id)) {
			return
		}
	}
}

// hitSpeed is the speed our hits announce: Config.HitSpeed's, or 1000
// kbit/s when it is not known.
func (s *Servent) hitSpeed() uint32 {
	if s.cfg.HitSpeed != nil {
		if v := s.cfg.HitSpeed(); v > 0 {
			return v
		}
	}
	return 1000
}

func (s *Servent) busy() bool { return s.cfg.Transfers != nil && s.cfg.Transfers.Busy() }

// OriginateQuery sends a query we start ourselves, with the given GUID and
// TTL, to the given links (every ultrapeer and normal link when to is nil).
// Hits come back through WatchHits and Searches.
func (s *Servent) OriginateQuery(id protocol.GUID, q *protocol.Query, ttl uint8, to []*Link) int {
	return s.sendQuery(id, q, ttl, 0, to)
}

// sendQuery is OriginateQuery with the hop count the query leaves with: 0
// for ours, 1 for a leaf's query we run as a dynamic query (dq.go).
func (s *Servent) sendQuery(id protocol.GUID, q *protocol.Query, ttl, hops uint8, to []*Link) int {
	payload, err := q.AppendTo(nil)
	if err != nil {
		return 0
	}
	r := s.router
	dup, _ := r.dups.Check(id, protocol.TypeQuery, ttl)
	r.query.Add(id, routing.Local, s.now())
	h := protocol.Header{ID: id, Type: protocol.TypeQuery, TTL: ttl, Hops: hops}
	qq := &lazyQRP{q: q}
	leaves := 0
	if !dup && !s.isLeaf() {
		leaves = r.toLeaves(nil, h, payload, qq) // our own leaves, by their tables
	}
	if to == nil {
		return r.flood(nil, h, payload, false, qq) + leaves
	}
	sent := 0
	for _, o := range to {
		if o.send(h, payload) == enqueued {
			sent++
		}
	}
	return sent
}
