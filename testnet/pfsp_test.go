package testnet

import (
	"crypto/sha1"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gnutella/protocol"
	"gnutella/routing"
	"gnutella/servent"
	"gnutella/testnet/await"
	"gnutella/transfer"
)

// TestPartialSharingSeedLeaves is issue 12's partial-sharing
// demonstration: three leechers download one file from a seed whose
// uploads are capped, and share what they have of it while they download
// (partial files answer queries, the mesh tells each about the others).
// Every servent caps its uploads, the leechers at a sixteenth of the
// seed's rate (home uplinks beside a server), so the leechers fill up
// mostly from the seed while it is there. The seed leaves as soon as the
// three together hold every byte; each then has only part of the file (the
// log says how much: 41-50 % in the runs of 2026-12-05, where each fetching
// random chunks from the seed had 75-84 %), and all three must complete
// from each other with the right SHA-1. With GNUTELLA_PFSP_STRICT=1 each
// must have had less than three quarters: the leechers fetch from the seed
// what the others do not have (rarest first, swarm.go), or the seed has to
// stay until each has nearly all of the file.
func TestPartialSharingSeedLeaves(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 3 × 8 MiB; -short skips it")
	}
	const size, seedRate, leechRate = 4 << 20, 2 << 20, 128 << 10
	dir := t.TempDir()
	want := writeRandomFile(t, filepath.Join(dir, "leech wombat film.bin"), size)
	ctx := t.Context()
	dls := make([]string, 4)
	netw, err := Start(ctx, Options{N: 4, Topology: Star{}, Configure: func(i int, c *servent.NodeConfig) {
		if i == 0 {
			c.ShareDirs = []string{dir}
			c.UploadRate = seedRate
			return
		}
		dls[i] = t.TempDir()
		c.DownloadDir = dls[i]
		c.UploadRate = leechRate
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer netw.Stop()
	seed := netw.Nodes[0]
	await.Until(t, "the seed hashing the file", func() bool { return seed.Library.Progress().HashedFiles == 1 })

	hits := make([][]routing.Hit, 4)
	for i := 1; i <= 3; i++ {
		await.Until(t, fmt.Sprintf("leecher %d finding the seed", i), func() bool {
			q := protocol.NewQuery("leech wombat", protocol.QueryFlagMark|protocol.QueryFlagGGEPH)
			hits[i] = netw.Nodes[i].Search(ctx, q, routing.Flood{TTL: 2}, 1, 5*time.Second).Hits()
			return len(hits[i]) > 0
		})
	}
	// Chunks of 128 KiB, a 32nd of the file, let the three spread what
	// they fetch from the seed (8 of the default 512 KiB would collide).
	for i := 1; i <= 3; i++ {
		netw.Nodes[i].Downloads.ChunkSize = 128 << 10
	}
	downloads := make([]*transfer.Download, 4)
	for i := 1; i <= 3; i++ { // all three start together
		d, err := netw.Nodes[i].Download(hits[i][0], hits[i])
		if err != nil {
			t.Fatal(err)
		}
		downloads[i] = d
	}

	// The seed leaves once every byte is held by some leecher.
	var at [4]int64
	await.Until(t, "the leechers to hold every byte between them", func() bool {
		var union transfer.Ranges
		for i := 1; i <= 3; i++ {
			pf, _ := netw.Nodes[i].Downloads.PartialFile(want)
			if downloads[i].Status().State == transfer.StateDone {
				pf.Have = transfer.Ranges{{Start: 0, End: size}}
			}
			for _, s := range pf.Have {
				union = union.Add(s.Start, s.End)
			}
			at[i] = pf.Have.Covered()
		}
		return union.Contains(0, size)
	})
	if err := seed.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("the seed left with the leechers at %.0f %%, %.0f %% and %.0f %% of %d bytes",
		100*float64(at[1])/size, 100*float64(at[2])/size, 100*float64(at[3])/size, size)
	// How much each had is a figure of the chunk choice, and of timing: on
	// a loaded machine (the whole suite under -race beside other work) the
	// leechers may learn of each other late and take nearly everything
	// from the seed. GNUTELLA_PFSP_STRICT=1 holds it to less than three
	// quarters; always, no leecher may have had the whole file.
	strict := os.Getenv("GNUTELLA_PFSP_STRICT") != ""
	for i := 1; i <= 3; i++ {
		switch {
		case at[i] == size:
			t.Errorf("leecher %d had the whole file before the seed left: nothing to show", i)
		case strict && at[i] >= size*3/4:
			t.Errorf("leecher %d had %d of %d bytes when the three together first held every byte: they fetched the same chunks from the seed", i, at[i], size)
		}
	}
	for i := 1; i <= 3; i++ {
		d := downloads[i]
		done := make(chan error, 1)
		go func() { done <- d.Wait(ctx) }()
		if err := await.Recv(t, fmt.Sprintf("leecher %d to complete", i), done); err != nil {
			t.Fatalf("leecher %d: %v (%+v)", i, err, d.Status())
		}
		data, err := os.ReadFile(d.Status().Path)
		if err != nil {
			t.Fatal(err)
		}
		if got := protocol.SHA1(sha1.Sum(data)); got != want {
			t.Fatalf("leecher %d got SHA-1 %s, want %s", i, got, want)
		}
	}
}
