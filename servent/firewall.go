package servent

import "net/netip"

// Reachability: whether we believe we are firewalled (the Firewall seam).

func (s *Servent) firewalled() bool {
	return s.cfg.Hooks.Firewalled != nil && s.cfg.Hooks.Firewalled()
}

func (n *Node) linkedTo(a netip.Addr) bool {
	for _, l := range n.Links() {
		if l.Remote.Addr() == a || l.Listen.Addr() == a {
			return true
		}
	}
	return false
}
