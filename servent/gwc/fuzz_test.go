package gwc

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// FuzzServerRequest sends any query string to the GWebCache server (bytes
// from any HTTP client on the network), twice, so that a stored host or URL
// is served back: no panic, and every 200 answer is well-formed reply
// lines that our own client reads without a junk line, whatever the
// request submitted.
func FuzzServerRequest(f *testing.F) {
	for _, q := range []string{
		"get=1&net=gnutella",
		"update=1&ip=127.0.0.1:6346&net=gnutella",
		"update=1&url=http://gwc.example/index.php&get=1",
		"ping=1&client=GTKG&version=1.2",
		"hostfile=1", "urlfile=1", "ip=127.0.0.1:6346&url=http://a.example:8080/x/",
		"update=1&url=http://a.example/%0D%0AH%7C6.6.6.6:6346",
		"update=1&ip=127.0.0.1:6346%0D%0AH|6.6.6.6:1",
		"get=1&net=gnutella2", "ping=1&net=x", "update=1&url=http://%5B::1%5D:80/",
		"%zz", "get=1&get=2&GET=3",
	} {
		f.Add(q)
	}
	now := time.Unix(1_700_000_000, 0)
	f.Fuzz(func(t *testing.T, query string) {
		s := NewServer(func() time.Time { return now })
		s.AllowLoopback, s.AllowPrivate = true, true
		for round := 0; round < 2; round++ {
			r := httptest.NewRequest(http.MethodGet, "http://gwc.example/", nil)
			r.URL.RawQuery = query
			r.RemoteAddr = "127.0.0.1:40000"
			w := httptest.NewRecorder()
			s.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				if w.Code != http.StatusBadRequest {
					t.Fatalf("query %q: status %d", query, w.Code)
				}
				return
			}
			body := w.Body.String()
			if body == "" {
				continue // a version 1 hostfile or urlfile request with nothing to list
			}
			if !strings.HasSuffix(body, "\r\n") {
				t.Fatalf("query %q: reply %q does not end its last line", query, body)
			}
			for _, line := range strings.Split(strings.TrimSuffix(body, "\r\n"), "\r\n") {
				if line == "" || strings.ContainsAny(line, "\r\n") || len(line) > gwcMaxLine {
					t.Fatalf("query %q: reply line %q", query, line)
				}
			}
			if rep := parseGWCReply([]byte(body), false); rep.junk != 0 {
				t.Fatalf("query %q: reply %q has %d lines our client cannot read", query, body, rep.junk)
			}
		}
	})
}
