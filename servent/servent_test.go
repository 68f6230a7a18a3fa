package servent

import (
	"context"
	"gnutella/testnet/await"
	"sync/atomic"
	"testing"
	"time"

	"gnutella/protocol"
)

// testConfig is a servent on 127.0.0.1 with short timers, linking only when told.
func testConfig() Config {
	c := DefaultConfig()
	c.ListenAddr = "127.0.0.1:0"
	c.WantLinks = 0
	c.AllowLoopback = true
	c.ByeGrace = 2 * time.Second
	c.HandshakeTimeout = 5 * time.Second
	c.ConnectTimeout = 5 * time.Second
	return c
}

func startServent(t *testing.T, c Config) *Servent {
	t.Helper()
	s, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestHandshakeBothWaysWithAndWithoutDeflate(t *testing.T) {
	for _, tc := range []struct {
		name         string
		aDef, bDef   bool
		wantCompress bool
	}{
		{"both deflate", true, true, true},
		{"dialler plain", false, true, false},
		{"listener plain", true, false, false},
		{"neither", false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca, cb := testConfig(), testConfig()
			ca.Deflate, cb.Deflate = tc.aDef, tc.bDef
			a, b := startServent(t, ca), startServent(t, cb)
			l, err := a.Connect(ctxT(t), b.Addr())
			if err != nil {
				t.Fatal(err)
			}
			if err := b.WaitLinks(ctxT(t), 1); err != nil {
				t.Fatal(err)
			}
			lb := b.Links()[0]
			if l.DeflateOut != tc.wantCompress || l.DeflateIn != tc.wantCompress {
				t.Errorf("dialler deflate out=%v in=%v, want %v", l.DeflateOut, l.DeflateIn, tc.wantCompress)
			}
			if lb.DeflateOut != tc.wantCompress || lb.DeflateIn != tc.wantCompress {
				t.Errorf("listener deflate out=%v in=%v, want %v", lb.DeflateOut, lb.DeflateIn, tc.wantCompress)
			}
			if l.PeerID != b.ID() || lb.PeerID != a.ID() {
				t.Errorf("GUID headers not exchanged")
			}
			if l.Kind != LinkUltrapeer || lb.Kind != LinkUltrapeer {
				t.Errorf("kinds %v/%v, want ultrapeer", l.Kind, lb.Kind)
			}
			// The handshake pings are answered with pongs both ways.
			await.Until(t, "two messages each way", func() bool { return l.Stats().RxMessages >= 2 && lb.Stats().RxMessages >= 2 })
		})
	}
}

func TestQueryFloodsAndHitComesBack(t *testing.T) {
	var answered atomic.Int32
	cc := testConfig()
	cc.Library = StaticLibrary{Results: func(q *protocol.Query, h protocol.Header) []protocol.Result {
		answered.Add(1)
		return []protocol.Result{{Index: 7, Size: 1234, Name: []byte("zebra quokka.txt")}}
	}}
	a, b, c := startServent(t, testConfig()), startServent(t, testConfig()), startServent(t, cc)
	if _, err := a.Connect(ctxT(t), b.Addr()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Connect(ctxT(t), c.Addr()); err != nil {
		t.Fatal(err)
	}
	id := protocol.NewGUID()
	type routed struct {
		Header   protocol.Header
		QueryHit *protocol.QueryHit
	}
	hits := make(chan routed, 4)
	defer a.WatchHits(id, func(h protocol.Header, hit *protocol.QueryHit, _ time.Time) { hits <- routed{h, hit} })()
	if n := a.OriginateQuery(id, protocol.NewQuery("zebra quokka", protocol.QueryFlagMark), 3, nil); n != 1 {
		t.Fatalf("query sent on %d links, want 1", n)
	}
	if h := await.Recv(t, "a hit", hits); h.QueryHit.ServentID != c.ID() || len(h.QueryHit.Results) != 1 || h.Header.Hops != 1 {
		t.Fatalf("hit %+v hops %d", h.QueryHit, h.Header.Hops)
	}
	if answered.Load() != 1 {
		t.Fatalf("answered %d times", answered.Load())
	}
}
