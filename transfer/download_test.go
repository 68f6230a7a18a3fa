package transfer

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gnutella/firewall"
	"gnutella/protocol"
	"gnutella/share"
	"gnutella/testnet/await"
)

func newDownloader(t *testing.T, d *Downloader) *Downloader {
	t.Helper()
	if d.Dir == "" {
		d.Dir = t.TempDir()
	}
	if d.UserAgent == "" {
		d.UserAgent = "gnutella/test"
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// waitDone waits for x to end (as await waits: until shortly before the
// test's own deadline) and returns its error.
func waitDone(t *testing.T, x *Download) error {
	t.Helper()
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { done <- x.Wait(ctx) }()
	return await.Recv(t, fmt.Sprintf("the download of %s to end", x.Status().Name), done)
}

// dirFiles lists the names in dir, sorted.
func dirFiles(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

func checkFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes, sha1 %x; want %d bytes, sha1 %x", path, len(got), sha1.Sum(got), len(want), sha1.Sum(want))
	}
}

func reqOf(f share.File, srcs ...Source) Request {
	return Request{Name: f.Name, Size: f.Size, SHA1: f.SHA1, Sources: srcs}
}

func TestDownloadDirect(t *testing.T) {
	fx := newUploadFixture(t, &Server{PerIP: -1})
	d := newDownloader(t, &Downloader{AddrPolicy: lanPolicy})
	x, err := d.Add(reqOf(fx.a, Source{Addr: fx.ts.addr, Index: 1, Name: fx.a.Name}))
	if err != nil {
		t.Fatal(err)
	}
	if err := waitDone(t, x); err != nil {
		t.Fatal(err)
	}
	st := x.Status()
	if st.State != StateDone || st.Have != fx.a.Size || st.Path != filepath.Join(d.Dir, fx.a.Name) {
		t.Fatalf("status %+v", st)
	}
	checkFile(t, st.Path, fx.aData)
	if names := dirFiles(t, d.Dir); len(names) != 1 {
		t.Fatalf("download folder holds %v", names)
	}
	reqs := fx.ts.requests()
	if len(reqs) != 1 || reqs[0].line != "GET /uri-res/N2R?"+fx.a.SHA1.String()+" HTTP/1.1" || reqs[0].rng != "bytes=0-99999" {
		t.Fatalf("requests %+v", reqs)
	}
	// Adding it again returns the same download.
	y, err := d.Add(reqOf(fx.a, Source{Addr: netip.MustParseAddrPort("127.0.0.2:1"), Index: 1}))
	if err != nil || y != x {
		t.Fatalf("dedup: %p %p %v", x, y, err)
	}
	if l := d.List(); len(l) != 1 || l[0].State != StateDone || l[0].URN != fx.a.SHA1.String() {
		t.Fatalf("List %+v", l)
	}
}

// Without a SHA-1 the file is asked for by index and name, and the URN the
// source announces is verified.
func TestDownloadByIndexLearnsURN(t *testing.T) {
	fx := newUploadFixture(t, &Server{PerIP: -1})
	d := newDownloader(t, &Downloader{AddrPolicy: lanPolicy})
	x, err := d.Add(Request{Name: fx.a.Name, Size: fx.a.Size, Sources: []Source{{Addr: fx.ts.addr, Index: 1, Name: fx.a.Name}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := waitDone(t, x); err != nil {
		t.Fatal(err)
	}
	checkFile(t, x.Status().Path, fx.aData)
	if got := x.Status().SHA1; got != fx.a.SHA1 {
		t.Fatalf("learnt %v", got)
	}
	reqs := fx.ts.requests()
	if len(reqs) != 1 || reqs[0].line != "GET /get/1/zebra%20quokka%20%28live%29.mp3 HTTP/1.1" {
		t.Fatalf("requests %+v", reqs)
	}
}

// A connection cut after N bytes is resumed with the 512-byte overlap.
func TestDownloadResumeAfterCut(t *testing.T) {
	srv := &Server{PerIP: -1, UserAgent: "gnutella/test"}
	data := content(5, 300_000)
	dir := t.TempDir()
	f := makeShared(t, dir, 3, "cut.bin", data)
	srv.Library = newFakeLibrary(f)
	const limit = 123_457
	var headLen atomic.Int64
	ts := startServer(t, srv, func(n int, c net.Conn) net.Conn {
		if n > 0 {
			return c
		}
		return &cutConn{Conn: c, limit: limit, onCut: func(head []byte) {
			if i := bytes.Index(head, []byte("\r\n\r\n")); i >= 0 {
				headLen.Store(int64(i + 4))
			}
		}}
	})
	d := newDownloader(t, &Downloader{AddrPolicy: lanPolicy})
	x, err := d.Add(reqOf(f, Source{Addr: ts.addr, Index: 3, Name: "cut.bin"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := waitDone(t, x); err != nil {
		t.Fatal(err)
	}
	checkFile(t, x.Status().Path, data)
	reqs := ts.requests()
	if len(reqs) != 2 || headLen.Load() == 0 {
		t.Fatalf("requests %+v, header %d", reqs, headLen.Load())
	}
	got := limit - headLen.Load() // body bytes the first connection carried
	if want := fmt.Sprintf("bytes=%d-299999", got-Overlap); reqs[1].rng != want {
		t.Fatalf("resumed with %q, want %q", reqs[1].rng, want)
	}
}

// A partial file whose tail is corrupt fails the overlap check; the
// downloader discards Backout bytes and resumes from there.
func TestDownloadOverlapMismatchBacksOut(t *testing.T) {
	fx := newUploadFixture(t, &Server{PerIP: -1})
	dir := t.TempDir()
	part := append([]byte(nil), fx.aData[:60_000]...)
	for i := 59_900; i < 60_000; i++ {
		part[i] ^= 0xff
	}
	if err := os.WriteFile(filepath.Join(dir, partialPrefix+fx.a.SHA1.Base32()), part, 0o644); err != nil {
		t.Fatal(err)
	}
	d := newDownloader(t, &Downloader{Dir: dir, AddrPolicy: lanPolicy})
	x, err := d.Add(reqOf(fx.a, Source{Addr: fx.ts.addr, Index: 1}))
	if err != nil {
		t.Fatal(err)
	}
	if err := waitDone(t, x); err != nil {
		t.Fatal(err)
	}
	checkFile(t, x.Status().Path, fx.aData)
	reqs := fx.ts.requests()
	want := []string{
		fmt.Sprintf("bytes=%d-99999", 60_000-Overlap),
		fmt.Sprintf("bytes=%d-99999", 60_000-Backout-Overlap),
	}
	if len(reqs) != 2 || reqs[0].rng != want[0] || reqs[1].rng != want[1] {
		t.Fatalf("requests %+v, want ranges %v", reqs, want)
	}
}

// A source whose bytes disagree with ours twice is dropped.
func TestDownloadOverlapMismatchTwiceDropsSource(t *testing.T) {
	fx := newUploadFixture(t, &Server{PerIP: -1})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, partialPrefix+fx.a.SHA1.Base32()), content(77, 80_000), 0o644); err != nil {
		t.Fatal(err)
	}
	d := newDownloader(t, &Downloader{Dir: dir, AddrPolicy: lanPolicy})
	x, _ := d.Add(reqOf(fx.a, Source{Addr: fx.ts.addr, Index: 1}))
	err := waitDone(t, x)
	if !errors.Is(err, ErrNoSources) || !strings.Contains(err.Error(), "mismatch") {
		t.Fatalf("err %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, fx.a.Name)); err == nil {
		t.Fatal("a file with the final name exists")
	}
}

// A file whose hash is wrong never appears under its name: the partial file
// is deleted, the sources (which agree with each other on the wrong file)
// dropped with a reason, and the download fails.
func TestDownloadBadHashLeavesNoFile(t *testing.T) {
	srv := &Server{PerIP: -1}
	shared := t.TempDir()
	served := makeShared(t, shared, 4, "fake.bin", content(8, 70_000))
	claimed := protocol.SHA1(sha1.Sum(content(9, 70_000)))
	served.SHA1 = claimed // the library (a liar) says it has the claimed file
	srv.Library = newFakeLibrary(served)
	ts := startServer(t, srv, nil)
	d := newDownloader(t, &Downloader{AddrPolicy: lanPolicy})
	x, err := d.Add(Request{Name: "fake.bin", Size: 70_000, SHA1: claimed, Sources: []Source{
		{Addr: ts.addr, Index: 4}, {Addr: ts.addr, Index: 5},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := waitDone(t, x); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("err %v, want a hash mismatch", err)
	}
	if names := dirFiles(t, d.Dir); len(names) != 0 {
		t.Fatalf("download folder holds %v after a bad hash", names)
	}
	st := x.Status()
	if st.State != StateFailed || st.Have != 0 || st.Sources != 0 {
		t.Fatalf("status %+v", st)
	}
	for _, ss := range st.SourceStates {
		if ss.State != SourceDropped || ss.Reason == "" {
			t.Fatalf("source %+v: want dropped with a reason", ss)
		}
	}
}

// A busy server answers 503 Retry-After 1: the downloader waits at least
// that long, then succeeds.
func TestDownloadBusyRetryAfter(t *testing.T) {
	srv := &Server{Slots: 1, PerIP: -1, RetryAfter: time.Second, QueueSize: -1}
	fx := newUploadFixture(t, srv)
	big := filepath.Join(fx.sharedDir, "big.bin")
	f, _ := os.Create(big)
	_ = f.Truncate(256 << 20)
	f.Close()
	fi, _ := os.Stat(big)
	fx.lib.add(share.File{Index: 30, Path: big, Name: "big.bin", Size: fi.Size(), ModTime: fi.ModTime()})
	holder, err := net.Dial("tcp", fx.ts.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	fmt.Fprintf(holder, "GET /get/30/big.bin HTTP/1.1\r\n\r\n")
	await.Until(t, "the only slot to be taken", srv.Busy)

	d := newDownloader(t, &Downloader{AddrPolicy: lanPolicy})
	x, _ := d.Add(reqOf(fx.b, Source{Addr: fx.ts.addr, Index: 7}))
	await.Until(t, "a 503", func() bool { return srv.Stats().Refused >= 1 })
	await.Until(t, "the download to wait", func() bool { return x.Status().State == StateWaiting })
	st := x.Status()
	if st.RetryAt.IsZero() || !strings.Contains(st.Error, "503") {
		t.Fatalf("status while busy: %+v", st)
	}
	holder.Close()
	if err := waitDone(t, x); err != nil {
		t.Fatal(err)
	}
	checkFile(t, x.Status().Path, fx.bData)
	var mine []reqRecord
	for _, r := range fx.ts.requests() {
		if strings.Contains(r.line, "N2R") {
			mine = append(mine, r)
		}
	}
	if len(mine) != 2 {
		t.Fatalf("requests %+v", mine)
	}
	if gap := mine[1].at.Sub(mine[0].at); gap < time.Second {
		t.Fatalf("retried after %v, sooner than Retry-After", gap)
	}
	// RetryAt came from the answer's Retry-After (1 s after the refused
	// request at the earliest), not from the 60 s default.
	if wait := st.RetryAt.Sub(mine[0].at); wait < time.Second || wait >= DefaultRetryAfter {
		t.Fatalf("RetryAt %v after the refused request; want Retry-After's 1 s", wait)
	}
}

// While one source is busy, another is used at once.
func TestDownloadBusySourceSkipped(t *testing.T) {
	busy := &Server{Slots: -1, RetryAfter: time.Hour, QueueSize: -1}
	fxBusy := newUploadFixture(t, busy)
	fxOK := newUploadFixture(t, &Server{PerIP: -1})
	d := newDownloader(t, &Downloader{AddrPolicy: lanPolicy})
	x, _ := d.Add(reqOf(fxOK.a, Source{Addr: fxBusy.ts.addr, Index: 1}, Source{Addr: fxOK.ts.addr, Index: 1}))
	if err := waitDone(t, x); err != nil {
		t.Fatal(err)
	}
	checkFile(t, x.Status().Path, fxOK.aData)
	// Asked at most once (the other source may have finished first): its
	// Retry-After of an hour is obeyed.
	if busy.Stats().Refused > 1 {
		t.Fatalf("busy server refused %d", busy.Stats().Refused)
	}
}

// pushFunc simulates the Push/GIV dance: the "firewalled" server dials the
// downloader's listener, sends its GIV and serves what comes back.
type pushSim struct {
	srv   *Server
	ln    net.Listener
	wg    sync.WaitGroup
	calls atomic.Int32
}

func newPushSim(t *testing.T, srv *Server) *pushSim {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pushSim{srv: srv, ln: ln}
	t.Cleanup(func() {
		ln.Close()
		srv.Close()
		p.wg.Wait()
	})
	return p
}

func (p *pushSim) push(ctx context.Context, src Source) (net.Conn, *bufio.Reader, error) {
	p.calls.Add(1)
	p.wg.Add(1)
	go func() { // the firewalled servent got our Push and calls back
		defer p.wg.Done()
		c, err := net.Dial("tcp", p.ln.Addr().String())
		if err != nil {
			return
		}
		p.srv.ServeCallback(c, protocol.GIV{Index: src.Index, ServentID: src.ServentID, Name: "file"})
	}()
	if dl, ok := ctx.Deadline(); ok {
		_ = p.ln.(*net.TCPListener).SetDeadline(dl)
	}
	c, err := p.ln.Accept()
	if err != nil {
		return nil, nil, err
	}
	br := bufio.NewReader(c)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	giv, err := protocol.ReadGIV(br)
	if err != nil || giv.ServentID != src.ServentID {
		c.Close()
		return nil, nil, fmt.Errorf("bad GIV %+v: %v", giv, err)
	}
	_ = c.SetReadDeadline(time.Time{})
	return c, br, nil
}

func TestDownloadThroughPush(t *testing.T) {
	srv := &Server{PerIP: -1}
	fx := newUploadFixture(t, srv)
	sim := newPushSim(t, srv)
	sid := protocol.GUID{0x0e, 0xfd, 0x31, 0x02, 0x6d, 0x8d, 0xef, 0x95, 0x48, 0xee, 0x17, 0xf2, 0x19, 0xe0, 0x75, 0x03}
	var dials atomic.Int32
	d := newDownloader(t, &Downloader{
		Push: sim.push,
		Dial: firewall.DialFunc(func(ctx context.Context, addr string) (net.Conn, error) {
			dials.Add(1)
			return firewall.TCPDialer{}.Dial(ctx, addr)
		}),
	})
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := addrPortOf(closed.Addr())
	closed.Close()

	// 1. the hit said push; 2. a private address while we are not on a
	// private network; 3. a direct connect that fails (lanPolicy below).
	x1, _ := d.Add(reqOf(fx.a, Source{Addr: netip.MustParseAddrPort("1.2.3.4:6346"), Index: 1, ServentID: sid, Push: true}))
	x2, _ := d.Add(reqOf(fx.b, Source{Addr: netip.MustParseAddrPort("192.168.1.9:6346"), Index: 7, ServentID: sid}))
	for _, x := range []*Download{x1, x2} {
		if err := waitDone(t, x); err != nil {
			t.Fatal(err)
		}
	}
	checkFile(t, x1.Status().Path, fx.aData)
	checkFile(t, x2.Status().Path, fx.bData)
	if dials.Load() != 0 || sim.calls.Load() != 2 {
		t.Fatalf("dials %d, pushes %d", dials.Load(), sim.calls.Load())
	}

	d2 := newDownloader(t, &Downloader{Push: sim.push, AddrPolicy: lanPolicy, Dial: d.Dial})
	data := content(11, 12345)
	f3 := makeShared(t, fx.sharedDir, 12, "third.bin", data)
	fx.lib.add(f3)
	x3, _ := d2.Add(reqOf(f3, Source{Addr: closedAddr, Index: 12, ServentID: sid}))
	if err := waitDone(t, x3); err != nil {
		t.Fatal(err)
	}
	checkFile(t, x3.Status().Path, data)
	if dials.Load() != 1 || sim.calls.Load() != 3 {
		t.Fatalf("dials %d, pushes %d", dials.Load(), sim.calls.Load())
	}

	// Without a Push function a push source is dropped.
	d3 := newDownloader(t, &Downloader{})
	x4, _ := d3.Add(reqOf(fx.a, Source{Addr: netip.MustParseAddrPort("1.2.3.4:6346"), Index: 1, ServentID: sid, Push: true}))
	if err := waitDone(t, x4); !errors.Is(err, ErrNoSources) {
		t.Fatalf("err %v", err)
	}
}

// The queue survives a restart: the second Downloader resumes from the
// first one's partial file.
func TestDownloadQueueSurvivesRestart(t *testing.T) {
	srv := &Server{PerIP: -1, UserAgent: "gnutella/test"}
	data := content(21, 400_000)
	shared := t.TempDir()
	f := makeShared(t, shared, 2, "restart.bin", data)
	srv.Library = newFakeLibrary(f)
	release := make(chan struct{})  // the first connection stalls after 150,000 bytes
	release2 := make(chan struct{}) // the next ones until the reloaded queue was checked
	ts := startServer(t, srv, func(n int, c net.Conn) net.Conn {
		if n == 0 {
			return newStallConn(c, 150_000, release)
		}
		return newStallConn(c, 0, release2)
	})
	defer close(release)
	dir := t.TempDir()
	state := filepath.Join(t.TempDir(), "downloads.json")
	d1 := &Downloader{Dir: dir, StateFile: state, AddrPolicy: lanPolicy, UserAgent: "gnutella/test"}
	if err := d1.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	x, _ := d1.Add(reqOf(f, Source{Addr: ts.addr, Index: 2, Name: "restart.bin", ServentID: protocol.GUID{7}}))
	await.Until(t, "part of the file", func() bool { return x.Status().Have >= 140_000 })
	if err := d1.Close(); err != nil {
		t.Fatal(err)
	}
	have := fileSize(filepath.Join(dir, partialPrefix+f.SHA1.Base32()))
	if have < 140_000 || have >= 150_000 {
		t.Fatalf("partial file has %d bytes", have)
	}
	if _, err := d1.Add(reqOf(f, Source{Addr: ts.addr})); !errors.Is(err, ErrClosed) {
		t.Fatalf("Add after Close: %v", err)
	}

	d2 := newDownloader(t, &Downloader{Dir: dir, StateFile: state, AddrPolicy: lanPolicy})
	l := d2.List()
	if len(l) != 1 || l[0].Name != "restart.bin" || l[0].Have != have || l[0].SHA1 != f.SHA1 || l[0].Sources != 1 {
		t.Fatalf("reloaded queue %+v", l)
	}
	close(release2)
	y, _ := d2.Add(reqOf(f, Source{Addr: ts.addr, Index: 2}))
	if err := waitDone(t, y); err != nil {
		t.Fatal(err)
	}
	checkFile(t, y.Status().Path, data)
	reqs := ts.requests()
	if last := reqs[len(reqs)-1]; last.rng != "bytes="+strconv.FormatInt(have-Overlap, 10)+"-399999" {
		t.Fatalf("resumed with %+v", last)
	}
	// Done downloads stay listed after another restart.
	if err := d2.Close(); err != nil {
		t.Fatal(err)
	}
	d3 := newDownloader(t, &Downloader{Dir: dir, StateFile: state, AddrPolicy: lanPolicy})
	if l := d3.List(); len(l) != 1 || l[0].State != StateDone || l[0].Path != filepath.Join(dir, "restart.bin") {
		t.Fatalf("after the second restart %+v", l)
	}
}

func TestDownloadSeveralAtOnce(t *testing.T) {
	fx := newUploadFixture(t, &Server{PerIP: -1, Slots: 8})
	var files []share.File
	var datas [][]byte
	for i := 0; i < 5; i++ {
		data := content(uint64(100+i), 50_000+i*1000)
		f := makeShared(t, fx.sharedDir, uint32(40+i), fmt.Sprintf("many-%d.bin", i), data)
		fx.lib.add(f)
		files = append(files, f)
		datas = append(datas, data)
	}
	d := newDownloader(t, &Downloader{AddrPolicy: lanPolicy, MaxActive: 2})
	var xs []*Download
	for _, f := range files {
		x, err := d.Add(reqOf(f, Source{Addr: fx.ts.addr, Index: f.Index}))
		if err != nil {
			t.Fatal(err)
		}
		xs = append(xs, x)
	}
	for i, x := range xs {
		if err := waitDone(t, x); err != nil {
			t.Fatal(err)
		}
		checkFile(t, x.Status().Path, datas[i])
	}
}

// Names from the network cannot escape the download folder.
func TestDownloadNamesStayInDir(t *testing.T) {
	fx := newUploadFixture(t, &Server{PerIP: -1})
	root := t.TempDir()
	dir := filepath.Join(root, "downloads")
	d := newDownloader(t, &Downloader{Dir: dir, AddrPolicy: lanPolicy, MaxActive: 1})
	evil := []string{
		"../../escaped.bin", "/etc/passwd", "..", ".hidden", "a/../../b", `..\..\win.bin`,
		"ctrl\x00\x01\n\r\x7fchars.txt", "\u202egnp.exe", strings.Repeat("long", 100) + ".mp3", "",
	}
	for i, name := range evil {
		data := content(uint64(200+i), 1000+i)
		f := makeShared(t, fx.sharedDir, uint32(60+i), fmt.Sprintf("evil-%d", i), data)
		fx.lib.add(f)
		x, err := d.Add(Request{Name: name, Size: f.Size, SHA1: f.SHA1, Sources: []Source{{Addr: fx.ts.addr, Index: f.Index}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := waitDone(t, x); err != nil {
			t.Fatal(err)
		}
		p := x.Status().Path
		if filepath.Dir(p) != dir {
			t.Fatalf("%q landed at %s", name, p)
		}
		base := filepath.Base(p)
		if strings.HasPrefix(base, ".") || strings.ContainsAny(base, "/\\\x00\n\r\x7f\u202e") || len(base) > 255 {
			t.Fatalf("%q saved as %q", name, base)
		}
		checkFile(t, p, data)
	}
	if names := dirFiles(t, root); len(names) != 1 || names[0] != "downloads" {
		t.Fatalf("something was written outside the download folder: %v", names)
	}
	// The same name twice: the second gets " (1)".
	g1 := makeShared(t, fx.sharedDir, 90, "same-1", []byte("one"))
	g2 := makeShared(t, fx.sharedDir, 91, "same-2", []byte("two"))
	fx.lib.add(g1)
	fx.lib.add(g2)
	var paths []string
	for _, g := range []share.File{g1, g2} {
		x, _ := d.Add(Request{Name: "same.txt", Size: g.Size, SHA1: g.SHA1, Sources: []Source{{Addr: fx.ts.addr, Index: g.Index}}})
		if err := waitDone(t, x); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, filepath.Base(x.Status().Path))
	}
	if paths[0] != "same.txt" || paths[1] != "same (1).txt" {
		t.Fatalf("paths %v", paths)
	}
}

func TestSanitizeName(t *testing.T) {
	cases := map[string]string{
		"song.mp3":             "song.mp3",
		"../../etc/passwd":     "_.._etc_passwd",
		"/abs/path.txt":        "_abs_path.txt",
		"..":                   "download",
		".":                    "download",
		"":                     "download",
		"...hidden":            "hidden",
		" .x":                  "x",
		"a\x00b\x1bc\x7fd.txt": "abcd.txt",
		"trailing. . ":         "trailing",
		`C:\win\file.exe`:      "C:_win_file.exe",
		"\u202etxt.exe":        "txt.exe",
		"caf\xe9.txt":          "caf.txt",
		"日本語.txt":              "日本語.txt",
	}
	for in, want := range cases {
		if got := SanitizeName(in); got != want {
			t.Errorf("SanitizeName(%q) = %q, want %q", in, got, want)
		}
	}
	long := SanitizeName(strings.Repeat("é", 300) + ".flac")
	if len(long) > 240 || !strings.HasSuffix(long, ".flac") || !strings.HasPrefix(long, "é") {
		t.Fatalf("long name: %d bytes %q", len(long), long)
	}
}

func TestParseHelpers(t *testing.T) {
	for _, c := range []struct {
		line  string
		code  int
		minor int
		ok    bool
	}{
		{"HTTP/1.1 206 Partial Content", 206, 1, true},
		{"HTTP/1.0 503", 503, 0, true},
		{"HTTP 200 OK", 200, 1, true},
		{"HTTP/2 200 OK", 0, 0, false},
		{"HTTP/1.1 20 OK", 0, 0, false},
		{"GNUTELLA/0.6 200 OK", 0, 0, false},
	} {
		minor, code, _, ok := parseStatusLine(c.line)
		if ok != c.ok || code != c.code || minor != c.minor {
			t.Errorf("%q: %d %d %v", c.line, minor, code, ok)
		}
	}
	for _, c := range []struct {
		v           string
		a, b, total int64
		ok          bool
	}{
		{"bytes 0-99/100", 0, 99, 100, true},
		{"bytes 5-9/*", 5, 9, -1, true},
		{"bytes=5-9/10", 5, 9, 10, true},
		{"bytes 5-10/10", 0, 0, 0, false},
		{"bytes 9-5/10", 0, 0, 0, false},
		{"bytes */10", 0, 0, 0, false},
		{"items 0-1/2", 0, 0, 0, false},
	} {
		a, b, total, ok := parseContentRange(c.v)
		if ok != c.ok || a != c.a || b != c.b || total != c.total {
			t.Errorf("%q: %d %d %d %v", c.v, a, b, total, ok)
		}
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if d, ok := parseRetryAfter("120", now); !ok || d != 2*time.Minute {
		t.Error("seconds")
	}
	if d, ok := parseRetryAfter("Thu, 01 Jan 2026 00:00:30 GMT", now); !ok || d != 30*time.Second {
		t.Errorf("date: %v %v", d, ok)
	}
	if _, ok := parseRetryAfter("soon", now); ok {
		t.Error("junk accepted")
	}
}

// Symlinks planted in the download folder are never written through: a
// partial-file symlink fails the download (our side, no source blamed), a
// final-name symlink is left alone and the file takes the next free name.
func TestDownloadPlantedSymlinks(t *testing.T) {
	fx := newUploadFixture(t, &Server{PerIP: -1})
	root := t.TempDir()
	dir := filepath.Join(root, "dl")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(root, "victim.txt")
	if err := os.WriteFile(target, []byte("victim"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, partialPrefix+fx.a.SHA1.Base32())); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, fx.b.Name)); err != nil {
		t.Fatal(err)
	}
	d := newDownloader(t, &Downloader{Dir: dir, AddrPolicy: lanPolicy})
	xa, _ := d.Add(reqOf(fx.a, Source{Addr: fx.ts.addr, Index: 1}))
	err := waitDone(t, xa)
	if err == nil || !strings.Contains(err.Error(), "partial file") {
		t.Fatalf("err %v", err)
	}
	if st := xa.Status(); st.Sources != 1 {
		t.Fatalf("the source was blamed for a local failure: %+v", st)
	}
	xb, _ := d.Add(reqOf(fx.b, Source{Addr: fx.ts.addr, Index: 7}))
	if err := waitDone(t, xb); err != nil {
		t.Fatal(err)
	}
	if p := xb.Status().Path; p != filepath.Join(dir, "notes (1).txt") {
		t.Fatalf("saved as %s", p)
	}
	checkFile(t, target, []byte("victim"))
}

// A source at a hostile address is neither dialled nor pushed: it is
// dropped.
func TestDownloadHostileSourceDropped(t *testing.T) {
	srv := &Server{PerIP: -1}
	fx := newUploadFixture(t, srv)
	sim := newPushSim(t, srv)
	h := firewall.NewHostiles(0, nil)
	h.Ban(fx.ts.addr.Addr(), time.Hour, "test ban")
	var dials atomic.Int32
	policy := lanPolicy
	policy.Hostiles = h
	d := newDownloader(t, &Downloader{
		Push:       sim.push,
		AddrPolicy: policy,
		Dial: firewall.DialFunc(func(ctx context.Context, addr string) (net.Conn, error) {
			dials.Add(1)
			return firewall.TCPDialer{}.Dial(ctx, addr)
		}),
	})
	sid := protocol.NewGUID()
	x, _ := d.Add(reqOf(fx.a, Source{Addr: fx.ts.addr, Index: 1, Name: fx.a.Name, ServentID: sid}))
	if err := waitDone(t, x); !errors.Is(err, ErrNoSources) {
		t.Fatalf("err %v, want ErrNoSources", err)
	}
	if dials.Load() != 0 || sim.calls.Load() != 0 {
		t.Fatalf("hostile source: %d dials, %d pushes", dials.Load(), sim.calls.Load())
	}
}

// Pause, resume, cancel, remove and priority, by ID, with the paused state,
// the priority and the bytes had kept across a restart.
func TestDownloadControlAcrossRestart(t *testing.T) {
	srv := &Server{PerIP: -1, UserAgent: "gnutella/test"}
	shared := t.TempDir()
	dataA, dataB := content(41, 300_000), content(42, 300_000)
	fa := makeShared(t, shared, 1, "a.bin", dataA)
	fb := makeShared(t, shared, 2, "b.bin", dataB)
	srv.Library = newFakeLibrary(fa, fb)
	// Every connection stalls after 100,000 bytes until release.
	release := make(chan struct{})
	ts := startServer(t, srv, func(n int, c net.Conn) net.Conn { return newStallConn(c, 100_000, release) })
	dir := t.TempDir()
	state := filepath.Join(t.TempDir(), "downloads.json")
	d1 := &Downloader{Dir: dir, StateFile: state, AddrPolicy: lanPolicy, UserAgent: "gnutella/test"}
	if err := d1.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	xa, _ := d1.Add(reqOf(fa, Source{Addr: ts.addr, Index: 1}))
	xb, _ := d1.Add(reqOf(fb, Source{Addr: ts.addr, Index: 2}))
	if xa.ID() == "" || xa.ID() == xb.ID() || xa.Status().ID != xa.ID() {
		t.Fatalf("IDs %q %q", xa.ID(), xb.ID())
	}
	await.Until(t, "both downloads have bytes", func() bool { return xa.Status().Have >= 50_000 && xb.Status().Have >= 50_000 })

	if err := d1.Pause(xa.ID()); err != nil {
		t.Fatal(err)
	}
	await.Until(t, "a paused download to stop", func() bool {
		st, _ := d1.Get(xa.ID())
		return st.State == StatePaused && st.ActiveSources == 0
	})
	if err := d1.Pause(xa.ID()); err != nil {
		t.Fatalf("pausing twice: %v", err)
	}
	if err := d1.Remove(xa.ID()); !errors.Is(err, ErrStillActive) {
		t.Fatalf("Remove of a paused download: %v", err)
	}
	if err := d1.SetPriority(xa.ID(), 5); err != nil {
		t.Fatal(err)
	}

	partialB := filepath.Join(dir, partialPrefix+fb.SHA1.Base32())
	if err := d1.Cancel(xb.ID()); err != nil {
		t.Fatal(err)
	}
	if err := waitDone(t, xb); !errors.Is(err, ErrCancelled) {
		t.Fatalf("Wait of a cancelled download: %v", err)
	}
	await.Until(t, "the cancelled partial file to go", func() bool { _, err := os.Lstat(partialB); return err != nil })
	if st, _ := d1.Get(xb.ID()); st.State != StateCancelled || st.Have != 0 {
		t.Fatalf("cancelled %+v", st)
	}
	if err := d1.Cancel(xb.ID()); !errors.Is(err, ErrWrongState) {
		t.Fatalf("cancelling twice: %v", err)
	}
	await.Until(t, "the cancelled download to wind down", func() bool { return d1.Remove(xb.ID()) == nil })
	if _, err := d1.Get(xb.ID()); !errors.Is(err, ErrUnknownDownload) {
		t.Fatalf("Get after Remove: %v", err)
	}
	for _, err := range []error{d1.Pause("nope"), d1.Resume("nope"), d1.Cancel("nope"), d1.Remove("nope"), d1.SetPriority("nope", 1)} {
		if !errors.Is(err, ErrUnknownDownload) {
			t.Fatalf("unknown ID: %v", err)
		}
	}
	if err := d1.Close(); err != nil {
		t.Fatal(err)
	}
	have := xa.Status().Have

	d2 := newDownloader(t, &Downloader{Dir: dir, StateFile: state, AddrPolicy: lanPolicy})
	l := d2.List()
	if len(l) != 1 || l[0].ID != xa.ID() || l[0].State != StatePaused || l[0].Priority != 5 || l[0].Have != have || have == 0 {
		t.Fatalf("after the restart %+v (had %d)", l, have)
	}
	close(release)
	if err := d2.Resume(xa.ID()); err != nil {
		t.Fatal(err)
	}
	y, _ := d2.Add(reqOf(fa, Source{Addr: ts.addr, Index: 1}))
	if y.ID() != xa.ID() {
		t.Fatalf("the same file got a new ID %q", y.ID())
	}
	if err := waitDone(t, y); err != nil {
		t.Fatal(err)
	}
	checkFile(t, y.Status().Path, dataA)
	reqs := ts.requests()
	if last := reqs[len(reqs)-1]; last.rng != fmt.Sprintf("bytes=%d-299999", have-Overlap) {
		t.Fatalf("resumed with %+v, had %d", last, have)
	}
	if err := d2.Resume(xa.ID()); !errors.Is(err, ErrWrongState) {
		t.Fatalf("resuming a done download: %v", err)
	}
	if err := d2.Cancel(xa.ID()); !errors.Is(err, ErrWrongState) {
		t.Fatalf("cancelling a done download: %v", err)
	}
	if err := d2.Remove(xa.ID()); err != nil {
		t.Fatal(err)
	}
	checkFile(t, filepath.Join(dir, "a.bin"), dataA)
}

// A queue file of version 1 (no IDs, no ranges) is still read: each
// download gets an ID, and its partial file's size is what it has.
func TestDownloadQueueVersion1(t *testing.T) {
	fx := newUploadFixture(t, &Server{PerIP: -1})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, partialPrefix+fx.a.SHA1.Base32()), fx.aData[:40_000], 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(t.TempDir(), "downloads.json")
	v1 := fmt.Sprintf(`{"version": 1, "downloads": [{"name": %q, "size": %d, "urn": %q, "key": %q, "state": "downloading",
		"sources": [{"addr": %q, "index": 1}]}]}`, fx.a.Name, fx.a.Size, fx.a.SHA1.String(), fx.a.SHA1.Base32(), fx.ts.addr)
	if err := os.WriteFile(state, []byte(v1), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &Downloader{Dir: dir, StateFile: state, AddrPolicy: lanPolicy, MaxActive: 1}
	// Added before Start: the saved queue is not overwritten by it.
	x, err := d.Add(reqOf(fx.b, Source{Addr: fx.ts.addr, Index: 7}))
	if err != nil {
		t.Fatal(err)
	}
	newDownloader(t, d)
	l := d.List()
	if len(l) != 2 || l[1].ID == "" || l[1].ID == x.ID() || l[1].Have != 40_000 {
		t.Fatalf("read from version 1: %+v", l)
	}
	y, _ := d.Add(reqOf(fx.a, Source{Addr: fx.ts.addr, Index: 1}))
	if err := waitDone(t, y); err != nil {
		t.Fatal(err)
	}
	checkFile(t, y.Status().Path, fx.aData)
	b, _ := os.ReadFile(state)
	if !strings.Contains(string(b), `"version": 2`) || !strings.Contains(string(b), `"id": "`+y.ID()+`"`) {
		t.Fatalf("saved queue %s", b)
	}
}
