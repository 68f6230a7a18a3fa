package firewall

import (
	"encoding/base32"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"gnutella/protocol"
)

func TestParsePushProxyRequestGood(t *testing.T) {
	b32 := testServent.Base32() // 3WW353YACERDH75LZXXQUCYM7Y
	padded := base32.StdEncoding.EncodeToString(testServent[:])
	hex := testServent.String()
	cases := []struct {
		target, xnode string
		index         uint32
		node          string
	}{
		{"/gnutella/push-proxy?ServerId=" + b32, "1.2.3.4:6346", 0, "1.2.3.4:6346"},
		{"/gnutella/pushproxy?ServerId=" + b32, "1.2.3.4:6346", 0, "1.2.3.4:6346"},
		{"/gnutella/push-proxy?ServerId=" + strings.ToLower(b32), "1.2.3.4:6346", 0, "1.2.3.4:6346"},
		{"/gnutella/push-proxy?ServerId=" + padded, "1.2.3.4:6346", 0, "1.2.3.4:6346"},
		{"/gnutella/push-proxy?ServerId=" + b32 + "%3D%3D%3D%3D%3D%3D", "1.2.3.4:6346", 0, "1.2.3.4:6346"},
		{"/gnutella/push-proxy?ServerId=" + b32 + "&file=42", "1.2.3.4:6346", 42, "1.2.3.4:6346"},
		{"/gnutella/push-proxy?file=4294967295&ServerId=" + b32, "1.2.3.4:6346", 4294967295, "1.2.3.4:6346"},
		{"/gnutella/push-proxy?ServerId=" + b32 + "&file=junk", "1.2.3.4:6346", 0, "1.2.3.4:6346"},
		{"/gnutella/push-proxy?ServerId=" + b32 + "&file=4294967296", "1.2.3.4:6346", 0, "1.2.3.4:6346"},
		{"/gnutella/push-proxy?serverid=" + b32 + "&tls=true", "1.2.3.4:6346", 0, "1.2.3.4:6346"},
		{"/gnet/push-proxy?guid=" + hex, "1.2.3.4:6346", 0, "1.2.3.4:6346"},
		{"/gnet/push-proxy?guid=" + strings.ToUpper(hex) + "&file=3", "127.0.0.1:6346", 3, "127.0.0.1:6346"},
		{"/gnutella/push-proxy?ServerId=" + b32, "  1.2.3.4:6346  ", 0, "1.2.3.4:6346"},
		{"/gnutella/push-proxy?ServerId=" + b32, "1.2.3.4:6346, [2001:4860::1]:6346", 0, "1.2.3.4:6346"},
		{"/gnutella/push-proxy?ServerId=" + b32, "[2001:4860::1]:6346", 0, "[2001:4860::1]:6346"},
		{"/gnutella/push-proxy?ServerId=" + b32, "[::ffff:1.2.3.4]:6346", 0, "1.2.3.4:6346"},
	}
	for _, c := range cases {
		g, idx, node, err := ParsePushProxyRequest(c.target, c.xnode)
		if err != nil {
			t.Errorf("Parse(%q, %q): %v", c.target, c.xnode, err)
			continue
		}
		if g != testServent || idx != c.index || node != ap(c.node) {
			t.Errorf("Parse(%q, %q) = %s, %d, %s", c.target, c.xnode, g, idx, node)
		}
		if !IsPushProxyTarget(c.target) {
			t.Errorf("IsPushProxyTarget(%q) = false", c.target)
		}
	}
}

func TestParsePushProxyRequestBad(t *testing.T) {
	b32 := testServent.Base32()
	hex := testServent.String()
	good := "/gnutella/push-proxy?ServerId=" + b32
	cases := []struct{ name, target, xnode string }{
		{"missing X-Node", good, ""},
		{"blank X-Node", good, "   "},
		{"X-Node without port", good, "1.2.3.4"},
		{"X-Node port 0", good, "1.2.3.4:0"},
		{"X-Node host name", good, "example.com:6346"},
		{"X-Node unspecified", good, "0.0.0.0:6346"},
		{"X-Node multicast", good, "224.1.2.3:6346"},
		{"X-Node broadcast", good, "255.255.255.255:6346"},
		{"X-Node v6 multicast", good, "[ff02::1]:6346"},
		{"X-Node zone", good, "[fe80::1%eth0]:6346"},
		{"X-Node port too big", good, "1.2.3.4:65536"},
		{"base32 with 1", "/gnutella/push-proxy?ServerId=1" + b32[1:], "1.2.3.4:6346"},
		{"base32 with 8", "/gnutella/push-proxy?ServerId=" + b32[:25] + "8", "1.2.3.4:6346"},
		{"base32 with =", "/gnutella/push-proxy?ServerId=" + b32[:25] + "%3D", "1.2.3.4:6346"},
		{"base32 25 chars", "/gnutella/push-proxy?ServerId=" + b32[:25], "1.2.3.4:6346"},
		{"base32 27 chars", "/gnutella/push-proxy?ServerId=" + b32 + "A", "1.2.3.4:6346"},
		{"base32 32 chars bad padding", "/gnutella/push-proxy?ServerId=" + b32 + "AAAAAA", "1.2.3.4:6346"},
		{"base32 33 chars", "/gnutella/push-proxy?ServerId=" + b32 + "%3D%3D%3D%3D%3D%3D%3D", "1.2.3.4:6346"},
		{"hex as ServerId", "/gnutella/push-proxy?ServerId=" + hex, "1.2.3.4:6346"},
		{"empty ServerId", "/gnutella/push-proxy?ServerId=", "1.2.3.4:6346"},
		{"no ServerId", "/gnutella/push-proxy?file=1", "1.2.3.4:6346"},
		{"no query", "/gnutella/push-proxy?", "1.2.3.4:6346"},
		{"base32 as guid", "/gnet/push-proxy?guid=" + b32, "1.2.3.4:6346"},
		{"guid not hex", "/gnet/push-proxy?guid=" + strings.Repeat("g", 32), "1.2.3.4:6346"},
		{"guid short", "/gnet/push-proxy?guid=" + hex[:30], "1.2.3.4:6346"},
		{"ServerId on gnet path", "/gnet/push-proxy?ServerId=" + b32, "1.2.3.4:6346"},
		{"no question mark", "/gnutella/push-proxy", "1.2.3.4:6346"},
		{"path then slash", "/gnutella/push-proxy/?ServerId=" + b32, "1.2.3.4:6346"},
		{"upper-case path", "/GNUTELLA/PUSH-PROXY?ServerId=" + b32, "1.2.3.4:6346"},
		{"absolute URL", "http://host/gnutella/push-proxy?ServerId=" + b32, "1.2.3.4:6346"},
		{"other path", "/uri-res/N2R?urn:sha1:PLSTHIPQGSSZTS5FJUPAKUZWUGYQYPFB", "1.2.3.4:6346"},
		{"empty target", "", "1.2.3.4:6346"},
		{"bad escape", "/gnutella/push-proxy?ServerId=" + b32 + "&x=%zz", "1.2.3.4:6346"},
		{"semicolon", "/gnutella/push-proxy?ServerId=" + b32 + ";file=1", "1.2.3.4:6346"},
	}
	for _, c := range cases {
		g, idx, node, err := ParsePushProxyRequest(c.target, c.xnode)
		if !errors.Is(err, ErrPushProxyRequest) {
			t.Errorf("%s: Parse(%q, %q) = %s, %d, %s, %v; want ErrPushProxyRequest", c.name, c.target, c.xnode, g, idx, node, err)
			continue
		}
		if !g.IsZero() || idx != 0 || node.IsValid() {
			t.Errorf("%s: results not zero on error", c.name)
		}
	}
	for _, s := range []string{"/gnutella/push-proxy", "/get/1/x", "/GNUTELLA/pushproxy?x", ""} {
		if IsPushProxyTarget(s) {
			t.Errorf("IsPushProxyTarget(%q) = true", s)
		}
	}
}

func TestProxyTable(t *testing.T) {
	var tab ProxyTable // the zero value works
	if _, ok := tab.Lookup(testServent); ok {
		t.Fatal("empty table found something")
	}
	tab.Remove(1) // no-op on an empty table
	a, b := testServent, protocol.GUID{1, 2, 3}
	tab.Add(a, 1)
	tab.Add(b, 2)
	if l, ok := tab.Lookup(a); !ok || l != 1 {
		t.Fatalf("Lookup(a) = %d, %v", l, ok)
	}
	if l, ok := tab.Lookup(b); !ok || l != 2 || tab.Len() != 2 {
		t.Fatalf("Lookup(b) = %d, %v; Len %d", l, ok, tab.Len())
	}
	// a reconnects through link 3: it moves, link 1 no longer maps to it.
	tab.Add(a, 3)
	if l, _ := tab.Lookup(a); l != 3 {
		t.Fatalf("a not moved: %d", l)
	}
	tab.Remove(1) // stale link: must not drop a
	if l, ok := tab.Lookup(a); !ok || l != 3 {
		t.Fatal("removing the old link dropped the moved servent")
	}
	// Link 2 now proxies another GUID: b is forgotten.
	c := protocol.GUID{9}
	tab.Add(c, 2)
	if _, ok := tab.Lookup(b); ok {
		t.Fatal("link 2 proxies two servents")
	}
	if tab.Len() != 2 {
		t.Fatalf("Len = %d", tab.Len())
	}
	tab.Add(c, 2) // repeated request: no change
	tab.Remove(2)
	tab.Remove(3)
	if tab.Len() != 0 {
		t.Fatalf("Len = %d after removing every link", tab.Len())
	}
}

func TestProxyTableConcurrent(t *testing.T) {
	tab := NewProxyTable()
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				g := protocol.GUID{byte(w), byte(i % 7)}
				link := uint32(w*10 + i%5)
				switch i % 3 {
				case 0:
					tab.Add(g, link)
				case 1:
					tab.Lookup(g)
				case 2:
					tab.Remove(link)
				}
			}
		}()
	}
	wg.Wait()
	// Invariant: both maps agree.
	tab.mu.RLock()
	defer tab.mu.RUnlock()
	if len(tab.byGUID) != len(tab.byLink) {
		t.Fatalf("maps disagree: %d vs %d", len(tab.byGUID), len(tab.byLink))
	}
	for g, l := range tab.byGUID {
		if tab.byLink[l] != g {
			t.Fatalf("%s → %d → %s", g, l, tab.byLink[l])
		}
	}
}

func TestResolve(t *testing.T) {
	tab := NewProxyTable()
	tab.Add(testServent, 77)
	target := "/gnutella/push-proxy?ServerId=" + testServent.Base32() + "&file=5"

	st, link, push, err := tab.Resolve(target, "1.2.3.4:6346", nil)
	if err != nil || st != PushProxySent || link != 77 {
		t.Fatalf("Resolve = %d, %d, %v", st, link, err)
	}
	if push.ServentID != testServent || push.Index != 5 || push.IP != [4]byte{1, 2, 3, 4} || push.Port != 6346 || len(push.GGEP) != 0 {
		t.Fatalf("push = %s", push)
	}

	st, _, _, err = tab.Resolve("/gnet/push-proxy?guid="+strings.Repeat("00", 16), "1.2.3.4:6346", nil)
	if st != PushProxyGone || err == nil {
		t.Fatalf("unknown servent: %d, %v", st, err)
	}
	st, _, _, err = tab.Resolve(target, "", nil)
	if st != PushProxyBadRequest || !errors.Is(err, ErrPushProxyRequest) {
		t.Fatalf("missing X-Node: %d, %v", st, err)
	}
	// The address policy refuses to relay to loopback on the internet.
	st, _, _, err = tab.Resolve(target, "127.0.0.1:6346", AddrPolicy{}.Check)
	if st != PushProxyBadRequest || !errors.Is(err, ErrPushProxyRequest) {
		t.Fatalf("policy: %d, %v", st, err)
	}
	st, _, _, _ = tab.Resolve(target, "127.0.0.1:6346", AddrPolicy{AllowLoopback: true}.Check)
	if st != PushProxySent {
		t.Fatalf("testnet policy: %d", st)
	}
	for _, s := range []PushProxyStatus{PushProxySent, PushProxyRouted, PushProxyBadRequest, PushProxyGone, 999} {
		if s.Reason() == "" {
			t.Errorf("no reason for %d", s)
		}
	}
}

func TestNewProxyPushIPv6(t *testing.T) {
	p, err := NewProxyPush(testServent, 1, ap("[2001:4860::1]:6346"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	q, err := protocol.DecodePush(b)
	if err != nil {
		t.Fatal(err)
	}
	ip6, ok := q.GGEP.Get("6")
	if !ok || netip.AddrFrom16([16]byte(ip6)) != netip.MustParseAddr("2001:4860::1") {
		t.Fatalf("GGEP 6 = %x, %v", ip6, ok)
	}
	if q.IP != [4]byte{127, 0, 0, 0} || q.Port != 6346 || q.ServentID != testServent {
		t.Fatalf("push = %s", q)
	}
	if _, err := NewProxyPush(testServent, 0, netip.AddrPort{}); err == nil {
		t.Fatal("push to the zero address built")
	}
	if _, err := NewProxyPush(testServent, 0, ap("1.2.3.4:0")); err == nil {
		t.Fatal("push to port 0 built")
	}
}

func FuzzParsePushProxyRequest(f *testing.F) {
	b32 := testServent.Base32()
	f.Add("/gnutella/push-proxy?ServerId="+b32, "1.2.3.4:6346")
	f.Add("/gnutella/pushproxy?ServerId="+strings.ToLower(b32)+"%3D%3D%3D%3D%3D%3D&file=9", "[::1]:1, 1.2.3.4:2")
	f.Add("/gnet/push-proxy?guid="+testServent.String()+"&file=4294967295", "[::ffff:8.8.8.8]:65535")
	f.Add("/gnet/push-proxy?guid=%zz", "")
	f.Add("/gnutella/push-proxy?ServerId=;", "1.2.3.4")
	f.Add("/gnutella/push-proxy?ServerId="+b32+"&tls=true", "1.2.3.4:6346")
	f.Add("/gnet/push-proxy?guid="+testServent.String()+"&TLS=TRUE&tls=false", "1.2.3.4:6346")
	f.Fuzz(func(t *testing.T, target, xnode string) {
		if PushProxyWantsTLS(target) && (!IsPushProxyTarget(target) || !strings.Contains(strings.ToLower(target), "tls=")) {
			t.Fatalf("tls wanted by %q", target)
		}
		g, idx, node, err := ParsePushProxyRequest(target, xnode)
		if err != nil {
			if !errors.Is(err, ErrPushProxyRequest) {
				t.Fatalf("error does not wrap ErrPushProxyRequest: %v", err)
			}
			if !g.IsZero() || idx != 0 || node.IsValid() {
				t.Fatal("non-zero results with an error")
			}
			return
		}
		if !IsPushProxyTarget(target) {
			t.Fatalf("parsed a target IsPushProxyTarget rejects: %q", target)
		}
		a := node.Addr()
		if !node.IsValid() || node.Port() == 0 || a.Is4In6() || a.IsUnspecified() || a.IsMulticast() || a.Zone() != "" {
			t.Fatalf("bad node %s", node)
		}
		// The canonical forms parse back to the same values.
		for _, tgt := range []string{
			fmt.Sprintf("/gnutella/push-proxy?ServerId=%s&file=%d", g.Base32(), idx),
			fmt.Sprintf("/gnet/push-proxy?guid=%s&file=%d", g, idx),
		} {
			g2, idx2, node2, err := ParsePushProxyRequest(tgt, node.String())
			if err != nil || g2 != g || idx2 != idx || node2 != node {
				t.Fatalf("round trip %q: %s %d %s %v", tgt, g2, idx2, node2, err)
			}
		}
		if p, err := NewProxyPush(g, idx, node); err != nil {
			t.Fatalf("NewProxyPush: %v", err)
		} else if _, err := p.AppendTo(nil); err != nil {
			t.Fatalf("push does not encode: %v", err)
		}
	})
}

func TestRelayGuardLimitsRequesterAndLeaf(t *testing.T) {
	g := NewRelayGuard()
	now := time.Unix(1000, 0)
	leaf := protocol.NewGUID()
	req := netip.MustParseAddr("5.6.7.8")
	for i := range DefaultRelayPerRequester {
		if err := g.Allow(req, leaf, now); err != nil {
			t.Fatalf("relay %d refused: %v", i, err)
		}
	}
	if err := g.Allow(req, leaf, now); !errors.Is(err, ErrRelayRate) {
		t.Fatalf("relay over the requester limit: %v", err)
	}
	// Other requesters fill the leaf's limit, then the leaf is refused to all.
	for i := DefaultRelayPerRequester; i < DefaultRelayPerLeaf; i++ {
		if err := g.Allow(netip.AddrFrom4([4]byte{9, 0, 0, byte(i)}), leaf, now); err != nil {
			t.Fatalf("relay %d refused: %v", i, err)
		}
	}
	if err := g.Allow(netip.MustParseAddr("9.9.9.9"), leaf, now); !errors.Is(err, ErrRelayRate) {
		t.Fatalf("relay over the leaf limit: %v", err)
	}
	if err := g.Allow(netip.MustParseAddr("9.9.9.9"), protocol.NewGUID(), now); err != nil {
		t.Fatalf("another leaf refused: %v", err)
	}
	// The window slides.
	later := now.Add(DefaultRelayWindow)
	if err := g.Allow(req, leaf, later); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

// gtk-gnutella's downloader adds "&tls=true" when its TLS is on: the
// proxy's Push then asks for a TLS callback. Anything else is no.
func TestPushProxyWantsTLS(t *testing.T) {
	b32 := testServent.Base32()
	for target, want := range map[string]bool{
		"/gnutella/push-proxy?ServerId=" + b32 + "&tls=true":          true,
		"/gnutella/pushproxy?ServerId=" + b32 + "&file=3&TLS=True":    true,
		"/gnet/push-proxy?guid=" + testServent.String() + "&tls=true": true,
		"/gnutella/push-proxy?ServerId=" + b32:                        false,
		"/gnutella/push-proxy?ServerId=" + b32 + "&tls=false":         false,
		"/gnutella/push-proxy?ServerId=" + b32 + "&tls=%zz":           false,
		"/uri-res/N2R?tls=true":                                       false,
	} {
		if got := PushProxyWantsTLS(target); got != want {
			t.Errorf("PushProxyWantsTLS(%q) = %v, want %v", target, got, want)
		}
	}
}
