package servent

import (
	"os"

	"golang.org/x/sys/unix"
)

// fdLimits returns the process's descriptor limit (RLIMIT_NOFILE) and how
// many descriptors are open now: read once, when the servent starts, not
// per accept (admission.go counts our own connections from there).
func fdLimits() (limit, open int) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == unix.RLIM_INFINITY || rl.Cur > 1<<30 {
		return 0, 0
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0, 0
	}
	return int(rl.Cur), len(ents)
}
