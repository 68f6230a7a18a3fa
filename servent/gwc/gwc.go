// Package gwc is the GWebCache client and server: servents ask a GWebCache
// for hosts when their host cache runs dry, and `gnutella cache` serves one
// as a testnet's introducer. It sits below servent and above hostcache,
// whose address policy the server applies.
package gwc

// GWebCache ("Gnutella Web Caching System") client and server, after the
// version 2 specification (Hauke Dämpfling, "Version 2 Specifications Client
// Developers' Guide" 1.9.4, 2003; copy in gtk-gnutella/gwc
// doc/specs/gwc_v2.html). Requests are HTTP GETs with parameters get=1,
// update=1&ip=a.b.c.d:port[&url=...], ping=1, net=gnutella, client=, version=.
// Replies are lines "x|field|field...":
//
//	H|ip:port|age[|cluster...]    a host, age in seconds
//	U|http://url|age              another cache
//	I|pong|version[|networks]     answer to ping=1
//	I|update|OK                   update stored (warnings may follow)
//	I|update|WARNING|message      "You came back too early", "Rejected IP", "Rejected URL"
//	I|net-not-supported           the cache does not serve the requested net
//	I|nothing                     nothing else to say (a reply is never empty)
//
// A reply beginning with "ERROR", an HTTP error, an empty or unparseable
// reply all mean the cache is broken: the spec says to forget it and never
// retry. The server also answers the version 1 requests (hostfile=1,
// urlfile=1, ip= and url= without update=1, "PONG name") that gtk-gnutella
// still sends.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"gnutella/firewall"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"gnutella/servent/hostcache"
)

const (
	// gwcMaxReply bounds how much of a reply the client reads.
	gwcMaxReply = 64 << 10
	// gwcMaxLine bounds one reply line; longer lines are junk.
	gwcMaxLine = 1024
	// gwcMaxHostsOut and gwcMaxCachesOut bound what the client returns.
	gwcMaxHostsOut  = 1000
	gwcMaxCachesOut = 200
	// gwcMaxURLLen bounds a cache URL.
	gwcMaxURLLen = 256
	// gwcMaxQuery bounds a request's query string on the server.
	gwcMaxQuery = 4096
	// gwcGetHosts and gwcGetURLs are how many hosts and URLs get=1 returns.
	gwcGetHosts = 20
	gwcGetURLs  = 10
	// gwcNet is the only network served and asked for.
	gwcNet = "gnutella"
)

// ErrNetNotSupported is wrapped by errors from a cache that says it
// does not serve the Gnutella network (I|net-not-supported).
var ErrNetNotSupported = errors.New("cache does not serve the gnutella network")

// Error is the error of a GWebCache request. Drop says whether the
// caller must forget the cache: the specification forbids retrying a cache
// that is down, answers with an HTTP error, "ERROR" or something unparseable.
type Error struct {
	URL    string // the cache
	Op     string // "get" or "update"
	Reason string // what went wrong
	Hint   string // what to do next
	Drop   bool   // forget this cache, do not retry it
	// Warning is the cache's message for an I|update|WARNING reply, and
	// Accepted tells whether the same reply also said I|update|OK (the
	// address was stored but, say, the URL was rejected).
	Warning  string
	Accepted bool
	Err      error // underlying error, if any
}

func (e *Error) Error() string {
	s := "gwebcache " + e.Op + " " + e.URL + ": " + e.Reason
	if e.Hint != "" {
		s += "; " + e.Hint
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Client asks GWebCaches for hosts and sends them our address.
// The zero value works; a client should send at most one request an hour to
// any cache and only use caches when its host cache is dry.
type Client struct {
	// HTTP is the client used; nil means one without proxies (the cache must
	// see our address) or keep-alives, with a 30 s timeout and at most 3
	// redirects.
	HTTP *http.Client
	// Client is our 4-letter vendor code (client=); empty means "GNUT".
	Client string
	// Version is our version (version=); empty means unknownVersion. The
	// servent sets its own.
	Version string
	// UserAgent is sent as User-Agent; empty means "gnutella/<Version>".
	UserAgent string
}

var gwcDefaultHTTP = &http.Client{
	Timeout: 30 * time.Second,
	Transport: &http.Transport{
		Proxy:                  nil,
		DialContext:            (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		DisableKeepAlives:      true,
		TLSHandshakeTimeout:    10 * time.Second,
		ResponseHeaderTimeout:  20 * time.Second,
		MaxResponseHeaderBytes: 16 << 10,
	},
	CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 3 {
			return errors.New("more than 3 redirects")
		}
		return nil
	},
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return gwcDefaultHTTP
}

// unknownVersion is sent as version= when Client.Version is empty.
const unknownVersion = "0.0"

func (c *Client) version() string {
	if c.Version == "" {
		return unknownVersion
	}
	return c.Version
}

func (c *Client) params() (url.Values, error) {
	code := c.Client
	if code == "" {
		code = "GNUT"
	}
	if len(code) != 4 || strings.IndexFunc(code, func(r rune) bool {
		return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z')
	}) >= 0 {
		return nil, fmt.Errorf("Client.Client %q is not a 4-letter vendor code", code)
	}
	ver := c.version()
	if len(ver) > 16 {
		ver = ver[:16]
	}
	v := url.Values{}
	v.Set("client", strings.ToUpper(code))
	v.Set("version", ver)
	v.Set("net", gwcNet)
	return v, nil
}

// Get asks the cache at cacheURL for hosts and other caches (get=1). Hosts
// are returned as given (filter them through hostcache.Cache.Add); cache URLs are
// normalised as the specification asks. On a *Error with Drop set,
// forget the cache. A cache that does not serve Gnutella may still return
// other caches along with an error wrapping ErrNetNotSupported.
func (c *Client) Get(ctx context.Context, cacheURL string) (hosts []netip.AddrPort, caches []string, err error) {
	p, err := c.params()
	if err != nil {
		return nil, nil, err
	}
	p.Set("get", "1")
	rep, err := c.do(ctx, "get", cacheURL, p)
	if err != nil {
		return nil, nil, err
	}
	fail := func(reason, hint string, drop bool, werr error) error {
		return &Error{URL: cacheURL, Op: "get", Reason: reason, Hint: hint, Drop: drop, Err: werr}
	}
	switch {
	case rep.errorLine != "":
		return nil, nil, fail("cache reported "+strconv.Quote(rep.errorLine),
			"forget this cache and try another", true, nil)
	case rep.netNotSupported:
		return nil, rep.caches, fail("cache answered I|net-not-supported",
			"forget this cache; the caches it returned may serve Gnutella", true, ErrNetNotSupported)
	case rep.valid == 0:
		return nil, nil, fail(fmt.Sprintf("not a GWebCache reply (%d unparseable lines)", rep.junk),
			"forget this cache and try another", true, nil)
	}
	return rep.hosts, rep.caches, nil
}

// Update sends our listening address self to the cache (update=1&ip=). Only
// an ultrapeer that accepts incoming connections and has been up for an hour
// should do so, at most once an hour per cache.
func (c *Client) Update(ctx context.Context, cacheURL string, self netip.AddrPort) error {
	return c.UpdateWithURL(ctx, cacheURL, self, "")
}

// UpdateWithURL is Update that also submits otherCache (url=), a cache we
// contacted successfully. Either self or otherCache may be left out (zero
// value or ""), not both. A WARNING reply gives a *Error with Drop
// unset and Warning set; its Hint says what to change.
func (c *Client) UpdateWithURL(ctx context.Context, cacheURL string, self netip.AddrPort, otherCache string) error {
	p, err := c.params()
	if err != nil {
		return err
	}
	if !self.IsValid() && otherCache == "" {
		return errors.New("gwebcache update: nothing to send: neither our address nor a cache URL")
	}
	p.Set("update", "1")
	if self.IsValid() {
		self = hostcache.Canon(self)
		if err := (firewall.AddrPolicy{AllowLoopback: true, AllowPrivate: true}).Check(self); err != nil {
			return fmt.Errorf("gwebcache update: our address %s is not dialable (%v); advertise the address peers reach us at", self, err)
		}
		p.Set("ip", self.String())
	}
	if otherCache != "" {
		u, err := normalizeCacheURL(otherCache)
		if err != nil {
			return fmt.Errorf("gwebcache update: cache URL %q to submit: %v", otherCache, err)
		}
		p.Set("url", u)
	}
	rep, err := c.do(ctx, "update", cacheURL, p)
	if err != nil {
		return err
	}
	fail := func(reason, hint string, drop bool, werr error) *Error {
		return &Error{URL: cacheURL, Op: "update", Reason: reason, Hint: hint, Drop: drop, Err: werr}
	}
	switch {
	case rep.errorLine != "":
		return fail("cache reported "+strconv.Quote(rep.errorLine), "forget this cache and try another", true, nil)
	case rep.netNotSupported:
		return fail("cache answered I|net-not-supported", "forget this cache", true, ErrNetNotSupported)
	case len(rep.warnings) > 0:
		w := rep.warnings[0]
		e := fail("cache warned "+strconv.Quote(w), gwcWarningHint(w), false, nil)
		e.Warning = w
		e.Accepted = rep.updateOK
		return e
	case !rep.updateOK:
		return fail(fmt.Sprintf("reply has no I|update|OK (%d lines understood, %d unparseable)", rep.valid, rep.junk),
			"forget this cache and try another", true, nil)
	}
	return nil
}

// gwcWarningHint turns an update warning into advice.
func gwcWarningHint(w string) string {
	l := strings.ToLower(w)
	switch {
	case strings.Contains(l, "too early") || strings.Contains(l, "too soon") || strings.Contains(l, "rate"):
		return "wait at least an hour before updating this cache again"
	case strings.Contains(l, "rejected ip") || strings.Contains(l, "invalid ip") ||
		strings.Contains(l, "rejected host") || strings.Contains(l, "invalid host"):
		return "the cache refused our address: send the address peers reach us at (learned from Remote-IP), " +
			"and stop updating caches if several refuse it (NAT or proxy in the way)"
	case strings.Contains(l, "url"):
		return "send only URLs of caches we contacted successfully"
	}
	return "keep the cache but do not repeat this update within the hour"
}

// do sends one request and parses the reply; errors are *Error.
func (c *Client) do(ctx context.Context, op, cacheURL string, p url.Values) (*gwcReply, error) {
	fail := func(reason, hint string, drop bool, werr error) error {
		return &Error{URL: cacheURL, Op: op, Reason: reason, Hint: hint, Drop: drop, Err: werr}
	}
	u, err := url.Parse(cacheURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fail("not an http:// URL", "forget this cache URL", true, err)
	}
	q := u.Query()
	for k, v := range p {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	u.Fragment = ""
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fail("cannot build request", "forget this cache URL", true, err)
	}
	ua := c.UserAgent
	if ua == "" {
		ua = "gnutella/" + c.version()
	}
	req.Header.Set("User-Agent", ua)
	req.Header.Set("Accept", "text/plain, */*")
	resp, err := c.httpClient().Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return nil, fail("request canceled", "", false, err)
		}
		return nil, fail("cache unreachable: "+err.Error(),
			"forget this cache (the specification forbids retrying a cache that is down) and try another", true, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fail("HTTP "+resp.Status, "forget this cache and try another", true, nil)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, gwcMaxReply+1))
	if err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return nil, fail("request canceled", "", false, err)
		}
		return nil, fail("reading the reply: "+err.Error(), "forget this cache and try another", true, err)
	}
	truncated := len(body) > gwcMaxReply
	if truncated {
		body = body[:gwcMaxReply]
	}
	return parseGWCReply(body, truncated), nil
}

// gwcReply is what a cache said.
type gwcReply struct {
	hosts           []netip.AddrPort
	caches          []string
	pong            string
	updateOK        bool
	warnings        []string
	netNotSupported bool
	errorLine       string
	valid, junk     int
}

// parseGWCReply parses a reply tolerantly: CR, LF and CRLF line ends, junk
// lines counted and skipped, unknown "x|..." lines accepted, extra fields
// ignored, version 1 lines (bare ip:port, bare URL, OK, WARNING, PONG)
// understood. If truncated, the last (partial) line is dropped.
func parseGWCReply(body []byte, truncated bool) *gwcReply {
	rep := &gwcReply{}
	if truncated {
		if i := bytes.LastIndexAny(body, "\r\n"); i >= 0 {
			body = body[:i]
		} else {
			body = nil
		}
	}
	seenHost := make(map[netip.AddrPort]bool)
	seenCache := make(map[string]bool)
	addHost := func(s string) bool {
		a, err := netip.ParseAddrPort(strings.TrimSpace(s))
		if err != nil || a.Port() == 0 {
			return false
		}
		a = hostcache.Canon(a)
		if a.Addr().IsUnspecified() {
			return false // 0.0.0.0 (or ::, or ::ffff:0.0.0.0) names no host
		}
		if !seenHost[a] && len(rep.hosts) < gwcMaxHostsOut {
			seenHost[a] = true
			rep.hosts = append(rep.hosts, a)
		}
		return true
	}
	addCache := func(s string) bool {
		u, err := normalizeCacheURL(s)
		if err != nil {
			return false
		}
		if !seenCache[u] && len(rep.caches) < gwcMaxCachesOut {
			seenCache[u] = true
			rep.caches = append(rep.caches, u)
		}
		return true
	}
	lines := strings.FieldsFunc(string(body), func(r rune) bool { return r == '\r' || r == '\n' })
	for _, line := range lines {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if len(line) > gwcMaxLine {
			rep.junk++
			continue
		}
		upper := strings.ToUpper(line)
		if strings.HasPrefix(upper, "ERROR") {
			rep.errorLine = line
			return rep
		}
		if len(line) >= 2 && line[1] == '|' && isASCIIAlnum(line[0]) {
			f := strings.SplitN(line, "|", 8)
			ok := true
			switch line[0] {
			case 'H', 'h':
				ok = addHost(f[1])
			case 'U', 'u':
				ok = addCache(f[1])
			case 'I', 'i':
				rep.parseInfo(f[1:])
			}
			if ok {
				rep.valid++
			} else {
				rep.junk++
			}
			continue
		}
		// Version 1 forms.
		switch {
		case upper == "OK":
			rep.updateOK = true
		case strings.HasPrefix(upper, "WARNING"):
			w := strings.TrimSpace(strings.TrimLeft(line[len("WARNING"):], ": "))
			rep.warnings = append(rep.warnings, w)
		case strings.HasPrefix(upper, "PONG"):
			rep.pong = strings.TrimSpace(line[len("PONG"):])
		case addHost(line), addCache(line):
		default:
			rep.junk++
			continue
		}
		rep.valid++
	}
	return rep
}

// parseInfo handles the fields after "I|".
func (rep *gwcReply) parseInfo(f []string) {
	field := func(i int) string {
		if i < len(f) {
			return strings.TrimSpace(f[i])
		}
		return ""
	}
	switch strings.ToLower(field(0)) {
	case "pong":
		rep.pong = field(1)
	case "update":
		switch strings.ToUpper(field(1)) {
		case "OK":
			rep.updateOK = true
			if strings.EqualFold(field(2), "WARNING") {
				rep.warnings = append(rep.warnings, field(3))
			}
		case "WARNING":
			rep.warnings = append(rep.warnings, joinFields(f[2:]))
		}
	case "warning":
		rep.warnings = append(rep.warnings, joinFields(f[1:]))
	case "net-not-supported":
		rep.netNotSupported = true
	}
}

// joinFields joins the non-empty fields of a reply line with ": ".
func joinFields(f []string) string {
	var parts []string
	for _, x := range f {
		if x = strings.TrimSpace(x); x != "" {
			parts = append(parts, x)
		}
	}
	return strings.Join(parts, ": ")
}

func isASCIIAlnum(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

// normalizeCacheURL checks a GWebCache URL and normalises it as the
// specification asks: %XX decoded where harmless, host lower-cased, default
// port dropped, a trailing index.php (cgi, asp, ...) and trailing slashes
// trimmed. Only http and https URLs without user info are accepted.
func normalizeCacheURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" || len(raw) > gwcMaxURLLen {
		return "", errors.New("empty or over-long URL")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	u.Scheme = strings.ToLower(u.Scheme)
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", errors.New("not an http:// URL")
	}
	if u.User != nil || u.Opaque != "" {
		return "", errors.New("URL with user info or opaque part")
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return "", errors.New("URL without host")
	}
	port := u.Port()
	if (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		port = ""
	}
	if port != "" {
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return "", errors.New("bad port")
		}
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	p := u.Path
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		switch strings.ToLower(p[i+1:]) {
		case "index.php", "index.cgi", "index.asp", "index.aspx", "index.cfm", "index.jsp", "index.pl":
			p = p[:i+1]
		}
	}
	p = strings.TrimRight(p, "/")
	out := &url.URL{Scheme: u.Scheme, Host: host, Path: p, RawQuery: u.RawQuery}
	s := out.String()
	if len(s) > gwcMaxURLLen || strings.ContainsAny(s, "| \t\r\n") {
		return "", errors.New("URL with characters a reply line cannot carry")
	}
	return s, nil
}

// Server is a GWebCache (an http.Handler): `gnutella cache` runs it
// so that a local testnet has an introducer. It keeps at most MaxHosts hosts
// for HostTTL and MaxURLs cache URLs for URLTTL, answers get=1 with the 20
// most recent hosts and 10 URLs, and stores update=1&ip= after checking the
// address. Exported fields must be set before serving.
type Server struct {
	// AddrPolicy says which host addresses are stored (the project's one
	// address policy, as the host cache uses it).
	firewall.AddrPolicy
	// AllowThirdParty accepts an ip= that is not the requester's own IP.
	// The specification requires the check (false), so that nobody can
	// submit other people's addresses.
	AllowThirdParty bool
	// MinUpdateInterval, if positive, refuses a new update of the same host
	// sooner than this ("You came back too early").
	MinUpdateInterval time.Duration
	// Name is the version string of I|pong.
	Name string
	// Bounds and lifetimes.
	MaxHosts int
	MaxURLs  int
	HostTTL  time.Duration
	URLTTL   time.Duration
	// Logger receives a line per update; the zero value is silent.
	Logger zerolog.Logger

	now   func() time.Time
	mu    sync.Mutex
	hosts map[netip.AddrPort]time.Time // host → last update
	urls  map[string]time.Time         // URL → last update
}

// NewServer returns an empty cache with the default bounds (1,000
// hosts kept an hour, 100 URLs kept a day). now is the clock (nil means
// time.Now).
func NewServer(now func() time.Time) *Server {
	if now == nil {
		now = time.Now
	}
	return &Server{
		Name:     "gnutella-gwc",
		MaxHosts: 1000,
		MaxURLs:  100,
		HostTTL:  time.Hour,
		URLTTL:   24 * time.Hour,
		now:      now,
		hosts:    make(map[netip.AddrPort]time.Time),
		urls:     make(map[string]time.Time),
	}
}

// Len returns the number of hosts held (not expired).
func (s *Server) Len() int {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked(now)
	return len(s.hosts)
}

func (s *Server) pruneLocked(now time.Time) {
	for a, t := range s.hosts {
		if now.Sub(t) >= s.HostTTL {
			delete(s.hosts, a)
		}
	}
	for u, t := range s.urls {
		if now.Sub(t) >= s.URLTTL {
			delete(s.urls, u)
		}
	}
}

// ServeHTTP answers one GWebCache request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "GWebCache requests are GETs", http.StatusMethodNotAllowed)
		return
	}
	if len(r.URL.RawQuery) > gwcMaxQuery {
		http.Error(w, "request too long", http.StatusBadRequest)
		return
	}
	raw, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		http.Error(w, "malformed query: "+err.Error(), http.StatusBadRequest)
		return
	}
	q := make(map[string]string, len(raw))
	for k, v := range raw {
		lk := strings.ToLower(k)
		if _, dup := q[lk]; !dup && len(v) > 0 {
			q[lk] = v[0]
		}
	}
	has := func(k string) bool { _, ok := q[k]; return ok }
	get, update, ping := has("get"), has("update"), has("ping")
	hostfile, urlfile, ip, u := has("hostfile"), has("urlfile"), has("ip"), has("url")
	v1 := !get && !update && (hostfile || urlfile || ip || u)
	if !v1 && !get && !update && !ping {
		http.Error(w, "unknown GWebCache request: send get=1, update=1&ip=IP:PORT, or ping=1 (with net=gnutella)",
			http.StatusBadRequest)
		return
	}

	var remote netip.Addr
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		remote = ap.Addr().Unmap()
	}
	now := s.now()
	var out []string
	netName := strings.ToLower(strings.TrimSpace(q["net"]))
	netOK := netName == "" || netName == gwcNet

	if v1 {
		if ping {
			out = append(out, "PONG "+s.Name)
		}
		if !netOK {
			out = append(out, "ERROR: Network not supported")
		} else {
			if ip || u {
				okHost, okURL, warn := true, true, ""
				if ip {
					okHost, warn = s.updateHost(q["ip"], remote, now)
				}
				if u {
					var w2 string
					okURL, w2 = s.updateURL(q["url"], now)
					if warn == "" {
						warn = w2
					}
				}
				if okHost && okURL {
					out = append(out, "OK")
				} else {
					out = append(out, "WARNING: "+strings.ReplaceAll(warn, "|", ": "))
				}
			}
			hosts, urls := s.snapshot(now, gwcGetHosts, gwcGetURLs)
			if hostfile {
				for _, h := range hosts {
					out = append(out, h.addr.String())
				}
			}
			if urlfile {
				for _, x := range urls {
					out = append(out, x.url)
				}
			}
		}
	} else {
		if ping {
			out = append(out, "I|pong|"+s.Name+"|"+gwcNet)
		}
		if !netOK {
			out = append(out, "I|net-not-supported")
		} else {
			if update {
				var warns []string
				stored := false
				if !ip && !u {
					warns = append(warns, "Nothing to update|send ip=IP:PORT and/or url=URL")
				}
				if ip {
					if ok, w := s.updateHost(q["ip"], remote, now); ok {
						stored = true
					} else {
						warns = append(warns, w)
					}
				}
				if u {
					if ok, w := s.updateURL(q["url"], now); ok {
						stored = true
					} else {
						warns = append(warns, w)
					}
				}
				if stored {
					out = append(out, "I|update|OK")
				}
				for _, w := range warns {
					out = append(out, "I|update|WARNING|"+w)
				}
			}
			if get {
				hosts, urls := s.snapshot(now, gwcGetHosts, gwcGetURLs)
				for _, h := range hosts {
					out = append(out, "H|"+h.addr.String()+"|"+strconv.FormatInt(h.age, 10))
				}
				for _, x := range urls {
					out = append(out, "U|"+x.url+"|"+strconv.FormatInt(x.age, 10))
				}
			}
		}
		if len(out) == 0 {
			out = append(out, "I|nothing")
		}
	}

	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=us-ascii")
	h.Set("Cache-Control", "no-cache")
	if remote.IsValid() {
		h.Set("X-Remote-IP", remote.String())
	}
	var b strings.Builder
	for _, l := range out {
		b.WriteString(l)
		b.WriteString("\r\n")
	}
	h.Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, b.String())
}

// updateHost stores a submitted ip:port; it returns false and the warning if
// refused: the spec's "Rejected IP" or "You came back too early", then the
// reason as an extra field ("Rejected IP|port 0"), so that clients matching
// field 3 exactly still understand it.
func (s *Server) updateHost(raw string, remote netip.Addr, now time.Time) (bool, string) {
	a, err := netip.ParseAddrPort(strings.TrimSpace(raw))
	if err != nil {
		return false, "Rejected IP|not an ip:port"
	}
	a = hostcache.Canon(a)
	if err := s.Check(a); err != nil {
		var ae *firewall.AddrError
		if errors.As(err, &ae) {
			return false, "Rejected IP|" + ae.Class.String()
		}
		return false, "Rejected IP|" + err.Error()
	}
	if !s.AllowThirdParty && remote.IsValid() && remote != a.Addr() {
		return false, "Rejected IP|not the address this request came from"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked(now)
	if t, ok := s.hosts[a]; ok {
		if s.MinUpdateInterval > 0 && now.Sub(t) < s.MinUpdateInterval {
			return false, "You came back too early"
		}
	} else if len(s.hosts) >= s.MaxHosts {
		evictOldest(s.hosts)
	}
	s.hosts[a] = now
	s.Logger.Debug().Str("host", a.String()).Msg("gwebcache: host updated")
	return true, ""
}

// updateURL stores a submitted cache URL (not contacted: the server never
// dials what clients tell it).
func (s *Server) updateURL(raw string, now time.Time) (bool, string) {
	nu, err := normalizeCacheURL(raw)
	if err != nil {
		return false, "Rejected URL|" + err.Error()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked(now)
	if _, ok := s.urls[nu]; !ok && len(s.urls) >= s.MaxURLs {
		evictOldest(s.urls)
	}
	s.urls[nu] = now
	s.Logger.Debug().Str("url", nu).Msg("gwebcache: URL updated")
	return true, ""
}

func evictOldest[K comparable](m map[K]time.Time) {
	var oldest K
	var ot time.Time
	first := true
	for k, t := range m {
		if first || t.Before(ot) {
			oldest, ot, first = k, t, false
		}
	}
	if !first {
		delete(m, oldest)
	}
}

type gwcHostAge struct {
	addr netip.AddrPort
	age  int64
}

type gwcURLAge struct {
	url string
	age int64
}

// snapshot returns the nh most recent hosts and nu most recent URLs with
// their ages in seconds.
func (s *Server) snapshot(now time.Time, nh, nu int) ([]gwcHostAge, []gwcURLAge) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked(now)
	type ht struct {
		a netip.AddrPort
		t time.Time
	}
	hs := make([]ht, 0, len(s.hosts))
	for a, t := range s.hosts {
		hs = append(hs, ht{a, t})
	}
	slices.SortFunc(hs, func(x, y ht) int {
		if c := y.t.Compare(x.t); c != 0 {
			return c
		}
		return x.a.Compare(y.a)
	})
	age := func(t time.Time) int64 { return max(0, int64(now.Sub(t)/time.Second)) }
	var hosts []gwcHostAge
	for _, h := range hs[:min(nh, len(hs))] {
		hosts = append(hosts, gwcHostAge{h.a, age(h.t)})
	}
	type ut struct {
		u string
		t time.Time
	}
	us := make([]ut, 0, len(s.urls))
	for u, t := range s.urls {
		us = append(us, ut{u, t})
	}
	slices.SortFunc(us, func(x, y ut) int {
		if c := y.t.Compare(x.t); c != 0 {
			return c
		}
		return strings.Compare(x.u, y.u)
	})
	var urls []gwcURLAge
	for _, x := range us[:min(nu, len(us))] {
		urls = append(urls, gwcURLAge{x.u, age(x.t)})
	}
	return hosts, urls
}
