package firewall

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"gnutella/protocol"
)

// ProxyTable is the ultrapeer side of push proxies (docs/protocol.md §6.5): which link
// leads to the leaf with a given servent GUID, learnt from its Push-Proxy
// Request (LIME/21, whose descriptor GUID is the leaf's servent ID). A link
// proxies one servent at a time, as in gtk-gnutella: a second request on the
// same link replaces the first, so a link cannot fill the table. The zero
// value is ready to use; it is safe for concurrent use.
type ProxyTable struct {
	mu     sync.RWMutex
	byGUID map[protocol.GUID]uint32
	byLink map[uint32]protocol.GUID
}

// NewProxyTable returns an empty table.
func NewProxyTable() *ProxyTable { return &ProxyTable{} }

// Add records that servent is reached through link (after we answered its
// LIME/21 with a LIME/22). A servent already reached through another link
// moves to this one; a servent this link proxied before is forgotten.
func (t *ProxyTable) Add(servent protocol.GUID, link uint32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byGUID == nil {
		t.byGUID = make(map[protocol.GUID]uint32)
		t.byLink = make(map[uint32]protocol.GUID)
	}
	if old, ok := t.byLink[link]; ok && old != servent {
		delete(t.byGUID, old)
	}
	if oldLink, ok := t.byGUID[servent]; ok && oldLink != link {
		delete(t.byLink, oldLink)
	}
	t.byGUID[servent] = link
	t.byLink[link] = servent
}

// Remove forgets the servent proxied through link (the link closed).
func (t *ProxyTable) Remove(link uint32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if g, ok := t.byLink[link]; ok {
		delete(t.byLink, link)
		delete(t.byGUID, g)
	}
}

// Lookup returns the link to servent.
func (t *ProxyTable) Lookup(servent protocol.GUID) (uint32, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	link, ok := t.byGUID[servent]
	return link, ok
}

// Len returns the number of servents proxied.
func (t *ProxyTable) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.byGUID)
}

// PushProxyStatus is the HTTP status a push proxy answers (docs/protocol.md §6.5).
type PushProxyStatus int

const (
	// PushProxySent: the Push went to the leaf over its link to us.
	PushProxySent PushProxyStatus = 202
	// PushProxyRouted: the Push went through the network (gtk-gnutella,
	// when it has only a Gnutella route). Not produced by Resolve.
	PushProxyRouted PushProxyStatus = 203
	// PushProxyBadRequest: malformed request; the downloader drops us.
	PushProxyBadRequest PushProxyStatus = 400
	// PushProxyGone: that servent is not connected here; do not retry.
	PushProxyGone PushProxyStatus = 410
)

// Reason is the reason phrase for the status line.
func (s PushProxyStatus) Reason() string {
	switch s {
	case PushProxySent:
		return "Push Proxy: Message Sent"
	case PushProxyRouted:
		return "Push Proxy: Message Sent Through Gnutella"
	case PushProxyBadRequest:
		return "Malformed Push Proxy Request"
	case PushProxyGone:
		return "Push Proxy: Servent Not Connected"
	}
	return "Unknown"
}

// ErrPushProxyRequest is wrapped by every error of ParsePushProxyRequest:
// answer PushProxyBadRequest (400).
var ErrPushProxyRequest = errors.New("malformed push-proxy request")

// The request paths gtk-gnutella accepts (pproxy.c get_params), with the
// parameter naming the servent: base32 for ServerId, hex for guid.
var pushProxyPaths = []struct{ prefix, param string }{
	{"/gnutella/pushproxy?", "ServerId"},
	{"/gnutella/push-proxy?", "ServerId"},
	{"/gnet/push-proxy?", "guid"},
}

// IsPushProxyTarget reports whether an HTTP request target is a push-proxy
// request (so that the HTTP server hands it to the proxy, not to uploads).
func IsPushProxyTarget(target string) bool {
	for _, p := range pushProxyPaths {
		if strings.HasPrefix(target, p.prefix) {
			return true
		}
	}
	return false
}

// ParsePushProxyRequest parses the request of a downloader to a push proxy
// (docs/protocol.md §6.5, gtk-gnutella pproxy.c):
//
//	GET /gnutella/push-proxy?ServerId=<base32 GUID>[&file=<index>][&tls=true]
//	GET /gnutella/pushproxy?ServerId=<base32 GUID>[&file=<index>][&tls=true]
//	GET /gnet/push-proxy?guid=<32 hex>[&file=<index>][&tls=true]
//	X-Node: <ip>:<port>
//
// target is the request target (path and query, percent-encoded as sent);
// xnode is the value of the X-Node header ("" if absent). The base32 GUID is
// RFC 4648 base32 of the 16 bytes, in either case: 26 characters, or 32
// ending in "======". As in gtk-gnutella, the 2 spare bits of the last
// character are ignored, and a file index that is not a decimal uint32 is
// taken as 0 ("any file"). X-Node is required; a second address after a
// comma (gtk-gnutella's IPv4, IPv6 pair) is ignored. IPv4-mapped addresses
// are unmapped. The node is only checked for being a unicast address with a
// port: apply an AddrPolicy before relaying to it.
//
// Every error wraps ErrPushProxyRequest and maps to 400.
func ParsePushProxyRequest(target string, xnode string) (servent protocol.GUID, index uint32, node netip.AddrPort, err error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrPushProxyRequest, fmt.Sprintf(format, args...))
	}
	var query, param string
	for _, p := range pushProxyPaths {
		if rest, ok := strings.CutPrefix(target, p.prefix); ok {
			query, param = rest, p.param
			break
		}
	}
	if param == "" {
		return servent, 0, node, bad("request not understood: %q", truncate(target, 64))
	}
	values, perr := url.ParseQuery(query)
	if perr != nil {
		return servent, 0, node, bad("bad URL encoding: %v", perr)
	}
	value, ok := queryGet(values, param)
	if !ok {
		return servent, 0, node, bad("no %s parameter", param)
	}
	if param == "ServerId" {
		g, gerr := protocol.ParseGUIDBase32(value)
		if gerr != nil {
			return servent, 0, node, bad("parameter ServerId is not a base32 GUID (26 or 32 characters): %q", truncate(value, 40))
		}
		servent = g
	} else {
		g, gerr := protocol.ParseGUID(value)
		if gerr != nil {
			return servent, 0, node, bad("parameter guid is not 32 hex digits: %q", truncate(value, 40))
		}
		servent = g
	}
	if f, ok := queryGet(values, "file"); ok {
		if n, ferr := strconv.ParseUint(f, 10, 32); ferr == nil {
			index = uint32(n)
		}
	}
	node, err = parseXNode(xnode)
	if err != nil {
		return protocol.GUID{}, 0, netip.AddrPort{}, bad("%v", err)
	}
	return servent, index, node, nil
}

// PushProxyWantsTLS reports whether a push-proxy request target carries
// gtk-gnutella's "tls=true" parameter: the downloader takes TLS at its
// X-Node, so the Push the proxy sends asks for a TLS callback (GGEP
// "TLS"). A target that ParsePushProxyRequest refuses says false.
func PushProxyWantsTLS(target string) bool {
	for _, p := range pushProxyPaths {
		if rest, ok := strings.CutPrefix(target, p.prefix); ok {
			values, err := url.ParseQuery(rest)
			if err != nil {
				return false
			}
			v, ok := queryGet(values, "tls")
			return ok && strings.EqualFold(v, "true")
		}
	}
	return false
}

// queryGet returns the first value of name, matched exactly, or else
// without regard to case.
func queryGet(v url.Values, name string) (string, bool) {
	if vs, ok := v[name]; ok && len(vs) > 0 {
		return vs[0], true
	}
	for k, vs := range v {
		if strings.EqualFold(k, name) && len(vs) > 0 {
			return vs[0], true
		}
	}
	return "", false
}

// parseXNode reads "ip:port" (IPv6 in brackets), ignoring what follows a
// comma.
func parseXNode(s string) (netip.AddrPort, error) {
	if first, _, ok := strings.Cut(s, ","); ok {
		s = first
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.AddrPort{}, errors.New("X-Node header missing")
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("X-Node %q is not ip:port", truncate(s, 60))
	}
	a := ap.Addr().Unmap()
	switch {
	case ap.Port() == 0:
		return netip.AddrPort{}, fmt.Errorf("X-Node %s has port 0", ap)
	case a.Zone() != "":
		return netip.AddrPort{}, fmt.Errorf("X-Node %s has a zone", ap)
	}
	switch ClassifyAddr(ap) {
	case AddrUnspecified, AddrMulticast, AddrBroadcast:
		return netip.AddrPort{}, fmt.Errorf("X-Node %s is not a unicast address", ap)
	}
	return netip.AddrPortFrom(a, ap.Port()), nil
}

// NewProxyPush builds the Push a proxy sends to the leaf for a downloader at
// node (gtk-gnutella pproxy.c build_push): an IPv4 node goes in the address
// field; an IPv6 one goes in GGEP "6", the IPv4 field holding 127.0.0.0 as
// gtk-gnutella does (send it only to a peer that announced GGEP). Send it
// with TTL = max TTL − 1 and hops = 1, as it does not come from us.
func NewProxyPush(servent protocol.GUID, index uint32, node netip.AddrPort) (*protocol.Push, error) {
	a := node.Addr().Unmap()
	if !a.IsValid() || node.Port() == 0 {
		return nil, fmt.Errorf("firewall: push for %s: invalid address", node)
	}
	p := &protocol.Push{ServentID: servent, Index: index, Port: node.Port()}
	if a.Is4() {
		p.IP = a.As4()
		return p, nil
	}
	p.IP = [4]byte{127, 0, 0, 0}
	ip6 := a.As16()
	p.GGEP = protocol.GGEP{{ID: "6", Data: ip6[:]}}
	return p, nil
}

// Resolve handles a push-proxy request end to end, short of sending: it
// parses the request (400), applies addrOK to the downloader's address if
// not nil (400: e.g. an AddrPolicy's Check, so that we do not relay
// pushes to hostile addresses), looks the servent up (410) and builds the
// Push (202). The caller sends push on link and answers status.
func (t *ProxyTable) Resolve(target, xnode string, addrOK func(netip.AddrPort) error) (status PushProxyStatus, link uint32, push *protocol.Push, err error) {
	servent, index, node, err := ParsePushProxyRequest(target, xnode)
	if err != nil {
		return PushProxyBadRequest, 0, nil, err
	}
	if addrOK != nil {
		if err := addrOK(node); err != nil {
			return PushProxyBadRequest, 0, nil, fmt.Errorf("%w: %w", ErrPushProxyRequest, err)
		}
	}
	link, ok := t.Lookup(servent)
	if !ok {
		return PushProxyGone, 0, nil, fmt.Errorf("firewall: servent %s is not connected here", servent)
	}
	push, err = NewProxyPush(servent, index, node)
	if err != nil {
		return PushProxyBadRequest, 0, nil, fmt.Errorf("%w: %w", ErrPushProxyRequest, err)
	}
	return PushProxySent, link, push, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// The limits of a push proxy's relays (RelayGuard): gtk-gnutella's push
// limit (5 per 30 s, docs/protocol.md §6.4) for one requester, a little
// more for one leaf, which several downloaders may want at once.
const (
	DefaultRelayPerRequester = 5
	DefaultRelayPerLeaf      = 20
	DefaultRelayWindow       = 30 * time.Second
	DefaultRelayMaxEntries   = 4096
)

// ErrRelayRate is returned by RelayGuard.Allow: too many relays for that
// requester or to that leaf within the window (or too many of either to
// remember). Answer 503 and send nothing.
var ErrRelayRate = errors.New("push-proxy relay rate limit")

// RelayGuard bounds the Pushes a push proxy relays to its leaves
// (docs/protocol.md §6.5, §8.3): per requester (the IP of the X-Node the
// leaf will connect to) and per target leaf, within a sliding window. It
// is safe for concurrent use and its memory is bounded.
type RelayGuard struct {
	mu          sync.Mutex
	byRequester *RateLimit[netip.Addr]
	byLeaf      *RateLimit[protocol.GUID]
}

// NewRelayGuard returns a guard with the Default... limits.
func NewRelayGuard() *RelayGuard {
	return &RelayGuard{
		byRequester: NewRateLimit[netip.Addr](DefaultRelayPerRequester, DefaultRelayWindow, DefaultRelayMaxEntries),
		byLeaf:      NewRateLimit[protocol.GUID](DefaultRelayPerLeaf, DefaultRelayWindow, DefaultRelayMaxEntries),
	}
}

// Allow decides whether a Push for requester may be relayed to leaf now,
// and counts it when so. A relay refused for the leaf does not count
// against the requester, and the other way round.
func (g *RelayGuard) Allow(requester netip.Addr, leaf protocol.GUID, now time.Time) error {
	key := rateKey(requester)
	g.mu.Lock()
	defer g.mu.Unlock()
	if e := g.byLeaf.m[leaf]; e != nil {
		e.expire(now, g.byLeaf.window)
		if len(e.times) >= g.byLeaf.perKey {
			return fmt.Errorf("%w: %d relays to leaf %s in the last %v", ErrRelayRate, len(e.times), leaf, g.byLeaf.window)
		}
	}
	if v, n := g.byRequester.Allow(key, now); v != RateOK {
		return fmt.Errorf("%w: %d relays for %s in the last %v", ErrRelayRate, n, key, g.byRequester.window)
	}
	if v, n := g.byLeaf.Allow(leaf, now); v != RateOK {
		return fmt.Errorf("%w: %d relays to leaf %s in the last %v", ErrRelayRate, n, leaf, g.byLeaf.window)
	}
	return nil
}
