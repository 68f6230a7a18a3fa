//go:build linux

package servent

import (
	"compress/zlib"
	"io"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"gnutella/protocol"
	"gnutella/testnet/await"
)

// parkConfig parks a quiet link after 100 ms.
func parkConfig() Config {
	c := testConfig()
	c.ParkAfter = 100 * time.Millisecond
	c.Deflate = false
	return c
}

// awaitParked waits until the servent has n links, all parked.
func awaitParked(t *testing.T, s *Servent, n int) {
	t.Helper()
	await.Until(t, "every link parked", func() bool {
		links := s.Links()
		if len(links) != n {
			return false
		}
		for _, l := range links {
			if !l.parked() {
				return false
			}
		}
		return true
	})
}

func TestParkedLinkWakesAndReadsAQuery(t *testing.T) {
	s := startServent(t, parkConfig())
	a, err := dialBenchPeer(s.Addr(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := dialBenchPeer(s.Addr(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	awaitParked(t, s, 2)

	// twice: a link parks again after its first wake-up
	for round := range 2 {
		id := protocol.NewGUID()
		q := protocol.Message{Header: protocol.Header{ID: id, TTL: 2}, Payload: &protocol.Query{Search: []byte("parked wake")}}
		raw, err := q.AppendTo(nil)
		if err != nil {
			t.Fatal(err)
		}
		var la *Link
		for _, l := range s.Links() {
			if l.Remote.String() == a.LocalAddr().String() {
				la = l
			}
		}
		before := la.Stats().RxMessages
		if _, err := a.Write(raw); err != nil {
			t.Fatal(err)
		}
		await.Until(t, "the parked link to wake and read the query", func() bool { return la.Stats().RxMessages > before })
		awaitParked(t, s, 2)
		t.Logf("round %d: read and parked again", round)
	}
}

func TestParkedLinkWhosePeerClosesIsRemoved(t *testing.T) {
	s := startServent(t, parkConfig())
	a, err := dialBenchPeer(s.Addr(), false)
	if err != nil {
		t.Fatal(err)
	}
	awaitParked(t, s, 1)
	l := s.Links()[0]
	a.Close()
	select {
	case <-l.Done():
	case <-ctxT(t).Done():
		t.Fatal("a parked link whose peer closed is still up")
	}
	await.Until(t, "the link removed", func() bool { return s.LinkCount() == 0 })
}

func TestStopWithParkedLinksLeavesNoGoroutine(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	c := parkConfig()
	c.ByeGrace = 200 * time.Millisecond
	s, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	for range 3 {
		conn, err := dialBenchPeer(s.Addr(), false)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
	}
	awaitParked(t, s, 3)
	// one peer closes as we stop: a wake-up racing the close
	conns[0].Close()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, c := range conns {
		c.Close()
	}
	goleak.VerifyNone(t, ignore)
}

func TestParkedLinkGetsItsByeAndGoes(t *testing.T) {
	// an idle timeout on a parked link ends it (this raw peer announced no
	// Bye-Packet, so it is closed without a Bye)
	c := parkConfig()
	c.AlivePingInterval = 150 * time.Millisecond
	c.IdleTimeout = 400 * time.Millisecond
	s := startServent(t, c)
	a, err := dialBenchPeer(s.Addr(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	await.Until(t, "one link", func() bool { return s.LinkCount() == 1 })
	l := s.Links()[0]
	await.Until(t, "the link parked once", func() bool { return l.parked() || l.ByeCode() != 0 })
	select {
	case <-l.Done():
	case <-ctxT(t).Done():
		t.Fatal("the link did not end after its Bye")
	}
	if got := l.ByeCode(); got != protocol.ByeActivityTimeout {
		t.Errorf("bye code %v, want %v", got, protocol.ByeActivityTimeout)
	}
}

// A compressed link parks after its peer's sync flush, and its inflater
// with it; what the peer sends next refers back to the window of what it
// sent before the park, and must decode.
func TestParkedCompressedLinkWakesWithItsWindow(t *testing.T) {
	c := parkConfig()
	c.Deflate = true
	s := startServent(t, c)
	zw := zlib.NewWriter(io.Discard)
	a, err := dialBench(s.Addr(), benchPeer{deflate: true, zw: zw})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	awaitParked(t, s, 1)
	l := s.Links()[0]
	if !l.DeflateIn {
		t.Fatal("the link is not compressed")
	}
	for round := range 3 {
		if l.inf == nil || l.inf.fr != nil || len(l.inf.saved) == 0 {
			t.Fatalf("round %d: the parked link's inflater is not parked", round)
		}
		// the same query each round: its bytes are in the window
		q := protocol.Message{Header: protocol.Header{ID: protocol.NewGUID(), TTL: 2}, Payload: &protocol.Query{Search: []byte("a compressed link wakes with its window")}}
		raw, err := q.AppendTo(nil)
		if err != nil {
			t.Fatal(err)
		}
		before := l.Stats().RxMessages
		zw.Write(raw)
		if err := zw.Flush(); err != nil {
			t.Fatal(err)
		}
		await.Until(t, "the parked link to wake and read the query", func() bool { return l.Stats().RxMessages > before || l.ByeCode() != 0 })
		if code := l.ByeCode(); code != 0 {
			t.Fatalf("round %d: the link ended with Bye %v", round, code)
		}
		awaitParked(t, s, 1)
	}
}

// When many compressed links hold their inflater's state, a quiet one
// parks after busyParkAfter, not ParkAfter (an hour here), and the count
// of active inflaters follows it.
func TestCompressedLinkParksSoonWhenManyInflate(t *testing.T) {
	c := parkConfig()
	c.Deflate = true
	c.ParkAfter = time.Hour
	s := startServent(t, c)
	s.inflating.Add(busyInflaters) // as if that many other links were busy
	a, err := dialBench(s.Addr(), benchPeer{deflate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	awaitParked(t, s, 1)
	if l := s.Links()[0]; !l.DeflateIn || l.inf == nil || l.inf.fr != nil {
		t.Fatal("the parked link is not compressed, or its inflater is not parked")
	}
	if n := s.inflating.Load(); n != busyInflaters {
		t.Errorf("%d active inflaters counted after the link parked, want %d", n, busyInflaters)
	}
}
