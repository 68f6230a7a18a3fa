package servent

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"gnutella/protocol"
	"gnutella/routing"
	"gnutella/servent/hostcache"
)

// GUESS 0.2 (docs/protocol.md §11 "GUESS"; gtk-gnutella's doc/gnutella/GUESS):
// queries over UDP to one ultrapeer at a time, each guarded by a query key.
//
// Server side (an ultrapeer with a UDP socket): a UDP ping carrying "QK" is
// answered with a pong carrying the asker's query key: the first
// guessKeyLen bytes of HMAC-SHA256(secret, IPv4 address ‖ port). The secret
// rotates every guessKeyRotate and the one before stays valid, so a key
// lives between one and two periods (gtk-gnutella: two keys, a day each).
// A UDP query whose "QK" is the key of the address it came from is
// answered: an acknowledging pong (our pong with "GUE", with GUESS hosts
// in "IPP" when the query carries "SCP"), our hits, and the query goes at
// TTL 1 to the leaves whose QRP tables match, their hits relayed to the
// querier by datagram. A query with no key, a wrong key or another
// address's key gets nothing at all. A valid key proves the address (only
// that address was sent it), so replies to it may be larger than the
// query. A key request from an address not yet proven whose pong would be
// larger than its ping gets a bare ping first, as any ping (udp.go).
//
// Client side: routing.GUESS asks searchNet.GUESSHosts for GUESS
// ultrapeers (the host cache's, learnt from "GUE" in pongs and from "IPP"
// in key pongs and acknowledgements) and runs GUESSProbe on each: a key
// request when we hold no key, then the query. The hosts' acks and hits
// come back by datagram, accepted only from the hosts the query went to.

const (
	// guessVersion is the "GUE" byte: major 0, minor 2 in the two nibbles.
	guessVersion = 0x02
	// guessKeyLen is the length of the query keys we give.
	guessKeyLen = 8
	// guessKeyRotate is how often our key secret changes.
	guessKeyRotate = 24 * time.Hour
	// guessKeyLife is how long we keep a key another host gave us.
	guessKeyLife = 12 * time.Hour
	// guessKeyWait is how long a probe waits for a key pong.
	guessKeyWait = 5 * time.Second
	// guessRouteLife is how long the hits of our leaves for a UDP query are
	// relayed, and how long our own GUESS query accepts hits by datagram.
	guessRouteLife = 3 * time.Minute
	// guessMaxRelayed bounds the hits relayed to the querier of one UDP query.
	guessMaxRelayed = 100
	// guessMaxKeyLen bounds the length of a key another host gives us.
	guessMaxKeyLen = 32
	// guessMaxLearnt bounds the IPP entries read from one pong.
	guessMaxLearnt = udpMaxLearnt
)

// GUESSStats counts what GUESS did, in datagrams.
type GUESSStats struct {
	KeysGiven    int64 `json:"keys_given"`    // key pongs sent
	QueriesRead  int64 `json:"queries_read"`  // UDP queries with a valid key
	Refused      int64 `json:"refused"`       // UDP queries with no or a wrong key: no reply at all
	HitsRelayed  int64 `json:"hits_relayed"`  // leaves' hits relayed to a UDP querier
	KeysAsked    int64 `json:"keys_asked"`    // key requests we sent
	KeysLearnt   int64 `json:"keys_learnt"`   // key pongs we read
	Probes       int64 `json:"probes"`        // GUESS queries we sent
	Acks         int64 `json:"acks"`          // acknowledging pongs we read
	HitsReceived int64 `json:"hits_received"` // hits that came back by datagram
}

// guessState is the servent's GUESS side; the zero value is ready.
type guessState struct {
	keysGiven, queriesRead, refused, hitsRelayed      atomic.Int64
	keysAsked, keysLearnt, probes, acks, hitsReceived atomic.Int64
	mu                                                sync.Mutex
	secret, previous                                  [32]byte
	rotated                                           time.Time // zero: no secret yet
	keys                                              map[netip.AddrPort]guessKey
	pending                                           map[protocol.GUID]*guessPing
	queries                                           map[protocol.GUID]*guessQuery
	relays                                            map[protocol.GUID]*guessRelay
	owed                                              map[netip.AddrPort]guessOwed
}

// guessKey is a query key another host gave us. unacked is when a query
// first went out with it since its last ack (zero: none waiting): a key
// whose query got no ack within guessKeyWait is asked for again, since the
// host may have changed its secret.
type guessKey struct {
	key     []byte
	at      time.Time
	unacked time.Time
}

// guessPing is a ping of ours awaiting its pong: a key request (done is
// closed when the key came) or a proof ping for an asker we owe a key.
type guessPing struct {
	to   netip.AddrPort
	at   time.Time
	done chan struct{} // nil for a proof ping
}

// guessQuery is one GUESS query of ours: the hosts it went to.
type guessQuery struct {
	hosts map[netip.AddrPort]bool
	at    time.Time
}

// guessRelay is a UDP query we passed to our leaves: where their hits go.
type guessRelay struct {
	to      netip.AddrPort
	at      time.Time
	relayed int
}

// guessOwed is a key pong we owe an asker that has not proved its address.
type guessOwed struct {
	ping protocol.GUID
	ipp  bool
	at   time.Time
}

// GUESSStats returns the GUESS counters.
func (s *Servent) GUESSStats() GUESSStats {
	g := &s.guess
	return GUESSStats{
		KeysGiven: g.keysGiven.Load(), QueriesRead: g.queriesRead.Load(), Refused: g.refused.Load(),
		HitsRelayed: g.hitsRelayed.Load(), KeysAsked: g.keysAsked.Load(), KeysLearnt: g.keysLearnt.Load(),
		Probes: g.probes.Load(), Acks: g.acks.Load(), HitsReceived: g.hitsReceived.Load(),
	}
}

// servesGUESS says whether we answer GUESS queries: as an ultrapeer with a
// UDP socket.
func (s *Servent) servesGUESS() bool { return s.udp != nil && !s.isLeaf() }

// guessExtension is "GUE" with our version, for our pongs.
func guessExtension() protocol.Extension {
	return protocol.Extension{ID: protocol.GGEPGUESS, Data: []byte{guessVersion}}
}

// noteGUESS records a host that a pong says serves GUESS: an ultrapeer
// whose pong carries "GUE" of a version we speak (major 0).
func (s *Servent) noteGUESS(p *protocol.Pong, addr netip.AddrPort, now time.Time) {
	if d, ok := p.GGEP.Get(protocol.GGEPGUESS); ok && len(d) > 0 && d[0]>>4 == 0 && d[0] != 0 && p.Ultrapeer() {
		if addr.IsValid() && addr.Port() != 0 && addr != s.Addr() {
			s.hosts.SawGUESS(addr, now)
		}
	}
}

// keyFor computes the key of a under secret.
func keyFor(secret *[32]byte, a netip.AddrPort) []byte {
	m := hmac.New(sha256.New, secret[:])
	ip := a.Addr().Unmap().As4()
	m.Write(ip[:])
	m.Write([]byte{byte(a.Port() >> 8), byte(a.Port())})
	return m.Sum(nil)[:guessKeyLen]
}

// rotateLocked makes the secrets current at now.
func (g *guessState) rotateLocked(now time.Time) {
	if g.rotated.IsZero() {
		_, _ = rand.Read(g.secret[:])
		_, _ = rand.Read(g.previous[:])
		g.rotated = now
		return
	}
	if now.Sub(g.rotated) >= 2*guessKeyRotate {
		_, _ = rand.Read(g.previous[:]) // both periods are over: no old key stays valid
		_, _ = rand.Read(g.secret[:])
		g.rotated = now
	} else if now.Sub(g.rotated) >= guessKeyRotate {
		g.previous = g.secret
		_, _ = rand.Read(g.secret[:])
		g.rotated = now
	}
}

// key is the query key we give a.
func (g *guessState) key(a netip.AddrPort, now time.Time) []byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.rotateLocked(now)
	return keyFor(&g.secret, a)
}

// validKey says whether k is the key of a under the current or the
// previous secret.
func (g *guessState) validKey(k []byte, a netip.AddrPort, now time.Time) bool {
	if len(k) != guessKeyLen || !a.Addr().Unmap().Is4() {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.rotateLocked(now)
	return hmac.Equal(k, keyFor(&g.secret, a)) || hmac.Equal(k, keyFor(&g.previous, a))
}

// guessPong is our pong for the GUESS reply id to to: with "GUE", the key
// of to when withKey, and up to udpPackedHosts GUESS ultrapeers in "IPP"
// when ipp (never to itself).
func (s *Servent) guessPong(id protocol.GUID, to netip.AddrPort, withKey, ipp bool, now time.Time) []byte {
	p := s.ownPong()
	if p == nil {
		return nil
	}
	p.GGEP = append(p.GGEP, protocol.Extension{ID: protocol.GGEPUDPHostCache})
	if withKey {
		p.GGEP = append(p.GGEP, protocol.Extension{ID: protocol.GGEPQueryKey, Data: s.guess.key(to, now)})
	}
	if ipp {
		self := s.Addr()
		if addrs := s.hosts.GUESSHosts(udpPackedHosts, func(a netip.AddrPort) bool {
			return a == to || a == self || !a.Addr().Unmap().Is4()
		}); len(addrs) > 0 {
			p.GGEP = append(p.GGEP, protocol.PackedHostsExtension(addrs))
		}
	}
	m := protocol.Message{Header: protocol.Header{ID: id, TTL: 1}, Payload: p}
	b, err := m.AppendTo(nil)
	if err != nil {
		return nil
	}
	return b
}

// handleGUESS takes the datagrams that are GUESS's: key requests (pings
// with "QK") when we serve GUESS, pongs to our key requests, proof pings
// and GUESS queries, every UDP query, and hits for our GUESS queries from
// the hosts they went to. It reports whether it took the datagram.
func (u *udpSide) handleGUESS(h protocol.Header, payload []byte, size int, from netip.AddrPort, now time.Time) bool {
	switch h.Type {
	case protocol.TypePing:
		if !u.s.servesGUESS() || h.ID == u.s.id {
			return false
		}
		p, err := protocol.DecodePing(payload)
		if err != nil || !p.GGEP.Has(protocol.GGEPQueryKey) {
			return false // udp.go answers it (or counts it malformed)
		}
		_, ipp := p.HostsRequest()
		ipp = ipp || p.GGEP.Has(protocol.GGEPGUESS)
		u.giveKey(h.ID, ipp, size, from, now)
		return true
	case protocol.TypePong:
		return u.guessPongIn(h, payload, from, now)
	case protocol.TypeQuery:
		u.guessServe(h, payload, from, now)
		return true
	case protocol.TypeQueryHit:
		return u.guessHitIn(h, payload, from, now)
	}
	return false
}

// giveKey answers a key request: with the key pong when it is no larger
// than the request or the asker proved its address, otherwise with a bare
// proof ping, the key pong following its pong.
func (u *udpSide) giveKey(id protocol.GUID, ipp bool, size int, from netip.AddrPort, now time.Time) {
	s := u.s
	pong := s.guessPong(id, from, true, ipp, now)
	if pong == nil {
		return
	}
	if len(pong) <= size || u.provenOrAwaited(from, now) {
		s.guess.keysGiven.Add(1) // before the send: the answer can beat this goroutine
		if !u.send(from, pong, udpPrioControl) {
			s.guess.keysGiven.Add(-1)
		}
		return
	}
	g := &s.guess
	g.mu.Lock()
	if g.owed == nil {
		g.owed = make(map[netip.AddrPort]guessOwed)
	}
	if o, ok := g.owed[from]; ok && now.Sub(o.at) < udpAwaitLife {
		g.owed[from] = guessOwed{ping: id, ipp: ipp, at: o.at} // one proof at a time
		g.mu.Unlock()
		return
	}
	if len(g.owed) >= udpMaxTracked {
		pruneTimes(g.owed, func(o guessOwed) bool { return now.Sub(o.at) >= udpAwaitLife })
		if len(g.owed) >= udpMaxTracked {
			g.mu.Unlock()
			return
		}
	}
	g.owed[from] = guessOwed{ping: id, ipp: ipp, at: now}
	g.mu.Unlock()
	u.stats.proofs.Add(1) // counted first: the reply to it can race back
	if !u.guessPing(from, &protocol.Ping{}, nil, now) {
		u.stats.proofs.Add(-1)
	}
}

// guessPing sends p to to, remembering its MUID for the pong; done is
// closed when the pong comes (nil for a proof ping).
func (u *udpSide) guessPing(to netip.AddrPort, p *protocol.Ping, done chan struct{}, now time.Time) bool {
	id := protocol.NewGUID()
	m := protocol.Message{Header: protocol.Header{ID: id, TTL: 1}, Payload: p}
	b, err := m.AppendTo(nil)
	if err != nil {
		return false
	}
	g := &u.s.guess
	g.mu.Lock()
	if g.pending == nil {
		g.pending = make(map[protocol.GUID]*guessPing)
	}
	if len(g.pending) >= udpMaxTracked {
		pruneTimes(g.pending, func(e *guessPing) bool { return now.Sub(e.at) >= udpAwaitLife })
		if len(g.pending) >= udpMaxTracked {
			g.mu.Unlock()
			return false
		}
	}
	g.pending[id] = &guessPing{to: to, at: now, done: done}
	g.mu.Unlock()
	return u.send(to, b, udpPrioControl)
}

// guessPongIn takes a pong to a ping of guessPing's or acknowledging a
// GUESS query of ours, from the host it went to.
func (u *udpSide) guessPongIn(h protocol.Header, payload []byte, from netip.AddrPort, now time.Time) bool {
	s := u.s
	g := &s.guess
	g.mu.Lock()
	ping, isPing := g.pending[h.ID]
	if isPing && ping.to == from {
		delete(g.pending, h.ID)
	}
	q, isAck := g.queries[h.ID]
	isAck = isAck && q.hosts[from]
	owed, isOwed := g.owed[from]
	if isPing && ping.to == from && ping.done == nil && isOwed {
		delete(g.owed, from)
	}
	g.mu.Unlock()
	if !(isPing && ping.to == from) && !isAck {
		return false // udp.go's, or unsolicited
	}
	u.mu.Lock()
	u.proveLocked(from, now)
	u.mu.Unlock()
	p, err := protocol.DecodePong(payload)
	if err != nil {
		u.stats.malformed.Add(1)
		if isPing && ping.done != nil {
			close(ping.done)
		}
		return true
	}
	u.stats.pongsRead.Add(1)
	if isPing && ping.done == nil {
		if isOwed && now.Sub(owed.at) < udpAwaitLife {
			if pong := s.guessPong(owed.ping, from, true, owed.ipp, now); pong != nil {
				g.keysGiven.Add(1) // counted first: the reply to it can race back
				if !u.send(from, pong, udpPrioControl) {
					g.keysGiven.Add(-1)
				}
			}
		}
		return true
	}
	s.hosts.SawUDP(from, p.Ultrapeer(), p.UDPHostCache(), now)
	s.noteGUESS(p, from, now)
	if addr := p.AddrPort(); addr != from {
		s.noteGUESS(p, addr, now) // an ack may describe another GUESS host
	}
	if addrs, ok, err := p.PackedHosts(); ok && err == nil {
		for i, a := range addrs {
			if i == guessMaxLearnt {
				break
			}
			if a != s.Addr() && a.Port() != 0 {
				s.hosts.SawGUESS(a, now) // GUESS servers list GUESS hosts
			}
		}
	}
	if k, ok := p.GGEP.Get(protocol.GGEPQueryKey); ok && len(k) > 0 && len(k) <= guessMaxKeyLen {
		g.keysLearnt.Add(1)
		g.mu.Lock()
		if g.keys == nil {
			g.keys = make(map[netip.AddrPort]guessKey)
		}
		if len(g.keys) >= udpMaxTracked {
			pruneTimes(g.keys, func(k guessKey) bool { return now.Sub(k.at) >= guessKeyLife })
		}
		if len(g.keys) < udpMaxTracked {
			g.keys[from] = guessKey{key: append([]byte(nil), k...), at: now}
		}
		g.mu.Unlock()
	}
	if isAck {
		g.acks.Add(1)
		g.mu.Lock()
		if k, ok := g.keys[from]; ok {
			k.unacked = time.Time{}
			g.keys[from] = k
		}
		g.mu.Unlock()
	}
	if isPing && ping.done != nil {
		close(ping.done)
	}
	return true
}

// guessServe answers a UDP query that carries the key of its sender;
// anything else gets nothing.
func (u *udpSide) guessServe(h protocol.Header, payload []byte, from netip.AddrPort, now time.Time) {
	s := u.s
	g := &s.guess
	if !s.servesGUESS() {
		u.stats.unhandled.Add(1)
		return
	}
	q, err := protocol.DecodeQuery(payload)
	if err != nil {
		u.stats.malformed.Add(1)
		return
	}
	ext := q.Extensions.GGEP()
	k, _ := ext.Get(protocol.GGEPQueryKey)
	if !g.validKey(k, from, now) {
		g.refused.Add(1)
		return
	}
	g.queriesRead.Add(1)
	u.mu.Lock()
	u.proveLocked(from, now) // only from was given this key
	u.mu.Unlock()
	if ack := s.guessPong(h.ID, from, false, ext.Has(protocol.GGEPHostsRequest), now); ack != nil {
		u.send(from, ack, udpPrioControl)
	}
	r := s.router
	if !acceptableQuery(q) {
		r.stats.DropOther.Add(1)
		return
	}
	dup, _ := r.dups.Check(h.ID, protocol.TypeQuery, 1)
	r.trace(nil, h, dup)
	if dup {
		return // seen already (another copy, over TCP or UDP)
	}
	r.stats.Handled.Add(1)
	h.Hops, h.TTL = 1, 1
	if s.cfg.Library != nil && !(q.Flags.Has(protocol.QueryFlagMark) && q.Flags.Has(protocol.QueryFlagFirewalled) && s.firewalled()) {
		if results := s.cfg.Library.Answer(q, h); len(results) > 0 {
			s.ourHits(results, func(hit *protocol.QueryHit) bool {
				m := protocol.Message{Header: protocol.Header{ID: h.ID, TTL: 1}, Payload: hit}
				if b, err := m.AppendTo(nil); err == nil {
					u.send(from, b, udpPrioBulk)
				}
				return true
			})
		}
	}
	if !s.qrp.hasLeaves() {
		return
	}
	lq := withoutGUESS(q)
	lp, err := lq.AppendTo(nil)
	if err != nil || len(lp) > queryForwardSize {
		return
	}
	g.mu.Lock()
	if g.relays == nil {
		g.relays = make(map[protocol.GUID]*guessRelay)
	}
	if len(g.relays) >= udpMaxTracked {
		pruneTimes(g.relays, func(e *guessRelay) bool { return now.Sub(e.at) >= guessRouteLife })
	}
	full := len(g.relays) >= udpMaxTracked
	if !full {
		g.relays[h.ID] = &guessRelay{to: from, at: now}
	}
	g.mu.Unlock()
	if full {
		return
	}
	r.query.Add(h.ID, routing.UDP, now)
	r.toLeaves(nil, protocol.Header{ID: h.ID, Type: protocol.TypeQuery, TTL: 1, Hops: 1}, lp, &lazyQRP{q: lq})
}

// withoutGUESS is q without the GGEP keys only the GUESS server reads
// ("QK", "SCP", "Z"), as the spec asks before it goes to leaves.
func withoutGUESS(q *protocol.Query) *protocol.Query {
	c := *q
	c.Extensions = nil
	for _, it := range q.Extensions {
		if len(it.GGEP) == 0 {
			c.Extensions = append(c.Extensions, it)
			continue
		}
		var kept protocol.GGEP
		for _, e := range it.GGEP {
			switch e.ID {
			case protocol.GGEPQueryKey, protocol.GGEPHostsRequest, protocol.GGEPDeflateUDP:
			default:
				kept = append(kept, e)
			}
		}
		if len(kept) > 0 {
			c.Extensions = append(c.Extensions, protocol.GGEPItem(kept))
		}
	}
	return &c
}

// withGUESS is q with key in "QK" and "SCP" (we read GUESS hosts in the
// ack's "IPP"), in q's GGEP block when it has one.
func withGUESS(q *protocol.Query, key []byte) *protocol.Query {
	c := *q
	add := protocol.GGEP{{ID: protocol.GGEPQueryKey, Data: key}, {ID: protocol.GGEPHostsRequest}}
	c.Extensions = append(protocol.ExtensionArea(nil), q.Extensions...)
	for i := range c.Extensions {
		if len(c.Extensions[i].GGEP) > 0 {
			c.Extensions[i].GGEP = append(append(protocol.GGEP(nil), c.Extensions[i].GGEP...), add...)
			return &c
		}
	}
	c.Extensions = append(c.Extensions, protocol.GGEPItem(add))
	return &c
}

// guessRelayHit sends a leaf's hit for a UDP query to its querier
// (queryhit.go routes hits for routing.UDP here).
func (s *Servent) guessRelayHit(h protocol.Header, payload []byte, now time.Time) {
	u := s.udp
	if u == nil {
		return
	}
	g := &s.guess
	g.mu.Lock()
	rl, ok := g.relays[h.ID]
	if ok && (now.Sub(rl.at) >= guessRouteLife || rl.relayed >= guessMaxRelayed) {
		ok = false
	}
	if ok {
		rl.relayed++
	}
	g.mu.Unlock()
	if !ok {
		s.router.stats.NoRoute.Add(1)
		return
	}
	out := protocol.Header{ID: h.ID, TTL: 1, Hops: min(h.Hops, 254) + 1}
	m := protocol.Message{Header: out, Payload: &protocol.Raw{Kind: protocol.TypeQueryHit, Data: payload}}
	b, err := m.AppendTo(nil)
	if err != nil {
		return
	}
	g.hitsRelayed.Add(1) // before the send: the hit can arrive before this goroutine runs again
	s.router.stats.Routed.Add(1)
	if !u.send(rl.to, b, udpPrioBulk) {
		g.hitsRelayed.Add(-1)
		s.router.stats.Routed.Add(^uint64(0))
	}
}

// guessHitIn takes a hit for a GUESS query of ours from a host it went to.
func (u *udpSide) guessHitIn(h protocol.Header, payload []byte, from netip.AddrPort, now time.Time) bool {
	s := u.s
	g := &s.guess
	g.mu.Lock()
	q, ok := g.queries[h.ID]
	ok = ok && q.hosts[from] && now.Sub(q.at) < guessRouteLife
	g.mu.Unlock()
	if !ok {
		return false
	}
	hit, err := protocol.DecodeQueryHit(payload)
	if err != nil {
		u.stats.malformed.Add(1)
		return true
	}
	g.hitsReceived.Add(1)
	if s.searches.tap != nil {
		s.searches.tap(hit)
	}
	if fn, ok := s.searches.watcher(h.ID); ok {
		fn(h, hit, now)
	}
	return true
}

// GUESSLinks implements routing.GUESSNetwork.
func (n *searchNet) GUESSLinks(id protocol.GUID, q *protocol.Query) int {
	if n.s.isLeaf() {
		return n.SendQuery(id, q, 1, []routing.LinkID{}) // registers the search's GUID, sends nothing
	}
	return n.SendQuery(id, q, 1, nil)
}

// GUESSHosts implements routing.GUESSNetwork: GUESS ultrapeers of the host
// cache, never ourselves, and as an ultrapeer never a host we hold a link
// to (it had the query over TCP).
func (n *searchNet) GUESSHosts(k int, skip func(netip.AddrPort) bool) []netip.AddrPort {
	s := n.s
	if s.udp == nil {
		return nil
	}
	self, selfUDP := s.Addr(), s.UDPAddr()
	linked := map[netip.AddrPort]bool{}
	for _, l := range s.Links() {
		if s.isLeaf() {
			break
		}
		linked[hostcache.Canon(l.Remote)] = true
		if l.Listen.IsValid() {
			linked[hostcache.Canon(l.Listen)] = true
		}
	}
	return s.hosts.GUESSHosts(k, func(a netip.AddrPort) bool {
		return a == self || a == selfUDP || linked[a] || skip != nil && skip(a)
	})
}

// GUESSProbe implements routing.GUESSNetwork.
func (n *searchNet) GUESSProbe(ctx context.Context, id protocol.GUID, search *routing.Search, host netip.AddrPort) bool {
	s := n.s
	u := s.udp
	if u == nil {
		return false
	}
	key, ok := s.guess.heldKey(host, s.now())
	if !ok {
		if key, ok = u.askKey(ctx, host); !ok {
			return false
		}
	}
	m := protocol.Message{Header: protocol.Header{ID: id, TTL: 1}, Payload: withGUESS(search.Query, key)}
	b, err := m.AppendTo(nil)
	if err != nil {
		return false
	}
	now := s.now()
	g := &s.guess
	g.mu.Lock()
	if g.queries == nil {
		g.queries = make(map[protocol.GUID]*guessQuery)
	}
	q := g.queries[id]
	if q == nil {
		if len(g.queries) >= udpMaxTracked {
			pruneTimes(g.queries, func(e *guessQuery) bool { return now.Sub(e.at) >= guessRouteLife })
		}
		q = &guessQuery{hosts: map[netip.AddrPort]bool{}}
		g.queries[id] = q
	}
	q.hosts[host] = true
	q.at = now
	g.mu.Unlock()
	if !u.send(host, b, udpPrioBulk) {
		return false
	}
	g.sentWith(host, now)
	g.probes.Add(1)
	return true
}

// heldKey is the key host gave us, if we hold a fresh one.
func (g *guessState) heldKey(host netip.AddrPort, now time.Time) ([]byte, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	k, ok := g.keys[host]
	if !ok || now.Sub(k.at) >= guessKeyLife || !k.unacked.IsZero() && now.Sub(k.unacked) >= guessKeyWait {
		return nil, false
	}
	return k.key, true
}

// sentWith notes that a query went to host with its key.
func (g *guessState) sentWith(host netip.AddrPort, now time.Time) {
	g.mu.Lock()
	if k, ok := g.keys[host]; ok && k.unacked.IsZero() {
		k.unacked = now
		g.keys[host] = k
	}
	g.mu.Unlock()
}

// askKey sends host a key request and waits for its key, until ctx ends
// or guessKeyWait passes.
func (u *udpSide) askKey(ctx context.Context, host netip.AddrPort) ([]byte, bool) {
	s := u.s
	p := &protocol.Ping{GGEP: protocol.GGEP{{ID: protocol.GGEPQueryKey}}}
	if !s.isLeaf() {
		// an ultrapeer introduces itself: "GUE" with our version and UDP
		// port (little-endian), and asks for GUESS hosts
		port := s.UDPAddr().Port()
		p.GGEP = append(p.GGEP, protocol.Extension{ID: protocol.GGEPGUESS, Data: []byte{guessVersion, byte(port), byte(port >> 8)}})
	}
	p.GGEP = append(p.GGEP, protocol.Extension{ID: protocol.GGEPHostsRequest, Data: []byte{0}})
	done := make(chan struct{})
	if !u.guessPing(host, p, done, s.now()) {
		return nil, false
	}
	s.guess.keysAsked.Add(1)
	t := time.NewTimer(guessKeyWait)
	defer t.Stop()
	select {
	case <-done:
	case <-ctx.Done():
		return nil, false
	case <-t.C:
		return nil, false
	case <-s.ctx.Done():
		return nil, false
	}
	return s.guess.heldKey(host, s.now())
}

// AskQueryKey asks the GUESS ultrapeer to for our query key, as a search
// does before its first query there, and reports whether one came (until
// ctx ends or the key request times out). The key pong also marks to as a
// GUESS host and adds the GUESS hosts its "IPP" lists: testnets use it to
// introduce servents to each other.
func (s *Servent) AskQueryKey(ctx context.Context, to netip.AddrPort) bool {
	if s.udp == nil {
		return false
	}
	_, ok := s.udp.askKey(ctx, to)
	return ok
}
