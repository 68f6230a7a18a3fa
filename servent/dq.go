package servent

import (
	"time"

	"gnutella/protocol"
	"gnutella/routing"
	"gnutella/ultrapeer"
)

// Dynamic querying for our leaves (docs/protocol.md §5.4): the bookkeeping is
// ultrapeer.LeafQueries; here the servent runs a leaf's query with
// routing.DynamicQuery over its links, asks a guiding leaf how it goes
// (BEAR/11) and hears the answers (BEAR/12).

// startLeafDQ runs a dynamic query for a leaf's query, in the background.
// It reports false when too many are running (the caller then floods).
// leafID is the leaf's MUID, h.ID the one the query goes out with: the
// same, or the mangled MUID of a query we OOB-proxy (oobproxy.go).
func (s *Servent) startLeafDQ(leaf *Link, leafID protocol.GUID, h protocol.Header, q *protocol.Query) bool {
	lq, ok := s.dq.Start(leafID, leaf)
	if !ok {
		return false
	}
	search := routing.NewSearch(q, "dq-leaf", 0)
	search.ID = h.ID    // the hits route back to the leaf, or to us for a proxied query
	var asked time.Time // the last status request (the strategy's goroutine only)
	strategy := routing.DynamicQuery{
		Target: ultrapeer.LeafDQTarget, Results: lq.Results, PerHop: s.cfg.DQPerHop, ProbeWait: s.cfg.DQProbeWait,
		MaxTTL: s.cfg.MaxTTL,
		Stop: func() bool {
			if lq.Stopped() || leaf.closing.Load() {
				return true
			}
			// Ask a guiding leaf how it goes, at most once per hop's wait
			// (the strategy polls Stop much more often than that).
			if q.Flags.Has(protocol.QueryFlagLeafGuided) && leaf.Supports(protocol.QueryStatusRequestID) {
				if now := s.now(); now.Sub(asked) >= s.cfg.DQPerHop {
					asked = now
					_ = leaf.sendMessage(protocol.Header{ID: leafID, TTL: 1}, protocol.NewQueryStatusRequest())
				}
			}
			return false
		},
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.dq.Done(leafID)
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
	s.dq.Relayed(id, results)
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
		if n, err := v.QueryStatusResponse(); err == nil {
			s.dq.Status(h.ID, l, n)
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
