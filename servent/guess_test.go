package servent

import (
	"bytes"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"gnutella/protocol"
	"gnutella/routing"
	"gnutella/testnet/await"
	"gnutella/ultrapeer"
)

// zebraLibrary answers "zebra" with one file and counts the queries it saw.
func zebraLibrary(asked *atomic.Int64) StaticLibrary {
	sha := protocol.SHA1{1, 2, 3}
	return StaticLibrary{
		Table: ultrapeer.BuildTable(16, [][]string{{"zebra"}}, nil),
		Results: func(q *protocol.Query, h protocol.Header) []protocol.Result {
			if asked != nil {
				asked.Add(1)
			}
			if !bytes.Contains(q.Search, []byte("zebra")) {
				return nil
			}
			return []protocol.Result{fileResult(7, "zebra.ogg", 1234, sha, false, nil)}
		},
	}
}

// keyPing is a GUESS query key request.
func keyPing() *protocol.Ping {
	return &protocol.Ping{GGEP: protocol.GGEP{{ID: protocol.GGEPQueryKey}}}
}

// getKey has peer ask up for its query key, proving its address on the
// way (the key pong is larger than the request), and returns the key.
func getKey(t *testing.T, peer *udpPeer, up *Servent) []byte {
	t.Helper()
	id := protocol.NewGUID()
	size := peer.send(up.UDPAddr(), protocol.Header{ID: id, TTL: 1}, keyPing())
	raw, h, _ := peer.next()
	if h.Type != protocol.TypePing || len(raw) > size {
		t.Fatalf("an unproven key request of %d bytes got %v of %d bytes, want a bare proof ping", size, h.Type, len(raw))
	}
	peer.send(up.UDPAddr(), protocol.Header{ID: h.ID, TTL: 1}, &protocol.Pong{Port: peer.addr().Port(), IP: [4]byte{127, 0, 0, 1}})
	_, h, payload := peer.next()
	if h.Type != protocol.TypePong || h.ID != id {
		t.Fatalf("after the proof got %v %v, want the key pong to %v", h.Type, h.ID, id)
	}
	p, err := protocol.DecodePong(payload)
	if err != nil {
		t.Fatal(err)
	}
	if g, _ := p.GGEP.Get(protocol.GGEPGUESS); !bytes.Equal(g, []byte{0x02}) {
		t.Errorf("GUE = % x, want 02 (GUESS 0.2)", g)
	}
	k, ok := p.GGEP.Get(protocol.GGEPQueryKey)
	if !ok || len(k) != guessKeyLen {
		t.Fatalf("QK = % x (%v), want %d bytes", k, ok, guessKeyLen)
	}
	return k
}

// A query key round trip over real UDP: key request, proof, key pong with
// "QK" and "GUE"; the query carrying that key is acknowledged (a pong
// with the query's GUID and "GUE") and answered with our hit by datagram.
func TestGUESSQueryKeyRoundTrip(t *testing.T) {
	c := testConfig()
	c.Library = zebraLibrary(nil)
	up := startServent(t, c)
	peer := newUDPPeer(t)
	key := getKey(t, peer, up)
	if again := getKey2(t, peer, up); !bytes.Equal(again, key) {
		t.Errorf("second key % x differs from the first % x", again, key)
	}

	id := protocol.NewGUID()
	peer.send(up.UDPAddr(), protocol.Header{ID: id, TTL: 1}, withGUESS(protocol.NewQuery("zebra", 0), key))
	var ack, hit bool
	for !ack || !hit {
		_, h, payload := peer.next()
		if h.ID != id {
			t.Fatalf("got %v %v, want replies to query %v", h.Type, h.ID, id)
		}
		switch h.Type {
		case protocol.TypePong:
			p, err := protocol.DecodePong(payload)
			if err != nil || !p.GGEP.Has(protocol.GGEPGUESS) || p.AddrPort() != up.Addr() {
				t.Fatalf("ack %v, %v: want our pong with GUE", p, err)
			}
			ack = true
		case protocol.TypeQueryHit:
			qh, err := protocol.DecodeQueryHit(payload)
			if err != nil || len(qh.Results) != 1 || string(qh.Results[0].Name) != "zebra.ogg" || qh.AddrPort() != up.Addr() {
				t.Fatalf("hit %v, %v: want zebra.ogg from %v", qh, err, up.Addr())
			}
			hit = true
		default:
			t.Fatalf("unexpected %v", h.Type)
		}
	}
	if st := up.GUESSStats(); st.QueriesRead != 1 || st.Refused != 0 || st.KeysGiven != 2 {
		t.Errorf("stats %+v: want 2 keys given, 1 query read, none refused", st)
	}
}

// getKey2 asks for the key again from a proven address: the key pong
// comes at once.
func getKey2(t *testing.T, peer *udpPeer, up *Servent) []byte {
	t.Helper()
	id := protocol.NewGUID()
	peer.send(up.UDPAddr(), protocol.Header{ID: id, TTL: 1}, keyPing())
	_, h, payload := peer.next()
	if h.Type != protocol.TypePong || h.ID != id {
		t.Fatalf("got %v %v, want the key pong", h.Type, h.ID)
	}
	p, err := protocol.DecodePong(payload)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := p.GGEP.Get(protocol.GGEPQueryKey)
	return k
}

// A UDP query with no key, a wrong key, or the key of another address gets
// nothing: no ack, no hit, and the library is not even asked. The bare
// ping sent last synchronises: the servent reads datagrams in order, so
// when its proof ping comes back the queries were handled.
func TestGUESSQueryWithoutValidKeyGetsNothing(t *testing.T) {
	var asked atomic.Int64
	c := testConfig()
	c.Library = zebraLibrary(&asked)
	up := startServent(t, c)
	owner, other := newUDPPeer(t), newUDPPeer(t)
	key := getKey(t, owner, up)
	wrong := append([]byte(nil), key...)
	wrong[0] ^= 0xff
	for _, q := range []*protocol.Query{
		protocol.NewQuery("zebra", 0),                   // no key
		withGUESS(protocol.NewQuery("zebra", 0), wrong), // wrong key
		withGUESS(protocol.NewQuery("zebra", 0), key),   // owner's key, other's address
		withGUESS(protocol.NewQuery("zebra", 0), nil),   // empty key
	} {
		other.send(up.UDPAddr(), protocol.Header{ID: protocol.NewGUID(), TTL: 1}, q)
	}
	other.send(up.UDPAddr(), protocol.Header{ID: protocol.NewGUID(), TTL: 1}, &protocol.Ping{})
	raw, h, _ := other.next()
	if h.Type != protocol.TypePing || len(raw) != protocol.HeaderLen {
		t.Fatalf("first reply %v of %d bytes: want only the bare proof ping", h.Type, len(raw))
	}
	st := up.GUESSStats()
	if st.Refused != 4 || st.QueriesRead != 0 || asked.Load() != 0 {
		t.Errorf("stats %+v, library asked %d times: want 4 refused, none read, library not asked", st, asked.Load())
	}
}

// GUESS finds a file held by a leaf of an ultrapeer we are not linked to:
// the querier learns the ultrapeer is a GUESS server from its pong's
// "GUE", gets its query key, sends the query by UDP; the ultrapeer hands
// it to its leaf by QRP and relays the leaf's hit back by datagram.
func TestGUESSFindsFileOnLeafOfAnotherUltrapeer(t *testing.T) {
	up := startServent(t, testConfig())
	lc := testConfig()
	lc.Mode = ModeLeaf
	lc.Library = zebraLibrary(nil)
	leaf := startServent(t, lc)
	if _, err := leaf.Connect(ctxT(t), up.Addr()); err != nil {
		t.Fatal(err)
	}
	await.Until(t, "the leaf's QRP table at the ultrapeer", func() bool {
		for _, l := range up.Links() {
			if l.PeerTable() != nil {
				return true
			}
		}
		return false
	})
	querier := startServent(t, testConfig())
	querier.udp.ping(up.UDPAddr(), &protocol.Ping{}, false, time.Now())
	await.Until(t, "the ultrapeer known as a GUESS host", func() bool {
		return slices.Contains(querier.hosts.GUESSHosts(10, nil), up.Addr())
	})

	search := querier.Search(ctxT(t), protocol.NewQuery("zebra", 0), routing.GUESS{}, 1, 10*time.Second)
	hits := search.Hits()
	if len(hits) != 1 || hits[0].Name != "zebra.ogg" || hits[0].Host != leaf.Addr() {
		t.Fatalf("hits %+v: want zebra.ogg from the leaf %v", hits, leaf.Addr())
	}
	if st := querier.GUESSStats(); st.KeysAsked != 1 || st.KeysLearnt != 1 || st.Probes != 1 || st.HitsReceived != 1 {
		t.Errorf("querier stats %+v: want one key asked and learnt, one probe, one hit", st)
	}
	if st := up.GUESSStats(); st.QueriesRead != 1 || st.HitsRelayed != 1 {
		t.Errorf("ultrapeer stats %+v: want one query read, one hit relayed", st)
	}
}

// guessServer is a test GUESS host that gives a key to every key request
// and counts the queries it gets (never answering them).
func guessServer(t *testing.T, queries chan<- netip.AddrPort) *udpPeer {
	p := newUDPPeer(t)
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := p.conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			h, payload, err := protocol.DecodeDatagram(buf[:n], protocol.Limits{})
			if err != nil {
				continue
			}
			switch h.Type {
			case protocol.TypePing:
				if ping, err := protocol.DecodePing(payload); err == nil && ping.GGEP.Has(protocol.GGEPQueryKey) {
					pong := &protocol.Pong{Port: p.addr().Port(), IP: [4]byte{127, 0, 0, 1}, KB: 8,
						GGEP: protocol.GGEP{guessExtension(), {ID: protocol.GGEPQueryKey, Data: []byte{9, 9, 9, 9}}}}
					b, _ := (&protocol.Message{Header: protocol.Header{ID: h.ID, TTL: 1}, Payload: pong}).AppendTo(nil)
					_, _ = p.conn.WriteToUDPAddrPort(b, from)
				}
			case protocol.TypeQuery:
				queries <- p.addr()
			}
		}
	}()
	return p
}

// A GUESS search probes at most MaxHosts hosts, each once, however many
// it knows and however few results come.
func TestGUESSProbesAreBounded(t *testing.T) {
	querier := startServent(t, testConfig())
	queries := make(chan netip.AddrPort, 10)
	for range 6 {
		p := guessServer(t, queries)
		querier.hosts.SawGUESS(p.addr(), time.Now())
	}
	st := routing.GUESS{MaxHosts: 3, Parallel: 2, Wait: time.Millisecond}
	querier.Search(ctxT(t), protocol.NewQuery("nothing anywhere", 0), st, 1, 500*time.Millisecond)
	got := map[netip.AddrPort]bool{}
	for range 3 {
		a := <-queries
		if got[a] {
			t.Fatalf("%v was probed twice", a)
		}
		got[a] = true
	}
	if s := querier.GUESSStats(); s.Probes != 3 || s.KeysAsked != 3 || s.KeysLearnt != 3 {
		t.Errorf("stats %+v: want 3 keys asked and learnt, 3 probes", s)
	}
	select {
	case a := <-queries:
		t.Errorf("a fourth probe, to %v", a)
	default:
	}
}

// A leaf searching with GUESS sends nothing over TCP (its ultrapeer would
// run a leaf's query as a dynamic query): it probes its own ultrapeer by
// UDP like any GUESS host, which hands the query to its other leaf.
func TestGUESSFromLeafProbesItsUltrapeerByUDP(t *testing.T) {
	up := startServent(t, testConfig())
	hc := testConfig()
	hc.Mode = ModeLeaf
	hc.Library = zebraLibrary(nil)
	holder := startServent(t, hc)
	sc := testConfig()
	sc.Mode = ModeLeaf
	seeker := startServent(t, sc)
	for _, l := range []*Servent{holder, seeker} {
		if _, err := l.Connect(ctxT(t), up.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	awaitPeerTable(t, up, holder.ID())
	if !seeker.AskQueryKey(ctxT(t), up.UDPAddr()) {
		t.Fatal("the ultrapeer gave its leaf no key")
	}
	search := seeker.Search(ctxT(t), protocol.NewQuery("zebra", 0), routing.GUESS{}, 1, 10*time.Second)
	hits := search.Hits()
	if len(hits) != 1 || hits[0].Host != holder.Addr() {
		t.Fatalf("hits %+v: want zebra.ogg from the holder %v", hits, holder.Addr())
	}
	if st := search.Stats(); st.Sent != 1 {
		t.Errorf("the leaf sent %d query copies: want 1, the UDP probe", st.Sent)
	}
	if st := up.GUESSStats(); st.QueriesRead != 1 || st.HitsRelayed != 1 {
		t.Errorf("ultrapeer stats %+v: want one UDP query read, one hit relayed", st)
	}
}

// A key whose query got no ack within guessKeyWait is no longer used (the
// host may have changed its secret: the next probe asks again); an ack
// keeps it; keys expire after guessKeyLife.
func TestGUESSKeyWithoutAckIsAskedAgain(t *testing.T) {
	var g guessState
	host := netip.MustParseAddrPort("127.0.0.9:6346")
	t0 := time.Unix(1_000_000, 0)
	g.keys = map[netip.AddrPort]guessKey{host: {key: []byte{1, 2, 3, 4}, at: t0}}
	if _, ok := g.heldKey(host, t0); !ok {
		t.Fatal("a fresh key is not held")
	}
	g.sentWith(host, t0)
	if _, ok := g.heldKey(host, t0.Add(guessKeyWait-time.Millisecond)); !ok {
		t.Fatal("the key was dropped before its ack could come")
	}
	if _, ok := g.heldKey(host, t0.Add(guessKeyWait)); ok {
		t.Fatal("a key whose query got no ack is still used")
	}
	g.keys[host] = guessKey{key: []byte{1, 2, 3, 4}, at: t0} // acked: unacked cleared
	if _, ok := g.heldKey(host, t0.Add(guessKeyLife-time.Second)); !ok {
		t.Fatal("an acked key expired early")
	}
	if _, ok := g.heldKey(host, t0.Add(guessKeyLife)); ok {
		t.Fatal("a key older than guessKeyLife is still used")
	}
}

// Our own keys: valid for the address they were made for, under the
// current and the previous secret; not for another port; not after two
// rotations.
func TestGUESSOwnKeyRotation(t *testing.T) {
	var g guessState
	a := netip.MustParseAddrPort("127.0.0.9:6346")
	t0 := time.Unix(1_000_000, 0)
	k := g.key(a, t0)
	if !g.validKey(k, a, t0) || g.validKey(k, netip.MustParseAddrPort("127.0.0.9:6347"), t0) {
		t.Fatal("a key is not bound to its address and port")
	}
	if !g.validKey(k, a, t0.Add(guessKeyRotate)) {
		t.Fatal("the key died at the first rotation: the previous secret must stay valid")
	}
	if g.validKey(k, a, t0.Add(2*guessKeyRotate)) {
		t.Fatal("the key outlived two rotations")
	}
}
