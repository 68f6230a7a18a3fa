package servent

import (
	"sync"
	"sync/atomic"
	"time"

	"gnutella/protocol"
	"gnutella/routing"
)

// Dynamic querying for our leaves (§5.4): an ultrapeer does not flood a
// leaf's query with the leaf's TTL; it runs the query itself, link by link,
// counting the results it relays back to the leaf, until 50 came (150 for
// our own), and the leaf may tell it how many it kept or to stop (Query
// Status, BEAR/11 and BEAR/12).

const (
	leafDQTarget = 50  // §5.4: 150 per query, a leaf has about 3 ultrapeers
	ownDQTarget  = 150 // our own queries
	maxLeafDQs   = 128 // dynamic queries running at once for leaves
)

type dqState struct {
	mu      sync.Mutex
	running map[protocol.GUID]*leafQuery
}

type leafQuery struct {
	leaf     *Link
	relayed  atomic.Int64 // results relayed to the leaf
	reported atomic.Int64 // results the leaf said it kept (-1: none said)
	stop     atomic.Bool  // the leaf said 0xFFFF
	asked    time.Time    // the last status request (the strategy's goroutine only)
}

func (q *leafQuery) results() int {
	return int(max(q.relayed.Load(), q.reported.Load()))
}

// startLeafDQ runs a dynamic query for a leaf's query, in the background.
// It reports false when too many are running (the caller then floods).
func (s *Servent) startLeafDQ(leaf *Link, h protocol.Header, q *protocol.Query) bool {
	d := &s.dq
	d.mu.Lock()
	if d.running == nil {
		d.running = map[protocol.GUID]*leafQuery{}
	}
	if len(d.running) >= maxLeafDQs || d.running[h.ID] != nil {
		d.mu.Unlock()
		return false
	}
	lq := &leafQuery{leaf: leaf}
	lq.reported.Store(-1)
	d.running[h.ID] = lq
	d.mu.Unlock()

	search := routing.NewSearch(q, "dq-leaf", 0)
	search.ID = h.ID // the leaf's GUID: the hits route back to it
	strategy := routing.DynamicQuery{
		Target: leafDQTarget, Results: lq.results, PerHop: s.cfg.DQPerHop, ProbeWait: s.cfg.DQProbeWait,
		MaxTTL: s.cfg.MaxTTL,
		Stop: func() bool {
			if lq.stop.Load() || leaf.closing.Load() {
				return true
			}
			// Ask a guiding leaf how it goes, at most once per hop's wait
			// (the strategy polls Stop much more often than that).
			if q.Flags.Has(protocol.QueryFlagLeafGuided) && leaf.Supports(protocol.QueryStatusRequestID) {
				if now := s.now(); now.Sub(lq.asked) >= s.cfg.DQPerHop {
					lq.asked = now
					_ = leaf.sendMessage(protocol.Header{ID: h.ID, TTL: 1}, protocol.NewQueryStatusRequest())
				}
			}
			return false
		},
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			d.mu.Lock()
			delete(d.running, h.ID)
			d.mu.Unlock()
		}()
		ctx := s.ctx
		strategy.Run(ctx, search, &searchNet{s: s, search: search, exclude: leaf})
		s.searches.unregister(search)
		s.searches.mu.Lock()
		delete(s.searches.watchers, h.ID)
		s.searches.mu.Unlock()
	}()
	return true
}

// relayedToLeaf counts results going back to a leaf whose query we run.
func (s *Servent) relayedToLeaf(id protocol.GUID, results int) {
	d := &s.dq
	d.mu.Lock()
	lq := d.running[id]
	d.mu.Unlock()
	if lq != nil {
		lq.relayed.Add(int64(results))
	}
}

// queryStatus handles BEAR/11 (a leaf is asked how its query goes) and
// BEAR/12 (an ultrapeer hears the answer).
func (s *Servent) queryStatus(l *Link, h protocol.Header, v *protocol.Vendor) {
	switch {
	case v.Is(protocol.QueryStatusRequestID):
		var hits uint16 = protocol.QueryStatusStop
		s.searches.mu.Lock()
		sr := s.searches.searches[h.ID]
		s.searches.mu.Unlock()
		if sr != nil && !sr.Done() {
			// LimeWire's convention: what we kept, divided among our ultrapeers
			ups := max(s.LinkCount(LinkUltrapeer), 1)
			hits = uint16(min(sr.Len()/ups, 0xFFFE))
		}
		_ = l.sendMessage(protocol.Header{ID: h.ID, TTL: 1}, protocol.NewQueryStatusResponse(hits))
	case v.Is(protocol.QueryStatusResponseID):
		n, err := v.QueryStatusResponse()
		if err != nil {
			return
		}
		s.dq.mu.Lock()
		lq := s.dq.running[h.ID]
		s.dq.mu.Unlock()
		if lq == nil || lq.leaf != l {
			return
		}
		if n == protocol.QueryStatusStop {
			lq.stop.Store(true)
		} else {
			lq.reported.Store(int64(n))
		}
	}
}

// DQNeighbours describes our ultrapeer links for dynamic querying, with
// each one's last-hop QRP verdict for the query.
func (n *searchNet) DQNeighbours(search *routing.Search) []routing.DQNeighbour {
	qq := qrpQuery(search.Query)
	var out []routing.DQNeighbour
	for _, l := range n.s.Links() {
		if l.Kind != LinkUltrapeer || l.closing.Load() || l == n.exclude {
			continue
		}
		match := 0
		if t := l.qrt.Load(); t != nil {
			match = -1
			if t.MatchesQuery(qq) {
				match = 1
			}
		}
		out = append(out, routing.DQNeighbour{
			Neighbour: routing.Neighbour{ID: l.ID, Ultrapeer: true, ExtProbes: l.Caps.ExtProbes,
				RandomWalk: l.Caps.RandomWalk, Gossip: l.Caps.Gossip},
			Degree: l.Caps.Degree, MaxTTL: l.Caps.MaxTTL, Match: match,
		})
	}
	return out
}
