package transfer

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"slices"
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
	// The limiter starts with a full burst, which is free.
	want := func(bytes int) time.Duration {
		return time.Duration(float64(bytes-rateBurstChunks*rateChunk) / bw * float64(time.Second))
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
	t.Run("slow", func(t *testing.T) {
		// 1,000 bytes/s: it pays for 512 bytes at a time (not 16 KiB, which
		// would take 16 s), and the burst of 4 such chunks comes at once.
		small := makeShared(t, t.TempDir(), 4, "small.bin", data[:5000])
		synctest.Test(t, func(t *testing.T) {
			srv := &Server{Library: newFakeLibrary(small), Bandwidth: 1000}
			defer srv.Close()
			client, server := net.Pipe()
			defer client.Close()
			go srv.Serve(server)
			start := time.Now()
			fmt.Fprintf(client, "GET %s HTTP/1.1\r\nConnection: close\r\n\r\n", getPath(small))
			br := bufio.NewReader(client)
			r := readResponse(t, br, true)
			var gaps []time.Duration
			last := time.Now()
			buf := make([]byte, 5000)
			got := 0
			for got < len(buf) {
				n, err := br.Read(buf[got:])
				if err != nil {
					t.Fatalf("after %d bytes: %v", got, err)
				}
				got += n
				gaps = append(gaps, time.Since(last))
				last = time.Now()
			}
			took := time.Since(start)
			if r.code != 200 || !bytes.Equal(buf, data[:5000]) || took < 2900*time.Millisecond || took > 3500*time.Millisecond {
				t.Errorf("%d, %d bytes in %v of virtual time, want about (5000-2048)/1000 s", r.code, got, took)
			}
			for _, g := range gaps {
				if g > 600*time.Millisecond {
					t.Errorf("a gap of %v between reads (gaps %v): want a piece about every half second", g, gaps)
					break
				}
			}
		})
	})
	t.Run("close ends a wait", func(t *testing.T) {
		// Close while an upload waits for the limiter: the wait ends and
		// Serve returns (the bubble would deadlock otherwise).
		synctest.Test(t, func(t *testing.T) {
			srv := &Server{Library: newFakeLibrary(f), Bandwidth: 1000}
			client, server := net.Pipe()
			defer client.Close()
			served := make(chan struct{})
			go func() {
				defer close(served)
				srv.Serve(server)
			}()
			fmt.Fprintf(client, "GET %s HTTP/1.1\r\n\r\n", getPath(f))
			go func() { _, _ = io.Copy(io.Discard, client) }()
			time.Sleep(10 * time.Second)
			synctest.Wait()
			if st := srv.Stats(); st.BytesSent < 10_000 || st.BytesSent > 13_000 {
				t.Errorf("after 10 s at 1,000 bytes/s: %d bytes sent", st.BytesSent)
			}
			start := time.Now()
			_ = srv.Close()
			<-served
			if d := time.Since(start); d != 0 {
				t.Errorf("Close took %v of virtual time: it waited for the limiter", d)
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

// BenchmarkUploadRateLimit measures how close uploads under
// Server.Bandwidth come to the limit over loopback (real time): 1 and 4
// downloads at once of a 16 MiB file with a 32 MiB/s limit. "of-limit"
// is the bytes per second achieved over the limit (the limiter's free
// burst of 64 KiB adds 0.4% at this size); "first/last" is the time the
// first of the downloads took over the time the last one took, the worst
// of the runs (1: they shared the rate evenly).
//
//	go test -run '^$' -bench UploadRateLimit -benchtime 3x ./transfer/
func BenchmarkUploadRateLimit(b *testing.B) {
	const size, limit = 16 << 20, 32 << 20
	dir := b.TempDir()
	f := makeShared(b, dir, 1, "rate.bin", content(11, size))
	for _, n := range []int{1, 4} {
		b.Run(fmt.Sprintf("downloads=%d", n), func(b *testing.B) {
			srv := &Server{Library: newFakeLibrary(f), Bandwidth: limit, PerIP: -1, Slots: 8, UserAgent: "gnutella/bench"}
			addr, stop := serveRaw(b, srv)
			defer stop()
			var total int64
			var spent time.Duration
			fair := 1.0
			for b.Loop() {
				start := time.Now()
				var wg sync.WaitGroup
				errs := make(chan error, n)
				took := make([]time.Duration, n)
				for i := range n {
					wg.Go(func() {
						got, err := fetchAll(addr, getPath(f), make([]byte, 256<<10))
						took[i] = time.Since(start)
						if err == nil && got != size {
							err = fmt.Errorf("got %d bytes", got)
						}
						if err != nil {
							errs <- err
						}
					})
				}
				wg.Wait()
				close(errs)
				if err := <-errs; err != nil {
					b.Fatal(err)
				}
				spent += time.Since(start)
				total += int64(n) * size
				fair = min(fair, float64(slices.Min(took))/float64(slices.Max(took)))
			}
			rate := float64(total) / spent.Seconds()
			b.ReportMetric(rate/(1<<20), "MiB/s")
			b.ReportMetric(rate/limit, "of-limit")
			b.ReportMetric(fair, "first/last")
		})
	}
}
