package servent

import (
	"net/netip"
	"sync"

	"gnutella/firewall"
	"gnutella/protocol"
	"gnutella/routing"
)

// Push proxies (LIME/21, LIME/22 and GET /gnutella/push-proxy), both sides.
// An ultrapeer is push proxy for the leaves that ask it (LIME/21, answered
// with LIME/22): a download's GET /gnutella/push-proxy, served by the upload
// server on our port, becomes a Push on that leaf's link. A firewalled leaf
// asks its ultrapeers (askPushProxies, on the node's firewall clock) and
// lists those that accepted in the trailer of its QueryHits. Asking a proxy
// to push for a download of ours is Node.sendPush (push.go).

// pushProxies is the servent's push-proxy state.
type pushProxies struct {
	forLeaves firewall.ProxyTable  // leaf servent ID → its link (ultrapeer side); entries leave with the link
	relays    *firewall.RelayGuard // the Pushes we relay, per requester and per leaf (ultrapeer side)

	mu    sync.Mutex
	ours  map[netip.AddrPort]routing.LinkID // our push proxies and the link to each (leaf side)
	asked map[routing.LinkID]bool           // ultrapeer links we sent LIME/21 (leaf side)
}

// maxTrailerProxies is how many push proxies our QueryHits list (gtk-gnutella's 8).
const maxTrailerProxies = 8

// pushProxyRequest is the ultrapeer side of LIME/21: a leaf asks us to be
// its push proxy; the message GUID is its servent ID. Only a servent with
// Transfers serves HTTP on its port, so only such a one accepts.
func (s *Servent) pushProxyRequest(l *Link, h protocol.Header, v *protocol.Vendor) {
	if l.Kind != LinkLeaf || s.cfg.Transfers == nil || v.PushProxyRequest() != nil {
		return
	}
	self := s.Addr()
	if !self.Addr().Unmap().Is4() {
		return
	}
	s.proxies.forLeaves.Add(h.ID, uint32(l.ID))
	_ = l.sendMessage(protocol.Header{ID: h.ID, TTL: 1}, protocol.NewPushProxyAck(self.Addr().Unmap().As4(), self.Port()))
}

// pushProxyAck is the leaf side of LIME/22: an ultrapeer agreed to be our
// push proxy.
func (s *Servent) pushProxyAck(l *Link, h protocol.Header, v *protocol.Vendor) {
	ap, err := v.PushProxyAck()
	if err != nil || h.ID != s.id {
		return
	}
	p := &s.proxies
	p.mu.Lock()
	if p.ours == nil {
		p.ours = map[netip.AddrPort]routing.LinkID{}
	}
	p.ours[ap] = l.ID
	p.mu.Unlock()
}

// servePushProxy is the ultrapeer side of GET /gnutella/push-proxy (the
// upload server's PushProxy): send a Push to the leaf with that servent ID,
// if it is ours. It returns the HTTP status: 410 when the leaf is not ours,
// 403 for a hostile X-Node (our leaf would connect to it), 503 over the
// relay limits (per X-Node IP and per leaf, firewall.RelayGuard). It
// starts no goroutine: the Push goes on the leaf's bounded send queue.
func (s *Servent) servePushProxy(servent protocol.GUID, xnode netip.AddrPort, tls bool) int {
	lid, ok := s.proxies.forLeaves.Lookup(servent)
	if !ok {
		return 410
	}
	l := s.linkByID(routing.LinkID(lid))
	if l == nil || !xnode.Addr().Unmap().Is4() {
		return 410
	}
	if reason, bad := s.hostiles.Banned(xnode.Addr()); bad {
		s.log.Debug().Stringer("xnode", xnode).Str("reason", reason).Msg("push-proxy request refused: hostile")
		return 403
	}
	if err := s.proxies.relays.Allow(xnode.Addr(), servent, s.now()); err != nil {
		s.log.Debug().Stringer("xnode", xnode).Err(err).Msg("push-proxy request refused")
		return 503
	}
	p := &protocol.Push{ServentID: servent, IP: xnode.Addr().Unmap().As4(), Port: xnode.Port()}
	if tls {
		p.GGEP = protocol.GGEP{{ID: protocol.GGEPTLS}} // the callback over TLS (gtk-gnutella's pproxy.c)
	}
	if err := l.sendMessage(protocol.Header{ID: protocol.NewGUID(), TTL: max(s.cfg.MaxTTL-1, 1), Hops: 1}, p); err != nil {
		return 410
	}
	return 202
}

// pushProxyGGEP is the GGEP of our QueryHit trailers: our push proxies (up
// to maxTrailerProxies) when we are firewalled.
func (s *Servent) pushProxyGGEP() protocol.GGEP {
	var data []byte
	for _, ap := range s.ourPushProxies() {
		data = protocol.AppendPushProxy(data, ap)
	}
	if len(data) == 0 {
		return nil
	}
	return protocol.GGEP{{ID: "PUSH", Data: data}}
}

// ourPushProxies are the push proxies we name (up to maxTrailerProxies)
// while we are firewalled: the ultrapeers that accepted to be, on links
// still up.
func (s *Servent) ourPushProxies() []netip.AddrPort {
	if !s.firewalled() {
		return nil
	}
	p := &s.proxies
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []netip.AddrPort
	for ap, lid := range p.ours {
		if s.linkByID(lid) == nil {
			delete(p.ours, ap)
			continue
		}
		if len(out) < maxTrailerProxies {
			out = append(out, ap)
		}
	}
	return out
}

// askPushProxies is the leaf side of LIME/21: ask each ultrapeer that
// supports it, once per link, to be our push proxy. Links that are gone
// are forgotten. An ultrapeer never asks: only a leaf may have push
// proxies, and gtk-gnutella warns of a "Push-Proxy Request from non-leaf
// node" on an ultrapeer link.
func (s *Servent) askPushProxies() {
	if !s.isLeaf() {
		return
	}
	p := &s.proxies
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.asked == nil {
		p.asked = map[routing.LinkID]bool{}
	}
	for id := range p.asked {
		if s.linkByID(id) == nil {
			delete(p.asked, id)
		}
	}
	for _, l := range s.Links() {
		if l.Kind == LinkUltrapeer && !p.asked[l.ID] && l.Supports(protocol.PushProxyRequestID) {
			p.asked[l.ID] = true
			_ = l.sendMessage(protocol.Header{ID: s.id, TTL: 1}, protocol.NewPushProxyRequest())
		}
	}
}

// forgetPushProxyLink drops what the push-proxy state holds for a closed
// link: the leaf we were push proxy for.
func (s *Servent) forgetPushProxyLink(l *Link) {
	s.proxies.forLeaves.Remove(uint32(l.ID))
}
