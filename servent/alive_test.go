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

// silentPeer handshakes with s over the in-memory network and then reads
// everything s sends without ever answering; it reports the Bye it got.
func silentPeer(t *testing.T, mem *memnet.Network, s *Servent) <-chan protocol.ByeCode {
	t.Helper()
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
	bye := make(chan protocol.ByeCode, 1)
	go readUntilBye(conn, br, bye)
	return bye
}

// A peer that never answers alive pings is cut with Bye 406 once
// AliveMaxMissed of them went unanswered; one that sends nothing at all,
// with alive checks out of the way, is cut with Bye 405 after IdleTimeout.
// Minutes pass in virtual time (testing/synctest), not on the clock.
func TestDeadLinksAreClosedByAlivePingsAndIdleTimeout(t *testing.T) {
	for _, tc := range []struct {
		name      string
		maxMissed int
		want      protocol.ByeCode
		atLeast   time.Duration
	}{
		{"no alive pong", 6, protocol.ByeNoAliveReply, 6 * 20 * time.Second},
		{"idle", 1000, protocol.ByeActivityTimeout, 180 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				mem := memnet.New()
				c := DefaultConfig()
				c.Transport = mem.Host(netip.MustParseAddr("127.1.0.1"))
				c.ListenAddr = "127.1.0.1:6346"
				c.WantLinks = 0
				c.AliveMaxMissed = tc.maxMissed
				c.PongCaching = false
				s, err := New(c)
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Start(); err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				bye := silentPeer(t, mem, s)
				code, ok := <-bye
				took := time.Since(start)
				if !ok || code != tc.want {
					t.Errorf("got Bye %v (ok %v), want %v", code, ok, tc.want)
				}
				if took < tc.atLeast || took > tc.atLeast+2*c.AlivePingInterval {
					t.Errorf("cut after %v of virtual time, want about %v", took, tc.atLeast)
				}
				_ = s.Stop()
			})
		})
	}
}
