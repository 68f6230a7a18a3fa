package firewall

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"gnutella/protocol"
)

// DialFunc opens a TCP connection to addr ("ip:port"). NetDial adapts a
// net.Dialer; tests and the servent may pass their own.
type DialFunc = func(ctx context.Context, addr string) (net.Conn, error)

// NetDial returns a DialFunc dialling TCP with d (a zero Dialer if nil).
func NetDial(d *net.Dialer) DialFunc {
	if d == nil {
		d = &net.Dialer{}
	}
	return func(ctx context.Context, addr string) (net.Conn, error) {
		return d.DialContext(ctx, "tcp", addr)
	}
}

// Callback answers a Push addressed to our servent ID (notes §6.4): it dials
// addr and writes "GIV <index>:<servent ID, lower-case hex>/<name>\n\n". It
// returns the connection, with no deadline set, ready for the downloader's
// HTTP request: the caller reads the request line and hands conn to the
// upload server. Set giv.Name (gtk-gnutella sends "file"). ctx bounds the
// dial and the write; a nil dial dials TCP directly.
//
// Callback does not apply the PushGuard: call Allow before and Failed when
// it returns an error.
func Callback(ctx context.Context, dial DialFunc, addr netip.AddrPort, giv protocol.GIV) (net.Conn, error) {
	conn, err := dialAndWrite(ctx, dial, addr, giv.AppendTo(nil))
	if err != nil {
		return nil, fmt.Errorf("firewall: GIV callback to %s: %w", addr, err)
	}
	return conn, nil
}

// ConnectBackStyle is the greeting of a TCP connect-back (BEAR/7).
type ConnectBackStyle int

const (
	// ConnectBackLimeWire writes "CONNECT BACK\r\n\r\n".
	ConnectBackLimeWire ConnectBackStyle = iota
	// ConnectBackGTK writes "\n\n", as gtk-gnutella does.
	ConnectBackGTK
)

// Greeting returns the bytes the style writes.
func (s ConnectBackStyle) Greeting() []byte {
	if s == ConnectBackGTK {
		return []byte("\n\n")
	}
	return []byte("CONNECT BACK\r\n\r\n")
}

// String names the style.
func (s ConnectBackStyle) String() string {
	if s == ConnectBackGTK {
		return "gtk"
	}
	return "limewire"
}

// ConnectBack answers a TCP Connect-Back request (BEAR/7, notes §1.6, §6.6):
// it dials addr (the requester's IP and the port it asked for), writes the
// greeting of style and closes the connection. ctx bounds the whole of it;
// a nil dial dials TCP directly.
func ConnectBack(ctx context.Context, dial DialFunc, addr netip.AddrPort, style ConnectBackStyle) error {
	conn, err := dialAndWrite(ctx, dial, addr, style.Greeting())
	if err != nil {
		return fmt.Errorf("firewall: connect-back to %s: %w", addr, err)
	}
	return conn.Close()
}

var errBadTarget = errors.New("invalid address or port 0")

// aLongTimeAgo is a deadline in the past, to interrupt a blocked Write.
var aLongTimeAgo = time.Unix(1, 0)

// dialAndWrite dials addr and writes b, within ctx. On success the
// connection is returned with its write deadline cleared.
func dialAndWrite(ctx context.Context, dial DialFunc, addr netip.AddrPort, b []byte) (net.Conn, error) {
	if !addr.IsValid() || addr.Port() == 0 {
		return nil, errBadTarget
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if dial == nil {
		dial = NetDial(nil)
	}
	conn, err := dial(ctx, canonAddrPort(addr).String())
	if err != nil {
		return nil, err
	}
	if conn == nil {
		return nil, errors.New("dial returned no connection")
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetWriteDeadline(dl)
	}
	// Cancelling ctx interrupts a Write blocked on a full send buffer.
	interrupted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = conn.SetWriteDeadline(aLongTimeAgo)
		close(interrupted)
	})
	_, err = conn.Write(b)
	if !stop() {
		// ctx ended during the write: wait for the deadline change to be
		// done, then give up whatever Write said.
		<-interrupted
		conn.Close()
		if err == nil {
			err = context.Cause(ctx)
		}
		return nil, err
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetWriteDeadline(time.Time{})
	return conn, nil
}
