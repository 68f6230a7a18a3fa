package routing

import (
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func TestRouteTableLookupFindsAddedRoute(t *testing.T) {
	rt := NewRouteTable(16, QueryRouteTTL)
	g := guidN(1)
	if _, ok := rt.Lookup(g, t0); ok {
		t.Fatal("lookup of unknown GUID succeeded")
	}
	rt.Add(g, 5, t0)
	if l, ok := rt.Lookup(g, t0.Add(time.Second)); !ok || l != 5 {
		t.Fatalf("Lookup = %d, %v; want 5, true", l, ok)
	}
	rt.Add(guidN(2), Local, t0)
	if l, ok := rt.Lookup(guidN(2), t0); !ok || l != Local {
		t.Fatalf("Lookup of our own query = %d, %v; want Local, true", l, ok)
	}
}

func TestRouteTableFirstRouteWins(t *testing.T) {
	rt := NewRouteTable(16, QueryRouteTTL)
	g := guidN(1)
	rt.Add(g, 5, t0)
	rt.Add(g, 6, t0.Add(time.Second)) // duplicate query over another link
	if l, _ := rt.Lookup(g, t0.Add(2*time.Second)); l != 5 {
		t.Fatalf("route = %d after a duplicate Add, want the first one (5)", l)
	}
	// The duplicate Add must not extend the first route either.
	if _, ok := rt.Lookup(g, t0.Add(QueryRouteTTL)); ok {
		t.Fatal("duplicate Add extended the first route's life")
	}
}

func TestRouteTableExpiryBoundary(t *testing.T) {
	tests := []struct {
		name string
		ttl  time.Duration
		at   time.Duration
		want bool
	}{
		{"ping route just before 2 min", PingRouteTTL, PingRouteTTL - time.Nanosecond, true},
		{"ping route at 2 min", PingRouteTTL, PingRouteTTL, false},
		{"query route at 4 min 59", QueryRouteTTL, QueryRouteTTL - time.Second, true},
		{"query route at 5 min", QueryRouteTTL, QueryRouteTTL, false},
		{"query route long after", QueryRouteTTL, time.Hour, false},
		{"same instant", QueryRouteTTL, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt := NewRouteTable(16, tc.ttl)
			rt.Add(guidN(1), 9, t0)
			if _, ok := rt.Lookup(guidN(1), t0.Add(tc.at)); ok != tc.want {
				t.Fatalf("Lookup at +%v = %v, want %v", tc.at, ok, tc.want)
			}
		})
	}
}

func TestRouteTableExpiredRouteIsReplacedByNewAdd(t *testing.T) {
	rt := NewRouteTable(16, PingRouteTTL)
	g := guidN(1)
	rt.Add(g, 5, t0)
	later := t0.Add(PingRouteTTL + time.Second)
	rt.Add(g, 6, later)
	if l, ok := rt.Lookup(g, later); !ok || l != 6 {
		t.Fatalf("Lookup = %d, %v; want the new route 6", l, ok)
	}
}

func TestRouteTableTouchRevitalisesRoute(t *testing.T) {
	rt := NewRouteTable(16, QueryRouteTTL)
	g := guidN(1)
	rt.Add(g, 5, t0)
	touch := t0.Add(4 * time.Minute)
	rt.Touch(g, touch)
	if _, ok := rt.Lookup(g, t0.Add(QueryRouteTTL+time.Minute)); !ok {
		t.Fatal("touched route expired at its original time")
	}
	if _, ok := rt.Lookup(g, touch.Add(QueryRouteTTL)); ok {
		t.Fatal("touched route outlived ttl after the touch")
	}
}

func TestRouteTableTouchDoesNotResurrect(t *testing.T) {
	rt := NewRouteTable(16, QueryRouteTTL)
	g := guidN(1)
	rt.Add(g, 5, t0)
	rt.Touch(g, t0.Add(QueryRouteTTL)) // already expired
	if _, ok := rt.Lookup(g, t0.Add(QueryRouteTTL)); ok {
		t.Fatal("Touch resurrected an expired route")
	}
	rt.Touch(guidN(2), t0) // unknown: no effect
	if _, ok := rt.Lookup(guidN(2), t0); ok {
		t.Fatal("Touch created a route")
	}
}

func TestRouteTableForgetLinkDropsOnlyItsRoutes(t *testing.T) {
	rt := NewRouteTable(64, QueryRouteTTL)
	for i := range uint64(20) {
		rt.Add(guidN(i), LinkID(1+i%2), t0) // links 1 and 2
	}
	rt.ForgetLink(1)
	for i := range uint64(20) {
		l, ok := rt.Lookup(guidN(i), t0.Add(time.Second))
		if i%2 == 0 && ok {
			t.Fatalf("GUID %d still routed to forgotten link 1", i)
		}
		if i%2 == 1 && (!ok || l != 2) {
			t.Fatalf("GUID %d lost its route to link 2: %d, %v", i, l, ok)
		}
	}
	rt.Add(guidN(100), 1, t0.Add(time.Second))
	if _, ok := rt.Lookup(guidN(100), t0.Add(time.Second)); ok {
		t.Fatal("Add recorded a route to a forgotten link")
	}
	// A GUID whose route went with the link can be routed anew elsewhere.
	rt.Add(guidN(0), 3, t0.Add(2*time.Second))
	if l, ok := rt.Lookup(guidN(0), t0.Add(2*time.Second)); !ok || l != 3 {
		t.Fatalf("re-added route = %d, %v; want 3", l, ok)
	}
	rt.ForgetLink(NoLink) // no effect, no panic
}

func TestRouteTableTouchOnForgottenLinkRemovesRoute(t *testing.T) {
	rt := NewRouteTable(16, QueryRouteTTL)
	rt.Add(guidN(1), 4, t0)
	rt.ForgetLink(4)
	rt.Touch(guidN(1), t0)
	if rt.Len() != 0 {
		t.Fatalf("Len = %d after touching a dead route, want 0", rt.Len())
	}
}

func TestRouteTableForgottenLinksArePrunedAfterTTL(t *testing.T) {
	rt := NewRouteTable(16, PingRouteTTL)
	for l := LinkID(1); l <= 50; l++ {
		rt.Add(guidN(uint64(l)), l, t0)
		rt.ForgetLink(l)
	}
	if n := len(rt.dead.m); n != 50 {
		t.Fatalf("dead set holds %d links, want 50", n)
	}
	rt.Add(guidN(1000), 99, t0.Add(PingRouteTTL-time.Second))
	if n := len(rt.dead.m); n != 50 {
		t.Fatalf("dead set pruned to %d before the routes could expire", n)
	}
	// The set is scanned at most once per quarter ttl, so an entry lives
	// at most 1.25 ttl.
	rt.Add(guidN(1001), 99, t0.Add(PingRouteTTL+PingRouteTTL/4))
	if n := len(rt.dead.m); n != 0 {
		t.Fatalf("dead set holds %d links 1.25 ttl after they closed, want 0", n)
	}
}

func TestRouteTableBoundHoldsAtTenTimesSize(t *testing.T) {
	const size = 100
	rt := NewRouteTable(size, QueryRouteTTL)
	for i := range uint64(10 * size) {
		rt.Add(guidN(i), LinkID(1+i%7), t0.Add(time.Duration(i)*time.Millisecond))
		if rt.Len() > size {
			t.Fatalf("after %d insertions Len = %d > %d", i+1, rt.Len(), size)
		}
	}
	now := t0.Add(10 * size * time.Millisecond)
	if _, ok := rt.Lookup(guidN(0), now); ok {
		t.Fatal("oldest route survived 10x size insertions")
	}
	if _, ok := rt.Lookup(guidN(10*size-1), now); !ok {
		t.Fatal("newest route lost")
	}
}

func TestRouteTableAddReclaimsExpiredEntries(t *testing.T) {
	rt := NewRouteTable(1000, PingRouteTTL)
	for i := range uint64(10) {
		rt.Add(guidN(i), 1, t0)
	}
	later := t0.Add(PingRouteTTL)
	rt.Add(guidN(100), 1, later) // reclaims two expired entries
	if got, want := rt.Len(), 10+1-reclaimPerAdd; got != want {
		t.Fatalf("Len = %d, want %d", got, want)
	}
	for i := range uint64(10) {
		rt.Add(guidN(200+i), 1, later)
	}
	if got := rt.Len(); got != 11 {
		t.Fatalf("Len = %d after the old routes were reclaimed, want 11", got)
	}
}

func TestRouteTableIgnoresNoLinkAndDefaults(t *testing.T) {
	rt := NewRouteTable(0, 0)
	rt.Add(guidN(1), NoLink, t0)
	if rt.Len() != 0 {
		t.Fatal("a route to NoLink was recorded")
	}
	rt.Add(guidN(1), 2, t0)
	if _, ok := rt.Lookup(guidN(1), t0.Add(QueryRouteTTL-time.Second)); !ok {
		t.Fatal("default ttl is shorter than QueryRouteTTL")
	}
	if _, ok := rt.Lookup(guidN(1), t0.Add(QueryRouteTTL)); ok {
		t.Fatal("default ttl is longer than QueryRouteTTL")
	}
}

func TestPushRoutesLearnAndLookup(t *testing.T) {
	p := NewPushRoutes(16, PushRouteTTL)
	s := guidN(1)
	if got := p.Lookup(s, t0, nil); len(got) != 0 {
		t.Fatalf("Lookup of unknown servent = %v", got)
	}
	p.Learn(s, 3, t0)
	p.Learn(s, 4, t0)
	p.Learn(s, 3, t0.Add(time.Second)) // known link: refreshed, not doubled
	got := p.Lookup(s, t0.Add(time.Second), nil)
	slices.Sort(got)
	if !slices.Equal(got, []LinkID{3, 4}) {
		t.Fatalf("Lookup = %v, want [3 4]", got)
	}
	p.Learn(s, NoLink, t0)
	if got := p.Lookup(s, t0, nil); len(got) != 2 {
		t.Fatalf("NoLink was learned: %v", got)
	}
}

func TestPushRoutesFifthLinkReplacesEarliestExpiring(t *testing.T) {
	p := NewPushRoutes(16, PushRouteTTL)
	s := guidN(1)
	for i := range MaxPushRoutes {
		p.Learn(s, LinkID(10+i), t0.Add(time.Duration(i)*time.Second))
	}
	p.Learn(s, 10, t0.Add(10*time.Second)) // link 10 refreshed: 11 now expires first
	p.Learn(s, 20, t0.Add(11*time.Second))
	got := p.Lookup(s, t0.Add(12*time.Second), nil)
	slices.Sort(got)
	if want := []LinkID{10, 12, 13, 20}; !slices.Equal(got, want) {
		t.Fatalf("Lookup = %v, want %v", got, want)
	}
}

func TestPushRoutesLinksExpireIndividually(t *testing.T) {
	p := NewPushRoutes(16, PushRouteTTL)
	s := guidN(1)
	p.Learn(s, 1, t0)
	p.Learn(s, 2, t0.Add(time.Minute))
	tests := []struct {
		at   time.Duration
		want []LinkID
	}{
		{PushRouteTTL - time.Nanosecond, []LinkID{1, 2}},
		{PushRouteTTL, []LinkID{2}},
		{PushRouteTTL + time.Minute - time.Nanosecond, []LinkID{2}},
		{PushRouteTTL + time.Minute, nil},
	}
	for _, tc := range tests {
		got := p.Lookup(s, t0.Add(tc.at), nil)
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Fatalf("at +%v: Lookup = %v, want %v", tc.at, got, tc.want)
		}
	}
	if p.Len() != 0 {
		t.Fatalf("entry with no live link kept: Len = %d", p.Len())
	}
	// An expired slot is reused by a new link.
	p.Learn(s, 7, t0.Add(time.Hour))
	if got := p.Lookup(s, t0.Add(time.Hour), nil); !slices.Equal(got, []LinkID{7}) {
		t.Fatalf("Lookup after relearning = %v, want [7]", got)
	}
}

func TestPushRoutesForgetLink(t *testing.T) {
	p := NewPushRoutes(16, PushRouteTTL)
	a, b := guidN(1), guidN(2)
	p.Learn(a, 1, t0)
	p.Learn(a, 2, t0)
	p.Learn(b, 1, t0)
	p.ForgetLink(1)
	if got := p.Lookup(a, t0, nil); !slices.Equal(got, []LinkID{2}) {
		t.Fatalf("Lookup(a) = %v, want [2]", got)
	}
	if got := p.Lookup(b, t0, nil); len(got) != 0 {
		t.Fatalf("Lookup(b) = %v, want none", got)
	}
	p.Learn(b, 1, t0)
	if got := p.Lookup(b, t0, nil); len(got) != 0 {
		t.Fatalf("forgotten link was learned again: %v", got)
	}
}

func TestPushRoutesLookupAppendsWithoutAllocating(t *testing.T) {
	p := NewPushRoutes(16, PushRouteTTL)
	s := guidN(1)
	for i := range MaxPushRoutes {
		p.Learn(s, LinkID(i+1), t0)
	}
	buf := make([]LinkID, 1, 1+MaxPushRoutes)
	buf[0] = 99
	got := p.Lookup(s, t0, buf)
	if len(got) != 1+MaxPushRoutes || got[0] != 99 {
		t.Fatalf("Lookup did not append to dst: %v", got)
	}
	allocs := testing.AllocsPerRun(100, func() {
		got = p.Lookup(s, t0, buf[:0])
	})
	if allocs != 0 {
		t.Fatalf("Lookup with room in dst allocated %.1f times", allocs)
	}
}

func TestPushRoutesBoundHoldsAtTenTimesSize(t *testing.T) {
	const size = 100
	p := NewPushRoutes(size, PushRouteTTL)
	for i := range uint64(10 * size) {
		p.Learn(guidN(i), LinkID(1+i%5), t0)
		if p.Len() > size {
			t.Fatalf("after %d insertions Len = %d > %d", i+1, p.Len(), size)
		}
	}
	if got := p.Lookup(guidN(0), t0, nil); len(got) != 0 {
		t.Fatal("oldest servent survived 10x size insertions")
	}
	if got := p.Lookup(guidN(10*size-1), t0, nil); len(got) != 1 {
		t.Fatal("newest servent lost")
	}
}
