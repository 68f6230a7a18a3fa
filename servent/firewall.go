package servent

// Reachability: whether we believe we are firewalled (the Firewall seam).

func (s *Servent) firewalled() bool {
	return s.cfg.Hooks.Firewalled != nil && s.cfg.Hooks.Firewalled()
}
