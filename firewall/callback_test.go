package firewall

import (
	"bufio"
	"bytes"
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

func TestCallbackWritesGIVThenCarriesHTTP(t *testing.T) {
	const request = "GET /uri-res/N2R?urn:sha1:PLSTHIPQGSSZTS5FJUPAKUZWUGYQYPFB HTTP/1.1\r\nX-Node: 127.0.0.1:6346\r\n\r\n"
	const answer = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
	giv := protocol.GIV{Index: 7, ServentID: testServent, Name: "file"}
	wantLine := "GIV 7:deadbeef00112233ffabcdef0a0b0cfe/file\n\n"

	addr, wait := listen(t, func(c net.Conn) error {
		// The downloader side: the exact GIV bytes, then a request.
		raw := make([]byte, len(wantLine))
		if _, err := io.ReadFull(c, raw); err != nil {
			return err
		}
		if string(raw) != wantLine {
			return errors.New("GIV bytes: " + string(raw))
		}
		hex := raw[len("GIV 7:") : len("GIV 7:")+32]
		if !bytes.Equal(hex, bytes.ToLower(hex)) {
			return errors.New("GIV hex not lower case")
		}
		g, err := protocol.ReadGIV(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil || g != giv {
			return errors.New("ReadGIV disagrees")
		}
		if _, err := io.WriteString(c, request); err != nil {
			return err
		}
		got, err := io.ReadAll(c)
		if err != nil {
			return err
		}
		if string(got) != answer {
			return errors.New("answer: " + string(got))
		}
		return nil
	})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := Callback(ctx, NetDial(nil), addr, giv)
	if err != nil {
		t.Fatal(err)
	}
	// The caller (upload server) reads the request line and headers.
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "GET /uri-res/N2R?urn:sha1:") {
		t.Fatalf("request line %q, %v", line, err)
	}
	for {
		h, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if h == "\r\n" {
			break
		}
	}
	if _, err := io.WriteString(conn, answer); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if err := wait(); err != nil {
		t.Fatal(err)
	}
}

func TestCallbackDefaultDialerAndUpperCaseReader(t *testing.T) {
	// A nil dial dials TCP; the reader accepts the hex in either case, and
	// what we write is lower case.
	addr, wait := listen(t, func(c net.Conn) error {
		g, err := protocol.ReadGIV(bufio.NewReader(c))
		if err != nil {
			return err
		}
		if g.ServentID != testServent || g.Index != 0 || g.Name != "" {
			return errors.New("GIV " + g.String())
		}
		return nil
	})
	conn, err := Callback(context.Background(), nil, addr, protocol.GIV{ServentID: testServent})
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	up := "GIV 0:DEADBEEF00112233FFABCDEF0A0B0CFE/file"
	if g, err := protocol.ParseGIV(up); err != nil || g.ServentID != testServent {
		t.Fatalf("ParseGIV(%q) = %v, %v", up, g, err)
	}
}

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

func TestCallbackErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := Callback(ctx, nil, closedPort(t), protocol.GIV{}); err == nil {
		t.Error("Callback to a closed port succeeded")
	}
	called := false
	dial := func(context.Context, string) (net.Conn, error) { called = true; return nil, errors.New("no") }
	if _, err := Callback(ctx, dial, netip.AddrPort{}, protocol.GIV{}); err == nil {
		t.Error("Callback to the zero address succeeded")
	}
	if _, err := Callback(ctx, dial, ap("127.0.0.1:0"), protocol.GIV{}); err == nil {
		t.Error("Callback to port 0 succeeded")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Callback(cctx, dial, ap("127.0.0.1:1"), protocol.GIV{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Callback with a cancelled context = %v", err)
	}
	if called {
		t.Error("dial called for an invalid target or a cancelled context")
	}
	if _, err := Callback(ctx, dial, ap("127.0.0.1:1"), protocol.GIV{}); err == nil || !strings.Contains(err.Error(), "no") {
		t.Errorf("dial error not returned: %v", err)
	}
	nilConn := func(context.Context, string) (net.Conn, error) { return nil, nil }
	if _, err := Callback(ctx, nilConn, ap("127.0.0.1:1"), protocol.GIV{}); err == nil {
		t.Error("a nil connection was accepted")
	}
}

func TestCallbackDialAddressIsUnmapped(t *testing.T) {
	var got string
	dial := func(_ context.Context, addr string) (net.Conn, error) {
		got = addr
		return nil, errors.New("stop")
	}
	_, _ = Callback(context.Background(), dial, ap("[::ffff:127.0.0.1]:6346"), protocol.GIV{})
	if got != "127.0.0.1:6346" {
		t.Fatalf("dialled %q", got)
	}
}

// A peer that never reads: the write blocks until ctx ends.
func TestCallbackCancelInterruptsBlockedWrite(t *testing.T) {
	client, server := net.Pipe()
	defer server.Close()
	dial := func(context.Context, string) (net.Conn, error) { return client, nil }
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(20 * time.Millisecond)
		cancel()
	}()
	conn, err := Callback(ctx, dial, ap("127.0.0.1:1"), protocol.GIV{ServentID: testServent})
	if err == nil {
		conn.Close()
		t.Fatal("Callback succeeded although nobody read")
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
	dial2 := func(context.Context, string) (net.Conn, error) { return client2, nil }
	if _, err := Callback(dctx, dial2, ap("127.0.0.1:1"), protocol.GIV{}); err == nil {
		t.Fatal("Callback succeeded past its deadline")
	}
}

func TestCallbackClearsDeadline(t *testing.T) {
	addr, wait := listen(t, func(c net.Conn) error {
		if _, err := protocol.ReadGIV(bufio.NewReader(c)); err != nil {
			return err
		}
		time.Sleep(500 * time.Millisecond)
		_, err := io.WriteString(c, "ok")
		return err
	})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	conn, err := Callback(ctx, nil, addr, protocol.GIV{ServentID: testServent, Name: "file"})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	time.Sleep(400 * time.Millisecond) // past the context's deadline
	if _, err := io.WriteString(conn, "still usable"); err != nil {
		t.Fatalf("write after the context deadline: %v", err)
	}
	buf := make([]byte, 2)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "ok" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
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
			if err := ConnectBack(ctx, NetDial(&net.Dialer{}), addr, c.style); err != nil {
				t.Fatal(err)
			}
			if err := wait(); err != nil {
				t.Fatal(err)
			}
		})
	}
	if err := ConnectBack(context.Background(), nil, closedPort(t), ConnectBackGTK); err == nil {
		t.Error("ConnectBack to a closed port succeeded")
	}
}
