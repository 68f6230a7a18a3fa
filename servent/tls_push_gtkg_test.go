package servent

import (
	"context"
	"testing"
	"time"

	"gnutella/protocol"
	"gnutella/routing"
	"gnutella/testnet/await"
	"gnutella/testnet/gtkg"
)

// gtk-gnutella (GTKG_BIN, ../shared/interop) says it takes TLS in its hits
// with an empty GGEP "TLS" in the trailer, and our hit reader sees it. The
// file is then downloaded from it; when its hit is flagged firewalled the
// download goes by Push, which carries GGEP "TLS", and gtk-gnutella's GIV
// callback comes over TLS.
func TestGtkHitSaysTLS(t *testing.T) {
	share := t.TempDir()
	content := sharedFile(t, share, "quoll gtktls callback numbat.bin", 90_000)
	g := gtkg.Start(t, share, "")
	cd := testNodeConfig(t)
	cd.Mode = ModeLeaf
	cd.AssumeReachable = true // a firewalled query gets no hit from a firewalled gtk-gnutella
	cd.DownloadDir = t.TempDir()
	getter := startNode(t, cd)
	if _, err := getter.Connect(ctxT(t), g.Addr); err != nil {
		t.Fatal(err)
	}
	// gtk-gnutella drops a leaf's query whose text it sent recently, and
	// may not have scanned its library for the first: fresh words each time.
	words := []string{"quoll gtktls", "gtktls callback", "callback numbat", "quoll numbat", "quoll callback",
		"gtktls numbat", "quoll gtktls callback", "gtktls callback numbat"}
	var hits []routing.Hit
	try := 0
	await.Until(t, "gtk-gnutella's hit", func() bool {
		if try == len(words) {
			t.Fatalf("no hit from gtk-gnutella; its drops:\n%s", g.Shell(t, "stats drop"))
		}
		s := getter.Search(context.Background(), protocol.NewQuery(words[try], protocol.QueryFlagMark|protocol.QueryFlagGGEPH),
			routing.Flood{TTL: 2}, 1, 5*time.Second)
		try++
		hits = s.Hits()
		return len(hits) > 0
	})
	hit := hits[0]
	t.Logf("gtk-gnutella's hit: %q from %s push=%v tls=%v proxies=%v", hit.Name, hit.Host, hit.Push, hit.TLS, hit.Proxies)
	if !hit.TLS {
		t.Fatal("gtk-gnutella's hit carries no GGEP TLS")
	}
	before := getter.tls.accepted.Load()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	downloadHit(ctx, t, getter, hit, content)
	n := getter.tls.accepted.Load() - before
	t.Logf("TLS connections the getter accepted during the download: %d", n)
	if hit.Push && n < 1 {
		t.Error("gtk-gnutella's GIV callback was not over TLS")
	}
}
