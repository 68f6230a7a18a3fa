package servent

import (
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"gnutella/protocol"
	"gnutella/routing"
	"gnutella/testnet/await"
	"gnutella/ultrapeer"
)

// zebraResults are n results named "zebra N.txt".
func zebraResults(n int) []protocol.Result {
	rs := make([]protocol.Result, n)
	for i := range rs {
		rs[i] = protocol.Result{Index: uint32(i + 1), Size: 1000 + uint32(i), Name: []byte(fmt.Sprintf("zebra %d.txt", i))}
	}
	return rs
}

// zebraLeaf is a leaf config that shares n zebra results (and says so in
// its QRP table).
func zebraLeaf(n int) Config {
	c := testConfig()
	c.Mode = ModeLeaf
	c.Library = StaticLibrary{
		Results: func(q *protocol.Query, h protocol.Header) []protocol.Result { return zebraResults(n) },
		Table:   ultrapeer.BuildTable(16, [][]string{{"zebra"}}, nil),
	}
	return c
}

// A leaf's search under an ultrapeer of ours comes back by UDP: the query
// carries the OOB flag and a MUID naming the leaf, the other leaf holding
// 12 results offers them with LIME/12, the querier acks with LIME/11 and
// the 12 results arrive in 3 UDP QueryHits (5 records each at most), none
// over TCP.
func TestOOBLeafSearchGetsItsHitsByUDP(t *testing.T) {
	var tcpHits atomic.Int32
	qc := testConfig()
	qc.Mode = ModeLeaf
	qc.Trace = func(_ *Link, h protocol.Header, _ bool) {
		if h.Type == protocol.TypeQueryHit {
			tcpHits.Add(1)
		}
	}
	var seen atomic.Value // the query as the sharing leaf got it
	rc := zebraLeaf(12)
	rc.Library = StaticLibrary{
		Results: func(q *protocol.Query, h protocol.Header) []protocol.Result {
			seen.Store(fmt.Sprintf("%v %v", q.Flags.Has(protocol.QueryFlagOOB), h.ID.OOBAddrPort()))
			return zebraResults(12)
		},
		Table: rc.Library.QRPTable(),
	}
	up, querier, responder := startServent(t, testConfig()), startServent(t, qc), startServent(t, rc)
	for _, s := range []*Servent{querier, responder} {
		if _, err := s.Connect(ctxT(t), up.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	awaitPeerTable(t, up, responder.ID())
	search, done := querier.StartSearch(protocol.NewQuery("zebra", 0), routing.Flood{TTL: 3}, 12, time.Minute)
	if search.ID.OOBAddrPort() != querier.Addr() {
		t.Fatalf("search MUID %s names %s, want %s", search.ID, search.ID.OOBAddrPort(), querier.Addr())
	}
	await.Recv(t, "the search to end with 12 results", done)
	if n := search.Len(); n != 12 {
		t.Fatalf("%d results, want 12", n)
	}
	if got, want := seen.Load(), fmt.Sprintf("true %v", querier.Addr()); got != want {
		t.Errorf("the responder saw OOB, return address = %v, want %v", got, want)
	}
	q, r := querier.UDPStats().OOB, responder.UDPStats().OOB
	t.Logf("querier %+v", q)
	t.Logf("responder %+v", r)
	if q.Indications != 1 || q.AcksSent != 1 || q.HitsRead != 3 || q.ResultsRead != 12 || q.HitsDropped != 0 {
		t.Errorf("querier OOB counters %+v", q)
	}
	if r.Offers != 1 || r.AcksRead != 1 || r.HitsSent != 3 || r.ViaTCP != 0 {
		t.Errorf("responder OOB counters %+v", r)
	}
	if n := tcpHits.Load(); n != 0 {
		t.Errorf("%d QueryHits came over TCP, want 0 (UDP: %d)", n, q.HitsRead)
	}
}

// oobChain is sender → relay → responder over TCP, so that a query the
// sender originates reaches the responder at hops 1, as it must to be
// answered out of band.
func oobChain(t *testing.T, rc Config) (sender, responder *Servent) {
	t.Helper()
	sender, relay := startServent(t, testConfig()), startServent(t, testConfig())
	responder = startServent(t, rc)
	if _, err := sender.Connect(ctxT(t), relay.Addr()); err != nil {
		t.Fatal(err)
	}
	if _, err := relay.Connect(ctxT(t), responder.Addr()); err != nil {
		t.Fatal(err)
	}
	if err := responder.WaitLinks(ctxT(t), 1); err != nil {
		t.Fatal(err)
	}
	return sender, responder
}

func oobQuery() *protocol.Query {
	return protocol.NewQuery("zebra", protocol.QueryFlagOOB)
}

// A query whose MUID names a host that did not send it (here a UDP socket
// of the test that never acks) gets that host one LIME/12, no larger than
// the query, and never a hit: not when a third address acks in its place,
// not when the named host acks after the offer expired.
func TestOOBSpoofedReturnAddressGetsNoHits(t *testing.T) {
	var clock atomic.Int64 // added to the responder's time
	rc := testConfig()
	rc.Library = StaticLibrary{Results: func(q *protocol.Query, h protocol.Header) []protocol.Result { return zebraResults(12) }}
	r, err := New(rc)
	if err != nil {
		t.Fatal(err)
	}
	r.now = func() time.Time { return time.Now().Add(time.Duration(clock.Load())) }
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Stop() })
	sender, relay := startServent(t, testConfig()), startServent(t, testConfig())
	if _, err := sender.Connect(ctxT(t), relay.Addr()); err != nil {
		t.Fatal(err)
	}
	if _, err := relay.Connect(ctxT(t), r.Addr()); err != nil {
		t.Fatal(err)
	}
	if err := r.WaitLinks(ctxT(t), 1); err != nil {
		t.Fatal(err)
	}

	// The victim is on 127.0.0.2: no link of the responder comes from
	// there, so it has not proved its address.
	victim, thief := newUDPPeerOn(t, "127.0.0.2"), newUDPPeer(t)

	// A short query: its LIME/12 would be larger, so no LIME/12 and the
	// hits go back over TCP.
	short := protocol.NewOOBGUID(victim.addr())
	tcpHits := make(chan int, 4)
	defer sender.WatchHits(short, func(_ protocol.Header, hit *protocol.QueryHit, _ time.Time) { tcpHits <- len(hit.Results) })()
	sender.OriginateQuery(short, oobQuery(), 3, nil)
	if n := await.Recv(t, "hits by TCP", tcpHits) + await.Recv(t, "hits by TCP", tcpHits); n != 12 {
		t.Fatalf("%d results by TCP, want 12", n)
	}
	if st := r.UDPStats().OOB; st.ViaTCP != 1 || st.Offers != 0 {
		t.Fatalf("short query: OOB counters %+v", st)
	}

	id := protocol.NewOOBGUID(victim.addr())
	q := protocol.NewQuery("zebra stripes on the savanna", protocol.QueryFlagOOB)
	payload, _ := q.AppendTo(nil)
	if n := sender.OriginateQuery(id, q, 3, nil); n != 1 {
		t.Fatalf("query sent on %d links", n)
	}
	b, h, pl := victim.next()
	v, err := protocol.DecodeVendor(h.Type, pl)
	if err != nil || !v.Is(protocol.OOBReplyIndicationID) || h.ID != id {
		t.Fatalf("the victim got %v %v (%v), want LIME/12 for %s", h, v, err, id)
	}
	ind, err := v.OOBReplyIndication()
	if err != nil || ind.Hits != 12 {
		t.Fatalf("LIME/12 %+v, %v", ind, err)
	}
	if len(b) > protocol.HeaderLen+len(payload) {
		t.Errorf("LIME/12 of %d bytes to an unproven address, the query was %d", len(b), protocol.HeaderLen+len(payload))
	}

	// Someone else claims the hits: refused, and the offer stays.
	thief.send(r.UDPAddr(), protocol.Header{ID: id, TTL: 1}, protocol.NewOOBReplyAck(255, nil))
	await.Until(t, "the thief's ack refused", func() bool { return r.UDPStats().OOB.Spurious == 1 })

	// The offer expires unclaimed; a late ack from the named address gets nothing.
	clock.Store(int64(oobLife + time.Second))
	victim.send(r.UDPAddr(), protocol.Header{ID: id, TTL: 1}, protocol.NewOOBReplyAck(255, nil))
	await.Until(t, "the late ack refused", func() bool { return r.UDPStats().OOB.Spurious == 2 })
	st := r.UDPStats()
	if st.OOB.Offers != 1 || st.OOB.HitsSent != 0 || st.OOB.AcksRead != 0 {
		t.Errorf("responder OOB counters %+v", st.OOB)
	}
	if st.Sent != 1 {
		t.Errorf("the responder sent %d datagrams, want 1 (the LIME/12)", st.Sent)
	}
}

// A search of ours takes UDP hits only from the address it acked, for the
// MUID it acked, up to the count acked: a flood from anyone else, and
// what goes past the count, is dropped.
func TestOOBHitFloodFromUnackedAddressIsDropped(t *testing.T) {
	up := startServent(t, testConfig())
	qc := testConfig()
	qc.Mode = ModeLeaf
	a := startServent(t, qc)
	if _, err := a.Connect(ctxT(t), up.Addr()); err != nil {
		t.Fatal(err)
	}
	search, _ := a.StartSearch(protocol.NewQuery("zebra", 0), routing.Flood{TTL: 3}, 50, time.Minute)
	id := search.ID
	hitMsg := func(n int) *protocol.QueryHit {
		return protocol.NewQueryHit([4]byte{127, 0, 0, 1}, 6346, 100, zebraResults(n), protocol.HitTrailer{}, protocol.NewGUID())
	}

	flooder := newUDPPeer(t)
	for range 20 {
		flooder.send(a.UDPAddr(), protocol.Header{ID: id, TTL: 1}, hitMsg(1))
	}
	await.Until(t, "20 unclaimed hits dropped", func() bool { return a.UDPStats().OOB.HitsDropped == 20 })

	// A responder offers 2; it is acked for 2 and its third result is refused.
	resp := newUDPPeer(t)
	resp.send(a.UDPAddr(), protocol.Header{ID: id, TTL: 1}, protocol.NewOOBReplyIndication(protocol.OOBReplyIndication{Hits: 2}))
	_, h, pl := resp.next()
	v, err := protocol.DecodeVendor(h.Type, pl)
	if err != nil || !v.Is(protocol.OOBReplyAckID) || h.ID != id {
		t.Fatalf("got %v %v (%v), want LIME/11 for %s", h, v, err, id)
	}
	if want, _, err := v.OOBReplyAck(); err != nil || want != 2 {
		t.Fatalf("LIME/11 wants %d (%v), want 2", want, err)
	}
	flooder.send(a.UDPAddr(), protocol.Header{ID: id, TTL: 1}, hitMsg(1)) // not the acked address
	resp.send(a.UDPAddr(), protocol.Header{ID: id, TTL: 1}, hitMsg(3))    // more than acked
	resp.send(a.UDPAddr(), protocol.Header{ID: id, TTL: 1}, hitMsg(2))
	resp.send(a.UDPAddr(), protocol.Header{ID: id, TTL: 1}, hitMsg(1)) // the claim is used up
	await.Until(t, "the acked hit taken", func() bool { return a.UDPStats().OOB.HitsRead == 1 })
	await.Until(t, "the others dropped", func() bool { return a.UDPStats().OOB.HitsDropped == 23 })
	if n := search.Len(); n != 2 {
		t.Errorf("search holds %d results, want 2", n)
	}
	// An offer for no search of ours is not acked.
	resp.send(a.UDPAddr(), protocol.Header{ID: protocol.NewOOBGUID(a.Addr()), TTL: 1},
		protocol.NewOOBReplyIndication(protocol.OOBReplyIndication{Hits: 5}))
	await.Until(t, "an offer for no search refused", func() bool { return a.UDPStats().OOB.Unwanted == 1 })
	if st := a.UDPStats().OOB; st.AcksSent != 1 {
		t.Errorf("acks sent %d, want 1", st.AcksSent)
	}
}

// A secure-OOB query (GGEP "SO") is offered with LIME/12v3; an ack with a
// token gets hits that carry the token in their trailer, by UDP to the
// acking address.
func TestOOBSecureTokenEchoedInHits(t *testing.T) {
	rc := testConfig()
	rc.Library = StaticLibrary{Results: func(q *protocol.Query, h protocol.Header) []protocol.Result { return zebraResults(7) }}
	sender, r := oobChain(t, rc)
	me := newUDPPeer(t)
	id := protocol.NewOOBGUID(me.addr())
	q := oobQuery()
	q.Extensions = append(q.Extensions, protocol.GGEPItem(protocol.GGEP{{ID: protocol.GGEPSecureOOB}}))
	sender.OriginateQuery(id, q, 3, nil)
	_, h, pl := me.next()
	v, _ := protocol.DecodeVendor(h.Type, pl)
	if ind, err := v.OOBReplyIndication(); err != nil || !ind.Secure || ind.Hits != 7 || !ind.Unsolicited {
		t.Fatalf("LIME/12 %+v (%v), want v3 with 7 hits", ind, err)
	}
	token := []byte{1, 2, 3, 4, 5}
	me.send(r.UDPAddr(), protocol.Header{ID: id, TTL: 1}, protocol.NewOOBReplyAck(6, token))
	records := 0
	for records < 6 {
		_, h, pl := me.next()
		if h.Type != protocol.TypeQueryHit || h.ID != id {
			t.Fatalf("got %v, want a QueryHit for %s", h, id)
		}
		hit, err := protocol.DecodeQueryHit(pl)
		if err != nil {
			t.Fatal(err)
		}
		if tok, _ := hit.TrailerGGEP().Get(protocol.GGEPSecureOOB); string(tok) != string(token) {
			t.Fatalf("hit token %x, want %x", tok, token)
		}
		if hit.ServentID != r.ID() || len(hit.Results) > oobHitRecords {
			t.Fatalf("hit from %s with %d records", hit.ServentID, len(hit.Results))
		}
		records += len(hit.Results)
	}
	if records != 6 {
		t.Errorf("%d records, want the 6 acked", records)
	}
	await.Until(t, "two hits counted", func() bool { return r.UDPStats().OOB.HitsSent == 2 })
}

// newUDPPeerOn is newUDPPeer on another loopback address.
func newUDPPeerOn(t *testing.T, ip string) *udpPeer {
	t.Helper()
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &udpPeer{t: t, conn: conn}
}

// A leaf's query that its ultrapeer runs as a dynamic query leaves the
// ultrapeer with hops 1, so a servent two hops from the leaf (here an
// ultrapeer next to the leaf's) sees it at hops 1 and answers out of band,
// by UDP to the leaf. Found against gtk-gnutella in a lab
// (testnet/oob_gtkg_netns_test.go): our ultrapeer sent its leaves' queries
// with hops 0, so gtk-gnutella, two hops from our leaf, took them for a
// neighbour's own queries and answered over TCP.
func TestOOBLeafQueryRunByItsUltrapeerLeavesAtHopsOne(t *testing.T) {
	qc := testConfig()
	qc.Mode = ModeLeaf
	var hops atomic.Int32
	hops.Store(-1)
	rc := testConfig()
	rc.Library = StaticLibrary{
		Results: func(q *protocol.Query, h protocol.Header) []protocol.Result {
			hops.Store(int32(h.Hops))
			return zebraResults(7)
		},
		Table: ultrapeer.BuildTable(16, [][]string{{"zebra"}}, nil),
	}
	up, querier, responder := startServent(t, testConfig()), startServent(t, qc), startServent(t, rc)
	if _, err := querier.Connect(ctxT(t), up.Addr()); err != nil {
		t.Fatal(err)
	}
	if _, err := up.Connect(ctxT(t), responder.Addr()); err != nil {
		t.Fatal(err)
	}
	if err := responder.WaitLinks(ctxT(t), 1); err != nil {
		t.Fatal(err)
	}
	search, done := querier.StartSearch(protocol.NewQuery("zebra", 0), routing.Flood{TTL: 3}, 7, time.Minute)
	await.Recv(t, "the search to end with 7 results", done)
	if n := search.Len(); n != 7 {
		t.Fatalf("%d results, want 7", n)
	}
	if h := hops.Load(); h != 1 {
		t.Errorf("the responder got the leaf's query at hops %d, want 1", h)
	}
	q, r := querier.UDPStats().OOB, responder.UDPStats().OOB
	if q.ResultsRead != 7 || r.Offers != 1 || r.HitsSent == 0 {
		t.Errorf("not answered out of band: querier %+v, responder %+v", q, r)
	}
}
