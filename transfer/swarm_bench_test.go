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
// n sources the ideal is n*4 MiB/s. Run it once per size:
//
//	go test -run '^$' -bench BenchmarkSwarm -benchtime 1x ./transfer/
func BenchmarkSwarm(b *testing.B) {
	const size = 32 << 20
	const perSource = 4 << 20
	data := content(200, size)
	shared := b.TempDir()
	f := makeShared(b, shared, 1, "swarm.bin", data)
	for _, n := range []int{1, 2, 3, 5} {
		b.Run(fmt.Sprintf("sources=%d", n), func(b *testing.B) {
			var srcs []Source
			for i := 0; i < n; i++ {
				srv := &Server{Library: newFakeLibrary(f), PerIP: -1, Bandwidth: perSource, UserAgent: "gnutella/bench"}
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
