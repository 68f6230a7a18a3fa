package routing

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"gnutella/protocol"
)

// TestRouteTableMatchesModel runs random operations against RouteTable and
// a plain map that applies the documented rules (first live route wins,
// expiry ttl after Add or Touch, forgotten links never route again). The
// table is large enough that the LRU bound never evicts. As a servent does,
// it never adds a route to a link after forgetting it (the table refuses
// such routes only until the link's routes have all expired).
func TestRouteTableMatchesModel(t *testing.T) {
	type mroute struct {
		link LinkID
		exp  time.Time
	}
	const ttl = 10 * time.Second
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 1))
		rt := NewRouteTable(10_000, ttl)
		model := map[protocol.GUID]mroute{}
		dead := map[LinkID]bool{}
		now := t0
		live := func(m mroute, ok bool) bool { return ok && now.Before(m.exp) && !dead[m.link] }
		for op := range 3000 {
			now = now.Add(time.Duration(r.IntN(500)) * time.Millisecond)
			g := guidN(uint64(r.IntN(64)))
			switch r.IntN(10) {
			case 0, 1, 2, 3:
				l := LinkID(r.IntN(12)) // includes NoLink
				if dead[l] {
					continue // the servent never routes to a closed link
				}
				rt.Add(g, l, now)
				if m, ok := model[g]; l != NoLink && !dead[l] && !live(m, ok) {
					model[g] = mroute{l, now.Add(ttl)}
				}
			case 4, 5, 6:
				got, gotOK := rt.Lookup(g, now)
				m, ok := model[g]
				wantOK := live(m, ok)
				if gotOK != wantOK || (wantOK && got != m.link) {
					t.Fatalf("seed %d op %d: Lookup = %d %v, model %d %v", seed, op, got, gotOK, m.link, wantOK)
				}
			case 7, 8:
				rt.Touch(g, now)
				if m, ok := model[g]; live(m, ok) {
					model[g] = mroute{m.link, now.Add(ttl)}
				}
			case 9:
				if r.IntN(20) == 0 {
					l := LinkID(1 + r.IntN(11))
					rt.ForgetLink(l)
					dead[l] = true
				}
			}
		}
	}
}

// TestPushRoutesInvariants runs random operations against PushRoutes and
// checks what Lookup may return: at most MaxPushRoutes distinct links, each
// learned for that servent within ttl and not forgotten, always including
// the link learned last when it is still usable.
func TestPushRoutesInvariants(t *testing.T) {
	const ttl = 10 * time.Second
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 2))
		p := NewPushRoutes(10_000, ttl)
		learned := map[protocol.GUID]map[LinkID]time.Time{} // last Learn per link
		last := map[protocol.GUID]LinkID{}
		dead := map[LinkID]bool{}
		now := t0
		var buf []LinkID
		for op := range 3000 {
			now = now.Add(time.Duration(r.IntN(500)) * time.Millisecond)
			s := guidN(uint64(r.IntN(16)))
			switch r.IntN(6) {
			case 0, 1, 2:
				l := LinkID(1 + r.IntN(8))
				if dead[l] {
					continue // the servent never learns from a closed link
				}
				p.Learn(s, l, now)
				if !dead[l] {
					if learned[s] == nil {
						learned[s] = map[LinkID]time.Time{}
					}
					learned[s][l] = now
					last[s] = l
				}
			case 3, 4:
				buf = p.Lookup(s, now, buf[:0])
				if len(buf) > MaxPushRoutes {
					t.Fatalf("seed %d op %d: %d links", seed, op, len(buf))
				}
				seen := map[LinkID]bool{}
				for _, l := range buf {
					at, ok := learned[s][l]
					if seen[l] || !ok || dead[l] || !now.Before(at.Add(ttl)) {
						t.Fatalf("seed %d op %d: Lookup returned %d (dup %v, learned %v at %v, dead %v)",
							seed, op, l, seen[l], ok, at, dead[l])
					}
					seen[l] = true
				}
				if l, ok := last[s]; ok && !dead[l] && now.Before(learned[s][l].Add(ttl)) && !slices.Contains(buf, l) {
					t.Fatalf("seed %d op %d: last learned link %d missing from %v", seed, op, l, buf)
				}
			case 5:
				if r.IntN(10) == 0 {
					l := LinkID(1 + r.IntN(8))
					p.ForgetLink(l)
					dead[l] = true
				}
			}
		}
	}
}

// TestTablesConcurrentUse exercises every table from several goroutines at
// once; run with -race.
func TestTablesConcurrentUse(t *testing.T) {
	rt := NewRouteTable(500, time.Second)
	pr := NewPushRoutes(500, time.Second)
	d := NewDupCache(500)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []LinkID
			for i := range 2000 {
				now := t0.Add(time.Duration(i) * time.Millisecond)
				g := guidN(uint64(i % 700))
				l := LinkID(1 + (w*2000+i)%50)
				d.CheckFrom(g, protocol.TypeQuery, uint8(i%8), l)
				rt.Add(g, l, now)
				rt.Lookup(g, now)
				rt.Touch(g, now)
				pr.Learn(g, l, now)
				buf = pr.Lookup(g, now, buf[:0])
				if i%400 == 0 {
					rt.ForgetLink(l)
					pr.ForgetLink(l)
				}
			}
		}()
	}
	wg.Wait()
	if rt.Len() > 500 || pr.Len() > 500 || d.Len() > 500 {
		t.Fatalf("bounds broken: %d %d %d", rt.Len(), pr.Len(), d.Len())
	}
}
