package servent

import (
	"context"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"testing"
	"time"

	"gnutella/servent/memnet"
)

// benchThroughput streams b.N writes of 4 KiB one way and reads them with a 32 KiB buffer.
func benchThroughput(b *testing.B, e transportEnv) {
	c1, c2, l, err := e.makePipe()
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	defer c2.Close()
	chunk := make([]byte, 4<<10)
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	done := make(chan int64)
	go func() {
		n, _ := io.CopyBuffer(io.Discard, struct{ io.Reader }{c2}, make([]byte, 32<<10))
		done <- n
	}()
	b.ResetTimer()
	for range b.N {
		if _, err := c1.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	c1.Close()
	if n := <-done; n != int64(b.N)*int64(len(chunk)) {
		b.Fatalf("read %d bytes, wrote %d", n, b.N*len(chunk))
	}
}

// BenchmarkMemConnThroughput is MB/s through one direction of a memnet.Network connection with 4 KiB writes.
func BenchmarkMemConnThroughput(b *testing.B) {
	benchThroughput(b, transportEnvs()[1]())
}

// BenchmarkTCPConnThroughput is the same over loopback TCP, for comparison.
func BenchmarkTCPConnThroughput(b *testing.B) {
	benchThroughput(b, transportEnvs()[0]())
}

// BenchmarkMemConnPingPong is one round trip of a 23-byte message (a Gnutella ping) on a memnet.Network connection.
func BenchmarkMemConnPingPong(b *testing.B) {
	c1, c2, l, err := transportEnvs()[1]().makePipe()
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	defer c1.Close()
	go func() {
		defer c2.Close()
		buf := make([]byte, 23)
		for {
			if _, err := io.ReadFull(c2, buf); err != nil {
				return
			}
			if _, err := c2.Write(buf); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 23)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c1.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c1, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIdleConnMemory builds the in-memory network of a 10,000-servent testnet: every host listens and dials
// 4 others, so each servent has about 8 links (40,000 connections, 80,000 ends). Every link carries a small
// handshake each way, read to the end, as a servent's links do; then the heap is measured with all links idle.
// It reports the heap bytes per connection (both ends, both directions), and per host. "deadlines" also sets a
// read and a write deadline on every end, as a servent with idle timeouts does. The servent's own goroutines
// (a reader and a writer per link, 8 KiB of stack or more each) are not part of this figure.
func BenchmarkIdleConnMemory(b *testing.B) {
	for _, bc := range []struct {
		name      string
		deadlines bool
	}{{"bare", false}, {"deadlines", true}} {
		b.Run(bc.name, func(b *testing.B) {
			const hostsN, dials = 10000, 4
			for b.Loop() {
				var ms0, ms1, ms2 runtime.MemStats
				runtime.GC()
				runtime.GC()
				runtime.ReadMemStats(&ms0)

				n := memnet.New()
				hosts := make([]*memnet.Host, hostsN)
				ls := make([]net.Listener, hostsN)
				for i := range hosts {
					hosts[i] = n.Host(n.NextIP())
					var err error
					if ls[i], err = hosts[i].Listen(":6346"); err != nil {
						b.Fatal(err)
					}
				}
				runtime.GC()
				runtime.GC()
				runtime.ReadMemStats(&ms1)

				conns := make([]net.Conn, 0, 2*hostsN*dials)
				hello := make([]byte, 300) // about a 0.6 handshake block
				buf := make([]byte, 512)
				for i, h := range hosts {
					for j := 1; j <= dials; j++ {
						c, err := h.Dial(context.Background(), ls[(i+j*97)%hostsN].Addr().String())
						if err != nil {
							b.Fatal(err)
						}
						conns = append(conns, c)
					}
				}
				for _, l := range ls {
					for range dials {
						c, err := l.Accept()
						if err != nil {
							b.Fatal(err)
						}
						conns = append(conns, c)
					}
				}
				for _, c := range conns {
					c.Write(hello)
				}
				for _, c := range conns {
					if _, err := io.ReadFull(c, buf[:len(hello)]); err != nil {
						b.Fatal(err)
					}
					if bc.deadlines {
						c.SetReadDeadline(time.Now().Add(time.Hour + time.Duration(rand.IntN(1000))*time.Second))
						c.SetWriteDeadline(time.Now().Add(time.Hour))
					}
				}
				runtime.GC()
				runtime.GC()
				runtime.ReadMemStats(&ms2)

				nconns := len(conns) / 2
				perConn := float64(ms2.HeapAlloc-ms1.HeapAlloc-uint64(cap(conns))*16) / float64(nconns)
				perHost := float64(ms1.HeapAlloc-ms0.HeapAlloc) / float64(hostsN)
				b.ReportMetric(perConn, "B/conn")
				b.ReportMetric(perHost, "B/host")
				b.ReportMetric(float64(ms2.HeapAlloc-ms0.HeapAlloc)/(1<<20), "MiB-total")
				b.ReportMetric(float64(nconns), "conns")
				if s := n.Stats(); s.Conns != 2*nconns || s.BufferCap != 0 {
					b.Fatalf("stats %+v", s)
				}

				for _, c := range conns {
					c.Close()
				}
				for _, l := range ls {
					l.Close()
				}
			}
		})
	}
}
