package transfer

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"gnutella/protocol"
)

// fakePartials is a Partials with files set by the test.
type fakePartials struct {
	mu    sync.Mutex
	files map[protocol.SHA1]PartialFile
}

func (p *fakePartials) PartialFile(h protocol.SHA1) (PartialFile, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f, ok := p.files[h]
	return f, ok
}

func n2r(h protocol.SHA1) string { return "/uri-res/N2R?" + h.String() }

// A file being downloaded is served by URN, only from what it has: a
// range that starts in a span we have is cut at that span's end (206), one
// that starts outside gets 416 and the connection stays open for the
// next, and every answer carries X-Available-Ranges. HEAD too. It is not
// found by index, a complete shared file of the same URN wins, and a
// vanished file is 404.
func TestPartialSharing(t *testing.T) {
	const size = 10_000
	data := content(5, size)
	h := protocol.SHA1(sha1.Sum(data))
	dir := t.TempDir()
	part := filepath.Join(dir, "movie.avi.part")
	// On disk: the whole size, of which only what Have says is valid.
	if err := os.WriteFile(part, data, 0o644); err != nil {
		t.Fatal(err)
	}
	have := Ranges{}.Add(0, 1000).Add(5000, 8000)
	parts := &fakePartials{files: map[protocol.SHA1]PartialFile{
		h: {Path: part, Name: "movie.avi", Size: size, Have: have},
	}}
	// c keeps its slot between requests: the other requests come from the
	// same address.
	srv := &Server{Partials: parts, PerIP: -1}
	fx := newUploadFixture(t, srv)
	const avail = "bytes 0-999,5000-7999"

	c, err := net.Dial("tcp", fx.ts.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	get := func(method, rng string) response {
		t.Helper()
		hdr := ""
		if rng != "" {
			hdr = "Range: bytes=" + rng + "\r\n"
		}
		fmt.Fprintf(c, "%s %s HTTP/1.1\r\n%s\r\n", method, n2r(h), hdr)
		return readResponse(t, br, method == "HEAD")
	}
	check := func(what string, r response, code int, contentRange string, body []byte) {
		t.Helper()
		if r.code != code || r.h.Get("Content-Range") != contentRange || r.h.Get("X-Available-Ranges") != avail ||
			r.h.Get("X-Available") != "bytes 4000" ||
			r.h.Get("X-Gnutella-Content-URN") != h.String() || body != nil && !bytes.Equal(r.body, body) {
			t.Fatalf("%s: %s Content-Range %q X-Available-Ranges %q, %d bytes", what, r.status,
				r.h.Get("Content-Range"), r.h.Get("X-Available-Ranges"), len(r.body))
		}
	}
	check("range clipped to what we have", get("GET", "500-2999"), 206, "bytes 500-999/10000", data[500:1000])
	check("no range: from 0", get("GET", ""), 206, "bytes 0-999/10000", data[:1000])
	check("second span", get("GET", "5000-"), 206, "bytes 5000-7999/10000", data[5000:8000])
	check("start not available", get("GET", "2000-2999"), 416, "bytes */10000", nil)
	check("and the connection stayed open", get("GET", "7000-7499"), 206, "bytes 7000-7499/10000", data[7000:7500])
	check("HEAD", get("HEAD", "6000-"), 206, "bytes 6000-7999/10000", nil)
	check("past the end", get("GET", "20000-"), 416, "bytes */10000", nil)
	if st := srv.Stats(); st.Completed != 4 {
		t.Fatalf("stats %+v", st)
	}

	// Not by index: the partial file has none.
	if code := statusCode(t, roundTrip(t, fx.ts.addr, "GET /get/0/movie.avi HTTP/1.1\r\n\r\n")); code != 404 {
		t.Fatalf("partial by index: %d", code)
	}
	// A complete shared file of the URN wins over the partial one.
	parts.mu.Lock()
	parts.files[fx.a.SHA1] = PartialFile{Path: part, Name: "other", Size: fx.a.Size, Have: Ranges{}.Add(0, 10)}
	parts.mu.Unlock()
	r := readResponse(t, bufio.NewReader(bytes.NewReader(roundTrip(t, fx.ts.addr, "GET "+n2r(fx.a.SHA1)+" HTTP/1.1\r\nConnection: close\r\n\r\n"))), false)
	if r.code != 200 || !bytes.Equal(r.body, fx.aData) || r.h.Has("X-Available-Ranges") {
		t.Fatalf("complete file: %s, %d bytes, X-Available-Ranges %q", r.status, len(r.body), r.h.Get("X-Available-Ranges"))
	}
	// Renamed away when complete: 404.
	if err := os.Rename(part, part+".done"); err != nil {
		t.Fatal(err)
	}
	if code := statusCode(t, roundTrip(t, fx.ts.addr, "GET "+n2r(h)+" HTTP/1.1\r\n\r\n")); code != 404 {
		t.Fatalf("vanished partial: %d", code)
	}
	// Without Partials, nothing of it.
	srv2 := &Server{Library: newFakeLibrary()}
	ts2 := startServer(t, srv2, nil)
	if code := statusCode(t, roundTrip(t, ts2.addr, "GET "+n2r(h)+" HTTP/1.1\r\n\r\n")); code != 404 {
		t.Fatalf("no Partials: %d", code)
	}
}

// A partial file that ends before what Have claims (cut or replaced while
// it is served) ends the upload by closing the connection: the client sees
// a short body and the end of the stream, and the server does not hang.
func TestPartialSharingFileShrinks(t *testing.T) {
	const size = 100_000
	data := content(6, size)
	h := protocol.SHA1(sha1.Sum(data))
	part := filepath.Join(t.TempDir(), "x.part")
	if err := os.WriteFile(part, data[:3000], 0o644); err != nil {
		t.Fatal(err)
	}
	parts := &fakePartials{files: map[protocol.SHA1]PartialFile{h: {Path: part, Name: "x", Size: size, Have: Ranges{}.Add(0, 80_000)}}}
	srv := &Server{Library: newFakeLibrary(), Partials: parts}
	ts := startServer(t, srv, nil)
	c, err := net.Dial("tcp", ts.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\n\r\n", n2r(h))
	r := readResponse(t, br, true)
	if r.code != 206 || r.h.Get("Content-Length") != "80000" {
		t.Fatalf("%s Content-Length %q", r.status, r.h.Get("Content-Length"))
	}
	got, err := io.ReadAll(br)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("reading the body: %v", err)
	}
	if !bytes.Equal(got, data[:3000]) {
		t.Fatalf("got %d bytes, want the 3000 on disk and then the end of the stream", len(got))
	}
}
