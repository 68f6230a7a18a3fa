package testnet

import (
	"sync"
	"testing"
	"time"

	"gnutella/protocol"
	"gnutella/servent"
)

// The same servents over the in-memory network: a 300-servent random graph
// floods a query to exactly the servents within its TTL, each once.
func TestMemoryNetworkFloodsWithinTTL(t *testing.T) {
	const N = 300
	var mu sync.Mutex
	handled := make([]int, N)
	id := protocol.NewGUID()
	n, err := Start(ctxFor(t, 120*time.Second), Options{
		N: N, Transport: Memory, Topology: Random{MeanDegree: 4}, Seed: 11,
		Configure: func(i int, c *servent.NodeConfig) {
			c.MaxTTL = 7
			c.UltrapeerQRP = false // flat network: flood to the last hop
			c.Trace = func(l *servent.Link, h protocol.Header, dup bool) {
				if h.ID == id && !dup {
					mu.Lock()
					handled[i]++
					mu.Unlock()
				}
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Stop() })
	const ttl = 4
	n.Servents[0].OriginateQuery(id, protocol.NewQuery("zebra", protocol.QueryFlagMark), ttl, nil)
	if err := n.WaitQuiet(ctxFor(t, 90*time.Second)); err != nil { // a guard against a hang: the whole suite under -race on 2 cores can take 60 s here
		t.Fatal(err)
	}
	dist := n.Distances(0)
	mu.Lock()
	defer mu.Unlock()
	reached := 0
	for i := 1; i < N; i++ {
		want := 0
		if dist[i] <= ttl {
			want = 1
			reached++
		}
		if handled[i] != want {
			t.Errorf("servent %d at distance %d handled the query %d times, want %d", i, dist[i], handled[i], want)
		}
	}
	if reached < 50 {
		t.Errorf("only %d servents within TTL %d: topology too sparse for the test", reached, ttl)
	}
	t.Logf("reached %d of %d servents within TTL %d", reached, N-1, ttl)
}
