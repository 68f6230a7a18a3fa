package servent

import (
	"gnutella/protocol"
	"gnutella/ultrapeer"
)

// Hops-Flow (BEAR/4) in one place: what we say (an ultrapeer whose send
// queue to a neighbour is flow-controlled says 0, then 255 when it drained;
// a leaf says whether it shares), what we hear (receiveHopsFlow, from the
// vendor dispatch) and how we obey it (wantsQueryHops, in flood and
// toLeaves).

// hopsFlowForQueue tells an ultrapeer neighbour, by Hops-Flow (BEAR/4),
// to stop or resume sending queries while our send queue to it is in flow
// control, as gtk-gnutella does: the hits for its queries would have nowhere
// to go. (A leaf says whether it shares instead: leafHopsFlow.)
func (l *Link) hopsFlowForQueue(v uint8) {
	if l.s.isLeaf() || !l.Supports(protocol.HopsFlowID) {
		return
	}
	_ = l.sendMessage(protocol.Header{ID: protocol.NewGUID(), TTL: 1}, protocol.NewHopsFlow(v))
}

// HopsFlow is the peer's last Hops-Flow value (255 when it sent none).
func (l *Link) HopsFlow() uint8 { return uint8(l.hopsFlow.Load()) }

// receiveHopsFlow takes a neighbour's Hops-Flow: from now on it gets only
// queries with fewer hops than the value.
func (l *Link) receiveHopsFlow(v *protocol.Vendor) {
	if hops, err := v.HopsFlow(); err == nil {
		l.hopsFlow.Store(uint32(hops))
	}
}

// wantsQueryHops obeys the peer's Hops-Flow: a query with hops at or above
// its value is not sent to it.
func (l *Link) wantsQueryHops(hops uint8) bool {
	return uint32(hops) < l.hopsFlow.Load()
}

// sharingHopsFlow is a leaf's Hops-Flow to its ultrapeers: 0 when it shares
// nothing (no query would find anything), 255 otherwise.
func sharingHopsFlow(local *ultrapeer.Table) uint8 {
	if local.Count() == 0 {
		return 0
	}
	return 255
}

// leafHopsFlow remembers the Hops-Flow a leaf last said to each of its
// ultrapeers, so it says it again only when it changes. Owned by the
// connector goroutine.
type leafHopsFlow struct {
	last map[*Link]uint8
}

// announce sends flow to l when it differs from what l last heard (255,
// the default, is not said to a link that never heard another value).
func (f *leafHopsFlow) announce(l *Link, flow uint8) {
	if f.last == nil {
		f.last = map[*Link]uint8{}
	}
	if last, ok := f.last[l]; (!ok && flow == 0) || (ok && last != flow) {
		_ = l.sendMessage(protocol.Header{ID: protocol.NewGUID(), TTL: 1}, protocol.NewHopsFlow(flow))
		f.last[l] = flow
	}
}

// prune forgets the links that are closing.
func (f *leafHopsFlow) prune() {
	for l := range f.last {
		if l.closing.Load() {
			delete(f.last, l)
		}
	}
}
