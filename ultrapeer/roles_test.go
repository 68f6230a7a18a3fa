package ultrapeer

import (
	"testing"
	"time"
)

func TestRoleRules(t *testing.T) {
	r := RoleRules{UltrapeerAfter: 10 * time.Minute, SwitchEvery: 30 * time.Minute}
	t0 := time.Unix(100000, 0)
	if !r.CanSwitch(time.Time{}, t0) {
		t.Error("a servent that never switched may switch")
	}
	if r.CanSwitch(t0, t0.Add(29*time.Minute)) || !r.CanSwitch(t0, t0.Add(30*time.Minute)) {
		t.Error("switches must be SwitchEvery apart")
	}
	if r.Promote(false, t0, time.Time{}, t0.Add(9*time.Minute)) {
		t.Error("promoted before UltrapeerAfter")
	}
	if !r.Promote(false, t0, time.Time{}, t0.Add(10*time.Minute)) {
		t.Error("not promoted when reachable and up long enough")
	}
	if r.Promote(true, t0, time.Time{}, t0.Add(time.Hour)) {
		t.Error("a firewalled leaf was promoted")
	}
	if r.Promote(false, t0, t0.Add(50*time.Minute), t0.Add(time.Hour)) {
		t.Error("promoted within SwitchEvery of the last switch")
	}
	if r.TakeGuidance(1, time.Time{}, t0) {
		t.Error("took leaf guidance with a leaf of its own")
	}
	if !r.TakeGuidance(0, time.Time{}, t0) || r.TakeGuidance(0, t0, t0.Add(time.Minute)) {
		t.Error("leaf guidance: taken when allowed to switch, only then")
	}
}
