//go:build linux

package servent

import (
	"strings"
	"testing"
	"time"

	"gnutella/testnet/await"
	"gnutella/testnet/gtkg"
)

// gtk-gnutella's link to our ultrapeer is compressed both ways (its
// default). Once quiet it parks with its inflater (inflate.go); gtk-gnutella's
// searches then wake it, and must decode against the window kept across
// the park, twice.
func TestGtkCompressedLinkParksAndWakes(t *testing.T) {
	g := gtkg.Start(t, t.TempDir(), "up_connections = 0")
	c := testConfig()
	c.ParkAfter = 300 * time.Millisecond
	c.TLS = false
	up := startServent(t, c)
	var answered queryLog
	leaf := startServent(t, sharing("parkgtk", 2, ModeLeaf, &answered))
	if _, err := leaf.Connect(ctxT(t), up.Addr()); err != nil {
		t.Fatal(err)
	}
	g.Shell(t, "node add "+up.Addr().String())
	var gl *Link
	await.Until(t, "gtk-gnutella linked", func() bool {
		for _, l := range up.Links() {
			if l.PeerID != leaf.ID() {
				gl = l
			}
		}
		return gl != nil
	})
	if !gl.DeflateIn || !gl.DeflateOut {
		t.Fatalf("gtk-gnutella's link is not compressed both ways (in %v, out %v)", gl.DeflateIn, gl.DeflateOut)
	}
	for round := range 2 {
		await.Until(t, "gtk-gnutella's link to park", gl.parked)
		before := gl.Stats().RxMessages
		word := []string{"parkgtk", "parkgtk 1"}[round]
		await.Until(t, "gtk-gnutella to list our leaf's hits", func() bool {
			g.Shell(t, "search close")
			g.Shell(t, `search add "`+word+`"`)
			deadline := time.Now().Add(5 * time.Second)
			for time.Now().Before(deadline) {
				if out := g.Shell(t, "search results"); strings.Count(out, "parkgtk ") >= 1 {
					return true
				}
				time.Sleep(200 * time.Millisecond) // polling gtk-gnutella's shell
			}
			return false
		})
		select {
		case <-gl.Done():
			t.Fatalf("round %d: gtk-gnutella's link ended (Bye %v)", round, gl.ByeCode())
		default:
		}
		t.Logf("round %d: the parked link woke and read %d messages", round, gl.Stats().RxMessages-before)
	}
	if len(answered.lines()) == 0 {
		t.Error("our leaf saw no query from gtk-gnutella")
	}
}
