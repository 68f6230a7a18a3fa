package transfer

import (
	"bytes"
	"os"

	"gnutella/protocol"
)

// The partial file of a download: the bytes of the file at their offsets,
// written as they come from any source, with holes where nothing came yet.
// Download.have says which bytes are there; it is kept in the queue file
// (persist.go) so that a restart resumes every hole, not only the end.

// PartialFile returns the partial file of the download of sha1 when
// SharePartials is set and some bytes of it are there. Bytes that wait for
// a check after a bad hash are left out. The file may vanish (renamed when
// done, deleted when cancelled) while a caller reads it.
func (d *Downloader) PartialFile(sha1 protocol.SHA1) (PartialFile, bool) {
	if !d.SharePartials || sha1.IsZero() {
		return PartialFile{}, false
	}
	d.mu.Lock()
	x := d.byKey[sha1.Base32()]
	if x == nil || x.sha1 != sha1 || x.terminal() || x.partial == "" {
		d.mu.Unlock()
		return PartialFile{}, false
	}
	pf := PartialFile{Path: x.partial, Name: x.name, Size: x.size}
	d.mu.Unlock()
	x.mu.Lock()
	have := x.have.Clone()
	for _, cs := range x.checks {
		have = have.Remove(cs.Start, cs.End)
	}
	x.mu.Unlock()
	if len(have) == 0 {
		return PartialFile{}, false
	}
	pf.Have = have
	return pf, true
}

// haveFromFile is what an existing partial file holds when nothing else is
// known (a queue file of version 1, or none): its first bytes, as the
// single-source downloader wrote them.
func haveFromFile(path string, size int64) Ranges {
	return Ranges{}.Add(0, min(fileSize(path), size))
}

// setHave replaces what the partial file is known to hold.
func (x *Download) setHave(r Ranges) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.have = r
	x.haveN.Store(r.Covered())
}

// absorb takes in data, the bytes at pos of src's answer to c: the bytes we
// have are compared with the partial file (a difference is a
// mismatchError), new bytes inside c are written, and any other byte (out
// of the claim, or anywhere for a check) is skipped: nothing is ever
// written outside the range asked for.
func (x *Download) absorb(f *os.File, src *source, c *claim, pos int64, data []byte) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if src.liar != "" {
		return &permanentError{msg: src.liar}
	}
	end := pos + int64(len(data))
	var cmp []byte
	for p := pos; p < end; {
		in, runEnd := run(x.have, p, end)
		piece := data[p-pos : runEnd-pos]
		if in {
			if cmp == nil {
				cmp = make([]byte, len(data))
			}
			got := cmp[:len(piece)]
			if _, err := f.ReadAt(got, p); err != nil {
				return &localError{"reading the partial file: " + err.Error()}
			}
			if i := firstDiff(got, piece); i >= 0 {
				at := p + int64(i)
				w := x.writerLocked(at)
				if c.check != nil {
					w = c.check.writer
				}
				if w == src {
					w = nil // it disagrees with itself: as with bytes of an earlier run
				}
				if w != nil {
					x.disagreeLocked(w, src)
					if c.check != nil {
						c.check.against = append(c.check.against, src)
					}
				}
				return &mismatchError{at: at, writer: w}
			}
			if cs := c.check; cs != nil {
				c.compared += max(0, min(runEnd, cs.End)-max(p, cs.Start))
			}
		} else if c.check == nil {
			ws, we := max(p, c.start), min(runEnd, c.end)
			if ws < we {
				if _, err := f.WriteAt(data[ws-pos:we-pos], ws); err != nil {
					return &localError{"writing the partial file: " + err.Error()}
				}
				x.have = x.have.Add(ws, we)
				if len(src.wrote) == 0 && !containsSource(x.writers, src) {
					x.writers = append(x.writers, src)
				}
				src.wrote = src.wrote.Add(ws, we)
			}
		}
		p = runEnd
	}
	c.pos = max(c.pos, end)
	x.haveN.Store(x.have.Covered())
	return nil
}

func containsSource(l []*source, s *source) bool {
	for _, o := range l {
		if o == s {
			return true
		}
	}
	return false
}

// run reports whether p is in r and where that stops being so, before end.
func run(r Ranges, p, end int64) (in bool, runEnd int64) {
	for _, s := range r {
		if s.End <= p {
			continue
		}
		if s.Start <= p {
			return true, min(s.End, end)
		}
		return false, min(s.Start, end)
	}
	return false, end
}

func firstDiff(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// writerLocked is the source that wrote byte at in this run, or nil.
func (x *Download) writerLocked(at int64) *source {
	for _, s := range x.writers {
		if s.wrote.Contains(at, at+1) {
			return s
		}
	}
	return nil
}

// ownBytesLocked reports whether [a, b) was written by src or by no known
// source (an earlier run): only those are asked again as an overlap, since
// a difference with another source's bytes would not say who is wrong.
func (x *Download) ownBytesLocked(src *source, a, b int64) bool {
	for _, s := range x.writers {
		if s != src && len(s.wrote.Intersect(Ranges{{a, b}})) > 0 {
			return false
		}
	}
	return true
}

// backout forgets Backout bytes before the end of the run of had bytes
// that holds at (and all from at when at is earlier): they are fetched
// again (gtk-gnutella backs off the same way on an overlap mismatch).
func (x *Download) backout(at int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, s := range x.have {
		if s.Start <= at && at < s.End {
			from := max(s.Start, min(at, s.End-Backout))
			x.have = x.have.Remove(from, s.End)
			break
		}
	}
	x.haveN.Store(x.have.Covered())
	x.changedLocked()
}
