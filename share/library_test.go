package share

import (
	"context"
	"crypto/sha1"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"gnutella/protocol"
	"gnutella/testnet/await"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// mkfile creates root/rel with the given content, making folders.
func mkfile(t testing.TB, root, rel, content string) string {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// realDir is t.TempDir() with symlinks resolved (TMPDIR may be a link).
func realDir(t testing.TB) string {
	t.Helper()
	d, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func openLib(t testing.TB, cfg Config) *Library {
	t.Helper()
	l, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func rescan(t testing.TB, l *Library) {
	t.Helper()
	if err := l.Rescan(); err != nil {
		t.Fatal(err)
	}
}

func names(fs []File) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Name)
	}
	slices.Sort(out)
	return out
}

func indexOf(t testing.TB, l *Library) map[string]uint32 {
	t.Helper()
	m := map[string]uint32{}
	for _, f := range l.Files() {
		m[f.Path] = f.Index
	}
	return m
}

func TestOpenValidates(t *testing.T) {
	d := realDir(t)
	file := mkfile(t, d, "f.txt", "x")
	for _, dirs := range [][]string{{filepath.Join(d, "missing")}, {file}, {""}} {
		if _, err := Open(Config{Dirs: dirs}); err == nil {
			t.Errorf("Open(%q) succeeded", dirs)
		}
	}
	l, err := Open(Config{})
	if err != nil {
		t.Fatal(err)
	}
	rescan(t, l)
	if n := len(l.Files()); n != 0 {
		t.Errorf("no folders, %d files", n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Rescan(); !errors.Is(err, ErrClosed) {
		t.Errorf("Rescan after Close: %v", err)
	}
	if err := l.HashAll(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("HashAll after Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestScanWhatIsShared builds a folder with everything that must and must
// not be shared, including symlinks that lead out.
func TestScanWhatIsShared(t *testing.T) {
	base := realDir(t)
	root := filepath.Join(base, "share")
	sibling := filepath.Join(base, "sibling")
	mkfile(t, sibling, "secret.txt", "outside the share")
	mkfile(t, sibling, "deep/secret2.txt", "outside the share")

	mkfile(t, root, "alpha.txt", "a")
	mkfile(t, root, "sub/deeper/beta song.mp3", "bb")
	mkfile(t, root, "sub/notes..txt", "ccc")
	mkfile(t, root, "sub/weird\nname.txt", "dddd")
	mkfile(t, root, "sub/bad\xffutf8.txt", "eeeee")
	// Not shared:
	mkfile(t, root, ".hidden.txt", "h")
	mkfile(t, root, ".hiddendir/visible.txt", "h")
	mkfile(t, root, "sub/.gnutella-partial-movie.avi", "p")
	mkfile(t, root, "sub/movie.avi.part", "p")
	mkfile(t, root, "sub/x.tmp", "p")
	mkfile(t, root, "sub/x.TMP", "p")
	mkfile(t, root, "sub/edit.txt~", "p")
	mkfile(t, root, "sub/~$report.doc", "p")
	mkfile(t, root, "sub/dl.crdownload", "p")
	mkfile(t, root, "empty.txt", "")
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"passwd":         "/etc/passwd",
		"etc":            "/etc",
		"sibling-file":   "../sibling/secret.txt",
		"sibling-dir":    "../sibling",
		"sub/up":         "../..",
		"sub/abs-secret": filepath.Join(sibling, "secret.txt"),
		"inside-file":    "alpha.txt",
		"inside-dir":     "sub",
		"loop":           ".",
		"dangling":       "nowhere",
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}

	l := openLib(t, Config{Dirs: []string{root, filepath.Join(root, "sub")}}) // overlapping roots
	rescan(t, l)
	got := names(l.Files())
	want := []string{"alpha.txt", "bad\uFFFDutf8.txt", "beta song.mp3", "notes..txt", "weird_name.txt"}
	if !slices.Equal(got, want) {
		t.Fatalf("shared %q, want %q", got, want)
	}
	for _, f := range l.Files() {
		if !strings.HasPrefix(f.Path, root+string(filepath.Separator)) {
			t.Errorf("%s is outside the share", f.Path)
		}
		if strings.Contains(f.Path, "sibling") || strings.Contains(f.Path, "/etc/") {
			t.Errorf("followed a link: %s", f.Path)
		}
		if f.Size <= 0 || f.ModTime.IsZero() || !f.SHA1.IsZero() {
			t.Errorf("%+v", f)
		}
	}
	for _, q := range []string{"passwd", "etc passwd", "../../etc/passwd", "/etc/passwd", "secret", "../sibling/secret.txt", "visible", "hidden", "movie", "report", "partial", "empty", "fifo"} {
		if got := l.Search(q); len(got) != 0 {
			t.Errorf("Search(%q) = %q", q, names(got))
		}
	}
	if got := names(l.Search("notes")); !slices.Equal(got, []string{"notes..txt"}) {
		t.Errorf("Search(notes) = %q", got)
	}
	if got := names(l.Search("weird name")); !slices.Equal(got, []string{"weird_name.txt"}) {
		t.Errorf("Search(weird name) = %q", got)
	}

	// The upload path re-checks: a shared file swapped for a symlink to
	// /etc/passwd is refused.
	f := l.Search("alpha")[0]
	fh, _, err := l.OpenFile(f.Index)
	if err != nil {
		t.Fatal(err)
	}
	fh.Close()
	os.Remove(f.Path)
	if err := os.Symlink("/etc/passwd", f.Path); err != nil {
		t.Fatal(err)
	}
	if fh, _, err := l.OpenFile(f.Index); err == nil {
		fh.Close()
		t.Error("OpenFile followed a symlink swapped in after the scan")
	}
	if _, _, err := l.OpenFile(999999); !errors.Is(err, ErrNotShared) {
		t.Errorf("OpenFile(unknown) = %v", err)
	}
	if err := l.HashAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, _ := l.ByIndex(f.Index); !got.SHA1.IsZero() {
		t.Error("hashed a file through a symlink swapped in after the scan")
	}
}

// TestRootIsSymlink: a configured folder that is itself a symlink is
// resolved once; a symlinked folder inside a share is not followed.
func TestRootIsSymlink(t *testing.T) {
	base := realDir(t)
	real := filepath.Join(base, "real")
	mkfile(t, real, "in/file.txt", "x")
	link := filepath.Join(base, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	l := openLib(t, Config{Dirs: []string{link}})
	rescan(t, l)
	fs := l.Files()
	if len(fs) != 1 || fs[0].Path != filepath.Join(real, "in", "file.txt") {
		t.Fatalf("files %+v", fs)
	}

	other := filepath.Join(base, "other")
	mkfile(t, other, "elsewhere.txt", "y")
	if err := os.Symlink(other, filepath.Join(real, "in", "linked")); err != nil {
		t.Fatal(err)
	}
	rescan(t, l)
	if got := names(l.Files()); !slices.Equal(got, []string{"file.txt"}) {
		t.Errorf("after a symlinked folder appeared: %q", got)
	}
}

func TestIndexesStableAcrossRescans(t *testing.T) {
	root := realDir(t)
	for _, n := range []string{"one.txt", "two.txt", "three.txt"} {
		mkfile(t, root, "d/"+n, n)
	}
	l := openLib(t, Config{Dirs: []string{root}})
	rescan(t, l)
	v1 := l.Version()
	before := indexOf(t, l)
	if len(before) != 3 || v1 == 0 {
		t.Fatalf("%v, version %d", before, v1)
	}
	rescan(t, l)
	if l.Version() != v1 {
		t.Error("a rescan with no change bumped the version")
	}

	os.Remove(filepath.Join(root, "d", "two.txt"))
	mkfile(t, root, "d/four.txt", "four")
	mkfile(t, root, "d/one.txt", "one, longer now")
	rescan(t, l)
	after := indexOf(t, l)
	if l.Version() == v1 {
		t.Error("version did not change")
	}
	for _, n := range []string{"one.txt", "three.txt"} {
		p := filepath.Join(root, "d", n)
		if after[p] != before[p] {
			t.Errorf("%s: index %d, was %d", n, after[p], before[p])
		}
	}
	four := after[filepath.Join(root, "d", "four.txt")]
	for _, i := range before {
		if four == i {
			t.Errorf("four.txt reused index %d", i)
		}
	}
	if _, ok := l.ByIndex(before[filepath.Join(root, "d", "two.txt")]); ok {
		t.Error("removed file still found by index")
	}
	if got := l.Search("two"); len(got) != 0 {
		t.Errorf("removed file still found by name: %v", got)
	}
	if f, _ := l.ByIndex(after[filepath.Join(root, "d", "one.txt")]); f.Size != int64(len("one, longer now")) {
		t.Errorf("changed file has size %d", f.Size)
	}
}

func fileSHA1(t testing.TB, p string) protocol.SHA1 {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha1.Sum(b)
}

func TestHashCacheAndRestart(t *testing.T) {
	root, data := realDir(t), realDir(t)
	paths := []string{
		mkfile(t, root, "a/first.txt", strings.Repeat("1", 3000)),
		mkfile(t, root, "a/second file.bin", strings.Repeat("2", 5000)),
		mkfile(t, root, "b/third.mp3", strings.Repeat("3", 7000)),
		mkfile(t, root, "b/odd\nname \"quoted\" \xff.txt", "odd"),
	}
	cfg := Config{Dirs: []string{root}, DataDir: data}

	l, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rescan(t, l)
	p := l.Progress()
	if p.Files != 4 || p.HashedFiles != 0 || p.Bytes != 15003 || p.HashedBytes != 0 || p.ReadBytes != 0 {
		t.Fatalf("before hashing: %+v", p)
	}
	// Answerable by name before the hash is known.
	if got := l.Search("third"); len(got) != 1 || !got[0].SHA1.IsZero() {
		t.Fatalf("before hashing: %+v", got)
	}
	v := l.Version()
	if err := l.HashAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	p = l.Progress()
	if p.Files != 4 || p.HashedFiles != 4 || p.HashedBytes != 15003 || p.ReadBytes != 15003 || p.Current != "" {
		t.Fatalf("after hashing: %+v", p)
	}
	if l.Version() == v {
		t.Error("hashing did not bump the version")
	}
	idx := indexOf(t, l)
	for _, path := range paths {
		f, ok := l.ByIndex(idx[path])
		if !ok || f.SHA1 != fileSHA1(t, path) {
			t.Fatalf("%s: %+v", path, f)
		}
		if g, ok := l.BySHA1(f.SHA1); !ok || g.Index != f.Index {
			t.Errorf("BySHA1(%s) = %+v", f.SHA1, g)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// Restart: same indexes, hashes straight from the cache, nothing read.
	l2 := openLib(t, cfg)
	if err := l2.Close(); err != nil { // Open+Close without a scan must keep the cache
		t.Fatal(err)
	}
	l2 = openLib(t, cfg)
	rescan(t, l2)
	if got := indexOf(t, l2); !maps.Equal(got, idx) {
		t.Errorf("indexes after restart %v, want %v", got, idx)
	}
	if p := l2.Progress(); p.HashedFiles != 4 || p.ReadBytes != 0 {
		t.Errorf("after restart: %+v", p)
	}
	if err := l2.HashAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p := l2.Progress(); p.ReadBytes != 0 {
		t.Errorf("restart hashed %d bytes", p.ReadBytes)
	}
	for _, path := range paths {
		if f, _ := l2.ByIndex(idx[path]); f.SHA1 != fileSHA1(t, path) {
			t.Errorf("%s: hash %s after restart", path, f.SHA1)
		}
	}

	// A file changed while we were down is hashed again, and only it; a
	// new file gets a new index.
	mkfile(t, root, "a/first.txt", strings.Repeat("X", 3000))
	future := time.Now().Add(time.Hour)
	os.Chtimes(paths[0], future, future)
	newPath := mkfile(t, root, "c/fourth.txt", "4444")
	l2.Close()
	l3 := openLib(t, cfg)
	rescan(t, l3)
	if err := l3.HashAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p := l3.Progress(); p.ReadBytes != 3004 || p.HashedFiles != 5 {
		t.Errorf("after a change: %+v", p)
	}
	got := indexOf(t, l3)
	for _, path := range paths {
		if got[path] != idx[path] {
			t.Errorf("%s: index %d, want %d", path, got[path], idx[path])
		}
	}
	if slices.Contains(mapValues(idx), got[newPath]) || got[newPath] == 0 {
		t.Errorf("new file got index %d", got[newPath])
	}
	if f, _ := l3.ByIndex(idx[paths[0]]); f.SHA1 != fileSHA1(t, paths[0]) {
		t.Error("changed file kept its old hash")
	}
}

func TestCorruptCache(t *testing.T) {
	root, data := realDir(t), realDir(t)
	mkfile(t, root, "f.txt", "content")
	for _, junk := range []string{"garbage", cacheMagic + "\nnext x\n1 2 3\n0 1 1 - \"/x\"\n5 7 1 NOTBASE32 \"/y\"\n"} {
		os.WriteFile(filepath.Join(data, cacheFileName), []byte(junk), 0o644)
		l := openLib(t, Config{Dirs: []string{root}, DataDir: data})
		rescan(t, l)
		if err := l.HashAll(context.Background()); err != nil {
			t.Fatal(err)
		}
		if p := l.Progress(); p.HashedFiles != 1 || p.ReadBytes != 7 {
			t.Errorf("%+v", p)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(filepath.Join(data, cacheFileName))
	if !strings.HasPrefix(string(b), cacheMagic+"\n") {
		t.Errorf("cache not rewritten: %q", b)
	}
}

func TestRescanMissingRoot(t *testing.T) {
	base := realDir(t)
	a, b := filepath.Join(base, "a"), filepath.Join(base, "b")
	mkfile(t, a, "one.txt", "1")
	mkfile(t, b, "two.txt", "2")
	l := openLib(t, Config{Dirs: []string{a, b}})
	rescan(t, l)
	before := indexOf(t, l)
	if err := os.RemoveAll(b); err != nil {
		t.Fatal(err)
	}
	if err := l.Rescan(); err == nil {
		t.Fatal("Rescan with a folder gone succeeded")
	}
	if got := indexOf(t, l); !maps.Equal(got, before) {
		t.Errorf("a failed rescan changed the library: %v", got)
	}
	// A folder replaced by a symlink is refused too.
	if err := os.Symlink(a, b); err != nil {
		t.Fatal(err)
	}
	if err := l.Rescan(); err == nil {
		t.Error("Rescan through a folder swapped for a symlink succeeded")
	}
}

func TestHashAllCancel(t *testing.T) {
	root := realDir(t)
	for i := 0; i < 3; i++ {
		mkfile(t, root, "f"+string(rune('a'+i))+".bin", strings.Repeat("z", 1<<20))
	}
	l := openLib(t, Config{Dirs: []string{root}})
	rescan(t, l)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.HashAll(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("HashAll(cancelled) = %v", err)
	}
	if p := l.Progress(); p.HashedFiles != 0 {
		t.Errorf("%+v", p)
	}
}

func TestStats(t *testing.T) {
	root := realDir(t)
	mkfile(t, root, "a", strings.Repeat("a", 2048))
	mkfile(t, root, "b", strings.Repeat("b", 1024))
	l := openLib(t, Config{Dirs: []string{root}})
	rescan(t, l)
	if n, kb := l.Stats(); n != 2 || kb != 3 {
		t.Errorf("Stats = %d, %d", n, kb)
	}
}

// TestStartAndClose runs the background goroutine with a short rescan
// interval, sees it find and hash files, and checks that Close leaves no
// goroutine behind.
func TestStartAndClose(t *testing.T) {
	defer goleak.VerifyNone(t)
	root, data := realDir(t), realDir(t)
	mkfile(t, root, "first.txt", "1")
	l, err := Open(Config{Dirs: []string{root}, DataDir: data, RescanInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	l.Start()
	l.Start() // no second goroutine
	await.Until(t, "first.txt hashed", func() bool { p := l.Progress(); return p.Files == 1 && p.HashedFiles == 1 })
	mkfile(t, root, "second.txt", "22")
	await.Until(t, "second.txt found by a periodic rescan and hashed", func() bool {
		p := l.Progress()
		return p.Files == 2 && p.HashedFiles == 2
	})
	if got := l.Search("second"); len(got) != 1 || got[0].SHA1 != fileSHA1(t, filepath.Join(root, "second.txt")) {
		t.Errorf("%+v", got)
	}
	// A large file being hashed when Close comes: Close must not wait for
	// the whole file.
	mkfile(t, root, "big.bin", strings.Repeat("b", 64<<20))
	var p Progress
	await.Until(t, "big.bin being hashed", func() bool {
		p = l.Progress()
		return p.Current == "big.bin" && p.HashedBytes > 3 || p.HashedFiles == 3
	})
	if p.HashedFiles == 3 {
		t.Log("hashing finished before Progress could see it")
	} else if p.HashedBytes >= p.Bytes || p.HashedFiles != 2 || p.Files != 3 {
		t.Errorf("while hashing: %+v", p)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l.Start() // after Close: nothing
	if _, err := os.Stat(filepath.Join(data, cacheFileName)); err != nil {
		t.Errorf("no cache saved: %v", err)
	}
}

// TestStartWithoutInterval: with RescanInterval 0 the goroutine scans once,
// then only on Rescan calls, and hashes after each. In a synctest bubble,
// synctest.Wait returns once the goroutine has nothing left to do, so "it
// did not rescan" is seen without guessing how long to wait.
func TestStartWithoutInterval(t *testing.T) {
	defer goleak.VerifyNone(t)
	root := realDir(t)
	mkfile(t, root, "first.txt", "1")
	synctest.Test(t, func(t *testing.T) {
		l, err := Open(Config{Dirs: []string{root}})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		l.Start()
		synctest.Wait()
		if p := l.Progress(); p.Files != 1 || p.HashedFiles != 1 {
			t.Fatalf("after the first scan: %+v", p)
		}
		mkfile(t, root, "second.txt", "22")
		// An hour of the bubble's fake time passes at once (nothing else is waiting): any periodic rescan
		// would have run by then.
		time.Sleep(time.Hour)
		synctest.Wait()
		if n := l.Progress().Files; n != 1 {
			t.Errorf("rescanned on its own: %d files", n)
		}
		rescan(t, l)
		synctest.Wait()
		if p := l.Progress(); p.Files != 2 || p.HashedFiles != 2 {
			t.Errorf("after Rescan: %+v", p)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestConcurrentMatchDuringRescan is for -race: searches run while files
// come and go, rescans run and hashing goes on.
func TestConcurrentMatchDuringRescan(t *testing.T) {
	root := realDir(t)
	for i := 0; i < 200; i++ {
		mkfile(t, root, "dir"+strconv.Itoa(i%7)+"/kangaroo song "+strconv.Itoa(i)+".mp3", strings.Repeat("k", i+1))
	}
	l := openLib(t, Config{Dirs: []string{root}, MaxResults: 1000})
	rescan(t, l)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := protocol.NewQuery("kangaroo song", 0)
			for ctx.Err() == nil {
				for _, f := range l.Match(q) {
					if !strings.Contains(f.Name, "kangaroo song") {
						t.Errorf("bad hit %q", f.Name)
						return
					}
					if !f.SHA1.IsZero() {
						if g, ok := l.BySHA1(f.SHA1); ok && g.SHA1 != f.SHA1 { // it may be gone by now
							t.Errorf("BySHA1 mismatch")
						}
					}
				}
				l.Search("kang")
				l.Files()
				l.Progress()
				l.Stats()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if err := l.HashAll(ctx); err != nil && ctx.Err() == nil {
				t.Error(err)
			}
		}
	}()
	for i := 0; ctx.Err() == nil && i < 40; i++ {
		p := filepath.Join(root, "dir"+strconv.Itoa(i%7), "kangaroo song "+strconv.Itoa(i)+".mp3")
		if i%2 == 0 {
			os.Remove(p)
		} else {
			mkfile(t, root, "new/kangaroo song extra "+strconv.Itoa(i)+".mp3", "new")
		}
		if err := l.Rescan(); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	wg.Wait()
}

func mapValues(m map[string]uint32) []uint32 {
	var out []uint32
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
