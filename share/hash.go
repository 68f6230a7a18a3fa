package share

import (
	"context"
	"crypto/sha1"
	"errors"
	"io"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"gnutella/protocol"
)

// hashBufSize is the read size of the hasher.
const hashBufSize = 1 << 20

// saveEvery is how often a long hashing pass saves the cache, so that a
// crash loses at most that much work.
const saveEvery = 30 * time.Second

// errFileChanged means the file changed while (or before) it was hashed.
var errFileChanged = errors.New("file changed during hashing")

// hashJob is a file to hash, as it was when the pass started.
type hashJob struct {
	r     *rec
	path  string
	name  string
	size  int64
	mtime time.Time
}

// HashAll computes the SHA-1 of every file that has none yet, one file at a
// time, in index order, and returns when all are done, or when ctx is done
// or the library is closed (with that error). A file that cannot be read
// is logged and left unhashed until its size or time changes; a file that
// changes while it is hashed is left for the next rescan. The cache is
// saved at the end and every 30 s during a long pass.
func (l *Library) HashAll(ctx context.Context) error {
	if l.closed.Load() {
		return ErrClosed
	}
	l.hashMu.Lock()
	defer l.hashMu.Unlock()

	l.mu.RLock()
	var todo []hashJob
	for _, r := range l.byIndex {
		if r.sha1.IsZero() && !r.hashFail {
			todo = append(todo, hashJob{r: r, path: r.path, name: r.name, size: r.size, mtime: r.mtime})
		}
	}
	l.mu.RUnlock()
	slices.SortFunc(todo, func(a, b hashJob) int { return cmpIndex(a.r.index, b.r.index) })

	buf := make([]byte, hashBufSize)
	lastSave := time.Now()
	done := 0
	var err error
	for i := range todo {
		j := &todo[i]
		if err = l.stopErr(ctx); err != nil {
			break
		}
		l.curDone.Store(0)
		l.curName.Store(&j.name)
		var h protocol.SHA1
		h, err = hashFile(ctx, l.ctx, j.path, j.size, j.mtime, buf, &l.curDone, &l.readBytes)
		l.curName.Store(nil)
		l.curDone.Store(0)
		if err != nil {
			if serr := l.stopErr(ctx); serr != nil {
				err = serr
				break
			}
			if !errors.Is(err, errFileChanged) {
				l.log.Warn().Err(err).Str("path", j.path).Msg("share: cannot hash")
				l.markHashFailed(j)
			}
			err = nil
			continue
		}
		if l.commitHash(j, h) {
			done++
		}
		if time.Since(lastSave) >= saveEvery {
			if serr := l.save(); serr != nil {
				l.log.Warn().Err(serr).Msg("share: saving the hash cache failed")
			}
			lastSave = time.Now()
		}
	}
	if done > 0 {
		l.log.Debug().Int("files", done).Msg("share: hashed")
		if serr := l.save(); serr != nil {
			l.log.Warn().Err(serr).Msg("share: saving the hash cache failed")
		}
	}
	return err
}

// stopErr is ctx's error, or ErrClosed once the library is closing.
func (l *Library) stopErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if l.ctx.Err() != nil {
		return ErrClosed
	}
	return nil
}

// commitHash stores h as the hash of the job's file if the file is still
// the one that was hashed.
func (l *Library) commitHash(j *hashJob, h protocol.SHA1) bool {
	l.mu.Lock()
	r := j.r
	ok := !r.gone && r.sha1.IsZero() && r.size == j.size && r.mtime.Equal(j.mtime)
	if ok {
		r.sha1 = h
		l.addHashLocked(r)
		l.dirty = true
	}
	l.mu.Unlock()
	if ok {
		l.version.Add(1)
	}
	return ok
}

func (l *Library) markHashFailed(j *hashJob) {
	l.mu.Lock()
	if r := j.r; r.size == j.size && r.mtime.Equal(j.mtime) {
		r.hashFail = true
	}
	l.mu.Unlock()
}

// hashFile returns the SHA-1 of the regular file at path, provided it has
// the given size and modification time before and after. It stops early
// when ctx or stop is done. done counts the bytes of this file hashed so
// far; read counts all bytes read.
func hashFile(ctx, stop context.Context, path string, size int64, mtime time.Time, buf []byte, done, read *atomic.Int64) (protocol.SHA1, error) {
	var h protocol.SHA1
	lfi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return h, errFileChanged // removed since the scan: the next one drops it
	}
	if err != nil {
		return h, err
	}
	if !lfi.Mode().IsRegular() || lfi.Size() != size || !lfi.ModTime().Equal(mtime) {
		return h, errFileChanged
	}
	f, err := os.Open(path)
	if err != nil {
		return h, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return h, err
	}
	if !os.SameFile(lfi, fi) {
		return h, errFileChanged // replaced (by a symlink, say) between the two
	}
	s := sha1.New()
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return h, err
		}
		if err := stop.Err(); err != nil {
			return h, ErrClosed
		}
		k, err := f.Read(buf)
		if k > 0 {
			s.Write(buf[:k])
			n += int64(k)
			done.Add(int64(k))
			read.Add(int64(k))
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return h, err
		}
	}
	if fi, err = f.Stat(); err != nil {
		return h, err
	}
	if n != size || fi.Size() != size || !fi.ModTime().Equal(mtime) {
		return h, errFileChanged
	}
	s.Sum(h[:0])
	return h, nil
}
