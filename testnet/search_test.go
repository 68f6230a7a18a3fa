package testnet

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"gnutella/protocol"
	"gnutella/routing"
	"gnutella/servent"
)

// msgCounter counts, network-wide, the query messages each GUID caused.
type msgCounter struct {
	mu sync.Mutex
	n  map[protocol.GUID]int
}

func (c *msgCounter) hook() func(*servent.Link, protocol.Header, bool) {
	return func(l *servent.Link, h protocol.Header, dup bool) {
		if h.Type != protocol.TypeQuery {
			return
		}
		c.mu.Lock()
		c.n[h.ID]++
		c.mu.Unlock()
	}
}

func (c *msgCounter) total(ids []protocol.GUID) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := 0
	for _, id := range ids {
		t += c.n[id]
	}
	return t
}

// holdersAnswer makes the servents in holders answer queries for "zebra".
func holdersAnswer(holders map[int]bool) func(i int, c *servent.NodeConfig) {
	return func(i int, c *servent.NodeConfig) {
		if !holders[i] {
			return
		}
		c.Library = servent.StaticLibrary{Results: func(q *protocol.Query, h protocol.Header) []protocol.Result {
			if s, _ := q.SearchString(); s != "zebra quokka" {
				return nil
			}
			return []protocol.Result{{Index: uint32(i), Size: 100, Name: []byte("zebra quokka.txt")}}
		}}
	}
}

func startSearchNet(t *testing.T, holders map[int]bool, counter *msgCounter) *Network {
	t.Helper()
	n, err := Start(ctxFor(t, 60*time.Second), Options{
		N: 20, Topology: Random{MeanDegree: 3}, Seed: 5,
		Configure: func(i int, c *servent.NodeConfig) {
			c.MaxTTL = 7
			c.UltrapeerQRP = false // flat network: flood to the last hop
			c.Trace = counter.hook()
			holdersAnswer(holders)(i, c)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Stop() })
	return n
}

func strategies(seed uint64) []routing.Strategy {
	return []routing.Strategy{
		routing.Flood{TTL: 4},
		routing.Ring{Start: 1, Step: 1, Max: 4, Wait: 150 * time.Millisecond},
		routing.Walk{K: 4, Budget: 64, Check: true, Rand: rand.New(rand.NewPCG(seed, 1))},
		routing.Gossip{P: 0.8, TTL: 4, Rand: rand.New(rand.NewPCG(seed, 2))},
	}
}

// Every strategy finds a file held two hops away, and the hits come back.
func TestEveryStrategyFindsAFileTwoHopsAway(t *testing.T) {
	counter := &msgCounter{n: map[protocol.GUID]int{}}
	// pick the holder after building the graph: a servent at distance 2 from 0
	probe, err := Start(ctxFor(t, 30*time.Second), Options{N: 20, Topology: Random{MeanDegree: 3}, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	dist := probe.Distances(0)
	probe.Stop()
	holder := -1
	for i, d := range dist {
		if d == 2 {
			holder = i
			break
		}
	}
	if holder < 0 {
		t.Fatal("no servent at distance 2")
	}
	n := startSearchNet(t, map[int]bool{holder: true}, counter)
	for _, st := range strategies(9) {
		q := protocol.NewQuery("zebra quokka", protocol.QueryFlagMark)
		s := n.Servents[0].Search(context.Background(), q, st, 1, 10*time.Second)
		if err := n.WaitQuiet(ctxFor(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
		hits := s.Hits()
		if len(hits) != 1 || hits[0].ServentID != n.Servents[holder].ID() {
			t.Errorf("%s: hits %+v, want one from servent %d", st.Name(), hits, holder)
			continue
		}
		t.Logf("%-28s found it in %v, %d query messages network-wide", st.Name(),
			s.Stats().FirstHit.Round(time.Millisecond), counter.total(s.GUIDs()))
	}
}

// A URN search finds every copy; a nonsense query finds nothing.
func TestURNSearchFindsEveryCopyAndNonsenseNothing(t *testing.T) {
	urn := protocol.SHA1{1, 2, 3}
	holders := map[int]bool{3: true, 7: true, 11: true, 15: true}
	n, err := Start(ctxFor(t, 60*time.Second), Options{
		N: 20, Topology: Random{MeanDegree: 3}, Seed: 5,
		Configure: func(i int, c *servent.NodeConfig) {
			c.MaxTTL = 7
			if holders[i] {
				c.Library = servent.StaticLibrary{Results: func(q *protocol.Query, h protocol.Header) []protocol.Result {
					for _, u := range q.URNs() {
						if u == urn {
							return []protocol.Result{{Index: 1, Size: 9, Name: []byte("copy.bin"),
								Extensions: protocol.ResultExtensions(urn, false, nil)}}
						}
					}
					return nil
				}}
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Stop() })
	s := n.Servents[0].Search(context.Background(), protocol.NewQuery("", protocol.QueryFlagMark, urn),
		routing.Flood{TTL: 7}, len(holders), 10*time.Second)
	if s.Len() != len(holders) {
		t.Fatalf("URN search found %d copies, want %d", s.Len(), len(holders))
	}
	for _, h := range s.Hits() {
		if h.URN != urn {
			t.Errorf("hit without the URN: %+v", h)
		}
	}
	none := n.Servents[0].Search(context.Background(), protocol.NewQuery("xylophone nonsense", protocol.QueryFlagMark),
		routing.Flood{TTL: 7}, 0, 500*time.Millisecond)
	if none.Len() != 0 {
		t.Fatalf("nonsense query found %d", none.Len())
	}
}

// The literature's ordering on one network: for a popular file (held by a
// quarter of the servents) the expanding ring and checking random walkers
// cost fewer messages than a TTL-4 flood, and all three find it.
func TestStrategyCostsBehaveAsTheLiteratureSays(t *testing.T) {
	counter := &msgCounter{n: map[protocol.GUID]int{}}
	holders := map[int]bool{}
	for i := 1; i < 20; i += 4 {
		holders[i] = true
	}
	n := startSearchNet(t, holders, counter)
	cost := map[string]int{}
	// Walks are random: compare totals over several searches.
	const trials = 6
	for trial := 0; trial < trials; trial++ {
		for _, st := range []routing.Strategy{
			routing.Flood{TTL: 4},
			routing.Ring{Start: 1, Step: 1, Max: 4, Wait: 150 * time.Millisecond},
			routing.Walk{K: 2, Budget: 64, Check: true, Rand: rand.New(rand.NewPCG(uint64(trial), 3))},
		} {
			s := n.Servents[0].Search(context.Background(), protocol.NewQuery("zebra quokka", protocol.QueryFlagMark), st, 2, 5*time.Second)
			if err := n.WaitQuiet(ctxFor(t, 10*time.Second)); err != nil {
				t.Fatal(err)
			}
			if s.Len() == 0 {
				t.Errorf("%s found nothing", st.Name())
			}
			cost[st.Name()[:4]] += counter.total(s.GUIDs())
		}
	}
	for _, k := range []string{"floo", "ring", "walk"} {
		t.Logf("%s: %d query messages over %d searches", k, cost[k], trials)
	}
	if cost["ring"] >= cost["floo"] {
		t.Errorf("ring cost %d, flood %d: ring should be cheaper for a popular file", cost["ring"], cost["floo"])
	}
	if cost["walk"] >= cost["floo"] {
		t.Errorf("walk cost %d, flood %d: walkers should be cheaper", cost["walk"], cost["floo"])
	}
}
