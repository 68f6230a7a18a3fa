package transfer

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"gnutella/firewall"
	"gnutella/protocol"
	"gnutella/share"
)

// TestMain runs the tests, removes the benchmark's big file, and fails the
// run if any goroutine outlives the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	benchCleanup()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak: goroutines left after the tests:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// lanPolicy is the address policy of a test network on one machine: the
// fixtures listen on 127.0.0.1.
var lanPolicy = firewall.AddrPolicy{AllowLoopback: true, AllowPrivate: true}

// fakeLibrary is a share.Library stand-in: files by index and by hash.
type fakeLibrary struct {
	mu      sync.Mutex
	byIndex map[uint32]share.File
	bySHA1  map[protocol.SHA1]share.File
}

func newFakeLibrary(files ...share.File) *fakeLibrary {
	l := &fakeLibrary{byIndex: map[uint32]share.File{}, bySHA1: map[protocol.SHA1]share.File{}}
	for _, f := range files {
		l.add(f)
	}
	return l
}

func (l *fakeLibrary) add(f share.File) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.byIndex[f.Index] = f
	if !f.SHA1.IsZero() {
		l.bySHA1[f.SHA1] = f
	}
}

func (l *fakeLibrary) ByIndex(i uint32) (share.File, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, ok := l.byIndex[i]
	return f, ok
}

func (l *fakeLibrary) BySHA1(h protocol.SHA1) (share.File, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, ok := l.bySHA1[h]
	return f, ok
}

// content returns n deterministic pseudo-random bytes.
func content(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// makeShared writes data as dir/name and returns its library record.
func makeShared(t testing.TB, dir string, index uint32, name string, data []byte) share.File {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return share.File{Index: index, Path: p, Name: name, Size: int64(len(data)), ModTime: fi.ModTime(), SHA1: sha1.Sum(data)}
}

// testServer runs srv on a loopback listener. wrap, when set, wraps every
// accepted connection (to cut or stall it).
type testServer struct {
	srv  *Server
	ln   net.Listener
	addr netip.AddrPort
	wg   sync.WaitGroup
	wrap func(n int, c net.Conn) net.Conn

	mu    sync.Mutex
	conns int
	log   []reqRecord // requests seen, in order
}

type reqRecord struct {
	line  string
	rng   string
	at    time.Time
	index int // connection number
}

func startServer(t testing.TB, srv *Server, wrap func(n int, c net.Conn) net.Conn) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{srv: srv, ln: ln, addr: addrPortOf(ln.Addr()), wrap: wrap}
	ts.wg.Add(1)
	go func() {
		defer ts.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			ts.mu.Lock()
			n := ts.conns
			ts.conns++
			ts.mu.Unlock()
			var conn net.Conn = &recordConn{Conn: c, ts: ts, n: n}
			if ts.wrap != nil {
				conn = ts.wrap(n, conn)
			}
			ts.wg.Add(1)
			go func() {
				defer ts.wg.Done()
				srv.Serve(conn)
			}()
		}
	}()
	t.Cleanup(ts.close)
	return ts
}

func (ts *testServer) close() {
	ts.ln.Close()
	ts.srv.Close()
	ts.wg.Wait()
}

func (ts *testServer) requests() []reqRecord {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]reqRecord(nil), ts.log...)
}

// recordConn notes the request lines and Range headers the client sends.
// It keeps net.Conn's ReadFrom (so the server still uses sendfile) by
// forwarding it when the inner conn has one.
type recordConn struct {
	net.Conn
	ts   *testServer
	n    int
	mu   sync.Mutex
	part []byte
}

func (c *recordConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		c.part = append(c.part, p[:n]...)
		for {
			i := bytes.Index(c.part, []byte("\r\n\r\n"))
			if i < 0 {
				if len(c.part) > 64<<10 {
					c.part = c.part[len(c.part)-4:]
				}
				break
			}
			head := string(c.part[:i])
			c.part = c.part[i+4:]
			lines := strings.Split(head, "\r\n")
			rec := reqRecord{line: lines[0], at: time.Now(), index: c.n}
			for _, l := range lines[1:] {
				if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, "Range") {
					rec.rng = strings.TrimSpace(v)
				}
			}
			c.ts.mu.Lock()
			c.ts.log = append(c.ts.log, rec)
			c.ts.mu.Unlock()
		}
		c.mu.Unlock()
	}
	return n, err
}

func (c *recordConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

func (c *recordConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// cutConn closes the connection once limit bytes were written.
type cutConn struct {
	net.Conn
	limit   int
	written int
	onCut   func(written []byte)
	head    []byte
}

func (c *cutConn) Write(p []byte) (int, error) {
	if len(c.head) < 4096 {
		c.head = append(c.head, p[:min(len(p), 4096-len(c.head))]...)
	}
	room := c.limit - c.written
	if room <= 0 {
		c.Conn.Close()
		return 0, net.ErrClosed
	}
	if len(p) > room {
		n, _ := c.Conn.Write(p[:room])
		c.written += n
		if c.onCut != nil {
			c.onCut(c.head)
		}
		c.Conn.Close()
		return n, net.ErrClosed
	}
	n, err := c.Conn.Write(p)
	c.written += n
	return n, err
}

func (c *cutConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// stallConn stops writing after limit bytes until release is closed or the
// connection is closed.
type stallConn struct {
	net.Conn
	limit   int
	written int
	release <-chan struct{}
	once    sync.Once
	closed  chan struct{}
}

func newStallConn(c net.Conn, limit int, release <-chan struct{}) *stallConn {
	return &stallConn{Conn: c, limit: limit, release: release, closed: make(chan struct{})}
}

func (c *stallConn) Write(p []byte) (int, error) {
	if room := c.limit - c.written; len(p) > room {
		if room > 0 {
			n, err := c.Conn.Write(p[:room])
			c.written += n
			if err != nil {
				return n, err
			}
		}
		select {
		case <-c.release:
		case <-c.closed:
			return 0, net.ErrClosed
		}
		c.limit = 1 << 62
		n, err := c.Conn.Write(p[max(room, 0):])
		c.written += n
		return n + max(room, 0), err
	}
	n, err := c.Conn.Write(p)
	c.written += n
	return n, err
}

func (c *stallConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// response is one parsed HTTP response.
type response struct {
	status string
	code   int
	h      protocol.Headers
	body   []byte
}

// readResponse reads one response; the body is read by Content-Length
// unless head is true.
func readResponse(t testing.TB, br *bufio.Reader, head bool) response {
	t.Helper()
	line, err := protocol.ReadLine(br)
	if err != nil {
		t.Fatalf("reading the status line: %v", err)
	}
	_, code, _, ok := parseStatusLine(line)
	if !ok {
		t.Fatalf("bad status line %q", line)
	}
	h, err := protocol.ReadHeaders(br, len(line)+2)
	if err != nil {
		t.Fatalf("reading headers: %v", err)
	}
	r := response{status: line, code: code, h: h}
	if head {
		return r
	}
	n, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64)
	if err != nil {
		t.Fatalf("response without Content-Length: %q", line)
	}
	r.body = make([]byte, n)
	if _, err := io.ReadFull(br, r.body); err != nil {
		t.Fatalf("reading %d body bytes: %v", n, err)
	}
	return r
}

// roundTrip sends raw bytes on a new connection and returns everything the
// server sends until it closes (bounded in time and size).
func roundTrip(t testing.TB, addr netip.AddrPort, raw string) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(io.LimitReader(c, 8<<20))
	return out
}

func statusCode(t testing.TB, out []byte) int {
	t.Helper()
	line, _, _ := bytes.Cut(out, []byte("\r\n"))
	_, code, _, ok := parseStatusLine(string(line))
	if !ok {
		t.Fatalf("no status line in %q", truncate(string(out), 200))
	}
	return code
}

// fakeSource is a raw HTTP/1.1 source on 127.0.0.1 for the swarm tests: it
// answers range requests for data with keep-alive, only inside has when
// has is set (a partial source: 206 with X-Available-Ranges, 416 outside),
// at most rate bytes/s when rate is set. Hooks let a test hold requests,
// break the rules, or look at each request.
type fakeSource struct {
	t    testing.TB
	addr netip.AddrPort
	ln   net.Listener
	wg   sync.WaitGroup
	data []byte
	rate int64 // bytes/s, 0: as fast as it goes

	mu    sync.Mutex
	has   Ranges // nil: the whole file
	reqs  []fakeReq
	conns []net.Conn
	// before runs before each answer (it may block, e.g. until enough
	// requests are in flight); answer, when set, answers instead of the
	// honest answer and returns false to close the connection.
	before func(r fakeReq)
	answer func(c net.Conn, r fakeReq) bool
	after  func(r fakeReq)
}

// fakeReq is one request a fakeSource got.
type fakeReq struct {
	conn       int
	at         time.Time
	line       string
	h          protocol.Headers
	start, end int64 // the Range, inclusive; end -1 when there was none
}

func startFake(t testing.TB, data []byte) *fakeSource {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fs := &fakeSource{t: t, ln: ln, addr: addrPortOf(ln.Addr()), data: data}
	fs.wg.Add(1)
	go fs.accept()
	t.Cleanup(fs.close)
	return fs
}

func (fs *fakeSource) close() {
	fs.ln.Close()
	fs.mu.Lock()
	for _, c := range fs.conns {
		c.Close()
	}
	fs.mu.Unlock()
	fs.wg.Wait()
}

func (fs *fakeSource) accept() {
	defer fs.wg.Done()
	for n := 0; ; n++ {
		c, err := fs.ln.Accept()
		if err != nil {
			return
		}
		fs.mu.Lock()
		fs.conns = append(fs.conns, c)
		fs.mu.Unlock()
		fs.wg.Add(1)
		go func() {
			defer fs.wg.Done()
			defer c.Close()
			fs.serve(n, c)
		}()
	}
}

func (fs *fakeSource) serve(n int, c net.Conn) {
	br := bufio.NewReader(c)
	for {
		line, err := protocol.ReadLine(br)
		if err != nil {
			return
		}
		h, err := protocol.ReadHeaders(br, len(line)+2)
		if err != nil {
			return
		}
		r := fakeReq{conn: n, at: time.Now(), line: line, h: h, end: -1}
		if v := h.Get("Range"); v != "" {
			if a, b, st := parseRange(v, int64(len(fs.data))); st == rangeOK {
				r.start, r.end = a, b
			}
		}
		fs.mu.Lock()
		fs.reqs = append(fs.reqs, r)
		before, answer, after := fs.before, fs.answer, fs.after
		fs.mu.Unlock()
		if before != nil {
			before(r)
		}
		keep := true
		if answer != nil {
			keep = answer(c, r)
		} else {
			keep = fs.honest(c, r)
		}
		if after != nil {
			after(r)
		}
		if !keep {
			return
		}
	}
}

// honest answers r with the bytes asked for (those it has).
func (fs *fakeSource) honest(c net.Conn, r fakeReq) bool {
	fs.mu.Lock()
	has := fs.has.Clone()
	fs.mu.Unlock()
	return fs.serveBytes(c, r, fs.data, has)
}

// serveBytes answers r from data, of which it has has (nil: all).
func (fs *fakeSource) serveBytes(c net.Conn, r fakeReq, data []byte, has Ranges) bool {
	size := int64(len(data))
	a, b := r.start, r.end
	if b < 0 {
		a, b = 0, size-1
	}
	avail := ""
	if has != nil {
		avail = "X-Available-Ranges: " + has.FormatAvailable() + "\r\n"
		// Serve from a (the run of has that holds it), or refuse.
		in, runEnd := run(has, a, b+1)
		if !in {
			_, err := fmt.Fprintf(c, "HTTP/1.1 416 Requested Range Not Satisfiable\r\n%sContent-Length: 0\r\n\r\n", avail)
			return err == nil
		}
		b = runEnd - 1
	}
	if _, err := fmt.Fprintf(c, "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %d-%d/%d\r\nContent-Length: %d\r\n%s\r\n", a, b, size, b-a+1, avail); err != nil {
		return false
	}
	return fs.send(c, data[a:b+1]) == nil
}

// send writes p, paced at fs.rate when set.
func (fs *fakeSource) send(c net.Conn, p []byte) error {
	if fs.rate <= 0 {
		_, err := c.Write(p)
		return err
	}
	const piece = 16 << 10
	start := time.Now()
	var sent int64
	for len(p) > 0 {
		k := min(len(p), piece)
		if _, err := c.Write(p[:k]); err != nil {
			return err
		}
		p = p[k:]
		sent += int64(k)
		due := start.Add(time.Duration(float64(sent) / float64(fs.rate) * float64(time.Second)))
		time.Sleep(time.Until(due)) // the rate limit itself, not a synchronisation
	}
	return nil
}

func (fs *fakeSource) requests() []fakeReq {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]fakeReq(nil), fs.reqs...)
}

func (fs *fakeSource) source() Source { return Source{Addr: fs.addr, Index: 1, Name: "file"} }
