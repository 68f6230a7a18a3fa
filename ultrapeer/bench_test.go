package ultrapeer

import (
	"crypto/sha1"
	"encoding/binary"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"gnutella/protocol"
)

// A synthetic but realistic shared-file population: a vocabulary of 30,000
// pronounceable words of 2 to 12 letters, drawn with a Zipf law (a few words
// such as "the" or "live" in many names, most words rare), names of 2 to 7
// words, sometimes a track number or a year, and an extension. Fixed seeds:
// every run sees the same files.

var syllables = []string{"ka", "lo", "mi", "ne", "ra", "tu", "zo", "an", "el", "ing", "or", "str", "qu", "ba",
	"de", "fi", "go", "hu", "ja", "ve", "wy", "xe", "sh", "ch", "th", "ou", "ai", "pr", "bl", "gr"}
var extensions = []string{"mp3", "mp3", "mp3", "ogg", "flac", "avi", "mkv", "mp4", "jpg", "png", "txt", "pdf", "zip", "iso"}

type corpus struct {
	vocab []string
	zipf  *rand.Zipf
	rng   *rand.Rand
}

func newCorpus(seed uint64) *corpus {
	rng := rand.New(rand.NewPCG(seed, 1))
	vocab := make([]string, 30000)
	for i := range vocab {
		var w []byte
		for n := 1 + rng.IntN(4); n > 0; n-- {
			w = append(w, syllables[rng.IntN(len(syllables))]...)
		}
		vocab[i] = string(w[:min(len(w), 12)])
	}
	return &corpus{vocab: vocab, zipf: rand.NewZipf(rng, 1.1, 2, uint64(len(vocab)-1)), rng: rng}
}

func (c *corpus) word() string { return c.vocab[c.zipf.Uint64()] }

// name returns the normalised words of one file name, as share.Keywords
// would give them for "Word Word - 07 - Word (1999).mp3".
func (c *corpus) name() []string {
	n := 2 + c.rng.IntN(6)
	w := make([]string, 0, n+3)
	for i := 0; i < n; i++ {
		w = append(w, c.word())
	}
	if c.rng.IntN(3) == 0 {
		w = append(w, strconv.Itoa(1+c.rng.IntN(20)))
	}
	if c.rng.IntN(4) == 0 {
		w = append(w, strconv.Itoa(1960+c.rng.IntN(65)))
	}
	return append(w, extensions[c.rng.IntN(len(extensions))])
}

func (c *corpus) urn() protocol.SHA1 {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], c.rng.Uint64())
	return sha1.Sum(b[:])
}

func (c *corpus) library(n int) ([][]string, []protocol.SHA1) {
	names := make([][]string, n)
	urns := make([]protocol.SHA1, n)
	for i := range names {
		names[i], urns[i] = c.name(), c.urn()
	}
	return names, urns
}

// BenchmarkBuildTable100k builds the table of a 100,000-file library at
// LimeWire's 2^17 slots and the recommended 2^16, and reports the fill with
// our rule (fill%) and with gtk-gnutella's (gtkfill%) for comparison.
func BenchmarkBuildTable100k(b *testing.B) {
	names, urns := newCorpus(1).library(100000)
	for _, bits := range []uint8{16, 17} {
		b.Run("bits="+strconv.Itoa(int(bits)), func(b *testing.B) {
			gtk := NewTable(bits)
			for _, n := range names {
				for _, w := range gtkNameKeywords(n) {
					gtk.AddKeyword(w)
				}
			}
			for _, h := range urns {
				gtk.AddURN(h)
			}
			var tb *Table
			b.ReportAllocs()
			for b.Loop() {
				tb = BuildTable(bits, names, urns)
			}
			b.ReportMetric(100*tb.Fill(), "fill%")
			b.ReportMetric(100*gtk.Fill(), "gtkfill%")
		})
	}
}

// leafSet is 5,000 leaf tables of 2^16 slots and the queries and URNs
// BenchmarkMatch5000Leaves looks them up with.
type leafSet struct {
	tables  []*Table
	queries [][]string
	urns    [][]protocol.SHA1
}

var (
	bigLeaves   = sync.OnceValue(func() *leafSet { return newLeafSet(10, 400) })
	smallLeaves = sync.OnceValue(func() *leafSet { return newLeafSet(2, 10) })
)

// leafTables returns bigLeaves' tables and queries.
func leafTables() ([]*Table, [][]string) {
	l := bigLeaves()
	return l.tables, l.queries
}

// newLeafSet returns 5,000 leaf tables of 2^16 slots, each for a library of
// minFiles to maxFiles files, and 1,000 queries of 1 to 3 words drawn from
// the same vocabulary: a quarter of the words by the same Zipf law as the
// names (so common words like "mp3" or "live" appear in queries too), the
// others uniformly (what people search for is mostly specific); a third of
// the words are cut to a prefix.
func newLeafSet(minFiles, maxFiles int) *leafSet {
	leaves := &leafSet{}
	c := newCorpus(2)
	for i := 0; i < 5000; i++ {
		names, urns := c.library(minFiles + c.rng.IntN(maxFiles-minFiles+1))
		leaves.tables = append(leaves.tables, BuildTable(16, names, urns))
		if i < 1000 {
			leaves.urns = append(leaves.urns, []protocol.SHA1{urns[0]})
		}
	}
	for i := 0; i < 1000; i++ {
		q := make([]string, 1+c.rng.IntN(3))
		for j := range q {
			q[j] = c.vocab[c.rng.IntN(len(c.vocab))]
			if c.rng.IntN(4) == 0 {
				q[j] = c.word()
			}
			if c.rng.IntN(3) == 0 && len(q[j]) > 4 {
				q[j] = q[j][:3+c.rng.IntN(len(q[j])-3)]
			}
		}
		leaves.queries = append(leaves.queries, q)
	}
	return leaves
}

// BenchmarkMatch5000Leaves: one query against 5,000 leaf tables of 2^16
// slots, the decision an ultrapeer takes for every query: which leaves get
// it. The query is hashed once (NewQRPQuery, included in the time).
// Libraries of 10 to 400 files (2.2 % of the slots present on average).
//
//   - tables: each table tested in turn, one shift and one bit test per word;
//     bound by cache misses (5,000 × 8 KiB = 40 MiB of tables).
//   - index: the same tables in a LeafIndex.
//   - urn: a SHA-1 query, tables tested in turn and through the index.
func BenchmarkMatch5000Leaves(b *testing.B) { benchMatch(b, bigLeaves()) }

// BenchmarkMatch5000SmallLeaves is BenchmarkMatch5000Leaves with libraries
// of 2 to 10 files, most leaves' (a few hundred slots present).
func BenchmarkMatch5000SmallLeaves(b *testing.B) { benchMatch(b, smallLeaves()) }

func benchMatch(b *testing.B, leaves *leafSet) {
	tables, queries := leaves.tables, leaves.queries
	var fill float64
	for _, t := range tables {
		fill += t.Fill()
	}
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	x := NewLeafIndex(16)
	for _, t := range tables {
		x.Add(t)
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	indexBytes := float64(m1.HeapAlloc-m0.HeapAlloc) / float64(len(tables))
	b.Run("tables", func(b *testing.B) {
		matched, i := 0, 0
		for b.Loop() {
			q := NewQRPQuery(queries[i%len(queries)], nil)
			for _, t := range tables {
				if t.MatchesQuery(q) {
					matched++
				}
			}
			i++
		}
		b.ReportMetric(float64(matched)/float64(i), "leaves/query")
		b.ReportMetric(100*fill/float64(len(tables)), "fill%")
	})
	b.Run("index", func(b *testing.B) {
		var dst []int
		matched, i := 0, 0
		for b.Loop() {
			q := NewQRPQuery(queries[i%len(queries)], nil)
			dst = x.Match(q, dst[:0])
			matched += len(dst)
			i++
		}
		b.ReportMetric(float64(matched)/float64(i), "leaves/query")
		b.ReportMetric(indexBytes, "index-B/leaf")
	})
	b.Run("urn-tables", func(b *testing.B) {
		matched, i := 0, 0
		for b.Loop() {
			q := NewQRPQuery(nil, leaves.urns[i%len(leaves.urns)])
			for _, t := range tables {
				if t.MatchesQuery(q) {
					matched++
				}
			}
			i++
		}
		b.ReportMetric(float64(matched)/float64(i), "leaves/query")
	})
	b.Run("urn-index", func(b *testing.B) {
		var dst []int
		matched, i := 0, 0
		for b.Loop() {
			dst = x.Match(NewQRPQuery(nil, leaves.urns[i%len(leaves.urns)]), dst[:0])
			matched += len(dst)
			i++
		}
		b.ReportMetric(float64(matched)/float64(i), "leaves/query")
	})
}

// BenchmarkLeafIndexSet: a leaf of the 5,000 sends a new table.
func BenchmarkLeafIndexSet(b *testing.B) {
	tables, _ := leafTables()
	x := NewLeafIndex(16)
	for _, t := range tables {
		x.Add(t)
	}
	i := 0
	for b.Loop() {
		x.Set(i%len(tables), tables[(i+1)%len(tables)])
		i++
	}
}

// BenchmarkMessages encodes the table of a 1,000-file leaf at 2^16 slots as
// RESET + 4-bit zlib PATCH messages of 4 KiB.
func BenchmarkMessages(b *testing.B) {
	names, urns := newCorpus(3).library(1000)
	tb := BuildTable(16, names, urns)
	var size int
	b.ReportAllocs()
	for b.Loop() {
		m := tb.Messages(7, 4096)
		size = 0
		for _, p := range m[1:] {
			size += len(p.(*protocol.RouteTablePatch).Data)
		}
	}
	b.ReportMetric(float64(size), "patch-bytes")
}

// BenchmarkReceiver applies those messages: what an ultrapeer does when a
// leaf connects or updates its table.
func BenchmarkReceiver(b *testing.B) {
	names, urns := newCorpus(3).library(1000)
	msgs := BuildTable(16, names, urns).Messages(7, 4096)
	r := NewReceiver(21)
	b.ReportAllocs()
	for b.Loop() {
		for _, m := range msgs {
			if _, err := r.Apply(m); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// leafTable1000 is the table of a realistic 1,000-file leaf at 2^16 slots,
// the table each of the testnet's leaves sends to its ultrapeers.
func leafTable1000() *Table {
	names, urns := newCorpus(3).library(1000)
	return BuildTable(16, names, urns)
}

// BenchmarkMessagesAllocs: what sending one leaf table costs in memory
// (RESET + 4-bit zlib PATCH messages of 4 KiB, as servent.sendTable does).
// serial is one servent after another; parallel is every core encoding at
// once, as the testnet's servents do. The returned payloads are the only
// memory that should remain per call.
func BenchmarkMessagesAllocs(b *testing.B) {
	tb := leafTable1000()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if m := tb.Messages(7, 4096); len(m) < 2 {
				b.Fatal(len(m), "messages")
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if m := tb.Messages(7, 4096); len(m) < 2 {
					b.Error(len(m), "messages")
					return
				}
			}
		})
	})
}

// BenchmarkReceiverAllocs: what receiving that table costs in memory.
// new-receiver is a leaf connecting (the servent makes one Receiver per
// link, the case of the testnet's start); same-receiver is a table update on
// a link that already received one. The new table (8 KiB) is the only memory
// that should remain per sequence.
func BenchmarkReceiverAllocs(b *testing.B) {
	msgs := leafTable1000().Messages(7, 4096)
	apply := func(b *testing.B, r *Receiver) {
		for _, m := range msgs {
			if _, err := r.Apply(m); err != nil {
				b.Fatal(err)
			}
		}
		if !r.Ready() {
			b.Fatal("no table")
		}
	}
	b.Run("new-receiver", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			apply(b, NewReceiver(21))
		}
	})
	b.Run("same-receiver", func(b *testing.B) {
		r := NewReceiver(21)
		b.ReportAllocs()
		for b.Loop() {
			apply(b, r)
		}
	})
	b.Run("new-receiver-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				r := NewReceiver(21)
				for _, m := range msgs {
					if _, err := r.Apply(m); err != nil {
						b.Error(err)
						return
					}
				}
			}
		})
	})
}
