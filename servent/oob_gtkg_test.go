package servent

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"gnutella/protocol"
	"gnutella/routing"
	"gnutella/testnet/await"
	"gnutella/testnet/gtkg"
	"gnutella/ultrapeer"
)

// queryLog records the queries a sharing servent answered: their flags and
// the address their MUID names.
type queryLog struct {
	mu   sync.Mutex
	seen []string
}

func (l *queryLog) add(q *protocol.Query, h protocol.Header) {
	l.mu.Lock()
	l.seen = append(l.seen, fmt.Sprintf("flags=%v oob=%v muid=%s names=%v hops=%d",
		q.Flags, q.Flags.Has(protocol.QueryFlagOOB), h.ID, h.ID.OOBAddrPort(), h.Hops))
	l.mu.Unlock()
}

func (l *queryLog) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.seen...)
}

// sharing is a config answering "word" with n results and recording the
// queries it answered.
func sharing(word string, n int, mode Mode, log *queryLog) Config {
	c := testConfig()
	c.Mode = mode
	results := make([]protocol.Result, n)
	for i := range results {
		results[i] = protocol.Result{Index: uint32(i + 1), Size: 4096, Name: []byte(fmt.Sprintf("%s %d.bin", word, i))}
	}
	c.Library = StaticLibrary{
		Results: func(q *protocol.Query, h protocol.Header) []protocol.Result { log.add(q, h); return results },
		Table:   ultrapeer.BuildTable(16, [][]string{{word}}, nil),
	}
	return c
}

// What gtk-gnutella 1.2.3 does with out-of-band hits on loopback, where
// every test runs. It neither asks for nor honours OOB with a 127.0.0.1
// address: its search MUIDs name its address only when that address is
// routable (search.c search_new_muid: host_addr_is_routable), and it clears
// the OOB flag of a query whose MUID names an address that is not
// (search.c search_request_preprocess: host_is_valid), and 127.0.0.0/8 is
// not routable for it (lib/host_addr.c ipv4_addr_is_routable). So:
//   - gtk-gnutella's own search reaches our sharing leaf (through our
//     ultrapeer, hops 1) without the OOB flag, and our hits go back by TCP;
//   - our leaf's OOB search relayed by gtk-gnutella (an ultrapeer) reaches
//     our other servent with the flag cleared, and its hits come back by
//     TCP. (A gtk-gnutella ultrapeer never relays its own leaf's OOB flag,
//     routable or not: it OOB-proxies the query or strips the flag, dq.c
//     dq_launch_net; testnet/oob_gtkg_netns_test.go shows OOB with
//     gtk-gnutella both ways on routable addresses.)
//
// Both halves hold the counters at zero; if a gtk-gnutella ever does OOB on
// loopback, this test fails and says so.
func TestGtkOOBOnLoopback(t *testing.T) {
	g := gtkg.Start(t, t.TempDir(), "up_connections = 0\nrecv_solicited_udp = TRUE")

	// gtk-gnutella searches; our leaf under our ultrapeer shares.
	var fromGtk queryLog
	up := startServent(t, testConfig())
	leaf := startServent(t, sharing("oobgtkfirst", 3, ModeLeaf, &fromGtk))
	if _, err := leaf.Connect(ctxT(t), up.Addr()); err != nil {
		t.Fatal(err)
	}
	g.Shell(t, "node add "+up.Addr().String())
	await.Until(t, "gtk-gnutella linked and the leaf's table in", func() bool {
		table := false
		for _, l := range up.Links() {
			if l.PeerID == leaf.ID() && l.PeerTable() != nil {
				table = true
			}
		}
		return table && up.LinkCount() == 2
	})
	var out string
	await.Until(t, "gtk-gnutella to list our hits", func() bool {
		g.Shell(t, "search close")
		g.Shell(t, `search add "oobgtkfirst"`)
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if out = g.Shell(t, "search results"); strings.Count(out, "oobgtkfirst") >= 3 {
				return true
			}
			time.Sleep(200 * time.Millisecond) // polling gtk-gnutella's shell
		}
		return false
	})
	for _, line := range fromGtk.lines() {
		t.Logf("gtk-gnutella's query at our leaf: %s", line)
		if strings.Contains(line, "oob=true") {
			t.Errorf("gtk-gnutella asked for OOB hits on loopback: update this test and docs/protocol.md §11.6")
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "oobgtkfirst") {
			t.Logf("gtk-gnutella's result: %s", strings.TrimSpace(line))
		}
	}
	if st := leaf.UDPStats().OOB; st.Offers != 0 {
		t.Errorf("our leaf offered OOB hits: %+v", st)
	}

	// Our leaf searches OOB through gtk-gnutella; another servent of ours,
	// an ultrapeer linked to gtk-gnutella, shares.
	var viaGtk queryLog
	qc := testConfig()
	qc.Mode = ModeLeaf
	querier := startServent(t, qc)
	responder := startServent(t, sharing("oobgtksecond", 2, ModeUltrapeer, &viaGtk))
	for _, s := range []*Servent{querier, responder} {
		if _, err := s.Connect(ctxT(t), g.Addr); err != nil {
			t.Fatal(err)
		}
	}
	var search *routing.Search
	await.Until(t, "our leaf's search to come back through gtk-gnutella", func() bool {
		search = querier.Search(ctxT(t), protocol.NewQuery("oobgtksecond", 0), routing.Flood{TTL: 3}, 2, 5*time.Second)
		return search.Len() == 2
	})
	if search.ID.OOBAddrPort() != querier.Addr() {
		t.Errorf("our search's MUID names %v, want %v", search.ID.OOBAddrPort(), querier.Addr())
	}
	for _, line := range viaGtk.lines() {
		t.Logf("our OOB query as gtk-gnutella relayed it: %s", line)
		if strings.Contains(line, "oob=true") {
			t.Errorf("gtk-gnutella relayed the OOB flag of a 127.0.0.1 MUID: update this test and docs/protocol.md §11.6")
		}
	}
	q, r := querier.UDPStats().OOB, responder.UDPStats().OOB
	t.Logf("querier OOB %+v; responder OOB %+v", q, r)
	if q.HitsRead != 0 || r.Offers != 0 {
		t.Errorf("OOB on loopback with gtk-gnutella in the path: querier %+v, responder %+v", q, r)
	}
}
