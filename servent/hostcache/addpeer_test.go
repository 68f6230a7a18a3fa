package hostcache

import (
	"net/netip"
	"testing"
	"time"
)

func TestAddPeerWaivesOnlyTheAddressClass(t *testing.T) {
	c := New(10)
	now := time.Now()
	lo := netip.MustParseAddrPort("127.0.0.1:6346")
	if c.Add(lo, true, SourcePeerFlag, now) {
		t.Fatal("Add admitted a loopback address without AllowLoopback")
	}
	if err := c.AddPeer(lo, true, now); err != nil {
		t.Fatalf("AddPeer(loopback) = %v, want it admitted", err)
	}
	if a, ok := c.Pick(now, nil); !ok || a != lo {
		t.Fatalf("Pick = %v %v, want the --peer %v", a, ok, lo)
	}
	if s := c.Sample(10, false, nil); len(s) != 0 {
		t.Fatalf("Sample = %v: a waived --peer must not be advertised", s)
	}
	if err := c.AddPeer(netip.MustParseAddrPort("1.2.3.4:0"), true, now); err == nil || Waivable(err) {
		t.Fatalf("AddPeer(port 0) = %v, want a refusal no --peer waives", err)
	}
}
