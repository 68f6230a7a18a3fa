package servent

import (
	"gnutella/testnet/await"
	"sync"
	"testing"
	"time"

	"gnutella/protocol"
	"gnutella/ultrapeer"
)

// Outbound leaf guidance (docs/protocol.md §2.4): an ultrapeer full of ultrapeers but with
// leaf slots answers X-Ultrapeer-Needed: False. A servent in auto mode with
// no leaves takes it: it says X-Ultrapeer: False, becomes a leaf and ends
// its other links with Bye 203. A servent fixed as an ultrapeer stays one.
func TestLeafGuidanceTakenOnlyInAutoMode(t *testing.T) {
	for _, tc := range []struct {
		name     string
		mode     Mode
		wantLeaf bool
	}{{"auto", ModeAuto, true}, {"ultrapeer", ModeUltrapeer, false}} {
		t.Run(tc.name, func(t *testing.T) {
			full := testConfig()
			full.MaxLinks = 1
			b := startServent(t, full)
			filler := startServent(t, testConfig())
			if _, err := filler.Connect(ctxT(t), b.Addr()); err != nil {
				t.Fatal(err)
			}
			if err := b.WaitLinks(ctxT(t), 1); err != nil {
				t.Fatal(err)
			}
			ca := testConfig()
			ca.Mode = tc.mode
			ca.UltrapeerAfter, ca.ModeSwitchEvery = 0, 0
			a := startServent(t, ca)
			await.Until(t, "auto mode to promote", func() bool { return a.Mode() == ModeUltrapeer }) // auto: promoted at once
			other := startServent(t, testConfig())
			first, err := a.Connect(ctxT(t), other.Addr())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.Connect(ctxT(t), b.Addr()); err != nil {
				t.Fatal(err)
			}
			if tc.wantLeaf {
				<-first.Done() // Bye 203 ends the other link
				if first.ByeCode() != protocol.ByeChangingPeerMode {
					t.Errorf("other link ended with %v, want 203", first.ByeCode())
				}
				if a.Mode() != ModeLeaf {
					t.Fatalf("a is %v after guidance, want leaf", a.Mode())
				}
				await.Until(t, "one leaf link", func() bool { return b.LinkCount(LinkLeaf) == 1 })
			} else {
				if a.Mode() != ModeUltrapeer || first.closing.Load() {
					t.Fatalf("a is %v, other link closing %v: a fixed ultrapeer must ignore guidance", a.Mode(), first.closing.Load())
				}
				if b.LinkCount(LinkLeaf) != 0 {
					t.Errorf("b counts a leaf")
				}
			}
		})
	}
}

// sendTable sends t to the servent as a leaf would: RESET then PATCHes.
func (p *rawPeer) sendTable(t *ultrapeer.Table) {
	p.t.Helper()
	for _, m := range t.Messages(7, 4096) {
		payload, err := m.AppendTo(nil)
		if err != nil {
			p.t.Fatal(err)
		}
		p.send(protocol.Header{ID: protocol.NewGUID(), Type: protocol.TypeRouteTable, TTL: 1}, payload)
	}
}

// A query reaches a leaf only once its QRP table has arrived, and then only
// when the table matches it.
func TestQueriesReachALeafOnlyWhenItsTableMatches(t *testing.T) {
	up := startServent(t, testConfig())
	leaf := dialRaw(t, up)
	leaf.handshake(leafHeaders(protocol.NewGUID()))
	ask := func(words string) protocol.GUID {
		id := protocol.NewGUID()
		up.OriginateQuery(id, protocol.NewQuery(words, protocol.QueryFlagMark), 3, nil)
		return id
	}
	// receivedBefore reads through two ping/pong rounds and reports whether
	// a query with id came. Two rounds, because the send queue is ordered by
	// priority: a pong queued together with the query leaves first, but by
	// the second pong everything queued before the first ping has gone out.
	receivedBefore := func(id protocol.GUID) bool {
		leaf.t.Helper()
		got := false
		for round := 0; round < 2; round++ {
			ping := protocol.NewGUID()
			leaf.send(protocol.Header{ID: ping, Type: protocol.TypePing, TTL: 1}, nil)
			for {
				h, _ := leaf.next()
				if h.Type == protocol.TypeQuery && h.ID == id {
					got = true
				}
				if h.Type == protocol.TypePong && h.ID == ping {
					break
				}
			}
		}
		return got
	}
	before := ask("zebra quokka")
	if receivedBefore(before) {
		t.Fatal("a leaf got a query before sending its QRP table")
	}
	table := ultrapeer.BuildTable(16, [][]string{{"zebra", "quokka", "interop"}}, nil)
	leaf.sendTable(table)
	leaf.sync()
	await.Until(t, "the role switch", func() bool {
		up.qrp.mu.RLock()
		defer up.qrp.mu.RUnlock()
		return up.qrp.index.Len() == 1
	})
	if q := ask("zebra"); !receivedBefore(q) {
		t.Error("a query matching the leaf's table did not reach it")
	}
	if q := ask("koala"); receivedBefore(q) {
		t.Error("a query not matching the leaf's table reached it")
	}
	if d, _ := up.QRPStats(); d != 1 {
		t.Errorf("%d leaf deliveries counted, want 1", d)
	}
}

// A PATCH before any RESET, and a sequence number out of order, end the
// link with Bye 413.
func TestQRPSequenceViolationGetsBye413(t *testing.T) {
	for _, tc := range []struct {
		name string
		msgs []protocol.Payload
	}{
		{"patch before reset", []protocol.Payload{&protocol.RouteTablePatch{SeqNo: 1, SeqSize: 1, EntryBits: 4, Data: make([]byte, 8)}}},
		{"sequence out of order", []protocol.Payload{
			&protocol.RouteTableReset{TableLength: 16, Infinity: 7},
			&protocol.RouteTablePatch{SeqNo: 2, SeqSize: 2, EntryBits: 4, Data: make([]byte, 4)},
		}},
		{"length not a power of two", []protocol.Payload{&protocol.RouteTableReset{TableLength: 1000, Infinity: 7}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := startServent(t, testConfig())
			leaf := dialRaw(t, up)
			leaf.handshake(leafHeaders(protocol.NewGUID()))
			for _, m := range tc.msgs {
				payload, err := m.AppendTo(nil)
				if err != nil {
					t.Fatal(err)
				}
				leaf.send(protocol.Header{ID: protocol.NewGUID(), Type: protocol.TypeRouteTable, TTL: 1}, payload)
			}
			leaf.expectBye(protocol.ByeInvalidQRPSequence)
		})
	}
}

// A leaf that shares nothing tells its ultrapeers Hops-Flow 0 (send it no
// queries); a leaf that shares sends its table and no Hops-Flow.
func TestLeafSharingNothingSaysHopsFlowZero(t *testing.T) {
	up := startServent(t, testConfig())
	empty := testConfig()
	empty.Mode = ModeLeaf
	sharing := testConfig()
	sharing.Mode = ModeLeaf
	table := ultrapeer.BuildTable(16, [][]string{{"zebra"}}, nil)
	sharing.Library = StaticLibrary{Table: table}
	a, b := startServent(t, empty), startServent(t, sharing)
	if _, err := a.Connect(ctxT(t), up.Addr()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Connect(ctxT(t), up.Addr()); err != nil {
		t.Fatal(err)
	}
	if err := up.WaitLinks(ctxT(t), 2); err != nil {
		t.Fatal(err)
	}
	linkOf := func(id protocol.GUID) *Link {
		for _, l := range up.Links() {
			if l.PeerID == id {
				return l
			}
		}
		t.Fatalf("no link to %s", id)
		return nil
	}
	la, lb := linkOf(a.ID()), linkOf(b.ID())
	await.Until(t, "Hops-Flow 0 and the peer table", func() bool { return la.HopsFlow() == 0 && lb.PeerTable() != nil })
	if !lb.PeerTable().Equal(table) {
		t.Error("the sharing leaf's table arrived changed")
	}
	if lb.HopsFlow() != 255 {
		t.Errorf("the sharing leaf said Hops-Flow %d", lb.HopsFlow())
	}
}

// Role switches come from the connector goroutine (autoPromote) and from
// dial goroutines (leaf guidance) at once: the last switch is shared state.
// Run under -race, this fails if it is not guarded.
func TestRoleSwitchesFromConnectorAndDialsDoNotRace(t *testing.T) {
	c := testConfig()
	c.Mode = ModeAuto
	c.UltrapeerAfter, c.ModeSwitchEvery = 0, 0
	s, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				if g%2 == 0 {
					s.autoPromote(s.now()) // the connector
				} else if !s.isLeaf() && s.takesGuidance() {
					s.switchMode(ModeLeaf, "test guidance", nil) // a dial
				}
			}
		}()
	}
	wg.Wait()
	if m := s.Mode(); m != ModeLeaf && m != ModeUltrapeer {
		t.Fatalf("mode %v", m)
	}
}

// Two switches are at least ModeSwitchEvery apart, whichever goroutines
// ask: after one switch, neither promotion nor guidance is taken.
func TestRoleSwitchHonoursModeSwitchEvery(t *testing.T) {
	c := testConfig()
	c.Mode = ModeAuto
	c.UltrapeerAfter, c.ModeSwitchEvery = 0, time.Hour
	s, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	s.autoPromote(s.now())
	if s.Mode() != ModeUltrapeer {
		t.Fatalf("not promoted: %v", s.Mode())
	}
	if s.takesGuidance() {
		t.Fatal("leaf guidance taken within ModeSwitchEvery of the promotion")
	}
	s.mode.Store(int32(ModeLeaf)) // as if demoted by a peer we cannot see here
	s.autoPromote(s.now())
	if s.Mode() != ModeLeaf {
		t.Fatal("promoted again within ModeSwitchEvery")
	}
}
