package protocol

import (
	"bytes"
	"strconv"
	"strings"
)

// The extension area of a Query (after the search text) and of each
// QueryHit record (between the name's NUL and the record's final NUL),
// docs/protocol.md §1.8, §1.9, §1.11. It follows the peaceful-coexistence rule of §1.10: an
// item that starts with 0xC3 is a GGEP block whose length comes from its
// own framing; any other item is a legacy string (HUGE "urn:sha1:...",
// "urn:bitprint:...", a bare "urn:", XML, or unknown text that must be kept
// and ignored) running up to the next separator. Items are separated by
// 0x1C (the GEM separator); in a Query a 0x00 may separate items too, and a
// final 0x00 may close the area.

// ExtSeparator is the GEM separator between extension items.
const ExtSeparator = 0x1C

// ExtensionItem is one item of an extension area: exactly one of GGEP and
// Text is set, or neither for an empty item (two separators in a row).
type ExtensionItem struct {
	GGEP GGEP
	Text []byte

	// nulBefore records that this item followed a 0x00 rather than 0x1C
	// (Query areas only), so that the area encodes back to the same bytes.
	nulBefore bool
}

// ExtensionArea is the items of an extension area in wire order. Decoded
// areas alias the input they came from.
type ExtensionArea []ExtensionItem

// TextItem returns an item carrying s as a legacy string.
func TextItem(s string) ExtensionItem { return ExtensionItem{Text: []byte(s)} }

// GGEPItem returns an item carrying the GGEP block g.
func GGEPItem(g GGEP) ExtensionItem { return ExtensionItem{GGEP: g} }

// decodeExtArea splits b into items and appends them to dst, returning the
// extended dst; the caller lends dst's capacity to save allocations and
// takes the new items as dst[len(dst):]. In a Query area (query true) a 0x00
// separates items like 0x1C, and a 0x00 as the very last byte is reported
// as finalNUL instead of an item. A QueryHit record's area never holds a
// 0x00 (the caller cuts it at the record's NUL). An area of a single empty
// item adds no item. Deflated GGEP data is charged to budget, which the
// caller shares with the rest of the message. Offsets in errors are
// relative to b.
func decodeExtArea(dst ExtensionArea, b []byte, query bool, budget *inflateBudget) (out ExtensionArea, finalNUL bool, err error) {
	if len(b) == 0 {
		return dst, false, nil
	}
	start := len(dst)
	i := 0
	nulBefore := false
	for {
		item := ExtensionItem{nulBefore: nulBefore}
		if i < len(b) && b[i] == GGEPMagic {
			g, n, err := decodeGGEP(b[i:], budget)
			if err != nil {
				return nil, false, shiftOffset(err, i)
			}
			item.GGEP = g
			i += n
			if i < len(b) && b[i] != ExtSeparator && !(query && b[i] == 0) {
				return nil, false, errAt("extension area", i, ErrMalformed,
					"byte 0x%02x follows a GGEP block; want 0x1C or the end", b[i])
			}
		} else {
			rest := b[i:]
			j := bytes.IndexByte(rest, ExtSeparator)
			if j < 0 {
				j = len(rest)
			}
			if z := bytes.IndexByte(rest[:j], 0); z >= 0 {
				j = z
			}
			if j > 0 {
				item.Text = rest[:j:j]
			}
			i += j
		}
		dst = append(dst, item)
		if i == len(b) {
			break
		}
		sep := b[i]
		if sep == 0 && !query {
			return nil, false, errAt("extension area", i, ErrMalformed, "NUL inside the extension area")
		}
		i++
		if sep == 0 && i == len(b) {
			finalNUL = true
			break
		}
		nulBefore = sep == 0
	}
	if len(dst) == start+1 && dst[start].isEmpty() {
		dst = dst[:start] // an area of one empty item is no area at all
	}
	return dst, finalNUL, nil
}

// extAreaHasGGEP reports whether the extension area b holds a GGEP
// extension with the given ID. It reads only the framing of the blocks
// (no COBS, no inflating), so it costs next to nothing, and it answers
// false at the first framing error (a full decode will report it).
func extAreaHasGGEP(b []byte, query bool, id string) bool {
	for i := 0; i < len(b); i++ { // i++ skips the separator
		if b[i] != GGEPMagic {
			for i < len(b) && b[i] != ExtSeparator && b[i] != 0 {
				i++
			}
			if i < len(b) && b[i] == 0 && !query {
				return false
			}
			continue
		}
		j := i + 1
		for count := 0; ; count++ {
			if count == MaxGGEPExtensions {
				return false
			}
			flags, eid, data, n, err := scanGGEPExtension(b, j)
			if err != nil {
				return false
			}
			if string(eid) == id {
				return true
			}
			j = data + n
			if flags&ggepLast != 0 {
				break
			}
		}
		i = j
	}
	return false
}

// itemsFrom returns the items of all from index from on as an area of its
// own (nil when there are none), capped so appending to it copies.
func itemsFrom(all ExtensionArea, from int) ExtensionArea {
	if len(all) == from {
		return nil
	}
	return all[from:len(all):len(all)]
}

func (it *ExtensionItem) isEmpty() bool { return len(it.GGEP) == 0 && len(it.Text) == 0 }

// appendTo appends the items joined by their separators. For a QueryHit
// record (query false) only 0x1C separates items and GGEP data is
// COBS-encoded where it would carry a 0x00.
func (a ExtensionArea) appendTo(b []byte, query bool) ([]byte, error) {
	for k := range a {
		it := &a[k]
		if k > 0 {
			if it.nulBefore && query {
				b = append(b, 0)
			} else {
				b = append(b, ExtSeparator)
			}
		}
		switch {
		case len(it.GGEP) > 0 && len(it.Text) > 0:
			return b, errAt("extension area", -1, ErrMalformed, "item %d has both GGEP and text", k)
		case len(it.GGEP) > 0:
			var err error
			if b, err = it.GGEP.appendTo(b, !query); err != nil {
				return b, err
			}
		default:
			t := it.Text
			if len(t) > 0 && t[0] == GGEPMagic {
				return b, errAt("extension area", -1, ErrMalformed, "text item %d starts with 0xC3", k)
			}
			if bytes.IndexByte(t, ExtSeparator) >= 0 || bytes.IndexByte(t, 0) >= 0 {
				return b, errAt("extension area", -1, ErrMalformed, "text item %d holds 0x1C or 0x00", k)
			}
			b = append(b, t...)
		}
	}
	return b, nil
}

// URNs returns the SHA-1 URNs the area carries: text items "urn:sha1:" and
// "urn:bitprint:" (case-insensitive), and GGEP "H" and "u" extensions. The
// list is in wire order without duplicates; malformed URNs are skipped.
func (a ExtensionArea) URNs() []SHA1 {
	var out []SHA1
	add := func(h SHA1) {
		for _, o := range out {
			if o == h {
				return
			}
		}
		out = append(out, h)
	}
	for k := range a {
		it := &a[k]
		if t := it.Text; len(t) > 0 {
			if hasPrefixFoldBytes(t, "urn:sha1:") || hasPrefixFoldBytes(t, "urn:bitprint:") {
				if h, err := ParseURN(string(t)); err == nil {
					add(h)
				}
			}
			continue
		}
		for e := range it.GGEP {
			x := &it.GGEP[e]
			switch x.ID {
			case "H":
				if h, err := ParseGGEPHash(x.Data); err == nil {
					add(h)
				}
			case "u":
				if h, err := ParseGGEPURN(x.Data); err == nil {
					add(h)
				}
			}
		}
	}
	return out
}

// GGEP returns every GGEP extension of the area, the blocks concatenated in
// wire order. With a single block it returns that block itself.
func (a ExtensionArea) GGEP() GGEP {
	var out GGEP
	n := 0
	for k := range a {
		if len(a[k].GGEP) > 0 {
			if n == 0 {
				out = a[k].GGEP
			} else {
				if n == 1 {
					out = append(GGEP(nil), out...)
				}
				out = append(out, a[k].GGEP...)
			}
			n++
		}
	}
	return out
}

// WantsURNs reports whether the area holds a bare "urn:" or "urn:sha1:"
// item, a Query's request that hits carry their files' URNs (docs/protocol.md §1.8).
func (a ExtensionArea) WantsURNs() bool {
	for k := range a {
		t := a[k].Text
		if (len(t) == 4 && hasPrefixFoldBytes(t, "urn:")) || (len(t) == 9 && hasPrefixFoldBytes(t, "urn:sha1:")) {
			return true
		}
	}
	return false
}

// String lists the items: URNs as urn:sha1:..., GGEP blocks via
// GGEP.String followed by the URNs of their "H" or "u" extensions, other
// text quoted (cut after 40 bytes), empty items as "".
func (a ExtensionArea) String() string {
	var sb strings.Builder
	sb.WriteByte('[')
	for k := range a {
		if k > 0 {
			sb.WriteByte(' ')
		}
		it := &a[k]
		switch {
		case len(it.GGEP) > 0:
			sb.WriteString(it.GGEP.String())
			for _, h := range a[k : k+1].URNs() { // GGEP "H" / "u"
				sb.WriteByte(' ')
				sb.WriteString(h.String())
			}
		case len(it.Text) > 0:
			if h, err := ParseURN(string(it.Text)); err == nil {
				sb.WriteString(h.String())
			} else {
				sb.WriteString(strconv.Quote(truncate(string(it.Text), 40)))
			}
		default:
			sb.WriteString(`""`)
		}
	}
	sb.WriteByte(']')
	return sb.String()
}

// ResultExtensions builds a QueryHit record's extension area the way
// gtk-gnutella does: the file's URN as GGEP "H" when the query set
// QueryFlagGGEPH (ggepH), else as ASCII "urn:sha1:..." text, followed by
// the extensions of extra (e.g. "LF", "ALT", "CT"). With ggepH, "H" and
// extra share one GGEP block; otherwise extra is a GGEP item after the
// text. A zero urn is left out.
func ResultExtensions(urn SHA1, ggepH bool, extra GGEP) ExtensionArea {
	var a ExtensionArea
	var g GGEP
	if !urn.IsZero() {
		if ggepH {
			g = append(g, Extension{ID: "H", Data: GGEPHash(urn)})
		} else {
			a = append(a, TextItem(urn.String()))
		}
	}
	g = append(g, extra...)
	if len(g) > 0 {
		a = append(a, GGEPItem(g))
	}
	return a
}

func hasPrefixFoldBytes(b []byte, prefix string) bool {
	if len(b) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}
