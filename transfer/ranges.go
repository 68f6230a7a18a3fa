package transfer

import (
	"errors"
	"strconv"
	"strings"
)

// Span is the bytes [Start, End) of a file: half-open, so End-Start is its
// length and an empty span has Start == End. HTTP writes ranges with
// inclusive ends (Range, Content-Range, X-Available-Ranges); the
// conversions are only in this file and in the Range parsers.
type Span struct {
	Start, End int64
}

// Len is the number of bytes in s.
func (s Span) Len() int64 { return s.End - s.Start }

// Ranges is a set of bytes of one file: sorted, disjoint spans, adjacent
// ones merged, none empty. The zero value is the empty set. Methods that
// change it return the new set (the old one may share its array).
type Ranges []Span

// Add returns r with [start, end) added.
func (r Ranges) Add(start, end int64) Ranges {
	if start >= end {
		return r
	}
	out := make(Ranges, 0, len(r)+1)
	i := 0
	for ; i < len(r) && r[i].End < start; i++ {
		out = append(out, r[i])
	}
	for ; i < len(r) && r[i].Start <= end; i++ {
		start = min(start, r[i].Start)
		end = max(end, r[i].End)
	}
	out = append(out, Span{start, end})
	return append(out, r[i:]...)
}

// Remove returns r without [start, end).
func (r Ranges) Remove(start, end int64) Ranges {
	if start >= end {
		return r
	}
	out := make(Ranges, 0, len(r)+1)
	for _, s := range r {
		if s.End <= start || s.Start >= end {
			out = append(out, s)
			continue
		}
		if s.Start < start {
			out = append(out, Span{s.Start, start})
		}
		if s.End > end {
			out = append(out, Span{end, s.End})
		}
	}
	return out
}

// Contains reports whether every byte of [start, end) is in r.
func (r Ranges) Contains(start, end int64) bool {
	if start >= end {
		return true
	}
	for _, s := range r {
		if s.Start <= start && end <= s.End {
			return true
		}
		if s.Start > start {
			return false
		}
	}
	return false
}

// Covered is the number of bytes in r.
func (r Ranges) Covered() int64 {
	var n int64
	for _, s := range r {
		n += s.Len()
	}
	return n
}

// Missing returns the bytes of [0, size) that are not in r.
func (r Ranges) Missing(size int64) Ranges {
	return Ranges{{0, size}}.Subtract(r)
}

// Subtract returns the bytes of r that are not in o.
func (r Ranges) Subtract(o Ranges) Ranges {
	out := r.Clone()
	for _, s := range o {
		out = out.Remove(s.Start, s.End)
	}
	return out
}

// Intersect returns the bytes in both r and o.
func (r Ranges) Intersect(o Ranges) Ranges {
	var out Ranges
	i, j := 0, 0
	for i < len(r) && j < len(o) {
		a, b := max(r[i].Start, o[j].Start), min(r[i].End, o[j].End)
		if a < b {
			out = append(out, Span{a, b})
		}
		if r[i].End < o[j].End {
			i++
		} else {
			j++
		}
	}
	return out
}

// Clone returns a copy of r that shares nothing with it.
func (r Ranges) Clone() Ranges {
	if r == nil {
		return nil
	}
	return append(Ranges(nil), r...)
}

// maxAvailableSpans bounds how many spans X-Available-Ranges may carry, in
// both directions: a peer cannot make us build a set of a million spans,
// and we never send a header longer than the handshake line limit allows.
const maxAvailableSpans = 32

// FormatAvailable is the value of an X-Available-Ranges header for r:
// "bytes 0-1023,4096-8191" (inclusive ends, docs/protocol.md §6.1). A set
// of more than maxAvailableSpans spans is written as its first spans; an
// empty set gives "".
func (r Ranges) FormatAvailable() string {
	if len(r) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("bytes ")
	for i, s := range r {
		if i == maxAvailableSpans {
			break
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(s.Start, 10))
		b.WriteByte('-')
		b.WriteString(strconv.FormatInt(s.End-1, 10))
	}
	return b.String()
}

// ErrBadAvailableRanges is what ParseAvailableRanges returns for a value
// that is not "bytes a-b[,c-d...]".
var ErrBadAvailableRanges = errors.New("transfer: malformed X-Available-Ranges")

// ParseAvailableRanges reads an X-Available-Ranges value for a file of size
// bytes. "bytes=" is accepted for "bytes " (some servents write it), spaces
// around items are ignored, ends past the file are clipped, at most
// maxAvailableSpans items are read and a malformed item fails the whole
// header: a source that lies about what it has is not believed in part.
func ParseAvailableRanges(v string, size int64) (Ranges, error) {
	v = strings.TrimSpace(v)
	if len(v) < 6 || !strings.EqualFold(v[:5], "bytes") || (v[5] != ' ' && v[5] != '=') {
		return nil, ErrBadAvailableRanges
	}
	var out Ranges
	items := strings.Split(v[6:], ",")
	if len(items) > maxAvailableSpans {
		items = items[:maxAvailableSpans]
	}
	for _, it := range items {
		a, b, ok := strings.Cut(strings.TrimSpace(it), "-")
		if !ok {
			return nil, ErrBadAvailableRanges
		}
		start, err1 := parseDigits(strings.TrimSpace(a))
		end, err2 := parseDigits(strings.TrimSpace(b))
		if err1 != nil || err2 != nil || end < start {
			return nil, ErrBadAvailableRanges
		}
		if start >= size {
			continue
		}
		out = out.Add(start, min(end, size-1)+1)
	}
	return out, nil
}
