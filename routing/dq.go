package routing

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"
)

// Dynamic querying (docs/protocol.md §5.4, [DQ]; gtk-gnutella's dq.c, LimeWire's
// QueryHandler): the ultrapeer controls the query. It probes a few of its
// ultrapeer links at a low TTL, then queries one more link at a time with
// the TTL its estimate of the network calls for, waiting after each, until
// enough results came, the links or the horizon ran out, or time is up.

// DynamicQuery is the strategy.
type DynamicQuery struct {
	// Target is the number of results wanted: 150 for our own queries, 50
	// for a leaf's (docs/protocol.md §5.4).
	Target int
	// Results, when set, counts the results so far (for a leaf's query the
	// ultrapeer counts the hits it relays to the leaf); nil uses the
	// search's own hit count.
	Results func() int
	// PerHop is the wait per unit of TTL after each step (2.4 s in LimeWire);
	// ProbeWait the wait after the probe (7.2 s in the spec).
	PerHop, ProbeWait time.Duration
	// MaxTTL caps each step's TTL (the peer's X-Max-TTL caps it further).
	MaxTTL uint8
	// MaxHorizon stops the query once this many servents were (estimated to
	// be) reached: 300,000 in the spec.
	MaxHorizon int
	// Probe is how many links get the probe (3).
	Probe int
	// Stop, when set, is asked before every step (leaf guidance: the leaf
	// said it has enough).
	Stop func() bool
}

// DQNeighbour adds what dynamic querying needs to know of a link.
type DQNeighbour struct {
	Neighbour
	Degree int   // X-Degree (8 if not announced)
	MaxTTL uint8 // X-Max-TTL
	// Match is the link's last-hop QRP verdict for this query: +1 its table
	// matches, 0 no table, -1 its table says no.
	Match int
}

// DQNetwork is a Network that can describe its ultrapeer links for a query.
type DQNetwork interface {
	Network
	DQNeighbours(s *Search) []DQNeighbour
}

// Name implements Strategy.
func (d DynamicQuery) Name() string { return fmt.Sprintf("dq(target=%d)", d.Target) }

// Horizon is the number of servents a query with TTL t reaches through a
// link whose far end has the given degree: Σ_{i<t} (degree-1)^i.
func Horizon(degree int, t uint8) int {
	h, term := 0, 1
	for i := uint8(0); i < t; i++ {
		h += term
		if h > math.MaxInt32 {
			return math.MaxInt32
		}
		term *= max(degree-1, 1)
	}
	return h
}

// Run implements Strategy. n must be a DQNetwork.
func (d DynamicQuery) Run(ctx context.Context, s *Search, n Network) {
	dn, ok := n.(DQNetwork)
	if !ok {
		Flood{TTL: 2}.Run(ctx, s, n)
		return
	}
	target := d.Target
	if target <= 0 {
		target = 150
	}
	results := d.Results
	if results == nil {
		results = s.Len
	}
	maxTTL := d.MaxTTL
	if maxTTL == 0 {
		maxTTL = 4
	}
	maxHorizon := d.MaxHorizon
	if maxHorizon == 0 {
		maxHorizon = 300_000
	}
	probe := d.Probe
	if probe == 0 {
		probe = 3
	}
	stop := func() bool {
		return results() >= target || ctx.Err() != nil || (d.Stop != nil && d.Stop())
	}
	s.addGUID(s.ID)
	links := dn.DQNeighbours(s)
	// Matching tables first, then unknown, then the ones that say no.
	sort.SliceStable(links, func(i, j int) bool { return links[i].Match > links[j].Match })
	queried := 0 // estimated servents reached
	next := 0
	send := func(l DQNeighbour, ttl uint8) {
		ttl = min(ttl, maxTTL, max(l.MaxTTL, 1))
		if ttl == 1 && l.Match < 0 {
			ttl = 2 // its own leaves do not match: worth it only beyond it (LimeWire)
		}
		s.addSent(n.SendQuery(s.ID, s.Query, ttl, []LinkID{l.ID}))
		queried += Horizon(l.Degree, ttl)
	}
	// 1. Probe: TTL 2 to a few links (TTL 1 where the table matches: the
	// link's leaves will answer, LimeWire's refinement).
	for ; next < len(links) && next < probe; next++ {
		ttl := uint8(2)
		if links[next].Match > 0 {
			ttl = 1
		}
		send(links[next], ttl)
	}
	if next == 0 || waitFor(ctx, d.ProbeWait, stop) {
		return
	}
	// 2. One link at a time, with the TTL the estimate asks for.
	for ; next < len(links) && queried < maxHorizon; next++ {
		if stop() {
			return
		}
		got := results()
		remaining := len(links) - next
		var hostsToQuery float64
		if got == 0 {
			hostsToQuery = 40_000 // LimeWire's guess when nothing came yet
		} else {
			perHost := float64(got) / float64(max(queried, 1))
			hostsToQuery = float64(target-got) / perHost
		}
		perConn := hostsToQuery / float64(max(remaining, 1))
		l := links[next]
		ttl := uint8(1)
		for ttl < maxTTL && float64(Horizon(l.Degree, ttl)) < perConn {
			ttl++
		}
		send(l, ttl)
		if waitFor(ctx, d.PerHop*time.Duration(ttl), stop) {
			return
		}
	}
}

// waitFor waits d, polling done at a fine grain; it reports whether done
// became true.
func waitFor(ctx context.Context, d time.Duration, done func() bool) bool {
	deadline := time.Now().Add(d)
	step := max(d/50, time.Millisecond)
	for {
		if done() {
			return true
		}
		left := time.Until(deadline)
		if left <= 0 || ctx.Err() != nil {
			return done()
		}
		t := time.NewTimer(min(step, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return done()
		case <-t.C:
		}
	}
}
