//go:build !linux

package transfer

import (
	"io"
	"net"
	"os"
)

// sendFile sends n bytes of f, from its current offset, to conn: io.CopyN,
// whose *io.LimitedReader around the *os.File lets (*net.TCPConn).ReadFrom
// use sendfile(2) where Go has it.
func sendFile(conn net.Conn, f *os.File, n int64) (int64, error) {
	return io.CopyN(conn, f, n)
}
