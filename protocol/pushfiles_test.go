package protocol

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"io"
	"net/http"
	"net/netip"
	"testing"
)

// The firewalled servent's side of a push: GIV, then its HTTP/1.1 upload
// answer on the same socket.
func TestPushRecordingGIVThenHTTPResponse(t *testing.T) {
	r := bufio.NewReader(bytes.NewReader(hsReadFile(t, "push-giv-and-upload.bin")))
	g, err := ReadGIV(r)
	if err != nil {
		t.Fatal(err)
	}
	if g.Index != 0 || g.Name != "file" {
		t.Errorf("GIV %+v, want index 0 and name \"file\"", g)
	}
	// The servent ID is the GUID the ultrapeer announced in its handshake.
	if g.ServentID.String() != "0efd31026d8def9548ee17f219e07503" {
		t.Errorf("servent ID %s", g.ServentID)
	}

	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 1 || resp.ProtoMinor != 1 {
		t.Errorf("status %q %s", resp.Status, resp.Proto)
	}
	if resp.ContentLength != 300000 {
		t.Errorf("Content-Length %d", resp.ContentLength)
	}
	want, err := ParseURN(resp.Header.Get("X-Gnutella-Content-URN"))
	if err != nil {
		t.Fatal(err)
	}
	if want.Base32() != "X4W42LDG7CDMMJAJT2ODLN7IBG5UYDG7" {
		t.Errorf("X-Gnutella-Content-URN %s", want)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if len(body) != 300000 {
		t.Fatalf("body of %d bytes", len(body))
	}
	if got := SHA1(sha1.Sum(body)); got != want {
		t.Errorf("body hashes to %s, header says %s", got, want)
	}
	if extra, _ := io.ReadAll(r); len(extra) != 0 {
		t.Errorf("%d bytes after the body", len(extra))
	}
}

// The downloader's side: after the GIV it sends a plain HTTP GET on the
// same socket.
func TestPushRecordingDownloadRequest(t *testing.T) {
	r := bufio.NewReader(bytes.NewReader(hsReadFile(t, "push-download-request.bin")))
	req, err := http.ReadRequest(r)
	if err != nil {
		t.Fatal(err)
	}
	if req.Method != http.MethodGet || req.URL.Path != "/uri-res/N2R" {
		t.Errorf("request %s %s", req.Method, req.URL)
	}
	urn, err := ParseURN(req.URL.RawQuery)
	if err != nil || urn.Base32() != "X4W42LDG7CDMMJAJT2ODLN7IBG5UYDG7" {
		t.Errorf("query %q: %v, %v", req.URL.RawQuery, urn, err)
	}
	node, err := ParseListenAddr(req.Header.Get("X-Node"))
	if err != nil || node != netip.MustParseAddrPort("127.0.0.1:16357") {
		t.Errorf("X-Node %v, %v", node, err)
	}
	if req.Header.Get("X-Queue") != "1.1" {
		t.Errorf("X-Queue %q", req.Header.Get("X-Queue"))
	}
	if extra, _ := io.ReadAll(r); len(extra) != 0 {
		t.Errorf("%d bytes after the request", len(extra))
	}
}
