package testnet

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// The topologies of Lv, Cao, Cohen, Li and Shenker (ICS 2002) besides the
// random graph (Random): a power-law random graph and a 2-D grid. Their
// fourth, a Gnutella snapshot of 2000, is replaced here by TwoTier.

// PowerLaw is a power-law random graph (PLRG, Aiello, Chung and Lu): every
// servent draws a degree d ≥ MinDegree with probability ∝ d^-Exponent (at
// most MaxDegree), the degree "stubs" are paired at random, self-loops and
// second links between the same two servents are dropped, and the pieces
// left apart are joined to the largest one by one link each, so that every
// servent can search the whole network. With Exponent 0, the exponent is
// solved so that the mean degree is about MeanDegree.
type PowerLaw struct {
	MeanDegree float64
	Exponent   float64 // 0: chosen to reach MeanDegree
	MinDegree  int     // 0: 1
	MaxDegree  int     // 0: n-1
}

// Edges implements Topology.
func (p PowerLaw) Edges(n int, rng *rand.Rand) []Edge {
	if n < 2 {
		return nil
	}
	lo := max(p.MinDegree, 1)
	hi := p.MaxDegree
	if hi <= 0 || hi > n-1 {
		hi = n - 1
	}
	lo = min(lo, hi)
	if p.Exponent > 0 {
		return p.draw(n, lo, hi, p.Exponent, rng)
	}
	// Dropped self-loops and double links lower the mean (mostly at the
	// hubs): draw again aiming higher by the shortfall, a few times.
	aim := p.MeanDegree
	var e []Edge
	for range 4 {
		e = p.draw(n, lo, hi, solveExponent(aim, lo, hi), rng)
		got := 2 * float64(len(e)) / float64(n)
		if got <= 0 || got >= 0.97*p.MeanDegree {
			break
		}
		aim *= p.MeanDegree / got
	}
	return e
}

func (p PowerLaw) draw(n, lo, hi int, tau float64, rng *rand.Rand) []Edge {
	// cumulative distribution of the degree
	cdf := make([]float64, hi-lo+1)
	sum := 0.0
	for d := lo; d <= hi; d++ {
		sum += math.Pow(float64(d), -tau)
		cdf[d-lo] = sum
	}
	var stubs []int
	for i := 0; i < n; i++ {
		x := rng.Float64() * sum
		k, _ := slices.BinarySearch(cdf, x)
		d := lo + min(k, len(cdf)-1)
		for range d {
			stubs = append(stubs, i)
		}
	}
	rng.Shuffle(len(stubs), func(i, j int) { stubs[i], stubs[j] = stubs[j], stubs[i] })
	seen := make(map[[2]int]bool, len(stubs)/2)
	var e []Edge
	add := func(a, b int) {
		if a == b {
			return
		}
		k := [2]int{min(a, b), max(a, b)}
		if seen[k] {
			return
		}
		seen[k] = true
		e = append(e, Edge{a, b})
	}
	for i := 0; i+1 < len(stubs); i += 2 {
		add(stubs[i], stubs[i+1])
	}
	// Join the pieces: every component but the largest gets one link from a
	// random member to a random servent of the largest.
	comp := components(n, e)
	size := map[int]int{}
	for _, c := range comp {
		size[c]++
	}
	big := comp[0]
	for c, s := range size {
		if s > size[big] || (s == size[big] && c < big) {
			big = c
		}
	}
	var inBig []int
	for i, c := range comp {
		if c == big {
			inBig = append(inBig, i)
		}
	}
	joined := map[int]bool{big: true}
	for i, c := range comp {
		if !joined[c] {
			joined[c] = true
			add(i, inBig[rng.IntN(len(inBig))])
		}
	}
	return e
}

func (p PowerLaw) String() string {
	if p.Exponent > 0 {
		return fmt.Sprintf("powerlaw(tau=%g)", p.Exponent)
	}
	return fmt.Sprintf("powerlaw(d=%g)", p.MeanDegree)
}

// powerLawMean is the mean of the degree distribution ∝ d^-tau on [lo, hi].
func powerLawMean(tau float64, lo, hi int) float64 {
	var s, m float64
	for d := lo; d <= hi; d++ {
		w := math.Pow(float64(d), -tau)
		s += w
		m += w * float64(d)
	}
	return m / s
}

// solveExponent finds the exponent whose mean degree on [lo, hi] is mean
// (bisection; the mean falls as the exponent grows).
func solveExponent(mean float64, lo, hi int) float64 {
	if mean <= 0 {
		mean = 4
	}
	a, b := 1.01, 6.0
	for range 60 {
		m := (a + b) / 2
		if powerLawMean(m, lo, hi) > mean {
			a = m
		} else {
			b = m
		}
	}
	return (a + b) / 2
}

// components labels each servent with its connected component (the
// smallest servent index in it).
func components(n int, edges []Edge) []int {
	parent := make([]int, n)
	for i := range parent {
		parent[i] = i
	}
	find := func(x int) int {
		for parent[x] != x {
			parent[x] = parent[parent[x]]
			x = parent[x]
		}
		return x
	}
	for _, e := range edges {
		a, b := find(e.A), find(e.B)
		if a != b {
			parent[max(a, b)] = min(a, b)
		}
	}
	out := make([]int, n)
	for i := range out {
		out[i] = find(i)
	}
	return out
}

// Grid is a 2-D grid of Width columns (no wrap-around): servent i sits at
// column i%Width, row i/Width and links to its right and lower neighbours.
// Inner servents have 4 links, edge ones 3, corners 2. Width 0 takes the
// square root of n, so 10,000 servents make the 100×100 grid of Lv et al.
type Grid struct{ Width int }

func (g Grid) width(n int) int {
	if g.Width > 0 {
		return g.Width
	}
	return max(int(math.Round(math.Sqrt(float64(n)))), 1)
}

// Edges implements Topology (the grid needs no randomness).
func (g Grid) Edges(n int, _ *rand.Rand) []Edge {
	w := g.width(n)
	var e []Edge
	for i := 0; i < n; i++ {
		if (i+1)%w != 0 && i+1 < n {
			e = append(e, Edge{i, i + 1})
		}
		if i+w < n {
			e = append(e, Edge{i, i + w})
		}
	}
	return e
}

func (g Grid) String() string {
	if g.Width > 0 {
		return fmt.Sprintf("grid(width=%d)", g.Width)
	}
	return "grid"
}

// ParseTopology builds a topology from its name for n servents: random
// (mean degree degree, 4 when 0), powerlaw (mean degree degree, 4.46 when 0:
// Lv et al.'s PLRG), grid (√n columns) and twotier (n/10 ultrapeers of mean
// degree degree, 8 when 0, among them; every leaf on 3 ultrapeers). ring and
// line are accepted too.
func ParseTopology(name string, n int, degree float64) (Topology, error) {
	switch name {
	case "random", "":
		if degree <= 0 {
			degree = 4
		}
		return Random{MeanDegree: degree}, nil
	case "powerlaw", "plrg", "power-law":
		if degree <= 0 {
			degree = 4.46
		}
		return PowerLaw{MeanDegree: degree}, nil
	case "grid":
		return Grid{}, nil
	case "twotier", "two-tier":
		if degree <= 0 {
			degree = 8
		}
		ups := max(n/10, 2)
		return TwoTier{Ultrapeers: ups, UltrapeerDegree: degree, LeafUltrapeers: min(3, ups)}, nil
	case "ring":
		return Ring{}, nil
	case "line":
		return Line{}, nil
	}
	return nil, fmt.Errorf("unknown topology %q: use random, powerlaw, grid or twotier", name)
}

// fixedEdges is a topology whose edges were drawn beforehand (so an
// experiment can size each servent for its degree).
type fixedEdges struct {
	edges []Edge
	name  string
	roles Roles
	orig  Topology
}

func (f fixedEdges) Edges(int, *rand.Rand) []Edge { return f.edges }
func (f fixedEdges) String() string               { return f.name }

// fixedRoles is fixedEdges for a topology with leaves.
type fixedRoles struct{ fixedEdges }

func (f fixedRoles) Leaf(i int) bool { return f.roles.Leaf(i) }

// Fix draws topo's edges for n servents from seed, exactly as Start would.
func Fix(topo Topology, n int, seed uint64) Topology {
	switch topo.(type) {
	case fixedEdges, fixedRoles:
		return topo
	}
	f := fixedEdges{edges: topo.Edges(n, newSeedRand(seed)), name: topo.String(), orig: topo}
	if r, ok := topo.(Roles); ok {
		f.roles = r
		return fixedRoles{f}
	}
	return f
}

// newSeedRand is the generator Start draws a topology with.
func newSeedRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// Degrees counts each servent's links in edges.
func Degrees(n int, edges []Edge) []int { return degrees(n, edges) }
