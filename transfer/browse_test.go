package transfer

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httputil"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"gnutella/firewall"
	"gnutella/protocol"
)

// browseLibrary is n files as the servent would list them: 10 records a
// hit, each with its URN as text; it returns the hits' payloads and the
// files' names and URNs in order.
func browseLibrary(t testing.TB, n int) (hits [][]byte, names []string, urns []protocol.SHA1) {
	t.Helper()
	var servent protocol.GUID
	copy(servent[:], "browse-servent-1")
	for start := 0; start < n; start += 10 {
		var results []protocol.Result
		for i := start; i < min(start+10, n); i++ {
			name := fmt.Sprintf("file %04d.mp3", i)
			urn := protocol.SHA1(sha1.Sum([]byte(name)))
			names, urns = append(names, name), append(urns, urn)
			results = append(results, protocol.Result{Index: uint32(i + 1), Size: uint32(1000 + i), Name: []byte(name),
				Extensions: protocol.ResultExtensions(urn, false, nil)})
		}
		hit := protocol.NewQueryHit([4]byte{127, 0, 0, 1}, 6346, 1000, results,
			protocol.HitTrailer{Vendor: protocol.VendorCode{'G', 'N', 'U', 'T'}, GGEP: protocol.GGEP{{ID: "BH"}}}, servent)
		b, err := hit.AppendTo(nil)
		if err != nil {
			t.Fatal(err)
		}
		hits = append(hits, b)
	}
	return hits, names, urns
}

func browseFrom(hits [][]byte) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for _, h := range hits {
			if !yield(h) {
				return
			}
		}
	}
}

type browsed struct {
	names []string
	urns  []protocol.SHA1
	sizes []uint64
}

func (b *browsed) add(h *protocol.QueryHit) {
	for i := range h.Results {
		r := &h.Results[i]
		b.names = append(b.names, string(r.Name))
		b.sizes = append(b.sizes, r.FileSize())
		var u protocol.SHA1
		if us := r.URNs(); len(us) > 0 {
			u = us[0]
		}
		b.urns = append(b.urns, u)
	}
}

func TestBrowseWholeLibrary(t *testing.T) {
	hits, names, urns := browseLibrary(t, 2345)
	ts := startServer(t, &Server{Browse: browseFrom(hits)}, nil)
	for _, deflate := range []bool{true, false} {
		t.Run(fmt.Sprintf("deflate=%v", deflate), func(t *testing.T) {
			var got browsed
			n, err := (&Browser{NoDeflate: !deflate}).Browse(context.Background(), ts.addr, got.add)
			if err != nil {
				t.Fatal(err)
			}
			if n != len(names) || len(got.names) != len(names) {
				t.Fatalf("browsed %d records (%d delivered), want %d", n, len(got.names), len(names))
			}
			for i := range names {
				if got.names[i] != names[i] || got.urns[i] != urns[i] || got.sizes[i] != uint64(1000+i) {
					t.Fatalf("record %d: %q %v %d, want %q %v %d", i, got.names[i], got.urns[i], got.sizes[i], names[i], urns[i], 1000+i)
				}
			}
		})
	}
}

// The server's answer as a raw client sees it: the headers gtk-gnutella
// sends, chunks for HTTP/1.1, a zlib stream when deflate is asked for, and
// the end of the stream by closing for HTTP/1.0.
func TestBrowseServerAnswer(t *testing.T) {
	hits, _, _ := browseLibrary(t, 25)
	var want []byte
	for _, h := range hits {
		hd := protocol.Header{Type: protocol.TypeQueryHit, TTL: 1, Length: uint32(len(h))}
		want = append(hd.AppendTo(want), h...)
	}
	ts := startServer(t, &Server{Browse: browseFrom(hits)}, nil)
	for _, tc := range []struct {
		name, req        string
		chunked, deflate bool
	}{
		{"1.1 deflate", "GET / HTTP/1.1\r\nAccept: application/x-gnutella-packets\r\nAccept-Encoding: deflate\r\nConnection: close\r\n\r\n", true, true},
		{"1.1 plain", "GET / HTTP/1.1\r\nAccept: text/html, application/x-gnutella-packets\r\nConnection: close\r\n\r\n", true, false},
		{"1.0 plain", "GET / HTTP/1.0\r\nAccept: application/x-gnutella-packets\r\n\r\n", false, false},
		{"LimeWire", "GET / HTTP/1.1\r\nUser-Agent: LimeWire/4.18\r\nAccept: application/x-gnutella-packets\r\nAccept-Encoding: deflate\r\n\r\n", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := roundTrip(t, ts.addr, tc.req)
			head, body, ok := bytes.Cut(out, []byte("\r\n\r\n"))
			if !ok || statusCode(t, out) != 200 {
				t.Fatalf("answer %q", truncate(string(out), 300))
			}
			hs := string(head)
			if !strings.Contains(hs, "Content-Type: application/x-gnutella-packets\r\n") {
				t.Fatalf("no Content-Type in %q", hs)
			}
			if strings.Contains(hs, "Transfer-Encoding: chunked") != tc.chunked {
				t.Fatalf("chunked=%v, head %q", tc.chunked, hs)
			}
			if strings.Contains(hs, "Content-Encoding: deflate") != tc.deflate {
				t.Fatalf("deflate=%v, head %q", tc.deflate, hs)
			}
			var r io.Reader = bytes.NewReader(body)
			if tc.chunked {
				r = httputil.NewChunkedReader(r)
			}
			if tc.deflate {
				zr, err := zlib.NewReader(r)
				if err != nil {
					t.Fatal(err)
				}
				r = zr
			}
			got, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("stream of %d bytes, want the %d bytes of the hits", len(got), len(want))
			}
		})
	}
}

func TestBrowseServerRefusals(t *testing.T) {
	hits, _, _ := browseLibrary(t, 3)
	ts := startServer(t, &Server{Browse: browseFrom(hits)}, nil)
	off := startServer(t, &Server{}, nil)
	out := roundTrip(t, ts.addr, "GET / HTTP/1.1\r\nAccept: image/png\r\n\r\n")
	if code := statusCode(t, out); code != 406 {
		t.Fatalf("Accept: image/png: %d, want 406", code)
	}
	out = roundTrip(t, off.addr, "GET / HTTP/1.1\r\nAccept: application/x-gnutella-packets\r\n\r\n")
	if code := statusCode(t, out); code != 404 {
		t.Fatalf("browse disabled: %d, want 404", code)
	}
	// A browser (no Accept, or text/html) gets the HTML list, by URN.
	out = roundTrip(t, ts.addr, "GET / HTTP/1.1\r\nAccept: text/html\r\nConnection: close\r\n\r\n")
	head, body, _ := bytes.Cut(out, []byte("\r\n\r\n"))
	if statusCode(t, out) != 200 || !bytes.Contains(head, []byte("Content-Type: text/html")) {
		t.Fatalf("HTML answer %q", truncate(string(out), 300))
	}
	html, _ := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(body)))
	urn := protocol.SHA1(sha1.Sum([]byte("file 0001.mp3")))
	if !bytes.Contains(html, []byte(`<a href="/uri-res/N2R?`+urn.String()+`">file 0001.mp3</a>`)) {
		t.Fatalf("HTML without the link of file 0001: %s", html)
	}
}

// One address gets one browse at a time: a second is 503 while the first
// runs, and another address is served.
func TestBrowsePerIPLimit(t *testing.T) {
	hits, _, _ := browseLibrary(t, 30)
	entered, release := make(chan struct{}, 1), make(chan struct{})
	var once sync.Once
	srv := &Server{Browse: func(yield func([]byte) bool) {
		first := false
		once.Do(func() { first = true })
		if first {
			entered <- struct{}{}
			<-release
		}
		browseFrom(hits)(yield)
	}}
	ts := startServer(t, srv, nil)
	done := make(chan error, 1)
	go func() {
		_, err := (&Browser{}).Browse(context.Background(), ts.addr, func(*protocol.QueryHit) {})
		done <- err
	}()
	<-entered
	_, err := (&Browser{}).Browse(context.Background(), ts.addr, func(*protocol.QueryHit) {})
	var se *BrowseStatusError
	if !errors.As(err, &se) || se.Code != 503 || !errors.Is(err, ErrBrowseRefused) {
		t.Fatalf("second browse at once: %v, want 503", err)
	}
	// Another address is served meanwhile (there are two browse slots).
	other := firewall.DialFunc(func(ctx context.Context, addr string) (net.Conn, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
		return d.DialContext(ctx, "tcp", addr)
	})
	if n, err := (&Browser{Dial: other}).Browse(context.Background(), ts.addr, func(*protocol.QueryHit) {}); err != nil || n != 30 {
		t.Fatalf("browse from another address: %d records, %v", n, err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("first browse: %v", err)
	}
	// Its slot is free once it has read everything.
	if _, err := (&Browser{}).Browse(context.Background(), ts.addr, func(*protocol.QueryHit) {}); err != nil {
		t.Fatalf("browse after the first: %v", err)
	}
}

// hostile is a raw server on 127.0.0.1 that reads the request head and
// then runs serve on the connection.
func hostile(t *testing.T, serve func(c net.Conn)) netip.AddrPort {
	t.Helper()
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
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				if _, err := protocol.ReadLine(br); err != nil {
					return
				}
				if _, err := protocol.ReadHeaders(br, 0); err != nil {
					return
				}
				serve(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return addrPortOf(ln.Addr())
}

const packetsHead = "HTTP/1.1 200 OK\r\nContent-Type: application/x-gnutella-packets\r\n"

func TestBrowseHostileServers(t *testing.T) {
	hits, _, _ := browseLibrary(t, 10)
	hit := hits[0]
	frame := func(typ protocol.Type, payload []byte) []byte {
		h := protocol.Header{Type: typ, TTL: 1, Length: uint32(len(payload))}
		return append(h.AppendTo(nil), payload...)
	}
	// endless writes msg until the client goes.
	endless := func(head string, msg []byte) func(net.Conn) {
		return func(c net.Conn) {
			if _, err := io.WriteString(c, head+"\r\n"); err != nil {
				return
			}
			buf := bytes.Repeat(msg, max(1, 32<<10/len(msg)))
			for {
				if _, err := c.Write(buf); err != nil {
					return
				}
			}
		}
	}
	// A zlib stream of 16 MiB of zeros (about 16 KiB deflated): as
	// messages, empty Pings, 16 times what the client takes.
	var bomb bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&bomb, zlib.BestCompression)
	zeros := make([]byte, 1<<20)
	for range 16 {
		_, _ = zw.Write(zeros)
	}
	_ = zw.Close()

	for _, tc := range []struct {
		name  string
		serve func(net.Conn)
		b     Browser
		want  error
	}{
		{"endless hits", endless(packetsHead, frame(protocol.TypeQueryHit, hit)), Browser{MaxRecords: 500}, ErrBrowseTooBig},
		{"endless pings", endless(packetsHead, frame(protocol.TypePing, nil)), Browser{MaxBytes: 1 << 20}, ErrBrowseTooBig},
		{"deflate bomb", func(c net.Conn) {
			_, _ = io.WriteString(c, packetsHead+"Content-Encoding: deflate\r\n\r\n")
			_, _ = c.Write(bomb.Bytes())
		}, Browser{MaxBytes: 1 << 20}, ErrBrowseTooBig},
		{"oversized message", func(c net.Conn) {
			_, _ = io.WriteString(c, packetsHead+"\r\n")
			h := protocol.Header{Type: protocol.TypeQueryHit, TTL: 1, Length: 70000}
			_, _ = c.Write(h.AppendTo(nil))
			_, _ = io.Copy(io.Discard, c)
		}, Browser{}, protocol.ErrTooLarge},
		{"slow drip", func(c net.Conn) {
			_, _ = io.WriteString(c, packetsHead+"\r\n")
			msg := frame(protocol.TypeQueryHit, hit)
			for i := 0; ; i = (i + 1) % len(msg) {
				if _, err := c.Write(msg[i : i+1]); err != nil {
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}, Browser{Timeout: 300 * time.Millisecond}, ErrBrowseTimeout},
		{"silent", func(c net.Conn) {
			_, _ = io.WriteString(c, packetsHead+"\r\n")
			_, _ = io.Copy(io.Discard, c)
		}, Browser{IdleTimeout: 200 * time.Millisecond}, ErrBrowseTimeout},
		{"html", func(c net.Conn) {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html>")
		}, Browser{}, ErrBrowseNotPackets},
		{"gzip", func(c net.Conn) {
			_, _ = io.WriteString(c, packetsHead+"Content-Encoding: gzip\r\n\r\n")
		}, Browser{}, ErrBrowseNotPackets},
		{"refused", func(c net.Conn) {
			_, _ = io.WriteString(c, "HTTP/1.1 429 Cannot Browse Too Often\r\nContent-Length: 0\r\n\r\n")
		}, Browser{}, ErrBrowseRefused},
		{"cut mid-message", func(c net.Conn) {
			_, _ = io.WriteString(c, packetsHead+"\r\n")
			_, _ = c.Write(frame(protocol.TypeQueryHit, hit)[:100])
		}, Browser{}, protocol.ErrTruncated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := hostile(t, tc.serve)
			n, err := tc.b.Browse(context.Background(), addr, func(*protocol.QueryHit) {})
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %d records and %v, want %v", n, err, tc.want)
			}
			if tc.b.MaxRecords > 0 && n != tc.b.MaxRecords {
				t.Fatalf("%d records delivered, want the %d allowed", n, tc.b.MaxRecords)
			}
		})
	}
}

func TestBrowseUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := addrPortOf(ln.Addr())
	ln.Close()
	if _, err := (&Browser{}).Browse(context.Background(), addr, func(*protocol.QueryHit) {}); !errors.Is(err, ErrBrowseUnreachable) {
		t.Fatalf("browse of a closed port: %v", err)
	}
}

// BenchmarkBrowse: a browse of 10,000 records over loopback, the server's
// encoding (framing, deflate, chunks) and the client's reading and
// decoding together.
func BenchmarkBrowse(b *testing.B) {
	hits, _, _ := browseLibrary(b, 10_000)
	ts := startServer(b, &Server{Browse: browseFrom(hits)}, nil)
	for _, deflate := range []bool{true, false} {
		b.Run(fmt.Sprintf("deflate=%v", deflate), func(b *testing.B) {
			br := &Browser{NoDeflate: !deflate}
			for b.Loop() {
				n, err := br.Browse(context.Background(), ts.addr, func(*protocol.QueryHit) {})
				if err != nil || n != 10_000 {
					b.Fatalf("%d records, %v", n, err)
				}
			}
			b.ReportMetric(float64(10_000*b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// Our file answers say we can be browsed, as gtk-gnutella's do.
func TestBrowseFeatureInFileAnswers(t *testing.T) {
	f := makeShared(t, t.TempDir(), 1, "koala.bin", content(3, 100))
	hits, _, _ := browseLibrary(t, 1)
	ts := startServer(t, &Server{Library: newFakeLibrary(f), Browse: browseFrom(hits)}, nil)
	out := roundTrip(t, ts.addr, "GET /get/1/koala.bin HTTP/1.1\r\nConnection: close\r\n\r\n")
	if statusCode(t, out) != 200 || !bytes.Contains(out, []byte("X-Features: "+BrowseFeature+"\r\n")) {
		t.Fatalf("answer %q", truncate(string(out), 400))
	}
}
