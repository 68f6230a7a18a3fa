package servent

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"gnutella/protocol"
	"gnutella/routing"
)

// fuzzConn is the servent's side of an inbound connection whose peer sent
// in and then half-closed: reads give in, then EOF; writes are collected.
// It never blocks, so serveConn's handling of any first block can be
// fuzzed without sockets.
type fuzzConn struct {
	r      *bytes.Reader
	mu     sync.Mutex
	out    bytes.Buffer
	closed bool
}

func (c *fuzzConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	return c.r.Read(b)
}

func (c *fuzzConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	return c.out.Write(b)
}

func (c *fuzzConn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return nil
}

func (c *fuzzConn) output() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.out.Bytes())
}

func (c *fuzzConn) LocalAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 6346} }
func (c *fuzzConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 40000}
}
func (c *fuzzConn) SetDeadline(time.Time) error      { return nil }
func (c *fuzzConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fuzzConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzServeConn feeds any first block to the shared port's demultiplexer
// (GNUTELLA CONNECT, GET/HEAD, GIV, WALKCHECK, CONNECT BACK, anything else):
// it must not panic, must return once the input ends, and must answer
// only in the protocol the first line asked for.
func FuzzServeConn(f *testing.F) {
	req := protocol.HandshakeRequest{Version: "0.6"}
	req.Headers.Add("User-Agent", "gtk-gnutella/1.2.2")
	req.Headers.Add("X-Ultrapeer", "True")
	req.Headers.Add("X-Query-Routing", "0.2")
	req.Headers.Add("X-Try-Ultrapeers", "1.2.3.4:6346,[2001:db8::1]:6347,5.6.7.8")
	req.Headers.Add("Listen-IP", "127.0.0.2:6346")
	req.Headers.Add("GUID", protocol.NewGUID().String())
	req.Headers.Add("X-Max-TTL", "4")
	req.Headers.Add("X-Degree", "32")
	final := protocol.HandshakeResponse{Version: "0.6", Code: 200, Reason: "OK"}
	leaf := protocol.HandshakeRequest{Version: "0.6"}
	leaf.Headers.Add("X-Ultrapeer", "False")
	leaf.Headers.Add("Accept-Encoding", "deflate")
	ping, _ := (&protocol.Message{Header: protocol.Header{ID: protocol.NewGUID(), TTL: 1}, Payload: &protocol.Ping{}}).AppendTo(nil)
	f.Add(append(append(req.AppendTo(nil), final.AppendTo(nil)...), ping...))
	f.Add(append(leaf.AppendTo(nil), "GNUTELLA/0.6 200 OK\r\nContent-Encoding: deflate\r\n\r\n"...))
	f.Add([]byte("GNUTELLA CONNECT/0.4\n\n"))
	f.Add([]byte("GNUTELLA CONNECT/0.6\r\nUser-Agent: x\r\n\r\nGNUTELLA/0.6 503 Busy\r\n\r\n"))
	f.Add([]byte("GET /uri-res/N2R?urn:sha1:PLSTHIPQGSSZTS5FJUPAKUZWUGYQYPFB HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add([]byte("HEAD /get/1/file.txt HTTP/1.0\r\n\r\n"))
	f.Add([]byte("GIV 1:0123456789abcdef0123456789abcdef/file.txt\n\n"))
	f.Add([]byte("WALKCHECK 0123456789abcdef0123456789abcdef\r\n"))
	f.Add([]byte("WALKCHECK zz\r\n"))
	f.Add([]byte("CONNECT BACK\r\n\r\n"))
	f.Add([]byte("\r\n"))
	f.Add([]byte("POST / HTTP/1.1\r\n\r\n"))
	f.Add([]byte("\x16\x03\x01\x00\xa5"))
	f.Add([]byte("GET /" + strings.Repeat("a", 5000) + " HTTP/1.1\r\n\r\n"))

	c := DefaultConfig()
	c.ListenAddr = "127.0.0.1:0"
	c.WantLinks = 0
	c.AllowLoopback = true
	c.ByeGrace = 50 * time.Millisecond
	c.HandshakeTimeout = time.Second
	s, err := New(c)
	if err != nil {
		f.Fatal(err)
	}
	if err := s.Start(); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = s.Stop() })

	f.Fuzz(func(t *testing.T, in []byte) {
		conn := &fuzzConn{r: bytes.NewReader(in)}
		done := make(chan struct{})
		go func() {
			defer close(done)
			remote := addrPortOf(conn.RemoteAddr())
			pc, _ := s.adm.enter(conn, remote.Addr(), 0) // as the accept loop does
			if pc == nil {
				t.Error("the admission caps refused a lone connection")
				return
			}
			defer pc.done()
			s.serveConn(conn, pc, remote)
		}()
		timer := time.NewTimer(5 * time.Second)
		defer timer.Stop()
		select {
		case <-done:
		case <-timer.C:
			t.Fatalf("serveConn still running 5 s after its input (%q) ended", truncateFuzz(in))
		}
		out := conn.output()
		if len(out) == 0 {
			return
		}
		first, _, _ := strings.Cut(string(in), "\n")
		first = strings.TrimSuffix(first, "\r")
		answer, _, _ := strings.Cut(string(out), "\n")
		switch {
		case strings.HasPrefix(first, "WALKCHECK "):
			if s := string(out); s != "STOP\r\n" && s != "CONTINUE\r\n" {
				t.Fatalf("WALKCHECK answered %q", truncateFuzz(out))
			}
		case strings.HasPrefix(answer, "GNUTELLA"):
			// a status block (with, after a 200, the link's first messages)
			if _, err := protocol.ReadHandshakeResponse(bufio.NewReader(bytes.NewReader(out))); err != nil {
				t.Fatalf("unreadable handshake answer %q: %v", truncateFuzz(out), err)
			}
			if !strings.HasPrefix(first, "GNUTELLA CONNECT/") && !isLongLine(in) {
				t.Fatalf("first line %q answered with %q", truncateFuzz([]byte(first)), answer)
			}
		case strings.HasPrefix(answer, "HTTP/1.1 "):
			if !strings.Contains(first, "HTTP") && !strings.HasPrefix(first, "GET ") && !strings.HasPrefix(first, "HEAD ") {
				t.Fatalf("first line %q answered with %q", truncateFuzz([]byte(first)), answer)
			}
		default:
			t.Fatalf("first line %q answered with %q", truncateFuzz([]byte(first)), truncateFuzz(out))
		}
	})
}

// isLongLine: a first line too long to read is refused with a Gnutella 413
// whatever it was.
func isLongLine(in []byte) bool {
	i := bytes.IndexByte(in, '\n')
	return i < 0 || i > protocol.MaxHandshakeLine
}

func truncateFuzz(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}

// FuzzUDPDatagram feeds any datagram to the UDP entry point
// (udpSide.handleDatagram) from an address that proved nothing: it must
// not panic, and nothing it queues for that address may be larger than
// the datagram (no amplification). The servent is not started: what it
// would send stays in its queue, where the test reads it.
func FuzzUDPDatagram(f *testing.F) {
	msg := func(h protocol.Header, p protocol.Payload) []byte {
		b, err := (&protocol.Message{Header: h, Payload: p}).AppendTo(nil)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	id := protocol.NewGUID()
	f.Add(msg(protocol.Header{ID: id, TTL: 1}, &protocol.Ping{}))
	f.Add(msg(protocol.Header{ID: id, TTL: 1}, protocol.NewHostsRequest(protocol.SCPUltrapeer, protocol.VendorVersion{Vendor: VendorCode, Version: 1})))
	padded := &protocol.Ping{GGEP: protocol.GGEP{{ID: "SCP"}, {ID: "PAD", Data: make([]byte, 400)}}}
	f.Add(msg(protocol.Header{ID: id, TTL: 1}, padded))
	f.Add(msg(protocol.Header{ID: id, TTL: 1}, &protocol.Ping{GGEP: protocol.GGEP{{ID: "DHTIPP"}, {ID: "GUE", Data: []byte{0x02}}, {ID: "QK"}}}))
	ipp := protocol.PackedHostsExtension([]netip.AddrPort{netip.MustParseAddrPort("127.0.0.3:6346"), netip.MustParseAddrPort("127.0.0.4:6347")})
	f.Add(msg(protocol.Header{ID: id, TTL: 1}, &protocol.Pong{Port: 6346, IP: [4]byte{127, 0, 0, 2}, KB: 8, GGEP: protocol.GGEP{ipp, {ID: "UDPHC"}}}))
	f.Add(msg(protocol.Header{ID: id, TTL: 1}, protocol.NewQuery("udp query", 0)))
	f.Add(msg(protocol.Header{ID: id, TTL: 1}, protocol.NewPushProxyRequest()))
	// Out-of-band hits (oob.go): LIME/12 for a search of ours (registered
	// below), v1 to v3, LIME/11 v2 and v3, and a QueryHit for that search.
	self := netip.MustParseAddrPort("127.0.0.1:6346")
	oobID := protocol.NewOOBGUID(self)
	for _, sec := range []bool{false, true} {
		f.Add(msg(protocol.Header{ID: oobID, TTL: 1}, protocol.NewOOBReplyIndication(protocol.OOBReplyIndication{Hits: 3, Secure: sec})))
	}
	v1 := protocol.NewOOBReplyIndication(protocol.OOBReplyIndication{Hits: 255})
	v1.Version, v1.Data = 1, v1.Data[:1]
	f.Add(msg(protocol.Header{ID: oobID, TTL: 1}, v1))
	f.Add(msg(protocol.Header{ID: oobID, TTL: 1}, protocol.NewOOBReplyAck(255, nil)))
	f.Add(msg(protocol.Header{ID: oobID, TTL: 9}, protocol.NewOOBReplyAck(2, []byte("token"))))
	f.Add(msg(protocol.Header{ID: oobID, TTL: 1}, protocol.NewQueryHit([4]byte{127, 0, 0, 2}, 40000, 100,
		[]protocol.Result{{Index: 1, Size: 10, Name: []byte("zebra.txt")}},
		protocol.HitTrailer{Vendor: VendorCode, GGEP: protocol.GGEP{{ID: protocol.GGEPSecureOOB, Data: []byte("token")}}}, id)))
	bad := msg(protocol.Header{ID: id, TTL: 1}, &protocol.Ping{})
	bad[19] = 0xff // length over the data
	f.Add(bad)
	f.Add(append(msg(protocol.Header{ID: id, TTL: 1}, &protocol.Ping{}), 0)) // a byte after the payload
	f.Add([]byte{})
	f.Add(make([]byte, protocol.HeaderLen-1))

	c := testConfig()
	c.UDPRate = 0 // the fuzzer's one address would spend any budget
	s, err := New(c)
	if err != nil {
		f.Fatal(err)
	}
	s.self.Store(&self)
	s.started = s.now()
	u := newUDPSide(s, nil)
	s.udp = u
	s.searches.register(oobID, routing.NewSearch(protocol.NewQuery("zebra", 0), "fuzz", 100))
	from := netip.MustParseAddrPort("127.0.0.2:40000")
	f.Fuzz(func(t *testing.T, in []byte) {
		u.handleDatagram(in, from)
		for {
			out, ok := u.pop()
			if !ok {
				break
			}
			if out.to == from && len(out.msg) > len(in) {
				t.Fatalf("queued %d bytes for an unproven address that sent %d", len(out.msg), len(in))
			}
		}
	})
}

// FuzzGUESSDatagram feeds any datagram to the UDP entry point as GUESS
// sees it (guess.go), from a host we sent a key request and a GUESS query
// to: it must not panic, must queue nothing for any other address, must
// answer no query that lacks the sender's valid key, and must keep no key
// longer than guessMaxKeyLen.
func FuzzGUESSDatagram(f *testing.F) {
	c := testConfig()
	c.UDPRate = 0
	c.Library = zebraLibrary(nil)
	s, err := New(c)
	if err != nil {
		f.Fatal(err)
	}
	self := netip.MustParseAddrPort("127.0.0.1:6346")
	s.self.Store(&self)
	s.started = s.now()
	u := newUDPSide(s, nil)
	s.udp = u
	from := netip.MustParseAddrPort("127.0.0.2:40000")
	key := s.guess.key(from, s.now())
	qid, pid := protocol.GUID{1}, protocol.GUID{2}
	msg := func(h protocol.Header, p protocol.Payload) []byte {
		b, err := (&protocol.Message{Header: h, Payload: p}).AppendTo(nil)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	pong := func(g protocol.GGEP) *protocol.Pong {
		return &protocol.Pong{Port: 40000, IP: [4]byte{127, 0, 0, 2}, KB: 8, GGEP: g}
	}
	ipp := protocol.PackedHostsExtension([]netip.AddrPort{netip.MustParseAddrPort("127.0.0.3:6346")})
	f.Add(msg(protocol.Header{ID: qid, TTL: 1}, withGUESS(protocol.NewQuery("zebra", 0), key)))
	f.Add(msg(protocol.Header{ID: qid, TTL: 1}, withGUESS(protocol.NewQuery("zebra", 0), []byte{1, 2, 3, 4, 5, 6, 7, 8})))
	f.Add(msg(protocol.Header{ID: qid, TTL: 1}, protocol.NewQuery("zebra", 0)))
	f.Add(msg(protocol.Header{ID: qid, TTL: 1}, keyPing()))
	f.Add(msg(protocol.Header{ID: pid, TTL: 1}, pong(protocol.GGEP{guessExtension(), {ID: "QK", Data: make([]byte, 40)}, ipp})))
	f.Add(msg(protocol.Header{ID: pid, TTL: 1}, pong(protocol.GGEP{guessExtension(), {ID: "QK", Data: []byte{9, 9, 9, 9}}})))
	f.Add(msg(protocol.Header{ID: qid, TTL: 1}, pong(protocol.GGEP{guessExtension(), ipp})))
	sha := protocol.SHA1{4}
	f.Add(msg(protocol.Header{ID: qid, TTL: 1}, protocol.NewQueryHit([4]byte{127, 0, 0, 2}, 40000, 100,
		[]protocol.Result{fileResult(1, "zebra.ogg", 10, sha, false, nil)}, protocol.HitTrailer{Vendor: VendorCode}, protocol.GUID{3})))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, in []byte) {
		now := s.now()
		g := &s.guess
		g.mu.Lock()
		g.queries = map[protocol.GUID]*guessQuery{qid: {hosts: map[netip.AddrPort]bool{from: true}, at: now}}
		g.pending = map[protocol.GUID]*guessPing{pid: {to: from, at: now, done: make(chan struct{})}}
		g.mu.Unlock()
		read := g.queriesRead.Load()
		valid := false
		if h, payload, err := protocol.DecodeDatagram(in, c.Limits); err == nil && h.Type == protocol.TypeQuery {
			if q, err := protocol.DecodeQuery(payload); err == nil {
				k, _ := q.Extensions.GGEP().Get(protocol.GGEPQueryKey)
				valid = bytes.Equal(k, key)
			}
		}
		u.handleDatagram(in, from)
		if !valid && g.queriesRead.Load() != read {
			t.Fatal("a query without the sender's key was read")
		}
		for {
			out, ok := u.pop()
			if !ok {
				break
			}
			if out.to != from {
				t.Fatalf("queued a datagram for %v, not the sender", out.to)
			}
		}
		g.mu.Lock()
		for a, k := range g.keys {
			if len(k.key) > guessMaxKeyLen {
				t.Fatalf("kept a key of %d bytes for %v", len(k.key), a)
			}
		}
		g.mu.Unlock()
	})
}

// FuzzInflater feeds a compressed link's stream to the inflater, which
// parks whenever it may, read by pieces whose sizes come from the input
// too, and checks it against compress/zlib: the same bytes for a good
// stream, an error for a bad one, and never a panic.
func FuzzInflater(f *testing.F) {
	stream, _ := compressedBursts(f, repetitiveBursts())
	f.Add(stream, []byte{23, 200, 1})
	small, _ := compressedBursts(f, [][]byte{[]byte("ping"), []byte("pong, pong"), []byte("ping")})
	f.Add(small, []byte{1})
	f.Add(small[:len(small)-3], []byte{7, 3})
	f.Add([]byte{0x78, 0x9c, 0x00, 0x00, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0xff, 0xff}, []byte{5})
	f.Add([]byte{0x78, 0x01, 0xff, 0xff, 0xff}, []byte{})
	f.Fuzz(func(t *testing.T, stream, pieces []byte) {
		const maxOut = 64 << 10
		if len(stream) > 8<<10 {
			return // longer streams test nothing more, and slowly
		}
		zr, err := zlib.NewReader(bytes.NewReader(stream))
		var want []byte
		if err == nil {
			want, err = io.ReadAll(io.LimitReader(zr, maxOut+1))
		}
		wantOK := err == nil
		z := newInflater(bufio.NewReader(bytes.NewReader(stream)))
		var got []byte
		buf := make([]byte, 256)
		var gotErr error
		parks := 0
		for i := 0; len(got) <= maxOut; i++ {
			// a link parks only after seconds of quiet: a stream of
			// empty blocks parked at each would only test the fuzzer's patience
			if z.quiet() && parks < 32 {
				z.park()
				parks++
			}
			size := 1
			if len(pieces) > 0 {
				size = int(pieces[i%len(pieces)]) + 1
			}
			n, err := z.Read(buf[:size])
			got = append(got, buf[:n]...)
			if err != nil {
				gotErr = err
				break
			}
		}
		z.release()
		if len(got) > maxOut {
			return // zlib's side was cut at the same length
		}
		if wantOK && (gotErr != io.EOF || !bytes.Equal(got, want)) {
			t.Fatalf("zlib reads %d bytes; the inflater %d, ending with %v", len(want), len(got), gotErr)
		}
		if !wantOK && gotErr == io.EOF && len(stream) > 0 {
			t.Fatalf("zlib fails (%v); the inflater read %d bytes and a clean end", err, len(got))
		}
	})
}
