package servent

import (
	"context"
	"crypto/sha1"
	"net/netip"
	"slices"
	"testing"
	"time"

	"gnutella/protocol"
	"gnutella/routing"
)

// Two holders of the same file answer one search of a getter: the getter's
// mesh knows both as sources of the URN, and never itself.
func TestSearchHitsFeedTheMesh(t *testing.T) {
	var holders []*Node
	var content []byte
	for range 2 {
		dir := t.TempDir()
		content = sharedFile(t, dir, "okapi mesh.bin", 50_000)
		c := testNodeConfig(t)
		c.ShareDirs = []string{dir}
		h := startNode(t, c)
		hashNow(t, h)
		holders = append(holders, h)
	}
	getter := startNode(t, testNodeConfig(t))
	for _, h := range holders {
		if _, err := getter.Connect(ctxT(t), h.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	if err := getter.WaitLinks(ctxT(t), 2); err != nil {
		t.Fatal(err)
	}
	urn := protocol.SHA1(sha1.Sum(content))
	s := getter.Search(context.Background(), protocol.NewQuery("", protocol.QueryFlagMark|protocol.QueryFlagGGEPH, urn),
		routing.Flood{TTL: 2}, 2, 10*time.Second)
	if len(s.Hits()) != 2 {
		t.Fatalf("%d hits, want 2", len(s.Hits()))
	}
	var got []string
	for _, src := range getter.Mesh.Sources(urn) {
		got = append(got, src.Addr.String())
	}
	slices.Sort(got)
	want := []string{holders[0].Addr().String(), holders[1].Addr().String()}
	slices.Sort(want)
	// The mesh has them as soon as the search does: the hit is given to the
	// mesh before the search.
	if !slices.Equal(got, want) {
		t.Errorf("mesh sources %v, want the two holders %v", got, want)
	}
}

// The GGEP "ALT" locations of a hit's record join the responder in the mesh.
func TestHitAltLocsFeedTheMesh(t *testing.T) {
	urn := protocol.SHA1{0x42, 1}
	alt := protocol.AppendPushProxy(nil, netip.MustParseAddrPort("127.0.0.7:7777"))
	alt = protocol.AppendPushProxy(alt, netip.MustParseAddrPort("0.0.0.0:5")) // never a location
	c := testNodeConfig(t)
	c.Library = StaticLibrary{Results: func(q *protocol.Query, h protocol.Header) []protocol.Result {
		return []protocol.Result{{Index: 3, Size: 1000, Name: []byte("okapi alt.bin"),
			Extensions: protocol.ResultExtensions(urn, true, protocol.GGEP{{ID: "ALT", Data: alt}})}}
	}}
	holder := startNode(t, c)
	getter := startNode(t, testNodeConfig(t))
	if _, err := getter.Connect(ctxT(t), holder.Addr()); err != nil {
		t.Fatal(err)
	}
	if err := getter.WaitLinks(ctxT(t), 1); err != nil {
		t.Fatal(err)
	}
	s := getter.Search(context.Background(), protocol.NewQuery("okapi", protocol.QueryFlagMark|protocol.QueryFlagGGEPH),
		routing.Flood{TTL: 2}, 1, 10*time.Second)
	if len(s.Hits()) != 1 {
		t.Fatalf("%d hits", len(s.Hits()))
	}
	var got []string
	for _, src := range getter.Mesh.Sources(urn) {
		got = append(got, src.Addr.String())
	}
	slices.Sort(got)
	want := []string{"127.0.0.7:7777", holder.Addr().String()}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("mesh sources %v, want %v", got, want)
	}
}
