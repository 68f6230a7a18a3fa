package servent

import (
	"bufio"
	"compress/zlib"
	"context"
	"fmt"
	"gnutella/testnet/await"
	"io"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"gnutella/protocol"
)

// benchLinks builds a servent (not started) with n idle links whose queues
// nobody drains; the caller empties them.
func benchLinks(b *testing.B, n int) (*Servent, []*Link) {
	c := DefaultConfig()
	c.ListenAddr = "127.0.0.1:0"
	s, err := New(c)
	if err != nil {
		b.Fatal(err)
	}
	s.state.Store(1)
	links := make([]*Link, n)
	for i := range links {
		a, z := net.Pipe()
		b.Cleanup(func() { a.Close(); z.Close() })
		l := s.newLink(a, bufio.NewReader(a), false, LinkUltrapeer, Capabilities{Version: "0.6", DynamicQuerying: true, GGEP: true})
		l.PeerID = protocol.NewGUID()
		l.hopsFlow.Store(255)
		if err := s.addLink(l); err != nil {
			b.Fatal(err)
		}
		links[i] = l
	}
	return s, links
}

// BenchmarkRouteQuery32: one Query from one link through duplicate check,
// route table and fan-out to the 32 other links.
func BenchmarkRouteQuery32(b *testing.B) {
	s, links := benchLinks(b, 33)
	payload, _ := protocol.NewQuery("zebra quokka interop", protocol.QueryFlagMark).AppendTo(nil)
	ids := make([]protocol.GUID, 1<<16)
	for i := range ids {
		ids[i] = protocol.NewGUID()
	}
	src := links[0]
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := ids[i&(len(ids)-1)]
		id[0], id[1], id[2] = byte(i>>16), byte(i>>24), byte(i>>8)
		s.handle(src, protocol.Header{ID: id, Type: protocol.TypeQuery, TTL: 3, Hops: 1, Length: uint32(len(payload))}, payload)
		if i&31 == 31 {
			b.StopTimer()
			for _, l := range links {
				for {
					if _, ok := l.q.pop(); !ok {
						break
					}
				}
			}
			b.StartTimer()
		}
	}
	b.StopTimer()
	if st := s.Stats(); st.Routed == 0 {
		b.Fatal("nothing routed")
	}
}

// dialBenchPeer runs the client side of a 0.6 handshake by hand, with a GUID of
// its own and no listen address, and leaves the link idle.
func dialBenchPeer(addr netip.AddrPort, deflate bool) (net.Conn, error) {
	conn, err := net.Dial("tcp", addr.String())
	if err != nil {
		return nil, err
	}
	var req protocol.HandshakeRequest
	req.Version = "0.6"
	req.Headers.Add("User-Agent", "bench/1")
	req.Headers.Add("X-Ultrapeer", "True")
	req.Headers.Add("GUID", protocol.NewGUID().String())
	if deflate {
		req.Headers.Add("Accept-Encoding", "deflate")
	}
	if _, err := conn.Write(req.AppendTo(nil)); err != nil {
		conn.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(conn, 1024)
	resp, err := protocol.ReadHandshakeResponse(br)
	if err != nil || !resp.OK() {
		conn.Close()
		return nil, fmt.Errorf("handshake: %v %v", resp, err)
	}
	final := protocol.HandshakeResponse{Version: "0.6", Code: 200, Reason: "OK"}
	if deflate {
		final.Headers.Add("Content-Encoding", "deflate")
	}
	if _, err := conn.Write(final.AppendTo(nil)); err != nil {
		conn.Close()
		return nil, err
	}
	// answer like a real peer: one Ping, compressed when we said so, so the
	// servent's inflater (when there is one) is really allocated
	ping := protocol.Message{Header: protocol.Header{ID: protocol.NewGUID(), TTL: 1}, Payload: &protocol.Ping{}}
	raw, _ := ping.AppendTo(nil)
	if deflate {
		zw := zlib.NewWriter(conn)
		zw.Write(raw)
		err = zw.Flush()
	} else {
		_, err = conn.Write(raw)
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// BenchmarkIdleLinkMemory measures the servent's memory per idle link
// (heap plus goroutine stacks) over 1,000 loopback links, with and without
// deflate. The raw peers' own sockets are counted too (a few hundred bytes
// each); their reading is left to the kernel.
func BenchmarkIdleLinkMemory(b *testing.B) {
	for _, deflate := range []bool{false, true} {
		b.Run(fmt.Sprintf("deflate=%v", deflate), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				c := DefaultConfig()
				c.ListenAddr = "127.0.0.1:0"
				c.MaxLinks = 2000
				c.Deflate = true
				c.PongCaching = true
				s, err := New(c)
				if err != nil {
					b.Fatal(err)
				}
				if err := s.Start(); err != nil {
					b.Fatal(err)
				}
				const n = 1000
				before := memUse()
				conns := make([]net.Conn, 0, n)
				for j := 0; j < n; j++ {
					conn, err := dialBenchPeer(s.Addr(), deflate)
					if err != nil {
						b.Fatal(err)
					}
					conns = append(conns, conn)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				if err := s.WaitLinks(ctx, n); err != nil {
					b.Fatal(err)
				}
				cancel()
				// let every link send its greeting, read the peer's ping, and go idle
				await.Until(b, "every link to greet and go idle", func() bool {
					for _, l := range s.Links() {
						if st := l.Stats(); st.TxMessages < 3 || st.RxMessages < 1 {
							return false
						}
					}
					return true
				})
				after := memUse()
				b.ReportMetric(float64(after-before)/n, "bytes/link")
				for _, c := range conns {
					go io.Copy(io.Discard, c)
				}
				s.cfg.ByeGrace = 100 * time.Millisecond
				_ = s.Stop()
				for _, c := range conns {
					c.Close()
				}
			}
		})
	}
}

func memUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse + m.StackInuse)
}

// BenchmarkRoutedPerSecond: queries from one raw peer routed by the
// servent to another over loopback TCP (no deflate), measured end to end.
func BenchmarkRoutedPerSecond(b *testing.B) {
	c := DefaultConfig()
	c.ListenAddr = "127.0.0.1:0"
	c.SendQueueBytes = 1 << 20
	s, err := New(c)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	defer s.Stop()
	in, err := dialBenchPeer(s.Addr(), false)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	out, err := dialBenchPeer(s.Addr(), false)
	if err != nil {
		b.Fatal(err)
	}
	defer out.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.WaitLinks(ctx, 2); err != nil {
		b.Fatal(err)
	}
	got := make(chan int, 1)
	go func() {
		r := protocol.NewReader(bufio.NewReaderSize(out, 64<<10), protocol.DefaultLimits())
		n := 0
		for {
			h, _, err := r.ReadRaw()
			if err != nil {
				got <- n
				return
			}
			if h.Type == protocol.TypeQuery {
				n++
				if n == b.N {
					got <- n
					return
				}
			}
		}
	}()
	payload, _ := protocol.NewQuery("zebra quokka interop", protocol.QueryFlagMark).AppendTo(nil)
	w := bufio.NewWriterSize(in, 64<<10)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h := protocol.Header{ID: protocol.NewGUID(), Type: protocol.TypeQuery, TTL: 2, Length: uint32(len(payload))}
		w.Write(h.AppendTo(nil))
		w.Write(payload)
		if i%256 == 255 {
			w.Flush()
			// keep the servent's per-link send queue from overflowing
			for s.Stats().Routed < uint64(i-512) && i > 512 {
				runtime.Gosched()
			}
		}
	}
	w.Flush()
	n := <-got
	b.StopTimer()
	if n != b.N {
		b.Fatalf("received %d of %d", n, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkHandshake: one inbound 0.6 handshake over loopback TCP, from the
// dial to the servent's handshake ping, then the peer hangs up. It measures
// the accept path: admission bookkeeping, the three steps and link set-up.
func BenchmarkHandshake(b *testing.B) {
	c := DefaultConfig()
	c.ListenAddr = "127.0.0.1:0"
	c.MaxLinks = 1 << 20
	s, err := New(c)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	defer s.Stop()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		conn, err := dialBenchPeer(s.Addr(), false)
		if err != nil {
			b.Fatal(err)
		}
		var hdr [protocol.HeaderLen]byte
		if _, err := io.ReadFull(conn, hdr[:]); err != nil {
			b.Fatal(err)
		}
		conn.Close()
	}
}
