package memnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"gnutella/testnet/await"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

// memPair makes a network with hosts a (the dialer) and b (the listener) and one connection between them.
// memCheckLeaks fails t if goroutines started during t are still running when it ends.
func memCheckLeaks(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

func memPair(t *testing.T, n *Network) (a, b *Host, ca, cb net.Conn) {
	t.Helper()
	a, b = n.Host(n.NextIP()), n.Host(n.NextIP())
	ca, cb = memDial(t, a, b)
	return a, b, ca, cb
}

// memDial connects from to a new listener on to, closes the listener and returns both ends, closed when t ends.
func memDial(t *testing.T, from, to *Host) (net.Conn, net.Conn) {
	t.Helper()
	l, err := to.Listen(":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c1, err := from.Dial(context.Background(), l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c2, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c1.Close(); c2.Close() })
	return c1, c2
}

// memCheckEmpty fails t unless every connection and listener of n was closed and no buffer is held.
func memCheckEmpty(t *testing.T, n *Network) {
	t.Helper()
	if s := n.Stats(); s.Conns != 0 || s.Listeners != 0 || s.Buffered != 0 || s.BufferCap != 0 {
		t.Errorf("network not empty: %+v", s)
	}
}

func TestMemNextIP(t *testing.T) {
	n := New()
	if ip := n.NextIP(); ip != netip.MustParseAddr("127.1.0.1") {
		t.Fatalf("first NextIP = %v", ip)
	}
	seen := map[netip.Addr]bool{}
	for range 1000 {
		ip := n.NextIP()
		b := ip.As4()
		if seen[ip] || b[0] != 127 || b[3] == 0 || b[3] == 255 {
			t.Fatalf("NextIP gave %v", ip)
		}
		seen[ip] = true
	}
	if n.Stats().Hosts != 0 {
		t.Error("NextIP created hosts")
	}
	if h1, h2 := n.Host(netip.MustParseAddr("127.1.0.9")), n.Host(netip.MustParseAddr("::ffff:127.1.0.9")); h1 != h2 {
		t.Error("Host of the same address (IPv4 and IPv4-mapped) gave two hosts")
	}
}

func TestMemAddresses(t *testing.T) {
	memCheckLeaks(t)
	n := New()
	a, b := n.Host(n.NextIP()), n.Host(n.NextIP())
	l, err := b.Listen(b.IP().String() + ":6346")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got := l.Addr().String(); got != b.IP().String()+":6346" {
		t.Errorf("listener Addr = %s", got)
	}
	ports := map[int]bool{}
	for range 3 {
		c1, err := a.Dial(context.Background(), l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c1.Close()
		c2, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		la := c1.LocalAddr().(*net.TCPAddr)
		if la.AddrPort().Addr().Unmap() != a.IP() || la.Port < ephemeralLow || la.Port > ephemeralHigh {
			t.Errorf("dialer's LocalAddr = %v, want %v with an ephemeral port", la, a.IP())
		}
		if ports[la.Port] {
			t.Errorf("two open dials share local port %d", la.Port)
		}
		ports[la.Port] = true
		if c2.RemoteAddr().String() != la.String() {
			t.Errorf("listener sees %v, dialer is %v", c2.RemoteAddr(), la)
		}
		if c1.RemoteAddr().String() != l.Addr().String() {
			t.Errorf("dialer's RemoteAddr = %v, want %v", c1.RemoteAddr(), l.Addr())
		}
	}
}

func TestMemListenAddressForms(t *testing.T) {
	n := New()
	h := n.Host(netip.MustParseAddr("127.1.2.3"))
	for _, addr := range []string{":0", "0.0.0.0:0", "[::]:0", "127.1.2.3:0", "[::ffff:127.1.2.3]:0", ":7000"} {
		l, err := h.Listen(addr)
		if err != nil {
			t.Errorf("Listen(%q): %v", addr, err)
			continue
		}
		if ip := l.Addr().(*net.TCPAddr).AddrPort().Addr().Unmap(); ip != h.IP() {
			t.Errorf("Listen(%q) listens on %v, want the host's address", addr, l.Addr())
		}
		l.Close()
	}
	if _, err := h.Listen("127.0.0.1:0"); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Errorf("Listen on another host's address: %v, want EADDRNOTAVAIL", err)
	}
	for _, bad := range []string{"127.1.2.3", "127.1.2.3:x", "127.1.2.3:70000", "localhost:0"} {
		if l, err := h.Listen(bad); err == nil {
			l.Close()
			t.Errorf("Listen(%q) succeeded", bad)
		}
	}
	for _, bad := range []string{"127.1.2.3", "localhost:6346", ""} {
		if c, err := h.Dial(context.Background(), bad); err == nil {
			c.Close()
			t.Errorf("Dial(%q) succeeded", bad)
		}
	}
	memCheckEmpty(t, n)
}

func TestMemDialUnknownHostRefused(t *testing.T) {
	n := New()
	h := n.Host(n.NextIP())
	_, err := h.Dial(context.Background(), "127.9.9.9:6346")
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Dial to an address without a host: %v, want ECONNREFUSED", err)
	}
}

// A writer may write exactly the window without a reader; one byte more blocks until the reader takes some.
func TestMemWindow(t *testing.T) {
	memCheckLeaks(t)
	for _, window := range []int{0, 1000, 4096, 200 << 10} {
		t.Run(fmt.Sprint(window), func(t *testing.T) {
			n := New()
			n.Window = window
			if window == 0 {
				window = DefaultWindow
			}
			_, _, c1, c2 := memPair(t, n)
			want := memRandomBytes(window + 1)
			if k, err := c1.Write(want[:window]); k != window || err != nil {
				t.Fatalf("Write of the window = %d, %v", k, err)
			}
			if s := n.Stats(); s.Buffered != window {
				t.Errorf("buffered %d, want %d", s.Buffered, window)
			}
			c1.SetWriteDeadline(time.Now().Add(30 * time.Millisecond))
			if k, err := c1.Write(want[window:]); k != 0 || !memIsTimeout(err) {
				t.Fatalf("Write beyond the window = %d, %v; want it to block until its deadline", k, err)
			}
			c1.SetWriteDeadline(time.Time{})
			// A blocked Write goes on as the reader drains.
			done := make(chan error, 1)
			go func() {
				_, err := c1.Write(want[window:])
				done <- err
			}()
			got := make([]byte, len(want))
			if _, err := io.ReadFull(c2, got); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("ReadFull: %v, same %v", err, bytes.Equal(got, want))
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if s := n.Stats(); s.Buffered != 0 || s.BufferCap != 0 {
				t.Errorf("after draining: %+v, want no buffer", s)
			}
		})
	}
}

// Buffers grow with what is unread and are released once drained: idle connections hold none.
func TestMemBufferGrowsAndIsReleased(t *testing.T) {
	n := New()
	_, _, c1, c2 := memPair(t, n)
	if s := n.Stats(); s.BufferCap != 0 {
		t.Fatalf("a fresh connection holds %d bytes of buffer", s.BufferCap)
	}
	c1.Write(make([]byte, 23))
	if s := n.Stats(); s.BufferCap != 512 {
		t.Errorf("23 unread bytes hold %d bytes of buffer, want 512", s.BufferCap)
	}
	c1.Write(make([]byte, 5000))
	if s := n.Stats(); s.BufferCap != 8192 || s.Buffered != 5023 {
		t.Errorf("5023 unread bytes: %+v, want an 8 KiB buffer", s)
	}
	io.ReadFull(c2, make([]byte, 5000))
	if s := n.Stats(); s.BufferCap != 8192 || s.Buffered != 23 {
		t.Errorf("23 bytes left: %+v", s)
	}
	io.ReadFull(c2, make([]byte, 23))
	if s := n.Stats(); s.BufferCap != 0 {
		t.Errorf("drained connection holds %d bytes of buffer", s.BufferCap)
	}
	// Data the peer sent to a closed end is dropped with its buffer.
	c2.Write(make([]byte, 3000))
	c1.Close()
	if s := n.Stats(); s.BufferCap != 0 || s.Buffered != 0 {
		t.Errorf("after the reader closed: %+v", s)
	}
}

// The ring wraps around: interleaved writes and reads of odd sizes keep the bytes in order.
func TestMemRingOrder(t *testing.T) {
	memCheckLeaks(t)
	n := New()
	n.Window = 3000
	_, _, c1, c2 := memPair(t, n)
	want := memRandomBytes(1 << 20)
	go func() {
		rest := want
		for len(rest) > 0 {
			k := min(len(rest), 1+rand.IntN(2500))
			if _, err := c1.Write(rest[:k]); err != nil {
				return
			}
			rest = rest[k:]
		}
		c1.Close()
	}()
	var got []byte
	buf := make([]byte, 4000)
	for {
		k, err := c2.Read(buf[:1+rand.IntN(len(buf))])
		got = append(got, buf[:k]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("received %d bytes, differing from the %d sent", len(got), len(want))
	}
}

func TestMemPortsReused(t *testing.T) {
	memCheckLeaks(t)
	n := New()
	a, b := n.Host(n.NextIP()), n.Host(n.NextIP())
	l, err := b.Listen(":0")
	if err != nil {
		t.Fatal(err)
	}
	// More dials than there are ephemeral ports: closed ends give their ports back.
	for i := range ephemeralHigh - ephemeralLow + 100 {
		c1, err := a.Dial(context.Background(), l.Addr().String())
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		c2, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		c1.Close()
		c2.Close()
	}
	l.Close()
	memCheckEmpty(t, n)
}

func TestMemBacklog(t *testing.T) {
	n := New()
	n.Backlog = 2
	a, b := n.Host(n.NextIP()), n.Host(n.NextIP())
	l, err := b.Listen(":0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	for range 2 {
		c, err := a.Dial(context.Background(), l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	if _, err := a.Dial(context.Background(), l.Addr().String()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial beyond the backlog: %v, want ECONNREFUSED", err)
	}
	// Data written before Accept waits for the acceptor; closing the listener closes what it never accepted.
	conns[0].Write([]byte("early"))
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "early" {
		t.Errorf("accepted end read %q, %v", buf, err)
	}
	l.Close()
	if _, err := conns[1].Read(buf); err != io.EOF {
		t.Errorf("dialer whose connection was never accepted reads %v, want io.EOF", err)
	}
	for _, c := range append(conns, c) {
		c.Close()
	}
	memCheckEmpty(t, n)
}

func TestMemBlockInbound(t *testing.T) {
	memCheckLeaks(t)
	n := New()
	a, fw := n.Host(n.NextIP()), n.Host(n.NextIP())
	lfw, err := fw.Listen(":0")
	if err != nil {
		t.Fatal(err)
	}
	defer lfw.Close()
	la, err := a.Listen(":0")
	if err != nil {
		t.Fatal(err)
	}
	defer la.Close()
	before, _ := memDial(t, a, fw) // established before the firewall goes up
	n.SetBlockInbound(fw.IP(), true)

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = a.Dial(ctx, lfw.Addr().String())
	var ne net.Error
	if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("dial into the firewall: %v, want a timeout", err)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("dial into the firewall failed after %v, before its context's deadline", d)
	}
	// Its own dials, and to itself, work; so do established connections.
	for _, to := range []net.Listener{la, lfw} {
		c, err := fw.Dial(context.Background(), to.Addr().String())
		if err != nil {
			t.Errorf("firewalled host's dial to %v: %v", to.Addr(), err)
			continue
		}
		c.Close()
		s, _ := to.Accept()
		s.Close()
	}
	if _, err := before.Write([]byte("x")); err != nil {
		t.Errorf("established connection: %v", err)
	}
	// A canceled dial stops waiting.
	ctx2, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel2)
	if _, err := a.Dial(ctx2, lfw.Addr().String()); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled dial into the firewall: %v", err)
	}
	// Without a context deadline, ConnectTimeout bounds the wait.
	n2 := New()
	n2.ConnectTimeout = 30 * time.Millisecond
	x, y := n2.Host(n2.NextIP()), n2.Host(n2.NextIP())
	ly, _ := y.Listen(":0")
	defer ly.Close()
	n2.SetBlockInbound(y.IP(), true)
	if _, err := x.Dial(context.Background(), ly.Addr().String()); !errors.Is(err, syscall.ETIMEDOUT) {
		t.Errorf("dial into the firewall without a deadline: %v, want ETIMEDOUT", err)
	}
	// RefuseBlocked answers at once.
	n3 := New()
	n3.RefuseBlocked = true
	x, y = n3.Host(n3.NextIP()), n3.Host(n3.NextIP())
	ly3, _ := y.Listen(":0")
	defer ly3.Close()
	n3.SetBlockInbound(y.IP(), true)
	if _, err := x.Dial(context.Background(), ly3.Addr().String()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial into a refusing firewall: %v, want ECONNREFUSED", err)
	}
	// Lifting the firewall lets dials in again.
	n.SetBlockInbound(fw.IP(), false)
	c, err := a.Dial(context.Background(), lfw.Addr().String())
	if err != nil {
		t.Fatalf("dial after lifting the firewall: %v", err)
	}
	c.Close()
}

func TestMemPartition(t *testing.T) {
	memCheckLeaks(t)
	synctest.Test(t, func(t *testing.T) {
		n := New()
		a, b, ab, ba := memPair(t, n)
		c := n.Host(n.NextIP())
		ac, ca := memDial(t, a, c)
		lb, _ := b.Listen(":0")
		defer lb.Close()
		la, _ := a.Listen(":0")
		defer la.Close()

		n.Partition(a.IP(), b.IP(), true)
		if _, err := ab.Write([]byte("into the void")); err != nil {
			t.Fatalf("write into a partition (buffered): %v", err)
		}
		ba.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
		if _, err := ba.Read(make([]byte, 10)); !memIsTimeout(err) {
			t.Errorf("read across a partition: %v, want a timeout", err)
		}
		ba.SetReadDeadline(time.Time{})
		for _, d := range []struct {
			from *Host
			to   net.Listener
		}{{a, lb}, {b, la}} {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			if _, err := d.from.Dial(ctx, d.to.Addr().String()); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("dial across the partition: %v", err)
			}
			cancel()
		}
		// Other links are untouched.
		ac.Write([]byte("hi"))
		if _, err := io.ReadFull(ca, make([]byte, 2)); err != nil {
			t.Errorf("a link outside the partition: %v", err)
		}
		// The peer's close does not cross the partition until it heals; then data and EOF arrive.
		ab.Close()
		got := make(chan []byte, 1)
		go func() {
			b, _ := io.ReadAll(ba)
			got <- b
		}()
		synctest.Wait() // the reader is blocked for good: nothing crossed
		select {
		case g := <-got:
			t.Fatalf("read across the partition returned %q", g)
		default:
		}
		n.Partition(b.IP(), a.IP(), false)
		if g := <-got; string(g) != "into the void" {
			t.Errorf("after healing, read %q", g)
		}
		if c, err := a.Dial(context.Background(), lb.Addr().String()); err != nil {
			t.Errorf("dial after healing: %v", err)
		} else {
			c.Close()
		}
	})
}

// Writes to a peer that closed while partitioned fail once the partition heals.
func TestMemPartitionHealsIntoBrokenPipe(t *testing.T) {
	memCheckLeaks(t)
	synctest.Test(t, func(t *testing.T) {
		n := New()
		n.Window = 1024
		a, b, ab, ba := memPair(t, n)
		n.Partition(a.IP(), b.IP(), true)
		ba.Close()
		errc := make(chan error, 1)
		go func() { errc <- memWriteUntilError(ab) }()
		synctest.Wait() // the writer filled the window and is blocked for good
		select {
		case err := <-errc:
			t.Fatalf("write across the partition failed early: %v", err)
		default:
		}
		n.Partition(a.IP(), b.IP(), false)
		if err := <-errc; !errors.Is(err, syscall.EPIPE) {
			t.Errorf("write after healing: %v, want EPIPE", err)
		}
		ab.Close()
		memCheckEmpty(t, n)
	})
}

// The transport starts no goroutine for a connection.
func TestMemNoGoroutinePerConn(t *testing.T) {
	memCheckLeaks(t)
	n := New()
	before := runtime.NumGoroutine()
	hosts := make([]*Host, 100)
	ls := make([]net.Listener, len(hosts))
	for i := range hosts {
		hosts[i] = n.Host(n.NextIP())
		ls[i], _ = hosts[i].Listen(":6346")
	}
	var conns []net.Conn
	for i, h := range hosts {
		for j := 1; j <= 5; j++ {
			c, err := h.Dial(context.Background(), ls[(i+j)%len(ls)].Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(time.Hour))
			conns = append(conns, c)
		}
	}
	for _, l := range ls {
		for range 5 {
			c, _ := l.Accept()
			c.SetDeadline(time.Now().Add(time.Hour))
			conns = append(conns, c)
		}
	}
	if g := runtime.NumGoroutine(); g > before {
		t.Errorf("%d open connections: goroutines went from %d to %d", len(conns), before, g)
	}
	if s := n.Stats(); s.Conns != 1000 || s.Listeners != 100 {
		t.Errorf("stats %+v", s)
	}
	for _, c := range conns {
		c.Close()
	}
	for _, l := range ls {
		l.Close()
	}
	memCheckEmpty(t, n)
}

// Deadlines run on the time package's timers, so a synctest bubble's virtual clock drives them: a 30 s read
// deadline fires after exactly 30 s of virtual time, at once in real time.
func TestMemSynctestDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New()
		a, b := n.Host(n.NextIP()), n.Host(n.NextIP())
		l, err := b.Listen(":6346")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		c1, err := a.Dial(t.Context(), l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c1.Close()
		c2, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()

		start := time.Now()
		c1.SetReadDeadline(start.Add(30 * time.Second))
		n1, err := c1.Read(make([]byte, 10))
		if n1 != 0 || !memIsTimeout(err) {
			t.Fatalf("Read = %d, %v; want a timeout", n1, err)
		}
		if d := time.Since(start); d != 30*time.Second {
			t.Errorf("read deadline fired after %v of virtual time, want 30s", d)
		}

		// A blocked Read is durably blocked (synctest.Wait returns), and a Write wakes it.
		c1.SetReadDeadline(time.Time{})
		got := make(chan string, 1)
		go func() {
			buf := make([]byte, 10)
			k, _ := c1.Read(buf)
			got <- string(buf[:k])
		}()
		synctest.Wait()
		select {
		case g := <-got:
			t.Fatalf("Read returned %q before anything was written", g)
		default:
		}
		c2.Write([]byte("ping"))
		if g := <-got; g != "ping" {
			t.Errorf("Read = %q", g)
		}

		// Write deadlines and dials into a firewall run on virtual time too.
		c2.SetWriteDeadline(time.Now().Add(time.Minute))
		start = time.Now()
		if _, err := c2.Write(make([]byte, 1<<20)); !memIsTimeout(err) {
			t.Errorf("Write of 1 MiB to a reader that never reads: %v", err)
		}
		if d := time.Since(start); d != time.Minute {
			t.Errorf("write deadline fired after %v", d)
		}
		n.SetBlockInbound(b.IP(), true)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		start = time.Now()
		if _, err := a.Dial(ctx, l.Addr().String()); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("dial into the firewall: %v", err)
		}
		if d := time.Since(start); d != 10*time.Second {
			t.Errorf("dial into the firewall gave up after %v", d)
		}
	})
}

// Many hosts, many links, all at once, under the race detector: every byte arrives and nothing is left over.
func TestMemManyHosts(t *testing.T) {
	memCheckLeaks(t)
	hostsN, links := 2000, 4
	if testing.Short() {
		hostsN = 200
	}
	n := New()
	hosts := make([]*Host, hostsN)
	ls := make([]net.Listener, hostsN)
	for i := range hosts {
		hosts[i] = n.Host(n.NextIP())
		var err error
		if ls[i], err = hosts[i].Listen(":6346"); err != nil {
			t.Fatal(err)
		}
	}
	// Each host echoes one line on every accepted link, then closes it.
	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Go(func() {
			for range links {
				c, err := l.Accept()
				if err != nil {
					t.Error(err)
					return
				}
				go func() {
					defer c.Close()
					c.SetDeadline(time.Now().Add(time.Minute))
					io.Copy(c, c)
				}()
			}
		})
	}
	var errs sync.Map
	var dialers sync.WaitGroup
	for i, h := range hosts {
		dialers.Go(func() {
			for j := 1; j <= links; j++ {
				to := ls[(i+j*7)%hostsN].Addr().String()
				c, err := h.Dial(context.Background(), to)
				if err != nil {
					errs.Store(err.Error(), true)
					return
				}
				msg := fmt.Appendf(nil, "hello from %v to %s", h.IP(), to)
				c.Write(msg)
				c.(*Conn).CloseWrite()
				got, err := io.ReadAll(c)
				if err != nil || !bytes.Equal(got, msg) {
					errs.Store(fmt.Sprintf("echo %q, %v", got, err), true)
				}
				c.Close()
			}
		})
	}
	dialers.Wait()
	wg.Wait()
	errs.Range(func(k, _ any) bool { t.Error(k); return true })
	for _, l := range ls {
		l.Close()
	}
	await.Until(t, "the echoers to close their ends", func() bool { return n.Stats().Conns == 0 })
	memCheckEmpty(t, n)
}

// Concurrent Reads, Writes, deadline changes and Closes on both ends, under the race detector.
func TestMemConcurrentChaos(t *testing.T) {
	memCheckLeaks(t)
	n := New()
	n.Window = 4096
	a, b := n.Host(n.NextIP()), n.Host(n.NextIP())
	l, _ := b.Listen(":0")
	defer l.Close()
	var wg sync.WaitGroup
	for range 50 {
		c1, err := a.Dial(context.Background(), l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c2, _ := l.Accept()
		for _, c := range []net.Conn{c1, c2} {
			wg.Go(func() {
				buf := make([]byte, 1000)
				for range 200 {
					c.SetReadDeadline(time.Now().Add(time.Duration(rand.IntN(200)) * time.Microsecond))
					if _, err := c.Read(buf); err != nil && !memIsTimeout(err) && err != io.EOF && !errors.Is(err, net.ErrClosed) {
						t.Errorf("Read: %v", err)
					}
				}
			})
			wg.Go(func() {
				buf := make([]byte, 700)
				for range 200 {
					c.SetWriteDeadline(time.Now().Add(time.Duration(rand.IntN(200)) * time.Microsecond))
					if _, err := c.Write(buf); err != nil && !memIsTimeout(err) && !errors.Is(err, syscall.EPIPE) && !errors.Is(err, net.ErrClosed) {
						t.Errorf("Write: %v", err)
					}
				}
			})
		}
		wg.Go(func() {
			time.Sleep(time.Duration(rand.IntN(5000)) * time.Microsecond)
			if rand.IntN(2) == 0 {
				c1.(*Conn).CloseWrite()
			}
			c1.Close()
			time.Sleep(time.Duration(rand.IntN(1000)) * time.Microsecond)
			c2.Close()
		})
	}
	wg.Wait()
	l.Close()
	memCheckEmpty(t, n)
}

func TestMemErrorsLookLikeTCP(t *testing.T) {
	n := New()
	_, _, c1, c2 := memPair(t, n)
	c1.SetReadDeadline(time.Now().Add(-time.Second))
	_, err := c1.Read(make([]byte, 1))
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "read" || oe.Net != "tcp" || oe.Source != c1.LocalAddr() || oe.Addr != c1.RemoteAddr() {
		t.Errorf("read timeout = %#v", err)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) || err.Error() != fmt.Sprintf("read tcp %v->%v: i/o timeout", c1.LocalAddr(), c1.RemoteAddr()) {
		t.Errorf("read timeout says %q", err)
	}
	c2.Close()
	_, err = c1.Write([]byte("x"))
	if want := fmt.Sprintf("write tcp %v->%v: write: broken pipe", c1.LocalAddr(), c1.RemoteAddr()); err == nil || err.Error() != want {
		t.Errorf("write to a closed peer says %v, want %q", err, want)
	}
	_, err = n.Host(n.NextIP()).Dial(context.Background(), "127.1.0.2:1")
	if want := "dial tcp 127.1.0.2:1: connect: connection refused"; err == nil || err.Error() != want {
		t.Errorf("refused dial says %v, want %q", err, want)
	}
	if s := fmt.Sprint(c1); s != fmt.Sprintf("mem %v->%v", c1.LocalAddr(), c1.RemoteAddr()) {
		t.Errorf("String() = %q", s)
	}
}

// A connection whose one end closed before the cut is stalled too: its last bytes and EOF wait for the heal.
func TestMemPartitionAfterOneEndClosed(t *testing.T) {
	memCheckLeaks(t)
	n := New()
	a, b, ab, ba := memPair(t, n)
	ab.Write([]byte("last words"))
	ab.Close()
	n.Partition(a.IP(), b.IP(), true)
	ba.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	if k, err := ba.Read(make([]byte, 20)); !memIsTimeout(err) {
		t.Fatalf("read across the partition = %d, %v; want a timeout", k, err)
	}
	ba.SetReadDeadline(time.Time{})
	n.Partition(a.IP(), b.IP(), false)
	if got, err := io.ReadAll(ba); err != nil || string(got) != "last words" {
		t.Errorf("after healing: %q, %v", got, err)
	}
}

// memWriteUntilError writes 256 KiB chunks to c until a Write fails.
func memWriteUntilError(c net.Conn) error {
	chunk := make([]byte, 256<<10)
	for {
		if _, err := c.Write(chunk); err != nil {
			return err
		}
	}
}

func memRandomBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return b
}

func memIsTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) && errors.As(err, &ne) && ne.Timeout()
}
