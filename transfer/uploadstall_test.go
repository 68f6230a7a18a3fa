package transfer

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"testing"
	"testing/synctest"
	"time"
)

// The write deadline of an upload catches a client that takes nothing,
// not one that is slow: a client taking 32 KiB every 400 ms, far less
// than a sendChunk per IdleTimeout, gets the whole file, byte for byte
// (the pipe has no sendfile, so a chunk cut by the deadline was read
// further than it was written); a client that stops reading is dropped
// after a whole deadline window without a byte taken, between 7/8 of
// IdleTimeout and twice IdleTimeout after its last read (virtual time,
// testing/synctest).
func TestUploadSlowClientIsNotStalled(t *testing.T) {
	const idle = time.Second
	data := content(21, 3<<20)
	f := makeShared(t, t.TempDir(), 1, "slow.bin", data)

	get := func(t *testing.T, srv *Server) (net.Conn, *bufio.Reader) {
		client, server := net.Pipe()
		go srv.Serve(server)
		fmt.Fprintf(client, "GET %s HTTP/1.1\r\nConnection: close\r\n\r\n", getPath(f))
		br := bufio.NewReaderSize(client, 512)
		if r := readResponse(t, br, true); r.code != 200 {
			t.Fatalf("status %d", r.code)
		}
		return client, br
	}

	t.Run("slow", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			srv := &Server{Library: newFakeLibrary(f), IdleTimeout: idle}
			defer srv.Close()
			client, br := get(t, srv)
			defer client.Close()
			var got bytes.Buffer
			for got.Len() < len(data) {
				if _, err := io.CopyN(&got, br, min(32<<10, int64(len(data)-got.Len()))); err != nil {
					t.Fatalf("after %d bytes: %v", got.Len(), err)
				}
				time.Sleep(400 * time.Millisecond)
			}
			if !bytes.Equal(got.Bytes(), data) {
				t.Fatal("the slow client got other bytes than the file's")
			}
			synctest.Wait()
			if st := srv.Stats(); st.Completed != 1 || st.BytesSent != int64(len(data)) {
				t.Fatalf("stats %+v", st)
			}
		})
	})

	t.Run("stalled", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			srv := &Server{Library: newFakeLibrary(f), IdleTimeout: idle}
			defer srv.Close()
			client, br := get(t, srv)
			defer client.Close()
			if _, err := io.CopyN(io.Discard, br, 100<<10); err != nil {
				t.Fatal(err)
			}
			time.Sleep(idle*7/8 - time.Millisecond)
			synctest.Wait()
			if n := len(srv.Uploads()); n != 1 {
				t.Fatalf("dropped before 7/8 of IdleTimeout (%d uploads)", n)
			}
			time.Sleep(idle + idle/8 + 2*time.Millisecond)
			synctest.Wait()
			if n := len(srv.Uploads()); n != 0 {
				t.Fatal("a client that takes nothing for twice IdleTimeout is still served")
			}
			if _, err := io.Copy(io.Discard, br); err != nil && err != io.ErrClosedPipe {
				t.Fatal(err)
			}
			if st := srv.Stats(); st.Completed != 0 {
				t.Fatalf("stats %+v", st)
			}
		})
	})
}
