package testnet

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"gnutella/protocol"
	"gnutella/routing"
	"gnutella/servent"
	"gnutella/ultrapeer"
)

// The demonstration on a small TCP testnet on 127.0.0.1: six
// ultrapeers sparsely linked, one leaf on each; an ultrapeer searches with
// GUESS for a file that only a leaf two ultrapeer hops away holds. The
// GUESS query goes to the origin's own links at TTL 1, which cannot reach
// that leaf: the hit can only come by UDP (key request, query, the other
// ultrapeer's QRP hand-off to its leaf, the leaf's hit relayed by
// datagram).
func TestGUESSFindsLeafFileOfUnlinkedUltrapeerOverTCP(t *testing.T) {
	const ups, n = 6, 12
	topo := TwoTier{Ultrapeers: ups, UltrapeerDegree: 2, LeafUltrapeers: 1}
	probe := &Network{Servents: make([]*servent.Servent, n), Edges: topo.Edges(n, newRand(5))}
	nb := probe.Neighbours()
	origin, holder := -1, -1
search:
	for o := range ups {
		for h := ups; h < n; h++ {
			if len(nb[h]) == 1 && nb[h][0] != o && !slices.Contains(nb[o], nb[h][0]) {
				origin, holder = o, h
				break search
			}
		}
	}
	if holder < 0 {
		t.Fatal("no leaf two ultrapeer hops from an ultrapeer")
	}
	want := []byte("zebra quokka")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	net, err := Start(ctx, Options{N: n, Transport: TCP, Topology: topo, Seed: 5,
		Configure: func(i int, c *servent.NodeConfig) {
			if i != holder {
				return
			}
			c.Library = servent.StaticLibrary{
				Table: ultrapeer.BuildTable(16, [][]string{{"zebra", "quokka"}}, nil),
				Results: func(q *protocol.Query, h protocol.Header) []protocol.Result {
					if !bytes.Contains(q.Search, want) {
						return nil
					}
					return []protocol.Result{{Index: 1, Size: 8, Name: []byte("zebra quokka.txt")}}
				},
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = net.Stop() }()
	waitTables(t, net)
	us := net.Servents[origin]
	for i := range ups {
		if i != origin && !us.AskQueryKey(ctx, net.Servents[i].UDPAddr()) {
			t.Fatalf("ultrapeer %d gave no query key", i)
		}
	}
	s := us.Search(ctx, protocol.NewQuery(string(want), 0), routing.GUESS{}, 1, 20*time.Second)
	hits := s.Hits()
	if len(hits) == 0 || hits[0].Host != net.Servents[holder].Addr() {
		t.Fatalf("hits %+v: want the file of leaf %d at %v", hits, holder, net.Servents[holder].Addr())
	}
	if st := us.GUESSStats(); st.HitsReceived == 0 || st.Probes == 0 || st.Probes > ups-1 {
		t.Errorf("origin's GUESS stats %+v: want hits by datagram after 1 to %d probes", st, ups-1)
	}
}

// The in-memory network has no UDP: an experiment with GUESS on it is
// refused before anything starts, with the way out in the message.
func TestExperimentRefusesGUESSInMemory(t *testing.T) {
	cfg := ExperimentConfig{Topology: Random{MeanDegree: 4}, N: 10, Transport: Memory, Queries: 1,
		Strategies: []routing.Strategy{routing.GUESS{}}}
	if _, err := RunExperimentReport(context.Background(), cfg, nil); !errors.Is(err, errGUESSMemory) {
		t.Fatalf("err %v, want %v", err, errGUESSMemory)
	}
	sts, err := ParseStrategies("guess,guess:7", Random{MeanDegree: 4}, 10, 1)
	if err != nil || len(sts) != 2 || sts[1].(routing.GUESS).MaxHosts != 7 {
		t.Fatalf("ParseStrategies = %v, %v: want two GUESS strategies, the second with 7 hosts", sts, err)
	}
}
