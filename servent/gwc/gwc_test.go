package gwc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"gnutella/servent/hostcache"
)

// gwcClock is a settable clock for the server.
var gwcT0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func gwcAP(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// gwcPub returns the i-th of many public test addresses.
func gwcPub(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{8, byte(i >> 16), byte(i >> 8), byte(i)}), 6346)
}

type gwcClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *gwcClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *gwcClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// gwcNoLeaks fails the test if goroutines it started (HTTP clients and
// servers among them) are still running once every other cleanup (closing
// servers) has run. Call it first.
func gwcNoLeaks(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

func gwcServe(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts
}

// gwcFetch does a plain GET and returns status and body.
func gwcFetch(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := gwcDefaultHTTP.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// gwcLines splits a server reply into lines, checking CRLF endings.
func gwcLines(t *testing.T, body string) []string {
	t.Helper()
	if body == "" {
		t.Fatal("empty reply (the spec says a reply always has a line)")
	}
	if !strings.HasSuffix(body, "\r\n") {
		t.Errorf("reply %q does not end with CRLF", body)
	}
	return strings.Split(strings.TrimSuffix(body, "\r\n"), "\r\n")
}

// serve runs one request through the handler without a network.
func gwcServeRecorder(s *Server, query string) (int, string) {
	r := httptest.NewRequest(http.MethodGet, "/gwc?"+query, nil)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

func TestGWebCacheServerUpdateThenGet(t *testing.T) {
	gwcNoLeaks(t)
	clk := &gwcClock{now: gwcT0}
	s := NewServer(clk.Now)
	s.AllowLoopback = true
	ts := gwcServe(t, s)

	code, body := gwcFetch(t, ts.URL+"/?update=1&ip=127.0.0.1%3A6346&net=gnutella&client=TEST&version=1")
	if code != 200 || !slices.Equal(gwcLines(t, body), []string{"I|update|OK"}) {
		t.Fatalf("update: %d %q", code, body)
	}
	if s.Len() != 1 {
		t.Fatalf("Len = %d, want 1", s.Len())
	}
	clk.Advance(90 * time.Second)
	code, body = gwcFetch(t, ts.URL+"/?get=1&net=gnutella&client=TEST&version=1")
	if code != 200 || !slices.Equal(gwcLines(t, body), []string{"H|127.0.0.1:6346|90"}) {
		t.Fatalf("get: %d %q", code, body)
	}
	// Update, get and ping combined; a re-submission refreshes the age.
	code, body = gwcFetch(t, ts.URL+"/?update=1&ip=127.0.0.1:6346&get=1&ping=1&net=gnutella")
	want := []string{"I|pong|" + s.Name + "|gnutella", "I|update|OK", "H|127.0.0.1:6346|0"}
	if code != 200 || !slices.Equal(gwcLines(t, body), want) {
		t.Fatalf("combined: %d %q, want %q", code, body, want)
	}
	// An empty cache answers I|nothing.
	empty := gwcServe(t, NewServer(clk.Now))
	if _, body := gwcFetch(t, empty.URL+"/?get=1&net=gnutella"); body != "I|nothing\r\n" {
		t.Errorf("empty cache get = %q, want I|nothing", body)
	}
}

func TestGWebCacheServerRejectsBadIP(t *testing.T) {
	s := NewServer(func() time.Time { return gwcT0 })
	s.AllowThirdParty = true // the recorder's requests come from 192.0.2.1
	for _, ip := range []string{
		"1.2.3.4", "1.2.3.4:0", "1.2.3.4:65536", "1.2.3.4:-1", "001.2.3.4:6346", "junk", "",
		"0.0.0.0:6346", "224.0.0.1:6346", "255.255.255.255:6346", "127.0.0.1:6346", "10.1.2.3:6346",
		"1.2.3.4:6346|H|5.6.7.8:1", "[::1]:6346",
	} {
		code, body := gwcServeRecorder(s, "update=1&net=gnutella&ip="+url.QueryEscape(ip))
		if code != 200 || !strings.HasPrefix(body, "I|update|WARNING|Rejected IP|") {
			t.Errorf("ip=%q: %d %q, want I|update|WARNING|Rejected IP|...", ip, code, body)
		}
	}
	if s.Len() != 0 {
		t.Errorf("Len = %d after bad updates", s.Len())
	}
	// The policy opens up for testnets.
	s.AllowLoopback, s.AllowPrivate = true, true
	for _, ip := range []string{"127.0.0.1:6346", "10.1.2.3:6346"} {
		if _, body := gwcServeRecorder(s, "update=1&ip="+ip); body != "I|update|OK\r\n" {
			t.Errorf("ip=%s with loopback/private allowed: %q", ip, body)
		}
	}

	// By default the submitted IP must be the requester's.
	s2 := NewServer(nil)
	_, body := gwcServeRecorder(s2, "update=1&ip=8.8.8.8:6346")
	if body != "I|update|WARNING|Rejected IP|not the address this request came from\r\n" {
		t.Errorf("third-party update: %q", body)
	}
	_, body = gwcServeRecorder(s2, "update=1&ip=192.0.2.1:6346") // the recorder's own address
	if !strings.Contains(body, "Rejected IP") {                  // ... but it is a documentation address
		t.Errorf("TEST-NET address accepted without AllowPrivate: %q", body)
	}
	s2.AllowPrivate = true
	if _, body = gwcServeRecorder(s2, "update=1&ip=192.0.2.1:6346"); body != "I|update|OK\r\n" {
		t.Errorf("own address: %q", body)
	}
}

func TestGWebCacheServerExpiry(t *testing.T) {
	clk := &gwcClock{now: gwcT0}
	s := NewServer(clk.Now)
	s.AllowThirdParty = true
	gwcServeRecorder(s, "update=1&ip=8.8.8.8:6346&url=http://cache.example.com/gwc.php")
	clk.Advance(59 * time.Minute)
	if s.Len() != 1 {
		t.Fatalf("Len = %d after 59 min, want 1", s.Len())
	}
	_, body := gwcServeRecorder(s, "get=1")
	if body != "H|8.8.8.8:6346|3540\r\nU|http://cache.example.com/gwc.php|3540\r\n" {
		t.Errorf("get after 59 min = %q", body)
	}
	clk.Advance(time.Minute)
	if s.Len() != 0 {
		t.Fatalf("Len = %d after an hour, want 0", s.Len())
	}
	if _, body = gwcServeRecorder(s, "get=1"); body != "U|http://cache.example.com/gwc.php|3600\r\n" {
		t.Errorf("get after an hour = %q (the host should be gone, the URL kept)", body)
	}
	clk.Advance(23 * time.Hour)
	if _, body = gwcServeRecorder(s, "get=1"); body != "I|nothing\r\n" {
		t.Errorf("get after a day = %q", body)
	}
}

func TestGWebCacheServerBounds(t *testing.T) {
	clk := &gwcClock{now: gwcT0}
	s := NewServer(clk.Now)
	s.AllowThirdParty = true
	for i := range 1100 {
		clk.Advance(time.Second)
		if _, body := gwcServeRecorder(s, "update=1&ip="+gwcPub(i).String()); body != "I|update|OK\r\n" {
			t.Fatalf("update %d: %q", i, body)
		}
	}
	if s.Len() != 1000 {
		t.Fatalf("Len = %d, want 1000", s.Len())
	}
	for i := range 150 {
		clk.Advance(time.Second)
		gwcServeRecorder(s, "update=1&url="+url.QueryEscape(fmt.Sprintf("http://c%d.example.com/", i)))
	}
	s.mu.Lock()
	nurls := len(s.urls)
	_, oldHost := s.hosts[gwcPub(99)]
	_, newHost := s.hosts[gwcPub(100)]
	s.mu.Unlock()
	if nurls != 100 {
		t.Errorf("%d URLs kept, want 100", nurls)
	}
	if oldHost || !newHost {
		t.Errorf("the oldest hosts should be evicted first")
	}
	_, body := gwcServeRecorder(s, "get=1&net=gnutella")
	lines := gwcLines(t, body)
	var hs, us []string
	for _, l := range lines {
		switch l[0] {
		case 'H':
			hs = append(hs, l)
		case 'U':
			us = append(us, l)
		}
	}
	if len(hs) != 20 || len(us) != 10 || len(lines) != 30 {
		t.Fatalf("get returned %d H and %d U lines (%d in all), want 20 and 10", len(hs), len(us), len(lines))
	}
	// Most recent first: host 1099 was updated 150 s before the get.
	if hs[0] != "H|"+gwcPub(1099).String()+"|150" || hs[19] != "H|"+gwcPub(1080).String()+"|169" {
		t.Errorf("H lines not most recent first: %q ... %q", hs[0], hs[19])
	}
	if us[0] != "U|http://c149.example.com|0" {
		t.Errorf("first U line = %q", us[0])
	}
}

func TestGWebCacheServerRequests(t *testing.T) {
	gwcNoLeaks(t)
	clk := &gwcClock{now: gwcT0}
	s := NewServer(clk.Now)
	s.AllowLoopback = true
	s.MinUpdateInterval = time.Hour
	ts := gwcServe(t, s)

	cases := []struct {
		query string
		code  int
		want  string // whole body, or prefix when it ends with "*"
	}{
		{"ping=1", 200, "I|pong|" + s.Name + "|gnutella\r\n"},
		{"ping=1&net=gnutella2", 200, "I|pong|" + s.Name + "|gnutella\r\nI|net-not-supported\r\n"},
		{"get=1&net=gnutella2", 200, "I|net-not-supported\r\n"},
		{"update=1&ip=127.0.0.1:6346&net=mute", 200, "I|net-not-supported\r\n"},
		{"get=1&net=GNUTELLA", 200, "I|nothing\r\n"},
		{"GET=1", 200, "I|nothing\r\n"},
		{"update=1", 200, "I|update|WARNING|Nothing to update|send ip=IP:PORT and/or url=URL\r\n"},
		{"update=1&url=ftp://example.com/", 200, "I|update|WARNING|Rejected URL|*"},
		{"update=1&ip=127.0.0.1:6346", 200, "I|update|OK\r\n"},
		{"update=1&ip=127.0.0.1:6346", 200, "I|update|WARNING|You came back too early\r\n"},
		{"update=1&ip=127.0.0.1:6347&url=http://gwc.example.net/", 200, "I|update|OK\r\n"},
		{"update=1&ip=127.0.0.1:6348&url=gopher://x", 200, "I|update|OK\r\nI|update|WARNING|Rejected URL|*"},
		// Version 1, as gtk-gnutella sends.
		{"hostfile=1&client=GTKG&version=1.2.3", 200, "127.0.0.1:6346\r\n127.0.0.1:6347\r\n127.0.0.1:6348\r\n"},
		{"urlfile=1&client=GTKG", 200, "http://gwc.example.net\r\n"},
		{"ping=1&hostfile=1", 200, "PONG " + s.Name + "\r\n127.0.0.1:6346\r\n*"},
		{"ip=127.0.0.1:6349&client=GTKG", 200, "OK\r\n"},
		{"ip=127.0.0.1:0&client=GTKG", 200, "WARNING: Rejected IP: port 0\r\n"},
		{"hostfile=1&net=gnutella2", 200, "ERROR: Network not supported\r\n"},
		// Not GWebCache requests.
		{"", 400, "*"},
		{"foo=1", 400, "unknown GWebCache request*"},
		{"get=%zz", 400, "malformed query*"},
		{"get=1&pad=" + strings.Repeat("x", 5000), 400, "request too long*"},
	}
	for _, c := range cases {
		code, body := gwcFetch(t, ts.URL+"/?"+c.query)
		ok := code == c.code
		if p, prefix := strings.CutSuffix(c.want, "*"); prefix {
			ok = ok && strings.HasPrefix(body, p)
		} else {
			ok = ok && body == c.want
		}
		if !ok {
			t.Errorf("?%.60s: %d %q, want %d %q", c.query, code, body, c.code, c.want)
		}
	}
	resp, err := gwcDefaultHTTP.Post(ts.URL+"/?get=1", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", resp.StatusCode)
	}
	resp, err = gwcDefaultHTTP.Get(ts.URL + "/?ping=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Remote-IP") != "127.0.0.1" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("headers: X-Remote-IP %q, Content-Type %q", resp.Header.Get("X-Remote-IP"), resp.Header.Get("Content-Type"))
	}
}

func TestGWebCacheClientEndToEnd(t *testing.T) {
	gwcNoLeaks(t)
	clk := &gwcClock{now: gwcT0}
	s := NewServer(clk.Now)
	s.AllowLoopback = true
	var seen atomic.Value
	ts := gwcServe(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.URL.Query().Encode() + " UA=" + r.UserAgent())
		s.ServeHTTP(w, r)
	}))
	ctx := context.Background()
	c := &Client{Client: "GNUT", Version: "9.9"}

	if err := c.Update(ctx, ts.URL+"/gwc.php", gwcAP("127.0.0.1:6346")); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if got := seen.Load().(string); got != "client=GNUT&ip=127.0.0.1%3A6346&net=gnutella&update=1&version=9.9 UA=gnutella/9.9" {
		t.Errorf("request = %s", got)
	}
	clk.Advance(time.Second)
	if err := c.UpdateWithURL(ctx, ts.URL, gwcAP("127.0.0.1:6347"), "HTTP://Cache.Example.COM:80/gwc/index.php"); err != nil {
		t.Fatalf("UpdateWithURL: %v", err)
	}
	hosts, caches, err := c.Get(ctx, ts.URL+"/gwc.php?existing=param")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got := seen.Load().(string); !strings.Contains(got, "existing=param") || !strings.Contains(got, "get=1") {
		t.Errorf("the cache URL's own parameters should be kept: %s", got)
	}
	if !slices.Equal(hosts, []netip.AddrPort{gwcAP("127.0.0.1:6347"), gwcAP("127.0.0.1:6346")}) {
		t.Errorf("hosts = %v", hosts)
	}
	if !slices.Equal(caches, []string{"http://cache.example.com/gwc"}) {
		t.Errorf("caches = %v", caches)
	}

	// The hosts feed a host cache.
	hc := hostcache.New(10)
	hc.AllowLoopback = true
	for _, h := range hosts {
		hc.Add(h, true, hostcache.SourceGWebCache, clk.Now())
	}
	if hc.Len() != 2 {
		t.Errorf("host cache Len = %d", hc.Len())
	}

	// A refused address is a warning: keep the cache, fix the address.
	err = c.Update(ctx, ts.URL, gwcAP("8.8.8.8:6346"))
	var ge *Error
	if !errors.As(err, &ge) || ge.Drop || ge.Accepted || !strings.HasPrefix(ge.Warning, "Rejected IP") ||
		!strings.Contains(ge.Hint, "address peers reach us at") {
		t.Errorf("third-party update: %#v", err)
	}
	// Coming back too early.
	s2 := NewServer(clk.Now)
	s2.AllowLoopback = true
	s2.MinUpdateInterval = time.Hour
	ts2 := gwcServe(t, s2)
	if err := c.Update(ctx, ts2.URL, gwcAP("127.0.0.1:6350")); err != nil {
		t.Fatal(err)
	}
	err = c.Update(ctx, ts2.URL, gwcAP("127.0.0.1:6350"))
	if !errors.As(err, &ge) || ge.Drop || ge.Warning != "You came back too early" || !strings.Contains(ge.Hint, "hour") {
		t.Errorf("early update: %v", err)
	}
	// A URL rejected along with an accepted address.
	err = c.UpdateWithURL(ctx, ts.URL, gwcAP("127.0.0.1:6351"), "http://[::1]:99999/")
	if err == nil || !strings.Contains(err.Error(), "cache URL") {
		t.Errorf("bad URL to submit should be refused by the client: %v", err)
	}
}

func TestGWebCacheClientArguments(t *testing.T) {
	ctx := context.Background()
	if _, _, err := (&Client{Client: "GNUTELLA"}).Get(ctx, "http://127.0.0.1:1/"); err == nil ||
		!strings.Contains(err.Error(), "4-letter") {
		t.Errorf("bad vendor code: %v", err)
	}
	c := &Client{}
	if err := c.UpdateWithURL(ctx, "http://127.0.0.1:1/", netip.AddrPort{}, ""); err == nil {
		t.Error("an update with nothing to send should fail")
	}
	if err := c.Update(ctx, "http://127.0.0.1:1/", gwcAP("0.0.0.0:6346")); err == nil ||
		!strings.Contains(err.Error(), "not dialable") {
		t.Errorf("unspecified self: %v", err)
	}
	var ge *Error
	_, _, err := c.Get(ctx, "ftp://example.com/")
	if !errors.As(err, &ge) || !ge.Drop {
		t.Errorf("ftp URL: %v", err)
	}
}

func TestGWebCacheClientBadServers(t *testing.T) {
	gwcNoLeaks(t)
	ctx := context.Background()
	c := &Client{Client: "GNUT"}
	reply := func(code int, body string) string {
		ts := gwcServe(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(code)
			io.WriteString(w, body)
		}))
		return ts.URL
	}
	dropCases := []struct {
		name, url, reason string
	}{
		{"junk", reply(200, "<html><body>It works!</body></html>\n"), "not a GWebCache reply"},
		{"empty", reply(200, ""), "not a GWebCache reply"},
		{"only newlines", reply(200, "\r\n\n\r"), "not a GWebCache reply"},
		{"ERROR", reply(200, "ERROR: Client rejected\n"), "ERROR: Client rejected"},
		{"500", reply(500, "H|1.2.3.4:6346|1\n"), "HTTP 500"},
		{"404", reply(404, "not found"), "HTTP 404"},
	}
	for _, dc := range dropCases {
		hosts, caches, err := c.Get(ctx, dc.url)
		var ge *Error
		if !errors.As(err, &ge) || !ge.Drop || !strings.Contains(err.Error(), dc.reason) ||
			!strings.Contains(err.Error(), "forget this cache") || hosts != nil || caches != nil {
			t.Errorf("%s: %v, %v, %v; want a Drop error mentioning %q", dc.name, hosts, caches, err, dc.reason)
		}
	}

	// Junk among good lines is skipped; all line ends are understood.
	mixed := reply(200, "<junk>\rH|1.2.3.4:6346|10\rH|bad|1\r\nU|ftp://x|1\nI|whatever\nI|blah||bar\n"+
		"H|192.168.0.1:123|321||foo\nU|http://gcache.com|321|xyz|\r\nH|1.2.3.4:6346|11\n"+
		strings.Repeat("H", 5000)+"\nZ|future|extension\n5.6.7.8:6346\nhttp://v1.example.com/\n")
	hosts, caches, err := c.Get(ctx, mixed)
	if err != nil {
		t.Fatalf("mixed reply: %v", err)
	}
	if !slices.Equal(hosts, []netip.AddrPort{gwcAP("1.2.3.4:6346"), gwcAP("192.168.0.1:123"), gwcAP("5.6.7.8:6346")}) {
		t.Errorf("hosts = %v", hosts)
	}
	if !slices.Equal(caches, []string{"http://gcache.com", "http://v1.example.com"}) {
		t.Errorf("caches = %v", caches)
	}

	// A cache for another network may redirect to others.
	other := reply(200, "I|net-not-supported\nU|http://g1.example.com/|5\n")
	_, caches, err = c.Get(ctx, other)
	if !errors.Is(err, ErrNetNotSupported) || !slices.Equal(caches, []string{"http://g1.example.com"}) {
		t.Errorf("net-not-supported: %v, %v", caches, err)
	}

	// Update replies.
	for _, uc := range []struct {
		body string
		ok   bool
		drop bool
	}{
		{"I|update|OK\n", true, false},
		{"OK\r\n", true, false},     // version 1
		{"I|pong|x\n", false, true}, // no OK
		{"I|update|OK|WARNING|Rejected URL\n", false, false},
		{"WARNING: You came back too early\n", false, false},
		{"ERROR\n", false, true},
	} {
		err := c.Update(ctx, reply(200, uc.body), gwcAP("8.8.8.8:6346"))
		var ge *Error
		switch {
		case uc.ok && err != nil:
			t.Errorf("update reply %q: %v", uc.body, err)
		case !uc.ok && (!errors.As(err, &ge) || ge.Drop != uc.drop):
			t.Errorf("update reply %q: %v, want drop=%v", uc.body, err, uc.drop)
		}
	}

	// Redirects are followed (a few).
	target := reply(200, "H|9.9.9.9:6346|1\n")
	redir := gwcServe(t, http.RedirectHandler(target, http.StatusFound))
	if hosts, _, err := c.Get(ctx, redir.URL); err != nil || len(hosts) != 1 {
		t.Errorf("redirected get: %v, %v", hosts, err)
	}
}

func TestGWebCacheClientHugeReply(t *testing.T) {
	gwcNoLeaks(t)
	line := "H|8.8.8.8:6346|1\n"
	ts := gwcServe(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(10<<20))
		chunk := []byte(strings.Repeat("U|http://junk.example.com/"+strings.Repeat("x", 300)+"|1\n", 100))
		w.Write([]byte(line))
		for n := len(line); n < 10<<20; n += len(chunk) {
			if _, err := w.Write(chunk[:min(len(chunk), 10<<20-n)]); err != nil {
				return // the client hung up after 64 KiB, as it should
			}
		}
	}))
	hosts, caches, err := (&Client{}).Get(context.Background(), ts.URL)
	if err != nil {
		t.Fatalf("10 MB reply: %v", err)
	}
	if len(hosts) != 1 || len(caches) != 0 {
		t.Errorf("hosts %v, %d caches (the junk URL lines are too long to be cache URLs)", hosts, len(caches))
	}

	// Exactly how much is read, with a counting body.
	var read atomic.Int64
	hc := &http.Client{Transport: gwcRoundTrip(func(r *http.Request) (*http.Response, error) {
		return &http.Response{
			StatusCode: 200, Status: "200 OK", Header: http.Header{}, Request: r,
			Body: io.NopCloser(&gwcCountingReader{n: &read, left: 10 << 20, line: []byte(line)}),
		}, nil
	})}
	hosts, _, err = (&Client{HTTP: hc}).Get(context.Background(), "http://gwc.example.com/")
	if err != nil || len(hosts) != 1 {
		t.Fatalf("counting reply: %v, %v", hosts, err)
	}
	if n := read.Load(); n > gwcMaxReply+1 {
		t.Errorf("read %d bytes of a 10 MB reply, want at most %d", n, gwcMaxReply+1)
	}
}

type gwcRoundTrip func(*http.Request) (*http.Response, error)

func (f gwcRoundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// gwcCountingReader yields left bytes of line repeated, counting what is read.
type gwcCountingReader struct {
	n    *atomic.Int64
	left int
	line []byte
	off  int
}

func (c *gwcCountingReader) Read(p []byte) (int, error) {
	if c.left == 0 {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && c.left > 0 {
		p[n] = c.line[c.off]
		c.off = (c.off + 1) % len(c.line)
		n++
		c.left--
	}
	c.n.Add(int64(n))
	return n, nil
}

func TestGWebCacheClientDown(t *testing.T) {
	gwcNoLeaks(t)
	ts := httptest.NewServer(http.NotFoundHandler())
	u := ts.URL
	ts.Close()
	_, _, err := (&Client{}).Get(context.Background(), u)
	var ge *Error
	if !errors.As(err, &ge) || !ge.Drop || !strings.Contains(err.Error(), "cache unreachable") ||
		!strings.Contains(err.Error(), "forget this cache") {
		t.Errorf("down cache: %v", err)
	}
	err = (&Client{}).Update(context.Background(), u, gwcAP("8.8.8.8:6346"))
	if !errors.As(err, &ge) || !ge.Drop {
		t.Errorf("update of a down cache: %v", err)
	}

	// Our own cancellation is not the cache's fault.
	block := gwcServe(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, _, err = (&Client{}).Get(ctx, block.URL)
	if !errors.As(err, &ge) || ge.Drop || !errors.Is(err, context.Canceled) {
		t.Errorf("canceled get: %v", err)
	}
	// A deadline is: the cache is too slow.
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, _, err = (&Client{}).Get(ctx, block.URL)
	if !errors.As(err, &ge) || !ge.Drop {
		t.Errorf("timed-out get: %v", err)
	}
}

func TestNormalizeCacheURL(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"http://www.zero-g.net/gcache/index.cgi", "http://www.zero-g.net/gcache"},
		{"http://zero-g.net/gcache/", "http://zero-g.net/gcache"},
		{"HTTP://Example.COM:80/a%7Eb/gwc.php", "http://example.com/a~b/gwc.php"},
		{"http://example.com", "http://example.com"},
		{"http://example.com/", "http://example.com"},
		{"https://example.com:8443/x/", "https://example.com:8443/x"},
		{"https://example.com:443/x/INDEX.PHP", "https://example.com/x"},
		{"http://127.0.0.1:8080/", "http://127.0.0.1:8080"},
		{"http://[::1]:8080/gwc", "http://[::1]:8080/gwc"},
		{"http://example.com/gwc.php?net=gnutella#frag", "http://example.com/gwc.php?net=gnutella"},
		{"  http://example.com/gwc  ", "http://example.com/gwc"},
		{"ftp://example.com/", ""},
		{"http:///path", ""},
		{"http://user:pw@example.com/", ""},
		{"http://example.com:0/", ""},
		{"http://example.com:99999/", ""},
		{"mailto:x@example.com", ""},
		{"", ""},
		{"http://example.com/" + strings.Repeat("a", 300), ""},
		{"http://exa mple.com/", ""},
	} {
		got, err := normalizeCacheURL(c.in)
		if c.want == "" {
			if err == nil {
				t.Errorf("normalizeCacheURL(%q) = %q, want an error", c.in, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("normalizeCacheURL(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestParseGWCReplySpecExamples(t *testing.T) {
	// The examples of the version 2 specification.
	rep := parseGWCReply([]byte("H|127.0.0.2:321|400\r\nH|127.0.0.1:123|4456\r\n"+
		"U|http://www.server2.com/gcache/gcache.cgi|400\r\nU|http://www.server.net/gcache/gcache.cgi|4456\r\n"), false)
	if len(rep.hosts) != 2 || len(rep.caches) != 2 || rep.valid != 4 || rep.junk != 0 {
		t.Errorf("get example: %+v", rep)
	}
	rep = parseGWCReply([]byte("I|pong|GWebCache 0.9.0b\nI|update|WARNING|You came back too early\n"), false)
	if rep.pong != "GWebCache 0.9.0b" || rep.updateOK || !slices.Equal(rep.warnings, []string{"You came back too early"}) {
		t.Errorf("update example: %+v", rep)
	}
	// Truncated replies lose their partial last line.
	rep = parseGWCReply([]byte("H|1.2.3.4:6346|1\nH|5.6.7.8:63"), true)
	if len(rep.hosts) != 1 {
		t.Errorf("truncated: %v", rep.hosts)
	}
	rep = parseGWCReply([]byte("H|1.2.3.4:6346|1"), true)
	if len(rep.hosts) != 0 {
		t.Errorf("truncated single line: %v", rep.hosts)
	}
	// Duplicates are returned once.
	rep = parseGWCReply([]byte("H|1.2.3.4:6346|1\nH|1.2.3.4:6346|2\nU|http://a.example.com/|1\nU|http://a.example.com|1\n"), false)
	if len(rep.hosts) != 1 || len(rep.caches) != 1 {
		t.Errorf("duplicates: %v %v", rep.hosts, rep.caches)
	}
}
