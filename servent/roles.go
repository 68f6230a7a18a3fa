package servent

import (
	"time"

	"gnutella/protocol"
)

// Roles (§2.4, §3.9): a servent in auto mode starts as a leaf, becomes an
// ultrapeer once it is reachable and has been up long enough, and goes back
// to being a leaf when an ultrapeer guides it so while it has no leaves.
// Switches are rare (at most one per ModeSwitchEvery) and logged; every
// link learns of one through Bye 203 and reconnects in the new role.

// canSwitch reports whether a role switch is allowed now.
func (s *Servent) canSwitch() bool {
	return s.lastSwitch.IsZero() || s.now().Sub(s.lastSwitch) >= s.cfg.ModeSwitchEvery
}

// switchMode changes the role and says Bye 203 to every link but keep.
func (s *Servent) switchMode(m Mode, why string, keep *Link) {
	if s.Mode() == m {
		return
	}
	s.mode.Store(int32(m))
	s.lastSwitch = s.now()
	s.log.Info().Str("mode", m.String()).Str("why", why).Msg("changing role")
	for _, l := range s.Links() {
		if l != keep {
			l.Bye(protocol.ByeChangingPeerMode, "Changing peer mode to "+m.String())
		}
	}
}

// autoPromote runs on the connector's clock: a leaf in auto mode becomes an
// ultrapeer when it is reachable (not firewalled) and has been up for
// UltrapeerAfter.
func (s *Servent) autoPromote(now time.Time) {
	if s.cfg.Mode != ModeAuto || !s.isLeaf() || s.firewalled() || !s.canSwitch() {
		return
	}
	if now.Sub(s.started) < s.cfg.UltrapeerAfter {
		return
	}
	s.switchMode(ModeUltrapeer, "reachable and up long enough", nil)
}

// wantLinks is how many ultrapeer links the connector keeps: WantLinks for
// an ultrapeer, LeafUltrapeers for a leaf.
func (s *Servent) wantLinks() int {
	if s.isLeaf() {
		return min(s.cfg.WantLinks, s.cfg.LeafUltrapeers)
	}
	return s.cfg.WantLinks
}
