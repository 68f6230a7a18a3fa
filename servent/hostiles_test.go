package servent

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"gnutella/firewall"
	"gnutella/protocol"
	"gnutella/servent/hostcache"
	"gnutella/transfer"
)

// Hostile peers over real TCP on 127.0.0.0/8. Every dial of the servent
// under test goes through a countingTransport, which records the attempt
// and refuses any address that is not loopback itself: nothing can leave
// this machine, even by mistake.

// countingTransport is TCP for loopback addresses only, counting dial
// attempts per IP.
type countingTransport struct {
	TCPTransport
	mu       sync.Mutex
	attempts map[netip.Addr]int
	dialled  chan netip.Addr // if set, told of each attempt (never blocks)
}

var errNotLoopback = errors.New("test transport: only loopback is dialled")

func (c *countingTransport) Dial(ctx context.Context, addr string) (net.Conn, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.attempts == nil {
		c.attempts = map[netip.Addr]int{}
	}
	c.attempts[ap.Addr().Unmap()]++
	c.mu.Unlock()
	select {
	case c.dialled <- ap.Addr().Unmap():
	default:
	}
	if !ap.Addr().Unmap().IsLoopback() {
		return nil, fmt.Errorf("dial %s: %w", addr, errNotLoopback)
	}
	return c.TCPTransport.Dial(ctx, addr)
}

func (c *countingTransport) count(a string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.attempts[netip.MustParseAddr(a)]
}

// testHostiles lists 127.0.0.9 (and bans nothing yet).
func testHostiles() *firewall.Hostiles {
	h := firewall.NewHostiles(0, nil)
	h.SetStatic(firewall.NewAddrSet(netip.MustParsePrefix("127.0.0.9/32")), "test list")
	return h
}

// pushNode starts a node on 127.0.0.1 dialling through a countingTransport,
// with the given push address policy.
func pushNode(t *testing.T, policy firewall.AddrPolicy) (*Node, *countingTransport) {
	t.Helper()
	tr := &countingTransport{}
	c := testNodeConfig(t)
	c.Transport = tr
	c.Hostiles = testHostiles()
	c.PushPolicy = firewall.PushPolicy{AddrPolicy: policy}
	return startNode(t, c), tr
}

// sendPushes sends n Pushes for the node's servent ID with callback ip and
// ports from 1000 on, then syncs: every one has been handled on return.
func sendPushes(p *rawPeer, id protocol.GUID, ip string, n int) {
	a := netip.MustParseAddr(ip).As4()
	for i := range n {
		push := &protocol.Push{ServentID: id, IP: a, Port: uint16(1000 + i)}
		payload, err := push.AppendTo(nil)
		if err != nil {
			p.t.Fatal(err)
		}
		p.send(protocol.Header{ID: protocol.NewGUID(), Type: protocol.TypePush, TTL: 1}, payload)
	}
	p.sync()
}

// The reflection attack of docs/protocol.md §8.3: a peer claims a
// Listen-IP, then sends 4,900 Pushes whose callback is that address on
// varying ports. What it claims lifts no limit: at most PerIP (5) connect
// attempts per window to that address.
func TestPushReflectionClaimedListenIP(t *testing.T) {
	n, tr := pushNode(t, firewall.AddrPolicy{}) // the Internet's policy
	start := time.Now()
	p := dialRaw(t, n.Servent)
	p.handshake(peerHeaders(protocol.NewGUID(), "Listen-IP: 5.6.7.8:6346"))
	sendPushes(p, n.ID(), "5.6.7.8", 4900)
	if err := n.Stop(); err != nil { // waits for every callback goroutine
		t.Fatal(err)
	}
	windows := int(time.Since(start)/firewall.DefaultPushWindow) + 1
	got := tr.count("5.6.7.8")
	t.Logf("4900 pushes to a claimed Listen-IP: %d connect attempts to 5.6.7.8", got)
	if got == 0 || got > firewall.DefaultPushPerIP*windows {
		t.Fatalf("%d connect attempts to 5.6.7.8, want 1..%d", got, firewall.DefaultPushPerIP*windows)
	}
}

// The same with a private Listen-IP and loopback or private callbacks:
// the address policy holds (no loopback, no private), whatever the peer
// claims, so no connect at all.
func TestPushClaimedPrivateListenIPLiftsNoPolicy(t *testing.T) {
	n, tr := pushNode(t, firewall.AddrPolicy{})
	p := dialRaw(t, n.Servent)
	p.handshake(peerHeaders(protocol.NewGUID(), "Listen-IP: 10.0.0.1"))
	sendPushes(p, n.ID(), "127.0.0.1", 4900)
	sendPushes(p, n.ID(), "10.0.0.1", 100)
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	if a, b := tr.count("127.0.0.1"), tr.count("10.0.0.1"); a != 0 || b != 0 {
		t.Fatalf("connect attempts: %d to 127.0.0.1, %d to 10.0.0.1; want none", a, b)
	}
}

// A Push whose callback is hostile is not answered, even where the policy
// allows loopback; one to another loopback address is.
func TestPushToHostileIsNotAnswered(t *testing.T) {
	n, tr := pushNode(t, firewall.AddrPolicy{AllowLoopback: true})
	p := dialRaw(t, n.Servent)
	p.handshake(peerHeaders(protocol.NewGUID()))
	sendPushes(p, n.ID(), "127.0.0.9", 10)
	sendPushes(p, n.ID(), "127.0.0.3", 1)
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	if got := tr.count("127.0.0.9"); got != 0 {
		t.Fatalf("%d connect attempts to the hostile 127.0.0.9", got)
	}
	if got := tr.count("127.0.0.3"); got != 1 {
		t.Fatalf("%d connect attempts to 127.0.0.3, want 1", got)
	}
}

// handshakeAnswer sends a handshake request and returns what the servent
// answered before closing, or its first line.
func handshakeAnswer(t *testing.T, conn net.Conn) string {
	t.Helper()
	req := protocol.HandshakeRequest{Version: "0.6"}
	for _, h := range peerHeaders(protocol.NewGUID()) {
		name, value, _ := cutHeader(h)
		req.Headers.Add(name, value)
	}
	if _, err := conn.Write(req.AppendTo(nil)); err != nil {
		return "" // already closed
	}
	b := make([]byte, 12)
	n, _ := io.ReadFull(conn, b)
	return string(b[:n])
}

func cutHeader(h string) (string, string, bool) {
	for i := 0; i < len(h); i++ {
		if h[i] == ':' {
			j := i + 1
			for j < len(h) && h[j] == ' ' {
				j++
			}
			return h[:i], h[j:], true
		}
	}
	return h, "", false
}

// An inbound connection from a hostile address, or from one banned at run
// time, is closed unanswered; others are answered.
func TestInboundFromHostileIsRefused(t *testing.T) {
	c := testConfig()
	c.Hostiles = testHostiles()
	s := startServent(t, c)
	if got := handshakeAnswer(t, dialFrom(t, s, "127.0.0.9").conn); got != "" {
		t.Fatalf("hostile 127.0.0.9 was answered %q", got)
	}
	if got := handshakeAnswer(t, dialFrom(t, s, "127.0.0.5").conn); got != "GNUTELLA/0.6" {
		t.Fatalf("127.0.0.5 was answered %q, want a handshake", got)
	}
	s.Hostiles().Ban(netip.MustParseAddr("127.0.0.5"), time.Hour, "test ban")
	if got := handshakeAnswer(t, dialFrom(t, s, "127.0.0.5").conn); got != "" {
		t.Fatalf("banned 127.0.0.5 was answered %q", got)
	}
}

// Pongs and X-Try entries advertising a hostile address are not stored;
// the others are.
func TestHostilePongsAndXTryAreNotStored(t *testing.T) {
	c := testConfig()
	c.Hostiles = testHostiles()
	s := startServent(t, c)
	p := dialRaw(t, s)
	p.handshake(peerHeaders(protocol.NewGUID(),
		"X-Try-Ultrapeers: 127.0.0.9:7001,127.0.0.4:7001",
		"X-Try: 127.0.0.9:7002,127.0.0.4:7002"))
	for _, ip := range []string{"127.0.0.9", "127.0.0.4"} {
		pong := &protocol.Pong{IP: netip.MustParseAddr(ip).As4(), Port: 7003}
		payload, err := pong.AppendTo(nil)
		if err != nil {
			t.Fatal(err)
		}
		p.send(protocol.Header{ID: protocol.NewGUID(), Type: protocol.TypePong, TTL: 1, Hops: 1}, payload)
	}
	p.sync()
	for _, port := range []uint16{7001, 7002, 7003} {
		if s.Hosts().Has(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.9"), port)) {
			t.Errorf("hostile 127.0.0.9:%d stored", port)
		}
		if !s.Hosts().Has(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.4"), port)) {
			t.Errorf("127.0.0.4:%d not stored", port)
		}
	}
}

// The servent never dials a hostile or banned address, whoever asks: the
// dial is refused before the transport sees it.
func TestHostileIsNeverDialled(t *testing.T) {
	tr := &countingTransport{}
	c := testConfig()
	c.Transport = tr
	c.Hostiles = testHostiles()
	s := startServent(t, c)
	if _, err := s.Connect(ctxT(t), netip.MustParseAddrPort("127.0.0.9:6346")); !errors.Is(err, errHostile) {
		t.Fatalf("connect to a hostile: %v", err)
	}
	s.Hostiles().Ban(netip.MustParseAddr("5.6.7.8"), time.Hour, "test ban")
	if _, err := s.transport.Dial(ctxT(t), "5.6.7.8:6346"); !errors.Is(err, errHostile) {
		t.Fatalf("dial of a banned address: %v", err)
	}
	if n := tr.count("127.0.0.9") + tr.count("5.6.7.8"); n != 0 {
		t.Fatalf("%d dials reached the transport", n)
	}
	// The connector does not pick it either.
	s.Hosts().Add(netip.MustParseAddrPort("127.0.0.9:6346"), true, hostcache.SourcePeerFlag, time.Now())
	if s.Hosts().Len() != 0 {
		t.Fatal("hostile --peer stored")
	}
}

// The hostile lists of the data folder are loaded at start; bad lines are
// skipped, not fatal.
func TestHostilesLoadedFromDataDir(t *testing.T) {
	c := testConfig()
	c.DataDir = t.TempDir()
	writeFile(t, c.DataDir, "hostiles.txt", "# list\n127.0.0.9\nnot an address\n")
	writeFile(t, c.DataDir, "bans.txt", "127.0.0.10/31\n")
	s := startServent(t, c)
	for _, ip := range []string{"127.0.0.9", "127.0.0.10", "127.0.0.11"} {
		if _, ok := s.Hostiles().Banned(netip.MustParseAddr(ip)); !ok {
			t.Errorf("%s not hostile", ip)
		}
	}
	if _, ok := s.Hostiles().Banned(netip.MustParseAddr("127.0.0.12")); ok {
		t.Error("127.0.0.12 hostile")
	}
}

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Servent.Ban closes the links from the banned address with Bye 415, and
// the peer cannot come back.
func TestBanClosesLinksFromTheAddress(t *testing.T) {
	c := testConfig()
	c.Hostiles = testHostiles()
	s := startServent(t, c)
	conn := dialFrom(t, s, "127.0.0.7").conn
	p := &rawPeer{t: t, conn: conn, br: bufio.NewReader(conn), w: conn}
	p.handshake(peerHeaders(protocol.NewGUID()))
	other := dialRaw(t, s) // from 127.0.0.1
	other.handshake(peerHeaders(protocol.NewGUID()))
	s.Ban(netip.MustParseAddr("127.0.0.7"), time.Hour, "caught")
	if bye := p.expectBye(byeHostile); bye.Reason() != "Hostile Peer" {
		t.Errorf("Bye reason %q", bye.Reason())
	}
	other.sync() // the other link is untouched
	if r, ok := s.Banned(netip.MustParseAddr("127.0.0.7")); !ok || r != "caught" {
		t.Fatalf("Banned: %q %v", r, ok)
	}
	if got := handshakeAnswer(t, dialFrom(t, s, "127.0.0.7").conn); got != "" {
		t.Fatalf("banned peer answered %q on its way back", got)
	}
}

// The push proxies of a hit are forgeable: at most maxTrailerProxies are
// asked, one per IP, none hostile nor refused by the address policy.
func TestSendPushAsksFewProxiesOncePerIP(t *testing.T) {
	n, tr := pushNode(t, firewall.AddrPolicy{})
	var proxies []netip.AddrPort
	for port := range uint16(50) {
		proxies = append(proxies, netip.AddrPortFrom(netip.MustParseAddr("5.6.7.8"), 1000+port))
	}
	proxies = append(proxies, netip.MustParseAddrPort("127.0.0.9:1000")) // hostile
	for i := range 20 {
		proxies = append(proxies, netip.AddrPortFrom(netip.AddrFrom4([4]byte{5, 6, 8, byte(i)}), 1000))
	}
	src := transfer.Source{ServentID: protocol.NewGUID(), PushProxies: proxies}
	if err := n.sendPush(src); err == nil {
		t.Fatal("push sent with no proxy answering and no route")
	}
	total := 0
	tr.mu.Lock()
	for _, c := range tr.attempts {
		total += c
	}
	tr.mu.Unlock()
	if got := tr.count("5.6.7.8"); got != 1 || total != maxTrailerProxies || tr.count("127.0.0.9") != 0 {
		t.Fatalf("%d requests to 5.6.7.8 (want 1), %d in all (want %d), %d to the hostile",
			got, total, maxTrailerProxies, tr.count("127.0.0.9"))
	}
}

// An ultrapeer does not relay a Push whose callback is hostile
// (docs/protocol.md §8.3); it relays the others.
func TestPushWithHostileCallbackIsNotRelayed(t *testing.T) {
	c := testConfig()
	c.Hostiles = testHostiles()
	s := startServent(t, c)
	target := protocol.NewGUID()
	a := dialRaw(t, s)
	a.handshake(peerHeaders(target))
	b := dialRaw(t, s)
	b.handshake(peerHeaders(protocol.NewGUID()))
	for _, ip := range []string{"127.0.0.9", "127.0.0.3"} {
		push := &protocol.Push{ServentID: target, IP: netip.MustParseAddr(ip).As4(), Port: 6346}
		payload, err := push.AppendTo(nil)
		if err != nil {
			t.Fatal(err)
		}
		b.send(protocol.Header{ID: protocol.NewGUID(), Type: protocol.TypePush, TTL: 3}, payload)
	}
	b.sync() // both handled, the relayed one queued to a
	id := protocol.NewGUID()
	a.send(protocol.Header{ID: id, Type: protocol.TypePing, TTL: 1}, nil)
	var got []netip.AddrPort
	for {
		h, body := a.next()
		if h.Type == protocol.TypePush {
			p, err := protocol.DecodePush(body)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, p.AddrPort())
		}
		if h.Type == protocol.TypePong && h.ID == id {
			break
		}
	}
	if len(got) != 1 || got[0] != netip.MustParseAddrPort("127.0.0.3:6346") {
		t.Fatalf("relayed pushes %v, want only the one to 127.0.0.3", got)
	}
}

// GGEP inflate bombs (hostiles.go) over real TCP: the bombing link is closed
// with Bye 400 and reported, an unrelated link carries on, a copy of a bomb
// is dropped before it is decoded, and a bomb that is only relayed through
// us costs nothing.

// bombQuery is a 197-byte Query whose two deflated GGEP blocks inflate to
// 65,000 bytes each (the previous tester's CPU amplifier).
func bombQuery(t *testing.T) []byte {
	t.Helper()
	q := protocol.NewQuery("kangaroo", protocol.QueryFlagMark)
	for _, id := range []string{"Z1", "Z2"} {
		q.Extensions = append(q.Extensions, protocol.GGEPItem(protocol.GGEP{{ID: id, Data: make([]byte, 65000), Deflate: true}}))
	}
	b, err := q.AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > queryForwardSize {
		t.Fatalf("bomb of %d bytes would be dropped for its size alone", len(b))
	}
	return b
}

// bombHit is a QueryHit of 10 records whose deflated GGEP each inflates to
// 60,000 bytes.
func bombHit(t *testing.T) []byte {
	t.Helper()
	res := make([]protocol.Result, 10)
	for i := range res {
		res[i] = protocol.Result{Index: uint32(i), Size: 100, Name: []byte("kangaroo.mp3"),
			Extensions: protocol.ExtensionArea{protocol.GGEPItem(protocol.GGEP{{ID: "Z", Data: make([]byte, 60000), Deflate: true}})}}
	}
	b, err := protocol.NewQueryHit([4]byte{192, 0, 2, 1}, 6346, 100, res, protocol.HitTrailer{Vendor: protocol.VendorGTKG}, protocol.NewGUID()).AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// hostileBed is a bed whose servent under test reports hostile peers on a
// channel.
func hostileBed(t *testing.T) (*bed, chan netip.Addr) {
	hostile := make(chan netip.Addr, 8)
	b := newBed(t, func(c *Config) {
		c.OnHostile = func(addr netip.Addr, reason string) { hostile <- addr }
	})
	return b, hostile
}

func TestGGEPBombQueryDropsItsLink(t *testing.T) {
	b, hostile := hostileBed(t)
	r := b.peer(t)
	r.sync()
	r.send(protocol.Header{ID: protocol.NewGUID(), Type: protocol.TypeQuery, TTL: 3}, bombQuery(t))
	bye := r.expectBye(protocol.ByeMessageTooLarge)
	t.Logf("bomb answered with %v", bye)
	select {
	case a := <-hostile:
		if want := netip.MustParseAddr("127.0.0.1"); a != want {
			t.Errorf("OnHostile got %v, want %v", a, want)
		}
	default:
		t.Error("OnHostile was not called before the link closed")
	}
	st := b.s.Stats()
	if st.DropInflateBomb != 1 || st.AbuseDisconnect != 1 {
		t.Errorf("stats %v: want one inflate bomb and one abuse Bye", st)
	}
	b.linkAlive(t)
}

// The address of a bomb's sender is banned for HostileBan: it is refused on
// reconnect, while other addresses are not. Loopback is banned only with
// RateLimitLoopback (a local testnet is never cut off from itself).
func TestGGEPBombBansItsSender(t *testing.T) {
	for _, loopbackBans := range []bool{true, false} {
		c := testConfig()
		c.RateLimitLoopback = loopbackBans
		c.HandshakeRate = 100 // the rate limit is not what this test is about
		s := startServent(t, c)
		r := dialFrom(t, s, "127.0.0.7")
		r.handshake(peerHeaders(protocol.NewGUID()))
		r.sync()
		r.send(protocol.Header{ID: protocol.NewGUID(), Type: protocol.TypeQuery, TTL: 3}, bombQuery(t))
		r.expectBye(protocol.ByeMessageTooLarge)
		_, banned := s.Banned(netip.MustParseAddr("127.0.0.7"))
		again := handshakeAnswer(t, dialFrom(t, s, "127.0.0.7").conn)
		other := handshakeAnswer(t, dialFrom(t, s, "127.0.0.8").conn)
		if loopbackBans && (!banned || again != "" || other != "GNUTELLA/0.6") {
			t.Errorf("with loopback bans: banned %v, the sender answered %q, another address %q", banned, again, other)
		}
		if !loopbackBans && (banned || again != "GNUTELLA/0.6") {
			t.Errorf("loopback exempt: banned %v, the sender answered %q", banned, again)
		}
	}
}

func TestDuplicateGGEPBombIsDroppedBeforeDecoding(t *testing.T) {
	b, hostile := hostileBed(t)
	first, second := b.peer(t), b.peer(t)
	first.sync()
	second.sync()
	id, bomb := protocol.NewGUID(), bombQuery(t)
	first.send(protocol.Header{ID: id, Type: protocol.TypeQuery, TTL: 3}, bomb)
	first.expectBye(protocol.ByeMessageTooLarge)
	<-hostile
	dups := b.s.Stats().Duplicates
	// The same bomb again from another link: a duplicate, never decoded,
	// so neither counted as a bomb nor punished.
	second.send(protocol.Header{ID: id, Type: protocol.TypeQuery, TTL: 3}, bomb)
	second.sync()
	st := b.s.Stats()
	if st.DropInflateBomb != 1 || st.Duplicates != dups+1 {
		t.Errorf("stats %v: want the copy counted as a duplicate (was %d) and still one bomb", st, dups)
	}
	select {
	case a := <-hostile:
		t.Errorf("the duplicate's sender %v was reported hostile", a)
	default:
	}
	b.linkAlive(t)
}

// A bomb that a neighbour relays (hops > 0) is dropped, but the neighbour,
// which may have relayed it unknowingly, keeps its link.
func TestRelayedGGEPBombIsDroppedOnly(t *testing.T) {
	b, hostile := hostileBed(t)
	r := b.peer(t)
	r.sync()
	routed := b.s.Stats().Routed
	r.send(protocol.Header{ID: protocol.NewGUID(), Type: protocol.TypeQuery, TTL: 3, Hops: 2}, bombQuery(t))
	r.sync()
	st := b.s.Stats()
	if st.DropInflateBomb != 1 || st.AbuseDisconnect != 0 || st.Routed != routed {
		t.Errorf("stats %v: want one bomb dropped, nothing routed (was %d), nobody cut off", st, routed)
	}
	select {
	case a := <-hostile:
		t.Errorf("relaying neighbour %v reported hostile", a)
	default:
	}
}

func TestGGEPBombHitForOurSearchDropsItsLink(t *testing.T) {
	b, hostile := hostileBed(t)
	r := b.peer(t)
	r.sync()
	id := protocol.NewGUID()
	if n := b.s.OriginateQuery(id, protocol.NewQuery("kangaroo", 0), 2, []*Link{r.linkOf(b.s)}); n != 1 {
		t.Fatalf("query queued on %d links", n)
	}
	r.send(protocol.Header{ID: id, Type: protocol.TypeQueryHit, TTL: 3}, bombHit(t))
	r.expectBye(protocol.ByeMessageTooLarge)
	if a := <-hostile; !a.IsLoopback() {
		t.Errorf("OnHostile got %v", a)
	}
	if st := b.s.Stats(); st.DropInflateBomb != 1 {
		t.Errorf("stats %v: want one inflate bomb", st)
	}
	b.linkAlive(t)
}

// A bomb hit for someone else's query is routed back as bytes: we never
// decode it, so it is neither refused nor punished here.
func TestGGEPBombHitRoutedWithoutDecoding(t *testing.T) {
	b, hostile := hostileBed(t)
	asker, responder := b.peer(t), b.peer(t)
	asker.sync()
	responder.sync()
	id := protocol.NewGUID()
	asker.sendQuery(id, 2, 0, "kangaroo")
	asker.sync()
	hit := bombHit(t)
	responder.send(protocol.Header{ID: id, Type: protocol.TypeQueryHit, TTL: 3}, hit)
	responder.sync()
	for {
		h, p := asker.next()
		if h.Type == protocol.TypeQueryHit && h.ID == id {
			if len(p) != len(hit) {
				t.Errorf("routed hit of %d bytes, sent %d", len(p), len(hit))
			}
			break
		}
	}
	if st := b.s.Stats(); st.DropInflateBomb != 0 || st.AbuseDisconnect != 0 {
		t.Errorf("stats %v: a routed hit was decoded or punished", st)
	}
	select {
	case a := <-hostile:
		t.Errorf("%v reported hostile for a hit we only routed", a)
	default:
	}
}

// BenchmarkQueryPlain and BenchmarkQueryBomb: one Query handled by the
// router from one link with three others, the plain one routed to them,
// the bomb refused. Both are about 200 bytes with the same layout: two
// GGEP blocks, plain values in one, deflated ones inflating to 65,000
// bytes each in the other. The bomb comes relayed (hops 1) so that its
// link stays up and every iteration pays for the decode.
func BenchmarkQueryPlain(b *testing.B) { benchHandleQuery(b, false) }
func BenchmarkQueryBomb(b *testing.B)  { benchHandleQuery(b, true) }

func benchHandleQuery(b *testing.B, bomb bool) {
	s, links := benchLinks(b, 4)
	q := protocol.NewQuery("kangaroo", protocol.QueryFlagMark)
	for _, id := range []string{"Z1", "Z2"} {
		e := protocol.Extension{ID: id, Data: make([]byte, 65000), Deflate: true}
		if !bomb {
			e = protocol.Extension{ID: id, Data: bytes.Repeat([]byte{'a'}, 82)}
		}
		q.Extensions = append(q.Extensions, protocol.GGEPItem(protocol.GGEP{e}))
	}
	payload, err := q.AppendTo(nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(len(payload)), "payload-bytes")
	src := links[0]
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		id := protocol.NewGUID()
		s.handle(src, protocol.Header{ID: id, Type: protocol.TypeQuery, TTL: 3, Hops: 1, Length: uint32(len(payload))}, payload)
		if i&31 == 0 {
			for _, l := range links {
				for {
					if _, ok := l.q.pop(); !ok {
						break
					}
				}
			}
		}
	}
	st := s.Stats()
	if bomb != (st.DropInflateBomb > 0) || bomb == (st.Routed > 0) {
		b.Fatalf("bomb %v: %v", bomb, st)
	}
}
