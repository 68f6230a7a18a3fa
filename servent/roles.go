package servent

import (
	"sync"
	"time"

	"gnutella/protocol"
	"gnutella/ultrapeer"
)

// Roles: the rules of the auto mode (when to become an ultrapeer, when to
// take leaf guidance) are ultrapeer.RoleRules; here the servent applies
// them. The connector goroutine promotes (autoPromote) and dial goroutines
// take guidance (Connect, handshake.go), so the last switch is kept under
// roleState.mu, and switchMode changes the mode and records the switch in
// one step (a second switch to the same mode is a no-op). Every
// link learns of a switch through Bye 203 and reconnects in the new role.

type roleState struct {
	mu         sync.Mutex
	lastSwitch time.Time // the last role switch, or claim of one
}

func (s *Servent) roleRules() ultrapeer.RoleRules {
	return ultrapeer.RoleRules{UltrapeerAfter: s.cfg.UltrapeerAfter, SwitchEvery: s.cfg.ModeSwitchEvery}
}

// takesGuidance decides whether we take an ultrapeer's leaf guidance (a
// dial goroutine, before switchMode).
func (s *Servent) takesGuidance() bool {
	if s.cfg.Mode != ModeAuto {
		return false
	}
	leaves := s.LinkCount(LinkLeaf)
	s.role.mu.Lock()
	defer s.role.mu.Unlock()
	return s.roleRules().TakeGuidance(leaves, s.role.lastSwitch, s.now())
}

// switchMode changes the role and says Bye 203 to every link but keep.
func (s *Servent) switchMode(m Mode, why string, keep *Link) {
	s.role.mu.Lock()
	if s.Mode() == m {
		s.role.mu.Unlock()
		return
	}
	s.mode.Store(int32(m))
	s.role.lastSwitch = s.now()
	s.role.mu.Unlock()
	s.log.Info().Str("mode", m.String()).Str("why", why).Msg("changing role")
	for _, l := range s.Links() {
		if l != keep {
			l.Bye(protocol.ByeChangingPeerMode, "Changing peer mode to "+m.String())
		}
	}
}

// autoPromote runs on the connector's clock: a leaf in auto mode becomes an
// ultrapeer when the role rules say so.
func (s *Servent) autoPromote(now time.Time) {
	if s.cfg.Mode != ModeAuto || !s.isLeaf() {
		return
	}
	firewalled := s.firewalled()
	s.role.mu.Lock()
	promote := s.isLeaf() && s.roleRules().Promote(firewalled, s.started, s.role.lastSwitch, now)
	s.role.mu.Unlock()
	if promote {
		s.switchMode(ModeUltrapeer, "reachable and up long enough", nil)
	}
}

// wantLinks is how many ultrapeer links the connector keeps: WantLinks for
// an ultrapeer, LeafUltrapeers for a leaf.
func (s *Servent) wantLinks() int {
	if s.isLeaf() {
		return min(s.cfg.WantLinks, s.cfg.LeafUltrapeers)
	}
	return s.cfg.WantLinks
}
