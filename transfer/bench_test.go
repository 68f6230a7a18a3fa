package transfer

import (
	"bufio"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"gnutella/share"
)

const benchSize = 1 << 30

var (
	benchOnce sync.Once
	benchDir  string
	benchFile share.File
	benchKind string
	benchErr  error
)

// benchFixture makes the 1 GiB file once per test binary (the benchmark
// function runs several times): real pseudo-random bytes when the disk has
// room for them with 2 GiB to spare, a sparse file otherwise.
func benchFixture(b *testing.B) share.File {
	b.Helper()
	benchOnce.Do(func() {
		benchDir, benchErr = os.MkdirTemp("", "transfer-bench-")
		if benchErr != nil {
			return
		}
		path := filepath.Join(benchDir, "big.bin")
		var st syscall.Statfs_t
		real := syscall.Statfs(benchDir, &st) == nil && int64(st.Bavail)*int64(st.Bsize) > benchSize+2<<30
		f, err := os.Create(path)
		if err != nil {
			benchErr = err
			return
		}
		if real {
			benchKind = "real"
			block := make([]byte, 1<<20)
			_, _ = rand.Read(block)
			for i := 0; i < benchSize/len(block) && benchErr == nil; i++ {
				block[0], block[1] = byte(i), byte(i>>8) // no two blocks alike
				_, benchErr = f.Write(block)
			}
		} else {
			benchKind = "sparse"
			benchErr = f.Truncate(benchSize)
		}
		if err := f.Close(); benchErr == nil {
			benchErr = err
		}
		fi, err := os.Stat(path)
		if benchErr == nil {
			benchErr = err
		}
		if benchErr == nil {
			benchFile = share.File{Index: 1, Path: path, Name: "big.bin", Size: fi.Size(), ModTime: fi.ModTime()}
		}
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchFile
}

func benchCleanup() {
	if benchDir != "" {
		_ = os.RemoveAll(benchDir)
	}
}

// serveRaw runs srv on a plain loopback listener (no test wrappers, so the
// connections are *net.TCPConn and sendfile applies).
func serveRaw(b testing.TB, srv *Server) (addr string, stop func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
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
				srv.Serve(c)
			}()
		}
	}()
	return ln.Addr().String(), func() {
		ln.Close()
		srv.Close()
		wg.Wait()
	}
}

// fetchAll sends one GET and reads the whole body with a 256 KiB buffer
// (BenchmarkUploadVsNginx's client when curl is not installed).
func fetchAll(addr, target string, buf []byte) (int64, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: bench\r\nConnection: close\r\n\r\n", target, addr); err != nil {
		return 0, err
	}
	br := bufio.NewReaderSize(c, 4096)
	code, _, _, h, err := readResponseHead(br)
	if err != nil {
		return 0, err
	}
	if code != 200 {
		return 0, fmt.Errorf("status %d", code)
	}
	n, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64)
	if err != nil {
		return 0, err
	}
	var got int64
	for got < n {
		k, err := br.Read(buf[:min(int64(len(buf)), n-got)])
		got += int64(k)
		if err != nil {
			if errors.Is(err, io.EOF) && got == n {
				break
			}
			return got, err
		}
	}
	return got, nil
}

// BenchmarkUploadMemory opens 100 concurrent downloads that read nothing
// (the slowest clients there are: each upload is parked in sendfile on a
// full socket buffer) and reports the Go heap and stack they cost, per
// upload. The client sockets live in the same process and are counted too.
//
//	go test -run '^$' -bench UploadMemory -benchtime 1x ./transfer/
func BenchmarkUploadMemory(b *testing.B) {
	const clients = 100
	f := benchFixture(b)
	for i := 0; i < b.N; i++ {
		srv := &Server{Library: newFakeLibrary(f), Slots: clients, PerIP: -1, UserAgent: "gnutella/bench"}
		addr, stop := serveRaw(b, srv)
		before := goMemory()
		conns := make([]net.Conn, 0, clients)
		for j := 0; j < clients; j++ {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			fmt.Fprintf(c, "GET /get/1/big.bin HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
			conns = append(conns, c)
		}
		// Each client reads the response head and the first body byte:
		// then its upload is in sendBody, where it parks on the full socket.
		for _, c := range conns {
			if err := readPastHead(c, 20*time.Second); err != nil {
				b.Fatal(err)
			}
		}
		if n := len(srv.Uploads()); n != clients {
			b.Fatalf("%d uploads active, want %d", n, clients)
		}
		after := goMemory()
		per := float64(after.total()-before.total()) / clients
		b.ReportMetric(per, "B/upload")
		b.ReportMetric(float64(after.heap-before.heap)/clients, "heap-B/upload")
		b.ReportMetric(float64(after.stack-before.stack)/clients, "stack-B/upload")
		b.ReportMetric(0, "ns/op")
		for _, c := range conns {
			c.Close()
		}
		stop()
	}
}

// readPastHead reads c up to the end of the response head and one byte of
// the body, a byte at a time so that nothing more is taken off the socket.
func readPastHead(c net.Conn, timeout time.Duration) error {
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	defer c.SetReadDeadline(time.Time{})
	var b [1]byte
	var last uint32 // the last four bytes read
	for last != 0x0d0a0d0a {
		if _, err := io.ReadFull(c, b[:]); err != nil {
			return fmt.Errorf("reading the response head: %w", err)
		}
		last = last<<8 | uint32(b[0])
	}
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return fmt.Errorf("reading the first body byte: %w", err)
	}
	return nil
}

type memFigures struct{ heap, stack int64 }

func (m memFigures) total() int64 { return m.heap + m.stack }

func goMemory() memFigures {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memFigures{heap: int64(ms.HeapInuse), stack: int64(ms.StackInuse)}
}
