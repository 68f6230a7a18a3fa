package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"gnutella/protocol"
	"gnutella/routing"
)

// search is one search started through the API.
type search struct {
	search *routing.Search
	done   <-chan struct{}
}

const maxSearches = 100

// SearchRequest is the body of POST /api/v1/searches.
type SearchRequest struct {
	Query      string  `json:"query"`
	URN        string  `json:"urn,omitempty"`
	Strategy   string  `json:"strategy,omitempty"` // flood (default), ring, walk, gossip, guess
	TTL        int     `json:"ttl,omitempty"`
	Walkers    int     `json:"walkers,omitempty"`
	P          float64 `json:"p,omitempty"`
	TimeoutMS  int     `json:"timeout_ms,omitempty"` // default 30000
	MaxResults int     `json:"max_results,omitempty"`
}

// DefaultSearchRequest is the search the CLI runs unless told otherwise: a
// flood with TTL 4 (16 walkers for walk, p 0.5 for gossip: the defaults of
// routing.ParseStrategy), for 10 s. A request leaving TimeoutMS 0 runs 30 s.
func DefaultSearchRequest() SearchRequest {
	return SearchRequest{Strategy: "flood", TTL: 4, Walkers: 16, P: 0.5, TimeoutMS: 10_000}
}

// SearchJSON describes a search.
type SearchJSON struct {
	ID       string              `json:"id"`
	Query    string              `json:"query"`
	Strategy string              `json:"strategy"`
	Running  bool                `json:"running"`
	Stats    routing.SearchStats `json:"stats"`
	Hits     []routing.Hit       `json:"hits,omitempty"`
}

func (c *Server) startSearch(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
		return
	}
	var req SearchRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{"bad JSON: " + err.Error()})
		return
	}
	id, err := c.StartSearch(req)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"id": id})
}

// StartSearch starts a search as POST /api/v1/searches does and returns its ID.
func (c *Server) StartSearch(req SearchRequest) (string, error) {
	if req.TTL < 0 || req.TTL > 15 {
		return "", errors.New("ttl must be between 1 and 15")
	}
	st, err := routing.ParseStrategy(req.Strategy, routing.StrategyOptions{TTL: uint8(req.TTL), Walkers: req.Walkers, P: req.P})
	if err != nil {
		return "", err
	}
	q, err := BuildQuery(req.Query, req.URN)
	if err != nil {
		return "", err
	}
	timeout := time.Duration(req.TimeoutMS) * time.Millisecond
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	s, done := c.n.StartSearch(q, st, req.MaxResults, timeout)
	return c.remember(s, done), nil
}

// remember keeps a search (the last maxSearches) and returns its ID.
func (c *Server) remember(s *routing.Search, done <-chan struct{}) string {
	id := s.ID.String()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.searches[id] = &search{search: s, done: done}
	c.order = append(c.order, id)
	if len(c.order) > maxSearches {
		delete(c.searches, c.order[0])
		c.order = c.order[1:]
	}
	return id
}

// BuildQuery makes the query a user asked for: words, or a urn:sha1,
// marked as a modern query that wants URNs.
func BuildQuery(words, urn string) (*protocol.Query, error) {
	var urns []protocol.SHA1
	if urn != "" {
		h, err := protocol.ParseURN(strings.TrimSpace(urn))
		if err != nil {
			return nil, fmt.Errorf("%v: want urn:sha1:<32 base32 characters>", err)
		}
		urns = append(urns, h)
	}
	words = strings.TrimSpace(words)
	if len(words) > 200 {
		return nil, errors.New("query longer than 200 characters")
	}
	if words == "" && len(urns) == 0 {
		return nil, errors.New("empty query: neither words nor a urn:sha1")
	}
	if strings.IndexByte(words, 0) >= 0 {
		return nil, errors.New("query holds a NUL byte, which ends a Gnutella search text")
	}
	return protocol.NewQuery(words, protocol.QueryFlagMark|protocol.QueryFlagGGEPH, urns...), nil
}

func (c *Server) lookup(id string) *search {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.searches[id]
}

func (cs *search) json(withHits bool) SearchJSON {
	running := true
	select {
	case <-cs.done:
		running = false
	default:
	}
	text, _ := cs.search.Query.SearchString()
	j := SearchJSON{ID: cs.search.ID.String(), Query: text, Strategy: cs.search.Strategy, Running: running, Stats: cs.search.Stats()}
	if withHits {
		j.Hits = append([]routing.Hit{}, cs.search.Hits()...)
	}
	return j
}

func (c *Server) listSearches(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	out := make([]SearchJSON, 0, len(c.order))
	for _, id := range c.order {
		out = append(out, c.searches[id].json(false))
	}
	c.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (c *Server) getSearch(w http.ResponseWriter, r *http.Request) {
	cs := c.lookup(r.PathValue("id"))
	if cs == nil {
		writeJSON(w, http.StatusNotFound, apiError{"no such search"})
		return
	}
	writeJSON(w, http.StatusOK, cs.json(true))
}

// streamResults writes the hits as newline-delimited JSON as they arrive,
// and ends when the search does.
func (c *Server) streamResults(w http.ResponseWriter, r *http.Request) {
	cs := c.lookup(r.PathValue("id"))
	if cs == nil {
		writeJSON(w, http.StatusNotFound, apiError{"no such search"})
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	sent := 0
	for {
		changed := cs.search.Changed()
		hits := cs.search.Hits()
		for ; sent < len(hits); sent++ {
			if enc.Encode(hits[sent]) != nil {
				return
			}
		}
		if flusher != nil {
			flusher.Flush()
		}
		select {
		case <-changed:
		case <-cs.done:
			for _, h := range cs.search.Hits()[sent:] {
				_ = enc.Encode(h)
			}
			return
		case <-r.Context().Done():
			return
		}
	}
}
