package share

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gnutella/protocol"
)

// Realistic names: a vocabulary of 20,000 pronounceable words made from
// syllables, drawn with a Zipf distribution (a few words are in thousands of
// names, most in a handful), put into the shapes of names people share:
// "07 - Artist Name - Song Title.mp3", "Movie.Title.2004.720p.x264-GRP.mkv",
// "Book Title (1999) - Author.pdf", "IMG_1234 beach holiday.jpg". All from a
// fixed seed, so every run sees the same library.

const benchFiles = 100_000

type nameGen struct {
	r     *rand.Rand
	vocab []string
	zipf  *rand.Zipf
}

func newNameGen(seed uint64) *nameGen {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	syl := []string{"ka", "lo", "mi", "ra", "ten", "do", "su", "vel", "an", "or", "bel", "qu", "ix", "zo",
		"mar", "lin", "gor", "pe", "ta", "ni", "cha", "ren", "sto", "fa", "wu", "el", "bri", "dan", "ko", "sa"}
	seen := map[string]bool{}
	g := &nameGen{r: r}
	for len(g.vocab) < 20000 {
		var sb strings.Builder
		for n := 1 + r.IntN(4); n > 0; n-- {
			sb.WriteString(syl[r.IntN(len(syl))])
		}
		if w := sb.String(); !seen[w] {
			seen[w] = true
			g.vocab = append(g.vocab, w)
		}
	}
	g.zipf = rand.NewZipf(r, 1.07, 2, uint64(len(g.vocab)-1))
	return g
}

func (g *nameGen) word() string { return g.vocab[g.zipf.Uint64()] }

func (g *nameGen) title(n int) string {
	ws := make([]string, n)
	for i := range ws {
		w := g.word()
		ws[i] = strings.ToUpper(w[:1]) + w[1:]
	}
	return strings.Join(ws, " ")
}

func (g *nameGen) name() string {
	r := g.r
	switch r.IntN(10) {
	case 0, 1, 2, 3: // music
		return fmt.Sprintf("%02d - %s - %s.%s", 1+r.IntN(20), g.title(1+r.IntN(2)), g.title(1+r.IntN(4)),
			[]string{"mp3", "mp3", "flac", "ogg", "m4a"}[r.IntN(5)])
	case 4, 5: // video
		return fmt.Sprintf("%s.%d.%s.%s-%s.%s", strings.ReplaceAll(g.title(1+r.IntN(3)), " ", "."), 1960+r.IntN(66),
			[]string{"720p", "1080p", "DVDRip", "2160p"}[r.IntN(4)], []string{"x264", "x265", "XviD"}[r.IntN(3)],
			strings.ToUpper(g.word()), []string{"mkv", "avi", "mp4"}[r.IntN(3)])
	case 6, 7: // documents
		return fmt.Sprintf("%s (%d) - %s.%s", g.title(2+r.IntN(4)), 1900+r.IntN(126), g.title(2),
			[]string{"pdf", "epub", "txt", "doc"}[r.IntN(4)])
	case 8: // pictures
		return fmt.Sprintf("IMG_%04d %s %s.jpg", r.IntN(10000), g.word(), g.word())
	default: // programs and the rest
		return fmt.Sprintf("%s_%s_v%d.%d.%s", g.word(), g.word(), r.IntN(10), r.IntN(20),
			[]string{"zip", "exe", "tar.gz", "iso"}[r.IntN(4)])
	}
}

// benchRecs returns n records with generated names, sorted by index.
func benchRecs(n int) ([]*rec, *nameGen) {
	g := newNameGen(42)
	recs := make([]*rec, n)
	for i := range recs {
		name := g.name()
		recs[i] = &rec{index: uint32(i + 1), path: "/share/" + strconv.Itoa(i) + "/" + name, name: name,
			size: 1 << 20, mtime: time.Unix(1700000000, 0)}
	}
	return recs, g
}

// benchLibrary is a library of n generated files, built in memory through
// the same apply step a Rescan uses (no disk).
func benchLibrary(b *testing.B, n int) (*Library, *nameGen) {
	b.Helper()
	recs, g := benchRecs(n)
	l, err := Open(Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	found := make(map[string]scanned, n)
	for _, r := range recs {
		found[r.path] = scanned{path: r.path, name: r.name, size: r.size, mtime: r.mtime}
	}
	l.apply(found)
	return l, g
}

// BenchmarkMatch100k times Match of a Query against 100,000 files:
// "keyword" is the case asked for, one keyword drawn with the names' own
// Zipf distribution (so common words, which stop at MaxResults, come up as
// often as they do in names); the others show the edges. Each reports the
// median and 99th percentile of single calls (p50-ns, p99-ns) besides the
// mean ns/op, and the number of hits per query.
func BenchmarkMatch100k(b *testing.B) {
	l, g := benchLibrary(b, benchFiles)
	ix := l.snap
	pick := func(n int, f func() string) []*protocol.Query {
		qs := make([]*protocol.Query, n)
		for i := range qs {
			qs[i] = roundTrip(b, protocol.NewQuery(f(), protocol.QueryFlagGGEPH))
		}
		return qs
	}
	cases := []struct {
		name string
		qs   []*protocol.Query
	}{
		{"keyword", pick(1000, g.word)},
		{"rare-keyword", pick(1000, func() string { // words in at most 5 names
			for {
				w := ix.vocab[g.r.IntN(len(ix.vocab))]
				if c := ix.cost(ix.prefixRange([]byte(w))); c > 0 && c <= 5 {
					return w
				}
			}
		})},
		{"common-keyword", pick(1, func() string { return g.vocab[0] })},
		{"prefix-3", pick(1000, func() string { w := g.word(); return w[:min(3, len(w))] })},
		{"two-keywords", pick(1000, func() string { return g.word() + " " + g.word() })},
		{"title-words", pick(1000, func() string { // three words of a real name: an AND that hits
			ws := Keywords(ix.files[g.r.IntN(len(ix.files))].name)
			return strings.Join(ws[:min(3, len(ws))], " ")
		})},
		{"long-1000", pick(100, func() string { // 1,000 characters of name words: a worst case
			var sb strings.Builder
			for sb.Len() < 1000 {
				w := g.word()
				sb.WriteString(w[:min(2+g.r.IntN(3), len(w))])
				sb.WriteByte(' ')
			}
			return sb.String()[:1000]
		})},
		{"miss", pick(1000, func() string { return "zzq" + g.word() })},
		{"sha1", func() []*protocol.Query {
			var h protocol.SHA1
			h[0] = 7
			return []*protocol.Query{roundTrip(b, protocol.NewQuery("", 0, h))}
		}()},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			lat := make([]time.Duration, 1<<16) // the last 65,536 calls
			hits, n := 0, 0
			for b.Loop() {
				q := c.qs[n%len(c.qs)]
				t0 := time.Now()
				hits += len(l.Match(q))
				lat[n%len(lat)] = time.Since(t0)
				n++
			}
			lat = lat[:min(n, len(lat))]
			if len(lat) > 0 {
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
				b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
				b.ReportMetric(float64(hits)/float64(n), "hits/op")
			}
		})
	}
}

// BenchmarkBuildIndex100k times building the keyword index of 100,000
// names (what a rescan does when a name is added or removed).
func BenchmarkBuildIndex100k(b *testing.B) {
	recs, _ := benchRecs(benchFiles)
	b.ReportAllocs()
	var ix *index
	for b.Loop() {
		ix = buildIndex(recs)
	}
	b.ReportMetric(float64(len(ix.vocab)), "words")
	b.ReportMetric(float64(len(ix.post)), "postings")
}

// BenchmarkHash1GiB times our hasher (hashFile, as HashAll runs it) on a
// 1 GiB file, and sha1sum on the same file for comparison. The file was
// just written, so both read it from the page cache: this is the CPU cost
// of hashing, not the disk's speed.
func BenchmarkHash1GiB(b *testing.B) {
	const size = 1 << 30
	dir := b.TempDir()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		b.Skip("statfs:", err)
	}
	if free := int64(st.Bavail) * int64(st.Bsize); free < 3*size {
		b.Skipf("only %d MiB free in %s", free>>20, dir)
	}
	path := filepath.Join(dir, "big.bin")
	want := writeRandomFile(b, path, size)
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}

	buf := make([]byte, hashBufSize)
	var done, read atomic.Int64
	b.SetBytes(size)
	n := 0
	for b.Loop() {
		n++
		h, err := hashFile(context.Background(), context.Background(), path, size, fi.ModTime(), buf, &done, &read)
		if err != nil {
			b.Fatal(err)
		}
		if h != want {
			b.Fatal("wrong hash")
		}
	}
	ours := float64(n) * size / b.Elapsed().Seconds() / 1e6
	b.ReportMetric(ours, "ours-MB/s")

	if _, err := exec.LookPath("sha1sum"); err != nil {
		b.Log("sha1sum not found; skipping the comparison")
		return
	}
	t0 := time.Now()
	out, err := exec.Command("sha1sum", path).Output()
	d := time.Since(t0)
	if err != nil {
		b.Fatal(err)
	}
	if got := strings.Fields(string(out)); len(got) == 0 || got[0] != hex.EncodeToString(want[:]) {
		b.Fatalf("sha1sum says %q", out)
	}
	b.ReportMetric(size/d.Seconds()/1e6, "sha1sum-MB/s")
}

// writeRandomFile writes size pseudo-random bytes and returns their SHA-1.
func writeRandomFile(b *testing.B, path string, size int) protocol.SHA1 {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	h := sha1.New()
	r := rand.New(rand.NewPCG(1, 2))
	chunk := make([]byte, 1<<20)
	for off := 0; off < size; off += len(chunk) {
		for i := 0; i+8 <= len(chunk); i += 8 {
			v := r.Uint64()
			for k := 0; k < 8; k++ {
				chunk[i+k] = byte(v >> (8 * k))
			}
		}
		w.Write(chunk)
		h.Write(chunk)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	var out protocol.SHA1
	h.Sum(out[:0])
	return out
}
