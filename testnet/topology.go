package testnet

import (
	"fmt"
	"math/rand/v2"
)

// Edge links servent A to servent B (A dials B).
type Edge struct{ A, B int }

// Topology says which of n servents link to which.
type Topology interface {
	Edges(n int, rng *rand.Rand) []Edge
	String() string
}

// Line links i to i+1.
type Line struct{}

// Edges implements Topology.
func (Line) Edges(n int, _ *rand.Rand) []Edge {
	var e []Edge
	for i := 0; i+1 < n; i++ {
		e = append(e, Edge{i, i + 1})
	}
	return e
}

func (Line) String() string { return "line" }

// Ring is a Line closed into a circle.
type Ring struct{}

// Edges implements Topology.
func (Ring) Edges(n int, rng *rand.Rand) []Edge {
	e := Line{}.Edges(n, rng)
	if n > 2 {
		e = append(e, Edge{n - 1, 0})
	}
	return e
}

func (Ring) String() string { return "ring" }

// Random is a connected random graph with the given mean degree: a random
// spanning tree first (so every servent is reachable), then random extra
// edges until the mean degree is reached.
type Random struct{ MeanDegree float64 }

// Edges implements Topology.
func (r Random) Edges(n int, rng *rand.Rand) []Edge {
	if n < 2 {
		return nil
	}
	seen := make(map[[2]int]bool)
	var e []Edge
	add := func(a, b int) bool {
		if a == b {
			return false
		}
		k := [2]int{min(a, b), max(a, b)}
		if seen[k] {
			return false
		}
		seen[k] = true
		e = append(e, Edge{a, b})
		return true
	}
	perm := rng.Perm(n)
	for i := 1; i < n; i++ {
		add(perm[i], perm[rng.IntN(i)])
	}
	want := int(r.MeanDegree * float64(n) / 2)
	maxEdges := n * (n - 1) / 2
	for tries := 0; len(e) < min(want, maxEdges) && tries < 100*n; tries++ {
		add(rng.IntN(n), rng.IntN(n))
	}
	return e
}

func (r Random) String() string { return fmt.Sprintf("random(d=%g)", r.MeanDegree) }

// degrees counts the links each servent has in edges.
func degrees(n int, edges []Edge) []int {
	d := make([]int, n)
	for _, x := range edges {
		d[x.A]++
		d[x.B]++
	}
	return d
}

// Roles is a Topology whose servents are not all alike: the two-tier shape.
type Roles interface {
	Topology
	Leaf(i int) bool
}

// TwoTier is the Gnutella 0.6 shape: the first Ultrapeers servents are
// ultrapeers, linked as a connected random graph of mean degree
// UltrapeerDegree; every other servent is a leaf that links to
// LeafUltrapeers distinct ultrapeers chosen at random.
type TwoTier struct {
	Ultrapeers      int
	UltrapeerDegree float64
	LeafUltrapeers  int
}

// Leaf implements Roles.
func (t TwoTier) Leaf(i int) bool { return i >= t.Ultrapeers }

// Edges implements Topology. Leaves dial their ultrapeers.
func (t TwoTier) Edges(n int, rng *rand.Rand) []Edge {
	ups := min(t.Ultrapeers, n)
	e := Random{MeanDegree: t.UltrapeerDegree}.Edges(ups, rng)
	k := min(max(t.LeafUltrapeers, 1), ups)
	for leaf := ups; leaf < n; leaf++ {
		for _, up := range rng.Perm(ups)[:k] {
			e = append(e, Edge{A: leaf, B: up})
		}
	}
	return e
}

func (t TwoTier) String() string {
	return fmt.Sprintf("two-tier(%d ultrapeers d=%g, leaves x%d)", t.Ultrapeers, t.UltrapeerDegree, t.LeafUltrapeers)
}

// Star links every servent to servent 0 (i dials 0).
type Star struct{}

// Edges implements Topology.
func (Star) Edges(n int, _ *rand.Rand) []Edge {
	var e []Edge
	for i := 1; i < n; i++ {
		e = append(e, Edge{i, 0})
	}
	return e
}

func (Star) String() string { return "star" }
