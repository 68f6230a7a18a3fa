package servent

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"

	"gnutella/firewall"
	"gnutella/protocol"
	"gnutella/routing"
	"gnutella/transfer"
)

// Push: routed toward a servent ID (to a neighbour with it, or along the
// links its hits came in on); one addressed to us is answered by a
// connect-back with GIV and the upload (Node.HandlePush).

// PushHandler is given a Push addressed to our servent ID.
type PushHandler interface {
	HandlePush(p *protocol.Push, h protocol.Header)
}

// PushFunc adapts a function to a PushHandler.
type PushFunc func(p *protocol.Push, h protocol.Header)

// HandlePush calls f.
func (f PushFunc) HandlePush(p *protocol.Push, h protocol.Header) { f(p, h) }

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
		if s.cfg.Pushes != nil {
			s.cfg.Pushes.HandlePush(p, h)
		}
		return
	}
	if s.isLeaf() {
		r.stats.DropOther.Add(1)
		return
	}
	if _, bad := s.hostiles.Banned(p.AddrPort().Addr()); bad {
		// Not relayed: a hostile callback address (docs/protocol.md §8.3).
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

// maxPushCallbacks bounds the Push callbacks in flight (dials and GIVs):
// the guard bounds them per IP, this bounds them across many IPs. A Push
// that finds them all busy is dropped.
const maxPushCallbacks = 16

// HandlePush is Node's PushHandler: the configured one first (a test's),
// then gtk-gnutella's limits (docs/protocol.md §6.4, §8.3), a connect-back
// with GIV and the upload on that socket.
//
// The push guard judges every Push: the rate per IP, the ban after a
// failed callback, hostiles, and the address policy. The policy is waived
// only for the real remote address of a link (PushGuard.AllowLinked), never
// for the Listen-IP a peer claims, which proves nothing.
func (n *Node) HandlePush(p *protocol.Push, h protocol.Header) {
	if user := n.cfg.Pushes; user != nil {
		user.HandlePush(p, h)
	}
	addr := p.AddrPort()
	now := time.Now()
	allow := n.guard.Allow
	if n.linkedFrom(addr.Addr()) {
		allow = n.guard.AllowLinked
	}
	if err := allow(addr, now); err != nil {
		n.log.Debug().Stringer("addr", addr).Err(err).Msg("push refused")
		return
	}
	select {
	case n.pushCallbacks <- struct{}{}:
	default:
		n.log.Debug().Stringer("addr", addr).Msg("push dropped: too many callbacks in flight")
		return
	}
	name := "file"
	if n.Library != nil {
		if f, ok := n.Library.ByIndex(p.Index); ok {
			name = f.Name
		}
	}
	giv := protocol.GIV{Index: p.Index, ServentID: n.id, Name: name}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer func() { <-n.pushCallbacks }()
		ctx, cancel := context.WithTimeout(n.ctx, 20*time.Second)
		var conn net.Conn
		var err error
		if p.SpeaksTLS() && n.cfg.TLS {
			// The downloader takes TLS at addr (gtk-gnutella's Push "TLS"):
			// the callback goes over TLS, plain again if that fails.
			n.tls.speaksTLS(addr)
			conn, err = n.dialLink(ctx, addr)
		} else {
			conn, err = n.transport.Dial(ctx, addr.String())
		}
		cancel()
		if err != nil {
			n.guard.Failed(addr, time.Now())
			n.log.Debug().Stringer("addr", addr).Err(err).Msg("push callback failed")
			return
		}
		n.Uploads.ServeCallback(conn, giv)
	}()
}

// sendPush routes a Push toward a firewalled source: through its push
// proxies when it has any, else through the network by servent ID.
//
// The proxies come from a hit, which anyone can forge: at most
// maxTrailerProxies of them are asked, one per IP, and only those our
// address policy (hostiles included) lets us dial, so that a hit listing a
// victim on many ports cannot aim our requests at it.
func (n *Node) sendPush(src transfer.Source) error {
	self := n.Addr()
	if !self.Addr().Unmap().Is4() {
		return errors.New("no IPv4 address to be called back on")
	}
	policy := firewall.AddrPolicy{AllowLoopback: n.cfg.AllowLoopback, AllowPrivate: n.cfg.AllowPrivate, Hostiles: n.hostiles}
	asked := make(map[netip.Addr]bool, maxTrailerProxies)
	for _, proxy := range src.PushProxies {
		if len(asked) == maxTrailerProxies {
			break
		}
		if asked[proxy.Addr().Unmap()] || policy.Check(proxy) != nil {
			continue
		}
		asked[proxy.Addr().Unmap()] = true
		ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
		err := transfer.RequestPushProxy(ctx, n.transport, proxy, src.ServentID, self, n.cfg.TLS, userAgent())
		cancel()
		if err == nil {
			return nil
		}
	}
	p := &protocol.Push{ServentID: src.ServentID, Index: src.Index, IP: self.Addr().Unmap().As4(), Port: self.Port()}
	if n.cfg.TLS {
		// we take TLS on our port: ask for the callback over TLS, as
		// gtk-gnutella does whenever its TLS is on
		p.GGEP = protocol.GGEP{{ID: protocol.GGEPTLS}}
	}
	if n.SendPush(p, n.cfg.MaxTTL) == 0 {
		return errors.New("no route to the servent: no link carried a hit from it")
	}
	return nil
}
