package transfer

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"context"
	"crypto/sha1"
	"io"
	"net"
	"net/http/httputil"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gnutella/protocol"
)

// Every parser of bytes from the network has a fuzz target. These check the
// invariants the upload server and the downloader rely on, not just that
// nothing panics.

func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"/get/1/zebra%20quokka.mp3", "/uri-res/N2R?urn:sha1:X4W42LDG7CDMMJAJT2ODLN7IBG5UYDG7",
		"/get/0/../../etc/passwd", "/get/1/%2e%2e/x", "/gnutella/push-proxy?ServerId=AAAAAAAAAAAAAAAAAAAAAAAAAA",
		"//get//1//a//", "http://x/get/1/a", "/get/1/a%2Fb", "/get/4294967296/a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		r, code, _ := parseTarget(target)
		if code != 0 {
			return
		}
		if strings.Contains(r.name, "/") {
			t.Fatalf("%q: route name %q contains a slash", target, r.name)
		}
		if r.name == ".." || r.name == "." {
			t.Fatalf("%q: route name %q", target, r.name)
		}
	})
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-99", "bytes=100-", "bytes=-500", "bytes=5-1", "bytes=0-0,5-9", "items=1-2", "bytes=99999999999999999999-"} {
		f.Add(s, int64(1000))
	}
	f.Fuzz(func(t *testing.T, v string, size int64) {
		if size < 0 {
			size = -size
		}
		start, end, st := parseRange(v, size)
		if st == rangeOK && (start < 0 || end < start || end >= size) {
			t.Fatalf("%q of %d: %d-%d accepted", v, size, start, end)
		}
	})
}

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"bytes 0-99/1000", "bytes 0-99/*", "bytes=0-99/100", "bytes 99-0/1000", "bytes 0-1000/1000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		start, end, total, ok := parseContentRange(v)
		if !ok {
			return
		}
		if start < 0 || end < start || (total >= 0 && end >= total) {
			t.Fatalf("%q: %d-%d/%d accepted", v, start, end, total)
		}
	})
}

func FuzzReadResponseHead(f *testing.F) {
	f.Add([]byte("HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-9/10\r\nContent-Length: 10\r\n\r\n"))
	f.Add([]byte("HTTP 200 OK\r\n\r\n"))
	f.Add([]byte("HTTP/1.0 503 Busy\r\nRetry-After: 60\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(b), 2048)
		code, _, _, _, err := readResponseHead(br)
		if err == nil && (code < 100 || code > 999) {
			t.Fatalf("status %d accepted", code)
		}
	})
}

// FuzzServe feeds arbitrary bytes to the upload server as a client's
// request: whatever they are, no byte of a file outside the library is ever
// sent, and the server returns.
func FuzzServe(f *testing.F) {
	root := f.TempDir()
	shared := filepath.Join(root, "shared")
	if err := os.Mkdir(shared, 0o755); err != nil {
		f.Fatal(err)
	}
	secret := []byte("TOP-SECRET-" + strings.Repeat("never-sent-", 10))
	if err := os.WriteFile(filepath.Join(root, "secret.txt"), secret, 0o600); err != nil {
		f.Fatal(err)
	}
	lib := newFakeLibrary(makeShared(f, shared, 1, "song.ogg", []byte("the shared bytes")))
	// Both servers share a partial file; the second has no free slot:
	// every GET meets the PARQ queue.
	partData := []byte("0123456789abcdefghij")
	partPath := filepath.Join(shared, "part.bin")
	if err := os.WriteFile(partPath, partData, 0o644); err != nil {
		f.Fatal(err)
	}
	partSHA1 := protocol.SHA1(sha1.Sum(partData))
	parts := &fakePartials{files: map[protocol.SHA1]PartialFile{partSHA1: {Path: partPath, Name: "part.bin", Size: 40, Have: Ranges{}.Add(0, 5).Add(10, 20)}}}
	srv := &Server{Library: lib, Partials: parts, UserAgent: "gnutella/fuzz", IdleTimeout: 30 * time.Millisecond}
	busy := &Server{Library: lib, Partials: parts, UserAgent: "gnutella/fuzz", IdleTimeout: 30 * time.Millisecond, Slots: -1, QueueRetry: time.Second}
	for _, s := range []string{
		"GET /get/1/song.ogg HTTP/1.1\r\nX-Queue: 1.1\r\n\r\nGET /get/1/song.ogg HTTP/1.1\r\nX-Queued: position=1; ID=00112233445566778899aabbccddeeff\r\n\r\n",
		"GET /uri-res/N2R?" + partSHA1.String() + " HTTP/1.1\r\nRange: bytes=3-12\r\n\r\nHEAD /uri-res/N2R?" + partSHA1.String() + " HTTP/1.1\r\nRange: bytes=7-\r\n\r\n",
		"GET /get/1/song.ogg HTTP/1.1\r\nRange: bytes=0-3\r\n\r\n",
		"GET /get/1/../secret.txt HTTP/1.1\r\n\r\n",
		"GET /get/1/%2e%2e%2fsecret.txt HTTP/1.1\r\n\r\n",
		"HEAD /uri-res/N2R?urn:sha1:AAAA HTTP/1.0\r\n\r\n",
		"GET /../secret.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /get/1/song.ogg HTTP/1.1\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, req []byte) {
		for _, srv := range []*Server{srv, busy} {
			client, server := net.Pipe()
			done := make(chan struct{})
			go func() {
				defer close(done)
				srv.Serve(server)
			}()
			go func() {
				_ = client.SetWriteDeadline(time.Now().Add(time.Second))
				_, _ = client.Write(req)
			}()
			_ = client.SetReadDeadline(time.Now().Add(2 * time.Second))
			out, _ := io.ReadAll(client)
			client.Close()
			<-done
			if bytes.Contains(out, secret[:11]) {
				t.Fatalf("the secret file leaked for request %q", req)
			}
		}
	})
}

func FuzzParseAvailableRanges(f *testing.F) {
	for _, s := range []string{"bytes 0-1023,4096-8191", "bytes=0-99, 200-99999", "bytes 5-1", "bytes", "bytes 0-0"} {
		f.Add(s, int64(10000))
	}
	f.Fuzz(func(t *testing.T, v string, size int64) {
		if size <= 0 {
			return
		}
		r, err := ParseAvailableRanges(v, size)
		if err != nil {
			return
		}
		if len(r) > maxAvailableSpans {
			t.Fatalf("%q: %d spans", v, len(r))
		}
		for i, s := range r {
			if s.Start < 0 || s.End > size || s.Start >= s.End || (i > 0 && r[i-1].End >= s.Start) {
				t.Fatalf("%q (size %d): bad set %v", v, size, r)
			}
		}
		back, err := ParseAvailableRanges(r.FormatAvailable(), size)
		if len(r) > 0 && (err != nil || !equalRanges(back, r)) {
			t.Fatalf("%q: round trip %v -> %v (%v)", v, r, back, err)
		}
	})
}

func FuzzParseQueued(f *testing.F) {
	for _, s := range []string{"position=1503; length=1840; ETA=4200; lifetime=3600; ID=6a074979f3201edbf323b6425fef4a53",
		"ID=ab; position=1", "position=1", "id=a;position=99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		q, err := ParseQueued(v)
		if err != nil {
			return
		}
		if q.ID == "" || len(q.ID) > maxQueueID || strings.ContainsAny(q.ID, "; ,\r\n") {
			t.Fatalf("%q: id %q", v, q.ID)
		}
		back, err := ParseQueued(q.Format())
		if err != nil || back != q {
			t.Fatalf("%q: round trip %+v -> %+v (%v)", v, q, back, err)
		}
	})
}

func FuzzParseAlt(f *testing.F) {
	for _, s := range []string{"127.0.0.1:6347, 127.0.0.2", "tls=8,127.0.0.1:1;[::1]:7", "::ffff:127.0.0.1",
		"127.0.0.1:0", "127.0.0.1:99999", "a,b,,c", "[::1", "127.0.0.1:1 2026-01-01T00:00Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		addrs, _ := ParseAlt(v)
		if len(addrs) > maxAltItems {
			t.Fatalf("%q: %d items", v, len(addrs))
		}
		for _, a := range addrs {
			if !a.IsValid() || a.Port() == 0 || a.Addr().Is4In6() || a.Addr().Zone() != "" {
				t.Fatalf("%q: item %v", v, a)
			}
		}
		back, err := ParseAlt(FormatAlt(addrs))
		if err != nil || !slices.Equal(back, addrs) {
			t.Fatalf("%q: round trip %v -> %v (%v)", v, addrs, back, err)
		}
	})
}

func FuzzParseFalt(f *testing.F) {
	for _, s := range []string{"9DBC52EEEBCA2C8A79036D626B959900;fwt/1;26252:127.0.0.5;pptls=E;127.0.0.6:1085;127.0.0.7:804",
		"AEAAAAAAAAAAAAAAAAAAAAAAAA;[::1]:5", "9dbc52eeebca2c8a79036d626b959900, x;1.2.3.4:5", ";;;,,,", "9DBC52EEEBCA2C8A79036D626B959900;0:1.2.3.4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		locs, _ := ParseFalt(v)
		if len(locs) > maxAltItems {
			t.Fatalf("%q: %d items", v, len(locs))
		}
		for _, l := range locs {
			if l.GUID.IsZero() || len(l.Proxies) > maxFaltProxies {
				t.Fatalf("%q: location %+v", v, l)
			}
			for _, p := range l.Proxies {
				if !p.IsValid() || p.Port() == 0 {
					t.Fatalf("%q: proxy %v", v, p)
				}
			}
		}
		back, err := ParseFalt(FormatFalt(locs))
		if err != nil || len(back) != len(locs) {
			t.Fatalf("%q: round trip %+v -> %+v (%v)", v, locs, back, err)
		}
		for i := range locs {
			if back[i].GUID != locs[i].GUID || !slices.Equal(back[i].Proxies, locs[i].Proxies) {
				t.Fatalf("%q: round trip %+v -> %+v", v, locs[i], back[i])
			}
		}
	})
}

// FuzzMeshLearn feeds a mesh hostile X-Alt, X-NAlt and X-Falt values and
// checks that it only ever hands out admissible, bounded locations and
// writes header lines within the limit.
func FuzzMeshLearn(f *testing.F) {
	f.Add("127.0.0.1:1, 0.0.0.0:5", "127.0.0.1:1", "9DBC52EEEBCA2C8A79036D626B959900;127.0.0.1:2;224.0.0.1:3")
	f.Add("tls=1,[::1]:6346", "", "")
	f.Fuzz(func(t *testing.T, alt, nalt, falt string) {
		m := NewMesh(MeshConfig{MaxPerFile: 8})
		sha := protocol.SHA1{1}
		var h protocol.Headers
		h.Add("X-Alt", alt)
		h.Add("X-NAlt", nalt)
		h.Add("X-Falt", falt)
		m.Learn(sha, &h, netip.AddrPort{})
		srcs := m.Sources(sha)
		if len(srcs) > 8 {
			t.Fatalf("%d sources over the bound", len(srcs))
		}
		for _, s := range srcs {
			if !s.Push && !m.admit(s.Addr) {
				t.Fatalf("inadmissible source %v", s.Addr)
			}
			for _, p := range s.PushProxies {
				if !m.admit(p) {
					t.Fatalf("inadmissible proxy %v", p)
				}
			}
		}
		for _, line := range strings.Split(string(m.AppendHeaders(nil, sha, netip.AddrPort{}, true)), "\r\n") {
			if len(line) > meshLineMax {
				t.Fatalf("header line of %d bytes", len(line))
			}
		}
	})
}

// FuzzBrowseAnswer feeds a browse client arbitrary answers: it must end
// (the answer ends, or a limit is hit), deliver no more records than
// allowed and no hit without records.
func FuzzBrowseAnswer(f *testing.F) {
	hits, _, _ := browseLibrary(f, 12)
	var stream []byte
	for _, h := range hits {
		hd := protocol.Header{Type: protocol.TypeQueryHit, TTL: 1, Length: uint32(len(h))}
		stream = append(hd.AppendTo(stream), h...)
	}
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	_, _ = zw.Write(stream)
	_ = zw.Close()
	var chunked bytes.Buffer
	cw := httputil.NewChunkedWriter(&chunked)
	_, _ = cw.Write(z.Bytes())
	_ = cw.Close()
	const head = "HTTP/1.1 200 OK\r\nContent-Type: application/x-gnutella-packets\r\n"
	f.Add([]byte(head + "\r\n" + string(stream)))
	f.Add([]byte(head + "Content-Encoding: deflate\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked.String() + "\r\n"))
	f.Add([]byte(head + "Content-Length: 40\r\n\r\n" + string(stream)))
	f.Add([]byte(head + "Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n"))
	f.Add([]byte("HTTP/1.1 503 Busy\r\n\r\n"))
	f.Fuzz(func(t *testing.T, answer []byte) {
		client, server := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			go func() { _, _ = io.Copy(io.Discard, server) }()
			_, _ = server.Write(answer)
			server.Close()
		}()
		b := &Browser{MaxRecords: 15, MaxBytes: 64 << 10, Timeout: 2 * time.Second}
		got := 0
		n, _ := b.BrowseConn(context.Background(), client, nil, "127.0.0.1:6346", func(h *protocol.QueryHit) {
			if len(h.Results) == 0 {
				t.Fatal("a hit without records was delivered")
			}
			got += len(h.Results)
		})
		client.Close()
		<-done
		if n != got || n > b.MaxRecords {
			t.Fatalf("%d records counted, %d delivered, at most %d allowed", n, got, b.MaxRecords)
		}
	})
}
