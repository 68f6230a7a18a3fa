package servent

import (
	"context"
	"gnutella/testnet/await"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"gnutella/protocol"
)

// holdDials is a TCP transport whose dials wait until their context ends:
// every connect-back dial stays in flight.
type holdDials struct {
	TCPTransport
	started atomic.Int32
}

func (h *holdDials) Dial(ctx context.Context, addr string) (net.Conn, error) {
	h.started.Add(1)
	<-ctx.Done()
	return nil, ctx.Err()
}

// A flood of BEAR/7 requests from many peers starts at most
// maxConnectBackDials dials; the rest are dropped, not queued.
func TestConnectBackDialsAreBounded(t *testing.T) {
	tr := &holdDials{}
	c := testConfig()
	c.Transport = tr
	s := startServent(t, c)
	req := protocol.NewTCPConnectBack(6346)
	for i := range 20 {
		l := &Link{Remote: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), 5000)}
		s.connectBackRequest(l, req)
	}
	if n := len(s.connectBacks.slots); n != maxConnectBackDials {
		t.Fatalf("%d connect-back dials in flight, want %d", n, maxConnectBackDials)
	}
	await.Until(t, "every connect-back dial slot taken", func() bool { return tr.started.Load() == maxConnectBackDials })
	if n := tr.started.Load(); n != maxConnectBackDials {
		t.Fatalf("%d dials started, want %d", n, maxConnectBackDials)
	}
}

// One requester gets one connect-back per connectBackPerRequester.
func TestConnectBackRatePerRequester(t *testing.T) {
	var c connectBacks
	c.init()
	a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	t0 := time.Unix(1000, 0)
	for _, step := range []struct {
		who  netip.Addr
		at   time.Time
		want bool
	}{
		{a, t0, true},
		{a, t0.Add(time.Second), false},
		{b, t0.Add(time.Second), true},
		{a, t0.Add(connectBackPerRequester - time.Millisecond), false},
		{a, t0.Add(connectBackPerRequester), true},
	} {
		if got := c.allow(step.who, step.at); got != step.want {
			t.Fatalf("allow(%v, +%v) = %v, want %v", step.who, step.at.Sub(t0), got, step.want)
		}
	}
}

// The requesters remembered for the rate are bounded: when the table is
// full of recent requesters a new one is refused, and old ones make room.
func TestConnectBackRequestersAreBounded(t *testing.T) {
	var c connectBacks
	c.init()
	t0 := time.Unix(1000, 0)
	for i := range maxConnectBackPeers {
		if !c.allow(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), t0) {
			t.Fatalf("requester %d refused", i)
		}
	}
	late := netip.MustParseAddr("10.2.0.1")
	if c.allow(late, t0.Add(time.Second)) {
		t.Fatal("a new requester was let in while the table is full of recent ones")
	}
	if !c.allow(late, t0.Add(connectBackPerRequester)) {
		t.Fatal("a new requester was refused once the others had aged")
	}
	if len(c.last) != 1 {
		t.Fatalf("%d requesters remembered, want 1 after pruning", len(c.last))
	}
}

// A banned requester gets no connect-back and spends no rate slot: once the
// ban is lifted it gets one at once.
func TestConnectBackRefusesBannedRequesters(t *testing.T) {
	tr := &countingTransport{dialled: make(chan netip.Addr, 4)}
	c := testConfig()
	c.Transport = tr
	c.Hostiles = testHostiles()
	s := startServent(t, c)
	req := protocol.NewTCPConnectBack(1)
	hostile := &Link{Remote: netip.MustParseAddrPort("127.0.0.9:5000")}
	banned := &Link{Remote: netip.MustParseAddrPort("127.0.0.6:5000")}
	s.Hostiles().Ban(banned.Remote.Addr(), time.Hour, "test ban")
	s.connectBackRequest(hostile, req)
	s.connectBackRequest(banned, req)
	if n := len(s.connectBacks.slots); n != 0 {
		t.Fatalf("%d connect-back dials started for banned requesters", n)
	}
	s.Hostiles().Ban(banned.Remote.Addr(), 0, "")
	s.connectBackRequest(banned, req)
	if got := <-tr.dialled; got != banned.Remote.Addr() {
		t.Fatalf("dialled %s", got)
	}
	if a, b := tr.count("127.0.0.6"), tr.count("127.0.0.9"); a != 1 || b != 0 {
		t.Fatalf("dials: %d to the unbanned requester (want 1), %d to the hostile one", a, b)
	}
}
