package control

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"testing"
)

type openAPIDoc struct {
	OpenAPI string `json:"openapi"`
	Paths   map[string]map[string]struct {
		RequestBody *struct {
			Content map[string]struct {
				Example json.RawMessage `json:"example"`
			} `json:"content"`
		} `json:"requestBody"`
	} `json:"paths"`
}

// The OpenAPI description matches the real handlers: every route of the
// mux is in it, and every path and method in it answers on the real server
// (a handler's 404 for an unknown ID is fine, the mux's 404 or 405 is not).
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	c := testNodeConfig()
	c.DownloadDir = t.TempDir()
	c.ShareDirs = []string{t.TempDir()}
	ctl := startServer(t, startNode(t, c))
	base := "http://" + ctl.Addr()

	resp, body := get(t, newReq(t, "GET", base+"/api/v1/openapi.json", nil))
	var doc openAPIDoc
	if err := json.Unmarshal([]byte(body), &doc); err != nil || resp.StatusCode != 200 || !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("GET /api/v1/openapi.json: %s, %v: %.200s", resp.Status, err, body)
	}

	described := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			described[strings.ToUpper(method)+" "+path] = true
		}
	}
	var missing []string
	for _, pattern := range ctl.routes {
		key := strings.Replace(pattern, "{$}", "", 1)
		if !described[key] {
			missing = append(missing, pattern)
		}
		delete(described, key)
	}
	if len(missing) > 0 {
		t.Errorf("routes missing from openapi.json: %v", missing)
	}
	var extra []string
	for k := range described {
		extra = append(extra, k)
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		t.Errorf("openapi.json describes what the mux does not route: %v", extra)
	}

	searchID, err := ctl.StartSearch(SearchRequest{Query: "nothing at all", TimeoutMS: 50})
	if err != nil {
		t.Fatal(err)
	}
	for path, ops := range doc.Paths {
		for method, o := range ops {
			url := base + strings.ReplaceAll(path, "{id}", "nosuchid")
			if strings.HasPrefix(path, "/api/v1/searches/{id}") {
				url = base + strings.ReplaceAll(path, "{id}", searchID)
			}
			switch path {
			case "/debug/pprof/profile", "/debug/pprof/trace":
				url += "?seconds=1"
			case "/login":
				url += "?once=" + strings.TrimPrefix(ctl.LoginURL(), base+"/login?once=")
			}
			var rd io.Reader
			if o.RequestBody != nil {
				for _, ct := range o.RequestBody.Content {
					rd = bytes.NewReader(ct.Example)
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			req, _ := http.NewRequestWithContext(ctx, strings.ToUpper(method), url, rd)
			req.Header.Set("Authorization", "Bearer "+ctl.Token())
			resp, err := noRedirect.Do(req)
			if err != nil {
				cancel()
				t.Fatalf("%s %s: %v", method, url, err)
			}
			var text bytes.Buffer
			if resp.StatusCode >= 400 {
				_, _ = io.Copy(&text, io.LimitReader(resp.Body, 4096))
			}
			cancel() // ends the streams (events, results)
			resp.Body.Close()
			if resp.StatusCode == 405 || resp.StatusCode == 404 && strings.Contains(text.String(), "in this API") {
				t.Errorf("%s %s (described): %s %s", method, path, resp.Status, text.String())
			}
		}
	}
}

// Every error status is JSON: an unknown path (404), a wrong method (405),
// no token (401), a bad body (400), a failing handler (500), and the
// plain-text errors of the runtime profiles.
func TestErrorsAreJSON(t *testing.T) {
	c := testNodeConfig()
	shared := t.TempDir()
	c.ShareDirs = []string{shared}
	ctl := startServer(t, startNode(t, c))
	base := "http://" + ctl.Addr()
	auth := map[string]string{"Authorization": "Bearer " + ctl.Token()}
	check := func(method, path string, hdr map[string]string, body string, want int) {
		t.Helper()
		req := newReq(t, method, base+path, hdr)
		if body != "" {
			req.Body = io.NopCloser(strings.NewReader(body))
		}
		resp, text := get(t, req)
		var e apiError
		if resp.StatusCode != want || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") ||
			json.Unmarshal([]byte(text), &e) != nil || e.Error == "" {
			t.Errorf("%s %s: %s %q %q, want %d with a JSON error", method, path, resp.Status, resp.Header.Get("Content-Type"), text, want)
		}
	}
	check("GET", "/api/v1/nothing", auth, "", 404)
	check("DELETE", "/api/v1/status", auth, "", 405)
	check("GET", "/api/v1/status", nil, "", 401)
	check("POST", "/api/v1/searches", auth, "{not json", 400)
	check("POST", "/api/v1/searches", auth, strings.Repeat("x", 70<<10), 400)
	check("GET", "/debug/pprof/nosuchprofile", auth, "", 404)
	check("OPTIONS", "/api/v1/status", map[string]string{"Origin": "http://evil.example"}, "", 403)
	// A shared folder that is gone: the rescan fails, 500.
	if err := os.RemoveAll(shared); err != nil {
		t.Fatal(err)
	}
	check("POST", "/api/v1/shares/rescan", auth, "", 500)
}
