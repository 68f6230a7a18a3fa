//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package transfer

import (
	"net"
	"syscall"
)

// pending reports whether bytes wait unread on conn, without reading them
// and without waiting (recv with MSG_PEEK|MSG_DONTWAIT). Connections that
// are not sockets report false.
func pending(conn net.Conn) bool {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var n int
	var b [1]byte
	_ = rc.Read(func(fd uintptr) bool {
		n, _, _ = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true // never wait
	})
	return n > 0
}
