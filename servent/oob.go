package servent

import (
	"bytes"
	"crypto/rand"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"gnutella/firewall"
	"gnutella/protocol"
	"gnutella/routing"
	"gnutella/servent/hostcache"
)

// Out-of-band query hits (docs/protocol.md §11.6, gtk-gnutella's oob.c).
//
// As the responder: a query marked OOB (flag 0x0400) that reached us over
// at least one hop and whose MUID names an IPv4 address gets no hits on
// the reverse path. We keep the results for oobLife and send the address
// the MUID names a LIME/12 "reply number" (how many, and whether we take
// unsolicited UDP); only when a LIME/11 ack for that MUID comes back from
// that same IP do the hits go, by UDP to the ack's source, on the bulk
// band, at most the number acked. A MUID naming a host that never asked
// (a spoofed return address) therefore gets one LIME/12, never hits, and
// that LIME/12 is no larger than the query unless the address proved
// itself (the no-amplification rule of §11.4); when it would be, and when
// the table of offers is full, the hits go back over TCP as usual.
//
// As the querier: with Config.OOB, our searches' MUIDs name our address
// and their queries carry the flag and an empty GGEP "SO" (secure OOB). A
// LIME/12 for a search still running is acked with LIME/11 asking for what
// the search still wants; hits by UDP are taken only from the address we
// acked, only for the MUID we acked, only up to the number acked, and,
// when our ack carried a token, only with that token in their trailer.
// Everything else is dropped and counted.

const (
	// oobLife is how long an offer waits for its ack, and a claim of ours
	// for its hits (gtk-gnutella waits about 30 s for a claim's hits).
	oobLife = 30 * time.Second
	// oobMaxOffers bounds the offers awaiting an ack; oobMaxOffersPerAddr
	// bounds those for one reply address, so one (perhaps spoofed) address
	// cannot take the table.
	oobMaxOffers        = 256
	oobMaxOffersPerAddr = 8
	// oobMaxClaims bounds the acks of ours awaiting their hits.
	oobMaxClaims = 1024
	// oobHitRecords is how many records one out-of-band QueryHit carries:
	// fewer than over TCP, to keep each datagram small (gtk-gnutella
	// flushes its UDP hits past 645 bytes).
	oobHitRecords = 5
	// oobTokenLen is the length of the secure-OOB tokens we hand out.
	oobTokenLen = 8
)

// OOBStats counts the out-of-band side of UDP.
type OOBStats struct {
	// As the responder.
	Offers    int64 `json:"offers"`     // LIME/12 sent for queries we hold hits for
	ViaTCP    int64 `json:"via_tcp"`    // OOB queries answered over TCP instead (LIME/12 too large for an unproven address, or the table full)
	AcksRead  int64 `json:"acks_read"`  // LIME/11 that claimed an offer
	Spurious  int64 `json:"spurious"`   // LIME/11 for no offer, an expired one, or from another address
	HitsSent  int64 `json:"hits_sent"`  // QueryHit datagrams sent
	Expired   int64 `json:"expired"`    // offers never claimed
	BadReturn int64 `json:"bad_return"` // OOB queries whose MUID names no usable address, or ourselves
	// As the querier.
	Indications int64 `json:"indications"`  // LIME/12 read for a search of ours
	Unwanted    int64 `json:"unwanted"`     // LIME/12 for no running search, or one that wants no more
	AcksSent    int64 `json:"acks_sent"`    // LIME/11 sent
	HitsRead    int64 `json:"hits_read"`    // QueryHit datagrams taken into a search, or relayed to a proxied leaf
	ResultsRead int64 `json:"results_read"` // their records
	HitsDropped int64 `json:"hits_dropped"` // QueryHit datagrams refused: unclaimed, wrong address, over the count, wrong token
	// As an ultrapeer OOB-proxying its leaves' queries (oobproxy.go); the
	// offers, acks and hits of proxied queries count above as well.
	Proxied      int64 `json:"proxied"`        // leaves' queries sent on under a mangled MUID
	ProxyRefused int64 `json:"proxy_refused"`  // leaves' queries not proxied: MUID collision or the table full
	ProxyExpired int64 `json:"proxy_expired"`  // proxied queries forgotten after oobProxyLife unused
	ProxyHitsUDP int64 `json:"proxy_hits_udp"` // QueryHits for a proxied query that came by UDP
	ProxyHitsTCP int64 `json:"proxy_hits_tcp"` // ... and over TCP
	ProxyResults int64 `json:"proxy_results"`  // records relayed to the leaves, under their own MUIDs
	ProxyLost    int64 `json:"proxy_lost"`     // QueryHits for a proxied query whose leaf is gone
}

type oobStats struct {
	offers, viaTCP, acksRead, spurious, hitsSent, expired, badReturn atomic.Int64
	indications, unwanted, acksSent, hitsRead, resultsRead           atomic.Int64
	hitsDropped                                                      atomic.Int64
	proxied, proxyRefused, proxyExpired, proxyHitsUDP, proxyHitsTCP  atomic.Int64
	proxyResults, proxyLost                                          atomic.Int64
}

// oobOffer is hits we hold for a querier until it acks.
type oobOffer struct {
	to      netip.AddrPort // the address the MUID names
	results []protocol.Result
	at      time.Time
}

type oobClaimKey struct {
	id   protocol.GUID
	from netip.AddrPort
}

// oobClaim is an ack of ours awaiting its hits.
type oobClaim struct {
	left  int    // records still accepted
	token []byte // nil: the ack carried none
	at    time.Time
}

// oobState is the out-of-band tables of a udpSide; its zero value is
// ready.
type oobState struct {
	stats   oobStats
	mu      sync.Mutex
	offers  map[protocol.GUID]*oobOffer
	perAddr map[netip.Addr]int
	claims  map[oobClaimKey]*oobClaim
	proxied map[protocol.GUID]*oobProxied // by mangled MUID (oobproxy.go)
}

func (o *oobState) snapshot() OOBStats {
	st := &o.stats
	return OOBStats{
		Offers: st.offers.Load(), ViaTCP: st.viaTCP.Load(), AcksRead: st.acksRead.Load(),
		Spurious: st.spurious.Load(), HitsSent: st.hitsSent.Load(), Expired: st.expired.Load(),
		BadReturn: st.badReturn.Load(), Indications: st.indications.Load(), Unwanted: st.unwanted.Load(),
		AcksSent: st.acksSent.Load(), HitsRead: st.hitsRead.Load(), ResultsRead: st.resultsRead.Load(),
		HitsDropped: st.hitsDropped.Load(),
		Proxied:     st.proxied.Load(), ProxyRefused: st.proxyRefused.Load(), ProxyExpired: st.proxyExpired.Load(),
		ProxyHitsUDP: st.proxyHitsUDP.Load(), ProxyHitsTCP: st.proxyHitsTCP.Load(),
		ProxyResults: st.proxyResults.Load(), ProxyLost: st.proxyLost.Load(),
	}
}

// pruneLocked drops the offers and claims older than oobLife.
func (o *oobState) pruneLocked(now time.Time) {
	for id, f := range o.offers {
		if now.Sub(f.at) >= oobLife {
			o.removeOfferLocked(id, f)
			o.stats.expired.Add(1)
		}
	}
	for k, c := range o.claims {
		if now.Sub(c.at) >= oobLife {
			delete(o.claims, k)
		}
	}
}

func (o *oobState) removeOfferLocked(id protocol.GUID, f *oobOffer) {
	delete(o.offers, id)
	if n := o.perAddr[f.to.Addr()]; n > 1 {
		o.perAddr[f.to.Addr()] = n - 1
	} else {
		delete(o.perAddr, f.to.Addr())
	}
}

// offerOOB is the responder's side of a query we have results for: it
// reports true when the hits are offered by UDP (LIME/12 queued) and must
// not go back over TCP.
func (s *Servent) offerOOB(h protocol.Header, q *protocol.Query, results []protocol.Result) bool {
	u := s.udp
	if u == nil || !q.Flags.Has(protocol.QueryFlagMark|protocol.QueryFlagOOB) || h.Hops == 0 {
		return false // no UDP, not OOB, or straight from the querier: its link is better (out-of-band §G)
	}
	to := hostcache.Canon(h.ID.OOBAddrPort())
	ip := to.Addr()
	if _, bad := s.hostiles.Banned(ip); bad {
		u.oob.stats.badReturn.Add(1)
		return true // gtk-gnutella drops a query with a hostile return address
	}
	// The address policy of our dials: no loopback or private address
	// unless configured (a remote querier must not aim our datagrams at
	// our own host or LAN), never multicast, broadcast or port 0.
	policy := firewall.AddrPolicy{AllowLoopback: s.cfg.AllowLoopback, AllowPrivate: s.cfg.AllowPrivate}
	if !ip.Is4() || policy.Check(to) != nil || to == s.Addr() {
		u.oob.stats.badReturn.Add(1)
		return false // answered over TCP (gtk-gnutella clears the flag)
	}
	ind := protocol.NewOOBReplyIndication(protocol.OOBReplyIndication{
		Hits: uint8(min(len(results), 255)), Unsolicited: !s.firewalled(), Secure: hasSecureOOB(q),
	})
	msg, err := (&protocol.Message{Header: protocol.Header{ID: h.ID, TTL: 1}, Payload: ind}).AppendTo(nil)
	if err != nil {
		return false
	}
	now := s.now()
	if len(msg) > protocol.HeaderLen+int(h.Length) && !u.provenOrAwaited(to, now) {
		u.oob.stats.viaTCP.Add(1) // a LIME/12 larger than the query, to a stranger: no
		return false
	}
	o := &u.oob
	o.mu.Lock()
	if o.offers == nil {
		o.offers = map[protocol.GUID]*oobOffer{}
		o.perAddr = map[netip.Addr]int{}
	}
	if _, dup := o.offers[h.ID]; dup {
		o.mu.Unlock()
		return true // the same query again (a higher-TTL copy): already offered
	}
	o.pruneLocked(now) // at most oobMaxOffers+oobMaxClaims entries: cheap, and keeps "expired" exact
	if len(o.offers) >= oobMaxOffers || o.perAddr[ip] >= oobMaxOffersPerAddr {
		o.mu.Unlock()
		o.stats.viaTCP.Add(1)
		return false
	}
	o.offers[h.ID] = &oobOffer{to: to, results: results, at: now}
	o.perAddr[ip]++
	o.mu.Unlock()
	// Counted before the send: the ack and the hits can come back before
	// this goroutine runs again.
	o.stats.offers.Add(1)
	if !u.send(to, msg, udpPrioControl) {
		o.stats.offers.Add(-1)
	}
	return true
}

func hasSecureOOB(q *protocol.Query) bool { return q.Extensions.GGEP().Has(protocol.GGEPSecureOOB) }

// handleOOB takes the datagrams of out-of-band hits: LIME/11 and LIME/12
// vendor messages and QueryHits. Other vendor messages are not handled
// over UDP.
func (u *udpSide) handleOOB(h protocol.Header, payload []byte, from netip.AddrPort, now time.Time) {
	if h.Type == protocol.TypeQueryHit {
		u.oobHit(h, payload, from, now)
		return
	}
	v, err := protocol.DecodeVendor(h.Type, payload)
	if err != nil {
		u.stats.malformed.Add(1)
		return
	}
	switch {
	case v.Is(protocol.OOBReplyAckID):
		want, token, err := v.OOBReplyAck()
		if err != nil {
			u.stats.malformed.Add(1)
			return
		}
		u.oobAck(h.ID, want, token, from, now)
	case v.Is(protocol.OOBReplyIndicationID):
		ind, err := v.OOBReplyIndication()
		if err != nil {
			u.stats.malformed.Add(1)
			return
		}
		u.oobIndication(h.ID, ind, from, now)
	default:
		u.stats.unhandled.Add(1)
	}
}

// oobAck is a querier's LIME/11 claiming the hits we offered for id: they
// go to from when it has the IP the query's MUID named.
func (u *udpSide) oobAck(id protocol.GUID, want uint8, token []byte, from netip.AddrPort, now time.Time) {
	o := &u.oob
	o.mu.Lock()
	f := o.offers[id]
	if f == nil || now.Sub(f.at) >= oobLife || f.to.Addr() != from.Addr() {
		o.mu.Unlock()
		o.stats.spurious.Add(1) // kept for its rightful owner, if any
		return
	}
	o.removeOfferLocked(id, f)
	o.mu.Unlock()
	o.stats.acksRead.Add(1)
	n := len(f.results)
	if want != 255 {
		n = min(n, int(want))
	}
	if n == 0 {
		return
	}
	var extra protocol.GGEP
	if len(token) > 0 {
		extra = protocol.GGEP{{ID: protocol.GGEPSecureOOB, Data: bytes.Clone(token)}}
	}
	u.s.buildHits(f.results[:n], oobHitRecords, extra, func(hit *protocol.QueryHit) bool {
		b, err := (&protocol.Message{Header: protocol.Header{ID: id, TTL: 1}, Payload: hit}).AppendTo(nil)
		if err != nil || len(b) > maxUDPDatagram {
			return true
		}
		o.stats.hitsSent.Add(1) // before the send, as offers above
		if !u.send(from, b, udpPrioBulk) {
			o.stats.hitsSent.Add(-1)
		}
		return true
	})
}

// oobQuerier is our reply address for out-of-band hits, when our
// searches ask for them.
func (s *Servent) oobQuerier() (netip.AddrPort, bool) {
	if !s.cfg.OOB {
		return netip.AddrPort{}, false
	}
	return s.oobReplyAddr()
}

// oobReplyAddr is the address a MUID of ours names for out-of-band hits:
// none without UDP, while firewalled, or without an IPv4 address.
func (s *Servent) oobReplyAddr() (netip.AddrPort, bool) {
	if s.udp == nil || s.firewalled() {
		return netip.AddrPort{}, false
	}
	a := s.Addr()
	if !a.Addr().Unmap().Is4() || a.Port() == 0 { // UDP listens on the TCP port (startUDP)
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port()), true
}

// newSearch prepares a search of ours; its MUID names our address when we
// ask for out-of-band hits.
func (s *Servent) newSearch(q *protocol.Query, strategy string, enough int) *routing.Search {
	search := routing.NewSearch(q, strategy, enough)
	if a, ok := s.oobQuerier(); ok {
		search.ID = protocol.NewOOBGUID(a)
	}
	return search
}

// oobQuery is q as sent under MUID id: marked OOB, with an empty "SO",
// when id names our reply address (a strategy's later GUIDs do not, and
// neither does a leaf's query we run, which keeps its own marking).
func (s *Servent) oobQuery(id protocol.GUID, q *protocol.Query) *protocol.Query {
	a, ok := s.oobQuerier()
	if !ok || id.OOBAddrPort() != a || q.Flags.Has(protocol.QueryFlagOOB) {
		return q
	}
	return markOOB(q)
}

// markOOB is a copy of q asking for out-of-band hits: the OOB flag, and an
// empty "SO" (secure OOB) unless q has one.
func markOOB(q *protocol.Query) *protocol.Query {
	c := *q
	c.Flags |= protocol.QueryFlagMark | protocol.QueryFlagOOB
	if !hasSecureOOB(q) {
		c.Extensions = append(append(protocol.ExtensionArea(nil), q.Extensions...),
			protocol.GGEPItem(protocol.GGEP{{ID: protocol.GGEPSecureOOB}}))
	}
	return &c
}

// oobIndication is a responder's LIME/12 for id: when id is a search of
// ours still wanting results, we ack with LIME/11 for what it still wants
// and remember the claim. A token goes in the ack only when the responder
// asked for one (v3) and its address is proven: LIME/11v3 is larger than
// LIME/12, and an unproven address gets nothing larger than it sent.
func (u *udpSide) oobIndication(id protocol.GUID, ind protocol.OOBReplyIndication, from netip.AddrPort, now time.Time) {
	o := &u.oob
	wanted, ours := u.s.oobWanted(id, now)
	if !ours {
		o.stats.unwanted.Add(1)
		return
	}
	key := oobClaimKey{id, from}
	proven := u.provenOrAwaited(from, now)
	o.mu.Lock()
	if o.claims == nil {
		o.claims = map[oobClaimKey]*oobClaim{}
	}
	if _, dup := o.claims[key]; dup {
		o.mu.Unlock()
		o.stats.unwanted.Add(1)
		return
	}
	want := int(ind.Hits)
	if wanted >= 0 {
		claimed := 0
		for k, c := range o.claims {
			if k.id == id && now.Sub(c.at) < oobLife {
				claimed += c.left
			}
		}
		want = min(want, wanted-claimed)
	}
	if want <= 0 {
		o.mu.Unlock()
		o.stats.unwanted.Add(1)
		return
	}
	if len(o.claims) >= oobMaxClaims {
		o.pruneLocked(now)
		if len(o.claims) >= oobMaxClaims {
			o.mu.Unlock()
			o.stats.unwanted.Add(1)
			return
		}
	}
	var token []byte
	if ind.Secure && proven {
		token = make([]byte, oobTokenLen)
		_, _ = rand.Read(token)
	}
	o.claims[key] = &oobClaim{left: want, token: token, at: now}
	o.mu.Unlock()
	o.stats.indications.Add(1)
	ack := protocol.NewOOBReplyAck(uint8(min(want, 255)), token)
	msg, err := (&protocol.Message{Header: protocol.Header{ID: id, TTL: 1}, Payload: ack}).AppendTo(nil)
	if err == nil && u.send(from, msg, udpPrioControl) {
		o.stats.acksSent.Add(1)
	}
}

// oobWanted is how many more results the query of MUID id wants (-1: no
// limit), and whether it is ours to claim hits for: a search of ours still
// running whose MUID names our reply address, or a leaf's query we proxy
// (oobproxy.go).
func (s *Servent) oobWanted(id protocol.GUID, now time.Time) (wanted int, ours bool) {
	if want, ok := s.oobProxyWanted(id, now); ok {
		return want, true
	}
	s.searches.mu.Lock()
	search := s.searches.searches[id]
	s.searches.mu.Unlock()
	if a, ok := s.oobQuerier(); search == nil || search.Done() || !ok || id.OOBAddrPort() != a {
		return 0, false
	}
	return search.Wanted(), true
}

// oobHit is a QueryHit by UDP: taken into its search only when it answers
// an ack of ours, from the address we acked, within the count acked and
// with our token when we gave one.
func (u *udpSide) oobHit(h protocol.Header, payload []byte, from netip.AddrPort, now time.Time) {
	o := &u.oob
	key := oobClaimKey{h.ID, from}
	o.mu.Lock()
	c := o.claims[key]
	o.mu.Unlock()
	if c == nil || now.Sub(c.at) >= oobLife {
		o.stats.hitsDropped.Add(1)
		return
	}
	if len(payload) < 27 || len(payload) > hitForwardSize || payload[0] == 0 {
		u.stats.malformed.Add(1)
		return
	}
	hit, err := protocol.DecodeQueryHit(payload)
	if err != nil {
		u.stats.malformed.Add(1)
		return
	}
	if c.token != nil {
		if tok, _ := hit.TrailerGGEP().Get(protocol.GGEPSecureOOB); !bytes.Equal(tok, c.token) {
			o.stats.hitsDropped.Add(1)
			return
		}
	}
	n := len(hit.Results)
	o.mu.Lock()
	ok := o.claims[key] == c && n <= c.left
	if ok {
		c.left -= n
		if c.left == 0 {
			delete(o.claims, key)
		}
	}
	o.mu.Unlock()
	if !ok {
		o.stats.hitsDropped.Add(1)
		return
	}
	o.stats.hitsRead.Add(1)
	o.stats.resultsRead.Add(int64(n))
	if u.s.oobProxyHit(h, payload, true) {
		return // a leaf's query we proxy: relayed to the leaf (oobproxy.go)
	}
	u.s.searches.deliver(h, hit, now)
}
