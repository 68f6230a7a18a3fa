// This file holds the Transport, the one seam through which a servent listens and dials, so that the same servent
// code runs over real TCP (TCPTransport) and over an in-memory network of thousands of hosts in one process
// (memnet.Network, in package memnet).

package servent

import (
	"context"
	"errors"
	"gnutella/firewall"
	"net"
	"time"
)

// Transport is how a servent listens and dials.
//
// Addresses are "ip:port" strings such as "127.0.0.1:0". Connections returned by either method (and accepted by
// the listener) are full-duplex byte streams with net.Conn's semantics: deadlines that fail with an error for which
// errors.Is(err, os.ErrDeadlineExceeded) holds, io.EOF after the peer closed or half-closed its side, an error
// wrapping net.ErrClosed after a local Close, and *net.TCPAddr addresses. Both implementations also offer
// CloseWrite (see CloseWrite in this package).
type Transport interface {
	// Listen announces on the local address addr. Port 0 picks a free port; Addr of the listener tells which.
	Listen(addr string) (net.Listener, error)
	// Dial connects to addr: firewall.Dialer is the one statement of that method, so packages below servent
	// (firewall, transfer) take the Transport as it is.
	firewall.Dialer
}

// TCPTransport is the real Transport: TCP sockets of the operating system. Its connections are *net.TCPConn, so
// io.Copy from an *os.File to one of them can use sendfile.
type TCPTransport struct {
	// DialTimeout bounds each Dial on top of the context's own deadline. Zero means no extra bound.
	DialTimeout time.Duration
}

var _ Transport = TCPTransport{}

// Listen listens on the TCP address addr.
func (t TCPTransport) Listen(addr string) (net.Listener, error) {
	var lc net.ListenConfig
	return lc.Listen(context.Background(), "tcp", addr)
}

// Dial connects to the TCP address addr. The returned net.Conn is a *net.TCPConn.
func (t TCPTransport) Dial(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: t.DialTimeout}
	return d.DialContext(ctx, "tcp", addr)
}

// ListenPacket listens for UDP datagrams on addr (PacketTransport): the servent's UDP side, on the port number of
// its TCP listener.
func (t TCPTransport) ListenPacket(addr string) (net.PacketConn, error) {
	var lc net.ListenConfig
	return lc.ListenPacket(context.Background(), "udp", addr)
}

// CloseWrite half-closes c: the peer reads io.EOF once it has drained what was sent, while c can still be read.
// It works on *net.TCPConn, on the in-memory network's connections and on anything else with a CloseWrite method;
// for other connections it returns errors.ErrUnsupported.
func CloseWrite(c net.Conn) error {
	if hc, ok := c.(interface{ CloseWrite() error }); ok {
		return hc.CloseWrite()
	}
	return errors.ErrUnsupported
}
