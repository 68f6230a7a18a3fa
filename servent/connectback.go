package servent

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"gnutella/firewall"
	"gnutella/protocol"
)

// TCP connect-back (BEAR/7, docs/protocol.md §6.6), both sides. A servent that believes it
// is firewalled asks a few peers to connect back to its port
// (askConnectBack, on the node's firewall clock); a connection that
// arrives says "CONNECT BACK" and tells the Firewall we are reachable
// (accept.go). Asked by a peer, we dial it back (connectBackRequest), with
// a bound: at most maxConnectBackDials dials at once and one per requester
// per connectBackPerRequester; extra requests are dropped.

const (
	maxConnectBackDials     = 4                // connect-back dials in flight
	connectBackPerRequester = 30 * time.Second // least time between two dials for one requester
	maxConnectBackPeers     = 1024             // requesters remembered for the rate
	connectBackTimeout      = 10 * time.Second // one connect-back dial
	askConnectBackEvery     = time.Minute      // our own requests, to at most askConnectBackPeers links
	askConnectBackPeers     = 3
)

type connectBacks struct {
	slots chan struct{} // one per dial in flight

	mu    sync.Mutex
	last  map[netip.Addr]time.Time // when we last dialled each requester
	asked time.Time                // when we last asked peers to connect back
}

func (c *connectBacks) init() {
	c.slots = make(chan struct{}, maxConnectBackDials)
	c.last = map[netip.Addr]time.Time{}
}

// allow reports whether requester may have a connect-back now, and records
// it when so.
func (c *connectBacks) allow(requester netip.Addr, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.last[requester]; ok && now.Sub(t) < connectBackPerRequester {
		return false
	}
	if len(c.last) >= maxConnectBackPeers {
		for a, t := range c.last {
			if now.Sub(t) >= connectBackPerRequester {
				delete(c.last, a)
			}
		}
		if len(c.last) >= maxConnectBackPeers {
			return false
		}
	}
	c.last[requester] = now
	return true
}

// connectBackRequest answers a peer's BEAR/7: dial its address on the port
// it names and say CONNECT BACK, in the background, within the bounds.
func (s *Servent) connectBackRequest(l *Link, v *protocol.Vendor) {
	port, err := v.TCPConnectBack()
	if err != nil {
		return
	}
	addr := netip.AddrPortFrom(l.Remote.Addr(), port)
	if _, bad := s.hostiles.Banned(addr.Addr()); bad {
		return // banned since it linked: no dial, and no rate slot spent
	}
	c := &s.connectBacks
	if !c.allow(addr.Addr(), s.now()) {
		return
	}
	select {
	case c.slots <- struct{}{}:
	default:
		return // enough dials in flight: drop it
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() { <-c.slots }()
		ctx, cancel := context.WithTimeout(s.ctx, connectBackTimeout)
		defer cancel()
		_ = firewall.ConnectBack(ctx, s.transport, addr, firewall.ConnectBackLimeWire)
	}()
}

// askConnectBack asks up to askConnectBackPeers peers that support BEAR/7
// to connect back to us, at most once per askConnectBackEvery.
func (s *Servent) askConnectBack(now time.Time) {
	c := &s.connectBacks
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Sub(c.asked) <= askConnectBackEvery {
		return
	}
	sent := 0
	for _, l := range s.Links() {
		if sent < askConnectBackPeers && l.Supports(protocol.TCPConnectBackID) {
			_ = l.sendMessage(protocol.Header{ID: protocol.NewGUID(), TTL: 1}, protocol.NewTCPConnectBack(s.Addr().Port()))
			sent++
		}
	}
	if sent > 0 {
		c.asked = now
	}
}
