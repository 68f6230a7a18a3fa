package servent

import (
	"context"
	"gnutella/testnet/await"
	"sync"
	"testing"
	"time"

	"gnutella/protocol"
	"gnutella/routing"
)

// An ultrapeer runs its leaf's query as a dynamic query, one ultrapeer link
// after another. For rare content it goes on to every link; a leaf that
// guides the query (flag 0x1000, Query Status BEAR/11-12) stops it once its
// own search is over.
func TestLeafQueryIsADynamicQueryTheLeafCanStop(t *testing.T) {
	for _, tc := range []struct {
		name   string
		guided bool
	}{{"unguided", false}, {"guided", true}} {
		t.Run(tc.name, func(t *testing.T) {
			cu := testConfig()
			cu.DQPerHop, cu.DQProbeWait = 100*time.Millisecond, 100*time.Millisecond
			up := startServent(t, cu)
			var mu sync.Mutex
			got := map[protocol.GUID]int{}
			for i := 0; i < 6; i++ {
				c := testConfig()
				c.Trace = func(l *Link, h protocol.Header, dup bool) {
					if h.Type == protocol.TypeQuery {
						mu.Lock()
						got[h.ID]++
						mu.Unlock()
					}
				}
				other := startServent(t, c)
				if _, err := other.Connect(ctxT(t), up.Addr()); err != nil {
					t.Fatal(err)
				}
			}
			cl := testConfig()
			cl.Mode = ModeLeaf
			leaf := startServent(t, cl)
			if _, err := leaf.Connect(ctxT(t), up.Addr()); err != nil {
				t.Fatal(err)
			}
			if err := up.WaitLinks(ctxT(t), 7); err != nil {
				t.Fatal(err)
			}
			flags := protocol.QueryFlagMark
			if tc.guided {
				flags |= protocol.QueryFlagLeafGuided
			}
			// the leaf's own search ends quickly; a guiding leaf then says stop
			s := leaf.Search(context.Background(), protocol.NewQuery("nothing matches this", flags), routing.Flood{TTL: 3}, 0, 50*time.Millisecond)
			reachedSoFar := func() int {
				mu.Lock()
				defer mu.Unlock()
				return got[s.ID]
			}
			// The dynamic query is not running before the leaf's query
			// reaches the ultrapeer: wait for its first probe to arrive
			// somewhere, then for nothing to be running for the GUID.
			await.Until(t, "the first probe of the leaf query", func() bool { return reachedSoFar() > 0 })
			await.Until(t, "the leaf query to end", func() bool { return !up.dq.Running(s.ID) })
			reached := reachedSoFar()
			if tc.guided && reached >= 6 {
				t.Errorf("guided: the query reached %d of 6 ultrapeers; the leaf's stop should have ended it early", reached)
			}
			if !tc.guided && reached != 6 {
				t.Errorf("unguided: the query reached %d of 6 ultrapeers, want all 6 for rare content", reached)
			}
			t.Logf("%s: reached %d of 6 ultrapeers", tc.name, reached)
		})
	}
}
