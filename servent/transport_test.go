package servent

import (
	"bytes"
	"context"
	"errors"
	"gnutella/testnet/await"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/net/nettest"

	"gnutella/servent/memnet"
)

// trCheckLeaks fails t if goroutines started during t are still running when it ends. Goroutines that were already
// running when it was called (other tests' business) are not counted.
func trCheckLeaks(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// transportEnv is one transport under test: where a server listens and which Transport a client dials from.
type transportEnv struct {
	name       string
	server     Transport
	client     Transport
	listenAddr string
	// window is how much a writer may surely write without a reader.
	window int
	mem    *memnet.Network // nil for TCP
}

// The in-memory network's hosts are Transports.
var _ Transport = (*memnet.Host)(nil)

func transportEnvs() []func() transportEnv {
	return []func() transportEnv{
		func() transportEnv {
			return transportEnv{name: "TCP", server: TCPTransport{}, client: &TCPTransport{DialTimeout: 5 * time.Second},
				listenAddr: "127.0.0.1:0", window: 32 << 10}
		},
		func() transportEnv {
			n := memnet.New()
			s, c := n.Host(n.NextIP()), n.Host(n.NextIP())
			return transportEnv{name: "Mem", server: s, client: c, listenAddr: s.IP().String() + ":0",
				window: memnet.DefaultWindow, mem: n}
		},
	}
}

// pipe makes one connection: c1 dialled by the client, c2 accepted by the server. Everything is closed when t ends.
func (e transportEnv) pipe(t *testing.T) (c1, c2 net.Conn, l net.Listener) {
	t.Helper()
	c1, c2, l, err := e.makePipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c1.Close()
		c2.Close()
		l.Close()
	})
	return c1, c2, l
}

func (e transportEnv) makePipe() (c1, c2 net.Conn, l net.Listener, err error) {
	l, err = e.server.Listen(e.listenAddr)
	if err != nil {
		return nil, nil, nil, err
	}
	type accepted struct {
		c   net.Conn
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		c, err := l.Accept()
		ch <- accepted{c, err}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c1, err = e.client.Dial(ctx, l.Addr().String())
	if err != nil {
		l.Close()
		<-ch
		return nil, nil, nil, err
	}
	a := <-ch
	if a.err != nil {
		c1.Close()
		l.Close()
		return nil, nil, nil, a.err
	}
	return c1, a.c, l, nil
}

// TestNettestConn runs golang.org/x/net/nettest's net.Conn conformance suite over both transports.
func TestNettestConn(t *testing.T) {
	trCheckLeaks(t)
	for _, mk := range transportEnvs() {
		e := mk()
		t.Run(e.name, func(t *testing.T) {
			nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
				c1, c2, l, err := e.makePipe()
				if err != nil {
					return nil, nil, nil, err
				}
				return c1, c2, func() { c1.Close(); c2.Close(); l.Close() }, nil
			})
		})
	}
}

// transportConformance is the table of behaviours that both transports must show alike.
var transportConformance = []struct {
	name string
	test func(t *testing.T, e transportEnv)
}{
	{"ListenPortZeroPicksPort", func(t *testing.T, e transportEnv) {
		l, err := e.server.Listen(e.listenAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		a, ok := l.Addr().(*net.TCPAddr)
		if !ok || a.Port == 0 {
			t.Fatalf("Addr() = %#v, want a *net.TCPAddr with a port", l.Addr())
		}
	}},
	{"ListenTwiceFails", func(t *testing.T, e transportEnv) {
		l, err := e.server.Listen(e.listenAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		l2, err := e.server.Listen(l.Addr().String())
		if err == nil {
			l2.Close()
			t.Fatal("second Listen on the same address succeeded")
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			t.Errorf("second Listen: %v, want EADDRINUSE", err)
		}
	}},
	{"ListenAgainAfterClose", func(t *testing.T, e transportEnv) {
		l, err := e.server.Listen(e.listenAddr)
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		l2, err := e.server.Listen(addr)
		if err != nil {
			t.Fatalf("Listen on %s after closing its listener: %v", addr, err)
		}
		l2.Close()
	}},
	{"DialNoListenerRefused", func(t *testing.T, e transportEnv) {
		l, err := e.server.Listen(e.listenAddr)
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		c, err := e.client.Dial(context.Background(), addr)
		if err == nil {
			c.Close()
			t.Fatal("Dial to a closed port succeeded")
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("Dial: %v, want ECONNREFUSED", err)
		}
		var oe *net.OpError
		if !errors.As(err, &oe) || oe.Op != "dial" {
			t.Errorf("Dial error %#v is not a dial *net.OpError", err)
		}
	}},
	{"DialCanceledContext", func(t *testing.T, e transportEnv) {
		l, err := e.server.Listen(e.listenAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		c, err := e.client.Dial(ctx, l.Addr().String())
		if err == nil {
			c.Close()
			t.Fatal("Dial with a canceled context succeeded")
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Dial: %v, want one that Is context.Canceled", err)
		}
	}},
	{"AcceptUnblocksOnClose", func(t *testing.T, e transportEnv) {
		l, err := e.server.Listen(e.listenAddr)
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go trAccept(l, errc)
		await.Blocked(t, "gnutella/servent.trAccept")
		l.Close()
		if err := <-errc; !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
		}
		if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
			t.Errorf("second Accept after Close: %v, want net.ErrClosed", err)
		}
	}},
	{"Addresses", func(t *testing.T, e transportEnv) {
		c1, c2, l := e.pipe(t)
		for _, a := range []net.Addr{c1.LocalAddr(), c1.RemoteAddr(), c2.LocalAddr(), c2.RemoteAddr()} {
			ta, ok := a.(*net.TCPAddr)
			if !ok || ta.Port == 0 || ta.IP == nil {
				t.Errorf("address %#v is not a *net.TCPAddr with IP and port", a)
			}
			if a.Network() != "tcp" {
				t.Errorf("%v.Network() = %q", a, a.Network())
			}
		}
		if c1.LocalAddr().String() != c2.RemoteAddr().String() {
			t.Errorf("dialer's LocalAddr %v != acceptor's RemoteAddr %v", c1.LocalAddr(), c2.RemoteAddr())
		}
		if c1.RemoteAddr().String() != l.Addr().String() || c2.LocalAddr().String() != l.Addr().String() {
			t.Errorf("dialer's RemoteAddr %v, acceptor's LocalAddr %v, listener %v differ",
				c1.RemoteAddr(), c2.LocalAddr(), l.Addr())
		}
	}},
	{"BuffersWithoutReader", func(t *testing.T, e transportEnv) {
		c1, c2, _ := e.pipe(t)
		want := trRandomBytes(e.window)
		c1.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if n, err := c1.Write(want); err != nil || n != len(want) {
			t.Fatalf("Write of %d bytes with no reader: %d, %v", len(want), n, err)
		}
		got := make([]byte, len(want))
		if _, err := io.ReadFull(c2, got); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("ReadFull: %v, same bytes %v", err, bytes.Equal(got, want))
		}
	}},
	{"ZeroLengthReadWrite", func(t *testing.T, e transportEnv) {
		c1, _, _ := e.pipe(t)
		if n, err := c1.Read(nil); n != 0 || err != nil {
			t.Errorf("Read(nil) = %d, %v", n, err)
		}
		if n, err := c1.Write(nil); n != 0 || err != nil {
			t.Errorf("Write(nil) = %d, %v", n, err)
		}
	}},
	{"FullDuplexLargeTransfer", func(t *testing.T, e transportEnv) {
		c1, c2, _ := e.pipe(t)
		a, b := trRandomBytes(3<<20), trRandomBytes(2<<20+17)
		var wg sync.WaitGroup
		send := func(c net.Conn, data []byte) {
			defer wg.Done()
			for len(data) > 0 {
				k := min(len(data), 1+rand.IntN(20000))
				if _, err := c.Write(data[:k]); err != nil {
					t.Error(err)
					return
				}
				data = data[k:]
			}
			if err := CloseWrite(c); err != nil {
				t.Error(err)
			}
		}
		recv := func(c net.Conn, want []byte) {
			defer wg.Done()
			got, err := io.ReadAll(c)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("ReadAll: %d bytes, %v; want %d bytes", len(got), err, len(want))
			}
		}
		wg.Add(4)
		go send(c1, a)
		go send(c2, b)
		go recv(c2, a)
		go recv(c1, b)
		wg.Wait()
	}},
	{"CloseWriteHalfCloses", func(t *testing.T, e transportEnv) {
		c1, c2, _ := e.pipe(t)
		if _, err := c1.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		if err := CloseWrite(c1); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(c2)
		if err != nil || string(got) != "hello" {
			t.Fatalf("peer ReadAll after CloseWrite = %q, %v", got, err)
		}
		if n, err := c2.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Errorf("peer Read again = %d, %v, want io.EOF", n, err)
		}
		if _, err := c2.Write([]byte("back")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c1, buf); err != nil || string(buf) != "back" {
			t.Fatalf("Read after own CloseWrite = %q, %v", buf, err)
		}
		if _, err := c1.Write([]byte("more")); !errors.Is(err, syscall.EPIPE) {
			t.Errorf("Write after CloseWrite: %v, want EPIPE", err)
		}
	}},
	{"CloseGivesPeerDataThenEOF", func(t *testing.T, e transportEnv) {
		c1, c2, _ := e.pipe(t)
		if _, err := c1.Write([]byte("bye")); err != nil {
			t.Fatal(err)
		}
		if err := c1.Close(); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(c2)
		if err != nil || string(got) != "bye" {
			t.Fatalf("peer ReadAll after Close = %q, %v", got, err)
		}
	}},
	{"WriteAfterPeerCloseFails", func(t *testing.T, e transportEnv) {
		c1, c2, _ := e.pipe(t)
		c2.Close()
		var err error
		await.Until(t, "a Write to the closed peer to fail", func() bool { // TCP: once the peer's RST is back
			_, err = c1.Write([]byte("are you there?"))
			return err != nil
		})
		if !trIsBrokenConn(err) {
			t.Errorf("Write to a closed peer: %v, want EPIPE or ECONNRESET", err)
		}
	}},
	{"UseAfterClose", func(t *testing.T, e transportEnv) {
		c1, _, _ := e.pipe(t)
		if err := c1.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := c1.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Read after Close: %v, want net.ErrClosed", err)
		}
		if _, err := c1.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Write after Close: %v, want net.ErrClosed", err)
		}
		if err := c1.Close(); !errors.Is(err, net.ErrClosed) {
			t.Errorf("second Close: %v, want net.ErrClosed", err)
		}
		if err := c1.SetDeadline(time.Now()); !errors.Is(err, net.ErrClosed) {
			t.Errorf("SetDeadline after Close: %v, want net.ErrClosed", err)
		}
		if err := CloseWrite(c1); err == nil {
			t.Error("CloseWrite after Close succeeded")
		}
	}},
	{"CloseUnblocksRead", func(t *testing.T, e transportEnv) {
		c1, _, _ := e.pipe(t)
		errc := make(chan error, 1)
		go trRead(c1, errc)
		await.Blocked(t, "gnutella/servent.trRead")
		c1.Close()
		if err := <-errc; !errors.Is(err, net.ErrClosed) {
			t.Errorf("blocked Read after Close: %v, want net.ErrClosed", err)
		}
	}},
	{"CloseUnblocksWrite", func(t *testing.T, e transportEnv) {
		c1, _, _ := e.pipe(t)
		errc := make(chan error, 1)
		go func() { errc <- trWriteUntilError(c1) }()
		await.Blocked(t, "gnutella/servent.trWriteUntilError") // its buffers are full
		c1.Close()
		if err := <-errc; !errors.Is(err, net.ErrClosed) {
			t.Errorf("blocked Write after Close: %v, want net.ErrClosed", err)
		}
	}},
	{"PeerCloseUnblocksRead", func(t *testing.T, e transportEnv) {
		c1, c2, _ := e.pipe(t)
		errc := make(chan error, 1)
		go trRead(c1, errc)
		await.Blocked(t, "gnutella/servent.trRead")
		c2.Close()
		if err := <-errc; err != io.EOF {
			t.Errorf("blocked Read after the peer's Close: %v, want io.EOF", err)
		}
	}},
	{"PeerCloseUnblocksWrite", func(t *testing.T, e transportEnv) {
		c1, c2, _ := e.pipe(t)
		errc := make(chan error, 1)
		go func() { errc <- trWriteUntilError(c1) }()
		await.Blocked(t, "gnutella/servent.trWriteUntilError") // its buffers are full
		c2.Close()
		if err := <-errc; !trIsBrokenConn(err) {
			t.Errorf("blocked Write after the peer's Close: %v, want EPIPE or ECONNRESET", err)
		}
	}},
	{"DeadlineInThePast", func(t *testing.T, e transportEnv) {
		c1, c2, _ := e.pipe(t)
		// One write: once its first byte is read, the rest has arrived too.
		if _, err := c2.Write([]byte("!waiting")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c1, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		c1.SetDeadline(time.Now().Add(-time.Second))
		n, err := c1.Read(make([]byte, 10))
		trCheckTimeout(t, "Read", n, err)
		n, err = c1.Write([]byte("x"))
		trCheckTimeout(t, "Write", n, err)
		c1.SetDeadline(time.Time{}) // zero clears
		buf := make([]byte, 7)
		if _, err := io.ReadFull(c1, buf); err != nil || string(buf) != "waiting" {
			t.Errorf("Read after clearing the deadline = %q, %v", buf, err)
		}
		if _, err := c1.Write([]byte("x")); err != nil {
			t.Errorf("Write after clearing the deadline: %v", err)
		}
	}},
	{"ReadDeadlineFires", func(t *testing.T, e transportEnv) {
		c1, _, _ := e.pipe(t)
		start := time.Now()
		c1.SetReadDeadline(start.Add(50 * time.Millisecond))
		n, err := c1.Read(make([]byte, 10))
		trCheckTimeout(t, "Read", n, err)
		if d := time.Since(start); d < 50*time.Millisecond {
			t.Errorf("Read timed out after %v, before its deadline", d)
		}
		// The expired deadline stays in force until moved.
		n, err = c1.Read(make([]byte, 10))
		trCheckTimeout(t, "second Read", n, err)
	}},
	{"WriteDeadlineFiresPartway", func(t *testing.T, e transportEnv) {
		c1, c2, _ := e.pipe(t)
		c1.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		big := make([]byte, 64<<20) // more than any socket buffer
		n, err := c1.Write(big)
		if !trIsTimeout(err) || n == len(big) {
			t.Fatalf("Write of 64 MiB with no reader = %d, %v; want a timeout partway", n, err)
		}
		// What was written gets through.
		c1.Close()
		got, err := io.Copy(io.Discard, c2)
		if err != nil || got != int64(n) {
			t.Errorf("peer read %d bytes, %v; the timed-out Write reported %d", got, err, n)
		}
	}},
	{"ExtendDeadlineWhileBlocked", func(t *testing.T, e transportEnv) {
		readAfterMovingDeadline(t, e, time.Now().Add(10*time.Second))
	}},
	{"ClearDeadlineWhileBlocked", func(t *testing.T, e transportEnv) {
		readAfterMovingDeadline(t, e, time.Time{})
	}},
	{"ShortenDeadlineWhileBlocked", func(t *testing.T, e transportEnv) {
		c1, _, _ := e.pipe(t)
		c1.SetReadDeadline(time.Now().Add(time.Hour))
		res := make(chan error, 1)
		go trRead(c1, res)
		await.Blocked(t, "gnutella/servent.trRead")
		c1.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
		trCheckTimeout(t, "Read", 0, await.Recv(t, "the Read to time out after its deadline was brought forward", res))
	}},
	{"ReadDeadlineLeavesWriteAlone", func(t *testing.T, e transportEnv) {
		c1, c2, _ := e.pipe(t)
		c1.SetReadDeadline(time.Now().Add(-time.Second))
		if _, err := c1.Write([]byte("still")); err != nil {
			t.Fatalf("Write with an expired read deadline: %v", err)
		}
		c1.SetWriteDeadline(time.Now().Add(-time.Second))
		c1.SetReadDeadline(time.Time{})
		if _, err := c2.Write([]byte("ok")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 2)
		if _, err := io.ReadFull(c1, buf); err != nil {
			t.Fatalf("Read with an expired write deadline: %v", err)
		}
	}},
}

func TestTransportConformance(t *testing.T) {
	trCheckLeaks(t)
	for _, mk := range transportEnvs() {
		e0 := mk()
		t.Run(e0.name, func(t *testing.T) {
			for _, tc := range transportConformance {
				t.Run(tc.name, func(t *testing.T) {
					e := mk() // a fresh network for each case
					if e.mem != nil {
						// Registered first, so run last: after the case's own cleanups closed everything.
						t.Cleanup(func() {
							if s := e.mem.Stats(); s.Conns != 0 || s.Listeners != 0 || s.BufferCap != 0 {
								t.Errorf("after the case, the network still holds %+v", s)
							}
						})
					}
					tc.test(t, e)
				})
			}
		})
	}
}

func TestTCPTransportGivesTCPConns(t *testing.T) {
	trCheckLeaks(t)
	e := transportEnvs()[0]()
	c1, c2, l := e.pipe(t)
	if _, ok := c1.(*net.TCPConn); !ok {
		t.Errorf("Dial gave %T, want *net.TCPConn", c1)
	}
	if _, ok := c2.(*net.TCPConn); !ok {
		t.Errorf("Accept gave %T, want *net.TCPConn", c2)
	}
	if _, ok := l.(*net.TCPListener); !ok {
		t.Errorf("Listen gave %T, want *net.TCPListener", l)
	}
}

func TestTCPTransportDialTimeout(t *testing.T) {
	trCheckLeaks(t)
	// A listener with a full backlog that never accepts makes a dial hang on most systems, but not reliably on
	// loopback; so check only that DialTimeout reaches the Dialer and a zero timeout leaves the context in charge.
	tr := TCPTransport{DialTimeout: time.Nanosecond}
	if c, err := tr.Dial(context.Background(), "127.0.0.1:1"); err == nil {
		c.Close()
		t.Fatal("dial with a 1 ns timeout succeeded")
	} else if ne, ok := err.(net.Error); (!ok || !ne.Timeout()) && !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial with a 1 ns timeout: %v", err)
	}
}

func TestCloseWriteUnsupported(t *testing.T) {
	trCheckLeaks(t)
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if err := CloseWrite(a); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("CloseWrite(net.Pipe) = %v, want errors.ErrUnsupported", err)
	}
}

// readAfterMovingDeadline blocks a Read under a 300 ms deadline, moves the deadline to to while the Read is
// blocked, and checks that bytes written after the first deadline are read. On a machine too loaded to move the
// deadline in time it tries again, and skips after a few tries.
func readAfterMovingDeadline(t *testing.T, e transportEnv, to time.Time) {
	t.Helper()
	for try := 1; ; try++ {
		c1, c2, _ := e.pipe(t)
		first := time.Now().Add(300 * time.Millisecond)
		c1.SetReadDeadline(first)
		type result struct {
			n   int
			err error
		}
		res := make(chan result, 1)
		go func() {
			n, err := trReadN(c1)
			res <- result{n, err}
		}()
		// Blocked in Read, or (on a loaded machine) back already: then the try is retried below.
		await.Until(t, "the Read to block", func() bool { return len(res) > 0 || await.IsBlocked("gnutella/servent.trReadN") })
		c1.SetReadDeadline(to)
		if time.Until(first) < 100*time.Millisecond {
			c1.Close()
			<-res
			if try == 5 {
				t.Skip("machine too loaded to move a deadline within 200 ms")
			}
			continue
		}
		time.Sleep(time.Until(first) + 200*time.Millisecond)
		if _, err := c2.Write([]byte("late")); err != nil {
			t.Fatal(err)
		}
		if r := <-res; r.n != 4 || r.err != nil {
			t.Errorf("Read after its deadline was moved = %d, %v; want the 4 late bytes", r.n, r.err)
		}
		return
	}
}

// trAccept, trRead and trReadN block in one call, under a name that
// await.Blocked can find on the goroutine's stack.
//
//go:noinline
func trAccept(l net.Listener, errc chan<- error) {
	_, err := l.Accept()
	errc <- err
}

//go:noinline
func trRead(c net.Conn, errc chan<- error) {
	_, err := c.Read(make([]byte, 10))
	errc <- err
}

//go:noinline
func trReadN(c net.Conn) (int, error) { return c.Read(make([]byte, 10)) }

// trWriteUntilError writes 256 KiB chunks to c until a Write fails.
func trWriteUntilError(c net.Conn) error {
	chunk := make([]byte, 256<<10)
	for {
		if _, err := c.Write(chunk); err != nil {
			return err
		}
	}
}

func trRandomBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return b
}

func trIsTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) && errors.As(err, &ne) && ne.Timeout()
}

func trCheckTimeout(t *testing.T, op string, n int, err error) {
	t.Helper()
	if n != 0 || !trIsTimeout(err) {
		t.Errorf("%s = %d, %v; want 0 and a timeout (os.ErrDeadlineExceeded, net.Error.Timeout)", op, n, err)
		return
	}
	var oe *net.OpError
	if !errors.As(err, &oe) {
		t.Errorf("%s timeout %#v is not a *net.OpError", op, err)
	}
}

// trIsBrokenConn tells whether err is what a write to a connection the peer closed gives.
func trIsBrokenConn(err error) bool {
	return errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}
