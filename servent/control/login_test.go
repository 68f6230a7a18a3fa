package control

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// noRedirect is a client that shows redirects rather than follow them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func get(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func newReq(t *testing.T, method, url string, hdr map[string]string) *http.Request {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return req
}

// A one-time URL logs a browser in with an HttpOnly, SameSite=Strict
// session cookie that works once; the cookie then opens the API, but not
// for requests from another origin.
func TestLoginURLGivesSessionCookieOnce(t *testing.T) {
	ctl := startServer(t, startNode(t, testNodeConfig()))
	base := "http://" + ctl.Addr()
	login := ctl.LoginURL()
	if !strings.HasPrefix(login, base+"/login?once=") {
		t.Fatalf("login URL %q", login)
	}

	// Without a cookie, / is a page saying how to log in, not JSON.
	resp, body := get(t, newReq(t, "GET", base+"/", nil))
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || !strings.Contains(body, "gnutella ui") {
		t.Fatalf("/ without cookie: %s %q: %s", resp.Status, ct, body)
	}

	resp, _ = get(t, newReq(t, "GET", login, nil))
	if resp.StatusCode != http.StatusOK || len(resp.Cookies()) != 1 {
		t.Fatalf("login: %s, cookies %v", resp.Status, resp.Cookies())
	}
	ck := resp.Cookies()[0]
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Value == ctl.Token() || !strings.HasSuffix(ck.Name, ctl.Addr()[strings.LastIndex(ctl.Addr(), ":")+1:]) {
		t.Fatalf("cookie %+v", ck)
	}
	if again, body := get(t, newReq(t, "GET", login, nil)); again.StatusCode != http.StatusForbidden || len(again.Cookies()) != 0 || !strings.Contains(body, "gnutella ui") {
		t.Fatalf("second use of the login URL: %s %v", again.Status, again.Cookies())
	}
	if bad, _ := get(t, newReq(t, "GET", base+"/login?once=00", nil)); bad.StatusCode != http.StatusForbidden {
		t.Fatalf("a made-up code: %s", bad.Status)
	}

	cookie := ck.Name + "=" + ck.Value
	for _, c := range []struct {
		method string
		path   string
		hdr    map[string]string
		want   int
	}{
		{"GET", "/api/v1/status", map[string]string{"Cookie": cookie}, 200},
		{"GET", "/api/v1/status", map[string]string{"Cookie": cookie, "Sec-Fetch-Site": "same-origin"}, 200},
		{"GET", "/api/v1/status", map[string]string{"Cookie": cookie, "Sec-Fetch-Site": "same-site"}, 403},
		{"GET", "/api/v1/status", map[string]string{"Cookie": cookie, "Origin": "http://127.0.0.1:1"}, 403},
		{"GET", "/api/v1/status", map[string]string{"Cookie": "gnutella_session_1=" + ck.Value}, 401},
		{"GET", "/api/v1/status", map[string]string{"Cookie": ck.Name + "=deadbeef"}, 401},
		{"POST", "/api/v1/login", map[string]string{"Cookie": cookie}, 403}, // no Origin: could be a form of another site
		{"POST", "/api/v1/login", map[string]string{"Cookie": cookie, "Origin": "http://evil.example"}, 403},
		{"POST", "/api/v1/login", map[string]string{"Cookie": cookie, "Origin": base}, 200},
		{"GET", "/", map[string]string{"Cookie": cookie}, 200},
		// Another name for 127.0.0.1 (DNS rebinding) is refused.
		{"GET", "/api/v1/status", map[string]string{"Authorization": "Bearer " + ctl.Token(), "Host": "evil.example"}, 403},
	} {
		req := newReq(t, c.method, base+c.path, c.hdr)
		if h := c.hdr["Host"]; h != "" {
			req.Host = h
		}
		resp, body := get(t, req)
		if resp.StatusCode != c.want {
			t.Errorf("%s %s %v: %s, want %d: %s", c.method, c.path, c.hdr, resp.Status, c.want, body)
		}
		if strings.HasPrefix(c.path, "/api/") && !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%s %s: Content-Type %q", c.method, c.path, resp.Header.Get("Content-Type"))
		}
	}
}

// A CORS preflight gets no 401: pages on this machine may use the API with
// the token, other origins are refused.
func TestPreflightOnlyForLoopbackOrigins(t *testing.T) {
	ctl := startServer(t, startNode(t, testNodeConfig()))
	base := "http://" + ctl.Addr()
	for origin, want := range map[string]int{
		"http://127.0.0.1:8080":    http.StatusNoContent,
		"http://localhost:3000":    http.StatusNoContent,
		"http://evil.example":      http.StatusForbidden,
		"https://127.0.0.1.nip.io": http.StatusForbidden,
	} {
		resp, _ := get(t, newReq(t, "OPTIONS", base+"/api/v1/downloads", map[string]string{
			"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}))
		if resp.StatusCode != want {
			t.Errorf("preflight from %s: %s, want %d", origin, resp.Status, want)
		}
		if acao := resp.Header.Get("Access-Control-Allow-Origin"); (want == 204) != (acao == origin) {
			t.Errorf("preflight from %s: Access-Control-Allow-Origin %q", origin, acao)
		}
		if resp.Header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("preflight from %s allows credentials", origin)
		}
	}
	// The token from a loopback page works and the answer is readable.
	resp, _ := get(t, newReq(t, "GET", base+"/api/v1/status", map[string]string{
		"Origin": "http://127.0.0.1:8080", "Authorization": "Bearer " + ctl.Token()}))
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "http://127.0.0.1:8080" {
		t.Fatalf("token from a loopback page: %s %v", resp.Status, resp.Header)
	}
}

// A login code older than LoginCodeTTL opens nothing.
func TestLoginCodeExpires(t *testing.T) {
	ctl := startServer(t, startNode(t, testNodeConfig()))
	login := ctl.LoginURL()
	code := login[strings.Index(login, "once=")+len("once="):]
	ctl.logins.mu.Lock()
	ctl.logins.codes[code] = time.Now().Add(-time.Second) // as if LoginCodeTTL had passed
	ctl.logins.mu.Unlock()
	if resp, _ := get(t, newReq(t, "GET", login, nil)); resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
		t.Fatalf("an expired code: %s, cookies %v", resp.Status, resp.Cookies())
	}
}
