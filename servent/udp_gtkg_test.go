package servent

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"gnutella/protocol"
	"gnutella/testnet/await"
	"gnutella/testnet/gtkg"
)

// gtk-gnutella (UDP on, as run-peer.sh configures it) answers our
// servent's UDP host-cache ping (SCP) with a pong, and the host cache then
// records it as a host that speaks UDP; a second SCP ping, from the test's
// own socket on 127.0.0.2 (gtk-gnutella answers one UDP ping a minute per
// IP), gets a pong describing gtk-gnutella as an ultrapeer with IPP listing
// an ultrapeer it is linked to: one of our two servents. (gtk-gnutella
// missing leaves puts itself in the IPP in place of a random neighbour and
// then leaves itself out, as the pong already says who it is: with one
// neighbour the IPP is empty and left out.) Every address is on loopback.
func TestGtkAnswersOurUDPPingWithIPP(t *testing.T) {
	g := gtkg.Start(t, t.TempDir(), "")
	s := startServent(t, testConfig())
	s2 := startServent(t, testConfig())
	// gtk-gnutella dials us: for a node it dialled it knows the listening
	// address (Listen-IP 127.0.0.1 is not routable to it).
	for _, x := range []*Servent{s, s2} {
		g.Shell(t, "node add "+x.Addr().String())
		if err := x.WaitLinks(ctxT(t), 1); err != nil {
			t.Fatal(err)
		}
	}

	s.udp.ping(g.Addr, protocol.NewHostsRequest(protocol.SCPUltrapeer, protocol.VendorVersion{Vendor: VendorCode, Version: 1}), false, s.now())
	await.Until(t, "gtk-gnutella's pong to our servent", func() bool { return s.Hosts().SpeaksUDP(g.Addr) })
	if st := s.UDPStats(); st.PongsRead != 1 || st.Malformed != 0 {
		t.Errorf("UDP stats %+v: want one pong read, nothing malformed", st)
	}

	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	peer := &udpPeer{t: t, conn: conn}
	id := protocol.NewGUID()
	peer.send(g.Addr, protocol.Header{ID: id, TTL: 1}, scpPing())
	raw, h, payload := peer.next()
	if h.Type != protocol.TypePong || h.ID != id {
		t.Fatalf("gtk-gnutella sent %v %v, want the pong to ping %v", h.Type, h.ID, id)
	}
	p, err := protocol.DecodePong(payload)
	if err != nil {
		t.Fatal(err)
	}
	hosts, ok, err := p.PackedHosts()
	t.Logf("gtk-gnutella's pong (%d bytes): %v; IPP %v (present %v)", len(raw), p, hosts, ok)
	if p.AddrPort() != g.Addr || !p.Ultrapeer() {
		t.Errorf("pong %v: want gtk-gnutella's %v, an ultrapeer", p, g.Addr)
	}
	if !ok || err != nil || len(hosts) == 0 || !slices.ContainsFunc(hosts, func(a netip.AddrPort) bool { return a == s.Addr() || a == s2.Addr() }) {
		t.Errorf("IPP %v (present %v, %v): want it to list %v or %v", hosts, ok, err, s.Addr(), s2.Addr())
	}
}

// Our leaf under a gtk-gnutella ultrapeer for 90 s (gtk-gnutella's clock:
// it accepts one non-alive ping a minute from a leaf) leaves its "throttle"
// drop counter at 0; before the fix, the leaf's 20-second pong-cache
// refresh pings were throttled within the first minute. This test takes
// 90 s of real time and runs only with GTKG_BIN.
func TestGtkThrottlesNoPingOfOurLeaf(t *testing.T) {
	g := gtkg.Start(t, t.TempDir(), "")
	c := testConfig()
	c.Mode = ModeLeaf
	leaf := startServent(t, c)
	if _, err := leaf.Connect(ctxT(t), g.Addr); err != nil {
		t.Fatal(err)
	}
	throttled := func() string {
		for _, line := range strings.Split(g.Shell(t, "stats drop"), "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "throttle" {
				return f[1]
			}
		}
		t.Fatal("no throttle counter in gtk-gnutella's stats drop")
		return ""
	}
	for range 9 {
		time.Sleep(10 * time.Second) // gtk-gnutella's clock, not a synchronisation
		if n := throttled(); n != "0" {
			t.Fatalf("gtk-gnutella throttled %s messages of our leaf", n)
		}
		if leaf.LinkCount() != 1 {
			t.Fatal("the leaf lost its link to gtk-gnutella")
		}
	}
	if log := g.Log(); strings.Contains(log, "non-leaf") {
		t.Errorf("gtk-gnutella complains of a non-leaf:\n%s", log)
	}
}
