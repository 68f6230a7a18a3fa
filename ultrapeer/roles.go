package ultrapeer

import "time"

// Roles (docs/protocol.md §2.4, §3.9): a servent in auto mode starts as a leaf, becomes an
// ultrapeer once it is reachable and has been up long enough, and goes back
// to being a leaf when an ultrapeer guides it so while it has no leaves.
// Switches are rare: at most one per SwitchEvery. RoleRules decides; the
// servent switches (and says Bye 203 to its links).

// RoleRules are the rules of the role switch in auto mode.
type RoleRules struct {
	// UltrapeerAfter is how long a reachable leaf must have been up before
	// it becomes an ultrapeer.
	UltrapeerAfter time.Duration
	// SwitchEvery is the least time between two switches (gtk: 1800 s).
	SwitchEvery time.Duration
}

// CanSwitch reports whether a switch is allowed at now, the last one having
// been at last (zero: never).
func (r RoleRules) CanSwitch(last, now time.Time) bool {
	return last.IsZero() || now.Sub(last) >= r.SwitchEvery
}

// Promote reports whether a leaf in auto mode, up since started and last
// switched at lastSwitch, becomes an ultrapeer at now: it must be reachable,
// up for UltrapeerAfter, and allowed to switch.
func (r RoleRules) Promote(firewalled bool, started, lastSwitch, now time.Time) bool {
	return !firewalled && now.Sub(started) >= r.UltrapeerAfter && r.CanSwitch(lastSwitch, now)
}

// TakeGuidance reports whether an ultrapeer in auto mode follows an
// ultrapeer's leaf guidance (X-Ultrapeer-Needed: False) at now: only with no
// leaves of its own and when allowed to switch; otherwise it stays an
// ultrapeer, as LimeWire does.
func (r RoleRules) TakeGuidance(leaves int, lastSwitch, now time.Time) bool {
	return leaves == 0 && r.CanSwitch(lastSwitch, now)
}
