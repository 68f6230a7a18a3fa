package testnet

import (
	"crypto/sha1"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"gnutella/protocol"
	"gnutella/routing"
	"gnutella/servent"
	"gnutella/testnet/await"
)

// TestSwarmOnTestnet is issue 12's swarming demonstration on a loopback
// testnet: servent 0 downloads one file held by `holders` servents, each
// capping its uploads at the same rate, first from a network with one
// holder, then from one with five. It checks the SHA-1 both times and that
// the swarm drew from at least three holders at once.
//
// CI runs it small (8 MiB at 2 MiB/s a holder). GNUTELLA_SWARM_MB=200
// (and GNUTELLA_SWARM_RATE, bytes/s, default 2 MiB/s) runs the issue's
// 200 MB demonstration and then also requires the swarm to take less than
// half the time of one source; the figures are in BENCHMARKS.md.
func TestSwarmOnTestnet(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 2 × 8 MiB at a capped rate; -short skips it")
	}
	size, rate, demo := int64(8<<20), int64(2<<20), false
	if v := os.Getenv("GNUTELLA_SWARM_MB"); v != "" {
		mb, err := strconv.Atoi(v)
		if err != nil || mb <= 0 {
			t.Fatalf("GNUTELLA_SWARM_MB=%q: want a positive number of MB", v)
		}
		size, demo = int64(mb)*1000*1000, true
	}
	if v := os.Getenv("GNUTELLA_SWARM_RATE"); v != "" {
		r, err := strconv.ParseInt(v, 10, 64)
		if err != nil || r <= 0 {
			t.Fatalf("GNUTELLA_SWARM_RATE=%q: want bytes per second", v)
		}
		rate = r
	}
	dir := t.TempDir()
	want := writeRandomFile(t, filepath.Join(dir, "swarm koala film.bin"), size)

	one := swarmRun(t, dir, 1, rate, want)
	five := swarmRun(t, dir, 5, rate, want)
	t.Logf("%d bytes, every holder capped at %d B/s: 1 holder %v (%.2f MB/s); 5 holders %v (%.2f MB/s), at most %d at once",
		size, rate, one.took.Round(time.Millisecond), mbps(size, one.took), five.took.Round(time.Millisecond),
		mbps(size, five.took), five.maxActive)
	if five.maxActive < 3 {
		t.Errorf("the swarm drew from at most %d holders at once, want at least 3", five.maxActive)
	}
	if demo && five.took*2 >= one.took {
		t.Errorf("5 holders took %v, not less than half of one holder's %v", five.took, one.took)
	}
}

type swarmResult struct {
	took      time.Duration
	maxActive int
}

func mbps(n int64, d time.Duration) float64 { return float64(n) / 1e6 / d.Seconds() }

// writeRandomFile writes size pseudo-random bytes and returns their SHA-1.
func writeRandomFile(t *testing.T, path string, size int64) protocol.SHA1 {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha1.New()
	rng := rand.NewChaCha8([32]byte{12})
	if _, err := io.CopyN(io.MultiWriter(f, h), rng, size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return protocol.SHA1(h.Sum(nil))
}

// swarmRun starts servent 0 and `holders` servents sharing dir, each
// uploading at most rate bytes/s, searches from 0 and downloads the file
// from every hit.
func swarmRun(t *testing.T, dir string, holders int, rate int64, want protocol.SHA1) swarmResult {
	t.Helper()
	ctx := t.Context()
	dl := t.TempDir()
	netw, err := Start(ctx, Options{N: holders + 1, Topology: Star{}, Configure: func(i int, c *servent.NodeConfig) {
		if i == 0 {
			c.DownloadDir = dl
			return
		}
		c.ShareDirs = []string{dir}
		c.UploadRate = rate
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer netw.Stop()
	for i := 1; i <= holders; i++ {
		lib := netw.Nodes[i].Library
		await.Until(t, fmt.Sprintf("servent %d hashing the file", i), func() bool { return lib.Progress().HashedFiles == 1 })
	}
	seeker := netw.Nodes[0]
	var hits []routing.Hit
	await.Until(t, fmt.Sprintf("hits from %d holders", holders), func() bool {
		q := protocol.NewQuery("swarm koala", protocol.QueryFlagMark|protocol.QueryFlagGGEPH)
		hits = seeker.Search(ctx, q, routing.Flood{TTL: 1}, holders, 5*time.Second).Hits()
		return len(hits) >= holders
	})
	for _, h := range hits {
		if h.URN != want {
			t.Fatalf("hit %s from %s has %s, want %s", h.Name, h.Host, h.URN, want)
		}
	}
	start := time.Now()
	d, err := seeker.Download(hits[0], hits)
	if err != nil {
		t.Fatal(err)
	}
	var res swarmResult
	tick := time.NewTicker(20 * time.Millisecond) // sampling the state, not waiting on it
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-d.Done():
			done = true
		case <-tick.C:
			res.maxActive = max(res.maxActive, d.Status().ActiveSources)
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	res.took = time.Since(start)
	if err := d.Wait(ctx); err != nil {
		t.Fatalf("download from %d holders: %v (%+v)", holders, err, d.Status())
	}
	f, err := os.Open(d.Status().Path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha1.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	if got := protocol.SHA1(h.Sum(nil)); got != want {
		t.Fatalf("downloaded file has SHA-1 %s, want %s", got, want)
	}
	return res
}
