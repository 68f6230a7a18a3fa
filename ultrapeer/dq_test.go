package ultrapeer

import (
	"testing"

	"gnutella/protocol"
)

func TestLeafQueriesCountAndStop(t *testing.T) {
	var qs LeafQueries[int]
	id := protocol.NewGUID()
	q, ok := qs.Start(id, 1)
	if !ok || !qs.Running(id) {
		t.Fatal("a first query did not start")
	}
	if _, ok := qs.Start(id, 1); ok {
		t.Fatal("the same GUID started twice")
	}
	qs.Relayed(id, 7)
	qs.Relayed(protocol.NewGUID(), 100) // another query's hit
	if q.Results() != 7 {
		t.Fatalf("results %d, want the 7 relayed", q.Results())
	}
	qs.Status(id, 2, 40) // not the query's leaf
	if q.Results() != 7 {
		t.Fatal("another leaf's status counted")
	}
	qs.Status(id, 1, 40)
	if q.Results() != 40 {
		t.Fatalf("results %d, want the 40 the leaf kept", q.Results())
	}
	if q.Stopped() {
		t.Fatal("stopped before the leaf said so")
	}
	qs.Status(id, 1, protocol.QueryStatusStop)
	if !q.Stopped() {
		t.Fatal("the leaf's 0xFFFF did not stop the query")
	}
	qs.Done(id)
	if qs.Running(id) {
		t.Fatal("still running after Done")
	}
}

func TestLeafQueriesAreBounded(t *testing.T) {
	var qs LeafQueries[int]
	for i := range MaxLeafDQs {
		if _, ok := qs.Start(protocol.NewGUID(), i); !ok {
			t.Fatalf("query %d refused", i)
		}
	}
	if _, ok := qs.Start(protocol.NewGUID(), 0); ok {
		t.Fatal("a query beyond MaxLeafDQs started")
	}
}
