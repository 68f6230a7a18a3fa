package servent

import (
	"sync"
	"time"

	"gnutella/protocol"
	"gnutella/routing"
)

// Hit is one QueryHit routed to us, for a search we started.
type Hit struct {
	Header   protocol.Header
	QueryHit *protocol.QueryHit
	From     routing.LinkID
	At       time.Time
}

// searchTable hands hits for our own queries to whoever watches their GUID.
type searchTable struct {
	mu       sync.Mutex
	watchers map[protocol.GUID]func(Hit)
}

// WatchHits calls fn for every hit that comes back for query id, until the
// returned cancel is called. fn runs on a link's reader goroutine: it must
// not block.
func (s *Servent) WatchHits(id protocol.GUID, fn func(Hit)) (cancel func()) {
	t := &s.searches
	t.mu.Lock()
	if t.watchers == nil {
		t.watchers = make(map[protocol.GUID]func(Hit))
	}
	t.watchers[id] = fn
	t.mu.Unlock()
	return func() {
		t.mu.Lock()
		delete(t.watchers, id)
		t.mu.Unlock()
	}
}

func (t *searchTable) deliver(h protocol.Header, hit *protocol.QueryHit, l *Link) {
	t.mu.Lock()
	fn := t.watchers[h.ID]
	t.mu.Unlock()
	if fn != nil {
		fn(Hit{Header: h, QueryHit: hit, From: l.ID, At: l.s.now()})
	}
}
