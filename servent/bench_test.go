package servent

import (
	"bufio"
	"compress/zlib"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"gnutella/protocol"
	"gnutella/ultrapeer"
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
		links[i] = benchLink(b, s, LinkUltrapeer)
	}
	return s, links
}

// benchLink adds an idle link of kind to s, over a net.Pipe nobody reads.
func benchLink(b *testing.B, s *Servent, kind LinkKind) *Link {
	a, z := net.Pipe()
	b.Cleanup(func() { a.Close(); z.Close() })
	l := s.newLink(a, bufio.NewReader(a), false, kind, Capabilities{Version: "0.6", DynamicQuerying: true, GGEP: true})
	l.PeerID = protocol.NewGUID()
	l.hopsFlow.Store(255)
	if err := s.addLink(l); err != nil {
		b.Fatal(err)
	}
	return l
}

// BenchmarkRouteQuery32: one Query from one link through duplicate check,
// route table and fan-out to the 32 other links.
func BenchmarkRouteQuery32(b *testing.B) {
	s, links := benchLinks(b, 33)
	benchRouteQuery(b, s, links)
}

// BenchmarkRouteQueryLeaves: the same with 300 leaves (the default
// MaxLeaves) besides, each with the QRP table of 50 random words, one in
// ten of them also holding the query's words: the query goes through the
// leaf index too, to 30 leaves.
func BenchmarkRouteQueryLeaves(b *testing.B) {
	s, links := benchLinks(b, 33)
	rng := rand.New(rand.NewPCG(300, 33))
	for i := range 300 {
		l := benchLink(b, s, LinkLeaf)
		var also []string
		if i%10 == 0 {
			also = []string{"zebra", "quokka", "interop"}
		}
		rv := s.qrp.receiver(l)
		for _, m := range leafTable(rng, also...).Messages(qrpInfinity, qrpChunk) {
			if err := s.qrp.apply(l, rv, m, time.Now()); err != nil {
				b.Fatal(err)
			}
		}
		links = append(links, l)
	}
	benchRouteQuery(b, s, links)
	if ld, _ := s.QRPStats(); ld == 0 {
		b.Fatal("no query went to a leaf")
	}
}

// leafTable is the QRP table of a leaf sharing 50 random five-letter words
// and the words also: about 150 slots of 2^16 (three prefixes a word).
func leafTable(rng *rand.Rand, also ...string) *ultrapeer.Table {
	tb := ultrapeer.NewTable(qrpBits)
	words := make([]string, 50)
	for i := range words {
		w := make([]byte, 5)
		for j := range w {
			w[j] = byte('a' + rng.IntN(26))
		}
		words[i] = string(w)
	}
	tb.AddName(append(words, also...))
	return tb
}

// benchRouteQuery has links[0] send s a query for "zebra quokka interop"
// per op, and empties the links' queues every 32 queries.
func benchRouteQuery(b *testing.B, s *Servent, links []*Link) {
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

// dialBenchPeer runs the client side of a 0.6 handshake by hand, as an
// ultrapeer with a GUID of its own and no listen address, and leaves the link
// idle.
func dialBenchPeer(addr netip.AddrPort, deflate bool) (net.Conn, error) {
	return dialBench(addr, benchPeer{deflate: deflate})
}

// benchPeer says how dialBench connects.
type benchPeer struct {
	deflate bool         // ask for deflate, and compress what we send
	leaf    bool         // a leaf (leafHeaders) rather than an ultrapeer
	upQRP   bool         // an ultrapeer that exchanges QRP tables (X-Ultrapeer-Query-Routing)
	msgs    [][]byte     // descriptors to send after the handshake (descriptors())
	zw      *zlib.Writer // reused for the compressed stream when set: one is hundreds of KiB
}

// dialBench runs the client side of a 0.6 handshake by hand, sends p.msgs
// and a Ping, and leaves the link idle without reading from it.
func dialBench(addr netip.AddrPort, p benchPeer) (net.Conn, error) {
	conn, err := net.Dial("tcp", addr.String())
	if err != nil {
		return nil, err
	}
	var req protocol.HandshakeRequest
	req.Version = "0.6"
	if p.leaf {
		for _, h := range leafHeaders(protocol.NewGUID()) {
			name, value, _ := strings.Cut(h, ":")
			req.Headers.Add(name, strings.TrimSpace(value))
		}
	} else {
		req.Headers.Add("User-Agent", "bench/1")
		req.Headers.Add("X-Ultrapeer", "True")
		req.Headers.Add("GUID", protocol.NewGUID().String())
		if p.upQRP {
			req.Headers.Add("X-Ultrapeer-Query-Routing", "0.1")
		}
	}
	if p.deflate {
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
	if p.deflate {
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
	var out []byte
	for _, m := range p.msgs {
		out = append(out, m...)
	}
	out = append(out, raw...)
	if p.deflate {
		zw := p.zw
		if zw == nil {
			zw = zlib.NewWriter(conn)
		} else {
			zw.Reset(conn)
		}
		zw.Write(out)
		err = zw.Flush()
	} else {
		_, err = conn.Write(out)
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
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

// BenchmarkRoutePaced: queries from one raw peer, one per TCP write at a
// fixed rate, routed by the servent to 4 other raw peers over loopback TCP
// (no deflate), the way a real ultrapeer sees a quiet network: every query
// arrives alone. It reports the process's CPU time per query (the servent
// and the five peers together), which at low rates is dominated by
// goroutine wake-ups and system calls rather than by routing.
func BenchmarkRoutePaced(b *testing.B) {
	for _, rate := range []int{2000, 8000} {
		b.Run(fmt.Sprintf("qps=%d", rate), func(b *testing.B) { benchRoutePaced(b, rate) })
	}
}

func benchRoutePaced(b *testing.B, rate int) {
	const outs = 4
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
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan int, outs)
	for range outs {
		out, err := dialBenchPeer(s.Addr(), false)
		if err != nil {
			b.Fatal(err)
		}
		defer out.Close()
		go func() {
			r := protocol.NewReader(bufio.NewReaderSize(out, 64<<10), protocol.DefaultLimits())
			n := 0
			for n < b.N {
				h, _, err := r.ReadRaw()
				if err != nil {
					break
				}
				if h.Type == protocol.TypeQuery {
					n++
				}
			}
			got <- n
		}()
	}
	if err := s.WaitLinks(ctx, 1+outs); err != nil {
		b.Fatal(err)
	}
	cpu0 := processCPU(b)
	b.ResetTimer()
	sendPaced(b, in, rate, outs, got)
	b.StopTimer()
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/query")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "q/s")
}

// sendPaced sends b.N queries on in, one per write, rate a second, and waits
// until each of the outs peers has said on got that it received them all.
func sendPaced(b *testing.B, in net.Conn, rate, outs int, got <-chan int) {
	payload, _ := protocol.NewQuery("zebra quokka interop", protocol.QueryFlagMark).AppendTo(nil)
	every := time.Second / time.Duration(rate)
	start := time.Now()
	var buf []byte
	for i := 0; i < b.N; i++ {
		if d := time.Until(start.Add(time.Duration(i) * every)); d > 0 {
			time.Sleep(d)
		}
		h := protocol.Header{ID: protocol.NewGUID(), Type: protocol.TypeQuery, TTL: 2, Length: uint32(len(payload))}
		buf = append(h.AppendTo(buf[:0]), payload...)
		if _, err := in.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	for range outs {
		if n := <-got; n != b.N {
			b.Fatalf("a peer received %d of %d", n, b.N)
		}
	}
}

// processCPU is the CPU time (user and system) this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
