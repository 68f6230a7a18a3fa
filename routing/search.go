package routing

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"gnutella/protocol"
)

// A search runs one strategy (flooding, expanding ring, random walk,
// gossip) against the network around a servent, collects its hits
// (deduplicated by URN and host) and records what it cost, so strategies
// can be compared. The servent provides the Network; the strategies decide
// what to send and when.

// Neighbour is one link as a strategy sees it.
type Neighbour struct {
	ID         LinkID
	Ultrapeer  bool
	ExtProbes  bool // same GUID with a higher TTL is not a duplicate (X-Ext-Probes)
	RandomWalk bool // accepts walkers (X-Random-Walk)
	Gossip     bool // forwards gossip queries probabilistically (X-Gossip)
}

// Network is what a strategy needs from the servent.
type Network interface {
	Neighbours() []Neighbour
	// SendQuery originates q under id with the given TTL to the given links
	// (all ultrapeer and normal links when to is nil) and returns how many
	// copies went out. Hits for id come back to the search.
	SendQuery(id protocol.GUID, q *protocol.Query, ttl uint8, to []LinkID) int
	// Self is our advertised address (walkers carry it for checking).
	Self() netip.AddrPort
}

// Hit is one result of a search.
type Hit struct {
	Name      string
	Size      uint64
	URN       protocol.SHA1 // zero when the hit carried none
	Index     uint32
	Host      netip.AddrPort
	ServentID protocol.GUID
	Speed     uint32
	Push      bool // the responder is firewalled: download by Push
	Busy      bool
	TLS       bool // the responder accepts TLS on its port (GGEP "TLS" in its trailer)
	Hops      uint8
	At        time.Time
	Proxies   []netip.AddrPort
}

// hitJSON is the JSON form of a Hit, as the control API sends it
// (docs/control-api.md): At and Proxies stay inside the servent.
type hitJSON struct {
	Name      string `json:"name"`
	Size      uint64 `json:"size"`
	URN       string `json:"urn,omitempty"`
	Index     uint32 `json:"index"`
	Host      string `json:"host"`
	ServentID string `json:"servent_id"`
	Speed     uint32 `json:"speed_kbps"`
	Push      bool   `json:"push"`
	Busy      bool   `json:"busy"`
	Hops      uint8  `json:"hops"`
}

// MarshalJSON writes the hit as the control API sends it.
func (h Hit) MarshalJSON() ([]byte, error) {
	j := hitJSON{Name: h.Name, Size: h.Size, Index: h.Index, Host: h.Host.String(), ServentID: h.ServentID.String(),
		Speed: h.Speed, Push: h.Push, Busy: h.Busy, Hops: h.Hops}
	if !h.URN.IsZero() {
		j.URN = h.URN.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads a hit written by MarshalJSON.
func (h *Hit) UnmarshalJSON(b []byte) error {
	var j hitJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*h = Hit{Name: j.Name, Size: j.Size, Index: j.Index, Speed: j.Speed, Push: j.Push, Busy: j.Busy, Hops: j.Hops}
	var err error
	if j.URN != "" {
		if h.URN, err = protocol.ParseURN(j.URN); err != nil {
			return fmt.Errorf("hit urn: %w", err)
		}
	}
	if h.Host, err = netip.ParseAddrPort(j.Host); err != nil {
		return fmt.Errorf("hit host: %w", err)
	}
	if h.ServentID, err = protocol.ParseGUID(j.ServentID); err != nil {
		return fmt.Errorf("hit servent_id: %w", err)
	}
	return nil
}

// Search is one search in progress or done.
type Search struct {
	ID       protocol.GUID // the first GUID; a ring search may use more
	Query    *protocol.Query
	Strategy string
	Started  time.Time

	mu       sync.Mutex
	guids    []protocol.GUID
	hits     []Hit
	seen     map[hitKey]bool
	sent     int // query copies we originated
	firstHit time.Duration
	firstHop uint8
	done     bool
	changed  chan struct{}
	enough   int
}

type hitKey struct {
	urn  protocol.SHA1
	name string
	host netip.AddrPort
}

// NewSearch prepares a search for q; enough is the result count at which
// strategies that can stop early do (0: never early).
func NewSearch(q *protocol.Query, strategy string, enough int) *Search {
	return &Search{
		ID: protocol.NewGUID(), Query: q, Strategy: strategy, Started: time.Now(),
		seen: make(map[hitKey]bool), changed: make(chan struct{}), enough: enough,
	}
}

// GUIDs lists every message GUID the search used.
func (s *Search) GUIDs() []protocol.GUID {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]protocol.GUID(nil), s.guids...)
}

func (s *Search) addGUID(id protocol.GUID) {
	s.mu.Lock()
	s.guids = append(s.guids, id)
	s.mu.Unlock()
}

func (s *Search) addSent(n int) {
	s.mu.Lock()
	s.sent += n
	s.mu.Unlock()
}

// AddQueryHit adds the results of one QueryHit (hops as it arrived) and
// returns how many were new.
func (s *Search) AddQueryHit(h *protocol.QueryHit, hops uint8, at time.Time) int {
	flags, valid := h.Flags()
	host := h.AddrPort()
	proxies := h.PushProxies()
	tls := h.SpeaksTLS()
	s.mu.Lock()
	defer s.mu.Unlock()
	added := 0
	for i := range h.Results {
		r := &h.Results[i]
		var urn protocol.SHA1
		if u := r.URNs(); len(u) > 0 {
			urn = u[0]
		}
		k := hitKey{urn: urn, host: host}
		if urn.IsZero() {
			k.name = string(r.Name)
		}
		if s.seen[k] {
			continue
		}
		s.seen[k] = true
		s.hits = append(s.hits, Hit{
			Name: string(r.Name), Size: r.FileSize(), URN: urn, Index: r.Index, Host: host,
			ServentID: h.ServentID, Speed: h.Speed, Push: valid.Push && flags.Push,
			Busy: valid.Busy && flags.Busy, TLS: tls, Hops: hops, At: at, Proxies: proxies,
		})
		if len(s.hits) == 1 {
			s.firstHit = at.Sub(s.Started)
			s.firstHop = hops
		}
		added++
	}
	if added > 0 {
		close(s.changed)
		s.changed = make(chan struct{})
	}
	return added
}

// Hits returns the results so far.
func (s *Search) Hits() []Hit {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Hit(nil), s.hits...)
}

// Len is the number of distinct results so far.
func (s *Search) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.hits)
}

// Enough reports whether the search has its target number of results.
func (s *Search) Enough() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.enough > 0 && len(s.hits) >= s.enough
}

// Wanted is how many more results the search wants (0 once it has
// enough), or -1 when it has no target.
func (s *Search) Wanted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.enough <= 0 {
		return -1
	}
	return max(s.enough-len(s.hits), 0)
}

// Changed is closed when new hits arrive.
func (s *Search) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// Finish marks the search over (walkers asking get STOP).
func (s *Search) Finish() {
	s.mu.Lock()
	s.done = true
	s.mu.Unlock()
}

// Done reports whether the search is over or has enough results: what a
// walker's check is answered with.
func (s *Search) Done() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done || (s.enough > 0 && len(s.hits) >= s.enough)
}

// SearchStats is what a search cost and found, from the originator's view.
type SearchStats struct {
	Strategy     string
	Results      int
	Sent         int // query copies we sent ourselves
	GUIDs        int
	FirstHit     time.Duration // 0: no hit
	FirstHitHops uint8
}

// Stats summarises the search.
func (s *Search) Stats() SearchStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return SearchStats{Strategy: s.Strategy, Results: len(s.hits), Sent: s.sent, GUIDs: len(s.guids),
		FirstHit: s.firstHit, FirstHitHops: s.firstHop}
}

// Strategy decides what a search sends and when.
type Strategy interface {
	Name() string
	// Run sends the search's messages and returns when the strategy has
	// nothing more to do (the caller may keep collecting hits until its own
	// timeout). It must return when ctx ends.
	Run(ctx context.Context, s *Search, n Network)
}

// waitHits waits until the search has enough results, d passes, or ctx ends;
// it reports whether the search has enough.
func waitHits(ctx context.Context, s *Search, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		if s.Enough() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return s.Enough()
		case <-s.Changed():
		}
	}
}
