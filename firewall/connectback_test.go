package firewall

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"gnutella/protocol"
)

// listen opens a listener on 127.0.0.1 and runs serve on the first
// connection it accepts; the returned function waits for serve and returns
// its error.
func listen(t *testing.T, serve func(net.Conn) error) (netip.AddrPort, func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		ln.Close()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		done <- serve(c)
	}()
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().(*net.TCPAddr).AddrPort(), func() error { return <-done }
}

var testServent = protocol.GUID{0xde, 0xad, 0xbe, 0xef, 0x00, 0x11, 0x22, 0x33, 0xff, 0xAB, 0xcd, 0xef, 0x0a, 0x0b, 0x0c, 0xfe}

func closedPort(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().(*net.TCPAddr).AddrPort()
	ln.Close()
	return a
}

func TestConnectBackStyles(t *testing.T) {
	for _, c := range []struct {
		style ConnectBackStyle
		want  string
	}{
		{ConnectBackLimeWire, "CONNECT BACK\r\n\r\n"},
		{ConnectBackGTK, "\n\n"},
	} {
		t.Run(c.style.String(), func(t *testing.T) {
			addr, wait := listen(t, func(conn net.Conn) error {
				got, err := io.ReadAll(conn) // until the peer closes
				if err != nil {
					return err
				}
				if string(got) != c.want {
					return errors.New("got " + string(got))
				}
				return nil
			})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := ConnectBack(ctx, TCPDialer{}, addr, c.style); err != nil {
				t.Fatal(err)
			}
			if err := wait(); err != nil {
				t.Fatal(err)
			}
		})
	}
	// A nil Dialer dials TCP too.
	addr, wait := listen(t, func(conn net.Conn) error { _, err := io.ReadAll(conn); return err })
	if err := ConnectBack(context.Background(), nil, addr, ConnectBackGTK); err != nil {
		t.Fatal(err)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
}

func TestConnectBackErrors(t *testing.T) {
	ctx := context.Background()
	if err := ConnectBack(ctx, nil, closedPort(t), ConnectBackGTK); err == nil {
		t.Error("ConnectBack to a closed port succeeded")
	}
	called := false
	dial := DialFunc(func(context.Context, string) (net.Conn, error) { called = true; return nil, errors.New("no") })
	if err := ConnectBack(ctx, dial, netip.AddrPort{}, ConnectBackGTK); !errors.Is(err, ErrAddrRefused) {
		t.Error("ConnectBack to the zero address succeeded")
	}
	if err := ConnectBack(ctx, dial, ap("127.0.0.1:0"), ConnectBackGTK); !errors.Is(err, ErrAddrRefused) {
		t.Error("ConnectBack to port 0 succeeded")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := ConnectBack(cctx, dial, ap("127.0.0.1:1"), ConnectBackGTK); !errors.Is(err, context.Canceled) {
		t.Errorf("ConnectBack with a cancelled context = %v", err)
	}
	if called {
		t.Error("dial called for an invalid target or a cancelled context")
	}
	if err := ConnectBack(ctx, dial, ap("127.0.0.1:1"), ConnectBackGTK); err == nil || !strings.Contains(err.Error(), "no") {
		t.Errorf("dial error not returned: %v", err)
	}
	nilConn := DialFunc(func(context.Context, string) (net.Conn, error) { return nil, nil })
	if err := ConnectBack(ctx, nilConn, ap("127.0.0.1:1"), ConnectBackGTK); err == nil {
		t.Error("a nil connection was accepted")
	}
}

func TestConnectBackDialAddressIsUnmapped(t *testing.T) {
	var got string
	dial := DialFunc(func(_ context.Context, addr string) (net.Conn, error) {
		got = addr
		return nil, errors.New("stop")
	})
	_ = ConnectBack(context.Background(), dial, ap("[::ffff:127.0.0.1]:6346"), ConnectBackGTK)
	if got != "127.0.0.1:6346" {
		t.Fatalf("dialled %q", got)
	}
}

// writeStarted signals when a Write begins, so that a test can cancel while
// the Write is blocked.
type writeStarted struct {
	net.Conn
	started chan struct{}
}

func (c *writeStarted) Write(b []byte) (int, error) {
	close(c.started)
	return c.Conn.Write(b)
}

// A peer that never reads: the write blocks until ctx ends.
func TestConnectBackCancelInterruptsBlockedWrite(t *testing.T) {
	client, server := net.Pipe()
	defer server.Close()
	conn := &writeStarted{Conn: client, started: make(chan struct{})}
	dial := DialFunc(func(context.Context, string) (net.Conn, error) { return conn, nil })
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-conn.started
		cancel()
	}()
	if err := ConnectBack(ctx, dial, ap("127.0.0.1:1"), ConnectBackLimeWire); !errors.Is(err, context.Canceled) {
		t.Fatalf("ConnectBack = %v although nobody read; want context.Canceled", err)
	}
	// The connection was closed.
	if _, err := client.Write([]byte("x")); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("connection left open: %v", err)
	}
	// And a deadline does the same.
	client2, server2 := net.Pipe()
	defer server2.Close()
	dctx, dcancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer dcancel()
	dial2 := DialFunc(func(context.Context, string) (net.Conn, error) { return client2, nil })
	if err := ConnectBack(dctx, dial2, ap("127.0.0.1:1"), ConnectBackLimeWire); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ConnectBack = %v past its deadline; want context.DeadlineExceeded", err)
	}
}
