package servent

import (
	"bufio"
	"compress/zlib"
	"errors"
	"io"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"gnutella/protocol"
	"gnutella/servent/hostcache"
)

// TestMain fails the package if any goroutine (a link's reader or writer, an
// accept loop, a handshake) is still running once every test has finished:
// every servent a test starts must be stopped by then.
func TestMain(m *testing.M) {
	if runBenchServent() { // the servent of BenchmarkRoutePacedServent, in a process of its own
		return
	}
	goleak.VerifyTestMain(m)
}

// rawPeer is the test playing a Gnutella peer by hand over a real TCP
// connection to a servent on 127.0.0.1: it writes handshake bytes and
// descriptors itself and reads the servent's with bufio and the protocol
// package.
type rawPeer struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
	r    *protocol.Reader // after the handshake
	w    io.Writer        // after the handshake (conn, or a zlib writer)
	zw   *zlib.Writer     // non-nil when we compress what we send
}

// dialRaw connects to s. The connection is closed when the test ends (before
// the servent is stopped), and no read or write can hang past 10 s.
func dialRaw(t *testing.T, s *Servent) *rawPeer {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawPeer{t: t, conn: conn, br: bufio.NewReader(conn), w: conn}
}

func (p *rawPeer) write(b []byte) {
	p.t.Helper()
	if _, err := p.w.Write(b); err != nil {
		p.t.Fatalf("write: %v", err)
	}
	if p.zw != nil {
		if err := p.zw.Flush(); err != nil {
			p.t.Fatalf("zlib flush: %v", err)
		}
	}
}

// request writes a 0.6 handshake request with the given header lines.
func (p *rawPeer) request(version string, headers ...string) {
	p.t.Helper()
	var b strings.Builder
	b.WriteString("GNUTELLA CONNECT/" + version + "\r\n")
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	p.write([]byte(b.String()))
}

// response reads the servent's status block.
func (p *rawPeer) response() *protocol.HandshakeResponse {
	p.t.Helper()
	resp, err := protocol.ReadHandshakeResponse(p.br)
	if err != nil {
		p.t.Fatalf("reading the handshake response: %v", err)
	}
	return resp
}

// peerHeaders are what a modern ultrapeer sends, minus Vendor-Message (so
// that the servent greets us with its handshake ping only) and
// Accept-Encoding; extra ones are appended.
func peerHeaders(guid protocol.GUID, extra ...string) []string {
	return append([]string{
		"User-Agent: rawpeer/1.0",
		"X-Ultrapeer: True",
		"X-Query-Routing: 0.2",
		"X-Ultrapeer-Query-Routing: 0.1",
		"X-Dynamic-Querying: 0.1",
		"X-Degree: 32",
		"X-Max-TTL: 4",
		"Pong-Caching: 0.1",
		"GGEP: 0.5",
		"Bye-Packet: 0.1",
		"GUID: " + guid.String(),
	}, extra...)
}

// leafHeaders are what a modern leaf sends.
func leafHeaders(guid protocol.GUID) []string {
	return []string{
		"User-Agent: rawleaf/1.0",
		"X-Ultrapeer: False",
		"X-Query-Routing: 0.2",
		"X-Dynamic-Querying: 0.1",
		"Pong-Caching: 0.1",
		"GGEP: 0.5",
		"Bye-Packet: 0.1",
		"GUID: " + guid.String(),
	}
}

// handshake runs the three steps with the given headers, expects 200, sends
// our 200 (with final headers) and waits for the servent's handshake ping, so
// that what the servent queued at link-up is not still on its way afterwards.
// It returns the servent's response.
func (p *rawPeer) handshake(headers []string, final ...string) *protocol.HandshakeResponse {
	p.t.Helper()
	p.request("0.6", headers...)
	resp := p.response()
	if resp.Code != 200 {
		p.t.Fatalf("servent answered %d %s, want 200", resp.Code, resp.Reason)
	}
	p.finish(resp, final...)
	return resp
}

// finish sends step 3 and starts the descriptor stream, compressed in each
// direction as negotiated.
func (p *rawPeer) finish(resp *protocol.HandshakeResponse, final ...string) {
	p.t.Helper()
	step3 := protocol.HandshakeResponse{Version: "0.6", Code: 200, Reason: "OK"}
	deflateOut := false
	for _, f := range final {
		name, value, _ := strings.Cut(f, ":")
		step3.Headers.Add(name, strings.TrimSpace(value))
		if strings.EqualFold(name, "Content-Encoding") {
			deflateOut = true
		}
	}
	p.write(step3.AppendTo(nil))
	if deflateOut {
		p.zw = zlib.NewWriter(p.conn)
		p.w = p.zw
	}
	var src io.Reader = p.br
	if strings.EqualFold(resp.Headers.Get("Content-Encoding"), "deflate") {
		// the first bytes after the handshake start a zlib stream
		b, err := p.br.Peek(2)
		if err != nil {
			p.t.Fatal(err)
		}
		if b[0]&0x0f != 8 || (uint16(b[0])<<8|uint16(b[1]))%31 != 0 {
			p.t.Fatalf("stream starts % x, not a zlib header", b)
		}
		zr, err := zlib.NewReader(p.br)
		if err != nil {
			p.t.Fatalf("the servent's stream is not zlib: %v", err)
		}
		src = zr
	}
	p.r = protocol.NewReader(src, protocol.Limits{})
	// The handshake ping comes first, unless a pong-cache refresh ping (TTL
	// MaxTTL) slipped in between link-up and greeting.
	for {
		h, _ := p.next()
		if h.Type == protocol.TypePing && h.TTL == 1 && h.Hops == 0 {
			return
		}
		if h.Type != protocol.TypePing || h.Hops != 0 {
			p.t.Fatalf("first message %v TTL %d hops %d, want the handshake ping", h.Type, h.TTL, h.Hops)
		}
	}
}

// next reads one descriptor; any error fails the test.
func (p *rawPeer) next() (protocol.Header, []byte) {
	p.t.Helper()
	h, b, err := p.r.ReadRaw()
	if err != nil {
		p.t.Fatalf("reading a descriptor: %v", err)
	}
	return h, b
}

// send writes one descriptor with the length of its payload.
func (p *rawPeer) send(h protocol.Header, payload []byte) {
	p.t.Helper()
	h.Length = uint32(len(payload))
	p.write(append(h.AppendTo(nil), payload...))
}

// sendHeader writes a bare header with whatever length it claims.
func (p *rawPeer) sendHeader(h protocol.Header) {
	p.t.Helper()
	p.write(h.AppendTo(nil))
}

func (p *rawPeer) sendQuery(id protocol.GUID, ttl, hops uint8, text string) {
	p.t.Helper()
	payload, err := protocol.NewQuery(text, 0).AppendTo(nil)
	if err != nil {
		p.t.Fatal(err)
	}
	p.send(protocol.Header{ID: id, Type: protocol.TypeQuery, TTL: ttl, Hops: hops}, payload)
}

// sync sends a TTL 1, hops 0 ping, which the servent always answers, and
// reads up to its pong. The servent handles a link's messages in order, so
// the pong proves everything sent before was handled without closing the
// link; a Bye or the end of the stream fails the test.
func (p *rawPeer) sync() *protocol.Pong {
	p.t.Helper()
	id := protocol.NewGUID()
	p.send(protocol.Header{ID: id, Type: protocol.TypePing, TTL: 1}, nil)
	for {
		h, b := p.next()
		switch {
		case h.Type == protocol.TypeBye:
			bye, _ := protocol.DecodeBye(b)
			p.t.Fatalf("got %v while waiting for the pong", bye)
		case h.Type == protocol.TypePong && h.ID == id:
			pong, err := protocol.DecodePong(b)
			if err != nil {
				p.t.Fatal(err)
			}
			return pong
		}
	}
}

// expectBye reads up to the servent's Bye, checks its code and header, and
// checks that the servent sends nothing after it and closes.
func (p *rawPeer) expectBye(code protocol.ByeCode) *protocol.Bye {
	p.t.Helper()
	for {
		h, b, err := p.r.ReadRaw()
		if err != nil {
			p.t.Fatalf("stream ended without a Bye: %v", err)
		}
		if h.Type != protocol.TypeBye {
			continue
		}
		if h.TTL != 1 || h.Hops != 0 {
			p.t.Errorf("Bye sent with TTL %d hops %d, want 1/0", h.TTL, h.Hops)
		}
		bye, err := protocol.DecodeBye(b)
		if err != nil {
			p.t.Fatal(err)
		}
		if bye.Code != code {
			p.t.Fatalf("got %v, want code %d", bye, code)
		}
		p.expectEOF()
		return bye
	}
}

// expectEOF checks that the servent sends no more descriptors and closes.
func (p *rawPeer) expectEOF() {
	p.t.Helper()
	h, _, err := p.r.ReadRaw()
	if err == nil {
		p.t.Fatalf("servent sent %v after it should have stopped", h.Type)
	}
	if !errors.Is(err, io.EOF) {
		p.t.Fatalf("want the end of the stream, got %v", err)
	}
}

// rawBytes reads everything until the servent closes (it must close within
// the connection's deadline).
func (p *rawPeer) rawBytes() string {
	p.t.Helper()
	b, err := io.ReadAll(p.br)
	if err != nil {
		p.t.Fatalf("reading until close: %v (got %q)", err, b)
	}
	return string(b)
}

// linkOf finds the servent's link for this raw peer.
func (p *rawPeer) linkOf(s *Servent) *Link {
	p.t.Helper()
	local := addrPortOf(p.conn.LocalAddr())
	for _, l := range s.Links() {
		if l.Remote == local {
			return l
		}
	}
	p.t.Fatalf("servent has no link for %v", local)
	return nil
}

func TestInbound04(t *testing.T) {
	s := startServent(t, testConfig())
	p := dialRaw(t, s)
	p.write([]byte("GNUTELLA CONNECT/0.4\n\n"))
	var ok [13]byte
	if _, err := io.ReadFull(p.br, ok[:]); err != nil {
		t.Fatal(err)
	}
	if string(ok[:]) != "GNUTELLA OK\n\n" {
		t.Fatalf("0.4 answer %q", ok[:])
	}
	p.r = protocol.NewReader(p.br, protocol.Limits{})
	pong := p.sync()
	if want := s.Addr(); pong.AddrPort() != want {
		t.Errorf("pong address %v, want %v", pong.AddrPort(), want)
	}
	if len(pong.GGEP) != 0 {
		t.Errorf("pong to a 0.4 peer carries GGEP %v", pong.GGEP)
	}
	l := p.linkOf(s)
	if l.Kind != LinkNormal || l.Caps.Version != "0.4" || !l.Inbound {
		t.Errorf("link %v version %q inbound %v", l.Kind, l.Caps.Version, l.Inbound)
	}
}

var hex32 = regexp.MustCompile(`^[0-9a-fA-F]{32}$`)

func TestInbound06Headers(t *testing.T) {
	s := startServent(t, testConfig())
	p := dialRaw(t, s)
	ourID := protocol.NewGUID()
	p.request("0.6", peerHeaders(ourID)...)
	resp := p.response()
	if resp.Version != "0.6" || resp.Code != 200 {
		t.Fatalf("got GNUTELLA/%s %d %s", resp.Version, resp.Code, resp.Reason)
	}
	h := &resp.Headers
	if ua := h.Get("User-Agent"); !strings.HasPrefix(ua, "gnutella/") {
		t.Errorf("User-Agent %q", ua)
	}
	if v, ok := h.Bool("X-Ultrapeer"); !ok || !v {
		t.Errorf("X-Ultrapeer %q", h.Get("X-Ultrapeer"))
	}
	if _, ok := h.Bool("X-Ultrapeer-Needed"); !ok {
		t.Errorf("no X-Ultrapeer-Needed from an ultrapeer")
	}
	for _, name := range []string{"Pong-Caching", "GGEP", "Vendor-Message", "Bye-Packet"} {
		if v := h.Get(name); v == "" {
			t.Errorf("no %s header", name)
		} else if _, _, err := protocol.ParseVersion(v); err != nil {
			t.Errorf("%s: %q is not a version: %v", name, v, err)
		}
	}
	if !acceptsDeflate(h) {
		t.Errorf("Accept-Encoding %q, want deflate", h.Get("Accept-Encoding"))
	}
	if h.Has("Content-Encoding") {
		t.Errorf("Content-Encoding %q sent to a peer that did not accept deflate", h.Get("Content-Encoding"))
	}
	if ap, err := protocol.ParseListenAddr(h.Get("Listen-IP")); err != nil || ap != s.Addr() {
		t.Errorf("Listen-IP %q, want %v", h.Get("Listen-IP"), s.Addr())
	}
	if got := h.Get("Remote-IP"); got != "127.0.0.1" {
		t.Errorf("Remote-IP %q, want 127.0.0.1", got)
	}
	if g := h.Get("GUID"); !hex32.MatchString(g) || !strings.EqualFold(g, s.ID().String()) {
		t.Errorf("GUID %q, want %s", g, s.ID())
	}
	if d, err := strconv.Atoi(h.Get("X-Degree")); err != nil || d < 15 {
		t.Errorf("X-Degree %q, want a number >= 15", h.Get("X-Degree"))
	}
	if m, err := strconv.Atoi(h.Get("X-Max-TTL")); err != nil || m != int(s.Config().MaxTTL) || m > 4 {
		t.Errorf("X-Max-TTL %q, want %d", h.Get("X-Max-TTL"), s.Config().MaxTTL)
	}

	p.finish(resp)
	p.sync()
	l := p.linkOf(s)
	if l.PeerID != ourID || l.UserAgent != "rawpeer/1.0" || l.Kind != LinkUltrapeer || l.DeflateIn || l.DeflateOut {
		t.Errorf("link peer %v agent %q kind %v deflate %v/%v", l.PeerID, l.UserAgent, l.Kind, l.DeflateIn, l.DeflateOut)
	}
}

func TestInboundHigherVersion(t *testing.T) {
	s := startServent(t, testConfig())
	p := dialRaw(t, s)
	p.request("0.7", peerHeaders(protocol.NewGUID())...)
	resp := p.response()
	if resp.Version != "0.6" || resp.Code != 200 {
		t.Fatalf("CONNECT/0.7 answered GNUTELLA/%s %d, want GNUTELLA/0.6 200", resp.Version, resp.Code)
	}
	p.finish(resp)
	p.sync()
}

func TestInboundDeflate(t *testing.T) {
	for _, tc := range []struct {
		name          string
		servent       bool // the servent's Config.Deflate
		accept        bool // we send Accept-Encoding: deflate
		compressOurs  bool // we answer Content-Encoding: deflate in step 3
		wantCompTheir bool
	}{
		{"we accept, servent compresses", true, true, false, true},
		{"both directions", true, true, true, true},
		{"we do not accept", true, false, false, false},
		{"servent without deflate", false, true, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig()
			c.Deflate = tc.servent
			s := startServent(t, c)
			p := dialRaw(t, s)
			hdrs := peerHeaders(protocol.NewGUID())
			if tc.accept {
				hdrs = append(hdrs, "Accept-Encoding: deflate")
			}
			p.request("0.6", hdrs...)
			resp := p.response()
			if resp.Code != 200 {
				t.Fatalf("got %d %s", resp.Code, resp.Reason)
			}
			if got := sendsDeflate(&resp.Headers); got != tc.wantCompTheir {
				t.Fatalf("Content-Encoding %q, want deflate %v", resp.Headers.Get("Content-Encoding"), tc.wantCompTheir)
			}
			if !tc.servent && resp.Headers.Has("Accept-Encoding") {
				t.Errorf("servent without deflate sent Accept-Encoding %q", resp.Headers.Get("Accept-Encoding"))
			}
			var final []string
			if tc.compressOurs {
				final = append(final, "Content-Encoding: deflate")
			}
			p.finish(resp, final...) // reads the handshake ping (inflated when compressed)
			p.sync()                 // our ping (deflated when compressOurs) gets a pong
			l := p.linkOf(s)
			if l.DeflateOut != tc.wantCompTheir || l.DeflateIn != tc.compressOurs {
				t.Errorf("link deflate out=%v in=%v", l.DeflateOut, l.DeflateIn)
			}
		})
	}
}

// refusedWith reads a refusal and checks its code and the headers every
// refusal carries; the servent then closes.
func (p *rawPeer) refusedWith(code int) *protocol.HandshakeResponse {
	p.t.Helper()
	resp := p.response()
	if resp.Code != code {
		p.t.Fatalf("got %d %s, want %d", resp.Code, resp.Reason, code)
	}
	if !strings.HasPrefix(resp.Headers.Get("User-Agent"), "gnutella/") {
		p.t.Errorf("refusal without our User-Agent: %q", resp.Headers.Get("User-Agent"))
	}
	if got := resp.Headers.Get("Remote-IP"); got != "127.0.0.1" {
		p.t.Errorf("refusal Remote-IP %q", got)
	}
	if rest := p.rawBytes(); rest != "" {
		p.t.Errorf("servent sent %q after refusing", rest)
	}
	return resp
}

func TestInbound409SameGUID(t *testing.T) {
	s, other := startServent(t, testConfig()), startServent(t, testConfig())
	if _, err := other.Connect(ctxT(t), s.Addr()); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitLinks(ctxT(t), 1); err != nil {
		t.Fatal(err)
	}
	first := dialRaw(t, s)
	firstID := protocol.NewGUID()
	first.handshake(peerHeaders(firstID))

	t.Run("raw peer's GUID again", func(t *testing.T) {
		p := dialRaw(t, s)
		p.request("0.6", peerHeaders(firstID)...)
		p.refusedWith(409)
	})
	t.Run("linked servent's GUID", func(t *testing.T) {
		p := dialRaw(t, s)
		p.request("0.6", peerHeaders(other.ID())...)
		p.refusedWith(409)
	})
	t.Run("servent's own GUID", func(t *testing.T) {
		p := dialRaw(t, s)
		p.request("0.6", peerHeaders(s.ID())...)
		p.refusedWith(409)
	})
	t.Run("linked servent's listen address", func(t *testing.T) {
		p := dialRaw(t, s)
		p.request("0.6", peerHeaders(protocol.NewGUID(), "Listen-IP: "+other.Addr().String())...)
		p.refusedWith(409)
	})
	// The first link was not disturbed.
	first.sync()
	if n := s.LinkCount(); n != 2 {
		t.Errorf("servent has %d links, want 2", n)
	}
}

func TestInbound503TryUltrapeers(t *testing.T) {
	c := testConfig()
	c.MaxLinks = 1
	c.MaxLeaves = 1
	s := startServent(t, c)
	up := startServent(t, testConfig())
	if _, err := up.Connect(ctxT(t), s.Addr()); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitLinks(ctxT(t), 1); err != nil {
		t.Fatal(err)
	}
	seeded := netip.MustParseAddrPort("127.0.0.1:6399")
	if !s.Hosts().Add(seeded, true, hostcache.SourcePong, time.Now()) {
		t.Fatal("host cache refused the seed")
	}

	// Ultrapeer slots are full but a leaf slot is free: leaf guidance
	// (docs/protocol.md §2.4), 200 with X-Ultrapeer-Needed: False. A peer that will not
	// become our leaf is then closed.
	g := dialRaw(t, s)
	g.request("0.6", peerHeaders(protocol.NewGUID())...)
	gresp := g.response()
	if !gresp.OK() || gresp.Headers.Get("X-Ultrapeer-Needed") != "False" {
		t.Fatalf("full of ultrapeers with a leaf slot free: %d %s, X-Ultrapeer-Needed %q, want 200 and False",
			gresp.Code, gresp.Reason, gresp.Headers.Get("X-Ultrapeer-Needed"))
	}

	// A leaf takes the last leaf slot.
	leaf := dialRaw(t, s)
	leaf.handshake(leafHeaders(protocol.NewGUID()))
	if l := leaf.linkOf(s); l.Kind != LinkLeaf {
		t.Errorf("leaf linked as %v", l.Kind)
	}

	// Now neither kind of slot is free: 503 with X-Try-Ultrapeers.
	p := dialRaw(t, s)
	p.request("0.6", peerHeaders(protocol.NewGUID())...)
	resp := p.refusedWith(503)
	try := protocol.ParseTryList(resp.Headers.Get("X-Try-Ultrapeers"))
	if !slices.Contains(try, seeded) || !slices.Contains(try, up.Addr()) {
		t.Errorf("X-Try-Ultrapeers %q, want %v and %v", resp.Headers.Get("X-Try-Ultrapeers"), seeded, up.Addr())
	}
	if slices.Contains(try, s.Addr()) {
		t.Errorf("X-Try-Ultrapeers %q lists the servent itself", resp.Headers.Get("X-Try-Ultrapeers"))
	}

	// A 0.4 peer is closed without an answer.
	p04 := dialRaw(t, s)
	p04.write([]byte("GNUTELLA CONNECT/0.4\n\n"))
	if got := p04.rawBytes(); got != "" {
		t.Errorf("0.4 peer over MaxLinks got %q", got)
	}

	// The next leaf finds no room either.
	leaf2 := dialRaw(t, s)
	leaf2.request("0.6", leafHeaders(protocol.NewGUID())...)
	resp = leaf2.refusedWith(503)
	if !resp.Headers.Has("X-Try-Ultrapeers") {
		t.Errorf("leaf refusal without X-Try-Ultrapeers")
	}
	leaf.sync()
}

// A linked ultrapeer's Listen-IP is its own claim: a 503's X-Try-Ultrapeers
// passes it on only when it names the address the link comes from, so that
// a peer cannot have us point others at a victim.
func TestTryUltrapeersCarryNoClaimedAddress(t *testing.T) {
	c := testConfig()
	c.MaxLinks = 2
	c.MaxLeaves = 0
	s := startServent(t, c)
	liar := dialRaw(t, s)
	liar.handshake(peerHeaders(protocol.NewGUID(), "Listen-IP: 127.0.0.99:6346"))
	honest := dialRaw(t, s)
	honest.handshake(peerHeaders(protocol.NewGUID(), "Listen-IP: 127.0.0.1:6347"))
	liar.sync()
	honest.sync()
	p := dialRaw(t, s)
	p.request("0.6", peerHeaders(protocol.NewGUID())...)
	resp := p.refusedWith(503)
	try := protocol.ParseTryList(resp.Headers.Get("X-Try-Ultrapeers"))
	if slices.Contains(try, netip.MustParseAddrPort("127.0.0.99:6346")) {
		t.Errorf("X-Try-Ultrapeers %q passes on a claimed address", resp.Headers.Get("X-Try-Ultrapeers"))
	}
	if !slices.Contains(try, netip.MustParseAddrPort("127.0.0.1:6347")) {
		t.Errorf("X-Try-Ultrapeers %q leaves out the honest ultrapeer", resp.Headers.Get("X-Try-Ultrapeers"))
	}
}

func TestLeafRefusesLeaf(t *testing.T) {
	c := testConfig()
	c.Mode = ModeLeaf
	s := startServent(t, c)
	up := startServent(t, testConfig())
	if _, err := s.Connect(ctxT(t), up.Addr()); err != nil {
		t.Fatal(err)
	}

	p := dialRaw(t, s)
	p.request("0.6", leafHeaders(protocol.NewGUID())...)
	resp := p.refusedWith(503)
	try := protocol.ParseTryList(resp.Headers.Get("X-Try-Ultrapeers"))
	if !slices.Contains(try, up.Addr()) {
		t.Errorf("X-Try-Ultrapeers %q, want our ultrapeer %v", resp.Headers.Get("X-Try-Ultrapeers"), up.Addr())
	}

	// 0.4 peers are refused by a leaf.
	p04 := dialRaw(t, s)
	p04.write([]byte("GNUTELLA CONNECT/0.4\n\n"))
	if got := p04.rawBytes(); got != "" {
		t.Errorf("leaf answered a 0.4 peer with %q", got)
	}

	// An ultrapeer is welcome.
	u := dialRaw(t, s)
	resp = u.handshake(peerHeaders(protocol.NewGUID()))
	if v, ok := resp.Headers.Bool("X-Ultrapeer"); !ok || v {
		t.Errorf("leaf says X-Ultrapeer %q", resp.Headers.Get("X-Ultrapeer"))
	}
	if resp.Headers.Has("X-Ultrapeer-Needed") {
		t.Errorf("leaf sent X-Ultrapeer-Needed")
	}
	u.sync()
}

func TestInboundUnwantedCompression(t *testing.T) {
	c := testConfig()
	c.Deflate = false
	s := startServent(t, c)
	p := dialRaw(t, s)
	p.request("0.6", append(peerHeaders(protocol.NewGUID()), "Accept-Encoding: deflate")...)
	if resp := p.response(); resp.Code != 200 || resp.Headers.Has("Content-Encoding") {
		t.Fatalf("got %d, Content-Encoding %q", resp.Code, resp.Headers.Get("Content-Encoding"))
	}
	// We compress although the servent never offered to inflate.
	step3 := protocol.HandshakeResponse{Version: "0.6", Code: 200, Reason: "OK"}
	step3.Headers.Add("Content-Encoding", "deflate")
	p.write(step3.AppendTo(nil))
	if got := p.rawBytes(); got != "" {
		t.Errorf("servent sent %q", got)
	}
	if n := s.LinkCount(); n != 0 {
		t.Errorf("servent has %d links", n)
	}
}
