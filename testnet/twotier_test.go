package testnet

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"gnutella/protocol"
	"gnutella/routing"
	"gnutella/servent"
	"gnutella/testnet/await"
)

var animals = []string{"emu", "wallaby", "platypus", "koala", "wombat", "dingo", "kookaburra", "numbat", "quoll", "bilby"}

// twoTierFiles gives every leaf one shared file named from a small
// vocabulary; leaf `holder` also shares the file the test looks for.
func twoTierFiles(t *testing.T, ups, n, holder int) func(i int, c *servent.NodeConfig) {
	dirs := make([]string, n)
	for i := ups; i < n; i++ {
		dirs[i] = t.TempDir()
		name := fmt.Sprintf("%s_%s_%d.txt", animals[i%len(animals)], animals[(i/len(animals))%len(animals)], i)
		if err := os.WriteFile(filepath.Join(dirs[i], name), []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
		if i == holder {
			if err := os.WriteFile(filepath.Join(dirs[i], "zebra quokka interop.txt"), []byte("the file"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return func(i int, c *servent.NodeConfig) {
		if dirs[i] != "" {
			c.ShareDirs = []string{dirs[i]}
		}
	}
}

// queryArrivals counts, per GUID and servent, the query messages handed
// to the router.
type queryArrivals struct {
	mu sync.Mutex
	n  map[protocol.GUID]map[int]int
}

func (a *queryArrivals) hook(i int) func(*servent.Link, protocol.Header, bool) {
	return func(l *servent.Link, h protocol.Header, dup bool) {
		if h.Type != protocol.TypeQuery {
			return
		}
		a.mu.Lock()
		if a.n[h.ID] == nil {
			a.n[h.ID] = map[int]int{}
		}
		a.n[h.ID][i]++
		a.mu.Unlock()
	}
}

func (a *queryArrivals) of(id protocol.GUID) map[int]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[int]int{}
	for k, v := range a.n[id] {
		out[k] = v
	}
	return out
}

// waitTables waits until every ultrapeer holds the QRP table of each of
// its leaves.
func waitTables(t *testing.T, n *Network) {
	t.Helper()
	await.Until(t, "the leaves' QRP tables on their ultrapeers", func() bool {
		missing := 0
		for _, s := range n.Servents {
			for _, l := range s.Links() {
				if l.Kind == servent.LinkLeaf && l.PeerTable() == nil {
					missing++
				}
			}
		}
		return missing == 0
	})
}

// seekerAndHolder picks two leaves with no ultrapeer in common.
func seekerAndHolder(t *testing.T, topo TwoTier, n int, seed uint64) (int, int) {
	probe := &Network{Servents: make([]*servent.Servent, n)}
	probe.Edges = topo.Edges(n, newRand(seed))
	nb := probe.Neighbours()
	for seeker := topo.Ultrapeers; seeker < n; seeker++ {
	next:
		for holder := n - 1; holder > seeker; holder-- {
			for _, a := range nb[seeker] {
				for _, b := range nb[holder] {
					if a == b {
						continue next
					}
				}
			}
			return seeker, holder
		}
	}
	t.Fatal("every pair of leaves shares an ultrapeer")
	return 0, 0
}

// On a two-tier network (5 ultrapeers, 100 leaves, every leaf on 2
// ultrapeers) a leaf finds a file held by a leaf of other
// ultrapeers; the query reaches only the leaves whose QRP table matches it.
// The same query flooded over the same graph with every servent an
// ultrapeer is reported beside it.
func TestTwoTierQueryReachesOnlyMatchingLeaves(t *testing.T) {
	const ups, leaves = 5, 100
	const n = ups + leaves
	const seed = 21
	// Two ultrapeers per leaf, so that two leaves can have none in common
	// (with 3 of 5, any two leaves share one).
	topo := TwoTier{Ultrapeers: ups, UltrapeerDegree: 3, LeafUltrapeers: 2}
	seeker, holder := seekerAndHolder(t, topo, n, seed)
	files := twoTierFiles(t, ups, n, holder)

	run := func(flat bool) (map[int]int, *Network, *routing.Search) {
		arrivals := &queryArrivals{n: map[protocol.GUID]map[int]int{}}
		net, err := Start(ctxFor(t, 120*time.Second), Options{
			N: n, Topology: topo, Seed: seed,
			Configure: func(i int, c *servent.NodeConfig) {
				files(i, c)
				c.Trace = arrivals.hook(i)
				c.MaxTTL = 4
				if flat {
					c.Mode = servent.ModeUltrapeer // plain flooding: no leaves, no QRP
					c.MaxLinks = n
				}
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = net.Stop() })
		for i := ups; i < n; i++ {
			if err := net.Nodes[i].Library.Rescan(); err != nil {
				t.Fatal(err)
			}
		}
		if !flat {
			waitTables(t, net)
		}
		q := protocol.NewQuery("zebra quokka", protocol.QueryFlagMark|protocol.QueryFlagGGEPH)
		// The search ends at its first hit; the long timeout is for -race
		// on a loaded machine, where the flat network of 105 ultrapeers,
		// still handshaking and exchanging tables, once took over 10 s
		// to carry the hit back.
		s := net.Servents[seeker].Search(context.Background(), q, routing.Flood{TTL: 4}, 1, 90*time.Second)
		if err := net.WaitQuiet(ctxFor(t, 20*time.Second)); err != nil {
			t.Fatal(err)
		}
		return arrivals.of(s.ID), net, s
	}

	got, net, s := run(false)
	if s.Len() != 1 || s.Hits()[0].ServentID != net.Servents[holder].ID() {
		t.Fatalf("leaf %d found %d hits, want the file of leaf %d", seeker, s.Len(), holder)
	}
	total, leafDeliveries, matchingLeaves := 0, 0, 0
	for i, c := range got {
		total += c
		if i >= ups && i != seeker {
			leafDeliveries += c
		}
	}
	for i := ups; i < n; i++ {
		switch {
		case i == holder:
			if got[i] == 0 {
				t.Errorf("the holder (leaf %d) never got the query", i)
			}
			matchingLeaves++
		case i != seeker && got[i] != 0:
			t.Errorf("leaf %d, whose table does not match, received the query %d times", i, got[i])
		}
	}
	var delivered uint64
	for _, x := range net.Servents[:ups] {
		d, _ := x.QRPStats()
		delivered += d
	}

	flat, _, fs := run(true)
	flatTotal := 0
	for _, c := range flat {
		flatTotal += c
	}
	if fs.Len() != 1 {
		t.Errorf("flooding found %d hits; the holder (%d) received the query %d times", fs.Len(), holder, flat[holder])
	}
	t.Logf("two-tier with QRP: %d query messages in all, %d to leaves (%d leaf with a match, %d without: 0 each); "+
		"plain flooding over the same graph (TTL 4): %d query messages", total, leafDeliveries, matchingLeaves,
		leaves-1-matchingLeaves, flatTotal)
	if total >= flatTotal {
		t.Errorf("QRP cost %d messages, flooding %d", total, flatTotal)
	}
	// the ultrapeers' own count of queries sent to leaves agrees with what
	// the leaves saw
	if int(delivered) != leafDeliveries {
		t.Errorf("ultrapeers counted %d deliveries to leaves, the leaves saw %d", delivered, leafDeliveries)
	}
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }
