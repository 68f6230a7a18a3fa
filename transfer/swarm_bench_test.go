package transfer

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkSwarm measures a swarm's throughput against its number of
// sources: a 32 MiB file from 1, 2, 3 and 5 Servers on 127.0.0.1, each
// capped at 4 MiB/s (Server.Bandwidth), with the default chunk size. With
// n sources the ideal is n*4 MiB/s. The "unlimited" ones show what the
// downloader itself costs over loopback. Run it once per size:
//
//	go test -run '^$' -bench BenchmarkSwarm -benchtime 1x ./transfer/
func BenchmarkSwarm(b *testing.B) {
	const size = 32 << 20
	const perSource = 4 << 20
	data := content(200, size)
	shared := b.TempDir()
	f := makeShared(b, shared, 1, "swarm.bin", data)
	for _, c := range []struct {
		n    int
		rate int64
	}{{1, perSource}, {2, perSource}, {3, perSource}, {5, perSource}, {1, 0}, {3, 0}} {
		n := c.n
		name := fmt.Sprintf("sources=%d", n)
		if c.rate == 0 {
			name += ",unlimited"
		}
		b.Run(name, func(b *testing.B) {
			var srcs []Source
			for i := 0; i < n; i++ {
				srv := &Server{Library: newFakeLibrary(f), PerIP: -1, Bandwidth: c.rate, UserAgent: "gnutella/bench"}
				ts := startServer(b, srv, nil)
				srcs = append(srcs, Source{Addr: ts.addr, Index: 1, Name: f.Name})
			}
			b.SetBytes(size)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				d := &Downloader{Dir: b.TempDir(), AddrPolicy: lanPolicy, UserAgent: "gnutella/bench"}
				if err := d.Start(context.Background()); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start := time.Now()
				x, err := d.Add(Request{Name: f.Name, Size: f.Size, SHA1: f.SHA1, Sources: srcs})
				if err != nil {
					b.Fatal(err)
				}
				if err := x.Wait(context.Background()); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(time.Since(start).Seconds(), "s/file")
				b.StopTimer()
				_ = d.Close()
				b.StartTimer()
			}
		})
	}
}
