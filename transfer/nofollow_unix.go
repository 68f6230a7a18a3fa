//go:build unix

package transfer

import "syscall"

// noFollow keeps os.OpenFile from following a symlink planted where a
// partial file should be.
const noFollow = syscall.O_NOFOLLOW
