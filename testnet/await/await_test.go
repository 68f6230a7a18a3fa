package await

import (
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// fakeT records Fatalf instead of ending the goroutine; deadline zero means no deadline (as a benchmark).
type fakeT struct {
	deadline time.Time
	failed   string
	failedAt time.Time
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.failed, f.failedAt = fmt.Sprintf(format, args...), time.Now()
}
func (f *fakeT) Deadline() (time.Time, bool) { return f.deadline, !f.deadline.IsZero() }

// noDeadlineT has no Deadline method at all, as *testing.B.
type noDeadlineT struct{ fakeT }

func (noDeadlineT) Deadline() {}

// Until returns as soon as another goroutine makes the condition true, and does not fail.
func TestUntilSeesTheChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var done atomic.Bool
		go func() {
			time.Sleep(3 * time.Second)
			done.Store(true)
		}()
		ft := &fakeT{deadline: time.Now().Add(time.Hour)}
		start := time.Now()
		Until(ft, "done", done.Load)
		if ft.failed != "" {
			t.Fatalf("Until failed: %s", ft.failed)
		}
		if !done.Load() {
			t.Fatal("Until returned before the condition held")
		}
		// Polls are at most maxPoll apart, so the change is seen within one of them.
		if waited := time.Since(start); waited > 3*time.Second+maxPoll {
			t.Errorf("Until saw the change after %v, the change came at 3s", waited)
		}
	})
}

// A condition that never holds fails the test, naming what was awaited, before the test's deadline.
func TestUntilFailsBeforeTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ft := &fakeT{deadline: time.Now().Add(10 * time.Minute)}
		calls := 0
		Until(ft, "the answer", func() bool { calls++; return false })
		if ft.failed != "timed out waiting for the answer (the test's deadline is near)" {
			t.Fatalf("Fatalf(%q)", ft.failed)
		}
		if left := ft.deadline.Sub(ft.failedAt); left <= 0 || left > 5*time.Second {
			t.Errorf("failed %v before the deadline, want within the last 5s before it", left)
		}
		if calls < 2 {
			t.Errorf("the condition was checked %d times", calls)
		}
	})
}

// Without a deadline (a benchmark), Until waits as long as it takes.
func TestUntilWithoutDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		zero, none := &fakeT{}, &noDeadlineT{}
		for _, c := range []struct {
			t      T
			failed *string
		}{{zero, &zero.failed}, {none, &none.failed}} {
			start := time.Now()
			Until(c.t, "an hour", func() bool { return time.Since(start) >= time.Hour })
			if time.Since(start) < time.Hour || *c.failed != "" {
				t.Errorf("%T: returned after %v, failure %q", c.t, time.Since(start), *c.failed)
			}
		}
	})
}

// *testing.T, *testing.B and testing.TB are all a T.
var _ = []T{(*testing.T)(nil), (*testing.B)(nil), testing.TB(nil)}

// Recv returns what another goroutine sends; with nothing sent it fails before the deadline.
func TestRecv(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ch := make(chan int)
		go func() {
			time.Sleep(time.Minute)
			ch <- 7
		}()
		ft := &fakeT{deadline: time.Now().Add(time.Hour)}
		if v := Recv(ft, "seven", ch); v != 7 || ft.failed != "" {
			t.Errorf("Recv = %d, failure %q", v, ft.failed)
		}
		if v := Recv(ft, "nothing", ch); v != 0 || ft.failed != "timed out waiting for nothing (the test's deadline is near)" {
			t.Errorf("Recv = %d, failure %q", v, ft.failed)
		}
		if left := ft.deadline.Sub(ft.failedAt); left <= 0 || left > 5*time.Second {
			t.Errorf("failed %v before the deadline", left)
		}
		nd := &noDeadlineT{}
		close(ch)
		if v := Recv(nd, "closed", ch); v != 0 || nd.failed != "" {
			t.Errorf("Recv on a closed channel = %d, failure %q", v, nd.failed)
		}
	})
}

func TestBlockedSeesAParkedGoroutine(t *testing.T) {
	release := make(chan struct{})
	done := make(chan struct{})
	go func() { parkHere(release); close(done) }()
	Blocked(t, "gnutella/testnet/await.parkHere")
	close(release)
	<-done
	if parkedIn("gnutella/testnet/await.parkHere") {
		t.Error("a goroutine that returned is still seen as parked")
	}
}

func TestBlockedGivesUpOnANeverParkedFunction(t *testing.T) {
	ft := &fakeT{deadline: time.Now().Add(150 * time.Millisecond)}
	Blocked(ft, "gnutella/testnet/await.noSuchFunction")
	if ft.failed == "" {
		t.Error("Blocked returned without failing for a function no goroutine is in")
	}
}

//go:noinline
func parkHere(release chan struct{}) { <-release }
