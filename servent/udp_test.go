package servent

import (
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"gnutella/protocol"
	"gnutella/testnet/await"
)

// udpPeer is the test playing a UDP peer by hand on 127.0.0.1.
type udpPeer struct {
	t    *testing.T
	conn *net.UDPConn
}

func newUDPPeer(t *testing.T) *udpPeer {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &udpPeer{t: t, conn: conn}
}

func (p *udpPeer) addr() netip.AddrPort { return p.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// send writes one descriptor to to and returns its size.
func (p *udpPeer) send(to netip.AddrPort, h protocol.Header, pl protocol.Payload) int {
	p.t.Helper()
	h.Type = pl.Type()
	b, err := (&protocol.Message{Header: h, Payload: pl}).AppendTo(nil)
	if err != nil {
		p.t.Fatal(err)
	}
	if _, err := p.conn.WriteToUDPAddrPort(b, to); err != nil {
		p.t.Fatal(err)
	}
	return len(b)
}

// next reads one datagram (failing the test after 10 s) and returns it
// whole with its decoded header and payload.
func (p *udpPeer) next() ([]byte, protocol.Header, []byte) {
	p.t.Helper()
	buf := make([]byte, 70000)
	_ = p.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, _, err := p.conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		p.t.Fatalf("reading a datagram: %v", err)
	}
	h, payload, err := protocol.DecodeDatagram(buf[:n], protocol.Limits{})
	if err != nil {
		p.t.Fatalf("the servent sent a malformed datagram: %v", err)
	}
	return buf[:n], h, payload
}

func scpPing() *protocol.Ping {
	return protocol.NewHostsRequest(0, protocol.VendorVersion{Vendor: protocol.VendorCode{'T', 'E', 'S', 'T'}, Version: 1})
}

// An ultrapeer answers a UDP ping with SCP with its pong: its address,
// "UDPHC" (it serves as a host cache) and, in "IPP", the ultrapeer it is
// linked to. The pinger's address is proven by that TCP link (all on
// 127.0.0.1), so the pong may be larger than the ping.
func TestUDPPongCarriesPackedUltrapeers(t *testing.T) {
	up := startServent(t, testConfig())
	other := startServent(t, testConfig())
	if _, err := other.Connect(ctxT(t), up.Addr()); err != nil {
		t.Fatal(err)
	}
	if err := up.WaitLinks(ctxT(t), 1); err != nil {
		t.Fatal(err)
	}
	if up.UDPAddr().Port() != up.Addr().Port() {
		t.Fatalf("UDP on %v, TCP on %v: want the same port", up.UDPAddr(), up.Addr())
	}
	peer := newUDPPeer(t)
	id := protocol.NewGUID()
	peer.send(up.UDPAddr(), protocol.Header{ID: id, TTL: 1}, scpPing())
	_, h, payload := peer.next()
	if h.Type != protocol.TypePong || h.ID != id {
		t.Fatalf("got %v %v, want the pong to ping %v", h.Type, h.ID, id)
	}
	p, err := protocol.DecodePong(payload)
	if err != nil {
		t.Fatal(err)
	}
	hosts, ok, err := p.PackedHosts()
	if !ok || err != nil || !slices.Contains(hosts, other.Addr()) {
		t.Errorf("IPP %v (present %v, %v), want it to list %v", hosts, ok, err, other.Addr())
	}
	if p.AddrPort() != up.Addr() || !p.Ultrapeer() || !p.UDPHostCache() {
		t.Errorf("pong %v: want %v, an ultrapeer with UDPHC", p, up.Addr())
	}
}

// No amplification: a host that has not proved its address gets, for a
// 23-byte ping, nothing larger than 23 bytes: a bare ping that asks it to
// prove itself. Once it answered that ping with a pong, the pong it was
// owed arrives.
func TestUDPNoAmplificationToUnprovenAddress(t *testing.T) {
	up := startServent(t, testConfig())
	peer := newUDPPeer(t)
	id := protocol.NewGUID()
	size := peer.send(up.UDPAddr(), protocol.Header{ID: id, TTL: 1}, &protocol.Ping{})
	if size != protocol.HeaderLen {
		t.Fatalf("bare ping of %d bytes", size)
	}
	raw, h, _ := peer.next()
	if len(raw) > size {
		t.Fatalf("answered a %d-byte ping from an unproven address with %d bytes (%v)", size, len(raw), h.Type)
	}
	if h.Type != protocol.TypePing || h.TTL != 1 {
		t.Fatalf("got %v TTL %d, want a bare ping asking for proof", h.Type, h.TTL)
	}
	// A second ping before the proof gets nothing more.
	peer.send(up.UDPAddr(), protocol.Header{ID: id, TTL: 1}, &protocol.Ping{})
	peer.send(up.UDPAddr(), protocol.Header{ID: h.ID, TTL: 1},
		&protocol.Pong{Port: peer.addr().Port(), IP: [4]byte{127, 0, 0, 1}})
	raw, h2, payload := peer.next()
	if h2.Type != protocol.TypePong || h2.ID != id {
		t.Fatalf("after the proof got %v %v, want the pong to ping %v", h2.Type, h2.ID, id)
	}
	if p, err := protocol.DecodePong(payload); err != nil || p.AddrPort() != up.Addr() {
		t.Fatalf("pong %v, %v: want %v", p, err, up.Addr())
	}
	if len(raw) <= size {
		t.Fatalf("pong of %d bytes: the test proves nothing", len(raw))
	}
	st := up.UDPStats()
	if st.Proofs != 1 || st.PongsSent != 1 || st.PongsRead != 1 {
		t.Errorf("stats %+v: want one proof ping, one pong sent, one read", st)
	}
	// The prover is now in the host cache as a host that speaks UDP.
	if !up.Hosts().SpeaksUDP(peer.addr()) {
		t.Errorf("host cache does not record %v as speaking UDP", peer.addr())
	}
}

// A pong that answers no ping of ours teaches nothing (its source may be
// spoofed).
func TestUDPUnsolicitedPongIsDropped(t *testing.T) {
	up := startServent(t, testConfig())
	peer := newUDPPeer(t)
	ipp := protocol.PackedHostsExtension([]netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:1")})
	peer.send(up.UDPAddr(), protocol.Header{ID: protocol.NewGUID(), TTL: 1},
		&protocol.Pong{Port: 2, IP: [4]byte{127, 0, 0, 1}, KB: 8, GGEP: protocol.GGEP{ipp}})
	await.Until(t, "the pong to be read", func() bool { return up.UDPStats().Unsolicited == 1 })
	if up.Hosts().Len() != 0 {
		t.Errorf("host cache holds %d hosts from an unsolicited pong", up.Hosts().Len())
	}
}

// Each address has a budget of UDPRate datagrams per window, loopback
// included; a flood past it bans the address unless it is loopback
// (exempt from bans unless RateLimitLoopback).
func TestUDPRateLimitPerAddress(t *testing.T) {
	for _, limitLoopback := range []bool{false, true} {
		c := testConfig()
		c.UDPRate = 5
		c.UDPRateWindow = time.Hour
		c.RateLimitLoopback = limitLoopback
		up := startServent(t, c)
		peer := newUDPPeer(t)
		sent := 0
		for range 10 {
			peer.send(up.UDPAddr(), protocol.Header{ID: protocol.NewGUID(), TTL: 1}, &protocol.Ping{})
			sent++
		}
		await.Until(t, "the pings to be read", func() bool { return up.UDPStats().Received == int64(sent) })
		if st := up.UDPStats(); st.RateLimited != 5 || st.Proofs != 1 {
			t.Fatalf("after 10 pings: %+v, want 5 over the budget and one proof ping for the 5 read", st)
		}
		for range udpBanAfter {
			peer.send(up.UDPAddr(), protocol.Header{ID: protocol.NewGUID(), TTL: 1}, &protocol.Ping{})
			sent++
		}
		await.Until(t, "the flood to be read", func() bool { return up.UDPStats().Received == int64(sent) })
		_, banned := up.Hostiles().Banned(netip.MustParseAddr("127.0.0.1"))
		if banned != limitLoopback {
			t.Errorf("RateLimitLoopback %v: loopback banned %v after a flood", limitLoopback, banned)
		}
	}
}

// A servent given only a UDP host cache (--uhc, one of ours acting as one)
// learns ultrapeers from it and joins.
func TestUHCBootstrapJoins(t *testing.T) {
	uhc := startServent(t, testConfig())
	a := startServent(t, testConfig())
	if _, err := a.Connect(ctxT(t), uhc.Addr()); err != nil {
		t.Fatal(err)
	}
	if err := uhc.WaitLinks(ctxT(t), 1); err != nil { // the host cache's side of the link, which its IPP lists
		t.Fatal(err)
	}
	c := testConfig()
	c.WantLinks = 2
	c.Mode = ModeLeaf
	c.UHCs = []string{uhc.UDPAddr().String()}
	n := startServent(t, c)
	if err := n.WaitLinks(ctxT(t), 2); err != nil {
		t.Fatal(err)
	}
	var peers []netip.AddrPort
	for _, l := range n.Links() {
		peers = append(peers, l.Listen)
	}
	if !slices.Contains(peers, a.Addr()) || !slices.Contains(peers, uhc.Addr()) {
		t.Errorf("linked to %v, want %v (from IPP) and %v (the host cache)", peers, a.Addr(), uhc.Addr())
	}
	if got := n.Hosts().HostCaches(10, nil); !slices.Contains(got, uhc.UDPAddr()) {
		t.Errorf("host caches learnt %v, want %v", got, uhc.UDPAddr())
	}
}

// The send queue holds udpQueueLen datagrams: when full, a control datagram
// (a pong) pushes out bulk traffic, and one that finds only control
// datagrams ahead is dropped and counted; control leaves first.
func TestUDPSendQueueIsBoundedWithPriorities(t *testing.T) {
	s, err := New(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	u := newUDPSide(s, nil)
	to := netip.MustParseAddrPort("127.0.0.1:1")
	for i := range udpQueueLen {
		if !u.send(to, []byte{byte(i)}, udpPrioBulk) {
			t.Fatalf("bulk datagram %d refused below the bound", i)
		}
	}
	if u.send(to, []byte{0xb0}, udpPrioBulk) {
		t.Fatal("a bulk datagram entered a full queue")
	}
	for i := range udpQueueLen {
		if !u.send(to, []byte{0xc0, byte(i)}, udpPrioControl) {
			t.Fatalf("control datagram %d refused while bulk ones were queued", i)
		}
	}
	if u.send(to, []byte{0xc1}, udpPrioControl) {
		t.Fatal("a control datagram entered a queue full of control datagrams")
	}
	if n := u.stats.queueFull.Load(); n != 2+udpQueueLen {
		t.Errorf("queue-full count %d, want %d (two refused, %d bulk pushed out)", n, 2+udpQueueLen, udpQueueLen)
	}
	for i := range udpQueueLen {
		out, ok := u.pop()
		if !ok || out.msg[0] != 0xc0 || out.msg[1] != byte(i) {
			t.Fatalf("pop %d: %v %v, want control datagram %d in order", i, out.msg, ok, i)
		}
	}
	if _, ok := u.pop(); ok {
		t.Fatal("the queue holds more than its bound")
	}
}
