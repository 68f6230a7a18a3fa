package servent

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"gnutella/protocol"
	"gnutella/routing"
	"gnutella/ultrapeer"
)

// LinkKind says what the peer at the other end of a link is to us.
type LinkKind uint8

const (
	// LinkNormal is a flat-network peer: a 0.4 servent, or a 0.6 one that
	// sent no X-Ultrapeer header.
	LinkNormal LinkKind = iota
	// LinkUltrapeer is a peer acting as an ultrapeer: another ultrapeer when
	// we are one, or one of our ultrapeers when we are a leaf.
	LinkUltrapeer
	// LinkLeaf is a leaf that hangs off us.
	LinkLeaf
)

func (k LinkKind) String() string {
	switch k {
	case LinkNormal:
		return "normal"
	case LinkUltrapeer:
		return "ultrapeer"
	case LinkLeaf:
		return "leaf"
	}
	return "unknown"
}

// Capabilities are what the peer announced in its handshake headers.
type Capabilities struct {
	Version               string // "0.6" or "0.4"
	Ultrapeer             bool   // X-Ultrapeer: True
	UltrapeerHeader       bool   // X-Ultrapeer was present at all
	PongCaching           bool
	GGEP                  bool
	VendorMessages        bool
	ByePacket             bool
	QueryRouting          bool // X-Query-Routing
	UltrapeerQueryRouting bool // X-Ultrapeer-Query-Routing
	DynamicQuerying       bool
	ExtProbes             bool
	RandomWalk            bool // X-Random-Walk (our own extension: walkers)
	Gossip                bool // X-Gossip (our own extension: probabilistic forwarding)
	MaxTTL                uint8
	Degree                int
}

// Link is one Gnutella connection. It has at most one reader and one writer
// goroutine: the writer runs only while its send queue holds messages, the
// reader of an idle link may park (park.go); everything else talks to it
// through its send queue.
type Link struct {
	ID        routing.LinkID
	Kind      LinkKind
	Inbound   bool
	Remote    netip.AddrPort // the socket's peer address
	Listen    netip.AddrPort // the address the peer says it listens on (may be invalid)
	PeerID    protocol.GUID  // from the GUID header (zero if not sent)
	UserAgent string
	Caps      Capabilities
	Since     time.Time
	// DeflateIn and DeflateOut say which directions are compressed.
	DeflateIn, DeflateOut bool
	// TLS says the link runs over TLS (tls.go).
	TLS bool

	s    *Servent
	conn net.Conn
	br   *bufio.Reader // handshake leftovers come first
	q    *sendQueue

	// done is closed when the link is over. It is made by the first Done
	// (a channel is 96 bytes, and only Stop and tests wait on a link);
	// ended says close has run. Both under dmu.
	dmu       sync.Mutex
	done      chan struct{}
	ended     bool
	closeOnce sync.Once
	closing   atomic.Bool // a Bye was sent or received: handle nothing more
	byeSent   atomic.Bool
	byeCode   atomic.Uint32

	lastRx    atomic.Int64 // unix nanoseconds of the last message received
	aliveSent atomic.Int32 // alive pings not yet answered
	aliveID   atomic.Pointer[protocol.GUID]
	flowSince atomic.Int64 // when the send queue entered flow control (0: not)
	hopsFlow  atomic.Uint32
	vendorIDs atomic.Pointer[[]protocol.VendorMessageID]

	// noOOBProxy: the leaf vetoed OOB-proxying of its queries (LIME/13,
	// oobproxy.go).
	noOOBProxy atomic.Bool

	// rmu guards rstate: whether a reader runs, or the link is parked in
	// the servent's poller (park.go).
	rmu    sync.Mutex
	rstate readerState
	clock  *time.Timer // alivePeriod's tick (clockTick); under rmu

	dw  *deflateWriter // the outbound stream's state between writers (DeflateOut)
	inf *inflater      // the inbound stream's state between readers (DeflateIn); the reader's

	// Owned by the reader goroutine.
	lastPing int64 // unix nanoseconds of the last Ping answered (0: none)
	abuse    routing.LinkAbuse

	qrt     atomic.Pointer[ultrapeer.Table] // the peer's QRP table, once complete
	leafID  int                             // its id in the servent's LeafIndex (-1: none); under qrp.mu
	qrpSent *ultrapeer.Table                // the table we last sent it (connector goroutine)

	rxMsgs, txMsgs, rxBytes, txBytes, dups atomic.Uint64
}

// LinkStats is a snapshot of a link's counters.
type LinkStats struct {
	RxMessages, TxMessages uint64
	RxBytes, TxBytes       uint64
	Duplicates             uint64
	Queued                 int
	FlowControlled         bool
	Dropped                uint64
}

// Stats returns the link's counters.
func (l *Link) Stats() LinkStats {
	b, fc, dropped := l.q.state()
	return LinkStats{
		RxMessages: l.rxMsgs.Load(), TxMessages: l.txMsgs.Load(),
		RxBytes: l.rxBytes.Load(), TxBytes: l.txBytes.Load(),
		Duplicates: l.dups.Load(), Queued: b, FlowControlled: fc, Dropped: dropped,
	}
}

// Done is closed when the link has ended.
func (l *Link) Done() <-chan struct{} {
	l.dmu.Lock()
	defer l.dmu.Unlock()
	if l.done == nil {
		l.done = make(chan struct{})
		if l.ended {
			close(l.done)
		}
	}
	return l.done
}

// ByeCode is the code of the Bye that ended the link (sent or received), or 0.
func (l *Link) ByeCode() protocol.ByeCode { return protocol.ByeCode(l.byeCode.Load()) }

func (l *Link) String() string {
	return fmt.Sprintf("link#%d %s %s", l.ID, l.Kind, l.Remote)
}

// log starts an event of the given level on the servent's logger, with
// the link's ID and peer address once it is registered, or returns nil
// when that level is off. The logger is not kept in the link: a
// zerolog.Logger with its context is about 600 bytes, a tenth of what an
// idle leaf link may cost (issue 14), and links rarely log.
func (l *Link) log(level zerolog.Level) *zerolog.Event {
	e := l.s.log.WithLevel(level)
	if e == nil || l.ID == 0 {
		return e
	}
	return e.Uint32("link", uint32(l.ID)).Str("peer", l.Remote.String())
}

// setDeflateOut says whether what we send is compressed, and makes the
// stream's state. It is called before the link is registered: from then
// on, a message routed to the link starts a writer that reads l.dw.
func (l *Link) setDeflateOut(on bool) {
	l.DeflateOut = on
	if on {
		l.dw = newDeflateWriter(l.conn)
	}
}

// start launches the reader and the clock; the first message queued
// starts a writer.
func (l *Link) start() {
	l.lastRx.Store(l.s.now().UnixNano())
	l.hopsFlow.Store(255)
	l.rmu.Lock()
	l.clock = time.AfterFunc(l.alivePeriod(), l.tick)
	l.rmu.Unlock()
	l.s.wg.Add(1)
	go l.readLoop()
}

// startWriter is the send queue's wake: it found no writer running. The
// queue is not closed (push checked, under its lock), so the link's close,
// and Stop's wait after it, come later.
func (l *Link) startWriter() {
	l.s.wg.Add(1)
	go l.writeLoop()
}

// tick runs clockTick every alivePeriod, in a goroutine of its own that
// Stop waits for, until the link is closed.
func (l *Link) tick() {
	l.rmu.Lock()
	if l.rstate == readerClosed {
		l.rmu.Unlock()
		return
	}
	l.s.wg.Add(1)
	l.rmu.Unlock()
	defer l.s.wg.Done()
	l.clockTick()
	l.rmu.Lock()
	if l.rstate != readerClosed {
		l.clock.Reset(l.alivePeriod())
	}
	l.rmu.Unlock()
}

// send queues a descriptor. It never blocks. payload must not change
// afterwards (it may be shared with other links).
func (l *Link) send(h protocol.Header, payload []byte) enqueueResult {
	if l.byeSent.Load() {
		return enqueueClosed
	}
	r := l.q.push(newOutMsg(h, payload))
	if r == enqueued {
		l.s.sentMsgs.Add(1 - l.q.takeEvicted())
		if _, fc, _ := l.q.state(); fc && l.flowSince.CompareAndSwap(0, l.s.now().UnixNano()) {
			l.hopsFlowForQueue(0) // entering flow control: ask the peer for no queries
		}
	}
	if r == enqueueFull {
		l.Bye(protocol.ByeSendQueueFull, "Send queue full")
	}
	return r
}

// sendMessage encodes and queues one message.
func (l *Link) sendMessage(h protocol.Header, p protocol.Payload) error {
	payload, err := p.AppendTo(nil)
	if err != nil {
		return err
	}
	h.Type = p.Type()
	if l.send(h, payload) == enqueueDropped {
		return errQueueDropped
	}
	return nil
}

var errQueueDropped = errors.New("send queue full: message dropped")

// FlowControlled reports whether the link's send queue is above its
// high-water mark.
func (l *Link) FlowControlled() bool { return l.flowSince.Load() != 0 }

// close ends the link at once.
func (l *Link) close(err error) {
	l.closeOnce.Do(func() {
		l.closing.Store(true)
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
			l.log(zerolog.DebugLevel).Err(err).Msg("link closed")
		}
		l.dmu.Lock()
		l.ended = true
		if l.done != nil {
			close(l.done)
		}
		l.dmu.Unlock()
		l.q.close()
		l.closeReader() // out of the poller before the socket goes
		_ = l.conn.Close()
		l.s.removeLink(l)
	})
}

// readLoop is the link's only reader. On a parkable link it exits when
// the link has been quiet for ParkAfter, and the poller starts a new one at
// the next byte (park.go).
func (l *Link) readLoop() {
	defer l.s.wg.Done()
	if l.br == nil { // woken from the poller
		l.br = readBufPool.Get().(*bufio.Reader)
		l.br.Reset(l.conn)
	}
	park := l.parkable()
	var src io.Reader = l.br
	if l.DeflateIn {
		if l.inf == nil {
			l.inf = newInflater(l.br)
			l.inf.active = &l.s.inflating
		}
		l.inf.setSource(l.br)
		src = l.inf
	}
	r := protocol.NewReader(src, l.s.cfg.Limits)
	for {
		if park && l.br.Buffered() == 0 && (l.inf == nil || l.inf.quiet()) && !l.closing.Load() {
			parked, err := l.waitOrPark()
			if parked {
				return
			}
			if err != nil {
				l.readEnded(err)
				return
			}
		}
		h, payload, err := r.ReadRaw()
		if err != nil {
			l.readEnded(err)
			return
		}
		if l.closing.Load() {
			l.s.handledMsgs.Add(1) // consumed, not handled: keeps the balance even
			if l.byeSent.Load() {
				continue // draining after our Bye
			}
			l.readEnded(nil)
			return
		}
		l.rxMsgs.Add(1)
		l.rxBytes.Add(uint64(protocol.HeaderLen + len(payload)))
		l.lastRx.Store(l.s.now().UnixNano())
		l.s.handle(l, h, payload)
		l.s.handledMsgs.Add(1)
	}
}

// readEnded is the reader's last act when it ends for good (not when it
// parks): the inflater's pooled state goes back, and a read error ends the
// link (readFailed).
func (l *Link) readEnded(err error) {
	if l.inf != nil {
		l.inf.release()
	}
	if err != nil {
		l.readFailed(err)
	}
}

// readFailed decides how a read error ends the link.
func (l *Link) readFailed(err error) {
	switch {
	case l.byeSent.Load():
		l.close(nil) // the peer closed (or the grace ran out) after our Bye
	case errors.Is(err, protocol.ErrTooLarge):
		l.log(zerolog.InfoLevel).Err(err).Msg("oversized message")
		l.Bye(protocol.ByeMessageTooLarge, byeTooLargeReason(err))
		l.drainAfterBye()
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, io.ErrUnexpectedEOF):
		l.close(err)
	case errors.Is(err, protocol.ErrTruncated) || errors.Is(err, protocol.ErrMalformed):
		l.close(err)
	default:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			l.close(err)
			return
		}
		// a broken compressed stream or garbage: the stream is lost
		l.Bye(protocol.ByeProtocolDesync, "Garbled input stream")
		l.drainAfterBye()
	}
}

func byeTooLargeReason(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.Detail != "" {
		return "Too large message: " + pe.Detail
	}
	return "Too large message"
}

// writeLoop is the link's only writer, started when its queue receives a
// message with no writer running. It drains the queue in priority order,
// flushes (and syncs the compressor) at the end of every burst or every
// 4 KiB, and exits once the queue is empty after a flush, so that an idle
// link holds no writer goroutine.
func (l *Link) writeLoop() {
	defer l.s.wg.Done()
	dw := l.dw
	var w io.Writer = l.conn
	if dw != nil {
		w = dw
	}
	// The 4 KiB write buffer, like the compressor, is held only during a
	// burst, so an idle link keeps neither.
	var bw *bufio.Writer
	defer func() {
		if bw != nil {
			bufWriterPool.Put(bw)
		}
	}()
	flush := func() error {
		err := bw.Flush()
		if err == nil && dw != nil {
			err = dw.Release()
		}
		bw.Reset(nil)
		bufWriterPool.Put(bw)
		bw = nil
		return err
	}
	for {
		unflushed := 0
		for {
			m, ok := l.q.pop()
			if !ok {
				break
			}
			if bw == nil {
				bw = bufWriterPool.Get().(*bufio.Writer)
				bw.Reset(w)
			}
			_, _ = bw.Write(m.hdr[:])
			if _, err := bw.Write(m.payload); err != nil {
				l.close(err)
				return
			}
			l.txMsgs.Add(1)
			l.txBytes.Add(uint64(m.size()))
			unflushed += m.size()
			if m.prio == priority(protocol.TypeBye) {
				l.finishAfterBye(flush, dw)
				return
			}
			if unflushed >= 4096 {
				if err := flush(); err != nil {
					l.close(err)
					return
				}
				unflushed = 0
			}
		}
		if _, fc, _ := l.q.state(); !fc && l.flowSince.Swap(0) != 0 {
			l.hopsFlowForQueue(255) // drained below the low-water mark: queries welcome again
		}
		if bw != nil {
			if err := flush(); err != nil {
				l.close(err)
				return
			}
		}
		if l.q.idle() {
			return
		}
	}
}

var bufWriterPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4096) }}

// finishAfterBye flushes the Bye, ends the compressed stream, half-closes
// and leaves the reader to see the peer's close within ByeGrace.
func (l *Link) finishAfterBye(flush func() error, dw *deflateWriter) {
	_ = l.conn.SetWriteDeadline(l.s.now().Add(l.s.cfg.ByeGrace))
	err := flush()
	if err == nil && dw != nil {
		err = dw.Close()
	}
	if err != nil {
		l.close(err)
		return
	}
	if cw, ok := l.conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = l.conn.SetReadDeadline(l.s.now().Add(l.s.cfg.ByeGrace))
	l.wake() // a parked link needs a reader to see the peer go within the grace
}

// leafPingSpacing is the least time between two pings a leaf sends its
// ultrapeer: gtk-gnutella accepts one ping a minute from a leaf and counts
// the rest as throttled drops (PING_LEAF_THROTTLE).
const leafPingSpacing = time.Minute

// alivePeriod is how often the link's clock ticks: AlivePingInterval, but
// never more often than leafPingSpacing on a leaf's link to its ultrapeer.
func (l *Link) alivePeriod() time.Duration {
	d := l.s.cfg.AlivePingInterval
	if l.Kind == LinkUltrapeer && l.s.isLeaf() {
		d = max(d, leafPingSpacing)
	}
	return d
}

// clockTick runs every alivePeriod (tick): idle and
// flow-control timeouts, unanswered alive pings, and the next alive ping.
func (l *Link) clockTick() {
	if l.closing.Load() {
		return
	}
	now := l.s.now()
	cfg := &l.s.cfg
	if since := l.flowSince.Load(); since != 0 && now.Sub(time.Unix(0, since)) > cfg.FlowControlTimeout {
		l.Bye(protocol.ByeActivityTimeout, "Flow-controlled for too long")
		return
	}
	if now.Sub(time.Unix(0, l.lastRx.Load())) > cfg.IdleTimeout {
		l.Bye(protocol.ByeActivityTimeout, "Activity timeout")
		return
	}
	if int(l.aliveSent.Load()) >= cfg.AliveMaxMissed {
		l.Bye(protocol.ByeNoAliveReply, "No reply to alive pings")
		return
	}
	l.sendAlivePing()
}

// sendAlivePing sends a TTL 1, hops 0 ping; the peer's pong with the same
// GUID proves the link alive.
func (l *Link) sendAlivePing() {
	id := protocol.NewGUID()
	l.aliveID.Store(&id)
	l.aliveSent.Add(1)
	_ = l.sendMessage(protocol.Header{ID: id, TTL: 1}, &protocol.Ping{})
}

// aliveAnswered is called for a hops-0 pong; it clears the missed count
// when it answers our last alive ping.
func (l *Link) aliveAnswered(id protocol.GUID) {
	if p := l.aliveID.Load(); p != nil && *p == id {
		l.aliveSent.Store(0)
	}
}
