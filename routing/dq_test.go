package routing

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"gnutella/protocol"
)

// fakeDQNet answers each send with results proportional to the horizon
// reached: density results per servent.
type fakeDQNet struct {
	mu      sync.Mutex
	links   []DQNeighbour
	sends   []uint8 // TTL of each send
	density float64
	got     float64
}

func (f *fakeDQNet) Neighbours() []Neighbour { return nil }
func (f *fakeDQNet) Self() netip.AddrPort    { return netip.AddrPort{} }
func (f *fakeDQNet) DQNeighbours(*Search) []DQNeighbour {
	return append([]DQNeighbour(nil), f.links...)
}
func (f *fakeDQNet) SendQuery(id protocol.GUID, q *protocol.Query, ttl uint8, to []LinkID) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sends = append(f.sends, ttl)
	f.got += f.density * float64(Horizon(f.links[0].Degree, ttl))
	return len(to)
}
func (f *fakeDQNet) results() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return int(f.got)
}

func newFakeDQ(density float64) *fakeDQNet {
	f := &fakeDQNet{density: density}
	for i := 1; i <= 30; i++ {
		f.links = append(f.links, DQNeighbour{Neighbour: Neighbour{ID: LinkID(i), Ultrapeer: true}, Degree: 30, MaxTTL: 4})
	}
	return f
}

func TestHorizon(t *testing.T) {
	for _, c := range []struct {
		d    int
		t    uint8
		want int
	}{{30, 1, 1}, {30, 2, 30}, {30, 3, 871}, {6, 4, 156}} {
		if got := Horizon(c.d, c.t); got != c.want {
			t.Errorf("Horizon(%d,%d) = %d, want %d", c.d, c.t, got, c.want)
		}
	}
}

func runDQ(f *fakeDQNet, target int) {
	s := NewSearch(protocol.NewQuery("x y", protocol.QueryFlagMark), "dq", 0)
	d := DynamicQuery{Target: target, Results: f.results, PerHop: time.Millisecond, ProbeWait: time.Millisecond}
	d.Run(context.Background(), s, f)
}

// docs/protocol.md §5.4: with popular content the query stops near its target after a few
// low-TTL steps; with rare content it goes on, link after link and with
// higher TTLs, until the horizon cap (300,000 servents) stops it.
func TestDynamicQueryStopsNearTargetForPopularContent(t *testing.T) {
	popular := newFakeDQ(1) // every servent has a match
	runDQ(popular, 150)
	if got := popular.results(); got < 150 || got > 2*150 {
		t.Errorf("popular: %d results, want near the target 150", got)
	}
	rare := newFakeDQ(0.00001)
	runDQ(rare, 150)
	if len(rare.sends) <= 2*len(popular.sends) {
		t.Errorf("rare content queried %d links, popular %d: rare should go much further", len(rare.sends), len(popular.sends))
	}
	reached, maxTTL := 0, uint8(0)
	for _, ttl := range rare.sends {
		maxTTL = max(maxTTL, ttl)
		reached += Horizon(30, ttl)
	}
	if maxTTL < 4 {
		t.Errorf("rare content never went beyond TTL %d", maxTTL)
	}
	if reached < 300_000 && len(rare.sends) < len(rare.links) {
		t.Errorf("rare content stopped at %d servents and %d links, before the horizon cap or the last link", reached, len(rare.sends))
	}
	t.Logf("popular: %d sends %v, %d results; rare: %d sends, ttl up to %d, horizon %d",
		len(popular.sends), popular.sends, popular.results(), len(rare.sends), maxTTL, reached)
}
