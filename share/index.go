package share

import (
	"slices"
	"sort"
)

// index is an immutable keyword index over a snapshot of the library's
// files. It is rebuilt when the set of names changes and swapped in whole,
// so Match reads it without copying.
//
// Words are numbered by their rank in the sorted vocabulary, so the words
// that start with a given prefix form one contiguous id range [lo, hi),
// found by two binary searches. postOff doubles as a running total of
// posting lengths: postOff[hi]-postOff[lo] is the number of postings the
// range holds, which is how Match picks the cheapest word to start from.
type index struct {
	files   []*rec   // sorted by File.Index; positions are "file numbers"
	vocab   []string // sorted, distinct
	postOff []int32  // len(vocab)+1; word w's postings: post[postOff[w]:postOff[w+1]]
	post    []int32  // file numbers, ascending within each word
	wordOff []int32  // len(files)+1; file f's words: words[wordOff[f]:wordOff[f+1]]
	words   []int32  // word ids, ascending within each file
	media   []uint8  // media bits per file number
}

// wordRange is the id range of the vocabulary words a query word is a
// prefix of.
type wordRange struct{ lo, hi int32 }

// buildIndex indexes recs, which must be sorted by index. It reads only the
// immutable fields of each rec (index, name).
func buildIndex(recs []*rec) *index {
	ix := &index{files: recs, media: make([]uint8, len(recs))}
	ids := make(map[string]int32, len(recs))
	var vocab []string
	ix.wordOff = make([]int32, 1, len(recs)+1)
	ix.words = make([]int32, 0, len(recs)*6)
	var buf []byte
	for f, r := range recs {
		ix.media[f] = mediaOf(r.name)
		buf = appendNorm(buf[:0], r.name)
		first := len(ix.words)
		forEachWord(buf, func(w []byte) {
			id, ok := ids[string(w)]
			if !ok {
				id = int32(len(vocab))
				s := string(w)
				vocab = append(vocab, s)
				ids[s] = id
			}
			if !slices.Contains(ix.words[first:], id) {
				ix.words = append(ix.words, id)
			}
		})
		ix.wordOff = append(ix.wordOff, int32(len(ix.words)))
	}

	// Renumber the words by rank.
	order := make([]int32, len(vocab))
	for i := range order {
		order[i] = int32(i)
	}
	sort.Slice(order, func(a, b int) bool { return vocab[order[a]] < vocab[order[b]] })
	rank := make([]int32, len(vocab))
	ix.vocab = make([]string, len(vocab))
	for r, old := range order {
		rank[old] = int32(r)
		ix.vocab[r] = vocab[old]
	}
	counts := make([]int32, len(vocab)+1)
	for i, w := range ix.words {
		ix.words[i] = rank[w]
		counts[rank[w]+1]++
	}
	for f := range recs {
		slices.Sort(ix.words[ix.wordOff[f]:ix.wordOff[f+1]])
	}

	// Postings, by a counting sort of (word, file) pairs.
	for w := 1; w < len(counts); w++ {
		counts[w] += counts[w-1]
	}
	ix.postOff = counts
	ix.post = make([]int32, len(ix.words))
	fill := slices.Clone(counts[:len(vocab)])
	for f := range recs {
		for _, w := range ix.words[ix.wordOff[f]:ix.wordOff[f+1]] {
			ix.post[fill[w]] = int32(f)
			fill[w]++
		}
	}
	return ix
}

// prefixRange returns the ids of the vocabulary words that start with w.
// The range is empty when none does; when w itself is a word, it is lo.
func (ix *index) prefixRange(w []byte) wordRange {
	v := ix.vocab
	// lo: first word >= w.
	lo, hi := 0, len(v)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if v[m] < string(w) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	// end: first word from lo on that does not start with w.
	a, b := lo, len(v)
	for a < b {
		m := int(uint(a+b) >> 1)
		if hasPrefix(v[m], w) {
			a = m + 1
		} else {
			b = m
		}
	}
	return wordRange{int32(lo), int32(a)}
}

func hasPrefix(s string, w []byte) bool {
	return len(s) >= len(w) && s[:len(w)] == string(w)
}

// cost is the number of postings in the range.
func (ix *index) cost(r wordRange) int32 { return ix.postOff[r.hi] - ix.postOff[r.lo] }

// firstIn returns the first of the (ascending) word ids that lies in r, or
// -1.
func firstIn(ws []int32, r wordRange) int32 {
	for _, w := range ws {
		if w >= r.hi {
			break
		}
		if w >= r.lo {
			return w
		}
	}
	return -1
}

// search calls yield with the file number of each file that has, for every
// range, a word in it, until yield returns false. The file numbers come
// grouped by the words of the cheapest range in vocabulary order, so files
// holding that query word whole come before those holding a longer word
// it is a prefix of; within a word they ascend. Each file comes once.
func (ix *index) search(ranges []wordRange, yield func(f int32) bool) {
	if len(ranges) == 0 {
		return
	}
	d := 0
	for k := 1; k < len(ranges); k++ {
		if ix.cost(ranges[k]) < ix.cost(ranges[d]) {
			d = k
		}
	}
	drv := ranges[d]
	for w := drv.lo; w < drv.hi; w++ {
	posting:
		for _, f := range ix.post[ix.postOff[w]:ix.postOff[w+1]] {
			fw := ix.words[ix.wordOff[f]:ix.wordOff[f+1]]
			if drv.hi-drv.lo > 1 && firstIn(fw, drv) != w {
				continue // the file was (or will be) yielded under an earlier word
			}
			for k, r := range ranges {
				if k != d && firstIn(fw, r) < 0 {
					continue posting
				}
			}
			if !yield(f) {
				return
			}
		}
	}
}
