package servent

import (
	"bytes"
	"time"

	"gnutella/protocol"
	"gnutella/routing"
	"gnutella/ultrapeer"
)

// OOB proxying (docs/protocol.md §11.6, gtk-gnutella's oob_proxy.c): an
// ultrapeer that can receive UDP asks for out-of-band hits in place of a
// leaf whose query does not ask for them (the leaf is UDP-firewalled, runs
// without UDP, or does not do OOB). The query goes on under a "mangled"
// MUID: the leaf's, with the bytes that name the reply address (0..3 and
// 13..14) naming ours, and the OOB flag and an empty "SO" set. We remember
// mangled → (leaf, leaf's MUID); the LIME/12 offers for the mangled MUID
// are claimed by us (oob.go) up to what the leaf's dynamic query still
// wants, and every hit for it, by UDP or over TCP, goes to the leaf over
// its link with the leaf's MUID put back. The leaf never sees the mangled
// MUID.
//
// A leaf can opt out for all its queries with LIME/13 (OOB Proxy Veto), or
// for one with an empty GGEP "NP" in the query; we honour both.
// gtk-gnutella reads both but, since 2012-2014, proxies anyway (dq.c,
// search.c: it deems them obsolete with OOB v3). No query flag bit says
// it (0x0004 is in the max-hits bits).
//
// Unlike gtk-gnutella we do not proxy a leaf's query that asks for OOB
// hits itself (gtk-gnutella also proxies those of leaves that are not
// leaf-guided or say they are firewalled, to save TCP traffic); nor an
// old-style query without the 0x8000 mark (its speed field is not flags).

const (
	// oobProxyLife is how long a proxied query is remembered after its
	// last use (its creation, an offer claimed, a hit relayed):
	// gtk-gnutella's 11 minutes, longer than a dynamic query runs.
	oobProxyLife = 11 * time.Minute
	// oobProxyMax bounds the proxied queries remembered (at most
	// ultrapeer.MaxLeafDQs run at once; the rest is slack for floods and
	// late hits).
	oobProxyMax = 1024
)

// oobProxied is a leaf's query we OOB-proxy, under its mangled MUID.
type oobProxied struct {
	leaf    *Link
	orig    protocol.GUID // the leaf's MUID
	relayed int           // results relayed to the leaf
	at      time.Time     // last use
}

// oobProxyQuery is the ultrapeer's side of a fresh query from leaf: when
// we proxy it, it returns the header, query and payload to send on in
// place of the leaf's, and ok.
func (s *Servent) oobProxyQuery(leaf *Link, h protocol.Header, q *protocol.Query) (protocol.Header, *protocol.Query, []byte, bool) {
	u := s.udp
	if u == nil || !s.cfg.OOBProxy || leaf.Kind != LinkLeaf || leaf.noOOBProxy.Load() ||
		!q.Flags.Has(protocol.QueryFlagMark) || q.Flags.Has(protocol.QueryFlagOOB) ||
		q.Extensions.GGEP().Has(protocol.GGEPNoOOBProxy) {
		return h, q, nil, false
	}
	me, ok := s.oobReplyAddr()
	if !ok {
		return h, q, nil, false
	}
	pq := markOOB(q)
	payload, err := pq.AppendTo(nil)
	if err != nil || len(payload) > queryForwardSize {
		return h, q, nil, false // too large with "SO": relayed by others no more
	}
	id := h.ID.WithOOBAddrPort(me)
	r := s.router
	now := s.now()
	o := &u.oob
	o.mu.Lock()
	if o.proxied == nil {
		o.proxied = map[protocol.GUID]*oobProxied{}
	}
	if len(o.proxied) >= oobProxyMax {
		o.pruneProxiedLocked(now)
	}
	_, taken := o.proxied[id]
	if taken || len(o.proxied) >= oobProxyMax {
		o.mu.Unlock()
		o.stats.proxyRefused.Add(1) // a collision, or the table full: the query goes on as it is
		return h, q, nil, false
	}
	// Duplicate detection on the mangled MUID: a copy coming back to us
	// is dropped, and a MUID already seen (a collision) is not reused.
	if dup, _ := r.dups.Check(id, protocol.TypeQuery, r.ttl.ForwardTTL(h)); dup {
		o.mu.Unlock()
		o.stats.proxyRefused.Add(1)
		return h, q, nil, false
	}
	o.proxied[id] = &oobProxied{leaf: leaf, orig: h.ID, at: now}
	o.mu.Unlock()
	o.stats.proxied.Add(1)
	r.query.Add(id, routing.Local, now) // its hits are ours to relay, as if we had sent it
	ph := h
	ph.ID = id
	ph.Length = uint32(len(payload))
	return ph, pq, payload, true
}

// pruneProxiedLocked forgets the proxied queries unused for oobProxyLife.
func (o *oobState) pruneProxiedLocked(now time.Time) {
	for id, p := range o.proxied {
		if now.Sub(p.at) >= oobProxyLife {
			delete(o.proxied, id)
			o.stats.proxyExpired.Add(1)
		}
	}
}

// proxiedLocked is the live proxied query of mangled MUID id, or nil.
func (o *oobState) proxiedLocked(id protocol.GUID, now time.Time) *oobProxied {
	p := o.proxied[id]
	if p != nil && now.Sub(p.at) >= oobProxyLife {
		delete(o.proxied, id)
		o.stats.proxyExpired.Add(1)
		return nil
	}
	return p
}

// oobProxyWanted is how many hits to claim for id when it is a query we
// proxy (ok), as gtk-gnutella decides: none while the leaf is gone or its
// link is flow-controlled (the hits would have nowhere to go), else what
// its dynamic query still wants, or, flooded or once that ended,
// LeafDQTarget less what was relayed. An offer we will claim keeps the query alive.
func (s *Servent) oobProxyWanted(id protocol.GUID, now time.Time) (want int, ok bool) {
	o := &s.udp.oob
	o.mu.Lock()
	defer o.mu.Unlock()
	p := o.proxiedLocked(id, now)
	if p == nil {
		return 0, false
	}
	if p.leaf.closing.Load() || p.leaf.FlowControlled() {
		return 0, true
	}
	// Once the dynamic query ended (at once, with no ultrapeer to ask),
	// our own leaves' offers may still come: LeafDQTarget bounds them.
	want = max(ultrapeer.LeafDQTarget-p.relayed, 0)
	if w, running := s.dq.Wanted(p.orig); running {
		want = w
	}
	if want > 0 {
		p.at = now
	}
	return want, true
}

// oobProxyHit relays a QueryHit for a query we proxy to its leaf with the
// leaf's MUID, and reports whether id was one (true: the hit is done
// with, relayed or dropped). byUDP tells how it came, for the counters.
func (s *Servent) oobProxyHit(h protocol.Header, payload []byte, byUDP bool) bool {
	u := s.udp
	if u == nil {
		return false
	}
	o := &u.oob
	now := s.now()
	results := int(payload[0]) // the caller checked the length
	o.mu.Lock()
	p := o.proxiedLocked(h.ID, now)
	if p != nil {
		p.at = now
		p.relayed += results
	}
	o.mu.Unlock()
	if p == nil {
		return false
	}
	if byUDP {
		o.stats.proxyHitsUDP.Add(1)
		payload = bytes.Clone(payload) // the read buffer is reused; the link's queue keeps it
	} else {
		o.stats.proxyHitsTCP.Add(1)
	}
	if p.leaf.closing.Load() {
		o.stats.proxyLost.Add(1)
		return true
	}
	o.stats.proxyResults.Add(int64(results))
	out := h
	out.ID = p.orig
	s.router.forwardReply(p.leaf.ID, out, payload) // counts the results for the leaf's dynamic query
	return true
}

// oobProxyVeto takes a leaf's LIME/13: whether it lets us proxy its
// queries from now on.
func (s *Servent) oobProxyVeto(l *Link, v *protocol.Vendor) {
	veto, err := v.OOBProxyVeto()
	if err != nil || l.Kind != LinkLeaf {
		return // gtk-gnutella ignores it from anyone but a leaf
	}
	l.noOOBProxy.Store(veto)
}
