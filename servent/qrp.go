package servent

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"gnutella/protocol"
	"gnutella/share"
	"gnutella/ultrapeer"
)

// QRP in the servent (docs/protocol.md §4): a leaf sends its table to its ultrapeers; an
// ultrapeer keeps one table per leaf (in a LeafIndex, so one query is matched
// against every leaf at once), sends queries to a leaf only where its table
// matches, and exchanges an aggregate table (its own library OR every leaf's)
// with ultrapeers that announced X-Ultrapeer-Query-Routing, used for the last
// hop only.
//
// A leaf's table is held once: the Receiver's last complete table, compacted
// to its slot list when that is smaller (a leaf sharing 50 words: 300 bytes
// instead of 8 KiB), is the link's PeerTable and what the LeafIndex keeps to
// take the leaf out again; the index's own entries are 4 bytes per slot. The
// patch bytes and the inflater of an update are given back (to their pools)
// when its last PATCH has been applied.

const (
	qrpBits          = 16 // our tables: 64 Ki slots, the recommended size
	qrpInfinity      = 7  // as LimeWire; gtk-gnutella accepts any infinity ≥ 1
	maxPeerTableBits = 21 // refuse larger tables (gtk builds up to 2^21: docs/protocol.md §4.3)
	qrpChunk         = 4096

	// qrpLinkMemory is the QRP memory allowed per link by default
	// (Config.QRPMemory): a table of 2^maxPeerTableBits slots.
	qrpLinkMemory = 1 << maxPeerTableBits / 8
	// qrpMinMemory is the least default budget when memory caps it.
	qrpMinMemory = 64 << 20
	// qrpFullLeaves leaves (the leaf limit's old default) count
	// qrpLinkMemory each in the default budget, and every leaf above them
	// qrpLeafMemory, twice a dense table of our size (2^16 slots, 8 KiB):
	// thousands of leaves (DefaultMaxLeaves) must not let hostile ones pin
	// 256 KiB each.
	qrpFullLeaves = 300
	qrpLeafMemory = 2 << qrpBits / 8
	// qrpUpdateTimeout bounds an unfinished update, from its RESET or its
	// first PATCH to its last PATCH. Neither the specification nor
	// gtk-gnutella sets one (docs/protocol.md §4.4: a sequence ends when
	// seq_no = seq_size); a leaf sends its whole table at once, QRP
	// messages are never dropped by flow control (docs/protocol.md §3.10),
	// and the largest patch we accept (128 KiB compressed) takes 20 s at
	// 56 kbit/s, so three minutes, the idle timeout, is generous. An update
	// not finished by then is abandoned, its memory freed, and the link
	// closed with Bye 413 as for any other QRP violation.
	qrpUpdateTimeout = 3 * time.Minute
)

type qrpState struct {
	mu     sync.RWMutex
	index  *ultrapeer.LeafIndex
	byID   map[int]*Link
	gen    uint64 // bumped when a leaf table comes or goes
	recv   map[*Link]*qrpRecv
	budget *ultrapeer.Budget // shared by every qrpRecv; safe without mu

	// owned by the connector goroutine
	aggregate *ultrapeer.Table
	aggLocal  *ultrapeer.Table
	aggGen    uint64
	aggBuilt  time.Time
}

// qrpRecv is what a link's peer sent us of its QRP table. The link's
// reader applies messages under mu; forgetLink releases it under mu when the
// link goes, after which gone keeps the reader from charging the budget
// again.
type qrpRecv struct {
	mu    sync.Mutex
	r     *ultrapeer.Receiver
	gone  bool         // under mu
	since atomic.Int64 // when the pending update began (UnixNano); 0: none pending
}

func (q *qrpState) init(cfg *Config) {
	q.index = ultrapeer.NewLeafIndex(qrpBits)
	q.byID = map[int]*Link{}
	q.recv = map[*Link]*qrpRecv{}
	limit := cfg.QRPMemory
	if limit <= 0 {
		leaves := int64(max(cfg.MaxLeaves, 0))
		limit = (int64(max(cfg.MaxLinks, 0)) + min(leaves, qrpFullLeaves)) * qrpLinkMemory
		limit += max(leaves-qrpFullLeaves, 0) * qrpLeafMemory
		if m := memoryLimit() / leafMemoryShare; m > 0 {
			limit = min(limit, max(m, qrpMinMemory)) // the leaves' share of memory
		}
	}
	q.budget = ultrapeer.NewBudget(limit)
}

// receiver returns l's receive state, made on its first QRP message; nil
// once l is closing, so that nothing is made after forgetLink ran (close
// sets closing before it removes the link).
func (q *qrpState) receiver(l *Link) *qrpRecv {
	q.mu.Lock()
	defer q.mu.Unlock()
	rv := q.recv[l]
	if rv == nil && !l.closing.Load() {
		rv = &qrpRecv{r: ultrapeer.NewLimitedReceiver(ultrapeer.ReceiverLimits{
			MaxBits: maxPeerTableBits, Budget: q.budget,
		})}
		q.recv[l] = rv
	}
	return rv
}

// QRPMemory returns the bytes the QRP tables and patches received from all
// links hold now, and the limit (Config.QRPMemory). In use comes back to 0
// when every link that sent a table has closed.
func (s *Servent) QRPMemory() (inUse, limit int64) {
	return s.qrp.budget.InUse(), s.qrp.budget.Limit()
}

// expired returns the links whose QRP update has been pending since before
// deadline.
func (q *qrpState) expired(deadline time.Time) []*Link {
	q.mu.RLock()
	defer q.mu.RUnlock()
	var out []*Link
	for l, rv := range q.recv {
		if t := rv.since.Load(); t != 0 && t < deadline.UnixNano() {
			out = append(out, l)
		}
	}
	return out
}

// qrpQuery is the query as QRP hashes it: its normalised words (as the
// library and the tables split names) and its URNs.
func qrpQuery(q *protocol.Query) *ultrapeer.QRPQuery {
	return ultrapeer.NewQRPQuery(share.Keywords(string(q.Search)), q.URNs())
}

// lazyQRP hashes a query for QRP only when a table is to be consulted: on
// a network without leaves or tables, routing never pays for it.
type lazyQRP struct {
	q  *protocol.Query
	qq *ultrapeer.QRPQuery
}

func (z *lazyQRP) get() *ultrapeer.QRPQuery {
	if z.qq == nil {
		z.qq = qrpQuery(z.q)
	}
	return z.qq
}

// hasLeaves reports whether any leaf has a table in the index.
func (q *qrpState) hasLeaves() bool {
	q.mu.RLock()
	defer q.mu.RUnlock()
	return q.index.Len() > 0
}

// setTable makes t, just completed by rv, l's table, and puts (or
// replaces) a leaf's in the index, unless l is gone already.
func (q *qrpState) setTable(l *Link, rv *qrpRecv, t *ultrapeer.Table) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.recv[l] != rv {
		return // forgetLink ran: the table must not outlive the link
	}
	l.qrt.Store(t)
	if l.Kind != LinkLeaf {
		return
	}
	if l.leafID < 0 {
		l.leafID = q.index.Add(t)
		q.byID[l.leafID] = l
	} else {
		q.index.Set(l.leafID, t)
	}
	q.gen++
}

// forgetLink forgets everything l's peer sent of its QRP table when l goes
// or is refused: its column in the index, its table, and what its receiver
// holds, given back to the budget.
func (q *qrpState) forgetLink(l *Link) {
	q.mu.Lock()
	if l.leafID >= 0 && q.byID[l.leafID] == l {
		q.index.Remove(l.leafID)
		delete(q.byID, l.leafID)
		l.leafID = -1
		q.gen++
	}
	rv := q.recv[l]
	delete(q.recv, l)
	l.qrt.Store(nil)
	q.mu.Unlock()
	if rv != nil {
		rv.mu.Lock()
		rv.gone = true
		rv.r.Release()
		rv.mu.Unlock()
	}
}

// matchLeaves appends the leaves whose table matches qq.
func (q *qrpState) matchLeaves(qq *ultrapeer.QRPQuery, dst []*Link) []*Link {
	var buf [64]int
	q.mu.RLock()
	defer q.mu.RUnlock()
	for _, id := range q.index.Match(qq, buf[:0]) {
		if l := q.byID[id]; l != nil {
			dst = append(dst, l)
		}
	}
	return dst
}

// handleRouteTable takes a QRP RESET or PATCH from a leaf, or from an
// ultrapeer that announced X-Ultrapeer-Query-Routing. Any violation of the
// sequence rules, a patch over the receiver's limit, or memory over
// Config.QRPMemory ends the link with Bye 413 (the code gtk-gnutella uses
// for every QRP refusal, a too large table included: docs/protocol.md
// §4.3, §8.8).
func (r *router) handleRouteTable(l *Link, h protocol.Header, payload []byte) {
	r.trace(l, h, false)
	if h.Hops != 0 || h.TTL > 1 {
		r.stats.DropOther.Add(1)
		return
	}
	s := r.s
	switch {
	case s.isLeaf():
		r.stats.DropOther.Add(1) // ultrapeers route to us by their own table, not ours
		return
	case l.Kind == LinkLeaf:
	case l.Kind == LinkUltrapeer && l.Caps.UltrapeerQueryRouting && s.cfg.UltrapeerQRP:
	default:
		r.stats.DropOther.Add(1) // QRP from a peer that did not announce it
		return
	}
	m, err := protocol.DecodeRouteTableUpdate(payload)
	if err != nil {
		l.Bye(protocol.ByeInvalidQRPSequence, "Invalid QRP message")
		return
	}
	rv := s.qrp.receiver(l)
	if rv == nil {
		r.stats.DropOther.Add(1) // the link is closing
		return
	}
	err = s.qrp.apply(l, rv, m, s.now())
	if err == nil {
		r.stats.Handled.Add(1)
		return
	}
	reason := "Invalid QRP sequence"
	var se *ultrapeer.SequenceError
	switch {
	case errors.Is(err, errLinkGone):
		r.stats.DropOther.Add(1)
		return
	case errors.As(err, &se):
		reason += ": " + se.Reason
	case errors.Is(err, ultrapeer.ErrBudget):
		reason = "QRP memory budget exhausted"
	}
	s.qrp.refuse(l, reason) // with rv.mu free: forgetLink takes it
}

// refuse ends l with Bye 413 and frees at once what its peer sent of its
// QRP table, without waiting for the Bye's grace to close the link.
func (q *qrpState) refuse(l *Link, reason string) {
	l.Bye(protocol.ByeInvalidQRPSequence, reason) // sets closing: nothing is made for l again
	q.forgetLink(l)
}

var errLinkGone = errors.New("link gone")

// apply gives m to l's receiver and, when it completes a table, makes it
// l's; it notes when an update begins and ends, for expireQRPUpdates.
func (q *qrpState) apply(l *Link, rv *qrpRecv, m protocol.Payload, now time.Time) error {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	if rv.gone {
		return errLinkGone
	}
	done, err := rv.r.Apply(m)
	if err != nil {
		return err
	}
	switch {
	case !rv.r.Pending():
		rv.since.Store(0)
	case rv.since.Load() == 0:
		rv.since.Store(now.UnixNano())
	}
	if done {
		q.setTable(l, rv, rv.r.Table())
	}
	return nil
}

// expireQRPUpdates ends, with Bye 413, the links whose QRP update has
// been pending for longer than qrpUpdateTimeout, and frees what they held.
func (s *Servent) expireQRPUpdates(now time.Time) {
	for _, l := range s.qrp.expired(now.Add(-qrpUpdateTimeout)) {
		s.qrp.refuse(l, fmt.Sprintf("QRP update not completed within %v", qrpUpdateTimeout))
	}
}

// PeerTable is the QRP table the peer sent us (nil until one is complete).
func (l *Link) PeerTable() *ultrapeer.Table { return l.qrt.Load() }

// localTable is our own library's table (Library.QRPTable).
func (s *Servent) localTable() *ultrapeer.Table {
	if lib := s.cfg.Library; lib != nil {
		if t := lib.QRPTable(); t != nil {
			return t
		}
	}
	return emptyTable
}

var emptyTable = ultrapeer.NewTable(qrpBits)

// qrpTick runs on the connector's clock: it ends the links whose QRP
// update is overdue (expireQRPUpdates); a leaf sends its table (or a patch)
// to its ultrapeers when it changed; an ultrapeer rebuilds its aggregate
// table at most every QRPAggregateInterval and sends it to the ultrapeers
// that announced X-Ultrapeer-Query-Routing. A leaf also says by Hops-Flow
// whether it shares anything (hopsflow.go).
func (s *Servent) qrpTick(now time.Time) {
	s.expireQRPUpdates(now)
	local := s.localTable()
	if s.isLeaf() {
		flow := sharingHopsFlow(local)
		for _, l := range s.Links() {
			if l.Kind != LinkUltrapeer || l.closing.Load() {
				continue
			}
			if l.Caps.QueryRouting {
				s.sendTable(l, local)
			}
			s.leafFlow.announce(l, flow)
		}
		return
	}
	if !s.cfg.UltrapeerQRP {
		return
	}
	q := &s.qrp
	q.mu.RLock()
	gen := q.gen
	q.mu.RUnlock()
	if q.aggregate == nil || ((gen != q.aggGen || local != q.aggLocal) && now.Sub(q.aggBuilt) >= s.cfg.QRPAggregateInterval) {
		agg := local.Clone()
		if agg.Bits() != qrpBits {
			agg = agg.Scale(qrpBits)
		}
		for _, l := range s.Links() {
			if l.Kind != LinkLeaf {
				continue
			}
			if t := l.qrt.Load(); t != nil {
				if t.Bits() != qrpBits {
					t = t.Scale(qrpBits)
				}
				agg.Or(t)
			}
		}
		q.aggregate, q.aggGen, q.aggLocal, q.aggBuilt = agg, gen, local, now
	}
	for _, l := range s.Links() {
		if l.Kind == LinkUltrapeer && l.Caps.UltrapeerQueryRouting && !l.closing.Load() {
			s.sendTable(l, q.aggregate)
		}
	}
	s.leafFlow.prune()
}

// sendTable sends t to l: RESET and PATCHes the first time (or when the
// size changes), then only a PATCH against what l has.
func (s *Servent) sendTable(l *Link, t *ultrapeer.Table) {
	if l.qrpSent == t {
		return
	}
	var msgs []protocol.Payload
	if l.qrpSent == nil || l.qrpSent.Bits() != t.Bits() {
		msgs = t.Messages(qrpInfinity, qrpChunk)
	} else {
		msgs = t.PatchFrom(l.qrpSent, qrpInfinity, qrpChunk)
	}
	for _, m := range msgs {
		if err := l.sendMessage(protocol.Header{ID: protocol.NewGUID(), TTL: 1}, m); err != nil {
			return // the link is in trouble; try the whole table again later
		}
	}
	l.qrpSent = t
}

// QRPStats counts queries sent to leaves (each one passed the leaf's QRP
// table) and last-hop queries an ultrapeer's table saved.
func (s *Servent) QRPStats() (leafDeliveries, lastHopSaved uint64) {
	return s.router.leafDeliveries.Load(), s.router.lastHopSaved.Load()
}
