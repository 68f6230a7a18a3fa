package control

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"gnutella/routing"
)

// GET /api/v1/events: what changes in the servent, as Server-Sent Events,
// for the browser UI. One goroutine (the hub) looks at the node a few times
// a second while someone listens, and sends each listener what changed:
//
//	link              {"state": "up"|"down", "link": LinkJSON}
//	hit               {"search_id": "…", "n": position in the search, "hit": Hit}
//	search            SearchJSON without hits, when it changes (and when it ends)
//	download          transfer.Status, when it changes
//	download_removed  {"id": "…"}
//	library           LibraryJSON, when the hashing or the files change
//	stats             StatsEvent, every second
//
// A new listener first gets the current state: every link as "up", every
// download, the library. Each listener has a bounded queue; one that does
// not keep up is dropped (its stream ends; EventSource reconnects and gets
// the state afresh), so a slow browser never makes the servent buffer
// without bound.

// eventTick is how often the hub looks at the node; stats go out every
// statsEvery ticks (once a second).
const (
	eventTick  = 250 * time.Millisecond
	statsEvery = 4
	// eventQueue is how many events a listener may have waiting.
	eventQueue = 1024
	// eventWriteTimeout bounds one write to a listener.
	eventWriteTimeout = 10 * time.Second
	// maxListeners bounds the event streams at once.
	maxListeners = 64
)

// StatsEvent is the "stats" event: the routing counters and the messages
// of the links now up, for a messages-per-second graph.
type StatsEvent struct {
	At         time.Time     `json:"at"`
	Routing    routing.Stats `json:"routing"`
	RxMessages uint64        `json:"rx_messages"` // over the links now up
	TxMessages uint64        `json:"tx_messages"`
	Links      []LinkJSON    `json:"links"`
}

type event struct {
	name string
	data []byte
}

type listener struct {
	ch   chan event
	gone chan struct{} // closed when the hub drops the listener
}

// hub sends the node's changes to the event listeners.
type hub struct {
	c    *Server
	kick chan struct{}
	quit chan struct{}
	done chan struct{}
	wg   sync.WaitGroup // the streaming handlers

	mu        sync.Mutex
	closed    bool
	listeners map[*listener]struct{}
	joining   []*listener

	// The state last sent; only the hub goroutine touches it.
	links     map[uint32]LinkJSON
	downloads map[string][]byte
	library   []byte
	searches  map[string]searchSeen
	ticks     int
}

type searchSeen struct {
	hits int
	json []byte
}

func newHub(c *Server) *hub {
	h := &hub{c: c, kick: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{}),
		listeners: map[*listener]struct{}{}, links: map[uint32]LinkJSON{}, downloads: map[string][]byte{},
		searches: map[string]searchSeen{}}
	go h.loop()
	return h
}

// close stops the hub and waits for it and for every stream.
func (h *hub) close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	h.mu.Unlock()
	close(h.quit)
	<-h.done
	h.wg.Wait()
}

// join adds a listener; it gets the current state at the hub's next look.
// nil when the hub is closed or has too many listeners.
func (h *hub) join() (*listener, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, fmt.Errorf("the servent is stopping")
	}
	if len(h.listeners)+len(h.joining) >= maxListeners {
		return nil, fmt.Errorf("%d event streams are open already: close a browser tab of this servent", maxListeners)
	}
	l := &listener{ch: make(chan event, eventQueue), gone: make(chan struct{})}
	h.joining = append(h.joining, l)
	h.wg.Add(1)
	select {
	case h.kick <- struct{}{}:
	default:
	}
	return l, nil
}

func (h *hub) leave(l *listener) {
	h.mu.Lock()
	delete(h.listeners, l)
	for i, j := range h.joining {
		if j == l {
			h.joining = append(h.joining[:i], h.joining[i+1:]...)
			break
		}
	}
	h.mu.Unlock()
	h.wg.Done()
}

func (h *hub) loop() {
	defer close(h.done)
	t := time.NewTicker(eventTick)
	defer t.Stop()
	for {
		select {
		case <-h.quit:
			return
		case <-h.kick:
		case <-t.C:
		}
		h.mu.Lock()
		idle := len(h.listeners) == 0 && len(h.joining) == 0
		h.mu.Unlock()
		if idle {
			continue
		}
		h.look()
	}
}

// look sends the listeners what changed since the last look, then the new
// listeners the whole state.
func (h *hub) look() {
	var out []event
	add := func(name string, v any) {
		b, err := json.Marshal(v)
		if err == nil {
			out = append(out, event{name, b})
		}
	}
	n := h.c.n

	// Links.
	now := map[uint32]LinkJSON{}
	list := h.c.linkList()
	for _, l := range list {
		now[l.ID] = l
		if _, ok := h.links[l.ID]; !ok {
			add("link", map[string]any{"state": "up", "link": l})
		}
	}
	for id, l := range h.links {
		if _, ok := now[id]; !ok {
			add("link", map[string]any{"state": "down", "link": l})
		}
	}
	h.links = now

	// Searches: new hits, and the search itself when it changes.
	h.c.mu.Lock()
	var ss []*search
	for _, id := range h.c.order {
		ss = append(ss, h.c.searches[id])
	}
	h.c.mu.Unlock()
	live := map[string]bool{}
	for _, s := range ss {
		id := s.search.ID.String()
		live[id] = true
		seen := h.searches[id]
		hits := s.search.Hits()
		for i := min(seen.hits, len(hits)); i < len(hits); i++ {
			add("hit", map[string]any{"search_id": id, "n": i, "hit": hits[i]})
		}
		seen.hits = len(hits)
		j, _ := json.Marshal(s.json(false))
		if !bytes.Equal(j, seen.json) {
			out = append(out, event{"search", j})
			seen.json = j
		}
		h.searches[id] = seen
	}
	for id := range h.searches {
		if !live[id] {
			delete(h.searches, id)
		}
	}

	// Downloads.
	if n.Downloads != nil {
		present := map[string]bool{}
		for _, st := range n.Downloads.List() {
			present[st.ID] = true
			j, _ := json.Marshal(st)
			if !bytes.Equal(j, h.downloads[st.ID]) {
				out = append(out, event{"download", j})
				h.downloads[st.ID] = j
			}
		}
		for id := range h.downloads {
			if !present[id] {
				add("download_removed", map[string]string{"id": id})
				delete(h.downloads, id)
			}
		}
	}

	// Library.
	if lib := h.c.library(); lib != nil {
		j, _ := json.Marshal(lib)
		if !bytes.Equal(j, h.library) {
			out = append(out, event{"library", j})
			h.library = j
		}
	}

	h.ticks++
	stats := h.ticks%statsEvery == 1
	var statsEv event
	if stats {
		se := StatsEvent{At: time.Now(), Routing: n.Stats(), Links: list}
		for _, l := range list {
			se.RxMessages += l.Stats.RxMessages
			se.TxMessages += l.Stats.TxMessages
		}
		b, _ := json.Marshal(se)
		statsEv = event{"stats", b}
		out = append(out, statsEv)
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	for l := range h.listeners {
		h.send(l, out)
	}
	for _, l := range h.joining {
		var snap []event
		for _, lj := range h.links {
			b, _ := json.Marshal(map[string]any{"state": "up", "link": lj})
			snap = append(snap, event{"link", b})
		}
		for _, j := range h.downloads {
			snap = append(snap, event{"download", j})
		}
		if h.library != nil {
			snap = append(snap, event{"library", h.library})
		}
		if !stats {
			// the graph starts at once rather than a second later
			se := StatsEvent{At: time.Now(), Routing: n.Stats(), Links: []LinkJSON{}}
			b, _ := json.Marshal(se)
			snap = append(snap, event{"stats", b})
		} else {
			snap = append(snap, statsEv)
		}
		snap = append(snap, event{"ready", []byte("{}")})
		h.listeners[l] = struct{}{}
		h.send(l, snap)
	}
	h.joining = h.joining[:0]
}

// send queues evs for l, or drops l when its queue is full. h.mu is held.
func (h *hub) send(l *listener, evs []event) {
	for _, ev := range evs {
		select {
		case l.ch <- ev:
		default:
			close(l.gone)
			delete(h.listeners, l)
			return
		}
	}
}

// streamEvents is GET /api/v1/events.
func (c *Server) streamEvents(w http.ResponseWriter, r *http.Request) {
	l, err := c.events.join()
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{err.Error()})
		return
	}
	defer c.events.leave(l)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	write := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(eventWriteTimeout))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write([]byte("retry: 2000\n\n")) {
		return
	}
	keepAlive := time.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	var buf bytes.Buffer
	for {
		select {
		case ev := <-l.ch:
			buf.Reset()
			fmt.Fprintf(&buf, "event: %s\ndata: %s\n\n", ev.name, ev.data)
			// more waiting: send them in the same write
			for more := true; more && buf.Len() < 64<<10; {
				select {
				case ev := <-l.ch:
					fmt.Fprintf(&buf, "event: %s\ndata: %s\n\n", ev.name, ev.data)
				default:
					more = false
				}
			}
			if !write(buf.Bytes()) {
				return
			}
		case <-keepAlive.C:
			if !write([]byte(": keep-alive\n\n")) {
				return
			}
		case <-l.gone:
			_ = write([]byte("event: dropped\ndata: {\"error\": \"this page did not keep up with the events: reconnecting\"}\n\n"))
			return
		case <-c.events.quit:
			return
		case <-r.Context().Done():
			return
		}
	}
}
