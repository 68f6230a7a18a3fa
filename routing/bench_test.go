package routing

import (
	"testing"
	"time"

	"gnutella/protocol"
)

// BenchmarkDupCheck measures Check on new GUIDs with the cache at capacity,
// so every call inserts one key and evicts the oldest: the steady state of
// a busy ultrapeer.
func BenchmarkDupCheck(b *testing.B) {
	const size = 100_000
	d := NewDupCache(size)
	for i := range uint64(size) {
		d.Check(guidN(i), protocol.TypeQuery, 3)
	}
	b.ReportAllocs()
	b.ResetTimer()
	n := uint64(size)
	for b.Loop() {
		d.Check(guidN(n), protocol.TypeQuery, 3)
		n++
	}
}

// BenchmarkDupCheckDuplicate measures Check on keys already present (the
// duplicate path: a lookup and a move to the front, no insertion).
func BenchmarkDupCheckDuplicate(b *testing.B) {
	const size = 100_000
	d := NewDupCache(size)
	for i := range uint64(size) {
		d.Check(guidN(i), protocol.TypeQuery, 3)
	}
	b.ReportAllocs()
	b.ResetTimer()
	n := uint64(0)
	for b.Loop() {
		d.Check(guidN(n%size), protocol.TypeQuery, 3)
		n++
	}
}

// BenchmarkRouteAddLookup measures one Add of a new query route and one
// Lookup of a recent one, with the table at capacity.
func BenchmarkRouteAddLookup(b *testing.B) {
	const size = 100_000
	rt := NewRouteTable(size, QueryRouteTTL)
	now := t0
	for i := range uint64(size) {
		rt.Add(guidN(i), LinkID(1+i%32), now)
	}
	b.ReportAllocs()
	b.ResetTimer()
	n := uint64(size)
	for b.Loop() {
		now = now.Add(time.Microsecond)
		rt.Add(guidN(n), LinkID(1+n%32), now)
		if _, ok := rt.Lookup(guidN(n-1000), now); !ok {
			b.Fatal("route lost")
		}
		n++
	}
}

// BenchmarkRouteLookup measures Lookup alone (a QueryHit being routed).
func BenchmarkRouteLookup(b *testing.B) {
	const size = 100_000
	rt := NewRouteTable(size, QueryRouteTTL)
	for i := range uint64(size) {
		rt.Add(guidN(i), LinkID(1+i%32), t0)
	}
	rt.ForgetLink(33) // a non-empty dead set, as in a running servent
	b.ReportAllocs()
	b.ResetTimer()
	n := uint64(0)
	for b.Loop() {
		if _, ok := rt.Lookup(guidN(n%size), t0); !ok {
			b.Fatal("route lost")
		}
		n++
	}
}

// BenchmarkPushLearnLookup measures Learn of a known servent and a Lookup
// into a reused buffer.
func BenchmarkPushLearnLookup(b *testing.B) {
	p := NewPushRoutes(1000, PushRouteTTL)
	for i := range uint64(1000) {
		p.Learn(guidN(i), LinkID(1+i%4), t0)
	}
	buf := make([]LinkID, 0, MaxPushRoutes)
	b.ReportAllocs()
	b.ResetTimer()
	n := uint64(0)
	for b.Loop() {
		p.Learn(guidN(n%1000), LinkID(1+n%4), t0)
		buf = p.Lookup(guidN(n%1000), t0, buf[:0])
		n++
	}
}

// BenchmarkForward measures the TTL check and relay clamp of one header.
func BenchmarkForward(b *testing.B) {
	p := DefaultTTLPolicy()
	hs := []protocol.Header{hdr(7, 0), hdr(3, 1), hdr(2, 3), hdr(4, 0)}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		h := hs[i&3]
		if p.Check(&h) == Accept {
			h, _ = p.Forward(h)
		}
		hs[i&3].Length = h.Length
		i++
	}
}
