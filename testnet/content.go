package testnet

import (
	"crypto/sha1"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"gnutella/protocol"
	"gnutella/share"
	"gnutella/ultrapeer"
)

// Content for experiments, after Lv et al.: M distinct files, each held by
// r_i servents chosen at random, queried with a Zipf popularity q_i ∝ 1/i^s.
// The replication schemes are theirs: uniform (every r_i equal),
// proportional (r_i ∝ q_i) and square-root (r_i ∝ √q_i); all three place the
// same total number of copies, R = Ratio × M × N.
//
// The files are small but real: a few hundred bytes each, named
// "<keyword> <word>.txt" with a keyword unique to the file, and carrying the
// real SHA-1 of their bytes as urn:sha1. WriteFiles puts a servent's files
// on disk for a servent that shares a folder; Answer and QRPTable answer
// from memory for networks too large to write files for.

// Replication schemes.
const (
	Uniform      = "uniform"
	Proportional = "proportional"
	SquareRoot   = "sqrt"
)

// ContentConfig describes the content of a network.
type ContentConfig struct {
	Files       int     // M, distinct files (100 when 0)
	Replication string  // uniform, proportional or sqrt ("" = uniform)
	Ratio       float64 // mean fraction of servents holding a file (0.01 when 0)
	ZipfS       float64 // Zipf exponent of the query popularity (1 when 0)
}

// DefaultContentConfig returns the documented defaults: 100 files,
// uniform replication on 1 % of the servents, Zipf exponent 1.
func DefaultContentConfig() ContentConfig {
	return ContentConfig{Files: 100, Replication: Uniform, Ratio: 0.01, ZipfS: 1}
}

func (c ContentConfig) withDefaults() ContentConfig {
	d := DefaultContentConfig()
	if c.Files <= 0 {
		c.Files = d.Files
	}
	if c.Replication == "" {
		c.Replication = d.Replication
	}
	if c.Ratio <= 0 {
		c.Ratio = d.Ratio
	}
	if c.ZipfS <= 0 {
		c.ZipfS = d.ZipfS
	}
	return c
}

// File is one generated file.
type File struct {
	Index      int // 0..M-1, by popularity (0 is the most queried)
	Keyword    string
	Name       string
	Data       []byte
	SHA1       protocol.SHA1
	Popularity float64 // q_i, summing to 1
	Holders    []int   // servents holding a copy, ascending
}

// Content is the generated content of a network of N servents.
type Content struct {
	Config ContentConfig
	N      int
	Files  []File
	byNode [][]int32 // file indexes each servent holds
	byWord map[string]int
	cdf    []float64 // cumulative popularity, for drawing queries
}

var contentWords = []string{"emu", "wallaby", "platypus", "koala", "wombat", "dingo", "kookaburra", "numbat", "quoll", "bilby",
	"echidna", "bandicoot", "possum", "galah", "cassowary", "quokka"}

// Zipf returns the popularity of m items with exponent s, summing to 1.
func Zipf(m int, s float64) []float64 {
	q := make([]float64, m)
	sum := 0.0
	for i := range q {
		q[i] = 1 / math.Pow(float64(i+1), s)
		sum += q[i]
	}
	for i := range q {
		q[i] /= sum
	}
	return q
}

// ReplicaCounts returns r_i for each of the files of popularity q under a
// scheme, for n servents and total R = round(ratio × M × n): r_i ∝ 1, q_i or
// √q_i, rounded (largest remainders) so that they sum to R, and each at
// least 1 and at most n.
func ReplicaCounts(n int, q []float64, scheme string, ratio float64) ([]int, error) {
	m := len(q)
	w := make([]float64, m)
	for i := range w {
		switch scheme {
		case Uniform, "":
			w[i] = 1
		case Proportional:
			w[i] = q[i]
		case SquareRoot, "square-root":
			w[i] = math.Sqrt(q[i])
		default:
			return nil, fmt.Errorf("unknown replication %q: use uniform, proportional or sqrt", scheme)
		}
	}
	total := int(math.Round(ratio * float64(m) * float64(n)))
	total = min(max(total, m), m*n)
	// Water-filling: files whose share would pass n are capped at n and the
	// rest shared among the others; likewise the floor of 1.
	r := make([]int, m)
	fixed := make([]bool, m)
	for {
		left, wsum := total, 0.0
		for i := range w {
			if fixed[i] {
				left -= r[i]
			} else {
				wsum += w[i]
			}
		}
		changed := false
		exact := make([]float64, m)
		for i := range w {
			if fixed[i] {
				continue
			}
			exact[i] = float64(left) * w[i] / wsum
			if exact[i] > float64(n) {
				r[i], fixed[i], changed = n, true, true
			} else if exact[i] < 1 {
				r[i], fixed[i], changed = 1, true, true
			}
		}
		if changed {
			continue
		}
		// largest remainders
		type rem struct {
			i int
			f float64
		}
		var rs []rem
		given := 0
		for i := range w {
			if fixed[i] {
				continue
			}
			r[i] = int(exact[i])
			given += r[i]
			rs = append(rs, rem{i, exact[i] - float64(r[i])})
		}
		sort.SliceStable(rs, func(a, b int) bool { return rs[a].f > rs[b].f })
		for k := 0; given < left && k < len(rs); k++ {
			if r[rs[k].i] < n {
				r[rs[k].i]++
				given++
			}
		}
		return r, nil
	}
}

// NewContent generates the content of n servents.
func NewContent(n int, cfg ContentConfig, rng *rand.Rand) (*Content, error) {
	cfg = cfg.withDefaults()
	q := Zipf(cfg.Files, cfg.ZipfS)
	counts, err := ReplicaCounts(n, q, cfg.Replication, cfg.Ratio)
	if err != nil {
		return nil, err
	}
	c := &Content{Config: cfg, N: n, byNode: make([][]int32, n), byWord: map[string]int{}}
	perm := make([]int, n)
	for i := range perm {
		perm[i] = i
	}
	acc := 0.0
	for i := range cfg.Files {
		kw := fmt.Sprintf("xf%05d", i)
		name := fmt.Sprintf("%s %s.txt", kw, contentWords[i%len(contentWords)])
		data := fileData(i, name)
		f := File{Index: i, Keyword: kw, Name: name, Data: data, SHA1: sha1.Sum(data), Popularity: q[i]}
		// a partial Fisher-Yates shuffle picks r_i distinct holders
		for k := 0; k < counts[i]; k++ {
			j := k + rng.IntN(n-k)
			perm[k], perm[j] = perm[j], perm[k]
			f.Holders = append(f.Holders, perm[k])
			c.byNode[perm[k]] = append(c.byNode[perm[k]], int32(i))
		}
		slices.Sort(f.Holders)
		c.Files = append(c.Files, f)
		c.byWord[kw] = i
		acc += q[i]
		c.cdf = append(c.cdf, acc)
	}
	return c, nil
}

// fileData is the content of file i: a few hundred bytes of text.
func fileData(i int, name string) []byte {
	line := fmt.Sprintf("Gnutella testnet file %d, %q: generated content for search experiments.\n", i, name)
	var b []byte
	for k := 0; k < 2+i%7; k++ {
		b = append(b, fmt.Sprintf("%04d ", k)...)
		b = append(b, line...)
	}
	return b
}

// Held lists the files servent i holds.
func (c *Content) Held(i int) []int {
	out := make([]int, len(c.byNode[i]))
	for k, f := range c.byNode[i] {
		out[k] = int(f)
	}
	return out
}

// Draw picks a file by popularity.
func (c *Content) Draw(rng *rand.Rand) int {
	x := rng.Float64() * c.cdf[len(c.cdf)-1]
	k, _ := slices.BinarySearch(c.cdf, x)
	return min(k, len(c.Files)-1)
}

// Query is the keyword query for file f.
func (c *Content) Query(f int) *protocol.Query {
	return protocol.NewQuery(c.Files[f].Keyword, protocol.QueryFlagMark|protocol.QueryFlagGGEPH)
}

// Answer answers queries for servent i (a servent.StaticLibrary's Results): the files it holds whose keyword
// is a word of the query, or whose SHA-1 the query names, each with its
// urn:sha1.
func (c *Content) Answer(i int) func(q *protocol.Query, h protocol.Header) []protocol.Result {
	held := c.byNode[i]
	if len(held) == 0 {
		return nil
	}
	return func(q *protocol.Query, h protocol.Header) []protocol.Result {
		ggepH := q.Flags.Has(protocol.QueryFlagMark) && q.Flags.Has(protocol.QueryFlagGGEPH)
		var out []protocol.Result
		add := func(f int) {
			if !slices.Contains(held, int32(f)) {
				return
			}
			for _, r := range out {
				if r.Index == uint32(f+1) {
					return
				}
			}
			file := &c.Files[f]
			out = append(out, protocol.Result{Index: uint32(f + 1), Size: uint32(len(file.Data)), Name: []byte(file.Name),
				Extensions: protocol.ResultExtensions(file.SHA1, ggepH, nil)})
		}
		for _, w := range share.Keywords(string(q.Search)) {
			if f, ok := c.byWord[w]; ok {
				add(f)
			}
		}
		for _, u := range q.URNs() {
			for _, f := range held {
				if c.Files[f].SHA1 == u {
					add(int(f))
				}
			}
		}
		return out
	}
}

// QRPTable is the QRP table of servent i's files (as a library sharing
// them would build it), for a servent.StaticLibrary's Table; nil when it holds none.
func (c *Content) QRPTable(i int) *ultrapeer.Table {
	held := c.byNode[i]
	if len(held) == 0 {
		return nil
	}
	names := make([][]string, len(held))
	urns := make([]protocol.SHA1, len(held))
	for k, f := range held {
		names[k] = share.Keywords(c.Files[f].Name)
		urns[k] = c.Files[f].SHA1
	}
	return ultrapeer.BuildTable(16, names, urns)
}

// WriteFiles writes servent i's files into dir (created if needed), for a
// servent that shares dir.
func (c *Content) WriteFiles(dir string, i int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range c.byNode[i] {
		file := &c.Files[f]
		if err := os.WriteFile(filepath.Join(dir, file.Name), file.Data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
