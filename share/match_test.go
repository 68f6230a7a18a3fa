package share

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gnutella/protocol"
)

var matchNames = []string{
	"Café del Mar - Sunset.mp3",
	"cafe_racer.avi",
	"zebra_quokka_alpha.txt",
	"zebraquokka_interop_alpha.txt",
	"Red Kangaroo - Outback.avi",
	"red_panda.jpg",
	"kangaroo_court.txt",
	"Straße nach Süden.pdf",
	"ＦＵＬＬＷＩＤＴＨ Notes.txt",
	"The.Matrix.1999.720p.x264.mkv",
	"emu_sunrise.mp3",
	"emulator-setup.exe",
	"東京タワー 夜景.jpg",
	"a b c.txt",
}

// matchLib shares matchNames (each with its own content) and hashes them.
func matchLib(t testing.TB, cfg Config) *Library {
	t.Helper()
	root := realDir(t)
	for i, n := range matchNames {
		mkfile(t, root, "d"+strconv.Itoa(i%3)+"/"+n, "content of "+n)
	}
	cfg.Dirs = []string{root}
	l := openLib(t, cfg)
	rescan(t, l)
	if err := l.HashAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	return l
}

func TestMatchTable(t *testing.T) {
	l := matchLib(t, Config{})
	long := strings.Repeat("quokka ", 1000/7)
	cases := []struct {
		q    string
		want []string
	}{
		// whole words, any case
		{"quokka", []string{"zebra_quokka_alpha.txt"}},
		{"QUOKKA", []string{"zebra_quokka_alpha.txt"}},
		{"zebraquokka", []string{"zebraquokka_interop_alpha.txt"}},
		// prefixes of words, but not the middle of a word
		{"quok", []string{"zebra_quokka_alpha.txt"}},
		{"okka", nil},
		{"zebra", []string{"zebra_quokka_alpha.txt", "zebraquokka_interop_alpha.txt"}},
		{"alpha", []string{"zebra_quokka_alpha.txt", "zebraquokka_interop_alpha.txt"}},
		{"emu", []string{"emu_sunrise.mp3", "emulator-setup.exe"}}, // the prefix rule's price
		// accents and case, both ways
		{"cafe", []string{"Café del Mar - Sunset.mp3", "cafe_racer.avi"}},
		{"Café", []string{"Café del Mar - Sunset.mp3", "cafe_racer.avi"}},
		{"CAFE\u0301", []string{"Café del Mar - Sunset.mp3", "cafe_racer.avi"}},
		{"strasse suden", []string{"Straße nach Süden.pdf"}},
		{"STRASSE", []string{"Straße nach Süden.pdf"}},
		{"fullwidth", []string{"ＦＵＬＬＷＩＤＴＨ Notes.txt"}},
		{"ｆｕｌｌｗｉｄｔｈ", []string{"ＦＵＬＬＷＩＤＴＨ Notes.txt"}},
		{"東京タワー", []string{"東京タワー 夜景.jpg"}},
		{"東京", []string{"東京タワー 夜景.jpg"}},
		// AND of every word, in any order, punctuation ignored
		{"red kangaroo", []string{"Red Kangaroo - Outback.avi"}},
		{"kangaroo, RED!!!", []string{"Red Kangaroo - Outback.avi"}},
		{"red", []string{"Red Kangaroo - Outback.avi", "red_panda.jpg"}},
		{"kangaroo", []string{"Red Kangaroo - Outback.avi", "kangaroo_court.txt"}},
		{"cafe sunset", []string{"Café del Mar - Sunset.mp3"}},
		{"cafe sunset xyzzy", nil},
		{"matrix 1999", []string{"The.Matrix.1999.720p.x264.mkv"}},
		{"the.matrix-1999", []string{"The.Matrix.1999.720p.x264.mkv"}},
		{"mkv", []string{"The.Matrix.1999.720p.x264.mkv"}},
		// too short, nonsense, paths
		{"", nil},
		{" ", nil},
		{"a", nil},
		{"a b c", nil},
		{"x", nil},
		{"xyzzy", nil},
		{"qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq", nil},
		{"../../etc/passwd", nil},
		{"../d0/quokka", nil}, // "d0" is a folder name: folders are not searched, so the AND fails
		{"../quokka", []string{"zebra_quokka_alpha.txt"}},
		{"d0", nil},
		// 1,000-character queries
		{long, []string{"zebra_quokka_alpha.txt"}},
		{strings.Repeat("q", 1000), nil},
		{long + " xyzzy", nil},
		// invalid UTF-8 is a separator
		{"\xff\xfequokka\xc3", []string{"zebra_quokka_alpha.txt"}},
		{"\xff\xfe\xfd", nil},
		{"red\xffkangaroo", []string{"Red Kangaroo - Outback.avi"}},
	}
	for _, c := range cases {
		if got := names(l.Search(c.q)); !slices.Equal(got, c.want) {
			t.Errorf("Search(%.40q) = %q, want %q", c.q, got, c.want)
		}
		// The same through a Query, encoded and decoded.
		q := roundTrip(t, protocol.NewQuery(c.q, 0))
		if q == nil {
			continue // a NUL-free text always encodes; nil only for texts with NUL
		}
		if got := names(l.Match(q)); !slices.Equal(got, c.want) {
			t.Errorf("Match(%.40q) = %q, want %q", c.q, got, c.want)
		}
	}
}

// roundTrip encodes q and decodes it back, as a query from the wire.
func roundTrip(t testing.TB, q *protocol.Query) *protocol.Query {
	t.Helper()
	b, err := q.AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := protocol.DecodeQuery(b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestMatchOrderExactWordFirst(t *testing.T) {
	root := realDir(t)
	mkfile(t, root, "emulator.exe", "1")
	mkfile(t, root, "emus.txt", "2")
	mkfile(t, root, "emu.mp3", "3")
	l := openLib(t, Config{Dirs: []string{root}})
	rescan(t, l)
	got := l.Search("emu")
	if len(got) != 3 || got[0].Name != "emu.mp3" {
		t.Errorf("Search(emu) = %q", names(got))
	}
}

func TestMatchURN(t *testing.T) {
	l := matchLib(t, Config{})
	quokka := l.Search("quokka")[0]
	panda := l.Search("panda")[0]
	if quokka.SHA1.IsZero() || panda.SHA1.IsZero() {
		t.Fatal("not hashed")
	}
	var unknown protocol.SHA1
	unknown[0] = 1

	withGGEP := func(search string, ext protocol.Extension) *protocol.Query {
		q := protocol.NewQuery(search, 0)
		q.Extensions = append(q.Extensions, protocol.GGEPItem(protocol.GGEP{ext}))
		return q
	}
	bitprint := protocol.NewQuery("", 0)
	bitprint.Extensions = protocol.ExtensionArea{protocol.TextItem("urn:bitprint:" + panda.SHA1.Base32() + "." + strings.Repeat("A", 39))}

	cases := []struct {
		name string
		q    *protocol.Query
		want []string
	}{
		{"hash query", protocol.NewQuery("", 0, quokka.SHA1), []string{quokka.Name}},
		{"LimeWire's backslash", protocol.NewQuery(`\`, 0, quokka.SHA1), []string{quokka.Name}},
		{"two URNs, one known", protocol.NewQuery("", 0, unknown, panda.SHA1), []string{panda.Name}},
		{"two URNs, both known", protocol.NewQuery("", 0, quokka.SHA1, panda.SHA1), []string{panda.Name, quokka.Name}},
		{"unknown URN", protocol.NewQuery("", 0, unknown), nil},
		{"URN OR keywords", protocol.NewQuery("kangaroo", 0, panda.SHA1), []string{"Red Kangaroo - Outback.avi", "kangaroo_court.txt", "red_panda.jpg"}},
		{"URN and nonsense", protocol.NewQuery("xyzzy", 0, quokka.SHA1), []string{quokka.Name}},
		{"URN also found by name, once", protocol.NewQuery("quokka", 0, quokka.SHA1), []string{quokka.Name}},
		{"GGEP H", withGGEP("", protocol.Extension{ID: "H", Data: protocol.GGEPHash(quokka.SHA1)}), []string{quokka.Name}},
		{"GGEP u", withGGEP("", protocol.Extension{ID: "u", Data: protocol.GGEPURN(panda.SHA1)}), []string{panda.Name}},
		{"bitprint", bitprint, []string{panda.Name}},
		{"bare urn: asks for URNs, is no hash", withText("quokka", "urn:"), []string{quokka.Name}},
	}
	for _, c := range cases {
		got := l.Match(roundTrip(t, c.q))
		if !slices.Equal(names(got), c.want) {
			t.Errorf("%s: %q, want %q", c.name, names(got), c.want)
		}
		for _, f := range got {
			if f.SHA1.IsZero() {
				t.Errorf("%s: %s has no hash", c.name, f.Name)
			}
		}
	}
	// URN matches come first.
	if got := l.Match(protocol.NewQuery("kangaroo", 0, panda.SHA1)); got[0].Name != panda.Name {
		t.Errorf("URN match not first: %q", names(got))
	}
	// Search takes a URN as text too.
	if got := names(l.Search(" " + strings.ToLower(quokka.SHA1.String()) + " ")); !slices.Equal(got, []string{quokka.Name}) {
		t.Errorf("Search(urn) = %q", got)
	}
}

func withText(search, text string) *protocol.Query {
	q := protocol.NewQuery(search, 0)
	q.Extensions = append(q.Extensions, protocol.TextItem(text))
	return q
}

func TestMatchMediaMask(t *testing.T) {
	l := matchLib(t, Config{})
	withMask := func(search string, mask ...byte) *protocol.Query {
		q := protocol.NewQuery(search, 0)
		q.Extensions = append(q.Extensions, protocol.GGEPItem(protocol.GGEP{{ID: "M", Data: mask}}))
		return q
	}
	panda := l.Search("panda")[0]
	cases := []struct {
		q    *protocol.Query
		want []string
	}{
		{withMask("red", MediaVideo), []string{"Red Kangaroo - Outback.avi"}},
		{withMask("red", MediaImage), []string{"red_panda.jpg"}},
		{withMask("red", MediaImage|MediaVideo), []string{"Red Kangaroo - Outback.avi", "red_panda.jpg"}},
		{withMask("red", MediaAudio), nil},
		{withMask("red", 0x01), []string{"Red Kangaroo - Outback.avi", "red_panda.jpg"}}, // unknown bits: no filter
		{withMask("emu", MediaWindows, 0), []string{"emulator-setup.exe"}},               // two-byte LE value
		{withMask("", MediaAudio), nil},
	}
	q := withMask("", MediaVideo)
	q.Extensions = append(q.Extensions, protocol.TextItem(panda.SHA1.String()))
	cases = append(cases, struct {
		q    *protocol.Query
		want []string
	}{q, nil})
	for i, c := range cases {
		if got := names(l.Match(roundTrip(t, c.q))); !slices.Equal(got, c.want) {
			t.Errorf("case %d (%v): %q, want %q", i, c.q, got, c.want)
		}
	}
}

func TestMaxResults(t *testing.T) {
	root := realDir(t)
	for i := 0; i < 120; i++ {
		mkfile(t, root, "song "+strconv.Itoa(i)+".mp3", strconv.Itoa(i))
	}
	for _, c := range []struct{ max, want int }{{0, DefaultMaxResults}, {-1, DefaultMaxResults}, {10, 10}, {500, 120}} {
		l := openLib(t, Config{Dirs: []string{root}, MaxResults: c.max})
		rescan(t, l)
		got := l.Search("song")
		if len(got) != c.want {
			t.Errorf("MaxResults %d: %d hits, want %d", c.max, len(got), c.want)
		}
		seen := map[uint32]bool{}
		for _, f := range got {
			if seen[f.Index] {
				t.Errorf("MaxResults %d: %s twice", c.max, f.Name)
			}
			seen[f.Index] = true
		}
		l.Close()
	}
}

func TestMatchAllocs(t *testing.T) {
	l := matchLib(t, Config{})
	q := roundTrip(t, protocol.NewQuery("red kangaroo", protocol.QueryFlagGGEPH))
	n := testing.AllocsPerRun(100, func() { l.Match(q) })
	if n > 1 {
		t.Errorf("Match allocates %v times, want at most 1 (the result)", n)
	}
	q = roundTrip(t, protocol.NewQuery("xyzzy", 0))
	if n := testing.AllocsPerRun(100, func() { l.Match(q) }); n != 0 {
		t.Errorf("Match without hits allocates %v times", n)
	}
}

// gtkQueries decodes the Queries that gtk-gnutella 1.2.3 sent in the
// recordings of ../protocol/testdata, with protocol.NewReader after the
// handshake text.
func gtkQueries(t *testing.T) []*protocol.Query {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "protocol", "testdata", "gtk-gnutella", "*.bin"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no recordings: %v", err)
	}
	var out []*protocol.Query
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		off := handshakeEnd(b)
		if off == 0 {
			continue // the HTTP-only recordings
		}
		r := protocol.NewReader(bytes.NewReader(b[off:]), protocol.Limits{})
		for {
			m, err := r.ReadMessage()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", filepath.Base(name), err)
			}
			if q, ok := m.Payload.(*protocol.Query); ok {
				out = append(out, q)
			}
		}
	}
	return out
}

// handshakeEnd returns the offset just after the last "\r\n\r\n" before the
// first byte that cannot be handshake text (0 if there is none), as the
// protocol package's walk test does.
func handshakeEnd(b []byte) int {
	i := 0
	for i < len(b) && (b[i] == '\r' || b[i] == '\n' || (b[i] >= 0x20 && b[i] < 0x7F)) {
		i++
	}
	if !bytes.HasPrefix(b, []byte("GNUTELLA")) {
		return 0
	}
	j := bytes.LastIndex(b[:i], []byte("\r\n\r\n"))
	if j < 0 {
		return 0
	}
	return j + 4
}

// gtkFile returns the 300,000-byte body that gtk-gnutella uploaded in
// push-giv-and-upload.bin: the real zebraquokka_interop_alpha.txt.
func gtkFile(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "protocol", "testdata", "gtk-gnutella", "push-giv-and-upload.bin"))
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte("HTTP/1.1 200"))
	j := bytes.Index(b[i:], []byte("\r\n\r\n"))
	if i < 0 || j < 0 || len(b)-(i+j+4) != 300000 {
		t.Fatalf("unexpected recording layout (%d, %d)", i, j)
	}
	return b[i+j+4:]
}

// TestMatchGtkGnutellaQueries answers the Queries gtk-gnutella 1.2.3 sent
// ("zebraquokka", "emu", "red kangaroo", "platypus", "wallaby") from a
// library holding the file gtk shared and files named with those words,
// plus a hash query for that file as gtk builds one.
func TestMatchGtkGnutellaQueries(t *testing.T) {
	root := realDir(t)
	mkfile(t, root, "zebraquokka_interop_alpha.txt", string(gtkFile(t)))
	for _, n := range []string{
		"emu_sunrise.mp3", "Red Kangaroo - Outback.avi", "PLATYPUS.jpg", "photos/wallaby-notes.txt",
		// decoys: one word of a two-word query, a word inside another, a
		// longer word the query is not a prefix of
		"red_panda.txt", "kangaroo_court.txt", "quokka.txt", "wallabies.txt", "theemu.txt",
	} {
		mkfile(t, root, n, n)
	}
	l := openLib(t, Config{Dirs: []string{root}})
	rescan(t, l)
	if err := l.HashAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"zebraquokka":  {"zebraquokka_interop_alpha.txt"},
		"emu":          {"emu_sunrise.mp3"},
		"red kangaroo": {"Red Kangaroo - Outback.avi"},
		"platypus":     {"PLATYPUS.jpg"},
		"wallaby":      {"wallaby-notes.txt"},
	}
	qs := gtkQueries(t)
	if len(qs) != len(want) {
		t.Fatalf("%d queries in the recordings, want %d", len(qs), len(want))
	}
	for _, q := range qs {
		w, ok := want[string(q.Search)]
		if !ok {
			t.Errorf("unexpected query %v", q)
			continue
		}
		if got := names(l.Match(q)); !slices.Equal(got, w) {
			t.Errorf("%v: %q, want %q", q, got, w)
		}
		if !q.Flags.Has(protocol.QueryFlagGGEPH) || len(q.URNs()) != 0 || queryMediaMask(q) != 0 {
			t.Errorf("%v: unexpected flags or extensions", q)
		}
	}

	// The hash gtk announced for the file (X-Gnutella-Content-URN) is the
	// one we compute, and a hash query for it, built as gtk builds one (an
	// empty search text, the URN as text), finds it.
	h, err := protocol.ParseURN("urn:sha1:X4W42LDG7CDMMJAJT2ODLN7IBG5UYDG7")
	if err != nil {
		t.Fatal(err)
	}
	got := l.Match(roundTrip(t, protocol.NewQuery("", protocol.QueryFlagGGEPH, h)))
	if len(got) != 1 || got[0].Name != "zebraquokka_interop_alpha.txt" || got[0].SHA1 != h {
		t.Errorf("hash query: %+v", got)
	}
}
