package share

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"gnutella/protocol"
)

// Defaults.
const (
	// DefaultMaxResults is gtk-gnutella's query_response_max_items.
	DefaultMaxResults = 50
	// DefaultRescanInterval is what a servent should put in
	// Config.RescanInterval unless the user says otherwise. (The zero
	// Duration means "no periodic rescan", so it cannot be the default.)
	DefaultRescanInterval = 60 * time.Second
)

// ErrClosed is returned by Rescan and HashAll after Close.
var ErrClosed = errors.New("share: library closed")

// Config says what to share and how.
type Config struct {
	Dirs           []string      // shared folders, scanned recursively
	DataDir        string        // where the hash cache lives ("" = no cache)
	MaxResults     int           // hits per query; <= 0 means DefaultMaxResults
	RescanInterval time.Duration // periodic rescan; <= 0 = only on Rescan calls
	Logger         zerolog.Logger
}

// File is one shared file as the rest of the servent sees it.
type File struct {
	// Index is stable: the same path keeps its index across rescans and,
	// with a DataDir, across restarts. An index is never reused for
	// another path, so a stale index finds nothing rather than the wrong
	// file.
	Index   uint32
	Path    string        // absolute path on disk (never sent on the wire)
	Name    string        // base name as shown in hits: valid UTF-8, no control characters
	Size    int64         // bytes
	ModTime time.Time     // modification time when last scanned
	SHA1    protocol.SHA1 // zero until hashed
}

// Progress reports the hashing work.
type Progress struct {
	Files       int    // files shared
	HashedFiles int    // of those, how many have their SHA-1
	Bytes       int64  // total size of the shared files
	HashedBytes int64  // size of the hashed files, plus what is done of the current one
	ReadBytes   int64  // bytes the hasher has read since Open (0 when the cache knew every file)
	Current     string // name of the file being hashed, "" when idle
}

// rec is the library's record of a file. index, path and name never change;
// the other fields are guarded by Library.mu.
type rec struct {
	index uint32
	path  string
	name  string

	size     int64
	mtime    time.Time
	sha1     protocol.SHA1
	gone     bool // removed by a rescan (an older index may still hold it)
	hashFail bool // hashing failed at this size and mtime; retried when they change
}

func (r *rec) file() File {
	return File{Index: r.index, Path: r.path, Name: r.name, Size: r.size, ModTime: r.mtime, SHA1: r.sha1}
}

// Library is the set of shared files. All methods are safe for concurrent
// use.
type Library struct {
	log        zerolog.Logger
	roots      []string // absolute, symlink-free, cleaned
	maxResults int
	interval   time.Duration
	cachePath  string // "" = no cache

	scanMu sync.Mutex // serialises scans
	hashMu sync.Mutex // serialises hashing passes
	saveMu sync.Mutex // serialises cache writes

	mu          sync.RWMutex
	byPath      map[string]*rec
	byIndex     map[uint32]*rec
	bySHA1      map[protocol.SHA1][]*rec // live recs, ascending index
	snap        *index
	next        uint32                // next index to give out
	known       map[string]cacheEntry // the loaded cache, until a scan succeeds
	dirty       bool                  // the cache file is out of date
	totalBytes  int64
	hashedFiles int
	hashedBytes int64

	version   atomic.Uint64
	readBytes atomic.Int64
	curDone   atomic.Int64
	curName   atomic.Pointer[string]
	closed    atomic.Bool

	life    sync.Mutex // guards started and the closing
	started bool
	ctx     context.Context // cancelled by Close
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	kick    chan struct{} // "there may be something to hash"
}

// Open checks that every shared folder exists and is a folder, resolves
// symlinks in their paths, and loads the hash cache from DataDir (a
// missing or unreadable cache is not an error: everything is hashed again).
// Nothing is scanned until Start or Rescan.
func Open(cfg Config) (*Library, error) {
	l := &Library{
		log:        cfg.Logger,
		maxResults: cfg.MaxResults,
		interval:   cfg.RescanInterval,
		byPath:     map[string]*rec{},
		byIndex:    map[uint32]*rec{},
		bySHA1:     map[protocol.SHA1][]*rec{},
		next:       1,
		kick:       make(chan struct{}, 1),
	}
	if l.maxResults <= 0 {
		l.maxResults = DefaultMaxResults
	}
	for _, d := range cfg.Dirs {
		root, err := resolveRoot(d)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(l.roots, root) {
			l.roots = append(l.roots, root)
		}
	}
	if cfg.DataDir != "" {
		if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
			return nil, fmt.Errorf("share: data dir: %w", err)
		}
		l.cachePath = filepath.Join(cfg.DataDir, cacheFileName)
		known, next, err := loadCache(l.cachePath)
		switch {
		case err == nil:
			l.known, l.next = known, max(next, 1)
			l.log.Debug().Int("entries", len(known)).Str("file", l.cachePath).Msg("share: hash cache loaded")
		case errors.Is(err, os.ErrNotExist):
		default:
			l.log.Warn().Err(err).Str("file", l.cachePath).Msg("share: hash cache unreadable, files will be hashed again")
		}
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	return l, nil
}

// resolveRoot makes a configured folder absolute and symlink-free and
// checks that it is a folder.
func resolveRoot(d string) (string, error) {
	if d == "" {
		return "", errors.New("share: empty folder name")
	}
	abs, err := filepath.Abs(d)
	if err != nil {
		return "", fmt.Errorf("share: %q: %w", d, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("share: %q: %w", d, err)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", fmt.Errorf("share: %q: %w", d, err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("share: %q is not a folder", d)
	}
	return filepath.Clean(real), nil
}

// Start runs the background work in one goroutine: a scan, then hashing of
// what is unhashed, then a rescan every RescanInterval (if > 0) and a
// hashing pass after each scan or Rescan call. Calling it again, or after
// Close, does nothing.
func (l *Library) Start() {
	l.life.Lock()
	defer l.life.Unlock()
	if l.started || l.closed.Load() {
		return
	}
	l.started = true
	l.wg.Add(1)
	go l.loop()
}

func (l *Library) loop() {
	defer l.wg.Done()
	var tick <-chan time.Time
	if l.interval > 0 {
		t := time.NewTicker(l.interval)
		defer t.Stop()
		tick = t.C
	}
	scan := func() {
		if err := l.rescan(); err != nil && l.ctx.Err() == nil {
			l.log.Warn().Err(err).Msg("share: rescan failed")
		}
	}
	hash := func() {
		if err := l.HashAll(l.ctx); err != nil && l.ctx.Err() == nil {
			l.log.Warn().Err(err).Msg("share: hashing stopped")
		}
	}
	scan()
	hash()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-tick:
			scan()
			hash()
		case <-l.kick:
			hash()
		}
	}
}

// Close stops the background goroutine and any hashing in progress, waits
// for them, and saves the hash cache. It is safe to call more than once.
func (l *Library) Close() error {
	l.life.Lock()
	if l.closed.Load() {
		l.life.Unlock()
		return nil
	}
	l.closed.Store(true)
	l.cancel()
	l.life.Unlock()
	l.wg.Wait()
	// Wait for a Rescan or HashAll a caller may be running.
	l.scanMu.Lock()
	l.hashMu.Lock()
	defer l.scanMu.Unlock()
	defer l.hashMu.Unlock()
	return l.save()
}

// kickHasher tells the background goroutine (if any) to hash.
func (l *Library) kickHasher() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// Rescan walks the shared folders now and updates the library: new files
// get fresh indexes (or the ones the cache remembers for their paths),
// changed files lose their hash, removed files disappear. If a folder can
// no longer be read, nothing changes and the error is returned. A running
// background goroutine then hashes what is new.
func (l *Library) Rescan() error {
	if l.closed.Load() {
		return ErrClosed
	}
	err := l.rescan()
	l.kickHasher()
	return err
}

func (l *Library) rescan() error {
	l.scanMu.Lock()
	defer l.scanMu.Unlock()
	start := time.Now()
	found, err := l.walk(l.ctx)
	if err != nil {
		return err
	}
	nfiles, added, removed, changed := l.apply(found)
	l.log.Debug().Int("files", nfiles).Int("added", added).Int("removed", removed).Int("changed", changed).
		Dur("took", time.Since(start)).Msg("share: scanned")
	if added > 0 || removed > 0 {
		if err := l.save(); err != nil {
			l.log.Warn().Err(err).Msg("share: saving the hash cache failed")
		}
	}
	return nil
}

// apply makes the library hold exactly the files found by a walk, keeping
// the records (and so the indexes and hashes) of unchanged paths, and
// installs a new keyword index if the set of names changed.
func (l *Library) apply(found map[string]scanned) (nfiles, added, removed, changed int) {
	l.mu.Lock()
	namesChanged, hashesChanged := l.snap == nil, false
	for path, r := range l.byPath {
		if _, ok := found[path]; ok {
			continue
		}
		if !r.sha1.IsZero() {
			hashesChanged = true
		}
		l.dropHashLocked(r)
		l.totalBytes -= r.size
		r.gone = true
		delete(l.byPath, path)
		delete(l.byIndex, r.index)
		namesChanged = true
		removed++
	}
	for _, f := range found {
		if r := l.byPath[f.path]; r != nil {
			if r.size == f.size && r.mtime.Equal(f.mtime) {
				continue
			}
			if !r.sha1.IsZero() {
				hashesChanged = true
			}
			l.dropHashLocked(r)
			l.totalBytes += f.size - r.size
			r.size, r.mtime, r.hashFail = f.size, f.mtime, false
			l.dirty = true
			changed++
			continue
		}
		r := &rec{path: f.path, name: f.name, size: f.size, mtime: f.mtime}
		if e, ok := l.known[f.path]; ok && l.byIndex[e.index] == nil && e.index != 0 {
			r.index = e.index
			if !e.sha1.IsZero() && e.size == f.size && e.mtime == f.mtime.UnixNano() {
				r.sha1 = e.sha1
			}
		} else {
			for l.next == 0 || l.byIndex[l.next] != nil { // skip 0 and any index still in use
				l.next++
			}
			r.index = l.next
			l.next++
		}
		l.byPath[r.path] = r
		l.byIndex[r.index] = r
		l.totalBytes += r.size
		if !r.sha1.IsZero() {
			l.addHashLocked(r)
			hashesChanged = true
		}
		l.dirty = true
		namesChanged = true
		added++
	}
	if removed > 0 {
		l.dirty = true
	}
	l.known = nil // from now on, the library itself is what the cache holds
	var recs []*rec
	if namesChanged {
		recs = make([]*rec, 0, len(l.byIndex))
		for _, r := range l.byIndex {
			recs = append(recs, r)
		}
	}
	nfiles = len(l.byPath)
	l.mu.Unlock()

	if namesChanged {
		slices.SortFunc(recs, func(a, b *rec) int { return cmpIndex(a.index, b.index) })
		ix := buildIndex(recs)
		l.mu.Lock()
		l.snap = ix
		l.mu.Unlock()
	}
	if namesChanged || hashesChanged {
		l.version.Add(1)
	}
	return nfiles, added, removed, changed
}

func cmpIndex(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// addHashLocked records r.sha1 in the hash map and totals.
func (l *Library) addHashLocked(r *rec) {
	list := l.bySHA1[r.sha1]
	i, _ := slices.BinarySearchFunc(list, r.index, func(x *rec, idx uint32) int { return cmpIndex(x.index, idx) })
	l.bySHA1[r.sha1] = slices.Insert(list, i, r)
	l.hashedFiles++
	l.hashedBytes += r.size
}

// dropHashLocked forgets r's hash, if it has one.
func (l *Library) dropHashLocked(r *rec) {
	if r.sha1.IsZero() {
		return
	}
	list := slices.DeleteFunc(l.bySHA1[r.sha1], func(x *rec) bool { return x == r })
	if len(list) == 0 {
		delete(l.bySHA1, r.sha1)
	} else {
		l.bySHA1[r.sha1] = list
	}
	l.hashedFiles--
	l.hashedBytes -= r.size
	r.sha1 = protocol.SHA1{}
}

// Progress reports how far hashing has come.
func (l *Library) Progress() Progress {
	l.mu.RLock()
	p := Progress{
		Files:       len(l.byPath),
		HashedFiles: l.hashedFiles,
		Bytes:       l.totalBytes,
		HashedBytes: l.hashedBytes,
	}
	l.mu.RUnlock()
	if n := l.curName.Load(); n != nil {
		p.Current = *n
		p.HashedBytes += l.curDone.Load()
	}
	p.ReadBytes = l.readBytes.Load()
	return p
}

// ByIndex returns the file with that index.
func (l *Library) ByIndex(i uint32) (File, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if r := l.byIndex[i]; r != nil {
		return r.file(), true
	}
	return File{}, false
}

// BySHA1 returns the file with that hash (the lowest index if several
// files have the same content).
func (l *Library) BySHA1(h protocol.SHA1) (File, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if list := l.bySHA1[h]; len(list) > 0 {
		return list[0].file(), true
	}
	return File{}, false
}

// Files returns every shared file, sorted by index.
func (l *Library) Files() []File {
	l.mu.RLock()
	out := make([]File, 0, len(l.byIndex))
	for _, r := range l.byIndex {
		out = append(out, r.file())
	}
	l.mu.RUnlock()
	slices.SortFunc(out, func(a, b File) int { return cmpIndex(a.Index, b.Index) })
	return out
}

// Stats returns the number of files and their total size in KiB, capped to
// what a Pong can carry.
func (l *Library) Stats() (files, kb uint32) {
	l.mu.RLock()
	n, b := len(l.byPath), l.totalBytes
	l.mu.RUnlock()
	return uint32(min(int64(n), 1<<32-1)), uint32(min(b/1024, 1<<32-1))
}

// Version changes whenever the set of names or hashes changes, so that QRP
// knows to rebuild its table. It starts at 0 and only grows.
func (l *Library) Version() uint64 { return l.version.Load() }

// Match answers a Query by the rule in the package documentation: files
// whose hash is one of the query's URNs, then files whose name holds every
// query word as a word prefix, at most MaxResults in all, restricted to the
// media types of a GGEP "M" mask. It does not look at the firewalled flag:
// that decision belongs to the caller.
func (l *Library) Match(q *protocol.Query) []File {
	if q == nil {
		return nil
	}
	return l.match(q.Search, q.URNs(), queryMediaMask(q))
}

// Search is Match for a plain string (the control API and tests). A string
// that is a URN ("urn:sha1:…" or "urn:bitprint:…") is a hash query.
func (l *Library) Search(text string) []File {
	if t := strings.TrimSpace(text); len(t) > 4 && strings.EqualFold(t[:4], "urn:") {
		if h, err := protocol.ParseURN(t); err == nil {
			return l.match(nil, []protocol.SHA1{h}, 0)
		}
	}
	return l.match([]byte(text), nil, 0)
}

// match is the search itself. With an ASCII search text of up to 256
// bytes and at most 16 words, the only allocation is the result slice.
func (l *Library) match(search []byte, urns []protocol.SHA1, mask uint8) []File {
	var nbuf [256]byte
	norm := appendNorm(nbuf[:0], search)
	var rbuf [16]wordRange
	ranges := rbuf[:0]

	l.mu.RLock()
	defer l.mu.RUnlock()
	ix := l.snap
	limit := l.maxResults

	var out []File
	for _, h := range urns {
		for _, r := range l.bySHA1[h] {
			if mask == 0 || mediaOf(r.name)&mask != 0 {
				if !containsIndex(out, r.index) {
					out = append(out, r.file())
				}
				break
			}
		}
		if len(out) >= limit {
			return out
		}
	}
	if ix == nil {
		return out
	}
	minCost := int32(-1)
	for rest := norm; len(rest) > 0; {
		var w []byte
		w, rest = nextWord(rest)
		if !usefulWord(w) {
			continue
		}
		r := ix.prefixRange(w)
		c := ix.cost(r)
		if c == 0 {
			return out // a word no name has: AND fails
		}
		if minCost < 0 || c < minCost {
			minCost = c
		}
		if !slices.Contains(ranges, r) { // "ab ab ab …" costs one word, not 300
			ranges = append(ranges, r)
		}
	}
	if len(ranges) == 0 {
		return out
	}
	if out == nil {
		out = make([]File, 0, min(limit, int(minCost)))
	}
	nurn := len(out)
	ix.search(ranges, func(f int32) bool {
		r := ix.files[f]
		if r.gone || (mask != 0 && ix.media[f]&mask == 0) || containsIndex(out[:nurn], r.index) {
			return true
		}
		out = append(out, r.file())
		return len(out) < limit
	})
	return out
}

// nextWord splits the first word off a normalised buffer.
func nextWord(n []byte) (w, rest []byte) {
	i := 0
	for i < len(n) && n[i] != ' ' {
		i++
	}
	if i < len(n) {
		return n[:i], n[i+1:]
	}
	return n, nil
}

func containsIndex(fs []File, i uint32) bool {
	for k := range fs {
		if fs[k].Index == i {
			return true
		}
	}
	return false
}
