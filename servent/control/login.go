package control

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Logging a browser in without copying the token. The server hands out
// one-time login URLs (/login?once=CODE: LoginURL, printed by `gnutella
// serve` and `gnutella ui`); opening one gives the browser a session cookie,
// HttpOnly and SameSite=Strict, that the API accepts like the token. The
// cookie is a session of its own, not the API token, so a page never holds
// the token.
//
// A cookie is sent by the browser whatever page asks, so requests that
// carry one are checked for cross-site forgery: a state-changing request
// must come from this very origin (Origin header), and a request the
// browser marks as cross-site (Sec-Fetch-Site) is refused. Cookies do not
// tell ports apart, so the cookie's name carries the port, and another web
// server on 127.0.0.1 counts as another origin.

// LoginCodeTTL is how long a login URL works (once).
const LoginCodeTTL = 10 * time.Minute

// maxSessions bounds the browser sessions kept.
const maxSessions = 256

// maxLoginCodes bounds the codes waiting to be used; the oldest goes first.
const maxLoginCodes = 32

// sessions holds the login codes and the browser sessions of one server.
type sessions struct {
	mu       sync.Mutex
	codes    map[string]time.Time // code -> expiry
	sessions map[string]struct{}  // session tokens; they last until the server stops
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

// LoginURL returns a fresh one-time login URL for a browser: opening it
// logs that browser in. It works once, for LoginCodeTTL.
func (c *Server) LoginURL() string {
	code := randomHex(16)
	now := time.Now()
	s := &c.logins
	s.mu.Lock()
	for k, exp := range s.codes {
		if now.After(exp) {
			delete(s.codes, k)
		}
	}
	for len(s.codes) >= maxLoginCodes {
		var oldest string
		var at time.Time
		for k, exp := range s.codes {
			if oldest == "" || exp.Before(at) {
				oldest, at = k, exp
			}
		}
		delete(s.codes, oldest)
	}
	s.codes[code] = now.Add(LoginCodeTTL)
	s.mu.Unlock()
	return "http://" + c.Addr() + "/login?once=" + code
}

// useCode reports whether code is a live login code, and spends it.
func (s *sessions) useCode(code string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ok := false
	for k, exp := range s.codes {
		if subtle.ConstantTimeCompare([]byte(k), []byte(code)) == 1 {
			ok = time.Now().Before(exp)
			delete(s.codes, k)
			break
		}
	}
	return ok
}

func (s *sessions) newSession() string {
	tok := randomHex(32)
	s.mu.Lock()
	for k := range s.sessions { // bounded: a browser past the limit logs in again
		if len(s.sessions) < maxSessions {
			break
		}
		delete(s.sessions, k)
	}
	s.sessions[tok] = struct{}{}
	s.mu.Unlock()
	return tok
}

func (s *sessions) valid(tok string) bool {
	if tok == "" {
		return false
	}
	s.mu.Lock()
	_, ok := s.sessions[tok]
	s.mu.Unlock()
	return ok
}

// cookieName is the session cookie's name: browsers send the cookies of
// 127.0.0.1 to every port, so each server names its own.
func (c *Server) cookieName() string {
	_, port, _ := net.SplitHostPort(c.Addr())
	return "gnutella_session_" + port
}

// login spends a login code and sets the session cookie. It answers a page
// that goes on to the UI rather than a redirect: a SameSite=Strict cookie
// is not sent on a redirect that a link in another program started, but is
// on a navigation this origin starts.
func (c *Server) login(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	if !c.logins.useCode(r.URL.Query().Get("once")) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, htmlPage("Login link used or expired",
			`<p>This login link has already been used or is more than 10 minutes old: each link works once.</p>`+
				`<p>Get a fresh one with</p><pre>gnutella ui</pre>`+
				`<p>(give it the same <code>--data-dir</code> as <code>gnutella serve</code>) and open it in this browser.</p>`))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: c.cookieName(), Value: c.logins.newSession(), Path: "/",
		HttpOnly: true, SameSite: http.SameSiteStrictMode})
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprint(w, `<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=/">`+
		`<title>Logged in</title><p>Logged in. <a href="/">Open the servent</a>.</p>`)
}

// loginCode answers POST /api/v1/login: a fresh one-time login URL, for
// `gnutella ui`.
func (c *Server) loginCode(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, LoginJSON{URL: c.LoginURL(), ExpiresIn: int(LoginCodeTTL / time.Second)})
}

// LoginJSON is the answer of POST /api/v1/login.
type LoginJSON struct {
	URL       string `json:"url"`
	ExpiresIn int    `json:"expires_in_seconds"`
}

// credentials says how a request proves itself: by the API token, by a
// session cookie, or not at all.
type credentials int

const (
	noCredentials credentials = iota
	bearerToken
	sessionCookie
)

func (c *Server) credentialsOf(r *http.Request) credentials {
	if h := r.Header.Get("Authorization"); h != "" {
		got := strings.TrimPrefix(h, "Bearer ")
		if subtle.ConstantTimeCompare([]byte(got), []byte(c.token)) == 1 {
			return bearerToken
		}
		return noCredentials
	}
	if ck, err := r.Cookie(c.cookieName()); err == nil && c.logins.valid(ck.Value) {
		return sessionCookie
	}
	return noCredentials
}

// ownOrigin is the origin of this server as the browser sees it.
func ownOrigin(r *http.Request) string { return "http://" + r.Host }

// loopbackOrigin reports whether origin is an http origin on this machine
// (127.0.0.0/8, ::1 or localhost).
func loopbackOrigin(origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Scheme != "http" || u.Path != "" {
		return false
	}
	h := u.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// crossSite says why a cookie-carrying request is refused as a possible
// forgery by another web page ("" when it is fine).
func crossSite(r *http.Request) string {
	origin := r.Header.Get("Origin")
	if origin != "" && origin != ownOrigin(r) {
		return "the request comes from another web page (" + origin + ")"
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return "the browser marks the request as " + r.Header.Get("Sec-Fetch-Site")
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && origin == "" {
		return "a " + r.Method + " request with a session cookie must carry the Origin header"
	}
	return ""
}

// loopbackHost reports whether the Host header names this machine, which
// defeats DNS rebinding (a name of an attacker's pointing at 127.0.0.1).
func loopbackHost(host string) bool {
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(h, "[]"))
	return ip != nil && ip.IsLoopback()
}

// preflight answers a CORS preflight (OPTIONS): other pages on this machine
// (a UI served elsewhere on 127.0.0.1) may call the API with the token, the
// rest of the web may not. No credentials (cookies) are allowed across
// origins.
func preflight(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin != "" && !loopbackOrigin(origin) {
		writeJSON(w, http.StatusForbidden, apiError{"the control API answers only pages served from this machine (127.0.0.1, localhost), not " + origin})
		return
	}
	if origin != "" {
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Set("Vary", "Origin")
	}
	w.Header().Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE")
	w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
	w.Header().Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

// public reports whether a path is open without credentials: the UI's
// files, the login page and the API description.
func public(r *http.Request) bool {
	p := r.URL.Path
	return p == "/" || p == "/login" || strings.HasPrefix(p, "/ui/") || p == "/api/v1/openapi.json"
}

// auth lets a request through when it carries the token or a session
// cookie (and is not a cross-site forgery), answers CORS preflights, and
// lets the public paths through (the UI's front page shows how to log in
// without a cookie).
func (c *Server) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopbackHost(r.Host) {
			writeJSON(w, http.StatusForbidden, apiError{fmt.Sprintf("Host %q is not this machine: open http://%s/", r.Host, c.Addr())})
			return
		}
		if r.Method == http.MethodOptions {
			preflight(w, r)
			return
		}
		cred := c.credentialsOf(r)
		if cred == sessionCookie {
			if why := crossSite(r); why != "" {
				writeJSON(w, http.StatusForbidden, apiError{why + ": the session cookie works only on the servent's own pages"})
				return
			}
		}
		if origin := r.Header.Get("Origin"); cred == bearerToken && origin != "" && loopbackOrigin(origin) {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Set("Vary", "Origin")
		}
		if cred == noCredentials && !public(r) {
			writeJSON(w, http.StatusUnauthorized, apiError{"missing or wrong token: send Authorization: Bearer <token from control.json>, or in a browser open the URL `gnutella ui` prints"})
			return
		}
		next.ServeHTTP(w, r)
	})
}
