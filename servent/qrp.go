package servent

import (
	"errors"
	"sync"
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

const (
	qrpBits          = 16 // our tables: 64 Ki slots, the recommended size
	qrpInfinity      = 7  // as LimeWire; gtk-gnutella accepts any infinity ≥ 1
	maxPeerTableBits = 21 // refuse larger tables (gtk builds up to 2^21)
	qrpChunk         = 4096
)

type qrpState struct {
	mu    sync.RWMutex
	index *ultrapeer.LeafIndex
	byID  map[int]*Link
	gen   uint64 // bumped when a leaf table comes or goes

	// owned by the connector goroutine
	aggregate *ultrapeer.Table
	aggLocal  *ultrapeer.Table
	aggGen    uint64
	aggBuilt  time.Time
}

func (q *qrpState) init() {
	q.index = ultrapeer.NewLeafIndex(qrpBits)
	q.byID = map[int]*Link{}
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

// setLeafTable puts (or replaces) a leaf's table in the index.
func (q *qrpState) setLeafTable(l *Link, t *ultrapeer.Table) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if l.leafID < 0 {
		l.leafID = q.index.Add(t)
		q.byID[l.leafID] = l
	} else {
		q.index.Set(l.leafID, t)
	}
	q.gen++
}

func (q *qrpState) removeLeaf(l *Link) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if l.leafID >= 0 && q.byID[l.leafID] == l {
		q.index.Remove(l.leafID)
		delete(q.byID, l.leafID)
		l.leafID = -1
		q.gen++
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
// sequence rules ends the link with Bye 413.
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
	if l.qrpRecv == nil {
		l.qrpRecv = ultrapeer.NewReceiver(maxPeerTableBits)
	}
	done, err := l.qrpRecv.Apply(m)
	if err != nil {
		reason := "Invalid QRP sequence"
		var se *ultrapeer.SequenceError
		if errors.As(err, &se) {
			reason += ": " + se.Reason
		}
		l.Bye(protocol.ByeInvalidQRPSequence, reason)
		return
	}
	r.stats.Handled.Add(1)
	if !done {
		return
	}
	t := l.qrpRecv.Table()
	l.qrt.Store(t)
	if l.Kind == LinkLeaf {
		s.qrp.setLeafTable(l, t)
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

// qrpTick runs on the connector's clock: a leaf sends its table (or a patch)
// to its ultrapeers when it changed; an ultrapeer rebuilds its aggregate
// table at most every QRPAggregateInterval and sends it to the ultrapeers
// that announced X-Ultrapeer-Query-Routing. A leaf also says by Hops-Flow
// whether it shares anything (hopsflow.go).
func (s *Servent) qrpTick(now time.Time) {
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
