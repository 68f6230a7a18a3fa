package ultrapeer

import (
	"sync"
	"sync/atomic"

	"gnutella/protocol"
)

// Dynamic querying for leaves (docs/protocol.md §5.4): an ultrapeer does not flood a leaf's
// query with the leaf's TTL; it runs the query itself, link by link,
// counting the results it relays back to the leaf, until LeafDQTarget came,
// and the leaf may tell it how many it kept or to stop (Query Status,
// BEAR/11 and BEAR/12). LeafQueries is that bookkeeping, keyed by the
// query's GUID; the servent runs the queries and owns the links (L is how
// it names a leaf).

const (
	// LeafDQTarget is the results an ultrapeer gathers for one leaf's
	// query: docs/protocol.md §5.4's 150 per query, shared by a leaf's about 3 ultrapeers.
	LeafDQTarget = 50
	// MaxLeafDQs is how many leaves' dynamic queries run at once; beyond
	// it a leaf's query is flooded.
	MaxLeafDQs = 128
)

// LeafQuery counts the results of one leaf's dynamic query.
type LeafQuery[L comparable] struct {
	leaf     L
	relayed  atomic.Int64 // results relayed to the leaf
	reported atomic.Int64 // results the leaf said it kept (-1: none said)
	stop     atomic.Bool  // the leaf said 0xFFFF
}

// Results is what the query has gathered as far as we know: what we
// relayed, or what the leaf said it kept when that is more.
func (q *LeafQuery[L]) Results() int {
	return int(max(q.relayed.Load(), q.reported.Load()))
}

// Stopped reports whether the leaf said to stop (Query Status 0xFFFF).
func (q *LeafQuery[L]) Stopped() bool { return q.stop.Load() }

// LeafQueries are the leaves' dynamic queries running now. The zero value
// is ready; it is safe for concurrent use.
type LeafQueries[L comparable] struct {
	mu      sync.Mutex
	running map[protocol.GUID]*LeafQuery[L]
}

// Start registers leaf's query id. It reports false when MaxLeafDQs are
// running or id already is (the caller then floods the query).
func (t *LeafQueries[L]) Start(id protocol.GUID, leaf L) (*LeafQuery[L], bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.running == nil {
		t.running = map[protocol.GUID]*LeafQuery[L]{}
	}
	if len(t.running) >= MaxLeafDQs || t.running[id] != nil {
		return nil, false
	}
	q := &LeafQuery[L]{leaf: leaf}
	q.reported.Store(-1)
	t.running[id] = q
	return q, true
}

// Done forgets query id.
func (t *LeafQueries[L]) Done(id protocol.GUID) {
	t.mu.Lock()
	delete(t.running, id)
	t.mu.Unlock()
}

// Running reports whether query id is running.
func (t *LeafQueries[L]) Running(id protocol.GUID) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.running[id] != nil
}

func (t *LeafQueries[L]) get(id protocol.GUID) *LeafQuery[L] {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.running[id]
}

// Relayed counts results relayed back to the leaf of query id (a QueryHit
// with that many records); other GUIDs are ignored.
func (t *LeafQueries[L]) Relayed(id protocol.GUID, results int) {
	if q := t.get(id); q != nil {
		q.relayed.Add(int64(results))
	}
}

// Status takes a leaf's Query Status answer (BEAR/12) for query id: how many
// results it kept, or QueryStatusStop. An answer from another leaf than
// the query's is ignored.
func (t *LeafQueries[L]) Status(id protocol.GUID, from L, kept uint16) {
	q := t.get(id)
	if q == nil || q.leaf != from {
		return
	}
	if kept == protocol.QueryStatusStop {
		q.stop.Store(true)
	} else {
		q.reported.Store(int64(kept))
	}
}

// Wanted is how many more results query id wants (0 once it gathered
// LeafDQTarget or its leaf said stop), and false when it is not running.
// An ultrapeer OOB-proxying the query claims no more than that.
func (t *LeafQueries[L]) Wanted(id protocol.GUID) (int, bool) {
	q := t.get(id)
	if q == nil {
		return 0, false
	}
	if q.Stopped() {
		return 0, true
	}
	return max(LeafDQTarget-q.Results(), 0), true
}
