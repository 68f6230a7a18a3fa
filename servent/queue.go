package servent

import (
	"sync"

	"gnutella/protocol"
)

// The send queue of a link (docs/protocol.md §3.10): bounded in bytes, ordered by
// gtk-gnutella's priorities, dropping the least important message first
// when a new one would not fit.

// priority is gtk-gnutella's weight of a payload type (gmsg.c): higher is
// more important. Vendor messages sit with pongs; unknown types lowest.
func priority(t protocol.Type) int {
	switch t {
	case protocol.TypePing:
		return 1
	case protocol.TypeQuery:
		return 2
	case protocol.TypePong, protocol.TypeVendor, protocol.TypeStdVendor:
		return 3
	case protocol.TypeQueryHit:
		return 4
	case protocol.TypePush:
		return 5
	case protocol.TypeRouteTable:
		return 8
	case protocol.TypeBye:
		return 9
	}
	return 0
}

// outMsg is one descriptor ready for the wire: its header bytes and its
// payload. The payload may be shared by several queues (a flooded query is
// one slice for all links): nobody writes to it after enqueueing.
type outMsg struct {
	hdr     [protocol.HeaderLen]byte
	payload []byte
	prio    int
	hops    uint8
	ttl     uint8
	seq     uint64
}

func (m *outMsg) size() int { return protocol.HeaderLen + len(m.payload) }

// newOutMsg prepares h (with Length set from payload) and payload.
func newOutMsg(h protocol.Header, payload []byte) outMsg {
	h.Length = uint32(len(payload))
	m := outMsg{payload: payload, prio: priority(h.Type), hops: h.Hops, ttl: h.TTL}
	h.Put(m.hdr[:])
	return m
}

// less orders by importance: true when a is less important than b, so a is
// dropped first. Within a type, queries and pings with more hops matter
// less; hits and pushes with more hops matter more (they already cost
// bandwidth); then lower TTL first, then the larger message, then the newer.
func (a *outMsg) less(b *outMsg) bool {
	if a.prio != b.prio {
		return a.prio < b.prio
	}
	if a.hops != b.hops {
		if a.prio <= 2 { // ping, query
			return a.hops > b.hops
		}
		return a.hops < b.hops
	}
	if a.ttl != b.ttl {
		return a.ttl > b.ttl
	}
	if len(a.payload) != len(b.payload) {
		return len(a.payload) > len(b.payload)
	}
	return a.seq > b.seq
}

// sendQueue is a link's outgoing queue. Messages leave in priority order
// (most important first, FIFO within equal importance); Bye and QRP are
// never dropped to make room.
type sendQueue struct {
	mu      sync.Mutex
	items   []outMsg // binary max-heap by importance (see up/down)
	bytes   int
	max     int
	hiwat   int
	lowat   int
	seq     uint64
	flowCtl bool   // between hiwat and back under lowat
	dropped uint64 // messages dropped for room
	evicted int64  // dropped since the last takeEvicted
	// writing says a writer runs: from the push that finds none until the
	// writer finds the queue empty (idle). wake starts one; nil: nobody is
	// woken (tests of the queue alone).
	writing bool
	wake    func()
	closed  bool
}

func newSendQueue(max int, wake func()) *sendQueue {
	return &sendQueue{max: max, hiwat: max / 2, lowat: max / 4, wake: wake}
}

// enqueueResult says what happened to a message offered to the queue.
type enqueueResult uint8

const (
	enqueued       enqueueResult = iota
	enqueueDropped               // the new message itself did not fit
	enqueueFull                  // a must-send message did not fit: the link should go (Bye 502)
	enqueueClosed
)

// push offers m to the queue, dropping less important queued messages to
// make room when needed.
func (q *sendQueue) push(m outMsg) enqueueResult {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return enqueueClosed
	}
	m.seq = q.seq + 1 // the newest among equals: dropped before an older equal
	for q.bytes+m.size() > q.max {
		// find the least important droppable message
		worst := -1
		for i := range q.items {
			it := &q.items[i]
			if it.prio >= priority(protocol.TypeRouteTable) {
				continue
			}
			if worst < 0 || it.less(&q.items[worst]) {
				worst = i
			}
		}
		if worst < 0 || !q.items[worst].less(&m) {
			q.mu.Unlock()
			if m.prio >= priority(protocol.TypeRouteTable) {
				return enqueueFull
			}
			return enqueueDropped
		}
		q.removeAt(worst)
		q.dropped++
		q.evicted++
	}
	// Only a queue without a writer starts one: a running writer drains
	// this message too before it goes.
	wake := !q.writing
	q.writing = true
	q.seq++
	q.items = append(q.items, m)
	q.up(len(q.items) - 1)
	q.bytes += m.size()
	if q.bytes >= q.hiwat {
		q.flowCtl = true
	}
	q.mu.Unlock()
	if wake && q.wake != nil {
		q.wake()
	}
	return enqueued
}

// idle is the writer's last word after a flush: true (and the writer must
// exit) when the queue is empty, so that the next push starts a new one.
// An idle queue holds no slice: the next push, which starts a goroutine
// anyway, makes a new one (an idle leaf link should hold nothing it does
// not need, issue 14).
func (q *sendQueue) idle() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		q.items = nil
		q.writing = false
		return true
	}
	return false
}

// pop removes the most important message.
func (q *sendQueue) pop() (outMsg, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return outMsg{}, false
	}
	m := q.items[0]
	q.removeAt(0)
	if q.bytes <= q.lowat {
		q.flowCtl = false
	}
	return m, true
}

func (q *sendQueue) removeAt(i int) {
	n := len(q.items) - 1
	q.bytes -= q.items[i].size()
	if i != n {
		q.items[i] = q.items[n]
	}
	q.items[n] = outMsg{}
	q.items = q.items[:n]
	if i < n {
		q.down(i)
		q.up(i)
	}
	if n == 0 && cap(q.items) > 64 {
		q.items = nil // give a burst's memory back once idle
	}
}

// heap order: parent more important than (not less than) children; ties
// broken by seq so equal messages leave FIFO.
func (q *sendQueue) before(i, j int) bool {
	a, b := &q.items[i], &q.items[j]
	if a.prio != b.prio || a.hops != b.hops || a.ttl != b.ttl {
		return b.less(a)
	}
	return a.seq < b.seq
}

func (q *sendQueue) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !q.before(i, p) {
			return
		}
		q.items[i], q.items[p] = q.items[p], q.items[i]
		i = p
	}
}

func (q *sendQueue) down(i int) {
	n := len(q.items)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		c := l
		if r := l + 1; r < n && q.before(r, l) {
			c = r
		}
		if !q.before(c, i) {
			return
		}
		q.items[i], q.items[c] = q.items[c], q.items[i]
		i = c
	}
}

// state reports queued bytes, whether the queue is in flow control, and
// how many messages were dropped for room.
func (q *sendQueue) state() (bytes int, flowControlled bool, dropped uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes, q.flowCtl, q.dropped
}

// takeEvicted returns and clears the count of queued messages dropped for
// room since the last call.
func (q *sendQueue) takeEvicted() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := q.evicted
	q.evicted = 0
	return n
}

func (q *sendQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.items = nil
	q.bytes = 0
	q.mu.Unlock()
}
