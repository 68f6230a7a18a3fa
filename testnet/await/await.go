// Package await lets tests wait for something another goroutine does, without a fixed wall-clock limit: it polls
// until the condition holds or until shortly before the test's own deadline (go test -timeout), then fails the
// test saying what it waited for. It does not import testing, so that no package but tests links it:
// *testing.T, *testing.B and testing.TB all satisfy T.
//
//	await.Until(t, "two links on the ultrapeer", func() bool { return up.Links() == 2 })
//	hit := await.Recv(t, "a hit", hits)
//
// It is the one home of such waiting: a test's own waitFor(t, cond) or waitFor(t, 10*time.Second, what, cond)
// becomes await.Until(t, what, cond), and a select on a channel and time.After(limit) becomes await.Recv.
package await

import (
	"time"
)

// T is the part of *testing.T that Until uses.
type T interface {
	Helper()
	Fatalf(format string, args ...any)
}

// deadliner is *testing.T's Deadline: the time at which go test -timeout will panic. *testing.B has none.
type deadliner interface {
	Deadline() (time.Time, bool)
}

// Polling starts at firstPoll and doubles up to maxPoll, so a condition that holds soon is seen soon and a long
// wait does not spin.
const (
	firstPoll = time.Millisecond
	maxPoll   = 50 * time.Millisecond
)

// Until returns once cond() is true. cond is called from the caller's goroutine, first at once, then after short
// and growing pauses. If the test has a deadline (t.Deadline, from go test -timeout), Until gives up shortly
// before it and fails the test with t.Fatalf("timed out waiting for <what>"), so that the failure names what
// never happened instead of the test binary panicking; with no deadline (-timeout 0, or a benchmark) it waits as
// long as it takes.
func Until(t T, what string, cond func() bool) {
	t.Helper()
	giveUp, limited := giveUpTime(t)
	pause := firstPoll
	for !cond() {
		if limited && !time.Now().Before(giveUp) {
			t.Fatalf("timed out waiting for %s (the test's deadline is near)", what)
			return // a T whose Fatalf returns
		}
		time.Sleep(pause)
		pause = min(2*pause, maxPoll)
	}
}

// Recv returns the next value from ch, waiting for it as Until waits (until shortly before the test's deadline,
// then t.Fatalf("timed out waiting for <what>")). A closed channel gives its zero value at once.
func Recv[V any](t T, what string, ch <-chan V) V {
	t.Helper()
	giveUp, limited := giveUpTime(t)
	if !limited {
		return <-ch
	}
	timer := time.NewTimer(time.Until(giveUp))
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("timed out waiting for %s (the test's deadline is near)", what)
		var zero V
		return zero // a T whose Fatalf returns
	}
}

// giveUpTime is when Until stops waiting: before t's deadline by a tenth of the time left, at most 5 s, at least
// 100 ms, so that the failure and the test's cleanups still run before go test's own timeout.
func giveUpTime(t T) (time.Time, bool) {
	d, ok := t.(deadliner)
	if !ok {
		return time.Time{}, false
	}
	deadline, ok := d.Deadline()
	if !ok {
		return time.Time{}, false
	}
	margin := min(max(time.Until(deadline)/10, 100*time.Millisecond), 5*time.Second)
	return deadline.Add(-margin), true
}
