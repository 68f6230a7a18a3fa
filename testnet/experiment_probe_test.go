//go:build probe

package testnet

import (
	"context"
	"os"
	"runtime"
	"testing"
	"time"

	"gnutella/servent"
)

func TestProbeStart(t *testing.T) {
	t0 := time.Now()
	n, err := Start(context.Background(), Options{N: 10000, Transport: Memory, Topology: Random{MeanDegree: 4}, Seed: 1,
		LinkTimeout: 10 * time.Minute, Progress: os.Stderr,
		Configure: func(i int, c *servent.NodeConfig) {
			c.Deflate = false
			c.PongCaching = false
			c.UltrapeerQRP = false
			c.AlivePingInterval = time.Hour
			c.IdleTimeout = 2 * time.Hour
			c.MaxTTL = 10
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("started in %v, goroutines %d", time.Since(t0), runtime.NumGoroutine())
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("heap %d MB sys %d MB", ms.HeapAlloc>>20, ms.Sys>>20)
	time.Sleep(5 * time.Second)
	t1 := time.Now()
	if err := n.WaitQuiet(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Logf("quiet in %v", time.Since(t1))
	t2 := time.Now()
	n.Stop()
	t.Logf("stopped in %v", time.Since(t2))
}
