package control

import (
	"testing"

	"gnutella/servent"
)

// GET /api/v1/udp tells the UDP address (the TCP port number) and counters.
func TestControlAPIUDP(t *testing.T) {
	c := testNodeConfig()
	c.DataDir = t.TempDir()
	n := startNode(t, c)
	startServer(t, n)
	info, err := ReadInfo(c.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	var got UDPJSON
	if err := (&Client{Info: info}).Do(ctxT(t), "GET", "/api/v1/udp", nil, &got); err != nil {
		t.Fatal(err)
	}
	if got.Addr != n.Addr().String() || got.Stats != (servent.UDPStats{}) {
		t.Errorf("udp %+v, want address %v and no traffic", got, n.Addr())
	}
}
