package transfer

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"gnutella/protocol"
	"gnutella/share"
	"gnutella/testnet/await"
)

// uploadFixture: a shared folder with two files, and a secret file next to
// it that must never be sent.
type uploadFixture struct {
	root, sharedDir string
	secret          []byte
	secretPath      string
	a, b            share.File
	aData, bData    []byte
	lib             *fakeLibrary
	ts              *testServer
}

func newUploadFixture(t *testing.T, srv *Server) *uploadFixture {
	t.Helper()
	fx := &uploadFixture{root: t.TempDir()}
	fx.sharedDir = filepath.Join(fx.root, "shared")
	if err := os.Mkdir(fx.sharedDir, 0o755); err != nil {
		t.Fatal(err)
	}
	fx.secret = []byte("TOP-SECRET-" + strings.Repeat("do-not-leak-", 20))
	fx.secretPath = filepath.Join(fx.root, "secret.txt")
	if err := os.WriteFile(fx.secretPath, fx.secret, 0o600); err != nil {
		t.Fatal(err)
	}
	fx.aData = content(1, 100_000)
	fx.bData = content(2, 3000)
	fx.a = makeShared(t, fx.sharedDir, 1, "zebra quokka (live).mp3", fx.aData)
	fx.b = makeShared(t, fx.sharedDir, 7, "notes.txt", fx.bData)
	fx.lib = newFakeLibrary(fx.a, fx.b)
	srv.Library = fx.lib
	if srv.UserAgent == "" {
		srv.UserAgent = "gnutella/test"
	}
	fx.ts = startServer(t, srv, nil)
	return fx
}

func getPath(f share.File) string {
	return fmt.Sprintf("/get/%d/%s", f.Index, url.PathEscape(f.Name))
}

func TestUploadGetByIndexAndURN(t *testing.T) {
	fx := newUploadFixture(t, &Server{})
	for _, target := range []string{
		getPath(fx.a),
		"/uri-res/N2R?" + fx.a.SHA1.String(),
		"/uri-res/N2R?" + strings.ToLower(fx.a.SHA1.String()),
		"/uri-res/n2r?" + fx.a.SHA1.String(),
	} {
		out := roundTrip(t, fx.ts.addr, "GET "+target+" HTTP/1.1\r\nHost: x\r\nUser-Agent: test\r\nConnection: close\r\n\r\n")
		r := readResponse(t, bufio.NewReader(bytes.NewReader(out)), false)
		if r.code != 200 {
			t.Fatalf("%s: %s", target, r.status)
		}
		if !bytes.Equal(r.body, fx.aData) {
			t.Fatalf("%s: body differs", target)
		}
		for name, want := range map[string]string{
			"Server":                 "gnutella/test",
			"Content-Length":         "100000",
			"Content-Type":           "audio/mpeg",
			"X-Gnutella-Content-URN": fx.a.SHA1.String(),
			"Connection":             "close",
			"Accept-Ranges":          "bytes",
		} {
			if got := r.h.Get(name); got != want {
				t.Errorf("%s: %s = %q, want %q", target, name, got, want)
			}
		}
		if _, err := time.Parse(time.RFC1123, r.h.Get("Last-Modified")); err != nil {
			t.Errorf("Last-Modified %q: %v", r.h.Get("Last-Modified"), err)
		}
		if r.h.Has("Content-Range") {
			t.Errorf("a 200 carries Content-Range")
		}
	}
	// No hash known: no URN header, octet-stream for an unknown extension.
	fx.lib.add(share.File{Index: 9, Path: fx.b.Path, Name: "raw.bin9", Size: fx.b.Size, ModTime: fx.b.ModTime})
	out := roundTrip(t, fx.ts.addr, "GET /get/9/raw.bin9 HTTP/1.1\r\nConnection: close\r\n\r\n")
	r := readResponse(t, bufio.NewReader(bytes.NewReader(out)), false)
	if r.code != 200 || r.h.Has("X-Gnutella-Content-URN") || r.h.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("unhashed file: %s %v", r.status, r.h)
	}
}

func TestUploadRanges(t *testing.T) {
	fx := newUploadFixture(t, &Server{})
	size := int64(len(fx.aData))
	cases := []struct {
		rng          string
		code         int
		start, end   int64
		contentRange string
	}{
		{"bytes=0-99", 206, 0, 99, "bytes 0-99/100000"},
		{"bytes=99000-", 206, 99000, size - 1, "bytes 99000-99999/100000"},
		{"bytes=-512", 206, size - 512, size - 1, "bytes 99488-99999/100000"},
		{"bytes=-200000", 200, 0, size - 1, ""},
		{"bytes=0-", 200, 0, size - 1, ""},
		{"bytes=0-99999", 200, 0, size - 1, ""},
		{"bytes=10-999999", 206, 10, size - 1, "bytes 10-99999/100000"},
		{"bytes=5-5", 206, 5, 5, "bytes 5-5/100000"},
		{"bytes=0-9, 20-29", 206, 0, 9, "bytes 0-9/100000"}, // first range only
		{" Bytes = 100-199 ", 206, 100, 199, "bytes 100-199/100000"},
		{"bytes=100000-", 416, 0, 0, "bytes */100000"},
		{"bytes=200000-300000", 416, 0, 0, "bytes */100000"},
		{"bytes=-0", 416, 0, 0, "bytes */100000"},
		{"bytes=9-5", 400, 0, 0, ""},
		{"bytes=abc", 400, 0, 0, ""},
		{"bytes=1-2-3", 400, 0, 0, ""},
		{"bytes=-", 400, 0, 0, ""},
		{"items=0-9", 400, 0, 0, ""},
		{"bytes=+5-9", 400, 0, 0, ""},
		{"bytes=99999999999999999999-", 400, 0, 0, ""},
	}
	for _, c := range cases {
		for _, target := range []string{getPath(fx.a), "/uri-res/N2R?" + fx.a.SHA1.String()} {
			out := roundTrip(t, fx.ts.addr, "GET "+target+" HTTP/1.1\r\nRange: "+c.rng+"\r\nConnection: close\r\n\r\n")
			r := readResponse(t, bufio.NewReader(bytes.NewReader(out)), false)
			if r.code != c.code {
				t.Errorf("Range %q: %s, want %d", c.rng, r.status, c.code)
				continue
			}
			if got := r.h.Get("Content-Range"); got != c.contentRange {
				t.Errorf("Range %q: Content-Range %q, want %q", c.rng, got, c.contentRange)
			}
			if r.h.Get("X-Gnutella-Content-URN") != fx.a.SHA1.String() {
				t.Errorf("Range %q: the full-file URN is missing", c.rng)
			}
			switch c.code {
			case 200, 206:
				if !bytes.Equal(r.body, fx.aData[c.start:c.end+1]) {
					t.Errorf("Range %q: wrong bytes", c.rng)
				}
			case 400:
				if !strings.Contains(r.status, "Malformed Range request") {
					t.Errorf("Range %q: %q", c.rng, r.status)
				}
			}
			if c.code >= 400 && r.h.Get("Connection") != "close" {
				t.Errorf("Range %q: error without Connection: close", c.rng)
			}
		}
	}
}

func TestUploadHeadKeepAliveAndHTTP10(t *testing.T) {
	fx := newUploadFixture(t, &Server{})
	c, err := net.Dial("tcp", fx.ts.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)

	// Three requests on one HTTP/1.1 connection, then a HEAD and a close.
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: a\r\n\r\n", getPath(fx.a))
	r := readResponse(t, br, false)
	if r.code != 200 || !bytes.Equal(r.body, fx.aData) || r.h.Has("Connection") {
		t.Fatalf("1st: %s %v", r.status, r.h.Get("Connection"))
	}
	fmt.Fprintf(c, "GET /uri-res/N2R?%s HTTP/1.1\r\nRange: bytes=10-19\r\n\r\n", fx.b.SHA1)
	r = readResponse(t, br, false)
	if r.code != 206 || !bytes.Equal(r.body, fx.bData[10:20]) {
		t.Fatalf("2nd: %s", r.status)
	}
	// pipelined: two requests in one write
	fmt.Fprintf(c, "HEAD %s HTTP/1.1\r\n\r\nGET %s HTTP/1.1\r\nRange: bytes=-3\r\n\r\n", getPath(fx.b), getPath(fx.b))
	r = readResponse(t, br, true)
	if r.code != 200 || r.h.Get("Content-Length") != "3000" {
		t.Fatalf("3rd (HEAD): %s %v", r.status, r.h)
	}
	r = readResponse(t, br, false)
	if r.code != 206 || !bytes.Equal(r.body, fx.bData[2997:]) {
		t.Fatalf("4th: %s", r.status)
	}
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nConnection: close\r\n\r\n", getPath(fx.b))
	r = readResponse(t, br, false)
	if r.code != 200 || r.h.Get("Connection") != "close" {
		t.Fatalf("5th: %s", r.status)
	}
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("connection still open after Connection: close")
	}

	// HTTP/1.0 closes unless asked to keep alive; Clip2's trailing slash.
	out := roundTrip(t, fx.ts.addr, "GET "+getPath(fx.b)+"/ HTTP/1.0\r\n\r\n")
	r = readResponse(t, bufio.NewReader(bytes.NewReader(out)), false)
	if r.code != 200 || !bytes.Equal(r.body, fx.bData) || r.h.Get("Connection") != "close" {
		t.Fatalf("HTTP/1.0: %s", r.status)
	}
	c2, err := net.Dial("tcp", fx.ts.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	_ = c2.SetDeadline(time.Now().Add(10 * time.Second))
	br2 := bufio.NewReader(c2)
	for i := 0; i < 3; i++ {
		fmt.Fprintf(c2, "GET %s HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", getPath(fx.b))
		r = readResponse(t, br2, false)
		if r.code != 200 || !strings.EqualFold(r.h.Get("Connection"), "keep-alive") {
			t.Fatalf("HTTP/1.0 keep-alive #%d: %s %q", i, r.status, r.h.Get("Connection"))
		}
	}
	// HEAD of an unknown file: 404 with no body.
	fmt.Fprintf(c2, "HEAD /get/55/nothing HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
	r = readResponse(t, br2, true)
	if r.code != 404 {
		t.Fatalf("HEAD 404: %s", r.status)
	}
	if b, err := br2.ReadByte(); err == nil {
		t.Fatalf("HEAD 404 had a body (%q) or the connection stayed open", b)
	}
}

// TestUploadBadInput: every hostile request is refused with the right code,
// and no byte of the secret file next to the shared folder is ever sent.
func TestUploadBadInput(t *testing.T) {
	fx := newUploadFixture(t, &Server{})
	secretName := filepath.Base(fx.secretPath)
	abs := url.PathEscape(fx.secretPath)
	cases := []struct {
		raw    string
		code   int
		reason string
	}{
		{"GET /../secret.txt HTTP/1.1\r\n\r\n", 400, "Bad Path"},
		{"GET /get/0/../../etc/passwd HTTP/1.1\r\n\r\n", 400, "Bad Path"},
		{"GET /get/1/../../" + secretName + " HTTP/1.1\r\n\r\n", 400, "Bad Path"},
		{"GET /%2e%2e/secret.txt HTTP/1.1\r\n\r\n", 400, "Bad Path"},
		{"GET /%2E%2E/%2e%2e/etc/passwd HTTP/1.1\r\n\r\n", 400, "Bad Path"},
		{"GET /get/1/%2e%2e%2f" + secretName + " HTTP/1.1\r\n\r\n", 400, "Bad Path"},
		{"GET /get/1/..%2F..%2F" + secretName + " HTTP/1.1\r\n\r\n", 400, "Bad Path"},
		{"GET /get/1/..%5C" + secretName + " HTTP/1.1\r\n\r\n", 400, "Bad Path"},
		{"GET /get/1/./x HTTP/1.1\r\n\r\n", 400, "Bad Path"},
		{"GET /get/1/%zz HTTP/1.1\r\n\r\n", 400, "Bad Path"},
		{"GET /get/1/a%00b HTTP/1.1\r\n\r\n", 400, "Bad Path"},
		{"GET /etc/passwd HTTP/1.1\r\n\r\n", 404, "Not Found"},
		{"GET " + fx.secretPath + " HTTP/1.1\r\n\r\n", 404, "Not Found"},
		{"GET /get/1/" + abs + " HTTP/1.1\r\n\r\n", 404, "Not Found"}, // unescaped name holds a slash
		{"GET /get/1" + fx.secretPath + " HTTP/1.1\r\n\r\n", 404, "Not Found"},
		{"GET //" + fx.secretPath + " HTTP/1.1\r\n\r\n", 404, "Not Found"},
		{"GET /shared/" + secretName + " HTTP/1.1\r\n\r\n", 404, "Not Found"},
		{"GET " + secretName + " HTTP/1.1\r\n\r\n", 400, "Bad Request"},
		{"GET http://127.0.0.1/" + secretName + " HTTP/1.1\r\n\r\n", 400, "Bad Request"},
		{"GET file:///" + fx.secretPath + " HTTP/1.1\r\n\r\n", 400, "Bad Request"},
		{"GET / HTTP/1.1\r\n\r\n", 404, "Not Found"},
		{"GET /get/1/" + secretName + " HTTP/1.1\r\n\r\n", 404, "File index/name mismatch"},
		{"GET /get/1/notes.txt HTTP/1.1\r\n\r\n", 404, "File index/name mismatch"},
		{"GET /get/7/zebra%20quokka%20(live).mp3 HTTP/1.1\r\n\r\n", 404, "File index/name mismatch"},
		{"GET /get/99/notes.txt HTTP/1.1\r\n\r\n", 404, "Not Found"},
		{"GET /get/1/a%2Fb HTTP/1.1\r\n\r\n", 404, "Not Found"},
		{"GET /get/1/a/b HTTP/1.1\r\n\r\n", 404, "Not Found"},
		{"GET /get/x/notes.txt HTTP/1.1\r\n\r\n", 400, "Bad Request"},
		{"GET /get/99999999999/notes.txt HTTP/1.1\r\n\r\n", 400, "Bad Request"},
		{"GET /get/1 HTTP/1.1\r\n\r\n", 404, "Not Found"},
		{"GET /uri-res/N2R?urn:sha1:" + protocol.SHA1{1}.Base32() + " HTTP/1.1\r\n\r\n", 404, "Not Found"},
		{"GET /uri-res/N2R?urn:sha1:TOOSHORT HTTP/1.1\r\n\r\n", 400, "Malformed URN"},
		{"GET /uri-res/N2R?" + fx.secretPath + " HTTP/1.1\r\n\r\n", 400, "Malformed URN"},
		{"GET /uri-res/N2X?" + fx.a.SHA1.String() + " HTTP/1.1\r\n\r\n", 404, "Not Found"},
		{"GET /uri-res/../secret.txt HTTP/1.1\r\n\r\n", 400, "Bad Path"},
		{"GET /gnutella/push-proxy?ServerId=AAAAAAAAAAAAAAAAAAAAAAAAAA HTTP/1.1\r\n\r\n", 404, "Not Found"}, // no PushProxy
		{"GET /get/1/x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 403, "No Content Allowed"},
		{"GET /get/1/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 403, "No Content Allowed"},
		{"GET /get/1/x HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400, "Bad Content-Length"},
		{"POST /get/1/x HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 501, "Method Not Implemented"},
		{"GET /get/1/x\r\n\r\n", 400, "Bad Request"},
		{"GET /get/1/x HTTP/2.0\r\n\r\n", 400, "Bad Request"},
		{"GET /get/1/x HTTP/1.1\r\nno colon here\r\n\r\n", 400, "Bad Request"},
		{"GET /" + strings.Repeat("a", 2000) + " HTTP/1.1\r\n\r\n", 414, "URI Too Long"},
		{"GET /get/1/x HTTP/1.1\r\n" + strings.Repeat("X-Junk: 1\r\n", 200) + "\r\n", 431, "Request Header Fields Too Large"},
		{"GET /get/1/x HTTP/1.1\r\n" + strings.Repeat("X-Junk: "+strings.Repeat("j", 1000)+"\r\n", 20) + "\r\n", 431, "Request Header Fields Too Large"},
		{"GET /get/1/x HTTP/1.1\r\nX-Long: " + strings.Repeat("j", 1100) + "\r\n\r\n", 431, "Request Header Fields Too Large"},
	}
	for _, c := range cases {
		out := roundTrip(t, fx.ts.addr, c.raw)
		if bytes.Contains(out, fx.secret[:20]) || bytes.Contains(out, []byte("do-not-leak")) {
			t.Fatalf("%q: the secret file leaked", truncate(c.raw, 80))
		}
		if len(out) == 0 {
			t.Errorf("%q: no answer", truncate(c.raw, 80))
			continue
		}
		line, _, _ := bytes.Cut(out, []byte("\r\n"))
		if code := statusCode(t, out); code != c.code || !strings.Contains(string(line), c.reason) {
			t.Errorf("%q: got %q, want %d %s", truncate(c.raw, 80), line, c.code, c.reason)
		}
		if !bytes.Contains(out, []byte("\r\nConnection: close\r\n")) {
			t.Errorf("%q: error without Connection: close", truncate(c.raw, 80))
		}
	}
	// A library entry pointing at a directory or a missing file is 404 too.
	fx.lib.add(share.File{Index: 20, Path: fx.root, Name: "dir", Size: 4096})
	fx.lib.add(share.File{Index: 21, Path: filepath.Join(fx.root, "gone"), Name: "gone", Size: 1})
	fx.lib.add(share.File{Index: 22, Path: fx.secretPath, Name: "changed", Size: 3}) // size differs from the disk
	for _, p := range []string{"/get/20/dir", "/get/21/gone", "/get/22/changed"} {
		out := roundTrip(t, fx.ts.addr, "GET "+p+" HTTP/1.1\r\n\r\n")
		if code := statusCode(t, out); code != 404 {
			t.Errorf("%s: %d", p, code)
		}
		if bytes.Contains(out, []byte("do-not-leak")) {
			t.Fatalf("%s: the secret leaked", p)
		}
	}
}

func TestUploadSlotsAndBusy(t *testing.T) {
	srv := &Server{Slots: 1, PerIP: -1, RetryAfter: 1500 * time.Millisecond}
	fx := newUploadFixture(t, srv)
	big := filepath.Join(fx.sharedDir, "big.bin")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(256 << 20); err != nil { // sparse: more than the socket buffers hold
		t.Fatal(err)
	}
	f.Close()
	fi, _ := os.Stat(big)
	fx.lib.add(share.File{Index: 30, Path: big, Name: "big.bin", Size: fi.Size(), ModTime: fi.ModTime()})

	if srv.Busy() {
		t.Fatal("busy before any upload")
	}
	holder, err := net.Dial("tcp", fx.ts.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	fmt.Fprintf(holder, "GET /get/30/big.bin HTTP/1.1\r\n\r\n") // and never read
	await.Until(t, "the slot to be taken", srv.Busy)
	ups := srv.Uploads()
	if len(ups) != 1 || ups[0].Name != "big.bin" || ups[0].Size != 256<<20 || !ups[0].Remote.Addr().IsLoopback() {
		t.Fatalf("Uploads() = %+v", ups)
	}
	out := roundTrip(t, fx.ts.addr, "GET "+getPath(fx.b)+" HTTP/1.1\r\n\r\n")
	r := readResponse(t, bufio.NewReader(bytes.NewReader(out)), false)
	if r.code != 503 || r.h.Get("Retry-After") != "2" || r.h.Get("X-Gnutella-Content-URN") != fx.b.SHA1.String() {
		t.Fatalf("busy: %s Retry-After %q", r.status, r.h.Get("Retry-After"))
	}
	// HEAD needs no slot.
	out = roundTrip(t, fx.ts.addr, "HEAD "+getPath(fx.b)+" HTTP/1.1\r\nConnection: close\r\n\r\n")
	if code := statusCode(t, out); code != 200 {
		t.Fatalf("HEAD while busy: %d", code)
	}
	holder.Close()
	await.Until(t, "the slot to be freed", func() bool { return !srv.Busy() })
	out = roundTrip(t, fx.ts.addr, "GET "+getPath(fx.b)+" HTTP/1.1\r\nConnection: close\r\n\r\n")
	if code := statusCode(t, out); code != 200 {
		t.Fatalf("after the slot was freed: %d", code)
	}
	if st := srv.Stats(); st.Refused != 1 || st.Completed < 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestUploadPerIPLimit(t *testing.T) {
	srv := &Server{Slots: 4} // PerIP defaults to 1
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
	await.Until(t, "the upload to start", func() bool { return len(srv.Uploads()) == 1 })
	if srv.Busy() {
		t.Fatal("Busy with 1 of 4 slots taken")
	}
	out := roundTrip(t, fx.ts.addr, "GET "+getPath(fx.b)+" HTTP/1.1\r\n\r\n")
	if code := statusCode(t, out); code != 503 {
		t.Fatalf("second upload to the same IP: %d", code)
	}
}

func TestUploadPushProxy(t *testing.T) {
	var calls atomic.Int32
	want := protocol.GUID{0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	srv := &Server{PushProxy: func(id protocol.GUID, xnode netip.AddrPort, _ bool) int {
		calls.Add(1)
		if xnode != netip.MustParseAddrPort("10.0.0.1:6346") {
			return 400
		}
		if id == want {
			return 202
		}
		return 410
	}}
	fx := newUploadFixture(t, srv)
	b32 := want.Base32()
	cases := []struct {
		target, xnode string
		code          int
	}{
		{"/gnutella/push-proxy?ServerId=" + b32, "10.0.0.1:6346", 202},
		{"/gnutella/pushproxy?ServerId=" + strings.ToLower(b32), "10.0.0.1:6346", 202},
		{"/gnutella/push-proxy?ServerId=" + b32 + "======", "10.0.0.1:6346", 202},
		{"/gnet/push-proxy?guid=" + want.String() + "&file=3", "10.0.0.1:6346", 202},
		{"/gnutella/push-proxy?ServerId=" + strings.Repeat("A", 26), "10.0.0.1:6346", 410},
		{"/gnutella/push-proxy?ServerId=" + b32, "", 400},
		{"/gnutella/push-proxy?ServerId=" + b32, "nonsense", 400},
		{"/gnutella/push-proxy?ServerId=!!", "10.0.0.1:6346", 400},
		{"/gnutella/push-proxy", "10.0.0.1:6346", 404},                       // no query: not a push-proxy request
		{"/gnutella/push-proxy?guid=" + want.String(), "10.0.0.1:6346", 400}, // gtk-gnutella: ServerId on /gnutella
	}
	for _, c := range cases {
		raw := "GET " + c.target + " HTTP/1.1\r\nConnection: close\r\n"
		if c.xnode != "" {
			raw += "X-Node: " + c.xnode + "\r\n"
		}
		out := roundTrip(t, fx.ts.addr, raw+"\r\n")
		if code := statusCode(t, out); code != c.code {
			t.Errorf("%s (X-Node %q): %d, want %d", c.target, c.xnode, code, c.code)
		}
	}
	if calls.Load() != 5 {
		t.Fatalf("PushProxy called %d times, want 5", calls.Load())
	}
}

func TestUploadCloseEndsConnections(t *testing.T) {
	srv := &Server{Logger: zerolog.Nop(), IdleTimeout: time.Minute}
	fx := newUploadFixture(t, srv)
	c, err := net.Dial("tcp", fx.ts.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\n\r\n", getPath(fx.b))
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	readResponse(t, br, false) // the connection now waits for the next request
	done := make(chan struct{})
	go func() { srv.Close(); close(done) }()
	await.Recv(t, "Close to end an idle kept-alive connection", done)
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("connection still open after Close")
	}
}

func TestUploadIdleTimeout(t *testing.T) {
	srv := &Server{IdleTimeout: 200 * time.Millisecond}
	fx := newUploadFixture(t, srv)
	c, err := net.Dial("tcp", fx.ts.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Our own deadline only guards against a hang: the server must close
	// first (EOF or reset), not leave us to time out.
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nX-Slow: ", getPath(fx.b)) // never finishes its headers
	var buf [1]byte
	_, err = c.Read(buf[:])
	switch {
	case err == nil:
		t.Fatal("got an answer to half a request")
	case errors.Is(err, os.ErrDeadlineExceeded):
		t.Fatal("the server kept a stalled request's connection open")
	}
}

func TestParseTargetAndRequestLine(t *testing.T) {
	r, code, _ := parseTarget("/get/12/My%20Song.mp3")
	if code != 0 || r.kind != routeGet || r.index != 12 || r.name != "My Song.mp3" {
		t.Fatalf("%+v %d", r, code)
	}
	r, code, _ = parseTarget("/get/12/My Song.mp3/")
	if code != 0 || r.name != "My Song.mp3" {
		t.Fatalf("trailing slash: %+v %d", r, code)
	}
	m, target, minor, ok := parseRequestLine("GET /get/1/a b c.mp3 HTTP/1.0")
	if !ok || m != "GET" || target != "/get/1/a b c.mp3" || minor != 0 {
		t.Fatalf("%q %q %d %v", m, target, minor, ok)
	}
	for _, bad := range []string{"GET", "GET /x", "GET /x HTTP/1", "GET /x HTTP/1.x", " /x HTTP/1.1", "GET  HTTP/1.1"} {
		if _, _, _, ok := parseRequestLine(bad); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}
