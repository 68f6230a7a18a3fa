package ultrapeer

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"gnutella/protocol"
)

func TestTableBasics(t *testing.T) {
	for _, bits := range []uint8{0, 1, 3, 6, 7, 16} {
		tb := NewTable(bits)
		if tb.Bits() != bits || tb.Size() != 1<<bits || tb.Count() != 0 || tb.Fill() != 0 {
			t.Fatalf("NewTable(%d): bits %d size %d count %d", bits, tb.Bits(), tb.Size(), tb.Count())
		}
		last := uint32(tb.Size() - 1)
		tb.Set(0)
		tb.Set(last)
		tb.Set(last) // twice: still one slot
		if !tb.Has(0) || !tb.Has(last) || tb.Has(last+1) || tb.Has(1<<31) {
			t.Fatalf("bits %d: Has wrong", bits)
		}
		want := 2
		if last == 0 {
			want = 1
		}
		if tb.Count() != want || tb.Fill() != float64(want)/float64(tb.Size()) {
			t.Fatalf("bits %d: count %d fill %v", bits, tb.Count(), tb.Fill())
		}
		c := tb.Clone()
		if !c.Equal(tb) {
			t.Fatal("clone differs")
		}
		if bits >= 2 {
			c.Set(1)
			if c.Equal(tb) || tb.Has(1) {
				t.Fatal("clone shares storage")
			}
		}
	}
	if NewTable(4).Equal(NewTable(5)) {
		t.Error("tables of different sizes are equal")
	}
	var nilT *Table
	if !nilT.Equal(nil) || nilT.Equal(NewTable(1)) || NewTable(1).Equal(nil) {
		t.Error("Equal with nil")
	}
	mustPanic(t, "Set out of range", func() { NewTable(3).Set(8) })
	mustPanic(t, "NewTable too big", func() { NewTable(MaxTableBits + 1) })
	mustPanic(t, "Or of different sizes", func() { NewTable(3).Or(NewTable(4)) })
	if s := NewTable(16).String(); s != "QRPTable 2^16 slots, 0 present (0.00%)" {
		t.Errorf("String = %q", s)
	}
}

func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s: no panic", what)
		}
	}()
	f()
}

func TestAddKeywordAndURN(t *testing.T) {
	tb := NewTable(16)
	tb.AddKeyword("")
	if tb.Count() != 0 {
		t.Error("the empty word was inserted")
	}
	tb.AddKeyword("Zebra")
	if !tb.Has(QRPHash("zebra", 16)) || tb.Count() != 1 {
		t.Error("AddKeyword")
	}
	h := protocol.SHA1{1, 2, 3}
	tb.AddURN(h)
	if !tb.Has(QRPHash(h.String(), 16)) || !tb.Has(QRPHash(strings.ToLower(h.String()), 16)) {
		t.Error("AddURN")
	}
}

// The extraction rule: every prefix of at least 3 bytes on a character
// boundary, words under 3 bytes skipped.
func TestAddNameRule(t *testing.T) {
	tb := NewTable(20)
	tb.AddName([]string{"zebraquokka", "mp3", "of", "a", "éa"})
	want := []string{"zeb", "zebr", "zebra", "zebraq", "zebraqu", "zebraquo", "zebraquok", "zebraquokk", "zebraquokka", "mp3", "éa"}
	for _, w := range want {
		if !tb.Has(QRPHash(w, 20)) {
			t.Errorf("%q missing", w)
		}
	}
	if tb.Count() != len(want) { // 2^20 slots: no collision among these
		t.Errorf("%d slots present, want %d (no 'ze', 'of', 'a', 'é')", tb.Count(), len(want))
	}
}

// libraryAnswers is our library's rule: every query word is equal to or a
// prefix of a word of the name.
func libraryAnswers(name, query []string) bool {
	if len(query) == 0 {
		return false
	}
	for _, q := range query {
		ok := false
		for _, w := range name {
			if strings.HasPrefix(w, q) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// gtkNameKeywords is gtk-gnutella 1.2.3's rule, as its tables in testdata
// show: every word, and its prefixes down to 4 characters, removing at most
// 5 (see TestGtkGnutellaTables).
func gtkNameKeywords(words []string) []string {
	var out []string
	for _, w := range words {
		out = append(out, w)
		n := utf8.RuneCountInString(w)
		r := []rune(w)
		for cut := 1; cut <= 5 && n-cut >= 4; cut++ {
			out = append(out, string(r[:n-cut]))
		}
	}
	return out
}

// limeNameKeywords is LimeWire's rule: the word and, over 4 characters, the
// word minus 1 and minus 2 characters.
func limeNameKeywords(words []string) []string {
	var out []string
	for _, w := range words {
		out = append(out, w)
		if r := []rune(w); len(r) > 4 {
			out = append(out, string(r[:len(r)-1]), string(r[:len(r)-2]))
		}
	}
	return out
}

// The table never says "no" to a query the library answers; gtk-gnutella's
// and LimeWire's rules do.
func TestAddNameNeverFalseNegative(t *testing.T) {
	vocab := []string{"zebraquokka", "interop", "alpha", "txt", "mp3", "café", "naïve", "日本語", "𝄞music",
		"straße", "a", "of", "the", "live", "2024", "x", "déjà", "vu", "ab", "abc", "abcd", "rémi"}
	rng := rand.New(rand.NewPCG(1, 2))
	var names [][]string
	for i := 0; i < 200; i++ {
		n := 1 + rng.IntN(5)
		name := make([]string, n)
		for j := range name {
			name[j] = vocab[rng.IntN(len(vocab))]
		}
		names = append(names, name)
	}
	gtk, lime := NewTable(16), NewTable(16)
	for _, n := range names {
		for _, w := range gtkNameKeywords(n) {
			gtk.AddKeyword(w)
		}
		for _, w := range limeNameKeywords(n) {
			lime.AddKeyword(w)
		}
	}
	for _, bits := range []uint8{8, 12, 16} {
		tb := BuildTable(bits, names, nil)
		for i := 0; i < 20000; i++ {
			name := names[rng.IntN(len(names))]
			query := make([]string, 1+rng.IntN(3))
			for j := range query { // a prefix of a word of the name, on a rune boundary
				w := []rune(name[rng.IntN(len(name))])
				query[j] = string(w[:1+rng.IntN(len(w))])
			}
			if !libraryAnswers(name, query) {
				t.Fatalf("test bug: %q does not answer %q", name, query)
			}
			if hashable(query) && !tb.Matches(query, nil) {
				t.Fatalf("2^%d table says no to %q, which the library answers for %q", bits, query, name)
			}
		}
	}
	// With gtk-gnutella's or LimeWire's rule, the same property fails.
	missGtk, missLime := 0, 0
	for i := 0; i < 20000; i++ {
		name := names[rng.IntN(len(names))]
		w := []rune(name[rng.IntN(len(name))])
		q := []string{string(w[:1+rng.IntN(len(w))])}
		if hashable(q) && !gtk.Matches(q, nil) {
			missGtk++
		}
		if hashable(q) && !lime.Matches(q, nil) {
			missLime++
		}
	}
	t.Logf("queries the library answers but the table refuses: gtk-gnutella's rule %d, LimeWire's %d, ours 0 (of 20000)", missGtk, missLime)
	if missGtk == 0 || missLime == 0 {
		t.Error("expected gtk-gnutella's and LimeWire's rules to refuse some answered queries")
	}
	// The counter-examples: "zebra" and "zeb" for a file named "zebraquokka".
	name := []string{"zebraquokka"}
	g := NewTable(20)
	for _, w := range gtkNameKeywords(name) {
		g.AddKeyword(w)
	}
	l := NewTable(20)
	for _, w := range limeNameKeywords(name) {
		l.AddKeyword(w)
	}
	if g.Matches([]string{"zebra"}, nil) || l.Matches([]string{"zebra"}, nil) || g.Matches([]string{"zeb"}, nil) {
		t.Error("expected gtk's and LimeWire's rules to miss 'zebra'/'zeb' for 'zebraquokka'")
	}
	if !BuildTable(20, [][]string{name}, nil).Matches([]string{"zebra"}, nil) {
		t.Error("our rule misses 'zebra'")
	}
}

func hashable(words []string) bool {
	for _, w := range words {
		if len(w) >= 3 {
			return true
		}
	}
	return false
}

func TestMatchesRules(t *testing.T) {
	h1, h2 := protocol.SHA1{1}, protocol.SHA1{2}
	tb := BuildTable(16, [][]string{{"zebraquokka", "interop", "alpha", "txt"}}, []protocol.SHA1{h1})
	for _, c := range []struct {
		words []string
		urns  []protocol.SHA1
		want  bool
	}{
		{[]string{"zebraquokka"}, nil, true},
		{[]string{"zebra", "alpha"}, nil, true},                  // AND of prefixes
		{[]string{"zebra", "alpha", "nonsenseword"}, nil, false}, // one word missing
		{[]string{"ZEBRA"}, nil, true},                           // case-insensitive
		{[]string{"zebra", "of", "a"}, nil, true},                // short words are not looked up
		{[]string{"of", "a"}, nil, false},                        // nothing hashable
		{nil, nil, false},
		{[]string{""}, nil, false},
		{nil, []protocol.SHA1{h1}, true},
		{nil, []protocol.SHA1{h2}, false},
		{nil, []protocol.SHA1{h2, h1}, true},                  // any URN
		{[]string{"nonsenseword"}, []protocol.SHA1{h1}, true}, // a URN is enough
		{[]string{"zebra"}, []protocol.SHA1{h2}, true},        // so are the words (keywords OR URN)
		{[]string{"nonsenseword"}, []protocol.SHA1{h2}, false},
		{[]string{"of"}, []protocol.SHA1{h2}, false},
	} {
		if got := tb.Matches(c.words, c.urns); got != c.want {
			t.Errorf("Matches(%q, %d URNs) = %v, want %v", c.words, len(c.urns), got, c.want)
		}
	}
	q := NewQRPQuery([]string{"zebra", "zebra", "ZEBRA", "ab"}, nil)
	if len(q.words) != 1 || !q.Routable() || NewQRPQuery([]string{"ab"}, nil).Routable() {
		t.Errorf("NewQRPQuery words %v", q.words)
	}
	var nilT *Table
	if nilT.MatchesQuery(q) {
		t.Error("a nil table matches")
	}
	// The same prepared query works on tables of every size.
	for bits := uint8(0); bits <= 20; bits++ {
		if !BuildTable(bits, [][]string{{"zebraquokka"}}, nil).MatchesQuery(q) {
			t.Errorf("2^%d: prepared query misses", bits)
		}
	}
}

func randomWords(rng *rand.Rand, n int) []string {
	out := make([]string, n)
	for i := range out {
		b := make([]byte, 3+rng.IntN(8))
		for j := range b {
			b[j] = byte('a' + rng.IntN(26))
		}
		out[i] = string(b)
	}
	return out
}

func TestScale(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	words := randomWords(rng, 300)
	for _, from := range []uint8{0, 3, 6, 8, 12, 16} {
		tb := NewTable(from)
		for _, w := range words {
			tb.AddKeyword(w)
		}
		for _, to := range []uint8{0, 1, 2, 5, 6, 7, 10, 12, 16, 18, 22} {
			s := tb.Scale(to)
			if s.Bits() != to {
				t.Fatalf("Scale(%d).Bits() = %d", to, s.Bits())
			}
			for _, w := range words {
				if !s.Matches([]string{w}, nil) {
					t.Fatalf("2^%d → 2^%d lost %q", from, to, w)
				}
			}
			// Exact: each new slot is the OR of the old slots it overlaps.
			for slot := 0; slot < s.Size() && slot < 1<<16; slot++ {
				var want bool
				if to <= from {
					d := from - to
					for o := slot << d; o < (slot+1)<<d; o++ {
						want = want || tb.Has(uint32(o))
					}
				} else {
					want = tb.Has(uint32(slot >> (to - from)))
				}
				if s.Has(uint32(slot)) != want {
					t.Fatalf("2^%d → 2^%d: slot %d is %v", from, to, slot, !want)
				}
			}
			// Up then down gives the table back.
			if to >= from && !s.Scale(from).Equal(tb) {
				t.Fatalf("2^%d → 2^%d → back differs", from, to)
			}
		}
	}
}

func TestOrAggregate(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	agg := NewTable(16)
	var all []string
	for _, bits := range []uint8{12, 14, 16, 17, 20} { // leaves of mixed sizes
		w := randomWords(rng, 50)
		all = append(all, w...)
		leaf := BuildTable(bits, [][]string{w}, nil)
		agg.Or(leaf.Scale(16))
	}
	for _, w := range all {
		if !agg.Matches([]string{w}, nil) {
			t.Fatalf("aggregate lost %q", w)
		}
	}
	a, b := NewTable(8), NewTable(8)
	a.Set(1)
	b.Set(200)
	a.Or(b)
	if !a.Has(1) || !a.Has(200) || a.Count() != 2 || b.Count() != 1 {
		t.Error("Or")
	}
}

// TestFillCost measures what the prefix rule costs in slots against
// gtk-gnutella's and LimeWire's rules, and checks that it inserts everything
// gtk-gnutella's rule does apart from words under 3 bytes.
func TestFillCost(t *testing.T) {
	for _, n := range []int{100, 1000, 10000} {
		names, _ := newCorpus(1).library(n)
		ours := BuildTable(16, names, nil)
		gtk, lime := NewTable(16), NewTable(16)
		for _, nm := range names {
			for _, w := range gtkNameKeywords(nm) {
				gtk.AddKeyword(w)
				if len(w) >= 3 && !ours.Has(QRPHash(w, 16)) {
					t.Fatalf("gtk-gnutella's keyword %q is not in our table", w)
				}
			}
			for _, w := range limeNameKeywords(nm) {
				lime.AddKeyword(w)
			}
		}
		t.Logf("%6d files, 2^16 slots: ours %5d slots (%5.2f%%), gtk-gnutella's rule %5d (%5.2f%%), LimeWire's %5d (%5.2f%%)",
			n, ours.Count(), 100*ours.Fill(), gtk.Count(), 100*gtk.Fill(), lime.Count(), 100*lime.Fill())
	}
}

// A compacted table answers every question as its dense original does, and
// turns dense again when slots are added to it. Compact keeps tables whose
// slot list would not be smaller.
func TestCompactTable(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	c := newCorpus(5)
	for _, bits := range []uint8{0, 3, 8, 12, 16, 18} {
		for _, fill := range []float64{0, 0.001, 0.01, 0.05} {
			dense := randomTable(rng, bits, fill)
			sparse := dense.Clone()
			sparse.Compact()
			n := dense.Count()
			if wantSparse := n*4 < denseWords(bits)*8; (sparse.w == nil) != wantSparse {
				t.Fatalf("2^%d, %d slots: sparse %v, want %v", bits, n, sparse.w == nil, wantSparse)
			}
			per := int64(4)
			if bits <= 16 {
				per = 2
			}
			if sorted := slices.IsSorted(sparse.s) && slices.IsSorted(sparse.h); sparse.w == nil && (sparse.Bytes() != per*int64(n) || !sorted) {
				t.Fatalf("2^%d, %d slots: %d bytes, sorted %v", bits, n, sparse.Bytes(), sorted)
			}
			if sparse.Count() != n || !sparse.Equal(dense) || !dense.Equal(sparse) || !sparse.Clone().Equal(dense) {
				t.Fatalf("2^%d, %d slots: compacted table differs", bits, n)
			}
			for s := uint32(0); s < uint32(dense.Size())+2; s++ {
				if sparse.Has(s) != dense.Has(s) {
					t.Fatalf("2^%d: Has(%d) differs", bits, s)
				}
			}
			for range 50 {
				q := NewQRPQuery([]string{c.word(), prefix3(c.word())}[:1+rng.IntN(2)], []protocol.SHA1{c.urn()})
				if sparse.MatchesQuery(q) != dense.MatchesQuery(q) {
					t.Fatalf("2^%d: a query matches differently", bits)
				}
			}
			for _, to := range []uint8{bits, bits / 2, bits + 2} {
				if !sparse.Scale(to).Equal(dense.Scale(to)) {
					t.Fatalf("2^%d scaled to 2^%d differs", bits, to)
				}
			}
			other := randomTable(rng, bits, 0.002)
			if !slices.EqualFunc(sparse.Messages(7, 512), dense.Messages(7, 512), samePayload) ||
				!slices.EqualFunc(other.PatchFrom(sparse, 7, 512), other.PatchFrom(dense, 7, 512), samePayload) {
				t.Fatalf("2^%d: messages differ", bits)
			}
			a, b := other.Clone(), other.Clone()
			a.Or(sparse)
			b.Or(dense)
			if !a.Equal(b) {
				t.Fatalf("2^%d: Or of the compacted table differs", bits)
			}
			into := sparse.Clone()
			into.Or(other)
			if !into.Equal(b) || into.w == nil {
				t.Fatalf("2^%d: Or into a compacted table differs, or left it sparse", bits)
			}
			slot := uint32(rng.IntN(dense.Size()))
			sparse.Set(slot)
			dense.Set(slot)
			if !sparse.Equal(dense) || sparse.w == nil {
				t.Fatalf("2^%d: Set on a compacted table", bits)
			}
		}
	}
}

func samePayload(a, b protocol.Payload) bool {
	x, _ := a.AppendTo(nil)
	y, _ := b.AppendTo(nil)
	return slices.Equal(x, y)
}
