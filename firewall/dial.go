package firewall

import (
	"context"
	"net"
)

// Dialer opens the TCP connections of packages firewall and transfer. It is
// the Dial method of servent.Transport, so a servent passes its Transport
// as is (real TCP or the in-memory network).
type Dialer interface {
	// Dial connects to addr ("ip:port"). ctx bounds the connection attempt
	// only, not the life of the connection.
	Dial(ctx context.Context, addr string) (net.Conn, error)
}

// DialFunc adapts a function to a Dialer.
type DialFunc func(ctx context.Context, addr string) (net.Conn, error)

// Dial calls f.
func (f DialFunc) Dial(ctx context.Context, addr string) (net.Conn, error) { return f(ctx, addr) }

// TCPDialer dials TCP with the operating system's sockets (a zero
// net.Dialer). Where a Dialer may be nil, nil means TCPDialer.
type TCPDialer struct{}

// Dial connects to the TCP address addr.
func (TCPDialer) Dial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}
