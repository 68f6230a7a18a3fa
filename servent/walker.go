package servent

import (
	"gnutella/protocol"
	"gnutella/routing"
)

// Random walkers: a walker query visits one random walker-capable
// neighbour at a time, asking its originator every CheckEvery steps whether
// to go on (the check itself is search.go's walkCheck/serveWalkCheck).

// handleWalker handles one step of a random walk: answer the first visit,
// then pass the walker on to one random walker-capable neighbour (not
// straight back), after asking the originator every CheckEvery steps when
// the walker is a checking one.
func (r *router) handleWalker(l *Link, h protocol.Header, q *protocol.Query, w routing.Walker) {
	s := r.s
	dup, _ := r.dups.Check(h.ID, protocol.TypeQuery, 1)
	r.trace(l, h, dup)
	if !dup {
		r.walkers.Check(h.ID, protocol.TypeQuery, 0)
		r.query.Add(h.ID, l.ID, s.now())
		if acceptableQuery(q) {
			r.stats.Handled.Add(1)
			s.answerQuery(l, h, q, w.Steps)
			if !s.isLeaf() {
				// An ultrapeer and its leaves act as one unit: the walker's
				// visit covers the leaves whose table matches.
				if payload, err := q.AppendTo(nil); err == nil {
					r.toLeaves(l, protocol.Header{ID: h.ID, Type: protocol.TypeQuery, TTL: 1, Hops: 1}, payload, &lazyQRP{q: q})
				}
			}
		}
	}
	if s.isLeaf() {
		return // leaves answer walkers but never pass them on
	}
	if w.Left == 0 || r.stopped.Seen(h.ID, protocol.TypeQuery) {
		r.stats.Expired.Add(1)
		return
	}
	left := min(w.Left, routing.MaxWalkBudget) - 1 // a walker claiming more is cut down
	next := routing.Walker{Num: w.Num, Left: left, Steps: w.Steps + 1, Check: w.Check, Origin: w.Origin}
	forward := func() {
		var cands [64]routing.LinkID
		c := cands[:0]
		for _, o := range s.Links() {
			if o.Caps.RandomWalk && o.Kind != LinkLeaf && !o.closing.Load() {
				c = append(c, o.ID)
			}
		}
		r.rngMu.Lock()
		to, ok := routing.NextWalkerHop(r.rng, c, l.ID)
		r.rngMu.Unlock()
		if !ok {
			return
		}
		o := s.linkByID(to)
		if o == nil {
			return
		}
		payload, err := routing.WithWalker(q, next).AppendTo(nil)
		if err != nil {
			return
		}
		if o.send(protocol.Header{ID: h.ID, Type: protocol.TypeQuery, TTL: 1}, payload) == enqueued {
			r.stats.Routed.Add(1)
		}
	}
	if !w.Check || !w.Origin.IsValid() || w.Steps%routing.CheckEvery != 0 {
		forward()
		return
	}
	select {
	case r.checking <- struct{}{}:
	default:
		forward() // too many checks in flight: go on without asking
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() { <-r.checking }()
		if s.walkCheck(s.ctx, w.Origin, h.ID) {
			r.stopped.Check(h.ID, protocol.TypeQuery, 0)
			r.stats.Expired.Add(1)
			return
		}
		forward()
	}()
}
