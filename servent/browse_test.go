package servent

import (
	"crypto/sha1"
	"net"
	"net/netip"
	"testing"

	"gnutella/protocol"
	"gnutella/testnet/await"
	"gnutella/transfer"
)

// A node's library, browsed by another node over loopback: every file,
// with its URN, at the address browsed; our hits say "BH" and our
// handshake browse/1.0.
func TestBrowseNodeLibrary(t *testing.T) {
	dir := t.TempDir()
	want := map[string]protocol.SHA1{}
	for i, name := range []string{"alpha browse.bin", "beta browse.bin", "gamma browse.bin"} {
		want[name] = sha1.Sum(sharedFile(t, dir, name, 1000+i))
	}
	cs := testNodeConfig(t)
	cs.ShareDirs = []string{dir}
	// Firewalled as far as it knows: its hits say push, but a browser
	// that reached it needs no Push.
	cs.AcceptLocalProof = false
	holder, browser := startNode(t, cs), startNode(t, testNodeConfig(t))
	hashNow(t, holder)

	s, err := browser.Browse(ctxT(t), holder.Addr(), protocol.GUID{})
	if err != nil {
		t.Fatal(err)
	}
	hits := s.Hits()
	if len(hits) != len(want) {
		t.Fatalf("browsed %d files, want %d: %+v", len(hits), len(want), hits)
	}
	for _, h := range hits {
		if want[h.Name] != h.URN || h.Host != holder.Addr() || h.ServentID != holder.ID() || h.Push {
			t.Fatalf("hit %+v: want urn %v from %v (%v)", h, want[h.Name], holder.Addr(), holder.ID())
		}
	}
	if s.Strategy != BrowseStrategy {
		t.Fatalf("strategy %q", s.Strategy)
	}

	// The hits as they come: with "BH" in the trailer, as our query hits,
	// and the push flag of a firewalled servent.
	bh, push := 0, 0
	if _, err := (&transfer.Browser{}).Browse(ctxT(t), holder.Addr(), func(h *protocol.QueryHit) {
		if _, ok := h.TrailerGGEP().Get("BH"); ok {
			bh++
		}
		if f, v := h.Flags(); f.Push && v.Push {
			push++
		}
	}); err != nil || bh == 0 || push == 0 {
		t.Fatalf("browse: %v; %d hits with BH, %d with push", err, bh, push)
	}
	hh := holder.ourHeaders(netip.Addr{})
	if !hh.HasFeature("browse") {
		t.Fatalf("X-Features %q, want it to name %s", hh.Get("X-Features"), transfer.BrowseFeature)
	}
}

// A firewalled node is browsed through a Push: the direct connection
// fails, the Push reaches it over its link, and it connects back with a
// GIV on which the browse runs.
func TestBrowseByPush(t *testing.T) {
	dir := t.TempDir()
	content := sharedFile(t, dir, "pushed browse.bin", 4000)
	cs := testNodeConfig(t)
	cs.ShareDirs = []string{dir}
	cs.AcceptLocalProof = false // nothing proves it reachable: firewalled
	holder, browser := startNode(t, cs), startNode(t, testNodeConfig(t))
	hashNow(t, holder)
	if _, err := holder.Connect(ctxT(t), browser.Addr()); err != nil {
		t.Fatal(err)
	}
	await.Until(t, "the browser to be reachable", func() bool { return !browser.Firewall.Firewalled() })
	if err := browser.WaitLinks(ctxT(t), 1); err != nil {
		t.Fatal(err)
	}
	// The Push is routed by the servent ID the hits taught us: a search
	// teaches it as a user's would.
	searchOne(t, browser, "pushed browse")

	// A closed port stands for the firewall.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	s, err := browser.Browse(ctxT(t), closed, holder.ID())
	if err != nil {
		t.Fatal(err)
	}
	hits := s.Hits()
	if len(hits) != 1 || hits[0].URN != protocol.SHA1(sha1.Sum(content)) || !hits[0].Push {
		t.Fatalf("hits by push: %+v", hits)
	}
}
