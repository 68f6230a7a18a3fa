package servent

import (
	"bufio"
	"context"
	"net/netip"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"gnutella/protocol"
	"gnutella/servent/memnet"
)

// A leaf pings its ultrapeer at most once a minute, and only with TTL 1
// (alive pings): no pong-cache refresh goes through an ultrapeer, which
// would drop it (gtk-gnutella accepts one ping a minute from a leaf). The
// ultrapeer here is the test, answering every ping with a pong, for ten
// minutes of virtual time (testing/synctest).
func TestLeafPingsItsUltrapeerAtMostOnceAMinute(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := memnet.New()
		c := DefaultConfig()
		c.Transport = mem.Host(netip.MustParseAddr("127.1.0.1"))
		c.ListenAddr = "127.1.0.1:6346"
		c.WantLinks = 0
		c.Mode = ModeLeaf
		s, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		conn, err := mem.Host(netip.MustParseAddr("127.1.9.9")).Dial(context.Background(), s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		req := protocol.HandshakeRequest{Version: "0.6"}
		for _, h := range peerHeaders(protocol.NewGUID()) {
			name, value, _ := strings.Cut(h, ":")
			req.Headers.Add(name, strings.TrimSpace(value))
		}
		if _, err := conn.Write(req.AppendTo(nil)); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		if resp, err := protocol.ReadHandshakeResponse(br); err != nil || !resp.OK() {
			t.Fatalf("handshake: %v %v", resp, err)
		}
		final := protocol.HandshakeResponse{Version: "0.6", Code: 200, Reason: "OK"}
		if _, err := conn.Write(final.AppendTo(nil)); err != nil {
			t.Fatal(err)
		}
		type ping struct {
			at  time.Time
			ttl uint8
		}
		pings := make(chan ping, 64)
		go func() {
			defer close(pings)
			r := protocol.NewReader(br, protocol.DefaultLimits())
			pong, _ := (&protocol.Pong{Port: 6346, IP: [4]byte{127, 1, 9, 9}, KB: 8}).AppendTo(nil)
			for {
				h, _, err := r.ReadRaw()
				if err != nil {
					return
				}
				if h.Type != protocol.TypePing {
					continue
				}
				pings <- ping{time.Now(), h.TTL}
				out := protocol.Header{ID: h.ID, Type: protocol.TypePong, TTL: 1, Length: uint32(len(pong))}
				if _, err := conn.Write(append(out.AppendTo(nil), pong...)); err != nil {
					return
				}
			}
		}()
		start := time.Now()
		time.Sleep(10 * time.Minute) // virtual time
		_ = s.Stop()
		conn.Close()
		var last time.Time
		n := 0
		for p := range pings {
			n++
			if p.ttl != 1 {
				t.Errorf("ping with TTL %d at %v: a leaf sends its ultrapeer alive pings only", p.ttl, p.at.Sub(start))
			}
			if !last.IsZero() && p.at.Sub(last) < leafPingSpacing {
				t.Errorf("pings %v apart (at %v), want at least %v", p.at.Sub(last), p.at.Sub(start), leafPingSpacing)
			}
			last = p.at
		}
		if n < 5 {
			t.Errorf("%d pings in 10 minutes: the link's alive pings stopped", n)
		}
	})
}
