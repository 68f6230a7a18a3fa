package testnet

import (
	"sync"
	"time"

	"gnutella/protocol"
	"gnutella/servent"
)

// How one query spreads through the demo network: every copy of the
// demo's searches that a servent received, from which neighbour, when, and
// whether it was a duplicate. The browser UI draws it (GET /api/v1/testnet
// of the demo's control API), one picture per strategy side by side.

// maxSpreadCopies bounds what one search's record holds.
const maxSpreadCopies = 20_000

// SpreadCopy is one copy of a query that a servent received.
type SpreadCopy struct {
	Node int     `json:"node"`  // the servent that received it
	From int     `json:"from"`  // the neighbour that sent it (-1: not a servent of the network)
	Hops uint8   `json:"hops"`  // its hops on arrival
	AtMS float64 `json:"at_ms"` // milliseconds after the search started
	Dup  bool    `json:"dup"`   // a duplicate, dropped
}

// Spread is how one search of the demo spread.
type Spread struct {
	Strategy string       `json:"strategy"`
	Query    string       `json:"query"`
	Origin   int          `json:"origin"` // the servent that searched
	Results  int          `json:"results"`
	Copies   []SpreadCopy `json:"copies"` // in the order they arrived
	Trimmed  bool         `json:"trimmed,omitempty"`
}

// GraphNode is one servent of the demo network.
type GraphNode struct {
	Role       string `json:"role"` // ultrapeer or leaf
	Firewalled bool   `json:"firewalled,omitempty"`
	Addr       string `json:"addr"`
	Seeker     bool   `json:"seeker,omitempty"` // the demo's own leaf, with the control API
}

// Graph is the demo network and how its searches spread: what GET
// /api/v1/testnet answers.
type Graph struct {
	Nodes   []GraphNode `json:"nodes"`
	Edges   [][2]int    `json:"edges"`
	Spreads []Spread    `json:"spreads"`
}

// spreadLog records the query copies of the search being run.
type spreadLog struct {
	mu      sync.Mutex
	index   map[protocol.GUID]int // servent ID -> its index
	on      bool
	started time.Time
	copies  map[protocol.GUID][]SpreadCopy
	n       int
	spreads []Spread
}

// start begins recording the copies of a new search.
func (s *spreadLog) start(nodes []*servent.Node) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.index == nil {
		s.index = map[protocol.GUID]int{}
		for i, n := range nodes {
			s.index[n.ID()] = i
		}
	}
	s.on, s.started, s.copies, s.n = true, time.Now(), map[protocol.GUID][]SpreadCopy{}, 0
}

// add is the servents' Trace: node received h from l.
func (s *spreadLog) add(node int, l *servent.Link, h protocol.Header, dup bool) {
	if h.Type != protocol.TypeQuery {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.on || s.n >= maxSpreadCopies {
		return
	}
	from := -1 // unknown, or a datagram (a GUESS query has no link)
	if l != nil {
		if f, ok := s.index[l.PeerID]; ok {
			from = f
		}
	}
	s.copies[h.ID] = append(s.copies[h.ID], SpreadCopy{Node: node, From: from, Hops: h.Hops,
		AtMS: float64(time.Since(s.started).Microseconds()) / 1000, Dup: dup})
	s.n++
}

// finish ends the record of a search whose queries had the GUIDs ids.
func (s *spreadLog) finish(sp Spread, ids []protocol.GUID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		sp.Copies = append(sp.Copies, s.copies[id]...)
	}
	sp.Trimmed = s.n >= maxSpreadCopies
	// the copies of several GUIDs (a ring's rounds) in the order they came
	sortCopies(sp.Copies)
	s.spreads = append(s.spreads, sp)
	s.on, s.copies = false, nil
}

func sortCopies(c []SpreadCopy) {
	for i := 1; i < len(c); i++ { // insertion sort: each GUID's copies are in order already
		for j := i; j > 0 && c[j].AtMS < c[j-1].AtMS; j-- {
			c[j], c[j-1] = c[j-1], c[j]
		}
	}
}

// Graph returns the network and the spreads recorded so far.
func (d *Demo) Graph() Graph {
	g := Graph{Nodes: []GraphNode{}, Edges: [][2]int{}, Spreads: []Spread{}}
	if d.Net == nil {
		return g
	}
	for _, n := range d.Net.Nodes {
		role := "leaf"
		if n.Mode() == servent.ModeUltrapeer {
			role = "ultrapeer"
		}
		g.Nodes = append(g.Nodes, GraphNode{Role: role, Firewalled: n.Firewalled(), Addr: n.Addr().String(), Seeker: n == d.Seeker})
	}
	for _, e := range d.Net.Edges {
		g.Edges = append(g.Edges, [2]int{e.A, e.B})
	}
	d.spread.mu.Lock()
	g.Spreads = append(g.Spreads, d.spread.spreads...)
	d.spread.mu.Unlock()
	return g
}
