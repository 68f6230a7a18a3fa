package share

import (
	"slices"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", ""},
		{"Hello", "hello"},
		{"  Hello,   World!  ", "hello world"},
		{"Café", "cafe"},
		{"Cafe\u0301", "cafe"}, // decomposed, as macOS writes names
		{"CAFÉ", "cafe"},
		{"Straße", "strasse"},
		{"ＦＵＬＬ－ｗｉｄｔｈ", "full width"},
		{"ﬁle", "file"},
		{"İstanbul", "istanbul"},
		{"ΣΊΣΥΦΟΣ", "σισυφοσ"},
		{"Ñandú", "nandu"},
		{"x²", "x2"},
		{"The.Matrix-1999_(720p)+x264.mkv", "the matrix 1999 720p x264 mkv"},
		{"../../etc/passwd", "etc passwd"},
		{`..\..\windows\system32`, "windows system32"},
		{"don't", "don t"},
		{"\xff\xfe", ""},
		{"ab\xffcd", "ab cd"},
		{"caf\xc3", "caf"}, // truncated UTF-8
		{"東京 タワー", "東京 タワー"},
		{"a\u200bb", "a b"}, // zero-width space separates
		{"tab\tnew\nline", "tab new line"},
	}
	for _, c := range cases {
		if got := Normalize(c.in); got != c.want {
			t.Errorf("Normalize(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestKeywords(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"The.Matrix-1999 (720p) x264.mkv", []string{"the", "matrix", "1999", "720p", "x264", "mkv"}},
		{"a b cd", []string{"cd"}},
		{"Song song SONG.mp3", []string{"song", "mp3"}},
		{"zebraquokka_interop_alpha.txt", []string{"zebraquokka", "interop", "alpha", "txt"}},
		{"é", nil}, // one character
		{"東", nil}, // one character, three bytes
		{"東京", []string{"東京"}},
		{"!!!", nil},
		{"", nil},
	}
	for _, c := range cases {
		if got := Keywords(c.in); !slices.Equal(got, c.want) {
			t.Errorf("Keywords(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestNormalizeASCIIAllocs(t *testing.T) {
	in := []byte("The.Matrix-1999_(720p)+x264.mkv")
	var buf [64]byte
	n := testing.AllocsPerRun(100, func() { appendNorm(buf[:0], in) })
	if n != 0 {
		t.Errorf("appendNorm of ASCII allocates %v times", n)
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"Café", "\xff", "../x", "ＡＢ", "ﬁ", strings.Repeat("é", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := Normalize(s)
		if strings.HasPrefix(n, " ") || strings.HasSuffix(n, " ") || strings.Contains(n, "  ") {
			t.Fatalf("Normalize(%q) = %q: stray spaces", s, n)
		}
		if Normalize(n) != n {
			t.Fatalf("Normalize not idempotent on %q: %q then %q", s, n, Normalize(n))
		}
		for _, w := range Keywords(s) {
			if w == "" || strings.Contains(w, " ") {
				t.Fatalf("Keywords(%q) has %q", s, w)
			}
		}
	})
}
