package await

import (
	"runtime"
	"strings"
)

// Blocked returns once a goroutine whose stack passes through the function fn (a name as runtime.Stack prints it,
// such as "gnutella/servent.trBlockedRead") is parked: waiting for the network (IO wait), a channel, a select, a
// lock or a sync.Cond. Use it where a test must be sure another goroutine is already blocked in a call before it
// acts (closing a connection under a blocked Read, say): a sleep there tests the easier path whenever it is too
// short. It waits as Until waits.
func Blocked(t T, fn string) {
	t.Helper()
	Until(t, "a goroutine blocked in "+fn, func() bool { return IsBlocked(fn) })
}

// IsBlocked reports whether a goroutine whose stack passes through fn is parked now (see Blocked), for a
// condition of Until that has another way out, such as the blocked call having returned already.
func IsBlocked(fn string) bool { return parkedIn(fn) }

// parkedStates are the goroutine states of runtime.Stack that mean "parked until something happens".
var parkedStates = []string{"[IO wait", "[chan receive", "[chan send", "[select", "[sync.Cond.Wait", "[sync.Mutex.Lock",
	"[semacquire", "[sleep"}

func parkedIn(fn string) bool {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	for _, g := range strings.Split(string(buf), "\n\n") {
		header, _, _ := strings.Cut(g, "\n")
		if !strings.Contains(g, fn+"(") {
			continue
		}
		for _, st := range parkedStates {
			if strings.Contains(header, st) {
				return true
			}
		}
	}
	return false
}
