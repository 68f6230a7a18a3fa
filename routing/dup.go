package routing

import (
	"sync"

	"gnutella/protocol"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// DefaultDupCacheSize is the number of (GUID, Type) keys a DupCache built
// with a non-positive size remembers.
const DefaultDupCacheSize = 100_000

// MaxDupSenders is how many distinct sending links a DupCache remembers per
// message for CheckFrom's sameLink answer.
const MaxDupSenders = 4

// dupKey is the key of duplicate detection: a descriptor is a duplicate when
// one with the same payload type and message ID was seen before (docs/protocol.md §3.2).
type dupKey struct {
	id protocol.GUID
	t  protocol.Type
}

// dupEntry is what the cache keeps per key.
type dupEntry struct {
	maxTTL uint8
	n      uint8 // senders in use
	from   [MaxDupSenders]LinkID
	ttls   [MaxDupSenders]uint16 // the TTLs each sender sent, one bit each (15 and above share the top bit)
}

func ttlBit(ttl uint8) uint16 { return 1 << min(ttl, 15) }

// DupCache detects duplicate descriptors by (GUID, Type), as [C04] and
// gtk-gnutella's check_duplicate do. It remembers the most recently seen
// keys up to a fixed bound (least recently seen keys are forgotten first),
// and for each key the highest TTL seen so far, so that a copy arriving with
// a higher TTL can be re-forwarded (gtk's handle_duplicate, X-Ext-Probes).
// It is safe for concurrent use.
type DupCache struct {
	mu  sync.Mutex
	lru *simplelru.LRU[dupKey, dupEntry]
}

// NewDupCache returns a cache remembering at most size keys
// (DefaultDupCacheSize when size <= 0).
func NewDupCache(size int) *DupCache {
	if size <= 0 {
		size = DefaultDupCacheSize
	}
	l, err := simplelru.NewLRU[dupKey, dupEntry](size, nil)
	if err != nil { // only for size <= 0, excluded above
		panic(err)
	}
	return &DupCache{lru: l}
}

// Check records the message and says whether it was seen before. For a
// duplicate, higherTTL is true when this copy's TTL is higher than the
// highest TTL seen so far for that key, and the stored maximum is raised.
//
// gtk-gnutella compares the TTL the message would be forwarded with, i.e.
// after the relay clamp (TTLPolicy.ForwardTTL); pass that value to get its
// behaviour, or the TTL as received for the plain rule.
func (d *DupCache) Check(id protocol.GUID, t protocol.Type, ttl uint8) (dup, higherTTL bool) {
	dup, higherTTL, _ = d.CheckFrom(id, t, ttl, NoLink)
	return dup, higherTTL
}

// CheckFrom is Check that also records the link the copy came from, and
// reports in sameLink whether that link had already sent this message with
// the same TTL. Only
// such same-link duplicates are abuse (gtk counts a duplicate against a node
// only when the node itself sent the message before, docs/protocol.md §8.7): copies of a
// flooded query reaching us over several links are normal. Up to
// MaxDupSenders distinct links are remembered per message; a link beyond
// that is never reported as sameLink. from == NoLink is not recorded.
func (d *DupCache) CheckFrom(id protocol.GUID, t protocol.Type, ttl uint8, from LinkID) (dup, higherTTL, sameLink bool) {
	k := dupKey{id, t}
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.lru.Get(k)
	if !ok {
		e = dupEntry{maxTTL: ttl}
		if from != NoLink {
			e.from[0], e.ttls[0], e.n = from, ttlBit(ttl), 1
		}
		d.lru.Add(k, e)
		return false, false, false
	}
	changed := false
	if ttl > e.maxTTL {
		e.maxTTL, higherTTL, changed = ttl, true, true
	}
	if from != NoLink {
		known := false
		for i, l := range e.from[:e.n] {
			if l == from {
				// A copy with another TTL than the link's earlier ones is a
				// legitimate re-forward (X-Ext-Probes: the sender got a
				// higher-TTL copy; its readers run concurrently, so the two
				// may come in either order). The same TTL again is a loop.
				known, sameLink = true, e.ttls[i]&ttlBit(ttl) != 0
				if !sameLink {
					e.ttls[i] |= ttlBit(ttl)
					changed = true
				}
				break
			}
		}
		if !known && int(e.n) < len(e.from) {
			e.from[e.n], e.ttls[e.n] = from, ttlBit(ttl)
			e.n++
			changed = true
		}
	}
	if changed {
		d.lru.Add(k, e) // existing key: updates in place, no allocation
	}
	return true, higherTTL, sameLink
}

// Seen reports whether the key is remembered, without recording anything.
func (d *DupCache) Seen(id protocol.GUID, t protocol.Type) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lru.Contains(dupKey{id, t})
}

// Len returns the number of keys remembered; it never exceeds the size.
func (d *DupCache) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lru.Len()
}
