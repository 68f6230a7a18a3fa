package share

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Normalize returns the searchable form of a file name or of a query's
// search text (docs/protocol.md §4.1): Unicode NFKD (so "ﬁ" is "fi" and full-width
// letters are plain ones), full case folding ("Straße" is "strasse"),
// combining marks of category Mn removed (so "Café" and "Cafe\u0301" are both
// "cafe"), and every rune that is not a letter, a number or a spacing mark
// (Mc) turned into a separator. Runs of separators become one ASCII space,
// with none at either end. Invalid UTF-8 bytes are separators too, so any
// input is safe: "../etc/passwd" is just "etc passwd".
func Normalize(s string) string {
	return string(appendNorm(make([]byte, 0, len(s)), s))
}

// Keywords returns the distinct words of the normalised name or query, in
// order of first appearance, leaving out words of a single character (they
// would match too much, and gtk-gnutella and LimeWire ignore them too). The
// library indexes a file under exactly these words; QRP should build its
// table from them (adding the prefixes that docs/protocol.md §4.1 describes).
func Keywords(name string) []string {
	var out []string
	n := appendNorm(nil, name)
	forEachWord(n, func(w []byte) {
		for _, o := range out {
			if o == string(w) {
				return
			}
		}
		out = append(out, string(w))
	})
	return out
}

// forEachWord calls f on each word of a normalised buffer that has at least
// two characters. The slice passed to f aliases n.
func forEachWord(n []byte, f func(w []byte)) {
	for len(n) > 0 {
		i := 0
		for i < len(n) && n[i] != ' ' {
			i++
		}
		if w := n[:i]; usefulWord(w) {
			f(w)
		}
		if i < len(n) {
			i++
		}
		n = n[i:]
	}
}

// usefulWord reports whether the word has at least two characters.
func usefulWord(w []byte) bool {
	switch {
	case len(w) < 2:
		return false
	case w[0] < utf8.RuneSelf:
		return true
	}
	_, size := utf8.DecodeRune(w)
	return size < len(w)
}

// appendNorm appends Normalize(s) to dst. ASCII input takes a fast path that
// allocates nothing; other input goes through x/text.
func appendNorm[T string | []byte](dst []byte, s T) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return appendNormUnicode(dst, string(s))
		}
	}
	start := len(dst)
	sep := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		default:
			sep = true
			continue
		}
		if sep && len(dst) > start {
			dst = append(dst, ' ')
		}
		sep = false
		dst = append(dst, c)
	}
	return dst
}

// appendNormUnicode is appendNorm for input with non-ASCII bytes: NFKD,
// then full case folding (after decomposition, so that compatibility
// characters that decompose to capitals are folded too), then the filter.
// Folding maps a few scripts to upper case (Cherokee), and x/text does not
// always fold those back; the final ToLower makes the result stable, so
// that Normalize(Normalize(s)) == Normalize(s).
// A Caser is not safe for concurrent use, so each call makes its own.
func appendNormUnicode(dst []byte, s string) []byte {
	s = strings.ToValidUTF8(s, "\uFFFD") // invalid bytes: separators below
	s = cases.Fold().String(norm.NFKD.String(s))
	start := len(dst)
	sep := false
	for _, r := range s {
		switch {
		case unicode.Is(unicode.Mn, r):
			continue // accents vanish without splitting the word
		case unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.Is(unicode.Mc, r):
		default:
			sep = true
			continue
		}
		if sep && len(dst) > start {
			dst = append(dst, ' ')
		}
		sep = false
		dst = utf8.AppendRune(dst, unicode.ToLower(r))
	}
	return dst
}
