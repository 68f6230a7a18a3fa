//go:build unix

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// errDataDirInUse is the error of lockDataDir when another process holds
// the lock.
var errDataDirInUse = errors.New("in use")

// lockDataDir takes an exclusive lock (flock) on dir/lock, writing our pid
// in it, so that two servents never share a data folder (its servent ID,
// host cache and control.json). The lock goes with the process; unlock
// releases it earlier. When another process holds it, the error wraps
// errDataDirInUse and pid is that process's (0 if unknown).
func lockDataDir(dir string) (unlock func(), pid int, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, 0, err
	}
	path := filepath.Join(dir, "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, 0, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, pid, fmt.Errorf("%s: %w", path, errDataDirInUse)
		}
		return nil, 0, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() {
		_ = f.Truncate(0)
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, 0, nil
}
