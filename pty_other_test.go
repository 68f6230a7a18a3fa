//go:build !linux

package main

import (
	"errors"
	"os"
)

func openPTY() (pty, tty *os.File, err error) {
	return nil, nil, errors.New("no pseudo-terminal in these tests but on Linux")
}
