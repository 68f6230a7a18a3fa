package share

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gnutella/protocol"
)

// The hash cache is a text file in DataDir:
//
//	gnutella-share-cache 1
//	next <next index>
//	<index> <size> <mtime unix ns> <sha1 base32 or -> <path, Go-quoted>
//
// one line per file. Go quoting keeps any path (spaces, newlines, invalid
// UTF-8) on one line and gives it back byte for byte. The file is written
// to a temporary name and renamed, so a crash leaves the old or the new one.
// It holds both the hashes (keyed by path, size and mtime) and the indexes
// (keyed by path), which is what keeps indexes stable across restarts.
const (
	cacheFileName = "share-cache.txt"
	cacheMagic    = "gnutella-share-cache 1"
)

type cacheEntry struct {
	index uint32
	size  int64
	mtime int64 // UnixNano
	sha1  protocol.SHA1
}

// loadCache reads the cache file. Lines it cannot read are skipped; a file
// without the magic line is an error.
func loadCache(path string) (map[string]cacheEntry, uint32, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	if !sc.Scan() || sc.Text() != cacheMagic {
		return nil, 0, errors.New("not a share cache (bad first line)")
	}
	out := map[string]cacheEntry{}
	used := map[uint32]bool{}
	var next uint32 = 1
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "next "); ok {
			if n, err := strconv.ParseUint(v, 10, 32); err == nil && uint32(n) > next {
				next = uint32(n)
			}
			continue
		}
		e, p, ok := parseCacheLine(line)
		if !ok || used[e.index] {
			continue
		}
		if _, dup := out[p]; dup {
			continue
		}
		used[e.index] = true
		out[p] = e
		if e.index >= next && e.index != 1<<32-1 {
			next = e.index + 1
		}
	}
	return out, next, sc.Err()
}

func parseCacheLine(line string) (cacheEntry, string, bool) {
	var e cacheEntry
	f := strings.SplitN(line, " ", 5)
	if len(f) != 5 {
		return e, "", false
	}
	idx, err1 := strconv.ParseUint(f[0], 10, 32)
	size, err2 := strconv.ParseInt(f[1], 10, 64)
	mt, err3 := strconv.ParseInt(f[2], 10, 64)
	p, err4 := strconv.Unquote(f[4])
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil || idx == 0 || size < 0 || !filepath.IsAbs(p) {
		return e, "", false
	}
	e.index, e.size, e.mtime = uint32(idx), size, mt
	if f[3] != "-" {
		h, err := protocol.ParseSHA1Base32(f[3])
		if err != nil {
			return e, "", false
		}
		e.sha1 = h
	}
	return e, p, true
}

// save writes the cache if it is out of date (no-op without a DataDir).
func (l *Library) save() error {
	if l.cachePath == "" {
		return nil
	}
	l.saveMu.Lock()
	defer l.saveMu.Unlock()

	type line struct {
		path string
		e    cacheEntry
	}
	l.mu.Lock()
	if !l.dirty {
		l.mu.Unlock()
		return nil
	}
	lines := make([]line, 0, len(l.byPath)+len(l.known))
	for p, e := range l.known { // loaded but not yet confirmed by a scan
		lines = append(lines, line{p, e})
	}
	for _, r := range l.byPath {
		lines = append(lines, line{r.path, cacheEntry{index: r.index, size: r.size, mtime: r.mtime.UnixNano(), sha1: r.sha1}})
	}
	next := l.next
	l.dirty = false
	l.mu.Unlock()

	slices.SortFunc(lines, func(a, b line) int { return cmpIndex(a.e.index, b.e.index) })
	var b bytes.Buffer
	b.Grow(len(lines) * 120)
	fmt.Fprintf(&b, "%s\nnext %d\n", cacheMagic, next)
	for _, ln := range lines {
		h := "-"
		if !ln.e.sha1.IsZero() {
			h = ln.e.sha1.Base32()
		}
		fmt.Fprintf(&b, "%d %d %d %s %s\n", ln.e.index, ln.e.size, ln.e.mtime, h, strconv.Quote(ln.path))
	}
	err := writeAtomic(l.cachePath, b.Bytes())
	if err != nil {
		l.mu.Lock()
		l.dirty = true
		l.mu.Unlock()
	}
	return err
}

func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".share-cache-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}
