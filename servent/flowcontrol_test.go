package servent

import (
	"bufio"
	"context"
	"gnutella/testnet/await"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gnutella/protocol"
	"gnutella/servent/memnet"
)

// A peer that stops reading puts its link into flow control: the servent
// then drops the peer's new queries (their hits would have nowhere to go)
// and tells it Hops-Flow 0; once the queue drains it says Hops-Flow 255.
func TestFlowControlDropsQueriesAndSendsHopsFlow(t *testing.T) {
	mem := memnet.New()
	mem.Window = 512 // a small socket buffer, so a peer that stops reading backs us up fast
	var answered atomic.Int32
	c := testConfig()
	c.Transport = mem.Host(netip.MustParseAddr("127.1.0.1"))
	c.ListenAddr = "127.1.0.1:6346"
	c.SendQueueBytes = 8192
	c.Library = StaticLibrary{Results: func(q *protocol.Query, h protocol.Header) []protocol.Result {
		answered.Add(1)
		return nil
	}}
	s := startServent(t, c)

	conn, err := mem.Host(netip.MustParseAddr("127.1.0.2")).Dial(context.Background(), s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := protocol.HandshakeRequest{Version: "0.6"}
	for _, h := range peerHeaders(protocol.NewGUID(), "Vendor-Message: 0.2") {
		name, value, _ := strings.Cut(h, ":")
		req.Headers.Add(name, strings.TrimSpace(value))
	}
	if _, err := conn.Write(req.AppendTo(nil)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	if resp, err := protocol.ReadHandshakeResponse(br); err != nil || !resp.OK() {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	final := protocol.HandshakeResponse{Version: "0.6", Code: 200, Reason: "OK"}
	if _, err := conn.Write(final.AppendTo(nil)); err != nil {
		t.Fatal(err)
	}
	send := func(h protocol.Header, p protocol.Payload) {
		t.Helper()
		b, err := (&protocol.Message{Header: h, Payload: p}).AppendTo(nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	send(protocol.Header{ID: protocol.NewGUID(), TTL: 1}, protocol.NewMessagesSupported([]protocol.VendorMessageID{protocol.HopsFlowID}))
	if err := s.WaitLinks(ctxT(t), 1); err != nil {
		t.Fatal(err)
	}
	l := s.Links()[0]
	await.Until(t, "the Hops-Flow vendor message to be supported", func() bool { return l.Supports(protocol.HopsFlowID) })

	// We never read: flood our own queries at it until its queue is in flow control.
	for i := 0; i < 2000 && !l.FlowControlled(); i++ {
		s.OriginateQuery(protocol.NewGUID(), protocol.NewQuery("zebra quokka", protocol.QueryFlagMark), 2, nil)
	}
	if !l.FlowControlled() {
		t.Fatal("the link never entered flow control")
	}
	before := s.Stats().DropOther
	received := s.Stats().Received
	send(protocol.Header{ID: protocol.NewGUID(), Type: protocol.TypeQuery, TTL: 2}, protocol.NewQuery("koala", protocol.QueryFlagMark))
	await.Until(t, "the servent to read more", func() bool { return s.Stats().Received > received })
	if answered.Load() != 0 || s.Stats().DropOther != before+1 {
		t.Errorf("a query from a flow-controlled peer was handled (answered %d, dropped %d)", answered.Load(), s.Stats().DropOther-before)
	}

	// Now read: the Hops-Flow 0 comes, and once the queue drains, 255.
	r := protocol.NewReader(br, protocol.DefaultLimits())
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var flows []uint8
	for len(flows) < 2 {
		h, payload, err := r.ReadRaw()
		if err != nil {
			t.Fatalf("reading: %v (hops-flow seen %v)", err, flows)
		}
		if h.Type != protocol.TypeVendor {
			continue
		}
		if v, err := protocol.DecodeVendor(h.Type, payload); err == nil && v.Is(protocol.HopsFlowID) {
			hf, _ := v.HopsFlow()
			flows = append(flows, hf)
		}
	}
	if flows[0] != 0 || flows[1] != 255 {
		t.Errorf("Hops-Flow sequence %v, want [0 255]", flows)
	}
	if l.FlowControlled() {
		t.Error("still in flow control after draining")
	}
}
