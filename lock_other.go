//go:build !unix

package main

import "errors"

var errDataDirInUse = errors.New("in use")

// lockDataDir does nothing where flock is missing.
func lockDataDir(dir string) (unlock func(), pid int, err error) { return func() {}, 0, nil }
