package servent

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"gnutella/protocol"
	"gnutella/routing"
	"gnutella/servent/hostcache"
)

// router applies the routing rules of §3 to every descriptor a link reads:
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

// Forward-size limits (gtk): bigger messages are neither handled nor relayed.
const (
	queryForwardSize = 256
	hitForwardSize   = 16384
)

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

// QRPStats counts queries sent to leaves (each one passed the leaf's QRP
// table) and last-hop queries an ultrapeer's table saved.
func (s *Servent) QRPStats() (leafDeliveries, lastHopSaved uint64) {
	return s.router.leafDeliveries.Load(), s.router.lastHopSaved.Load()
}

// handle is called by a link's reader for every descriptor.
func (s *Servent) handle(l *Link, h protocol.Header, payload []byte) {
	r := s.router
	r.stats.Received.Add(1)
	l.abuse.Received()
	// A leaf never relays: anything from a leaf with hops > 0 is cut (§3.9).
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

func (r *router) trace(l *Link, h protocol.Header, dup bool) {
	if t := r.s.cfg.Hooks.Trace; t != nil {
		t(l, h, dup)
	}
}

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

func (r *router) handleBye(l *Link, h protocol.Header, payload []byte) {
	r.trace(l, h, false)
	if h.Hops != 0 || h.TTL > 1 {
		r.stats.DropOther.Add(1) // a Bye is never relayed: discard
		return
	}
	if b, err := protocol.DecodeBye(payload); err == nil {
		l.byeCode.CompareAndSwap(0, uint32(b.Code))
		l.log.Debug().Int("code", int(b.Code)).Str("reason", b.Reason()).Msg("peer said bye")
	}
	l.close(nil)
}

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
		if !l.lastPing.IsZero() && now.Sub(l.lastPing) < throttle {
			r.stats.DropOther.Add(1)
			return
		}
		l.lastPing = now
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

func (r *router) handlePong(l *Link, h protocol.Header, payload []byte) {
	s := r.s
	r.trace(l, h, false)
	p, err := protocol.DecodePong(payload)
	if err != nil {
		r.stats.DropOther.Add(1)
		return
	}
	now := s.now()
	if h.Hops == 0 {
		l.aliveAnswered(h.ID)
	}
	addr := p.AddrPort()
	if addr != s.Addr() && addr.Port() != 0 {
		if s.hosts.Add(addr, p.Ultrapeer(), hostcache.SourcePong, now) && s.cfg.PongCaching {
			s.pongs.add(p, payload, h.Hops, l.ID, now)
		}
	}
	dst, ok := r.pings.Lookup(h.ID, now)
	switch {
	case !ok:
		if h.Hops > 0 && !s.cfg.PongCaching {
			r.stats.NoRoute.Add(1)
		}
	case dst == routing.Local:
		r.stats.Handled.Add(1)
	default:
		r.forwardReply(dst, h, payload)
	}
}

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
	q, err := protocol.DecodeQuery(payload)
	if err != nil {
		r.stats.DropOther.Add(1)
		return
	}
	if w, ok := routing.WalkerOf(q); ok && l.Kind != LinkLeaf {
		r.handleWalker(l, h, q, w)
		return
	}
	dup, higher := r.duplicate(l, h)
	if dup && !higher {
		return
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
		return // a leaf never relays (§3.9)
	}
	qq := &lazyQRP{q: q}
	out, ok := r.ttl.Forward(h)
	if !dup {
		// Our leaves get it where their table matches, whatever the TTL
		// (§3.5); a higher-TTL copy is not sent again.
		toLeaf := out
		if !ok {
			toLeaf = h
			toLeaf.Hops, toLeaf.TTL = min(h.Hops, 254)+1, 1
		}
		r.toLeaves(l, toLeaf, payload, qq)
	}
	if l.Kind == LinkLeaf {
		// A leaf's query: we run it as a dynamic query instead of flooding
		// it with the leaf's TTL (§5.4).
		if !dup && s.startLeafDQ(l, h, q) {
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

// toLeaves sends a query to the leaves whose QRP table matches it (never
// to one that has not sent its table yet), honouring their Hops-Flow.
func (r *router) toLeaves(from *Link, h protocol.Header, payload []byte, qq *lazyQRP) int {
	if !r.s.qrp.hasLeaves() {
		return 0
	}
	var buf [32]*Link
	sent := 0
	for _, o := range r.s.qrp.matchLeaves(qq.get(), buf[:0]) {
		if o == from || o.closing.Load() || uint32(h.Hops) >= o.hopsFlow.Load() {
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

// handleWalker handles one step of a random walk: answer the first visit,
// then pass the walker on to one random walker-capable neighbour (not
// straight back), after asking the originator every CheckEvery steps when
// the walker is a checking one.
func (r *router) handleWalker(l *Link, h protocol.Header, q *protocol.Query, w routing.Walker) {
	s := r.s
	dup, _ := r.dups.Check(h.ID, protocol.TypeQuery, 1)
	r.trace(l, h, dup)
	if !dup {
		r.walkers.Check(h.ID, protocol.TypeQuery, 0)
		r.query.Add(h.ID, l.ID, s.now())
		if acceptableQuery(q) {
			r.stats.Handled.Add(1)
			s.answerQuery(l, h, q, w.Steps)
			if !s.isLeaf() {
				// An ultrapeer and its leaves act as one unit: the walker's
				// visit covers the leaves whose table matches.
				if payload, err := q.AppendTo(nil); err == nil {
					r.toLeaves(l, protocol.Header{ID: h.ID, Type: protocol.TypeQuery, TTL: 1, Hops: 1}, payload, &lazyQRP{q: q})
				}
			}
		}
	}
	if s.isLeaf() {
		return // leaves answer walkers but never pass them on
	}
	if w.Left == 0 || r.stopped.Seen(h.ID, protocol.TypeQuery) {
		r.stats.Expired.Add(1)
		return
	}
	next := routing.Walker{Num: w.Num, Left: w.Left - 1, Steps: w.Steps + 1, Check: w.Check, Origin: w.Origin}
	forward := func() {
		var cands [64]routing.LinkID
		c := cands[:0]
		for _, o := range s.Links() {
			if o.Caps.RandomWalk && o.Kind != LinkLeaf && !o.closing.Load() {
				c = append(c, o.ID)
			}
		}
		r.rngMu.Lock()
		to, ok := routing.NextWalkerHop(r.rng, c, l.ID)
		r.rngMu.Unlock()
		if !ok {
			return
		}
		o := s.linkByID(to)
		if o == nil {
			return
		}
		payload, err := routing.WithWalker(q, next).AppendTo(nil)
		if err != nil {
			return
		}
		if o.send(protocol.Header{ID: h.ID, Type: protocol.TypeQuery, TTL: 1}, payload) == enqueued {
			r.stats.Routed.Add(1)
		}
	}
	if !w.Check || !w.Origin.IsValid() || w.Steps%routing.CheckEvery != 0 {
		forward()
		return
	}
	select {
	case r.checking <- struct{}{}:
	default:
		forward() // too many checks in flight: go on without asking
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() { <-r.checking }()
		if s.walkCheck(s.ctx, w.Origin, h.ID) {
			r.stopped.Check(h.ID, protocol.TypeQuery, 0)
			r.stats.Expired.Add(1)
			return
		}
		forward()
	}()
}

// acceptableQuery applies gtk-gnutella's drops (§1.8, §3.8): flags 0,
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

// answerQuery asks the library (Hooks.Answer) and sends our hits back on l.
// walkSteps is the walk's length so far for a walker (0 otherwise): its hits
// need a TTL that lasts the whole way back.
func (s *Servent) answerQuery(l *Link, h protocol.Header, q *protocol.Query, walkSteps uint16) {
	if s.cfg.Hooks.Answer == nil {
		return
	}
	if q.Flags.Has(protocol.QueryFlagMark) && q.Flags.Has(protocol.QueryFlagFirewalled) && s.firewalled() {
		return // firewalled to firewalled cannot transfer
	}
	results := s.cfg.Hooks.Answer(q, h)
	if len(results) == 0 {
		return
	}
	self := s.Addr()
	ip4 := self.Addr().Unmap()
	if !ip4.Is4() {
		return
	}
	trailer := protocol.HitTrailer{Vendor: VendorCode, Push: s.firewalled(), Busy: s.busy()}
	if fn := s.cfg.Hooks.HitTrailer; fn != nil {
		trailer.GGEP = fn()
	}
	ttl := s.router.ttl.ReplyTTL(h.Hops)
	if walkSteps > 0 {
		ttl = uint8(min(int(walkSteps)+6, 255))
	}
	for start := 0; start < len(results); start += 10 {
		end := min(start+10, len(results))
		hit := protocol.NewQueryHit(ip4.As4(), self.Port(), 1000, results[start:end], trailer, s.id)
		_ = l.sendMessage(protocol.Header{ID: h.ID, TTL: ttl}, hit)
	}
}

func (s *Servent) firewalled() bool {
	return s.cfg.Hooks.Firewalled != nil && s.cfg.Hooks.Firewalled()
}

func (s *Servent) busy() bool { return s.cfg.Hooks.Busy != nil && s.cfg.Hooks.Busy() }

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
	if dst == routing.Local {
		r.stats.Handled.Add(1)
		hit, err := protocol.DecodeQueryHit(payload)
		if err != nil {
			r.stats.DropOther.Add(1)
			return
		}
		if fn := s.cfg.Hooks.QueryHit; fn != nil {
			fn(h, hit, l)
		}
		s.searches.deliver(h, hit, l)
		return
	}
	r.forwardReply(dst, h, payload)
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

// flood sends a message to every link but from. Leaves get nothing here:
// queries reach leaves only through their QRP tables (toLeaves). For the
// last hop (TTL 1) an ultrapeer that sent us its table gets a query only
// when the table matches qq (§3.5). A leaf relays nothing.
func (r *router) flood(from *Link, h protocol.Header, payload []byte, ultrapeersOnly bool, qq *lazyQRP) int {
	if from != nil && r.s.isLeaf() {
		return 0
	}
	sent := 0
	for _, o := range r.s.Links() {
		if o == from || o.Kind == LinkLeaf || o.closing.Load() {
			continue
		}
		if h.Type == protocol.TypeQuery && uint32(h.Hops) >= o.hopsFlow.Load() {
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

// sendOwnPong answers a ping with our own pong, when we are reachable (or
// always for the handshake ping, as gtk-gnutella does).
func (s *Servent) sendOwnPong(l *Link, h protocol.Header, always bool) {
	if !always && s.firewalled() {
		return
	}
	p := s.ownPong()
	if p == nil {
		return
	}
	if !l.Caps.GGEP {
		p.GGEP = nil
	}
	_ = l.sendMessage(protocol.Header{ID: h.ID, TTL: s.router.ttl.PongTTL(h.Hops)}, p)
}

// ownPong describes us: address, shared files, and (GGEP) ultrapeer slots,
// uptime and vendor.
func (s *Servent) ownPong() *protocol.Pong {
	self := s.Addr()
	a := self.Addr().Unmap()
	if !a.Is4() {
		return nil
	}
	var files, kb uint32
	if fn := s.cfg.Hooks.ShareStats; fn != nil {
		files, kb = fn()
	}
	ultra := !s.isLeaf()
	p := &protocol.Pong{Port: self.Port(), IP: a.As4(), Files: files, KB: protocol.UltrapeerKB(kb, ultra)}
	uptime := uint32(min(s.now().Sub(s.started).Seconds(), protocol.MaxDailyUptime))
	p.GGEP = protocol.GGEP{
		protocol.DailyUptimeExtension(uptime),
		protocol.VendorVersion{Vendor: VendorCode, Version: 1}.Extension(),
	}
	if ultra {
		s.mu.Lock()
		leaves, peers := 0, 0
		for _, o := range s.links {
			if o.Kind == LinkLeaf {
				leaves++
			} else {
				peers++
			}
		}
		s.mu.Unlock()
		freeLeaves := max(s.cfg.MaxLeaves-leaves, 0)
		freeUP := max(s.cfg.MaxLinks-peers, 0)
		p.GGEP = append(p.GGEP, protocol.UltrapeerInfo{
			Version: 2, FreeLeafSlots: uint8(min(freeLeaves, 255)), FreeUltrapeerSlots: uint8(min(freeUP, 255)),
		}.Extension())
	}
	return p
}

// OriginateQuery sends a query we start ourselves, with the given GUID and
// TTL, to the given links (every ultrapeer and normal link when to is nil).
// Hits come back through Hooks.QueryHit and Searches.
func (s *Servent) OriginateQuery(id protocol.GUID, q *protocol.Query, ttl uint8, to []*Link) int {
	payload, err := q.AppendTo(nil)
	if err != nil {
		return 0
	}
	r := s.router
	dup, _ := r.dups.Check(id, protocol.TypeQuery, ttl)
	r.query.Add(id, routing.Local, s.now())
	h := protocol.Header{ID: id, Type: protocol.TypeQuery, TTL: ttl}
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

// PingNetwork sends our own ping with the given TTL to every ultrapeer and
// normal link; the pongs come back to us (0.4 mode floods it).
func (s *Servent) PingNetwork(ttl uint8) protocol.GUID {
	id := protocol.NewGUID()
	s.router.dups.Check(id, protocol.TypePing, ttl)
	s.router.pings.Add(id, routing.Local, s.now())
	s.router.flood(nil, protocol.Header{ID: id, Type: protocol.TypePing, TTL: ttl}, nil, false, nil)
	return id
}
