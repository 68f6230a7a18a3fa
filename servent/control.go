package servent

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"gnutella/protocol"
	"gnutella/routing"
)

// The control API: JSON over HTTP on 127.0.0.1 only, for the CLI and a
// future browser UI. Every request carries the token that the running
// servent writes into its data folder (control.json), as
// "Authorization: Bearer <token>". docs/control-api.md documents it.

// ControlInfo is what control.json holds: where the API listens and the token.
type ControlInfo struct {
	Addr  string `json:"addr"`
	Token string `json:"token"`
	PID   int    `json:"pid"`
}

// ControlExtras lets the layers above the servent add their resources.
type ControlExtras struct {
	// Shares lists the shared library (GET /api/v1/shares).
	Shares func() any
	// Library reports the library's scanning and hashing progress (in
	// GET /api/v1/status).
	Library func() any
	// Downloads lists downloads (GET /api/v1/downloads) and starts one
	// (POST /api/v1/downloads with a JSON body).
	Downloads     func() any
	StartDownload func(body []byte) (any, error)
}

// Control serves the control API of one servent.
type Control struct {
	s      *Servent
	extras ControlExtras
	token  string
	srv    *http.Server
	ln     net.Listener

	mu       sync.Mutex
	searches map[string]*controlSearch
	order    []string
}

type controlSearch struct {
	search *routing.Search
	done   <-chan struct{}
}

const maxControlSearches = 100

// StartControl listens on addr (which must be a loopback address, e.g.
// "127.0.0.1:0") and, when the servent has a data folder, writes
// control.json there.
func (s *Servent) StartControl(addr string, extras ControlExtras) (*Control, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("control API address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("control API must listen on a loopback address, not %q", addr)
	}
	var tok [16]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("control API cannot listen on %s: %w", addr, err)
	}
	c := &Control{s: s, extras: extras, token: hex.EncodeToString(tok[:]), ln: ln, searches: map[string]*controlSearch{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/status", c.status)
	mux.HandleFunc("GET /api/v1/links", c.links)
	mux.HandleFunc("GET /api/v1/shares", c.shares)
	mux.HandleFunc("GET /api/v1/searches", c.listSearches)
	mux.HandleFunc("POST /api/v1/searches", c.startSearch)
	mux.HandleFunc("GET /api/v1/searches/{id}", c.getSearch)
	mux.HandleFunc("GET /api/v1/searches/{id}/results", c.streamResults)
	mux.HandleFunc("GET /api/v1/downloads", c.downloads)
	mux.HandleFunc("POST /api/v1/downloads", c.startDownload)
	c.srv = &http.Server{Handler: c.auth(mux), ReadHeaderTimeout: 10 * time.Second}
	if s.cfg.DataDir != "" {
		info, _ := json.Marshal(ControlInfo{Addr: ln.Addr().String(), Token: c.token, PID: os.Getpid()})
		if err := os.WriteFile(filepath.Join(s.cfg.DataDir, "control.json"), info, 0o600); err != nil {
			ln.Close()
			return nil, fmt.Errorf("cannot write control.json: %w", err)
		}
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = c.srv.Serve(ln)
	}()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		<-s.ctx.Done()
		c.Close()
	}()
	return c, nil
}

// Addr is where the API listens; Token is what requests must carry.
func (c *Control) Addr() string  { return c.ln.Addr().String() }
func (c *Control) Token() string { return c.token }

// Close stops the API and removes control.json.
func (c *Control) Close() {
	_ = c.srv.Close()
	if c.s.cfg.DataDir != "" {
		_ = os.Remove(filepath.Join(c.s.cfg.DataDir, "control.json"))
	}
}

// ReadControlInfo reads control.json from a data folder.
func ReadControlInfo(dataDir string) (ControlInfo, error) {
	var info ControlInfo
	b, err := os.ReadFile(filepath.Join(dataDir, "control.json"))
	if err != nil {
		return info, err
	}
	return info, json.Unmarshal(b, &info)
}

func (c *Control) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if subtle.ConstantTimeCompare([]byte(got), []byte(c.token)) != 1 {
			writeJSON(w, http.StatusUnauthorized, apiError{"missing or wrong token: send Authorization: Bearer <token from control.json>"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

type apiError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// StatusJSON is the answer of GET /api/v1/status.
type StatusJSON struct {
	ServentID  string        `json:"servent_id"`
	Version    string        `json:"version"`
	Addr       string        `json:"addr"`
	Mode       string        `json:"mode"`
	Firewalled bool          `json:"firewalled"`
	UptimeSec  float64       `json:"uptime_seconds"`
	Links      int           `json:"links"`
	Leaves     int           `json:"leaves"`
	Hosts      int           `json:"known_hosts"`
	Routing    routing.Stats `json:"routing"`
	Library    any           `json:"library,omitempty"`
}

func (c *Control) status(w http.ResponseWriter, r *http.Request) {
	s := c.s
	writeJSON(w, http.StatusOK, StatusJSON{
		ServentID: s.id.String(), Version: Version, Addr: s.Addr().String(), Mode: s.Mode().String(),
		Firewalled: s.firewalled(), UptimeSec: s.now().Sub(s.started).Seconds(),
		Links: s.LinkCount(LinkUltrapeer, LinkNormal), Leaves: s.LinkCount(LinkLeaf),
		Hosts: s.hosts.Len(), Routing: s.Stats(), Library: c.library(),
	})
}

func (c *Control) library() any {
	if c.extras.Library == nil {
		return nil
	}
	return c.extras.Library()
}

// LinkJSON is one entry of GET /api/v1/links.
type LinkJSON struct {
	ID         uint32    `json:"id"`
	Kind       string    `json:"kind"`
	Inbound    bool      `json:"inbound"`
	Remote     string    `json:"remote"`
	Listen     string    `json:"listen,omitempty"`
	ServentID  string    `json:"servent_id,omitempty"`
	UserAgent  string    `json:"user_agent,omitempty"`
	Since      time.Time `json:"since"`
	DeflateIn  bool      `json:"deflate_in"`
	DeflateOut bool      `json:"deflate_out"`
	Stats      LinkStats `json:"stats"`
}

func (c *Control) links(w http.ResponseWriter, r *http.Request) {
	links := c.s.Links()
	out := make([]LinkJSON, 0, len(links))
	for _, l := range links {
		j := LinkJSON{ID: uint32(l.ID), Kind: l.Kind.String(), Inbound: l.Inbound, Remote: l.Remote.String(),
			UserAgent: l.UserAgent, Since: l.Since, DeflateIn: l.DeflateIn, DeflateOut: l.DeflateOut, Stats: l.Stats()}
		if l.Listen.IsValid() {
			j.Listen = l.Listen.String()
		}
		if !l.PeerID.IsZero() {
			j.ServentID = l.PeerID.String()
		}
		out = append(out, j)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	writeJSON(w, http.StatusOK, out)
}

func (c *Control) shares(w http.ResponseWriter, r *http.Request) {
	if c.extras.Shares == nil {
		writeJSON(w, http.StatusOK, []any{})
		return
	}
	writeJSON(w, http.StatusOK, c.extras.Shares())
}

func (c *Control) downloads(w http.ResponseWriter, r *http.Request) {
	if c.extras.Downloads == nil {
		writeJSON(w, http.StatusOK, []any{})
		return
	}
	writeJSON(w, http.StatusOK, c.extras.Downloads())
}

func (c *Control) startDownload(w http.ResponseWriter, r *http.Request) {
	if c.extras.StartDownload == nil {
		writeJSON(w, http.StatusNotImplemented, apiError{"this servent has no download folder"})
		return
	}
	body, err := readBody(w, r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
		return
	}
	v, err := c.extras.StartDownload(body)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
		return
	}
	writeJSON(w, http.StatusAccepted, v)
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("cannot read the request body (at most 64 KiB): %w", err)
	}
	return b, nil
}

// SearchRequest is the body of POST /api/v1/searches.
type SearchRequest struct {
	Query      string  `json:"query"`
	URN        string  `json:"urn,omitempty"`
	Strategy   string  `json:"strategy,omitempty"` // flood (default), ring, walk, gossip
	TTL        int     `json:"ttl,omitempty"`
	Walkers    int     `json:"walkers,omitempty"`
	P          float64 `json:"p,omitempty"`
	TimeoutMS  int     `json:"timeout_ms,omitempty"` // default 30000
	MaxResults int     `json:"max_results,omitempty"`
}

// SearchJSON describes a search.
type SearchJSON struct {
	ID       string              `json:"id"`
	Query    string              `json:"query"`
	Strategy string              `json:"strategy"`
	Running  bool                `json:"running"`
	Stats    routing.SearchStats `json:"stats"`
	Hits     []HitJSON           `json:"hits,omitempty"`
}

// HitJSON is one search result.
type HitJSON struct {
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

// HitToJSON converts a routing hit.
func HitToJSON(h routing.Hit) HitJSON {
	j := HitJSON{Name: h.Name, Size: h.Size, Index: h.Index, Host: h.Host.String(), ServentID: h.ServentID.String(),
		Speed: h.Speed, Push: h.Push, Busy: h.Busy, Hops: h.Hops}
	if !h.URN.IsZero() {
		j.URN = h.URN.String()
	}
	return j
}

func (c *Control) startSearch(w http.ResponseWriter, r *http.Request) {
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
func (c *Control) StartSearch(req SearchRequest) (string, error) {
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
	search, done := c.s.StartSearch(q, st, req.MaxResults, timeout)
	id := search.ID.String()
	c.mu.Lock()
	c.searches[id] = &controlSearch{search: search, done: done}
	c.order = append(c.order, id)
	if len(c.order) > maxControlSearches {
		delete(c.searches, c.order[0])
		c.order = c.order[1:]
	}
	c.mu.Unlock()
	return id, nil
}

// BuildQuery makes the query a user asked for: words, or a urn:sha1 (or a
// magnet link with one), marked as a modern query that wants URNs.
func BuildQuery(words, urn string) (*protocol.Query, error) {
	var urns []protocol.SHA1
	if urn != "" {
		h, err := protocol.ParseURN(strings.TrimSpace(urn))
		if err != nil {
			return nil, fmt.Errorf("%v: give urn:sha1:<32 base32 characters>", err)
		}
		urns = append(urns, h)
	}
	words = strings.TrimSpace(words)
	if len(words) > 200 {
		return nil, errors.New("query longer than 200 characters: say less")
	}
	if words == "" && len(urns) == 0 {
		return nil, errors.New("empty query: give some words or a urn:sha1")
	}
	return protocol.NewQuery(words, protocol.QueryFlagMark|protocol.QueryFlagGGEPH, urns...), nil
}

func (c *Control) lookup(id string) *controlSearch {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.searches[id]
}

func (cs *controlSearch) json(withHits bool) SearchJSON {
	running := true
	select {
	case <-cs.done:
		running = false
	default:
	}
	text, _ := cs.search.Query.SearchString()
	j := SearchJSON{ID: cs.search.ID.String(), Query: text, Strategy: cs.search.Strategy, Running: running, Stats: cs.search.Stats()}
	if withHits {
		j.Hits = []HitJSON{}
		for _, h := range cs.search.Hits() {
			j.Hits = append(j.Hits, HitToJSON(h))
		}
	}
	return j
}

func (c *Control) listSearches(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	out := make([]SearchJSON, 0, len(c.order))
	for _, id := range c.order {
		out = append(out, c.searches[id].json(false))
	}
	c.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (c *Control) getSearch(w http.ResponseWriter, r *http.Request) {
	cs := c.lookup(r.PathValue("id"))
	if cs == nil {
		writeJSON(w, http.StatusNotFound, apiError{"no such search"})
		return
	}
	writeJSON(w, http.StatusOK, cs.json(true))
}

// streamResults writes the hits as newline-delimited JSON as they arrive,
// and ends when the search does.
func (c *Control) streamResults(w http.ResponseWriter, r *http.Request) {
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
			if enc.Encode(HitToJSON(hits[sent])) != nil {
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
				_ = enc.Encode(HitToJSON(h))
			}
			return
		case <-r.Context().Done():
			return
		}
	}
}

// ControlClient talks to a running servent's control API.
type ControlClient struct {
	Info ControlInfo
	HTTP *http.Client
}

// Do sends a request with the token and decodes a JSON answer into out.
func (cc *ControlClient) Do(ctx context.Context, method, path string, body any, out any) error {
	resp, err := cc.send(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

// send makes an authorised request and turns a non-2xx answer into an error
// carrying the API's message.
func (cc *ControlClient) send(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+cc.Info.Addr+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+cc.Info.Token)
	client := cc.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		var e apiError
		_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&e)
		return nil, fmt.Errorf("control API %s %s: %s: %s", method, path, resp.Status, e.Error)
	}
	return resp, nil
}

// StreamResults calls fn for each hit of search id as it arrives, until the
// search ends or ctx does.
func (cc *ControlClient) StreamResults(ctx context.Context, id string, fn func(HitJSON)) error {
	resp, err := cc.send(ctx, "GET", "/api/v1/searches/"+id+"/results", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var h HitJSON
		if err := dec.Decode(&h); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return nil
		}
		fn(h)
	}
}

// MagnetURN reads the urn:sha1 out of a magnet link (xt=urn:sha1:...).
func MagnetURN(link string) (string, error) {
	u, err := url.Parse(link)
	if err != nil || u.Scheme != "magnet" {
		return "", errors.New("not a magnet link: give magnet:?xt=urn:sha1:<base32>")
	}
	for _, xt := range u.Query()["xt"] {
		if h, err := protocol.ParseURN(xt); err == nil {
			return h.String(), nil
		}
	}
	return "", errors.New("the magnet link has no xt=urn:sha1:<base32>")
}
