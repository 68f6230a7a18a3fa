package transfer_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"gnutella/firewall"
	"gnutella/servent"
	"gnutella/testnet/await"
	"gnutella/transfer"
)

// TestGtkBrowsesUsByPush: gtk-gnutella browses a servent of ours the way
// it browses any host on 127.0.0.1, which it reaches only by Push: our
// servent, its leaf, answers a search of its (the hits carry "BH" and
// teach it the route to our servent ID), and "search browse IP:PORT GUID"
// (a shell command of the interop patches) sends the Push; we connect back
// with a GIV and serve GET / on that connection. A file the search did not
// match shows that the listing came from the browse.
func TestGtkBrowsesUsByPush(t *testing.T) {
	share := t.TempDir()
	for name, size := range map[string]int{"interopbrowse one.bin": 3000, "quietfile two.bin": 4000} {
		if err := os.WriteFile(filepath.Join(share, name), make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// up_connections = 0: an ultrapeer with no ultrapeer link still sends
	// its own searches (to its leaves).
	gtk, shell := transfer.StartGtk(t, t.TempDir(), "download_debug = 1\nup_connections = 0")
	if strings.Contains(shell("search browse"), "Unknown operation") {
		t.Skip(`this gtk-gnutella's shell has no "search browse IP:PORT [GUID]": copy testnet/gtkg/patches/04-shell-search-browse.patch ` +
			`into ../shared/interop/patches/ and build gtk-gnutella again (../shared/interop/README.md)`)
	}
	c := servent.DefaultNodeConfig()
	c.ListenAddr, c.WantLinks, c.Mode = "127.0.0.1:0", 0, servent.ModeLeaf
	c.AllowLoopback, c.AllowPrivate = true, true
	c.HandshakeTimeout, c.ConnectTimeout = 5*time.Second, 5*time.Second
	c.PushPolicy = firewall.PushPolicy{AddrPolicy: firewall.AddrPolicy{AllowLoopback: true, AllowPrivate: true}}
	c.ShareDirs, c.Rescan = []string{share}, 0
	var logs syncBuffer
	c.Logger = zerolog.New(&logs).Level(zerolog.DebugLevel)
	n, err := servent.NewNode(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Stop() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := n.Library.Rescan(); err != nil {
		t.Fatal(err)
	}
	if err := n.Library.HashAll(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Connect(ctx, gtk); err != nil {
		t.Fatal(err)
	}
	// gtk-gnutella learns the route to our servent ID from our hits; it
	// queries its leaves once it has their QRP table.
	var results string
	defer func() {
		if t.Failed() {
			t.Logf("gtk-gnutella's nodes:\n%s", shell("nodes"))
		}
	}()
	await.Until(t, "gtk-gnutella to get our hit", func() bool {
		shell("search close")
		shell(`search add "interopbrowse"`)
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if results = shell("search results"); strings.Contains(results, "interopbrowse one.bin") {
				return true
			}
			time.Sleep(200 * time.Millisecond) // polling gtk-gnutella's shell
		}
		return false
	})
	out := shell("search browse " + n.Addr().String() + " " + n.ID().String())
	t.Logf("gtk-gnutella's shell: %s", strings.TrimSpace(out))
	await.Until(t, "gtk-gnutella to list what only the browse shows", func() bool {
		results = shell("search results")
		return strings.Contains(results, "quietfile two.bin")
	})
	for _, line := range strings.Split(results, "\n") {
		if strings.Contains(line, ".bin") {
			t.Logf("gtk-gnutella's result: %s", line)
		}
	}
	t.Logf("gtk-gnutella's downloads:\n%s", shell("downloads"))
	await.Until(t, "our log to say the browse was served", func() bool {
		return strings.Contains(logs.String(), "browse served")
	})
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "browse") || strings.Contains(line, "GIV") || strings.Contains(line, "push") {
			t.Logf("our log: %s", line)
		}
	}
}

// syncBuffer is a log sink safe for the servent's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
