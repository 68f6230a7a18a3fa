package servent

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"gnutella/protocol"
	"gnutella/routing"
	"gnutella/testnet/await"
)

// oobProxyNet is an ultrapeer of ours with two leaves: a querier without
// UDP (its queries cannot ask for out-of-band hits) and a responder sharing
// 12 zebra results, UDP on or off. It records what the responder's
// Library saw and the QueryHits the querier got over TCP.
type oobProxyNet struct {
	up, querier, responder *Servent

	mu      sync.Mutex
	seenID  protocol.GUID // the MUID the responder saw
	seenOOB bool
	hitIDs  []protocol.GUID // MUIDs of the QueryHits the querier got
}

func newOOBProxyNet(t *testing.T, responderUDP bool) *oobProxyNet {
	n := &oobProxyNet{}
	qc := testConfig()
	qc.Mode = ModeLeaf
	qc.UDP = false
	qc.Trace = func(_ *Link, h protocol.Header, dup bool) {
		if h.Type == protocol.TypeQueryHit && !dup {
			n.mu.Lock()
			n.hitIDs = append(n.hitIDs, h.ID)
			n.mu.Unlock()
		}
	}
	rc := zebraLeaf(12)
	rc.UDP = responderUDP
	rc.Library = StaticLibrary{
		Results: func(q *protocol.Query, h protocol.Header) []protocol.Result {
			n.mu.Lock()
			n.seenID, n.seenOOB = h.ID, q.Flags.Has(protocol.QueryFlagOOB)
			n.mu.Unlock()
			return zebraResults(12)
		},
		Table: rc.Library.QRPTable(),
	}
	n.up, n.querier, n.responder = startServent(t, testConfig()), startServent(t, qc), startServent(t, rc)
	for _, s := range []*Servent{n.querier, n.responder} {
		if _, err := s.Connect(ctxT(t), n.up.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	awaitPeerTable(t, n.up, n.responder.ID())
	return n
}

// search runs the querier's search q (for zebra) until it holds 12
// results.
func (n *oobProxyNet) search(t *testing.T, q *protocol.Query) *routing.Search {
	t.Helper()
	search, done := n.querier.StartSearch(q, routing.Flood{TTL: 3}, 12, time.Minute)
	await.Recv(t, "the search to end with 12 results", done)
	if got := search.Len(); got != 12 {
		t.Logf("ultrapeer %+v", n.up.UDPStats())
		t.Logf("responder %+v", n.responder.UDPStats())
		t.Fatalf("%d results, want 12", got)
	}
	return search
}

// checkHitsCarry fails unless every QueryHit the querier got carries id,
// and there were want of them.
func (n *oobProxyNet) checkHitsCarry(t *testing.T, id protocol.GUID, want int) {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, got := range n.hitIDs {
		if got != id {
			t.Errorf("the querier got a QueryHit for %s, want its own MUID %s", got, id)
		}
	}
	if len(n.hitIDs) != want {
		t.Errorf("the querier got %d QueryHits, want %d", len(n.hitIDs), want)
	}
}

// A leaf without UDP under our ultrapeer: its query goes on with the OOB
// flag and a MUID naming the ultrapeer (the leaf's other bytes kept), the
// responder's hits come to the ultrapeer by UDP (LIME/12, LIME/11, 3
// QueryHits of at most 5 records) and reach the leaf over TCP with the
// leaf's own MUID.
func TestOOBProxyLeafWithoutUDPGetsItsHitsByWayOfTheUltrapeer(t *testing.T) {
	n := newOOBProxyNet(t, true)
	search := n.search(t, protocol.NewQuery("zebra", 0))

	n.mu.Lock()
	seenID, seenOOB := n.seenID, n.seenOOB
	n.mu.Unlock()
	if !seenOOB || seenID.OOBAddrPort() != n.up.Addr() {
		t.Errorf("the responder saw OOB=%v with return address %s, want OOB to the ultrapeer %s", seenOOB, seenID.OOBAddrPort(), n.up.Addr())
	}
	if seenID == search.ID || !bytes.Equal(seenID[4:13], search.ID[4:13]) || seenID[15] != search.ID[15] {
		t.Errorf("mangled MUID %x from the leaf's %x: want the leaf's bytes with the address replaced", seenID[:], search.ID[:])
	}
	n.checkHitsCarry(t, search.ID, 3)

	up, r := n.up.UDPStats().OOB, n.responder.UDPStats().OOB
	t.Logf("ultrapeer %+v", up)
	if up.Proxied != 1 || up.Indications != 1 || up.AcksSent != 1 || up.HitsRead != 3 ||
		up.ProxyHitsUDP != 3 || up.ProxyHitsTCP != 0 || up.ProxyResults != 12 || up.ProxyLost != 0 || up.HitsDropped != 0 {
		t.Errorf("ultrapeer OOB counters %+v", up)
	}
	if r.Offers != 1 || r.AcksRead != 1 || r.HitsSent != 3 || r.ViaTCP != 0 {
		t.Errorf("responder OOB counters %+v", r)
	}
	if q := n.querier.UDPStats(); q.Received != 0 {
		t.Errorf("the querier without UDP received %d datagrams", q.Received)
	}
}

// A responder without UDP answers the proxied query over TCP under the
// mangled MUID: the ultrapeer relays those hits to the leaf with the
// leaf's MUID as well.
func TestOOBProxyHitsOverTCPReachTheLeafWithItsMUID(t *testing.T) {
	n := newOOBProxyNet(t, false)
	search := n.search(t, protocol.NewQuery("zebra", 0))
	n.checkHitsCarry(t, search.ID, 2) // 12 results, 10 a hit over TCP
	up := n.up.UDPStats().OOB
	if up.Proxied != 1 || up.ProxyHitsTCP != 2 || up.ProxyHitsUDP != 0 || up.ProxyResults != 12 || up.Indications != 0 {
		t.Errorf("ultrapeer OOB counters %+v", up)
	}
}

// A leaf that sent LIME/13 (OOB Proxy Veto), or whose query carries GGEP
// "NP", has its query go on as it sent it: the responder sees the leaf's
// MUID without the OOB flag, and the hits come back over TCP.
func TestOOBProxyOptOutByTheLeaf(t *testing.T) {
	for _, how := range []string{"LIME/13", "NP"} {
		t.Run(how, func(t *testing.T) {
			n := newOOBProxyNet(t, true)
			q := protocol.NewQuery("zebra", 0)
			if how == "NP" {
				q.Extensions = append(q.Extensions, protocol.GGEPItem(protocol.GGEP{{ID: protocol.GGEPNoOOBProxy}}))
			} else {
				link := n.querier.Links()[0]
				if err := link.sendMessage(protocol.Header{ID: protocol.NewGUID(), TTL: 1}, protocol.NewOOBProxyVeto(255)); err != nil {
					t.Fatal(err)
				}
				await.Until(t, "the veto taken", func() bool {
					for _, l := range n.up.Links() {
						if l.PeerID == n.querier.ID() {
							return l.noOOBProxy.Load()
						}
					}
					return false
				})
			}
			search := n.search(t, q)
			n.mu.Lock()
			seenID, seenOOB := n.seenID, n.seenOOB
			n.mu.Unlock()
			if seenOOB || seenID != search.ID {
				t.Errorf("the responder saw OOB=%v MUID %s, want the leaf's %s without OOB", seenOOB, seenID, search.ID)
			}
			n.checkHitsCarry(t, search.ID, 2)
			if up := n.up.UDPStats().OOB; up.Proxied != 0 || up.ProxyResults != 0 {
				t.Errorf("ultrapeer OOB counters %+v", up)
			}
		})
	}
}

// The table of proxied queries is bounded: past oobProxyMax a leaf's
// query goes on unproxied (counted), a second query with the same MUID
// is not proxied again (its mangled MUID is taken), the mangled MUID is
// a duplicate for the router, and entries unused for oobProxyLife are
// forgotten, which makes room again.
func TestOOBProxyTableIsBoundedAndExpires(t *testing.T) {
	var clock sync.Mutex
	var skew time.Duration
	uc := testConfig()
	up, err := New(uc)
	if err != nil {
		t.Fatal(err)
	}
	up.now = func() time.Time { clock.Lock(); defer clock.Unlock(); return time.Now().Add(skew) }
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = up.Stop() })
	lc := testConfig()
	lc.Mode = ModeLeaf
	lc.UDP = false
	leaf := startServent(t, lc)
	if _, err := leaf.Connect(ctxT(t), up.Addr()); err != nil {
		t.Fatal(err)
	}
	if err := up.WaitLinks(ctxT(t), 1); err != nil {
		t.Fatal(err)
	}
	l := up.Links()[0]
	q := protocol.NewQuery("zebra", 0)
	proxy := func(id protocol.GUID) (protocol.GUID, bool) {
		ph, _, _, ok := up.oobProxyQuery(l, protocol.Header{ID: id, Type: protocol.TypeQuery, TTL: 3, Hops: 1}, q)
		return ph.ID, ok
	}
	first := protocol.NewGUID()
	mangled, ok := proxy(first)
	if !ok || mangled.OOBAddrPort() != up.Addr() {
		t.Fatalf("not proxied (%v), or mangled MUID names %s", ok, mangled.OOBAddrPort())
	}
	if _, ok := proxy(first); ok {
		t.Error("the same leaf MUID proxied twice")
	}
	if dup, _ := up.router.dups.Check(mangled, protocol.TypeQuery, 2); !dup {
		t.Error("the mangled MUID is no duplicate for the router")
	}
	for i := 1; i < oobProxyMax; i++ {
		if _, ok := proxy(protocol.NewGUID()); !ok {
			t.Fatalf("query %d not proxied", i)
		}
	}
	if _, ok := proxy(protocol.NewGUID()); ok {
		t.Fatalf("query %d proxied past the bound", oobProxyMax+1)
	}
	if st := up.UDPStats().OOB; st.Proxied != oobProxyMax || st.ProxyRefused != 2 {
		t.Fatalf("counters %+v", st)
	}
	clock.Lock()
	skew = oobProxyLife
	clock.Unlock()
	if _, ok := proxy(protocol.NewGUID()); !ok {
		t.Fatal("not proxied once the table expired")
	}
	if st := up.UDPStats().OOB; st.ProxyExpired != oobProxyMax || st.Proxied != oobProxyMax+1 {
		t.Errorf("counters %+v", st)
	}
	// An offer for an expired proxied query is not claimed.
	if _, ours := up.oobWanted(mangled, up.now()); ours {
		t.Error("an expired proxied query still claims offers")
	}
}
