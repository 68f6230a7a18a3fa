// Package control is the control API of a running servent: JSON over HTTP on
// a loopback address, for the CLI and a future browser UI, with its server
// (Start), its client (Client) and the JSON forms of what it serves. It sits
// above servent: it drives a *servent.Node through its exported methods, and
// whoever runs a Node (the serve command, the testnet demo) starts it.
//
// Every request carries the token that the server writes into the node's
// data folder (control.json), as "Authorization: Bearer <token>".
// docs/control-api.md documents the API.
package control

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"gnutella/routing"
	"gnutella/servent"
)

// DefaultAddr is where the API listens by default: a free loopback port.
const DefaultAddr = "127.0.0.1:0"

// Server serves the control API of one node.
type Server struct {
	n       *servent.Node
	dataDir string // where control.json is ("" = none)
	token   string
	srv     *http.Server
	ln      net.Listener
	served  chan struct{}

	mu       sync.Mutex
	searches map[string]*search
	order    []string

	routes  []string      // the mux's patterns, for the OpenAPI test
	logins  sessions      // login.go
	events  *hub          // events.go
	testnet testnetSource // testnet.go
}

// Start listens on addr, which must be a loopback address (e.g.
// "127.0.0.1:0"), serves the API of n and, when n has a data folder, writes
// control.json there. Close stops it; stop it before the node.
func Start(n *servent.Node, addr string) (*Server, error) {
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
	c := &Server{n: n, dataDir: n.Config().DataDir, token: hex.EncodeToString(tok[:]), ln: ln,
		served: make(chan struct{}), searches: map[string]*search{}}
	c.logins = sessions{codes: map[string]time.Time{}, sessions: map[string]struct{}{}}
	mux := http.NewServeMux()
	handle := func(pattern string, h http.HandlerFunc) {
		c.routes = append(c.routes, pattern)
		mux.HandleFunc(pattern, h)
	}
	c.routeUI(handle) // ui.go
	handle("POST /api/v1/login", c.loginCode)
	handle("GET /api/v1/openapi.json", openAPI)
	handle("GET /api/v1/events", c.streamEvents)
	handle("POST /api/v1/shares/rescan", c.rescan)
	handle("GET /api/v1/testnet", c.testnetGraph)
	handle("GET /api/v1/status", c.status)
	handle("GET /api/v1/links", c.links)
	handle("GET /api/v1/udp", c.udp) // udp.go
	handle("GET /api/v1/shares", c.shares)
	handle("GET /api/v1/searches", c.listSearches)
	handle("POST /api/v1/searches", c.startSearch)
	handle("GET /api/v1/searches/{id}", c.getSearch)
	handle("GET /api/v1/searches/{id}/results", c.streamResults)
	handle("GET /api/v1/downloads", c.downloads)
	handle("POST /api/v1/downloads", c.startDownload)
	handle("GET /api/v1/downloads/{id}", c.getDownload)
	handle("DELETE /api/v1/downloads/{id}", c.removeDownload)
	handle("POST /api/v1/downloads/{id}/pause", c.pauseDownload)
	handle("POST /api/v1/downloads/{id}/resume", c.resumeDownload)
	handle("POST /api/v1/downloads/{id}/cancel", c.cancelDownload)
	handle("PUT /api/v1/downloads/{id}/priority", c.setPriority)
	handle("POST /api/v1/browse", c.browse) // browse.go
	profiles(handle)
	c.srv = &http.Server{Handler: withJSONErrors(c.auth(jsonErrors(mux))), ReadHeaderTimeout: 10 * time.Second}
	if c.dataDir != "" {
		info, _ := json.Marshal(Info{Addr: ln.Addr().String(), Token: c.token, PID: os.Getpid()})
		if err := os.WriteFile(filepath.Join(c.dataDir, "control.json"), info, 0o600); err != nil {
			ln.Close()
			return nil, fmt.Errorf("cannot write control.json: %w", err)
		}
	}
	c.events = newHub(c) // events.go
	go func() {
		defer close(c.served)
		_ = c.srv.Serve(ln)
	}()
	return c, nil
}

// Addr is where the API listens; Token is what requests must carry.
func (c *Server) Addr() string  { return c.ln.Addr().String() }
func (c *Server) Token() string { return c.token }

// Info is what a client needs to reach this server (what control.json holds).
func (c *Server) Info() Info { return Info{Addr: c.Addr(), Token: c.token, PID: os.Getpid()} }

// Close stops the API, waits for it and removes control.json.
func (c *Server) Close() error {
	c.events.close() // ends the event streams
	err := c.srv.Close()
	<-c.served
	if c.dataDir != "" {
		_ = os.Remove(filepath.Join(c.dataDir, "control.json"))
	}
	return err
}

// profiles serves Go's runtime profiles (heap, goroutines, CPU, ...) under
// /debug/pprof/ so a user can see where a running servent's memory and CPU
// go. They sit on the API's own mux, behind its token: importing
// net/http/pprof also registers them on http.DefaultServeMux, which nothing
// in this program serves.
func profiles(handle func(string, http.HandlerFunc)) {
	handle("GET /debug/pprof/", pprof.Index) // /debug/pprof/heap, goroutine, allocs, ...
	handle("GET /debug/pprof/cmdline", pprof.Cmdline)
	handle("GET /debug/pprof/profile", pprof.Profile)
	handle("GET /debug/pprof/symbol", pprof.Symbol)
	handle("POST /debug/pprof/symbol", pprof.Symbol)
	handle("GET /debug/pprof/trace", pprof.Trace)
}

// jsonErrors makes the mux's own answers, 404 for a path the API does not
// have and 405 for a method a path does not take, JSON like every other
// error of the API.
func jsonErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		rec := &recorder{header: http.Header{}}
		h.ServeHTTP(rec, r)
		switch rec.code {
		case http.StatusNotFound:
			writeJSON(w, rec.code, apiError{fmt.Sprintf("no %s in this API: docs/control-api.md lists what there is", r.URL.Path)})
		case http.StatusMethodNotAllowed:
			allow := rec.header.Get("Allow")
			w.Header().Set("Allow", allow)
			writeJSON(w, rec.code, apiError{fmt.Sprintf("%s %s is not in this API; it takes %s", r.Method, r.URL.Path, allow)})
		default: // a redirect to the clean path, say
			mux.ServeHTTP(w, r)
		}
	})
}

// recorder keeps the status and headers of the mux's own answers.
type recorder struct {
	header http.Header
	code   int
}

func (rc *recorder) Header() http.Header         { return rc.header }
func (rc *recorder) Write(b []byte) (int, error) { return len(b), nil }
func (rc *recorder) WriteHeader(code int)        { rc.code = code }

type apiError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("cannot read the request body (at most 64 KiB): %w", err)
	}
	return b, nil
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
	Library    *LibraryJSON  `json:"library,omitempty"`
}

func (c *Server) status(w http.ResponseWriter, r *http.Request) {
	n := c.n
	writeJSON(w, http.StatusOK, StatusJSON{
		ServentID: n.ID().String(), Version: servent.Version, Addr: n.Addr().String(), Mode: n.Mode().String(),
		Firewalled: n.Firewalled(), UptimeSec: n.Uptime().Seconds(),
		Links: n.LinkCount(servent.LinkUltrapeer, servent.LinkNormal), Leaves: n.LinkCount(servent.LinkLeaf),
		Hosts: n.Hosts().Len(), Routing: n.Stats(), Library: c.library(),
	})
}

// LinkJSON is one entry of GET /api/v1/links.
type LinkJSON struct {
	ID         uint32            `json:"id"`
	Kind       string            `json:"kind"`
	Inbound    bool              `json:"inbound"`
	Remote     string            `json:"remote"`
	Listen     string            `json:"listen,omitempty"`
	ServentID  string            `json:"servent_id,omitempty"`
	UserAgent  string            `json:"user_agent,omitempty"`
	Since      time.Time         `json:"since"`
	DeflateIn  bool              `json:"deflate_in"`
	DeflateOut bool              `json:"deflate_out"`
	TLS        bool              `json:"tls"`
	Stats      servent.LinkStats `json:"stats"`
}

func (c *Server) links(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, c.linkList())
}

// linkList is every link, by ID.
func (c *Server) linkList() []LinkJSON {
	links := c.n.Links()
	out := make([]LinkJSON, 0, len(links))
	for _, l := range links {
		j := LinkJSON{ID: uint32(l.ID), Kind: l.Kind.String(), Inbound: l.Inbound, Remote: l.Remote.String(),
			UserAgent: l.UserAgent, Since: l.Since, DeflateIn: l.DeflateIn, DeflateOut: l.DeflateOut, TLS: l.TLS, Stats: l.Stats()}
		if l.Listen.IsValid() {
			j.Listen = l.Listen.String()
		}
		if !l.PeerID.IsZero() {
			j.ServentID = l.PeerID.String()
		}
		out = append(out, j)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
