package routing

import (
	"fmt"
	"sync/atomic"

	"gnutella/protocol"
)

// AbuseLimits are the thresholds of LinkAbuse, named after gtk-gnutella's
// properties.
type AbuseLimits struct {
	// MinDups: a link is not kicked for duplicates until it has sent more
	// than this many (min_dup_msg, 5).
	MinDups uint64
	// DupRatio is the share of received messages, in hundredths of a per
	// cent, that duplicates must also exceed (min_dup_ratio, 150 = 1.5 %).
	DupRatio uint64
	// MaxHighTTL: a link is kicked once it has sent more than this many
	// messages over the hard TTL limit (max_high_ttl_msg, 10)...
	MaxHighTTL uint64
	// HighTTLRadius: ...and the offending message is a query within this
	// many hops (max_high_ttl_radius, 2).
	HighTTLRadius uint8
}

// DefaultAbuseLimits returns gtk-gnutella's defaults: 5 dups, 1.5 %, 10 high
// TTL messages, radius 2.
func DefaultAbuseLimits() AbuseLimits {
	return AbuseLimits{MinDups: 5, DupRatio: 150, MaxHighTTL: 10, HighTTLRadius: 2}
}

// LinkAbuse is the abuse accounting of one link (docs/protocol.md §7, §8.2, §8.7). The
// servent calls Received for every message read from the link, Duplicate
// for every duplicate the link itself had already sent (DupCache.CheckFrom's
// sameLink), and HighTTL for every message dropped with DropHardLimit. When
// a threshold is crossed these return the Bye code to send
// (protocol.ByeTooManyDuplicates 401 or protocol.ByeHighTTL 403) and its
// reason in gtk-gnutella's words; otherwise code 0. The servent then sends
// the Bye and closes the link (gtk spares a link when closing it would leave
// too few connections; that choice is the servent's).
//
// The counters are atomic, so another goroutine may read Counts while the
// link's reader updates them. Use NewLinkAbuse, or set Limits before use.
type LinkAbuse struct {
	Limits AbuseLimits

	received atomic.Uint64
	dups     atomic.Uint64
	highTTL  atomic.Uint64
}

// NewLinkAbuse returns the accounting of a new link with the given limits.
func NewLinkAbuse(l AbuseLimits) *LinkAbuse { return &LinkAbuse{Limits: l} }

// Received counts one message read from the link, duplicates included. Call
// it before Duplicate for the same message, as gtk counts RX first.
func (a *LinkAbuse) Received() { a.received.Add(1) }

// Duplicate counts a duplicate the link sent again and returns
// protocol.ByeTooManyDuplicates (401) when the link has now sent more than
// MinDups duplicates and they exceed DupRatio of its received messages (gtk routing.c handle_duplicate). A
// duplicate with a higher TTL is a legitimate re-send (X-Ext-Probes): it is
// not counted and never kicks.
func (a *LinkAbuse) Duplicate(higherTTL bool) (code protocol.ByeCode, reason string) {
	if higherTTL {
		return 0, ""
	}
	n := a.dups.Add(1)
	rx := a.received.Load()
	if n > a.Limits.MinDups && n*10000 > a.Limits.DupRatio*rx {
		pct := 0.0
		if rx > 0 {
			pct = 100 * float64(n) / float64(rx)
		}
		return protocol.ByeTooManyDuplicates, fmt.Sprintf("Sent %d dups (%.1f%% of RX)", n, pct)
	}
	return 0, ""
}

// HighTTL counts a message dropped for exceeding the hard TTL limit
// (Verdict DropHardLimit), with its type and hops as received. It returns
// protocol.ByeHighTTL (403) when the link has sent more than MaxHighTTL such
// messages and this one is a query within HighTTLRadius hops, i.e. from a neighbour that
// should have trimmed it (gtk routing.c forward_message: every offence is
// counted, only a nearby query kicks).
func (a *LinkAbuse) HighTTL(t protocol.Type, hops uint8) (code protocol.ByeCode, reason string) {
	n := a.highTTL.Add(1)
	if t == protocol.TypeQuery && hops <= a.Limits.HighTTLRadius && n > a.Limits.MaxHighTTL {
		return protocol.ByeHighTTL, fmt.Sprintf("Relayed %d high TTL (>%d) messages", n, a.Limits.MaxHighTTL)
	}
	return 0, ""
}

// Counts returns the messages received, duplicates counted and high-TTL
// offences so far.
func (a *LinkAbuse) Counts() (received, dups, highTTL uint64) {
	return a.received.Load(), a.dups.Load(), a.highTTL.Load()
}
