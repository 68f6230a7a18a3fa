package servent

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"gnutella/servent/gwc"
	"gnutella/servent/hostcache"
)

// The connector keeps the links at WantLinks by dialling hosts from the
// host cache (with the cache's back-off), asks GWebCaches when the cache has
// nothing to offer, refreshes the pong cache and saves the host cache.

const (
	connectTick    = time.Second
	maxDialing     = 4
	hostsSaveEvery = time.Minute
	gwcEvery       = time.Minute
)

func (s *Servent) connectLoop() {
	defer s.wg.Done()
	t := time.NewTicker(connectTick)
	defer t.Stop()
	var lastSave, lastGWC time.Time
	for {
		now := s.now()
		s.autoPromote(now)
		s.pongs.refresh(now)
		s.qrpTick(now)
		s.fillLinks(now, &lastGWC)
		if s.cfg.DataDir != "" && now.Sub(lastSave) >= hostsSaveEvery {
			lastSave = now
			if err := s.hosts.Save(s.hostsPath()); err != nil {
				s.log.Warn().Err(err).Msg("cannot save host cache")
			}
		}
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// fillLinks starts dials until links plus dials in flight reach WantLinks.
func (s *Servent) fillLinks(now time.Time, lastGWC *time.Time) {
	have := s.LinkCount(LinkUltrapeer, LinkNormal)
	s.mu.Lock()
	inFlight := len(s.dialing)
	s.mu.Unlock()
	need := min(s.wantLinks()-have-inFlight, maxDialing-inFlight)
	for ; need > 0; need-- {
		addr, ok := s.hosts.Pick(now, s.skipHost)
		if !ok {
			s.uhcBootstrap(now) // udp.go
			if len(s.cfg.GWebCaches) > 0 && now.Sub(*lastGWC) >= gwcEvery {
				*lastGWC = now
				s.wg.Add(1)
				go s.askGWebCaches()
			}
			return
		}
		s.mu.Lock()
		s.dialing[addr] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go s.dial(addr)
	}
}

// skipHost is true for ourselves, hosts we are linked to and hosts we are dialling.
func (s *Servent) skipHost(a netip.AddrPort) bool {
	if a == s.Addr() {
		return true
	}
	if self := s.Addr(); a.Port() == self.Port() && (a.Addr().IsLoopback() && self.Addr().IsUnspecified()) {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dialing[a] {
		return true
	}
	for _, l := range s.links {
		if l.Listen == a || l.Remote == a {
			return true
		}
	}
	return false
}

func (s *Servent) dial(addr netip.AddrPort) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.dialing, addr)
		s.mu.Unlock()
	}()
	_, err := s.Connect(s.ctx, addr)
	var he *HandshakeError
	if errors.As(err, &he) && he.Code == 409 {
		return // already linked (the other way round): nothing wrong with the host
	}
	if s.cfg.OnDial != nil && s.ctx.Err() == nil {
		s.cfg.OnDial(addr, err)
	}
	if err == nil {
		return
	}
	if s.ctx.Err() == nil {
		s.log.Debug().Stringer("addr", addr).Err(err).Msg("dial failed")
		s.hosts.Failed(addr, s.now())
	}
}

func (s *Servent) askGWebCaches() {
	defer s.wg.Done()
	c := &gwc.Client{Client: string(VendorCode[:]), Version: Version}
	for _, u := range s.cfg.GWebCaches {
		ctx, cancel := context.WithTimeout(s.ctx, 20*time.Second)
		hosts, _, err := c.Get(ctx, u)
		cancel()
		if err != nil {
			s.log.Info().Str("gwebcache", u).Err(err).Msg("GWebCache query failed")
			continue
		}
		for _, h := range hosts {
			s.hosts.Add(h, true, hostcache.SourceGWebCache, s.now())
		}
		if self := s.Addr(); self.IsValid() && !self.Addr().IsUnspecified() && !s.firewalled() {
			ctx, cancel := context.WithTimeout(s.ctx, 20*time.Second)
			_ = c.Update(ctx, u, self)
			cancel()
		}
	}
}
