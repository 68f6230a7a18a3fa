package servent

import (
	"testing"

	"gnutella/protocol"
)

func msgOf(t protocol.Type, hops uint8, size int) outMsg {
	return newOutMsg(protocol.Header{Type: t, TTL: 3, Hops: hops}, make([]byte, size))
}

// Messages leave in gtk-gnutella's priority order: Bye > QRP > Push >
// QueryHit > Pong > Query > Ping; within queries fewer hops first, within
// hits more hops first; FIFO among equals.
func TestSendQueueOrder(t *testing.T) {
	q := newSendQueue(1<<20, nil)
	in := []outMsg{
		msgOf(protocol.TypePing, 0, 0),
		msgOf(protocol.TypeQuery, 3, 10),
		msgOf(protocol.TypeQuery, 1, 10),
		msgOf(protocol.TypePong, 0, 14),
		msgOf(protocol.TypeQueryHit, 1, 50),
		msgOf(protocol.TypeQueryHit, 4, 50),
		msgOf(protocol.TypePush, 0, 26),
		msgOf(protocol.TypeRouteTable, 0, 6),
		msgOf(protocol.TypeBye, 0, 4),
	}
	for _, m := range in {
		if q.push(m) != enqueued {
			t.Fatal("push refused")
		}
	}
	want := []struct {
		t    protocol.Type
		hops uint8
	}{
		{protocol.TypeBye, 0}, {protocol.TypeRouteTable, 0}, {protocol.TypePush, 0},
		{protocol.TypeQueryHit, 4}, {protocol.TypeQueryHit, 1}, {protocol.TypePong, 0},
		{protocol.TypeQuery, 1}, {protocol.TypeQuery, 3}, {protocol.TypePing, 0},
	}
	for i, w := range want {
		m, ok := q.pop()
		if !ok {
			t.Fatalf("queue empty at %d", i)
		}
		h, _ := protocol.ParseHeader(m.hdr[:])
		if h.Type != w.t || h.Hops != w.hops {
			t.Errorf("pop %d: %v hops %d, want %v hops %d", i, h.Type, h.Hops, w.t, w.hops)
		}
	}
	// FIFO among equal messages
	for i := 0; i < 5; i++ {
		m := newOutMsg(protocol.Header{ID: protocol.GUID{byte(i)}, Type: protocol.TypeQuery, TTL: 2}, make([]byte, 5))
		q.push(m)
	}
	for i := 0; i < 5; i++ {
		m, _ := q.pop()
		if m.hdr[0] != byte(i) {
			t.Fatalf("equal queries out of order: got %d at %d", m.hdr[0], i)
		}
	}
}

// Under pressure the least important message goes first; a message less
// important than everything queued is itself dropped; Bye and QRP are never
// dropped, and a Bye that cannot fit says the link must go.
func TestSendQueueDropsLowestFirst(t *testing.T) {
	const max = 1000
	q := newSendQueue(max, nil)
	// fill with pings and queries (each 23+77 = 100 bytes)
	for i := 0; i < 5; i++ {
		q.push(msgOf(protocol.TypePing, 0, 77))
		q.push(msgOf(protocol.TypeQuery, 0, 77))
	}
	if b, _, _ := q.state(); b != max {
		t.Fatalf("queued %d bytes, want %d", b, max)
	}
	// a hit needs room: a ping goes
	if q.push(msgOf(protocol.TypeQueryHit, 0, 77)) != enqueued {
		t.Fatal("hit refused")
	}
	pings, queries := 0, 0
	for _, it := range q.items {
		switch h, _ := protocol.ParseHeader(it.hdr[:]); h.Type {
		case protocol.TypePing:
			pings++
		case protocol.TypeQuery:
			queries++
		}
	}
	if pings != 4 || queries != 5 {
		t.Errorf("after one drop: %d pings, %d queries; want 4 and 5", pings, queries)
	}
	// a ping cannot displace anything more important than pings... but other pings: the newest one loses
	if r := q.push(msgOf(protocol.TypePing, 0, 77)); r != enqueueDropped {
		t.Errorf("a ping into a queue of pings and better: %v, want dropped", r)
	}
	// fill with QRP: never dropped to make room, and never displaced
	q2 := newSendQueue(300, nil)
	for i := 0; i < 3; i++ {
		if q2.push(msgOf(protocol.TypeRouteTable, 0, 77)) != enqueued {
			t.Fatal("QRP refused")
		}
	}
	if r := q2.push(msgOf(protocol.TypeBye, 0, 77)); r != enqueueFull {
		t.Errorf("a Bye that cannot fit: %v, want full (Bye 502)", r)
	}
	if r := q2.push(msgOf(protocol.TypeQueryHit, 0, 77)); r != enqueueDropped {
		t.Errorf("a hit into a queue of QRP: %v, want dropped", r)
	}
	if _, _, dropped := q.state(); dropped != 1 {
		t.Errorf("dropped counter %d, want 1", dropped)
	}
}

// Flow control starts at the high-water mark (half) and ends at the
// low-water mark (a quarter), as gtk-gnutella's queues do.
func TestSendQueueFlowControlMarks(t *testing.T) {
	q := newSendQueue(1000, nil)
	for i := 0; i < 4; i++ {
		q.push(msgOf(protocol.TypeQuery, 0, 77)) // 100 bytes each
	}
	if _, fc, _ := q.state(); fc {
		t.Fatal("flow control at 400/1000")
	}
	q.push(msgOf(protocol.TypeQuery, 0, 77))
	if _, fc, _ := q.state(); !fc {
		t.Fatal("no flow control at 500/1000")
	}
	q.pop()
	q.pop()
	if _, fc, _ := q.state(); !fc {
		t.Fatal("flow control ended at 300/1000, above the low-water mark")
	}
	q.pop()
	if _, fc, _ := q.state(); fc {
		t.Fatal("still in flow control at 200/1000")
	}
}
