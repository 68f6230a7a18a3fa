package control

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"gnutella/servent"
)

// sse reads one event stream.
type sse struct {
	t    *testing.T
	resp *http.Response
	sc   *bufio.Scanner
}

func openEvents(t *testing.T, ctl *Server, client *http.Client) *sse {
	t.Helper()
	req := newReq(t, "GET", "http://"+ctl.Addr()+"/api/v1/events", map[string]string{"Authorization": "Bearer " + ctl.Token()})
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	return &sse{t: t, resp: resp, sc: bufio.NewScanner(resp.Body)}
}

// next returns the next event's name and data; ok false at the stream's end.
func (s *sse) next() (name string, data []byte, ok bool) {
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			name = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			data = []byte(line[len("data: "):])
		case line == "" && name != "":
			return name, data, true
		}
	}
	return "", nil, false
}

// until reads events until one named name for which match is true.
func (s *sse) until(name string, match func([]byte) bool) []byte {
	s.t.Helper()
	for {
		n, d, ok := s.next()
		if !ok {
			s.t.Fatalf("the event stream ended before a %q event", name)
		}
		if n == name && (match == nil || match(d)) {
			return d
		}
	}
}

// The event stream says when links come up and go down, and ends when the
// server closes, leaving no goroutine behind.
func TestEventsLinksUpDownAndEndAtClose(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	a, err := newTestNode(testNodeConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	b, err := newTestNode(testNodeConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	ctl, err := Start(a, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	ev := openEvents(t, ctl, &http.Client{Transport: tr})
	defer ev.resp.Body.Close()
	ev.until("ready", nil)
	l, err := a.Connect(ctxT(t), b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	linkEvent := func(state string) func([]byte) bool {
		return func(d []byte) bool {
			var e struct {
				State string   `json:"state"`
				Link  LinkJSON `json:"link"`
			}
			return json.Unmarshal(d, &e) == nil && e.State == state && e.Link.ID == uint32(l.ID) && e.Link.Remote == b.Addr().String()
		}
	}
	ev.until("link", linkEvent("up"))
	ev.until("stats", func(d []byte) bool {
		var s StatsEvent
		return json.Unmarshal(d, &s) == nil && len(s.Links) == 1
	})
	l.Bye(200, "test done")
	ev.until("link", linkEvent("down"))
	if err := ctl.Close(); err != nil {
		t.Fatal(err)
	}
	for {
		if _, _, ok := ev.next(); !ok {
			break
		}
	}
}

// A listener whose queue is full is dropped, not buffered for.
func TestEventsDropSlowListener(t *testing.T) {
	h := &hub{listeners: map[*listener]struct{}{}}
	l := &listener{ch: make(chan event, 2), gone: make(chan struct{})}
	h.listeners[l] = struct{}{}
	h.send(l, []event{{"a", nil}, {"b", nil}})
	select {
	case <-l.gone:
		t.Fatal("dropped with room left")
	default:
	}
	h.send(l, []event{{"c", nil}})
	select {
	case <-l.gone:
	default:
		t.Fatal("a listener with a full queue was kept")
	}
	if _, ok := h.listeners[l]; ok || len(l.ch) != 2 {
		t.Fatalf("listeners %v, queue %d", h.listeners, len(l.ch))
	}
}

func newTestNode(c servent.NodeConfig) (*servent.Node, error) {
	n, err := servent.NewNode(c)
	if err != nil {
		return nil, err
	}
	return n, n.Start()
}
