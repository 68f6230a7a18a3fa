package transfer

import (
	"bufio"
	"crypto/sha1"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gnutella/protocol"
	"gnutella/testnet/await"
)

// hostileSource is a source on 127.0.0.1 that answers every request with
// answer(conn, the request head): a tester's hostile servent.
type hostileSource struct {
	addr     netip.AddrPort
	requests atomic.Int32
}

func startHostile(t *testing.T, answer func(c net.Conn, head string)) *hostileSource {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &hostileSource{addr: netip.MustParseAddrPort(ln.Addr().String())}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				var head strings.Builder
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					head.WriteString(line)
					if line == "\r\n" {
						break
					}
				}
				hs.requests.Add(1)
				answer(c, head.String())
			}()
		}
	}()
	return hs
}

// endless writes b forever (until the peer closes).
func endless(c net.Conn, b byte) {
	buf := []byte(strings.Repeat(string(b), 64<<10))
	for {
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

func sourceStatus(st Status, addr netip.AddrPort) SourceStatus {
	for _, s := range st.SourceStates {
		if s.Addr == addr.String() {
			return s
		}
	}
	return SourceStatus{}
}

// A source that answers outside the range asked for, or past the announced
// size, is dropped with ErrBadRange before a byte of it is written; the file
// comes whole and exact from an honest source.
func TestDownloadHostileRangeAnswers(t *testing.T) {
	cases := []struct {
		name   string
		answer func(c net.Conn, head string)
	}{
		{"endless range past the size", func(c net.Conn, _ string) {
			fmt.Fprintf(c, "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-999999999999/*\r\n\r\n")
			endless(c, 'X')
		}},
		{"range past the size with a length", func(c net.Conn, _ string) {
			fmt.Fprintf(c, "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-199999/*\r\nContent-Length: 200000\r\n\r\n")
			endless(c, 'X')
		}},
		{"length disagrees with the range", func(c net.Conn, _ string) {
			fmt.Fprintf(c, "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-99999/100000\r\nContent-Length: 999999\r\n\r\n")
			endless(c, 'X')
		}},
		{"200 without a length", func(c net.Conn, _ string) {
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\n\r\n")
			endless(c, 'X')
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The honest source answers once the hostile one was judged.
			judged := make(chan struct{})
			var once sync.Once
			hs := startHostile(t, tc.answer)
			data := content(1, 100_000)
			honest := startFake(t, data)
			honest.before = func(fakeReq) { <-judged }
			t.Cleanup(func() { once.Do(func() { close(judged) }) })
			d := newDownloader(t, &Downloader{AddrPolicy: lanPolicy})
			x, err := d.Add(Request{Name: "a.bin", Size: int64(len(data)), SHA1: sha1.Sum(data), Sources: []Source{{Addr: hs.addr, Index: 1}, honest.source()}})
			if err != nil {
				t.Fatal(err)
			}
			await.Until(t, "the hostile source to be dropped", func() bool {
				return sourceStatus(x.Status(), hs.addr).State == SourceDropped
			})
			once.Do(func() { close(judged) })
			if err := waitDone(t, x); err != nil {
				t.Fatal(err)
			}
			st := x.Status()
			checkFile(t, st.Path, data)
			if hs.requests.Load() == 0 {
				t.Fatal("the hostile source was never asked")
			}
			ss := sourceStatus(st, hs.addr)
			if ss.State != SourceDropped || !strings.Contains(ss.Error, ErrBadRange.Error()) {
				t.Fatalf("hostile source %+v, want dropped with %q", ss, ErrBadRange)
			}
		})
	}
}

// The tester's report: one hostile source, 206 "bytes 0-999999999999/*" and
// an endless body, for a 200,000-byte file. The partial file never holds a
// byte past the announced size and nothing is "verified and saved".
func TestDownloadEndlessBodyNeverGrowsPastSize(t *testing.T) {
	const size = 200_000
	data := content(9, size)
	hs := startHostile(t, func(c net.Conn, _ string) {
		fmt.Fprintf(c, "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-999999999999/*\r\n\r\n")
		c.Write(data)
		endless(c, 'X')
	})
	d := newDownloader(t, &Downloader{AddrPolicy: lanPolicy})
	sum := protocol.SHA1(sha1.Sum(data))
	x, err := d.Add(Request{Name: "big.bin", Size: size, SHA1: sum, Sources: []Source{{Addr: hs.addr, Index: 1, Name: "big.bin"}}})
	if err != nil {
		t.Fatal(err)
	}
	err = waitDone(t, x)
	if !errors.Is(err, ErrNoSources) || !strings.Contains(err.Error(), ErrBadRange.Error()) {
		t.Fatalf("err %v, want ErrNoSources after %v", err, ErrBadRange)
	}
	if names := dirFiles(t, d.Dir); len(names) > 1 || (len(names) == 1 && fileSize(filepath.Join(d.Dir, names[0])) > size) {
		t.Fatalf("download folder holds %v", names)
	}
	if _, err := os.Stat(filepath.Join(d.Dir, "big.bin")); err == nil {
		t.Fatal("a file was saved")
	}
}

// A partial file longer than the announced size (written by someone else)
// is never saved as verified, though its first size bytes hash right.
func TestDownloadFinishChecksWholeFile(t *testing.T) {
	fx := newUploadFixture(t, &Server{PerIP: -1})
	dir := t.TempDir()
	key := downloadKey(reqOf(fx.a))
	long := append(append([]byte{}, fx.aData...), []byte("TRAILING JUNK")...)
	if err := os.WriteFile(filepath.Join(dir, partialPrefix+key), long, 0o644); err != nil {
		t.Fatal(err)
	}
	d := &Downloader{Dir: dir, AddrPolicy: lanPolicy}
	x, err := d.Add(reqOf(fx.a, Source{Addr: fx.ts.addr, Index: 1, Name: fx.a.Name}))
	if err != nil {
		t.Fatal(err)
	}
	newDownloader(t, d)
	if err := waitDone(t, x); err != nil {
		t.Fatal(err)
	}
	checkFile(t, x.Status().Path, fx.aData)
}

// A finished file the user deleted is downloaded again when it is added
// again.
func TestDownloadAgainAfterFileDeleted(t *testing.T) {
	fx := newUploadFixture(t, &Server{PerIP: -1})
	d := newDownloader(t, &Downloader{AddrPolicy: lanPolicy})
	req := reqOf(fx.a, Source{Addr: fx.ts.addr, Index: 1, Name: fx.a.Name})
	x, err := d.Add(req)
	if err != nil {
		t.Fatal(err)
	}
	if err := waitDone(t, x); err != nil {
		t.Fatal(err)
	}
	path := x.Status().Path
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	y, err := d.Add(req)
	if err != nil {
		t.Fatal(err)
	}
	if err := waitDone(t, y); err != nil {
		t.Fatal(err)
	}
	st := y.Status()
	if st.State != StateDone {
		t.Fatalf("status %+v", st)
	}
	checkFile(t, st.Path, fx.aData)
	if n := len(fx.ts.requests()); n != 2 {
		t.Fatalf("%d requests to the source, want 2", n)
	}
	// Present: adding it again does not fetch it again.
	if _, err := d.Add(req); err != nil {
		t.Fatal(err)
	}
	if st := y.Status(); st.State != StateDone {
		t.Fatalf("a present file was queued again: %+v", st)
	}
	if n := len(fx.ts.requests()); n != 2 {
		t.Fatalf("%d requests to the source, want 2", n)
	}
}

// dripSource serves data honestly, with the range asked for, but one byte
// at a time, every interval (a ticker paces it; nothing waits on it).
func dripSource(t *testing.T, data []byte, every time.Duration) *hostileSource {
	return startHostile(t, func(c net.Conn, head string) {
		start := int64(0)
		for _, line := range strings.Split(head, "\r\n") {
			if v, ok := strings.CutPrefix(line, "Range: bytes="); ok {
				a, _, _ := strings.Cut(v, "-")
				fmt.Sscan(a, &start)
			}
		}
		n := int64(len(data))
		fmt.Fprintf(c, "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %d-%d/%d\r\nContent-Length: %d\r\n\r\n", start, n-1, n, n-start)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for i := start; i < n; i++ {
			<-tick.C
			if _, err := c.Write(data[i : i+1]); err != nil {
				return
			}
		}
	})
}

// Sources that drip bytes do not hold the only slot while another download
// waits: the slow one gives it up with its reason and the honest download
// completes.
func TestDownloadSlowSourceYieldsSlot(t *testing.T) {
	fx := newUploadFixture(t, &Server{PerIP: -1})
	slowData := content(5, 50_000)
	slow := dripSource(t, slowData, 5*time.Millisecond)
	d := newDownloader(t, &Downloader{AddrPolicy: lanPolicy, MaxActive: 1, MinRate: 10_000, RateWindow: 100 * time.Millisecond})
	sx, err := d.Add(Request{Name: "slow.bin", Size: int64(len(slowData)), SHA1: sha1.Sum(slowData), Sources: []Source{{Addr: slow.addr, Index: 1, Name: "slow.bin"}}})
	if err != nil {
		t.Fatal(err)
	}
	await.Until(t, "the slow download has bytes", func() bool { return sx.Status().Have > 0 })
	x, err := d.Add(reqOf(fx.a, Source{Addr: fx.ts.addr, Index: 1, Name: fx.a.Name}))
	if err != nil {
		t.Fatal(err)
	}
	if err := waitDone(t, x); err != nil {
		t.Fatal(err)
	}
	checkFile(t, x.Status().Path, fx.aData)
	ss := sourceStatus(sx.Status(), slow.addr)
	if ss.State != SourceWaiting || !strings.Contains(ss.Error, "too slow") || ss.RetryAt.IsZero() {
		t.Fatalf("slow source %+v, want waiting, too slow", ss)
	}
}

// A lone source that drips is kept (nothing waits for its slot), but no
// request lasts longer than RequestTimeout: it is cut and resumed.
func TestDownloadRequestTimeout(t *testing.T) {
	data := content(6, 50_000)
	slow := dripSource(t, data, 5*time.Millisecond)
	d := newDownloader(t, &Downloader{AddrPolicy: lanPolicy, RequestTimeout: 200 * time.Millisecond, MinRate: 1 << 30, RateWindow: 50 * time.Millisecond})
	x, err := d.Add(Request{Name: "slow.bin", Size: int64(len(data)), SHA1: sha1.Sum(data), Sources: []Source{{Addr: slow.addr, Index: 1, Name: "slow.bin"}}})
	if err != nil {
		t.Fatal(err)
	}
	await.Until(t, "a second request after the first is cut", func() bool { return slow.requests.Load() >= 2 })
	await.Until(t, "the cut is the source's last error", func() bool {
		return strings.Contains(sourceStatus(x.Status(), slow.addr).Error, "RequestTimeout")
	})
	if st := x.Status(); st.State == StateFailed || sourceStatus(st, slow.addr).State == SourceDropped {
		t.Fatalf("a lone slow source was given up: %+v", st)
	}
}

// A source that accepts the connection and never answers gets a reason,
// and does not hold up a download the others complete.
func TestDownloadSilentSourceHasReason(t *testing.T) {
	data := content(12, 200_000)
	asked := make(chan struct{})
	var once sync.Once
	silent := startHostile(t, func(c net.Conn, _ string) {
		once.Do(func() { close(asked) })
		_, _ = c.Read(make([]byte, 1)) // until we close it
	})
	honest := startFake(t, data)
	honest.before = func(fakeReq) { <-asked }
	t.Cleanup(func() { once.Do(func() { close(asked) }) })
	d := newDownloader(t, &Downloader{AddrPolicy: lanPolicy, StallTimeout: time.Hour})
	x, err := d.Add(Request{Name: "s.bin", Size: int64(len(data)), SHA1: sha1.Sum(data), Sources: []Source{
		{Addr: silent.addr, Index: 1}, honest.source(),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := waitDone(t, x); err != nil {
		t.Fatal(err)
	}
	checkFile(t, x.Status().Path, data)
	if ss := sourceStatus(x.Status(), silent.addr); ss.Reason == "" {
		t.Fatalf("silent source %+v has no reason", ss)
	}
}
