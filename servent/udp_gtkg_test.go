package servent

import (
	"net"
	"slices"
	"testing"

	"gnutella/protocol"
	"gnutella/testnet/await"
	"gnutella/testnet/gtkg"
)

// gtk-gnutella (UDP on, as run-peer.sh configures it) answers our
// servent's UDP host-cache ping (SCP) with a pong, and the host cache then
// records it as a host that speaks UDP; a second SCP ping, from the test's
// own socket on 127.0.0.2 (gtk-gnutella answers one UDP ping a minute per
// IP), gets a pong describing gtk-gnutella as an ultrapeer, whose IPP, when
// there is one, decodes and lists the ultrapeer it is linked to: our
// servent. On loopback gtk-gnutella 1.2.3 sends that pong without IPP (see
// docs/protocol.md, "UDP"). Every address involved is on loopback.
func TestGtkAnswersOurUDPPing(t *testing.T) {
	g := gtkg.Start(t, t.TempDir(), "")
	s := startServent(t, testConfig())
	// gtk-gnutella dials us: for a node it dialled it knows the listening
	// address (Listen-IP 127.0.0.1 is not routable to it).
	g.Shell(t, "node add "+s.Addr().String())
	if err := s.WaitLinks(ctxT(t), 1); err != nil {
		t.Fatal(err)
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
	if ok && (err != nil || !slices.Contains(hosts, s.Addr())) {
		t.Errorf("IPP %v (%v): want it to list our servent %v", hosts, err, s.Addr())
	}
}
