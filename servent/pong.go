package servent

import (
	"gnutella/protocol"
	"gnutella/routing"
	"gnutella/servent/hostcache"
)

// Pong: pongs feed the host cache and the pong cache (pongcache.go) and, in
// 0.4 mode, route back along the ping's path. Our own pong describes us.

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
		if p.SpeaksTLS() {
			s.tls.speaksTLS(addr)
		}
		if s.hosts.Add(addr, p.Ultrapeer(), hostcache.SourcePong, now) && s.cfg.PongCaching {
			s.pongs.add(p, payload, h.Hops, l.ID, now)
		}
		s.noteGUESS(p, addr, now)
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
	if lib := s.cfg.Library; lib != nil {
		files, kb = lib.ShareStats()
	}
	ultra := !s.isLeaf()
	p := &protocol.Pong{Port: self.Port(), IP: a.As4(), Files: files, KB: protocol.UltrapeerKB(kb, ultra)}
	uptime := uint32(min(s.now().Sub(s.started).Seconds(), protocol.MaxDailyUptime))
	p.GGEP = protocol.GGEP{
		protocol.DailyUptimeExtension(uptime),
		protocol.VendorVersion{Vendor: VendorCode, Version: 1}.Extension(),
	}
	if s.cfg.TLS {
		p.GGEP = append(p.GGEP, protocol.Extension{ID: protocol.GGEPTLS})
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
		if s.udp != nil {
			p.GGEP = append(p.GGEP, guessExtension()) // we answer GUESS queries (guess.go)
		}
	}
	return p
}
