package servent

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gnutella/protocol"
	"gnutella/routing"
	"gnutella/testnet/await"
	"gnutella/testnet/gtkg"
)

// gtk-gnutella as a GUESS server (enable_guess = TRUE, ultrapeer, sharing
// one file, no link to us): a key request from the test's own socket on
// 127.0.0.2 gets a key pong with "QK" and "GUE"; a query with that key is
// acknowledged (a pong with the query's MUID) and answered with its hit by
// datagram. Our servent on 127.0.0.1 then finds the file with
// --strategy guess: key request, query, hit. (gtk-gnutella answers one UDP
// ping a minute per IP, hence two addresses.)
func TestGtkAnswersOurGUESSKeyRequestAndQuery(t *testing.T) {
	share := t.TempDir()
	if err := os.WriteFile(filepath.Join(share, "zebra quokka guess.txt"), []byte("the GUESS interop file"), 0o644); err != nil {
		t.Fatal(err)
	}
	g := gtkg.Start(t, share, "enable_guess = TRUE")

	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	peer := &udpPeer{t: t, conn: conn}
	ping := &protocol.Ping{GGEP: protocol.GGEP{{ID: protocol.GGEPQueryKey}, {ID: protocol.GGEPHostsRequest, Data: []byte{0}}}}
	id := protocol.NewGUID()
	peer.send(g.Addr, protocol.Header{ID: id, TTL: 1}, ping)
	raw, h, payload := peer.next()
	if h.Type != protocol.TypePong || h.ID != id {
		t.Fatalf("gtk-gnutella sent %v %v, want the key pong to %v", h.Type, h.ID, id)
	}
	p, err := protocol.DecodePong(payload)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("gtk-gnutella's key pong (%d bytes): %v", len(raw), p)
	key, ok := p.GGEP.Get(protocol.GGEPQueryKey)
	if gue, _ := p.GGEP.Get(protocol.GGEPGUESS); !ok || len(key) == 0 || len(gue) == 0 || gue[0] != 0x02 {
		t.Fatalf("key pong %v: want QK and GUE 0.2", p)
	}

	// gtk-gnutella may still be scanning its library: ask again until its
	// hit comes (each query a new MUID).
	var hit *protocol.QueryHit
	await.Until(t, "gtk-gnutella's hit to our GUESS query", func() bool {
		qid := protocol.NewGUID()
		peer.send(g.Addr, protocol.Header{ID: qid, TTL: 1}, withGUESS(protocol.NewQuery("zebra quokka", 0), key))
		for {
			_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 70000)
			n, _, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return false
			}
			h, payload, err := protocol.DecodeDatagram(buf[:n], protocol.Limits{})
			if err != nil || h.ID != qid {
				continue
			}
			switch h.Type {
			case protocol.TypePong:
				ack, err := protocol.DecodePong(payload)
				t.Logf("gtk-gnutella's ack (%d bytes): %v %v", n, ack, err)
			case protocol.TypeQueryHit:
				if hit, err = protocol.DecodeQueryHit(payload); err != nil {
					t.Fatalf("gtk-gnutella's hit: %v", err)
				}
				return true
			}
		}
	})
	t.Logf("gtk-gnutella's hit: %v", hit)
	if len(hit.Results) == 0 || string(hit.Results[0].Name) != "zebra quokka guess.txt" || hit.AddrPort() != g.Addr {
		t.Errorf("hit %v: want zebra quokka guess.txt from %v", hit, g.Addr)
	}

	// Our servent, as a GUESS client.
	s := startServent(t, testConfig())
	if !s.AskQueryKey(ctxT(t), g.Addr) {
		t.Fatal("gtk-gnutella gave our servent no key")
	}
	if !slices.Contains(s.Hosts().GUESSHosts(10, nil), g.Addr) {
		t.Fatalf("gtk-gnutella is not a GUESS host in our host cache")
	}
	search := s.Search(ctxT(t), protocol.NewQuery("zebra quokka", 0), routing.GUESS{}, 1, 8*time.Second)
	hits := search.Hits()
	t.Logf("our GUESS search: %v; %+v", hits, s.GUESSStats())
	if len(hits) == 0 || hits[0].Host != g.Addr {
		t.Errorf("hits %+v: want gtk-gnutella's file", hits)
	}
}

// gtk-gnutella as a GUESS client (enable_guess_client = TRUE): our
// ultrapeer introduces itself with a key request (GUE with its port, as
// an ultrapeer does), gtk-gnutella runs a search, and when the search goes
// idle (gtk-gnutella's SEARCH_ACTIVITY_TIMEOUT, 120 s) it runs GUESS: it
// asks our ultrapeer for a key and queries it by UDP; our ultrapeer hands
// the query to its leaf by QRP and relays the leaf's hit by datagram, and
// gtk-gnutella lists it. This test takes over two minutes of real time
// and runs only with GTKG_BIN.
func TestGtkQueriesOurUltrapeerByGUESS(t *testing.T) {
	g := gtkg.Start(t, t.TempDir(), "enable_guess = TRUE\nenable_guess_client = TRUE\nrecv_solicited_udp = TRUE")
	// gtk-gnutella skips GUESS hosts on an IP it holds a link to: our
	// ultrapeer is on 127.0.0.3, the link it holds is to 127.0.0.1.
	uc := testConfig()
	uc.ListenAddr = "127.0.0.3:0"
	up := startServent(t, uc)
	lc := testConfig()
	lc.Mode = ModeLeaf
	lc.Library = zebraLibrary(nil)
	leaf := startServent(t, lc)
	if _, err := leaf.Connect(ctxT(t), up.Addr()); err != nil {
		t.Fatal(err)
	}
	other := startServent(t, testConfig()) // a link, so that gtk-gnutella is online
	g.Shell(t, "node add "+other.Addr().String())
	if err := other.WaitLinks(ctxT(t), 1); err != nil {
		t.Fatal(err)
	}
	if !up.AskQueryKey(ctxT(t), g.Addr) {
		t.Fatal("gtk-gnutella gave our ultrapeer no key")
	}
	t.Logf("search add: %s", g.Shell(t, "search add zebra"))
	await.Until(t, "gtk-gnutella's GUESS query to our ultrapeer", func() bool { return up.GUESSStats().QueriesRead > 0 })
	await.Until(t, "the leaf's hit relayed to gtk-gnutella", func() bool { return up.GUESSStats().HitsRelayed > 0 })
	t.Logf("our ultrapeer: %+v", up.GUESSStats())
	await.Until(t, "gtk-gnutella to list the hit", func() bool {
		out := g.Shell(t, "search results")
		return strings.Contains(out, "zebra.ogg")
	})
	t.Logf("gtk-gnutella's results:\n%s", g.Shell(t, "search results"))
}
