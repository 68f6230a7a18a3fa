package firewall

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"
)

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

// ConnectBack answers a TCP Connect-Back request (BEAR/7, docs/protocol.md §1.6, §6.6):
// it dials addr (the requester's IP and the port it asked for), writes the
// greeting of style and closes the connection. ctx bounds the whole of it;
// a nil dial means TCPDialer.
func ConnectBack(ctx context.Context, dial Dialer, addr netip.AddrPort, style ConnectBackStyle) error {
	conn, err := dialAndWrite(ctx, dial, addr, style.Greeting())
	if err != nil {
		return fmt.Errorf("firewall: connect-back to %s: %w", addr, err)
	}
	return conn.Close()
}

// aLongTimeAgo is a deadline in the past, to interrupt a blocked Write.
var aLongTimeAgo = time.Unix(1, 0)

// dialAndWrite dials addr and writes b, within ctx. On success the
// connection is returned with its write deadline cleared.
func dialAndWrite(ctx context.Context, dial Dialer, addr netip.AddrPort, b []byte) (net.Conn, error) {
	if c := ClassifyAddr(addr); c == AddrInvalid || c == AddrPortZero {
		return nil, &AddrError{Addr: addr, Class: c}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if dial == nil {
		dial = TCPDialer{}
	}
	conn, err := dial.Dial(ctx, canonAddrPort(addr).String())
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
		// done, then give up whatever Write said (a timeout we caused).
		<-interrupted
		conn.Close()
		return nil, context.Cause(ctx)
	}
	if err != nil {
		conn.Close()
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		if _, ok := ctx.Deadline(); ok && errors.Is(err, os.ErrDeadlineExceeded) {
			// The deadline of ctx, set on conn above, passed a moment
			// before ctx's own timer fired.
			return nil, context.DeadlineExceeded
		}
		return nil, err
	}
	_ = conn.SetWriteDeadline(time.Time{})
	return conn, nil
}
