package transfer

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gnutella/protocol"
)

// The recordings of docs/protocol.md §10: gtk-gnutella 1.2.3 calling back after a Push
// (GIV, then its upload response and the 300,000-byte file) and the request
// its downloader sent on that socket.
const (
	gtkUpload  = "../protocol/testdata/gtk-gnutella/push-giv-and-upload.bin"
	gtkRequest = "../protocol/testdata/gtk-gnutella/push-download-request.bin"
	gtkURN     = "urn:sha1:X4W42LDG7CDMMJAJT2ODLN7IBG5UYDG7"
)

type gtkRecording struct {
	giv      []byte // "GIV ...\n\n"
	response []byte // status line and headers, through the empty line
	body     []byte
	request  []byte
}

func loadGtk(t *testing.T) gtkRecording {
	t.Helper()
	up, err := os.ReadFile(gtkUpload)
	if err != nil {
		t.Fatal(err)
	}
	req, err := os.ReadFile(gtkRequest)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(up, []byte("\n\n"))
	j := bytes.Index(up, []byte("\r\n\r\n"))
	if i < 0 || j < 0 {
		t.Fatal("recording not as expected")
	}
	r := gtkRecording{giv: up[:i+2], response: up[i+2 : j+4], body: up[j+4:], request: req}
	if len(r.body) != 300000 || protocol.SHA1(sha1.Sum(r.body)).String() != gtkURN {
		t.Fatalf("recorded body: %d bytes", len(r.body))
	}
	return r
}

// Our downloader fetches the file from gtk-gnutella's recorded callback: it
// reads the GIV through the Push function, sends the same request line
// gtk-gnutella's own downloader sent, and verifies the recorded body.
func TestGtkRecordedUploadDownloads(t *testing.T) {
	rec := loadGtk(t)
	sid, _ := protocol.ParseGUID("0efd31026d8def9548ee17f219e07503")
	var wg sync.WaitGroup
	defer wg.Wait()
	var mu sync.Mutex
	var sent []byte
	push := func(ctx context.Context, src Source) (net.Conn, *bufio.Reader, error) {
		ours, theirs := net.Pipe()
		wg.Add(1)
		go func() { // gtk-gnutella's side, replayed
			defer wg.Done()
			defer theirs.Close()
			_ = theirs.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := theirs.Write(rec.giv); err != nil {
				return
			}
			br := bufio.NewReader(theirs)
			var head []byte
			for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
				b, err := br.ReadByte()
				if err != nil {
					return
				}
				head = append(head, b)
			}
			mu.Lock()
			sent = head
			mu.Unlock()
			_, _ = theirs.Write(rec.response)
			_, _ = theirs.Write(rec.body)
		}()
		br := bufio.NewReader(ours)
		giv, err := protocol.ReadGIV(br)
		if err != nil || giv.ServentID != src.ServentID || giv.Index != 0 || giv.Name != "file" {
			ours.Close()
			return nil, nil, fmt.Errorf("GIV %+v: %v", giv, err)
		}
		return ours, br, nil
	}
	urn, _ := protocol.ParseURN(gtkURN)
	d := newDownloader(t, &Downloader{Push: push})
	x, err := d.Add(Request{Name: "zebraquokka_interop_alpha.txt", Size: 300000, SHA1: urn,
		Sources: []Source{{Addr: netip.MustParseAddrPort("127.0.0.1:16356"), ServentID: sid, Push: true}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := waitDone(t, x); err != nil {
		t.Fatal(err)
	}
	checkFile(t, filepath.Join(d.Dir, "zebraquokka_interop_alpha.txt"), rec.body)
	mu.Lock()
	defer mu.Unlock()
	ourLine, _, _ := strings.Cut(string(sent), "\r\n")
	gtkLine, _, _ := strings.Cut(string(rec.request), "\r\n")
	if ourLine != gtkLine {
		t.Fatalf("request line %q, gtk-gnutella sends %q", ourLine, gtkLine)
	}
	for _, want := range []string{"\r\nRange: bytes=0-299999\r\n", "\r\nUser-Agent: gnutella/test\r\n", "\r\nX-Gnutella-Content-URN: " + gtkURN + "\r\n"} {
		if !strings.Contains(string(sent), want) {
			t.Errorf("request lacks %q:\n%s", want, sent)
		}
	}
}

// gtk-gnutella's recorded download request, byte for byte, is served by our
// Server; and our ServeCallback sends the GIV gtk-gnutella expects before
// serving that request on the same socket.
func TestGtkRecordedRequestServed(t *testing.T) {
	rec := loadGtk(t)
	dir := t.TempDir()
	f := makeShared(t, dir, 0, "zebraquokka_interop_alpha.txt", rec.body)
	srv := &Server{Library: newFakeLibrary(f), UserAgent: "gnutella/test", PerIP: -1}
	ts := startServer(t, srv, nil)

	check := func(c net.Conn, br *bufio.Reader) {
		t.Helper()
		if _, err := c.Write(rec.request); err != nil {
			t.Fatal(err)
		}
		r := readResponse(t, br, false)
		if r.code != 200 || r.h.Get("X-Gnutella-Content-URN") != gtkURN || r.h.Get("Content-Type") != "text/plain; charset=utf-8" ||
			!bytes.Equal(r.body, rec.body) || r.h.Has("Connection") {
			t.Fatalf("%s %v", r.status, r.h)
		}
	}
	c, err := net.Dial("tcp", ts.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	check(c, bufio.NewReader(c))

	// The callback: we are the firewalled side and connect to gtk-gnutella.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	sid, _ := protocol.ParseGUID("0efd31026d8def9548ee17f219e07503")
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return
		}
		srv.ServeCallback(c, protocol.GIV{Index: 0, ServentID: sid, Name: "file"})
	}()
	cb, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close()
	_ = cb.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(cb)
	line, _ := br.ReadString('\n')
	empty, _ := br.ReadString('\n')
	if line+empty != string(rec.giv) {
		t.Fatalf("GIV %q, gtk-gnutella sent %q", line+empty, rec.giv)
	}
	check(cb, br)
	cb.Close()
}

// gtk-gnutella answers some ranges with a 206 of another range: the
// downloader reads Content-Range, compares what overlaps what it has and
// appends the rest; a range it cannot append (past what it has) makes it
// use another source.
func TestDownloadReadsContentRange(t *testing.T) {
	data := content(31, 100_000)
	sum := protocol.SHA1(sha1.Sum(data))
	// A raw server that always answers with the given range.
	fake := func(from, to int64) (netip.AddrPort, func()) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				br := bufio.NewReader(c)
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := protocol.ReadLine(br); err == nil {
					if _, err := protocol.ReadHeaders(br, 0); err == nil {
						fmt.Fprintf(c, "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %d-%d/%d\r\nContent-Length: %d\r\n\r\n",
							from, to, len(data), to-from+1)
						_, _ = c.Write(data[from : to+1])
					}
				}
				c.Close()
			}
		}()
		return addrPortOf(ln.Addr()), func() { ln.Close(); wg.Wait() }
	}
	whole, stop1 := fake(0, 99_999)
	defer stop1()
	past, stop2 := fake(80_000, 99_999)
	defer stop2()

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, partialPrefix+sum.Base32()), data[:60_000], 0o644); err != nil {
		t.Fatal(err)
	}
	d := newDownloader(t, &Downloader{Dir: dir, AddrPolicy: lanPolicy})
	x, err := d.Add(Request{Name: "ranges.bin", Size: 100_000, SHA1: sum, Sources: []Source{{Addr: past}, {Addr: whole}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := waitDone(t, x); err != nil {
		t.Fatal(err)
	}
	checkFile(t, x.Status().Path, data)
}
