package routing

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"gnutella/protocol"
)

// Flood is plain TTL-limited flooding (docs/protocol.md §5.1): the query goes to every
// neighbour once, and every servent relays it to all its neighbours.
type Flood struct{ TTL uint8 }

// Name implements Strategy.
func (f Flood) Name() string { return fmt.Sprintf("flood(ttl=%d)", f.TTL) }

// Run implements Strategy.
func (f Flood) Run(ctx context.Context, s *Search, n Network) {
	s.addGUID(s.ID)
	s.addSent(n.SendQuery(s.ID, s.Query, f.TTL, nil))
}

// Ring is the expanding ring (docs/protocol.md §5.2): floods of growing TTL, stopping as soon
// as the search has enough results. Each ring uses a fresh GUID unless every
// neighbour announced X-Ext-Probes, in which case the same GUID is resent
// with the higher TTL (servents then re-forward it without handling it twice).
type Ring struct {
	Start, Step, Max uint8
	// Wait is how long each ring is given, per unit of TTL.
	Wait time.Duration
}

// Name implements Strategy.
func (r Ring) Name() string { return fmt.Sprintf("ring(%d..%d step %d)", r.Start, r.Max, r.Step) }

// Run implements Strategy.
func (r Ring) Run(ctx context.Context, s *Search, n Network) {
	start, step := max(r.Start, 1), max(r.Step, 1)
	sameGUID := true
	for _, nb := range n.Neighbours() {
		if !nb.ExtProbes {
			sameGUID = false
		}
	}
	id := s.ID
	s.addGUID(id)
	for ttl := start; ttl <= r.Max; ttl += step {
		if ttl > start && !sameGUID {
			id = protocol.NewGUID()
			s.addGUID(id)
		}
		s.addSent(n.SendQuery(id, s.Query, ttl, nil))
		if waitHits(ctx, s, r.Wait*time.Duration(ttl)) || ctx.Err() != nil {
			return
		}
		if int(ttl)+int(step) > 255 {
			return
		}
	}
}

// Gossip forwards to each neighbour with probability P, at the originator
// and at every servent that announced X-Gossip (others flood it as a plain
// query). The probability travels in the GGEP extension "GNUT.GP".
type Gossip struct {
	P   float64
	TTL uint8
	// Rand is the source of the originator's draws (nil: a random seed).
	Rand *rand.Rand
}

// Name implements Strategy.
func (g Gossip) Name() string { return fmt.Sprintf("gossip(p=%.2f,ttl=%d)", g.P, g.TTL) }

// Run implements Strategy.
func (g Gossip) Run(ctx context.Context, s *Search, n Network) {
	q := WithGossip(s.Query, g.P)
	rng := g.Rand
	if rng == nil {
		rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	var to []LinkID
	nbs := n.Neighbours()
	for _, nb := range nbs {
		if rng.Float64() < g.P {
			to = append(to, nb.ID)
		}
	}
	if len(to) == 0 && len(nbs) > 0 {
		to = append(to, nbs[rng.IntN(len(nbs))].ID) // never send nothing at all
	}
	s.addGUID(s.ID)
	s.addSent(n.SendQuery(s.ID, q, g.TTL, to))
}

// GossipExtension is the GGEP ID of the gossip probability (one byte, P×255).
const GossipExtension = "GNUT.GP"

// WithGossip returns a copy of q carrying the gossip probability.
func WithGossip(q *protocol.Query, p float64) *protocol.Query {
	c := *q
	c.Extensions = append(append(protocol.ExtensionArea(nil), q.Extensions...),
		protocol.GGEPItem(protocol.GGEP{{ID: GossipExtension, Data: []byte{byte(p*255 + 0.5)}}}))
	return &c
}

// GossipProbability reads the probability from a query, if it has one.
func GossipProbability(q *protocol.Query) (float64, bool) {
	d, ok := q.Extensions.GGEP().Get(GossipExtension)
	if !ok || len(d) != 1 {
		return 0, false
	}
	return float64(d[0]) / 255, true
}

// Walk is the k-walker random walk of Lv, Cao, Cohen, Li and Shenker (2002):
// K walkers, each forwarded to one random neighbour per step (never straight
// back), for at most Budget steps. With Check, every 4th step the servent
// holding a walker asks the originator (directly, on its port) whether to go
// on, and the walker stops once the search has enough results.
//
// Walkers are not a standard descriptor: each step is a Query sent with TTL 1
// carrying the GGEP extension "GNUT.RW" (walker number, steps left, steps
// taken, and with checking the originator's address), and only to
// neighbours that announced X-Random-Walk. A TTL cannot carry a walk of
// hundreds of steps, and the hard TTL limit (15) would drop it.
type Walk struct {
	K      int
	Budget uint16
	Check  bool
	Rand   *rand.Rand
}

// Name implements Strategy.
func (w Walk) Name() string {
	c := ""
	if w.Check {
		c = ",checking"
	}
	return fmt.Sprintf("walk(k=%d,budget=%d%s)", w.K, w.Budget, c)
}

// Run implements Strategy.
func (w Walk) Run(ctx context.Context, s *Search, n Network) {
	rng := w.Rand
	if rng == nil {
		rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	var walkers []LinkID
	for _, nb := range n.Neighbours() {
		if nb.RandomWalk {
			walkers = append(walkers, nb.ID)
		}
	}
	s.addGUID(s.ID)
	if len(walkers) == 0 {
		return
	}
	origin := netip.AddrPort{}
	if w.Check {
		origin = n.Self()
	}
	// Spread the K walkers over the neighbours, at random but evenly.
	rng.Shuffle(len(walkers), func(i, j int) { walkers[i], walkers[j] = walkers[j], walkers[i] })
	for k := 0; k < w.K; k++ {
		wk := Walker{Num: uint8(k), Left: w.Budget - 1, Steps: 1, Check: w.Check, Origin: origin}
		q := WithWalker(s.Query, wk)
		s.addSent(n.SendQuery(s.ID, q, 1, []LinkID{walkers[k%len(walkers)]}))
	}
}

// WalkerExtension is the GGEP ID that makes a query a walker.
const WalkerExtension = "GNUT.RW"

// Walker is the state a walker carries from servent to servent.
type Walker struct {
	Num    uint8
	Left   uint16 // steps it may still take after this one
	Steps  uint16 // steps taken so far, this one included
	Check  bool
	Origin netip.AddrPort // the originator, asked every CheckEvery steps
}

// CheckEvery is how often (in steps) a checking walker asks its originator.
const CheckEvery = 4

// Walk limits. A walker costs one message per step, so its length is what a
// sender buys with one query: MaxWalkBudget is the default budget and the
// most a servent relays (a walker claiming more steps left is cut down to
// it, so one message cannot keep the network busy for 65,535 steps), and
// MaxWalkers bounds the walkers of one search.
const (
	DefaultWalkers = 16
	MaxWalkers     = 64
	MaxWalkBudget  = 1024
)

func (w Walker) encode() []byte {
	b := make([]byte, 6, 12)
	b[0] = w.Num
	binary.LittleEndian.PutUint16(b[1:], w.Left)
	binary.LittleEndian.PutUint16(b[3:], w.Steps)
	if w.Check && w.Origin.Addr().Is4() {
		b[5] = 1
		ip := w.Origin.Addr().As4()
		b = append(b, ip[:]...)
		b = binary.LittleEndian.AppendUint16(b, w.Origin.Port())
	}
	return b
}

// WithWalker returns a copy of q carrying the walker extension (replacing
// any walker extension q had).
func WithWalker(q *protocol.Query, w Walker) *protocol.Query {
	c := *q
	c.Extensions = nil
	for _, it := range q.Extensions {
		if it.GGEP != nil && it.GGEP.Has(WalkerExtension) {
			continue
		}
		c.Extensions = append(c.Extensions, it)
	}
	c.Extensions = append(c.Extensions, protocol.GGEPItem(protocol.GGEP{{ID: WalkerExtension, Data: w.encode()}}))
	return &c
}

// WalkerOf reads the walker extension of a query.
func WalkerOf(q *protocol.Query) (Walker, bool) {
	d, ok := q.Extensions.GGEP().Get(WalkerExtension)
	if !ok || len(d) < 6 {
		return Walker{}, false
	}
	w := Walker{Num: d[0], Left: binary.LittleEndian.Uint16(d[1:]), Steps: binary.LittleEndian.Uint16(d[3:])}
	if d[5] == 1 && len(d) >= 12 {
		w.Check = true
		w.Origin = netip.AddrPortFrom(netip.AddrFrom4([4]byte(d[6:10])), binary.LittleEndian.Uint16(d[10:]))
	}
	return w, true
}

// NextWalkerHop picks the neighbour a walker goes to next: a random one of
// candidates, never the one it came from unless it is the only one.
func NextWalkerHop(rng *rand.Rand, candidates []LinkID, from LinkID) (LinkID, bool) {
	n := len(candidates)
	if n == 0 {
		return NoLink, false
	}
	if n == 1 {
		return candidates[0], true
	}
	for {
		c := candidates[rng.IntN(n)]
		if c != from {
			return c, true
		}
	}
}

// StrategyOptions are the knobs a user gives a search.
type StrategyOptions struct {
	TTL     uint8         // flood and gossip TTL, ring maximum (default 4)
	Walkers int           // random walk: number of walkers (DefaultWalkers, at most MaxWalkers)
	Budget  uint16        // random walk: steps per walker (MaxWalkBudget, which is also the most)
	P       float64       // gossip probability (default 0.5)
	Wait    time.Duration // expanding ring: wait per unit of TTL (default 1 s)
}

// ParseStrategy builds a strategy from its name: flood, ring, walk, gossip
// or guess (GUESS over UDP, with its defaults).
func ParseStrategy(name string, o StrategyOptions) (Strategy, error) {
	ttl := o.TTL
	if ttl == 0 {
		ttl = 4
	}
	switch name {
	case "flood", "":
		return Flood{TTL: ttl}, nil
	case "ring":
		wait := o.Wait
		if wait == 0 {
			wait = time.Second
		}
		return Ring{Start: 1, Step: 1, Max: ttl, Wait: wait}, nil
	case "walk":
		k, budget := o.Walkers, o.Budget
		if k <= 0 {
			k = DefaultWalkers
		}
		if budget == 0 {
			budget = MaxWalkBudget
		}
		if k > MaxWalkers {
			return nil, fmt.Errorf("%d walkers: at most %d", k, MaxWalkers)
		}
		if budget > MaxWalkBudget {
			return nil, fmt.Errorf("a walk of %d steps: at most %d", budget, MaxWalkBudget)
		}
		return Walk{K: k, Budget: budget, Check: true}, nil
	case "gossip":
		p := o.P
		if p <= 0 || p > 1 {
			p = 0.5
		}
		return Gossip{P: p, TTL: ttl}, nil
	case "guess":
		return GUESS{}, nil
	}
	return nil, fmt.Errorf("unknown strategy %q: use flood, ring, walk, gossip or guess", name)
}
