package servent

import (
	"bufio"
	"errors"
	"gnutella/testnet/await"
	"io"
	"net/netip"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"gnutella/protocol"
)

// Bad peers over real TCP. Each test keeps a second servent linked to the
// servent under test and checks, once the bad peer has been dealt with, that
// this unrelated link still carries queries.

// bed is a servent under test (s) with an established link to another
// servent (p) that dialled it.
type bed struct {
	s, p  *Servent
	pLink *Link              // p's end of the link
	fromP chan protocol.GUID // queries s handled from p
}

// newBed starts the servent under test and links a second servent to it,
// with mutate applied to both configs.
func newBed(t *testing.T, mutate func(c *Config)) *bed {
	t.Helper()
	cp := testConfig()
	if mutate != nil {
		mutate(&cp)
	}
	p := startServent(t, cp)
	fromP := make(chan protocol.GUID, 256)
	c := testConfig()
	c.ByeGrace = time.Second
	pid := p.ID()
	c.Trace = func(from *Link, h protocol.Header, dup bool) {
		if h.Type == protocol.TypeQuery && !dup && from.PeerID == pid {
			select {
			case fromP <- h.ID:
			default:
			}
		}
	}
	if mutate != nil {
		mutate(&c)
	}
	s := startServent(t, c)
	l, err := p.Connect(ctxT(t), s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WaitLinks(ctxT(t), 1); err != nil {
		t.Fatal(err)
	}
	return &bed{s: s, p: p, pLink: l, fromP: fromP}
}

// linkAlive checks that the link between p and s is up and that a query
// from p still reaches s over it (an event, not a wait).
func (b *bed) linkAlive(t *testing.T) {
	t.Helper()
	select {
	case <-b.pLink.Done():
		t.Fatalf("the unrelated link closed (Bye %d)", b.pLink.ByeCode())
	default:
	}
	id := protocol.NewGUID()
	if n := b.p.OriginateQuery(id, protocol.NewQuery("still linked", 0), 2, []*Link{b.pLink}); n != 1 {
		t.Fatalf("query queued on %d links", n)
	}
	timeout := time.NewTimer(5 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case got := <-b.fromP:
			if got == id {
				return
			}
		case <-timeout.C:
			t.Fatal("a query over the unrelated link did not arrive")
		}
	}
}

// peer dials s and completes a handshake as an ultrapeer.
func (b *bed) peer(t *testing.T) *rawPeer {
	t.Helper()
	r := dialRaw(t, b.s)
	r.handshake(peerHeaders(protocol.NewGUID()))
	return r
}

func TestBadPeerOversizedLength(t *testing.T) {
	for _, tc := range []struct {
		name   string
		typ    protocol.Type
		length uint32
	}{
		{"query claiming 40 MB", protocol.TypeQuery, 40_000_000},
		{"ping with bit 16 set", protocol.TypePing, 0x0001_0000},
		{"marked length", protocol.TypeQueryHit, 0x8000_0020},
		{"query over its kick size", protocol.TypeQuery, 0xFFFF},
		{"ping over 40960", protocol.TypePing, 50_000},
		{"bye over 4096", protocol.TypeBye, 5000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBed(t, nil)
			r := b.peer(t)
			r.sync()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			// Only the header: the Bye must come without the payload.
			r.sendHeader(protocol.Header{ID: protocol.NewGUID(), Type: tc.typ, TTL: 1, Length: tc.length})
			bye := r.expectBye(protocol.ByeMessageTooLarge)
			runtime.ReadMemStats(&after)
			if !strings.Contains(bye.Reason(), "Too large") {
				t.Errorf("Bye reason %q", bye.Reason())
			}
			if tc.length >= 1<<20 {
				if d := after.TotalAlloc - before.TotalAlloc; d > uint64(tc.length)/16 {
					t.Errorf("allocated %d bytes while refusing a %d-byte payload", d, tc.length)
				}
			}
			b.linkAlive(t)
		})
	}
}

func TestBadPeerGarbageHandshake(t *testing.T) {
	for _, tc := range []struct {
		name   string
		send   string
		prefix string // what the servent answers before closing ("" = nothing)
	}{
		{"junk with HTTP", "FETCH /index.html HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 501 "},
		{"2 KB first line", strings.Repeat("A", 2048) + "\r\n\r\n", "GNUTELLA/0.6 413 "},
		{"2 KB header line", "GNUTELLA CONNECT/0.6\r\nX-Big: " + strings.Repeat("b", 2048) + "\r\n\r\n", "GNUTELLA/0.6 413 "},
		{"too many header lines", "GNUTELLA CONNECT/0.6\r\n" + strings.Repeat("X-A: b\r\n", 200) + "\r\n", "GNUTELLA/0.6 413 "},
		{"header line without colon", "GNUTELLA CONNECT/0.6\r\nUser-Agent: x\r\nthis is no header\r\n\r\n", "GNUTELLA/0.6 400 "},
		{"bad version", "GNUTELLA CONNECT/zero.six\r\n\r\n", "GNUTELLA/0.6 400 "},
		{"junk without HTTP", "HELLO THERE\r\n\r\n", ""},
		{"binary first byte", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", ""},
		{"NUL first byte", "\x00GNUTELLA CONNECT/0.6\r\n\r\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBed(t, nil)
			r := dialRaw(t, b.s)
			r.write([]byte(tc.send))
			got := r.rawBytes()
			if tc.prefix == "" && got != "" || !strings.HasPrefix(got, tc.prefix) {
				t.Errorf("servent answered %q, want %q...", got, tc.prefix)
			}
			if strings.HasPrefix(tc.prefix, "GNUTELLA/") {
				resp, err := protocol.ReadHandshakeResponse(bufio.NewReader(strings.NewReader(got)))
				if err != nil {
					t.Fatalf("refusal %q: %v", got, err)
				}
				if !strings.HasPrefix(resp.Headers.Get("User-Agent"), "gnutella/") || resp.Headers.Get("Remote-IP") != "127.0.0.1" {
					t.Errorf("refusal %q lacks User-Agent or Remote-IP", got)
				}
			}
			if b.s.LinkCount() != 1 {
				t.Errorf("servent has %d links, want 1", b.s.LinkCount())
			}
			b.linkAlive(t)
		})
	}
}

func TestBadPeerStallsInHandshake(t *testing.T) {
	const timeout = 300 * time.Millisecond
	for _, tc := range []struct {
		name  string
		stall func(t *testing.T, r *rawPeer)
	}{
		{"half a first line", func(t *testing.T, r *rawPeer) {
			r.write([]byte("GNUTELLA CONN"))
		}},
		{"no step 3", func(t *testing.T, r *rawPeer) {
			r.request("0.6", peerHeaders(protocol.NewGUID())...)
			if resp := r.response(); resp.Code != 200 {
				t.Fatalf("got %d", resp.Code)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBed(t, func(c *Config) { c.HandshakeTimeout = timeout })
			start := time.Now()
			r := dialRaw(t, b.s)
			tc.stall(t, r)
			if got := r.rawBytes(); got != "" {
				t.Errorf("servent sent %q", got)
			}
			if d := time.Since(start); d < timeout || d > timeout+3*time.Second {
				t.Errorf("cut after %v, want about %v", d, timeout)
			}
			if b.s.LinkCount() != 1 {
				t.Errorf("servent has %d links, want 1", b.s.LinkCount())
			}
			// The established link outlived the handshake timeout.
			b.linkAlive(t)
		})
	}
}

func TestBadPeerDuplicateFlood(t *testing.T) {
	b := newBed(t, nil)
	r := b.peer(t)
	for i := range 10 { // some normal traffic first
		r.sendQuery(protocol.NewGUID(), 3, 0, "normal query "+strings.Repeat("x", i))
	}
	id := protocol.NewGUID()
	r.sendQuery(id, 3, 0, "the same query")
	for range 3 {
		r.sendQuery(id, 3, 0, "the same query")
	}
	r.sync() // a few duplicates are tolerated (gtk: more than 5 and 1.5 % of RX)
	if st := b.s.Stats(); st.Duplicates < 3 {
		t.Errorf("duplicates counted %d, want >= 3", st.Duplicates)
	}
	for range 16 {
		r.sendQuery(id, 3, 0, "the same query")
	}
	r.expectBye(protocol.ByeTooManyDuplicates)
	if st := b.s.Stats(); st.AbuseDisconnect != 1 {
		t.Errorf("abuse disconnects %d, want 1", st.AbuseDisconnect)
	}
	b.linkAlive(t)
}

func TestBadPeerHighTTL(t *testing.T) {
	t.Run("nearby queries", func(t *testing.T) {
		b := newBed(t, nil)
		r := b.peer(t)
		for range 10 { // TTL+hops 16 > 15, hops 1
			r.sendQuery(protocol.NewGUID(), 15, 1, "high ttl")
		}
		r.sync() // ten are dropped but tolerated
		if st := b.s.Stats(); st.DropHardLimit != 10 {
			t.Errorf("hard-limit drops %d, want 10", st.DropHardLimit)
		}
		r.sendQuery(protocol.NewGUID(), 14, 2, "high ttl")
		r.expectBye(protocol.ByeHighTTL)
		b.linkAlive(t)
	})
	t.Run("far or not queries", func(t *testing.T) {
		b := newBed(t, nil)
		r := b.peer(t)
		for range 12 {
			r.sendQuery(protocol.NewGUID(), 13, 3, "far high ttl") // hops 3: beyond the radius
			r.send(protocol.Header{ID: protocol.NewGUID(), Type: protocol.TypePing, TTL: 16}, nil)
		}
		r.sync() // counted, dropped, never kicked
		if st := b.s.Stats(); st.DropHardLimit != 24 {
			t.Errorf("hard-limit drops %d, want 24", st.DropHardLimit)
		}
		b.linkAlive(t)
	})
}

func TestBadPeerTTLZeroAndHops255(t *testing.T) {
	b := newBed(t, nil)
	r := b.peer(t)
	r.sync()
	st0 := b.s.Stats()
	r.sendQuery(protocol.NewGUID(), 0, 1, "ttl zero")
	r.sendQuery(protocol.NewGUID(), 1, 255, "hops 255")
	r.sync() // the link stays up
	st := b.s.Stats()
	if d := st.DropTTLZero - st0.DropTTLZero; d != 1 {
		t.Errorf("TTL 0 drops +%d, want +1", d)
	}
	// With a hard limit of 15, hops 255 is also over it, which gtk checks first.
	if d := st.DropHops255 + st.DropHardLimit - st0.DropHops255 - st0.DropHardLimit; d != 1 {
		t.Errorf("hops 255 drops +%d, want +1", d)
	}
	if d := st.Routed - st0.Routed; d != 0 { // neither was relayed to p
		t.Errorf("routed +%d, want 0", d)
	}
	b.linkAlive(t)
}

func TestBadPeerBye(t *testing.T) {
	// Without pong caching neither servent sends anything of its own accord
	// (no cache-refresh pings) for AlivePingInterval, so anything read after
	// our Bye would have been sent after it.
	b := newBed(t, func(c *Config) { c.PongCaching = false })
	r := b.peer(t)
	bye := func(code protocol.ByeCode, ttl, hops uint8) {
		payload, err := protocol.NewBye(code, "test bye").AppendTo(nil)
		if err != nil {
			t.Fatal(err)
		}
		r.send(protocol.Header{ID: protocol.NewGUID(), Type: protocol.TypeBye, TTL: ttl, Hops: hops}, payload)
	}
	bye(201, 1, 1) // relayed: discarded
	bye(201, 2, 0) // TTL 2: discarded
	r.sync()
	l := r.linkOf(b.s)
	bye(201, 1, 0)
	r.expectEOF() // nothing after a proper Bye, and the servent closes
	await.Recv(t, "the link to close after the Bye", l.Done())
	if l.ByeCode() != 201 {
		t.Errorf("link ended with Bye %d, want 201", l.ByeCode())
	}
	b.linkAlive(t)
}

func TestStopWhileAPeerStallsInHandshake(t *testing.T) {
	inbound := make(chan struct{}, 1)
	c := testConfig()
	c.HandshakeTimeout = 30 * time.Second
	c.Firewall = inboundSignal(inbound)
	s, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	r := dialRaw(t, s)
	r.write([]byte("GNUTELLA CONNECT/0.6\r\nUser-Agent: sl"))
	<-inbound // the servent is reading our handshake
	start := time.Now()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Stop took %v: it waited for the stalled handshake", d)
	}
	// The servent closes at once, maybe before reading what we sent: a reset
	// is as good as an end of stream here, a timeout is not.
	got, err := io.ReadAll(r.br)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("connection not closed by Stop: %v", err)
	}
	if strings.Contains(string(got), " 200") {
		t.Errorf("servent answered %q while stopping", got)
	}
}

// inboundSignal is a Firewall that signals every inbound connection.
type inboundSignal chan struct{}

func (inboundSignal) Firewalled() bool              { return false }
func (c inboundSignal) SawInbound(netip.AddrPort)   { c <- struct{}{} }
func (inboundSignal) SawConnectBack(netip.AddrPort) {}
