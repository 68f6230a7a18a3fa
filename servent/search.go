package servent

import (
	"bufio"
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"gnutella/protocol"
	"gnutella/routing"
)

// HitWatcher receives each QueryHit routed to us for a query we originated:
// its header, the hit, and when it arrived. routing.Search turns them into
// routing.Hits.
type HitWatcher func(h protocol.Header, hit *protocol.QueryHit, at time.Time)

// searchTable hands hits for our own queries to whoever watches their GUID.
type searchTable struct {
	mu       sync.Mutex
	watchers map[protocol.GUID]HitWatcher
	searches map[protocol.GUID]*routing.Search // for walker checks
	// tap, when set, sees every hit for a query of ours, watched or not
	// (a Node's download mesh, dmesh.go). Set before Start; it must not
	// block.
	tap func(hit *protocol.QueryHit)
}

// WatchHits calls fn for every hit that comes back for query id, until the
// returned cancel is called. fn runs on a link's reader goroutine: it must
// not block.
func (s *Servent) WatchHits(id protocol.GUID, fn HitWatcher) (cancel func()) {
	t := &s.searches
	t.mu.Lock()
	if t.watchers == nil {
		t.watchers = make(map[protocol.GUID]HitWatcher)
	}
	t.watchers[id] = fn
	t.mu.Unlock()
	return func() {
		t.mu.Lock()
		delete(t.watchers, id)
		t.mu.Unlock()
	}
}

func (t *searchTable) deliver(h protocol.Header, hit *protocol.QueryHit, at time.Time) {
	t.mu.Lock()
	fn := t.watchers[h.ID]
	t.mu.Unlock()
	if t.tap != nil {
		t.tap(hit)
	}
	if fn != nil {
		fn(h, hit, at)
	}
}

func (t *searchTable) register(id protocol.GUID, s *routing.Search) {
	t.mu.Lock()
	if t.searches == nil {
		t.searches = make(map[protocol.GUID]*routing.Search)
	}
	t.searches[id] = s
	t.mu.Unlock()
}

func (t *searchTable) unregister(s *routing.Search) {
	t.mu.Lock()
	for _, id := range s.GUIDs() {
		if t.searches[id] == s {
			delete(t.searches, id)
		}
	}
	t.mu.Unlock()
}

// walkDone answers a walker's check: true (STOP) unless a search of ours
// with that GUID is still running and wants more.
func (t *searchTable) walkDone(id protocol.GUID) bool {
	t.mu.Lock()
	s := t.searches[id]
	t.mu.Unlock()
	return s == nil || s.Done()
}

// searchNet is the routing.Network of one search: it registers every GUID
// the strategy uses so hits find their way to the search.
type searchNet struct {
	s       *Servent
	search  *routing.Search
	exclude *Link // a leaf whose query we run: not one of the targets
}

func (n *searchNet) Neighbours() []routing.Neighbour { return n.s.Neighbours() }

func (n *searchNet) Self() netip.AddrPort { return n.s.Addr() }

func (n *searchNet) SendQuery(id protocol.GUID, q *protocol.Query, ttl uint8, to []routing.LinkID) int {
	s := n.s
	q = s.oobQuery(id, q) // marked for out-of-band hits when id names us (oob.go)
	s.searches.register(id, n.search)
	if _, ok := s.searches.watcher(id); !ok {
		search := n.search
		s.WatchHits(id, func(h protocol.Header, hit *protocol.QueryHit, at time.Time) { search.AddQueryHit(hit, h.Hops, at) })
	}
	var links []*Link
	if to != nil {
		links = make([]*Link, 0, len(to))
		for _, lid := range to {
			if l := s.linkByID(lid); l != nil {
				links = append(links, l)
			}
		}
		if len(links) == 0 {
			return 0
		}
	}
	// A leaf's query (exclude is that leaf) has come one hop already: it
	// leaves with hops 1, as gtk-gnutella's dynamic querying sends its
	// leaves' queries (dq.c). With hops 0 a servent two hops from the leaf
	// would take it for a direct neighbour's query and answer only over
	// TCP, never out of band (gtk-gnutella: hops > 1; offerOOB: hops > 0).
	var hops uint8
	if n.exclude != nil {
		hops = 1
	}
	return s.sendQuery(id, q, ttl, hops, links)
}

func (t *searchTable) watcher(id protocol.GUID) (HitWatcher, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fn, ok := t.watchers[id]
	return fn, ok
}

// Neighbours describes our ultrapeer and normal links for a strategy.
func (s *Servent) Neighbours() []routing.Neighbour {
	links := s.Links()
	nbs := make([]routing.Neighbour, 0, len(links))
	for _, l := range links {
		if l.Kind == LinkLeaf || l.closing.Load() {
			continue
		}
		nbs = append(nbs, routing.Neighbour{
			ID: l.ID, Ultrapeer: l.Kind == LinkUltrapeer, ExtProbes: l.Caps.ExtProbes,
			RandomWalk: l.Caps.RandomWalk, Gossip: l.Caps.Gossip,
		})
	}
	return nbs
}

// Search runs strategy for q until the strategy is done and then collects
// hits until timeout passes (or enough results came, when enough > 0). The
// returned search holds the hits and what it cost; it answers walker checks
// only while running.
func (s *Servent) Search(ctx context.Context, q *protocol.Query, strategy routing.Strategy, enough int, timeout time.Duration) *routing.Search {
	return s.run(ctx, s.newSearch(s.ownQuery(q), strategy.Name(), enough), strategy, timeout)
}

// ownQuery is q as we send it: marked firewalled when we are. It is set
// before the search is handed out (StartSearch returns it at once, and
// others read its Query while it runs).
func (s *Servent) ownQuery(q *protocol.Query) *protocol.Query {
	if !s.firewalled() {
		return q
	}
	c := *q
	c.Flags |= protocol.QueryFlagFirewalled
	return &c
}

func (s *Servent) run(ctx context.Context, search *routing.Search, strategy routing.Strategy, timeout time.Duration) *routing.Search {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	strategy.Run(ctx, search, &searchNet{s: s, search: search})
wait:
	for !search.Enough() {
		select {
		case <-ctx.Done():
			break wait
		case <-search.Changed():
		}
	}
	search.Finish()
	s.searches.mu.Lock()
	for _, id := range search.GUIDs() {
		delete(s.searches.watchers, id)
	}
	s.searches.mu.Unlock()
	s.searches.unregister(search)
	return search
}

// StartSearch is Search in the background: it returns at once, and the
// search fills in as hits arrive. done is closed when it ends.
func (s *Servent) StartSearch(q *protocol.Query, strategy routing.Strategy, enough int, timeout time.Duration) (search *routing.Search, done <-chan struct{}) {
	ch := make(chan struct{})
	started := make(chan *routing.Search, 1)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(ch)
		search := s.newSearch(s.ownQuery(q), strategy.Name(), enough)
		started <- search
		s.run(s.ctx, search, strategy, timeout)
	}()
	return <-started, ch
}

// walkCheck asks a walker's originator whether to go on, directly on its
// port: "WALKCHECK <guid>" answered "CONTINUE" or "STOP" (Lv et al.'s
// checking). Any failure means go on.
func (s *Servent) walkCheck(ctx context.Context, origin netip.AddrPort, id protocol.GUID) (stop bool) {
	s.walkChecks.Add(1)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := s.transport.Dial(ctx, origin.String())
	if err != nil {
		return false
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if _, err := conn.Write([]byte("WALKCHECK " + id.String() + "\r\n")); err != nil {
		return false
	}
	line, err := protocol.ReadLine(bufio.NewReaderSize(conn, 64))
	return err == nil && line == "STOP"
}

// serveWalkCheck answers a walker check on our port.
func (s *Servent) serveWalkCheck(conn net.Conn, line string) {
	id, err := protocol.ParseGUID(strings.TrimSpace(strings.TrimPrefix(line, "WALKCHECK ")))
	answer := "STOP\r\n"
	if err == nil && !s.searches.walkDone(id) {
		answer = "CONTINUE\r\n"
	}
	writeAndClose(conn, answer)
}
