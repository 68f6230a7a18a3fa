package transfer

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// Server.Bandwidth caps all uploads together, measured in virtual time
// (testing/synctest): one download of 640 KiB at 64 KiB/s takes the time
// the bytes past the limiter's burst are worth; two at once share the
// rate, each getting about half, and together take as long as one of
// twice the size.
func TestUploadBandwidthLimit(t *testing.T) {
	const bw = 64 << 10
	const size = 640 << 10
	data := content(9, size)
	f := makeShared(t, t.TempDir(), 3, "big.bin", data)
	// fetch GETs the file over a pipe and reports when its last byte came.
	fetch := func(t *testing.T, srv *Server, start time.Time) time.Duration {
		client, server := net.Pipe()
		defer client.Close()
		go srv.Serve(server)
		fmt.Fprintf(client, "GET %s HTTP/1.1\r\nConnection: close\r\n\r\n", getPath(f))
		r := readResponse(t, bufio.NewReader(client), false)
		if r.code != 200 || !bytes.Equal(r.body, data) {
			t.Errorf("got %d and %d bytes (right: %v)", r.code, len(r.body), bytes.Equal(r.body, data))
		}
		return time.Since(start)
	}
	// The limiter starts with a full burst (rateChunk), which is free.
	want := func(bytes int) time.Duration {
		return time.Duration(float64(bytes-rateChunk) / bw * float64(time.Second))
	}
	near := func(got, want time.Duration) bool {
		return got >= want-100*time.Millisecond && got <= want+time.Second/2
	}

	t.Run("one", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			srv := &Server{Library: newFakeLibrary(f), Bandwidth: bw}
			defer srv.Close()
			took := fetch(t, srv, time.Now())
			if !near(took, want(size)) {
				t.Errorf("640 KiB at 64 KiB/s took %v of virtual time, want about %v", took, want(size))
			}
			synctest.Wait() // the server's last count after the client's last read
			if st := srv.Stats(); st.BytesSent != size {
				t.Errorf("BytesSent = %d", st.BytesSent)
			}
		})
	})
	t.Run("two share", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			srv := &Server{Library: newFakeLibrary(f), Bandwidth: bw, PerIP: -1}
			defer srv.Close()
			start := time.Now()
			var wg sync.WaitGroup
			took := make([]time.Duration, 2)
			for i := range took {
				wg.Go(func() { took[i] = fetch(t, srv, start) })
			}
			wg.Wait()
			all := want(2 * size)
			for i, d := range took {
				// Each finishes near the end: neither got the rate alone
				// (it would be done at half the time).
				if d < all*8/10 || d > all+time.Second/2 {
					t.Errorf("download %d of 2 took %v of virtual time, want about %v (a fair share)", i, d, all)
				}
			}
		})
	})
}
