package servent

import (
	"net/netip"
	"time"
)

// Reachability: whether we believe we are firewalled (the Firewall seam,
// which Node fills with its firewall.Detector), and the node's side of it.

// Firewall is the reachability seam: whether we believe we are not
// reachable, and the connections that tell (every inbound one, and the
// connect-backs we asked for, docs/protocol.md §6.6).
type Firewall interface {
	Firewalled() bool
	SawInbound(remote netip.AddrPort)
	SawConnectBack(remote netip.AddrPort)
}

// Firewalled is Node's Firewall: the detector's belief, or never with
// AssumeReachable.
func (n *Node) Firewalled() bool {
	return !n.cfg.AssumeReachable && n.Firewall.Firewalled()
}

// SawInbound tells the detector of an inbound connection (one from a host
// we are linked to proves less).
func (n *Node) SawInbound(remote netip.AddrPort) {
	n.Firewall.Inbound(remote, n.linkedFrom(remote.Addr()), time.Now())
}

// SawConnectBack tells the detector a connect-back reached us.
func (n *Node) SawConnectBack(remote netip.AddrPort) {
	n.Firewall.ConnectBack(remote, time.Now())
}

func (s *Servent) firewalled() bool {
	return s.cfg.Firewall != nil && s.cfg.Firewall.Firewalled()
}

// linkedFrom reports whether a is the real remote address of one of our
// links: what the socket says, never the Listen-IP a peer claims, which
// proves nothing (docs/protocol.md §6.4, §6.6).
func (n *Node) linkedFrom(a netip.Addr) bool {
	a = a.Unmap()
	for _, l := range n.Links() {
		if l.Remote.Addr().Unmap() == a {
			return true
		}
	}
	return false
}

// firewallLoop is the node's firewall clock: it ticks the detector and,
// while we believe we are firewalled, asks peers to connect back
// (connectback.go) and our ultrapeers to be our push proxies (pushproxy.go).
func (n *Node) firewallLoop() {
	defer n.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		n.Firewall.Tick(now)
		if !n.firewalled() {
			continue
		}
		n.askConnectBack(now) // connectback.go
		n.askPushProxies()    // pushproxy.go
	}
}
