package testnet

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/csv"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gnutella/protocol"
	"gnutella/routing"
	"gnutella/share"
)

func TestPowerLawHasAHeavyTailAndIsReproducible(t *testing.T) {
	const n = 10000
	topo := PowerLaw{MeanDegree: 4.46}
	e := topo.Edges(n, newSeedRand(1))
	if !slices.Equal(e, topo.Edges(n, newSeedRand(1))) {
		t.Fatal("same seed, different graph")
	}
	if slices.Equal(e, topo.Edges(n, newSeedRand(2))) {
		t.Fatal("different seeds, same graph")
	}
	d := degrees(n, e)
	mean := 2 * float64(len(e)) / n
	sorted := slices.Clone(d)
	slices.Sort(sorted)
	median, top := sorted[n/2], sorted[n-1]
	over := 0
	for _, x := range d {
		if float64(x) >= 10*mean {
			over++
		}
	}
	t.Logf("power-law: mean degree %.2f, median %d, max %d, %d servents with ≥ 10× the mean", mean, median, top, over)
	if mean < 3 || mean > 6 {
		t.Errorf("mean degree %.2f, want about 4.5", mean)
	}
	if top < 50*int(mean) || over < 10 {
		t.Errorf("no heavy tail: max degree %d, %d servents above 10× the mean", top, over)
	}
	if median > int(mean) {
		t.Errorf("median %d above the mean %.2f: not skewed", median, mean)
	}
	if c := components(n, e); slices.ContainsFunc(c, func(x int) bool { return x != c[0] }) {
		t.Error("not connected")
	}
	// the random graph, for contrast, has no such tail
	rd := degrees(n, Random{MeanDegree: 4.46}.Edges(n, newSeedRand(1)))
	if m := maxInt(rd); m > 20 {
		t.Errorf("random graph max degree %d", m)
	}
}

func TestGridIsFourRegularInside(t *testing.T) {
	const w = 100
	e := Grid{}.Edges(w*w, nil)
	if len(e) != 2*w*(w-1) {
		t.Fatalf("%d edges, want %d", len(e), 2*w*(w-1))
	}
	d := degrees(w*w, e)
	for i, x := range d {
		r, c := i/w, i%w
		inner := r > 0 && r < w-1 && c > 0 && c < w-1
		corner := (r == 0 || r == w-1) && (c == 0 || c == w-1)
		want := 3
		if inner {
			want = 4
		} else if corner {
			want = 2
		}
		if x != want {
			t.Fatalf("servent %d (row %d col %d) has %d links, want %d", i, r, c, x, want)
		}
	}
}

func TestParseTopology(t *testing.T) {
	for _, name := range []string{"random", "powerlaw", "grid", "twotier"} {
		topo, err := ParseTopology(name, 1000, 0)
		if err != nil {
			t.Fatal(err)
		}
		e := topo.Edges(1000, newSeedRand(3))
		if c := components(1000, e); slices.ContainsFunc(c, func(x int) bool { return x != c[0] }) {
			t.Errorf("%s: not connected", name)
		}
		if !slices.Equal(e, topo.Edges(1000, newSeedRand(3))) {
			t.Errorf("%s: not reproducible", name)
		}
	}
	if _, err := ParseTopology("hypercube", 10, 0); err == nil {
		t.Error("unknown topology accepted")
	}
}

func TestReplicationSchemes(t *testing.T) {
	const n, m = 1000, 20
	q := Zipf(m, 1)
	for _, scheme := range []string{Uniform, Proportional, SquareRoot} {
		r, err := ReplicaCounts(n, q, scheme, 0.02)
		if err != nil {
			t.Fatal(err)
		}
		sum := 0
		for _, x := range r {
			sum += x
			if x < 1 || x > n {
				t.Errorf("%s: count %d out of range", scheme, x)
			}
		}
		if sum != n*m/50 {
			t.Errorf("%s: %d copies, want %d", scheme, sum, n*m/50)
		}
		t.Logf("%-12s %v", scheme, r)
		switch scheme {
		case Uniform:
			if r[0] != r[m-1] {
				t.Errorf("uniform: %d vs %d", r[0], r[m-1])
			}
		case Proportional:
			// r_i ∝ q_i ∝ 1/i: the first has about 20× the last
			if ratio := float64(r[0]) / float64(r[m-1]); ratio < 15 || ratio > 25 {
				t.Errorf("proportional: r1/r20 = %.1f, want about 20", ratio)
			}
		case SquareRoot:
			if ratio := float64(r[0]) / float64(r[m-1]); ratio < 3.5 || ratio > 5.5 {
				t.Errorf("sqrt: r1/r20 = %.1f, want about √20 = 4.5", ratio)
			}
		}
	}
	if _, err := ReplicaCounts(n, q, "cubic", 0.01); err == nil {
		t.Error("unknown scheme accepted")
	}
}

func TestContentIsRealAndAnswers(t *testing.T) {
	c, err := NewContent(200, ContentConfig{Files: 10, Ratio: 0.05, Replication: SquareRoot}, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	f := c.Files[3]
	if f.SHA1 != sha1.Sum(f.Data) || len(f.Holders) == 0 {
		t.Fatalf("file %+v", f)
	}
	holder, other := f.Holders[0], -1
	for i := 0; i < 200 && other < 0; i++ {
		if !slices.Contains(f.Holders, i) {
			other = i
		}
	}
	q := c.Query(3)
	res := c.Answer(holder)(q, protocol.Header{})
	if len(res) != 1 || string(res[0].Name) != f.Name || res[0].URNs()[0] != f.SHA1 {
		t.Fatalf("holder answered %+v", res)
	}
	if a := c.Answer(other); a != nil && len(a(q, protocol.Header{})) != 0 {
		t.Fatal("a servent without the file answered")
	}
	// by URN too
	if res := c.Answer(holder)(protocol.NewQuery("", protocol.QueryFlagMark, f.SHA1), protocol.Header{}); len(res) != 1 {
		t.Fatalf("URN query answered %+v", res)
	}
	if tab := c.QRPTable(holder); tab == nil || tab.Count() == 0 {
		t.Fatal("no QRP table")
	}
	// on disk, a shared library hashes them to the same URNs
	dir := t.TempDir()
	if err := c.WriteFiles(dir, holder); err != nil {
		t.Fatal(err)
	}
	lib, err := share.Open(share.Config{Dirs: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	defer lib.Close()
	if err := lib.Rescan(); err != nil {
		t.Fatal(err)
	}
	if err := lib.HashAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, ok := lib.BySHA1(f.SHA1)
	if !ok || got.Name != f.Name {
		t.Fatalf("library has %+v, %v", got, ok)
	}
	if m := lib.Match(q); len(m) != 1 {
		t.Fatalf("library matched %d files for %q", len(m), f.Keyword)
	}
	// queries follow the popularity
	counts := make([]int, 10)
	rng := rand.New(rand.NewPCG(5, 5))
	for range 5000 {
		counts[c.Draw(rng)]++
	}
	if counts[0] < 3*counts[9] {
		t.Errorf("draws %v do not follow Zipf", counts)
	}
}

// A 300-servent experiment end to end: CSV and JSON (testnet/plot draws from them), and the
// ordering every study finds.
func TestSmallExperimentEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	out := t.TempDir()
	var buf bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	rep, err := RunExperimentReport(ctx, ExperimentConfig{
		Topology: Random{MeanDegree: 4}, N: 300, Seed: 1, Files: 30, ReplicationRatio: 0.02, Queries: 30,
		Strategies: []routing.Strategy{
			routing.Flood{TTL: 2}, routing.Flood{TTL: 6},
			routing.Ring{Start: 1, Step: 2, Max: 6, Wait: 20 * time.Millisecond},
			routing.Walk{K: 16, Budget: 1024, Check: true, Rand: rand.New(rand.NewPCG(1, 1))},
			routing.Gossip{P: 0.5, TTL: 6, Rand: rand.New(rand.NewPCG(1, 2))},
		},
		Churn: 0.3, Timeout: 5 * time.Second, Out: out,
	}, &buf)
	t.Log("\n" + buf.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"results.csv", "results.json"} {
		st, err := os.Stat(filepath.Join(out, f))
		if err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	rows, err := csv.NewReader(mustOpen(t, filepath.Join(out, "results.csv"))).ReadAll()
	if err != nil || len(rows) != 1+len(rep.Results) {
		t.Fatalf("CSV: %d rows, %v", len(rows), err)
	}
	if back, err := ReadReport(filepath.Join(out, "results.json")); err != nil || len(back.Results) != len(rep.Results) {
		t.Fatalf("JSON: %v", err)
	}
	get := func(prefix string, churn float64) Result {
		for _, r := range rep.Results {
			if strings.HasPrefix(r.Strategy, prefix) && r.Churn == churn {
				return r
			}
		}
		t.Fatalf("no result %q at churn %g", prefix, churn)
		return Result{}
	}
	flood, walk, small := get("flood(ttl=6)", 0), get("walk", 0), get("flood(ttl=2)", 0)
	if flood.SuccessRate < walk.SuccessRate {
		t.Errorf("flood success %.2f < walk success %.2f", flood.SuccessRate, walk.SuccessRate)
	}
	if walk.MessagesPerQuery >= flood.MessagesPerQuery {
		t.Errorf("walk %.0f messages per query, flood %.0f", walk.MessagesPerQuery, flood.MessagesPerQuery)
	}
	if small.MessagesPerQuery >= flood.MessagesPerQuery || small.NodesVisitedPerQuery >= flood.NodesVisitedPerQuery {
		t.Errorf("TTL 2 flood costs %.0f, TTL 6 %.0f", small.MessagesPerQuery, flood.MessagesPerQuery)
	}
	if flood.SuccessRate < 0.9 || flood.DuplicatesPerQuery == 0 || flood.MeanHopsFirstHit == 0 || flood.ResultsPerQuery < 1 {
		t.Errorf("flood: %+v", flood)
	}
	if walk.WalkChecksPerQuery == 0 {
		t.Errorf("walkers never checked: %+v", walk)
	}
	if c := get("walk", 0.3); c.SuccessRate == 0 {
		t.Errorf("walkers under churn found nothing: %+v", c)
	}
}

func mustOpen(t *testing.T, path string) *os.File {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
