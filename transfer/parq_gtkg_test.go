package transfer

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"gnutella/testnet/await"
)

// teeConn copies what the client sends into a shared buffer.
type teeConn struct {
	net.Conn
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (c *teeConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.buf.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

// A real gtk-gnutella (GTKG_BIN, GTKG_SHELL; /work/shared/interop) told to
// download a file from our busy server is queued behind a downloader of
// ours: its log shows position 2 of 2, it comes back with the X-Queued ID
// we sent; when the slot frees, ours (the head) gets it first, and then
// gtk-gnutella downloads the whole file.
func TestGtkDownloadsFromOurQueue(t *testing.T) {
	if os.Getenv("GTKG_SHELL") == "" {
		t.Skip("GTKG_SHELL is not set: build gtk-gnutella as ../shared/interop/README.md says to run this test")
	}
	var mu sync.Mutex
	var sent bytes.Buffer
	fx := &uploadFixture{sharedDir: t.TempDir()}
	fx.aData = content(1, 300_000)
	fx.a = makeShared(t, fx.sharedDir, 1, "zebra_quokka_parq.bin", fx.aData)
	fx.lib = newFakeLibrary(fx.a)
	srv := &Server{Library: fx.lib, Slots: 1, QueueRetry: 5 * time.Second, UserAgent: "gnutella/test"}
	// Only gtk-gnutella's connections (from 127.0.0.1; ours come from .2
	// and .3) are recorded.
	fx.ts = startServer(t, srv, func(n int, c net.Conn) net.Conn {
		if addrPortOf(c.RemoteAddr()).Addr().String() != "127.0.0.1" {
			return c
		}
		return &teeConn{Conn: c, mu: &mu, buf: &sent}
	})
	addBigFile(t, fx)
	holder := dialFrom(t, "127.0.0.2", fx.ts.addr)
	defer holder.Close()
	if _, err := holder.Write([]byte("GET /get/30/big.bin HTTP/1.1\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	await.Until(t, "the slot to be taken", srv.Busy)
	// A downloader of ours takes place 1 of the queue for the same file.
	first := dialFrom(t, "127.0.0.3", fx.ts.addr)
	defer first.Close()
	firstBR := bufio.NewReader(first)
	ask := func(xq string) response {
		_ = first.SetDeadline(time.Now().Add(30 * time.Second))
		fmt.Fprintf(first, "GET %s HTTP/1.1\r\nX-Queue: 1.1\r\n%s\r\n", getPath(fx.a), xq)
		return readResponse(t, firstBR, false)
	}
	firstQ := queuedOf(t, ask(""))
	firstAt := time.Now()

	gtk := startGtkAs(t, "leaf", t.TempDir(), "parq_debug = 2\ndownload_debug = 1")
	cfg := gtk.cfg
	url := "http://" + fx.ts.addr.String() + "/uri-res/N2R?" + fx.a.SHA1.String()
	gtk.peer.Shell(t, "download add "+url)
	logText := func() string {
		b, _ := os.ReadFile(filepath.Join(cfg, "gtkg.log"))
		return string(b)
	}
	defer func() {
		if t.Failed() {
			mu.Lock()
			t.Logf("gtk-gnutella sent us:\n%s", sent.String())
			mu.Unlock()
		}
	}()
	// gtk-gnutella is queued behind it; our downloader keeps its place
	// (coming back in time) meanwhile.
	queuedLine := regexp.MustCompile(`queued \(version: 1\.\d, position 2 out of 2`)
	await.Until(t, "gtk-gnutella to log its place in our queue", func() bool {
		if time.Since(firstAt) > 5*time.Second {
			if q := queuedOf(t, ask("X-Queued: "+firstQ.FormatRequest()+"\r\n")); q.ID != firstQ.ID || q.Position != 1 {
				t.Fatalf("our first downloader lost its place: %+v", q)
			}
			firstAt = time.Now()
		}
		return queuedLine.MatchString(logText())
	})
	// It comes back with our ID.
	var id string
	await.Until(t, "gtk-gnutella to come back with the X-Queued ID", func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := strings.Count(sent.String(), "X-Queued: ")
		if n == 0 {
			return false
		}
		i := strings.Index(sent.String(), "X-Queued: ")
		line, _, _ := strings.Cut(sent.String()[i+len("X-Queued: "):], "\r\n")
		q, err := ParseQueued(line)
		id = q.ID
		return err == nil && q.Position == 2
	})
	t.Logf("gtk-gnutella came back with our place %s", id)
	// The slot frees; gtk-gnutella may come back before our first
	// downloader does, but the slot is the first's.
	holder.Close()
	// The server sees the holder gone when a write fails, which takes a
	// moment: the head of the queue asking before that is still queued.
	await.Until(t, "the holder's slot to free", func() bool { return !srv.Busy() })
	time.Sleep(time.Until(firstAt.Add(5 * time.Second))) // its Retry-After
	if r := ask("X-Queued: " + firstQ.FormatRequest() + "\r\n"); r.code != 200 || !bytes.Equal(r.body, fx.aData) {
		t.Fatalf("the head of the queue, back after the slot freed: %s", r.status)
	}
	first.Close()
	// It names the file after the URN (the URL carries no name).
	done := filepath.Join(cfg, "dl", "complete", "urn_sha1_"+fx.a.SHA1.Base32())
	await.Until(t, "gtk-gnutella to finish the download", func() bool {
		b, err := os.ReadFile(done)
		return err == nil && bytes.Equal(b, fx.aData)
	})
	if st := srv.Stats(); st.Completed < 1 {
		t.Errorf("stats %+v", st)
	}
}
