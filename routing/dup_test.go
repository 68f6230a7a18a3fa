package routing

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"testing"

	"gnutella/protocol"
)

// guidN returns a distinct GUID for each n.
func guidN(n uint64) protocol.GUID {
	var g protocol.GUID
	binary.BigEndian.PutUint64(g[:8], n)
	g[15] = 0xAA
	return g
}

func TestDupCacheFirstSeenIsNotDuplicate(t *testing.T) {
	d := NewDupCache(16)
	g := guidN(1)
	if dup, _ := d.Check(g, protocol.TypeQuery, 3); dup {
		t.Fatal("first sight reported as duplicate")
	}
	if dup, _ := d.Check(g, protocol.TypeQuery, 3); !dup {
		t.Fatal("second sight not reported as duplicate")
	}
	if dup, _ := d.Check(g, protocol.TypePush, 3); dup {
		t.Fatal("same GUID with another type reported as duplicate: the key is (GUID, Type)")
	}
	if dup, _ := d.Check(guidN(2), protocol.TypeQuery, 3); dup {
		t.Fatal("another GUID reported as duplicate")
	}
	if !d.Seen(g, protocol.TypeQuery) || d.Seen(guidN(3), protocol.TypeQuery) {
		t.Fatal("Seen disagrees with what was checked")
	}
}

func TestDupCacheHigherTTLRaisesStoredMaximum(t *testing.T) {
	type step struct {
		ttl            uint8
		dup, higherTTL bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"same TTL is a plain duplicate", []step{{3, false, false}, {3, true, false}}},
		{"lower TTL is a plain duplicate", []step{{3, false, false}, {2, true, false}, {1, true, false}}},
		{"higher TTL is flagged once", []step{{1, false, false}, {3, true, true}, {3, true, false}}},
		{"maximum is raised step by step", []step{{1, false, false}, {2, true, true}, {4, true, true}, {3, true, false}, {5, true, true}}},
		{"first TTL 0 then 1", []step{{0, false, false}, {1, true, true}}},
		{"highest possible TTL", []step{{254, false, false}, {255, true, true}, {255, true, false}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDupCache(8)
			g := guidN(7)
			for i, s := range tc.steps {
				dup, higher := d.Check(g, protocol.TypeQuery, s.ttl)
				if dup != s.dup || higher != s.higherTTL {
					t.Fatalf("step %d ttl %d: got dup=%v higherTTL=%v, want %v %v", i, s.ttl, dup, higher, s.dup, s.higherTTL)
				}
			}
		})
	}
}

func TestDupCacheBoundHoldsAtTenTimesSize(t *testing.T) {
	const size = 100
	d := NewDupCache(size)
	for i := range uint64(10 * size) {
		d.Check(guidN(i), protocol.TypeQuery, 4)
		if d.Len() > size {
			t.Fatalf("after %d insertions Len = %d > %d", i+1, d.Len(), size)
		}
	}
	if d.Len() != size {
		t.Fatalf("Len = %d, want %d", d.Len(), size)
	}
	if d.Seen(guidN(0), protocol.TypeQuery) {
		t.Fatal("oldest key still remembered after 10x size insertions")
	}
	if !d.Seen(guidN(10*size-1), protocol.TypeQuery) {
		t.Fatal("newest key forgotten")
	}
}

func TestDupCacheRecentlySeenKeySurvivesEviction(t *testing.T) {
	d := NewDupCache(3)
	a := guidN(1)
	d.Check(a, protocol.TypeQuery, 1)
	d.Check(guidN(2), protocol.TypeQuery, 1)
	d.Check(guidN(3), protocol.TypeQuery, 1)
	d.Check(a, protocol.TypeQuery, 1) // seen again: most recent now
	d.Check(guidN(4), protocol.TypeQuery, 1)
	if !d.Seen(a, protocol.TypeQuery) {
		t.Fatal("key seen again was evicted before older ones")
	}
	if d.Seen(guidN(2), protocol.TypeQuery) {
		t.Fatal("least recently seen key was kept")
	}
}

func TestDupCacheCheckFromReportsSameLink(t *testing.T) {
	d := NewDupCache(8)
	g := guidN(9)
	type step struct {
		from                     LinkID
		ttl                      uint8
		dup, higherTTL, sameLink bool
	}
	steps := []step{
		{from: 10, ttl: 2},
		{from: 11, ttl: 2, dup: true},                  // another link: normal flood duplicate
		{from: 10, ttl: 2, dup: true, sameLink: true},  // the first sender again
		{from: 11, ttl: 3, dup: true, higherTTL: true}, // a re-forward with a higher TTL: not a loop
		{from: 10, ttl: 3, dup: true},                  // another TTL than link 10's own copy: a re-forward
		{from: 10, ttl: 3, dup: true, sameLink: true},  // the same again: a loop
		{from: 11, ttl: 2, dup: true, sameLink: true},  // link 11's first TTL again, after its re-forward
		{from: 11, ttl: 1, dup: true},                  // a lower TTL after a higher one: concurrent readers, still not a loop
		{from: 12, ttl: 1, dup: true},
		{from: 13, ttl: 1, dup: true},                 // fourth sender fills the slots
		{from: 14, ttl: 1, dup: true},                 // fifth is not remembered...
		{from: 14, ttl: 1, dup: true},                 // ...so never same-link
		{from: 13, ttl: 1, dup: true, sameLink: true}, // fourth one is remembered
		{from: NoLink, ttl: 1, dup: true},             // NoLink is never same-link
		{from: NoLink, ttl: 1, dup: true},
	}
	for i, s := range steps {
		dup, higher, same := d.CheckFrom(g, protocol.TypeQuery, s.ttl, s.from)
		if dup != s.dup || higher != s.higherTTL || same != s.sameLink {
			t.Fatalf("step %d (from %d ttl %d): got dup=%v higher=%v same=%v, want %v %v %v",
				i, s.from, s.ttl, dup, higher, same, s.dup, s.higherTTL, s.sameLink)
		}
	}
}

func TestDupCacheConcurrentChecksSeeExactlyOneFirst(t *testing.T) {
	d := NewDupCache(1000)
	const keys, workers = 200, 4
	var firsts [keys]atomic.Int32
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range keys {
				if dup, _, _ := d.CheckFrom(guidN(uint64(i)), protocol.TypeQuery, 3, LinkID(w+1)); !dup {
					firsts[i].Add(1)
				}
			}
		}()
	}
	wg.Wait()
	for i := range firsts {
		if n := firsts[i].Load(); n != 1 {
			t.Fatalf("key %d seen as new %d times, want exactly 1", i, n)
		}
	}
}

func TestNewDupCacheNonPositiveSizeUsesDefault(t *testing.T) {
	d := NewDupCache(0)
	for i := range uint64(2000) {
		d.Check(guidN(i), protocol.TypePing, 1)
	}
	if d.Len() != 2000 {
		t.Fatalf("Len = %d, want 2000 (default size %d)", d.Len(), DefaultDupCacheSize)
	}
}
