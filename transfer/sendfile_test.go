package transfer

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"gnutella/testnet/await"
)

// Uploads over plain TCP connections, where sendFile makes the sendfile
// calls itself (sendfile_linux.go); the other tests wrap their
// connections and take the io.CopyN path. The file is more than the
// socket buffers hold (4 MiB to send at most, a 64 KiB receive buffer
// asked for), so the upload waits for the socket. (A receive buffer of a
// few KiB would crawl: delayed ACKs and a tiny window.)
func TestUploadSendfileOverTCP(t *testing.T) {
	data := content(31, 8<<20+12345) // several sendChunks, and more than the socket buffers hold
	f := makeShared(t, t.TempDir(), 1, "big.bin", data)

	dial := func(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if err := c.(*net.TCPConn).SetReadBuffer(64 << 10); err != nil {
			t.Fatal(err)
		}
		// Only against a hang: the assertions never race this deadline.
		_ = c.SetDeadline(time.Now().Add(time.Minute))
		return c, bufio.NewReaderSize(c, 4096)
	}

	t.Run("whole file and ranges on one connection", func(t *testing.T) {
		srv := &Server{Library: newFakeLibrary(f), IdleTimeout: time.Minute}
		addr, stop := serveRaw(t, srv)
		defer stop()
		c, br := dial(t, addr)
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\n\r\n", getPath(f))
		r := readResponse(t, br, true)
		if r.code != 200 {
			t.Fatalf("status %d", r.code)
		}
		// The upload fills the socket and waits for it to drain.
		await.Blocked(t, "gnutella/transfer.sendFile")
		got, err := io.ReadAll(io.LimitReader(br, int64(len(data))))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d bytes (%v), same as the file: %v", len(got), err, bytes.Equal(got, data))
		}
		for _, rg := range [][2]int{{1 << 20, 3<<20 + 7}, {5, 5}, {len(data) - 100, len(data) - 1}} {
			fmt.Fprintf(c, "GET %s HTTP/1.1\r\nRange: bytes=%d-%d\r\n\r\n", getPath(f), rg[0], rg[1])
			r := readResponse(t, br, false)
			if r.code != 206 || !bytes.Equal(r.body, data[rg[0]:rg[1]+1]) {
				t.Fatalf("range %d-%d: status %d, %d bytes, right bytes: %v", rg[0], rg[1], r.code, len(r.body), bytes.Equal(r.body, data[rg[0]:rg[1]+1]))
			}
		}
		want := int64(len(data)) + (2<<20 + 8) + 1 + 100
		await.Until(t, "the last answer counted", func() bool { return srv.Stats().Completed == 4 })
		if st := srv.Stats(); st.BytesSent != want {
			t.Fatalf("BytesSent %d, want %d", st.BytesSent, want)
		}
	})

	t.Run("stalled client is dropped", func(t *testing.T) {
		srv := &Server{Library: newFakeLibrary(f), IdleTimeout: 200 * time.Millisecond}
		addr, stop := serveRaw(t, srv)
		defer stop()
		c, br := dial(t, addr)
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\n\r\n", getPath(f))
		if r := readResponse(t, br, true); r.code != 200 {
			t.Fatalf("status %d", r.code)
		}
		await.Until(t, "the upload to give up on the client", func() bool { return len(srv.Uploads()) == 0 })
		n, err := io.Copy(io.Discard, br)
		if n >= int64(len(data)) {
			t.Fatal("the stalled client got the whole file")
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal("the server kept the stalled upload's connection open")
		}
		if st := srv.Stats(); st.Completed != 0 {
			t.Fatalf("stats %+v", st)
		}
	})

	t.Run("Close ends an upload waiting for the socket", func(t *testing.T) {
		srv := &Server{Library: newFakeLibrary(f), IdleTimeout: time.Hour}
		addr, stop := serveRaw(t, srv)
		defer stop()
		c, br := dial(t, addr)
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\n\r\n", getPath(f))
		if r := readResponse(t, br, true); r.code != 200 {
			t.Fatalf("status %d", r.code)
		}
		await.Blocked(t, "gnutella/transfer.sendFile")
		done := make(chan struct{})
		go func() { srv.Close(); close(done) }()
		await.Recv(t, "Close to end the waiting upload", done)
		if st := srv.Stats(); st.Completed != 0 {
			t.Fatalf("stats %+v", st)
		}
	})
}
