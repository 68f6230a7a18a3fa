package servent

import (
	"bufio"
	"gnutella/testnet/await"
	"net"
	"net/netip"
	"testing"

	"gnutella/firewall"
	"gnutella/protocol"
)

// An ultrapeer forgets the leaf it is push proxy for when the leaf's link
// closes: a push-proxy request for it then gets 410.
func TestPushProxyEntryLeavesWithTheLeaf(t *testing.T) {
	uc := testConfig()
	uc.Transfers = noTransfers{}
	up := startServent(t, uc)
	leaf := dialRaw(t, up)
	guid := protocol.NewGUID()
	leaf.handshake(leafHeaders(guid))
	payload, err := protocol.NewPushProxyRequest().AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	leaf.send(protocol.Header{ID: guid, Type: protocol.TypeVendor, TTL: 1}, payload)
	for {
		h, b := leaf.next()
		if h.Type != protocol.TypeVendor {
			continue
		}
		if v, err := protocol.DecodeVendor(h.Type, b); err == nil && v.Is(protocol.PushProxyAckID) {
			break
		}
	}
	if up.proxies.forLeaves.Len() != 1 {
		t.Fatalf("proxy table holds %d leaves, want 1", up.proxies.forLeaves.Len())
	}
	self := up.Addr()
	if code := up.servePushProxy(guid, self, false); code != 202 {
		t.Fatalf("push proxy for our leaf answered %d, want 202", code)
	}
	leaf.conn.Close()
	await.Until(t, "the ultrapeer to drop its links", func() bool { return up.LinkCount() == 0 })
	if n := up.proxies.forLeaves.Len(); n != 0 {
		t.Fatalf("proxy table still holds %d leaves after the link closed", n)
	}
	if code := up.servePushProxy(guid, self, false); code != 410 {
		t.Fatalf("push proxy for a gone leaf answered %d, want 410", code)
	}
}

// A leaf asks each ultrapeer once to be its push proxy, and forgets the
// links it asked once they are closed.
func TestAskedPushProxiesArePruned(t *testing.T) {
	lc := testConfig()
	lc.Mode = ModeLeaf
	leaf := startServent(t, lc)
	uc := testConfig()
	uc.Transfers = noTransfers{}
	up := startServent(t, uc)
	l, err := leaf.Connect(ctxT(t), up.Addr())
	if err != nil {
		t.Fatal(err)
	}
	await.Until(t, "LIME/21 support announced", func() bool { return l.Supports(protocol.PushProxyRequestID) })
	leaf.askPushProxies()
	leaf.askPushProxies()
	await.Until(t, "the proxy entry of the leaf", func() bool { return up.proxies.forLeaves.Len() == 1 })
	leaf.proxies.mu.Lock()
	asked := len(leaf.proxies.asked)
	leaf.proxies.mu.Unlock()
	if asked != 1 {
		t.Fatalf("leaf remembers %d asked links, want 1", asked)
	}
	l.Bye(protocol.ByeShutdown, "test")
	<-l.Done()
	await.Until(t, "the leaf to drop its links", func() bool { return leaf.LinkCount() == 0 })
	leaf.askPushProxies()
	leaf.proxies.mu.Lock()
	asked = len(leaf.proxies.asked)
	leaf.proxies.mu.Unlock()
	if asked != 0 {
		t.Fatalf("leaf remembers %d asked links after they closed, want 0", asked)
	}
}

// noTransfers serves nothing: enough for a servent to act as push proxy.
type noTransfers struct{}

func (noTransfers) ServeHTTPConn(conn net.Conn, _ *bufio.Reader, _ string)  { conn.Close() }
func (noTransfers) ServeGIV(conn net.Conn, _ *bufio.Reader, _ protocol.GIV) { conn.Close() }
func (noTransfers) Busy() bool                                              { return false }

// A push proxy relays at most firewall.DefaultRelayPerRequester Pushes for
// one X-Node per window (503 after), none for a hostile X-Node (403), and
// every relayed one reaches the leaf.
func TestPushProxyRelaysAreLimited(t *testing.T) {
	uc := testConfig()
	uc.Transfers = noTransfers{}
	uc.Hostiles = testHostiles()
	up := startServent(t, uc)
	leaf := dialRaw(t, up)
	guid := protocol.NewGUID()
	leaf.handshake(leafHeaders(guid))
	payload, err := protocol.NewPushProxyRequest().AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	leaf.send(protocol.Header{ID: guid, Type: protocol.TypeVendor, TTL: 1}, payload)
	for {
		h, b := leaf.next()
		if v, err := protocol.DecodeVendor(h.Type, b); h.Type == protocol.TypeVendor && err == nil && v.Is(protocol.PushProxyAckID) {
			break
		}
	}
	xnode := netip.MustParseAddrPort("5.6.7.8:6346")
	codes := map[int]int{}
	for range 100 {
		codes[up.servePushProxy(guid, xnode, false)]++
	}
	if codes[202] != firewall.DefaultRelayPerRequester || codes[503] != 100-firewall.DefaultRelayPerRequester {
		t.Fatalf("100 requests for one X-Node answered %v", codes)
	}
	if code := up.servePushProxy(guid, netip.MustParseAddrPort("127.0.0.9:6346"), false); code != 403 {
		t.Fatalf("hostile X-Node answered %d, want 403", code)
	}
	// Exactly the relayed Pushes reach the leaf: the sync ping's pong
	// comes after them.
	id := protocol.NewGUID()
	leaf.send(protocol.Header{ID: id, Type: protocol.TypePing, TTL: 1}, nil)
	pushes := 0
	for {
		h, b := leaf.next()
		if h.Type == protocol.TypePush {
			p, err := protocol.DecodePush(b)
			if err != nil || p.AddrPort() != xnode {
				t.Fatalf("push %v %v", p, err)
			}
			pushes++
		}
		if h.Type == protocol.TypePong && h.ID == id {
			break
		}
	}
	if pushes != firewall.DefaultRelayPerRequester {
		t.Fatalf("%d pushes reached the leaf, want %d", pushes, firewall.DefaultRelayPerRequester)
	}
}

// firewalledAlways is a Firewall that believes we are firewalled.
type firewalledAlways struct{}

func (firewalledAlways) Firewalled() bool              { return true }
func (firewalledAlways) SawInbound(netip.AddrPort)     {}
func (firewalledAlways) SawConnectBack(netip.AddrPort) {}

// An ultrapeer that believes it is firewalled asks no push proxy of its
// ultrapeer links (gtk-gnutella: "got Push-Proxy Request from non-leaf
// node"): after askPushProxies, the answer to a ping arrives with no
// LIME/21 before it (both go in the same priority band, first in, first
// out, so a LIME/21 queued by askPushProxies would come first).
func TestUltrapeerAsksNoPushProxy(t *testing.T) {
	c := testConfig()
	c.Firewall = firewalledAlways{}
	up := startServent(t, c)
	peer := dialRaw(t, up)
	peer.handshake(peerHeaders(protocol.NewGUID()))
	ms, err := protocol.NewMessagesSupported([]protocol.VendorMessageID{protocol.PushProxyRequestID}).AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	peer.send(protocol.Header{ID: protocol.NewGUID(), Type: protocol.TypeVendor, TTL: 1}, ms)
	await.Until(t, "LIME/21 support seen", func() bool {
		for _, l := range up.Links() {
			if l.Supports(protocol.PushProxyRequestID) {
				return true
			}
		}
		return false
	})
	up.askPushProxies()
	ping := protocol.NewGUID()
	peer.send(protocol.Header{ID: ping, Type: protocol.TypePing, TTL: 1}, nil)
	for {
		h, b := peer.next()
		if h.Type == protocol.TypePong && h.ID == ping {
			break
		}
		if h.Type != protocol.TypeVendor {
			continue
		}
		if v, err := protocol.DecodeVendor(h.Type, b); err == nil && v.Is(protocol.PushProxyRequestID) {
			t.Fatal("the ultrapeer sent a Push-Proxy Request (LIME/21) on an ultrapeer link")
		}
	}
}
