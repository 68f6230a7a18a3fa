package transfer

import (
	"io"
	"net"
	"os"
	"syscall"
)

// sendFile sends n bytes of f, from its current offset, to conn, and
// returns how many went out. On a *net.TCPConn it calls sendfile(2)
// itself, with syscall.RawSyscall6, inside the connection's RawConn.Write:
// EAGAIN (the socket buffer is full) waits in Go's poller, which keeps the
// write deadline, and the offset of f moves by exactly what was sent.
//
// Why not io.CopyN, which also ends in sendfile: Go enters every such
// call through the scheduler's syscall path, and the first one after the
// upload's goroutine waited for the socket wakes the runtime's monitor
// thread, which then polls every 20 µs for a millisecond or more. An
// upload over loopback waits for the socket hundreds of times per GiB, so
// the monitor never rested: 2,400 context switches and 70 ms of CPU per
// GiB on top of the 0.2 s of the sendfile calls themselves, taken from the
// receiver on a 2-core machine. The raw call does not tell the scheduler:
// it holds its P for the call, which is bounded because the socket does
// not block and one call moves at most n bytes (sendChunk, about a
// millisecond over loopback).
//
// Other connections (TLS, test pipes) are copied by io.CopyN.
func sendFile(conn net.Conn, f *os.File, n int64) (int64, error) {
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return io.CopyN(conn, f, n)
	}
	sc, err := tc.SyscallConn()
	if err != nil {
		return io.CopyN(conn, f, n)
	}
	fc, err := f.SyscallConn()
	if err != nil {
		return io.CopyN(conn, f, n)
	}
	var sent int64
	var serr error
	ferr := fc.Control(func(file uintptr) {
		err = sc.Write(func(sock uintptr) bool {
			for sent < n {
				w, _, e := syscall.RawSyscall6(syscall.SYS_SENDFILE, sock, file, 0, uintptr(n-sent), 0, 0)
				switch {
				case e == syscall.EAGAIN:
					return false // full: wait until the socket is writable
				case e == syscall.EINTR:
					continue
				case e != 0:
					serr = os.NewSyscallError("sendfile", e)
					return true
				case w == 0:
					serr = io.ErrUnexpectedEOF // the file is shorter than it was
					return true
				}
				sent += int64(w)
			}
			return true
		})
	})
	switch {
	case ferr != nil:
		return sent, ferr
	case err != nil:
		return sent, err
	}
	return sent, serr
}
