package share

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// PartialPrefix starts the names the downloader gives files it has not
// finished. Such names are hidden (they start with "."), and skipName
// refuses them explicitly as well.
const PartialPrefix = ".gnutella-partial-"

// partialSuffixes are the endings of partial or temporary files of common
// downloaders and editors; those files are never shared.
var partialSuffixes = []string{
	".part", ".partial", ".tmp", ".temp", ".crdownload", ".download", ".!ut", ".!qb",
	".swp", ".swo", "~",
}

// skipName reports whether a file of that base name must not be shared:
// hidden ("." first, which covers PartialPrefix), partial or temporary
// (partialSuffixes, case-insensitively), or an Office lock file ("~$").
func skipName(name string) bool {
	if name == "" || name[0] == '.' || strings.HasPrefix(name, "~$") {
		return true
	}
	for _, s := range partialSuffixes {
		if len(name) >= len(s) && strings.EqualFold(name[len(name)-len(s):], s) {
			return true
		}
	}
	return false
}

// scanned is one file the walk found.
type scanned struct {
	path, name string
	size       int64
	mtime      time.Time
}

// walk lists the shareable files under every root. A root that cannot be
// read fails the whole walk (so that an unmounted disk does not unshare
// everything and lose its indexes); an unreadable entry below a root is
// skipped.
func (l *Library) walk(ctx context.Context) (map[string]scanned, error) {
	found := map[string]scanned{}
	for _, root := range l.roots {
		fi, err := os.Lstat(root)
		if err != nil {
			return nil, fmt.Errorf("share: %w", err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("share: %s is no longer a folder", root)
		}
		err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if cerr := ctx.Err(); cerr != nil {
				return cerr
			}
			if err != nil {
				if path == root {
					return err
				}
				l.log.Debug().Err(err).Str("path", path).Msg("share: skipped")
				if d != nil && d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
			if path == root {
				return nil
			}
			name := d.Name()
			t := d.Type()
			switch {
			case t&fs.ModeSymlink != 0:
				return nil // never followed (see the package documentation)
			case d.IsDir():
				if name[0] == '.' {
					return fs.SkipDir
				}
				return nil
			case !t.IsRegular() || skipName(name):
				return nil
			}
			info, err := d.Info() // lstat: the entry itself
			if err != nil || !info.Mode().IsRegular() || info.Size() <= 0 {
				return nil
			}
			if !l.inRoot(path) { // cannot happen without symlinks; belt and braces
				return nil
			}
			found[path] = scanned{path: path, name: displayName(name), size: info.Size(), mtime: info.ModTime()}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("share: scanning %s: %w", root, err)
		}
	}
	return found, nil
}

// inRoot reports whether the cleaned absolute path lies strictly inside
// one of the roots.
func (l *Library) inRoot(path string) bool {
	for _, root := range l.roots {
		if within(root, path) {
			return true
		}
	}
	return false
}

// within reports whether path is strictly inside root (both clean and
// absolute).
func within(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	if err != nil || rel == "." || filepath.IsAbs(rel) {
		return false
	}
	return rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// displayName is the name a file shows in hits: invalid UTF-8 becomes
// U+FFFD and control characters become "_", so that the name is safe to
// put in a QueryHit and to print.
func displayName(name string) string {
	ok := utf8.ValidString(name)
	if ok {
		for _, r := range name {
			if unicode.IsControl(r) {
				ok = false
				break
			}
		}
	}
	if ok {
		return name
	}
	name = strings.ToValidUTF8(name, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '_'
		}
		return r
	}, name)
}

// Errors of OpenFile.
var (
	ErrNotShared = errors.New("share: no such shared file")
	ErrChanged   = errors.New("share: file changed on disk since it was scanned")
)

// OpenFile opens a shared file for upload, re-checking on the spot what
// the scan checked: the path has no symlink in it (so it is still inside a
// share), it is a regular file, and its size and modification time are
// those of the library (otherwise its hash and its hits are stale:
// ErrChanged, and a Rescan will pick it up). The caller closes the file.
func (l *Library) OpenFile(index uint32) (*os.File, File, error) {
	f, ok := l.ByIndex(index)
	if !ok {
		return nil, File{}, ErrNotShared
	}
	if real, err := filepath.EvalSymlinks(f.Path); err != nil || real != f.Path || !l.inRoot(real) {
		return nil, File{}, ErrNotShared
	}
	lfi, err := os.Lstat(f.Path)
	if err != nil || !lfi.Mode().IsRegular() {
		return nil, File{}, ErrNotShared
	}
	fh, err := os.Open(f.Path)
	if err != nil {
		return nil, File{}, err
	}
	fi, err := fh.Stat()
	switch {
	case err != nil:
	case !os.SameFile(lfi, fi) || !fi.Mode().IsRegular():
		err = ErrNotShared
	case fi.Size() != f.Size || !fi.ModTime().Equal(f.ModTime):
		err = ErrChanged
	}
	if err != nil {
		fh.Close()
		return nil, File{}, err
	}
	return fh, f, nil
}
