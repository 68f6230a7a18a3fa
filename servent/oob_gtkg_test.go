package servent

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"gnutella/protocol"
	"gnutella/testnet/await"
	"gnutella/testnet/gtkg"
	"gnutella/ultrapeer"
)

// gtk-gnutella searching gets our hits out of band: its query (flag
// 0x0400, its 127.0.0.1:port in the MUID) reaches our sharing leaf through
// our ultrapeer at hops 1; the leaf sends gtk-gnutella LIME/12, gtk-gnutella
// acks with LIME/11 and takes the hits by UDP. (The other way round cannot
// be shown on loopback: gtk-gnutella clears the OOB flag of a query whose
// MUID names an address that is not routable, and 127.0.0.0/8 is not:
// search.c search_request_preprocess, host_is_valid.)
func TestGtkGetsOurHitsOutOfBand(t *testing.T) {
	g := gtkg.Start(t, t.TempDir(), "up_connections = 0\nquery_debug = 2\nudp_debug = 2\nsearch_debug = 2\nvmsg_debug = 2")
	up := startServent(t, testConfig())
	rc := testConfig()
	rc.Mode = ModeLeaf
	results := make([]protocol.Result, 3)
	for i := range results {
		results[i] = protocol.Result{Index: uint32(i + 1), Size: 4096, Name: []byte(fmt.Sprintf("oobinterop %d.bin", i))}
	}
	rc.Library = StaticLibrary{
		Results: func(q *protocol.Query, h protocol.Header) []protocol.Result { return results },
		Table:   ultrapeer.BuildTable(16, [][]string{{"oobinterop"}}, nil),
	}
	leaf := startServent(t, rc)
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
		g.Shell(t, `search add "oobinterop"`)
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if out = g.Shell(t, "search results"); strings.Count(out, "oobinterop") >= 3 {
				return true
			}
			time.Sleep(200 * time.Millisecond) // polling gtk-gnutella's shell
		}
		return false
	})
	st := leaf.UDPStats()
	t.Logf("our leaf's OOB counters: %+v", st.OOB)
	if st.OOB.Offers < 1 || st.OOB.AcksRead < 1 || st.OOB.HitsSent < 1 {
		t.Errorf("the hits did not go out of band: %+v", st.OOB)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "oobinterop") {
			t.Logf("gtk-gnutella's result: %s", strings.TrimSpace(line))
		}
	}
	for _, line := range strings.Split(g.Log(), "\n") {
		if strings.Contains(line, "OOB") || strings.Contains(line, "LIME/1") {
			t.Logf("gtk-gnutella's log: %s", line)
		}
	}
}
