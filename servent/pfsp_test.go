package servent

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gnutella/protocol"
	"gnutella/routing"
	"gnutella/testnet/await"
	"gnutella/transfer"
)

// partialsOf is a transfer.Partials with files set by the test.
type partialsOf struct {
	mu    sync.Mutex
	files map[protocol.SHA1]transfer.PartialFile
}

func (p *partialsOf) PartialFile(h protocol.SHA1) (transfer.PartialFile, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f, ok := p.files[h]
	return f, ok
}

func (p *partialsOf) drop(h protocol.SHA1) {
	p.mu.Lock()
	delete(p.files, h)
	p.mu.Unlock()
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) netip.AddrPort {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	return a
}

// leecher is a node downloading "okapi partial.bin" (from a source that is
// gone) and sharing the first 40 % of it.
type leecher struct {
	*Node
	urn      protocol.SHA1
	content  []byte
	partials *partialsOf
}

func startLeecher(t *testing.T) *leecher {
	const size, have = 100_000, 40_000
	content := make([]byte, size)
	for i := range content {
		content[i] = byte(i*13 + i/509)
	}
	urn := protocol.SHA1(sha1.Sum(content))
	part := filepath.Join(t.TempDir(), "okapi.part")
	if err := os.WriteFile(part, content[:have], 0o644); err != nil {
		t.Fatal(err)
	}
	parts := &partialsOf{files: map[protocol.SHA1]transfer.PartialFile{
		urn: {Path: part, Name: "okapi partial.bin", Size: size, Have: transfer.Ranges{}.Add(0, have)},
	}}
	c := testNodeConfig(t)
	c.DownloadDir = t.TempDir()
	n, err := NewNode(c)
	if err != nil {
		t.Fatal(err)
	}
	n.Partials = parts
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Stop() })
	if _, err := n.Downloads.Add(transfer.Request{Name: "okapi partial.bin", Size: size, SHA1: urn,
		Sources: []transfer.Source{{Addr: deadAddr(t)}}}); err != nil {
		t.Fatal(err)
	}
	return &leecher{Node: n, urn: urn, content: content, partials: parts}
}

// A query by URN for a file we are downloading gets a hit for it, marked
// partial (GGEP "PRU": when, and how many bytes we have); by keywords only
// when the query says it takes partial results (GGEP "PR").
func TestPartialFilesAnswerQueries(t *testing.T) {
	l := startLeecher(t)
	byURN := protocol.NewQuery("", protocol.QueryFlagMark|protocol.QueryFlagGGEPH, l.urn)
	res := l.Answer(byURN, protocol.Header{})
	if len(res) != 1 {
		t.Fatalf("%d results for the URN, want 1", len(res))
	}
	r := res[0]
	if r.Index != partialIndex || r.Size != 100_000 || string(r.Name) != "okapi partial.bin" ||
		len(r.URNs()) != 1 || r.URNs()[0] != l.urn {
		t.Errorf("result %+v", r)
	}
	pru, ok := r.Extensions.GGEP().Get("PRU")
	if !ok || len(pru) < 5 {
		t.Fatalf("GGEP PRU %x, %v", pru, ok)
	}
	if at := time.Unix(int64(binary.BigEndian.Uint32(pru)), 0); time.Since(at) > time.Hour || time.Until(at) > time.Hour {
		t.Errorf("PRU time %v", at)
	}
	if have, err := protocol.ParseVarint(pru[4:]); err != nil || have != 40_000 {
		t.Errorf("PRU bytes %d, %v; want 40000", have, err)
	}

	words := protocol.NewQuery("okapi part", protocol.QueryFlagMark)
	if res := l.Answer(words, protocol.Header{}); len(res) != 0 {
		t.Errorf("a keyword query without PR got %d partial results", len(res))
	}
	words.Extensions = append(words.Extensions, protocol.GGEPItem(protocol.GGEP{{ID: "PR"}}))
	if res := l.Answer(words, protocol.Header{}); len(res) != 1 || res[0].URNs()[0] != l.urn {
		t.Errorf("a keyword query with PR got %+v", res)
	}
	other := protocol.NewQuery("okapi whole", protocol.QueryFlagMark)
	other.Extensions = words.Extensions
	if res := l.Answer(other, protocol.Header{}); len(res) != 0 {
		t.Errorf("a query with a word the name lacks got %d results", len(res))
	}

	// The URN is in our QRP table while the file is shared, and leaves it
	// when it is not.
	if !l.QRPTable().Matches(nil, []protocol.SHA1{l.urn}) {
		t.Error("the partial file's URN is not in our QRP table")
	}
	l.partials.drop(l.urn)
	if tb := l.QRPTable(); tb != nil && tb.Matches(nil, []protocol.SHA1{l.urn}) {
		t.Error("the URN stays in the QRP table after the partial file went")
	}
	if res := l.Answer(byURN, protocol.Header{}); len(res) != 0 {
		t.Error("answered for a partial file no longer shared")
	}
}

// Over TCP: another node searching by URN finds the leecher, learns it as a
// source in its mesh, and gets the bytes the leecher has by URN.
func TestPartialFileFoundAndServed(t *testing.T) {
	l := startLeecher(t)
	other := startNode(t, testNodeConfig(t))
	if _, err := other.Connect(ctxT(t), l.Addr()); err != nil {
		t.Fatal(err)
	}
	if err := other.WaitLinks(ctxT(t), 1); err != nil {
		t.Fatal(err)
	}
	s := other.Search(context.Background(), protocol.NewQuery("", protocol.QueryFlagMark|protocol.QueryFlagGGEPH, l.urn),
		routing.Flood{TTL: 2}, 1, 10*time.Second)
	hits := s.Hits()
	if len(hits) != 1 || hits[0].URN != l.urn || hits[0].Host != l.Addr() || hits[0].Size != 100_000 {
		t.Fatalf("hits %+v", hits)
	}
	if srcs := other.Mesh.Sources(l.urn); len(srcs) != 1 || srcs[0].Addr != l.Addr() {
		t.Errorf("mesh sources %+v", srcs)
	}
	// Reachable and sharing the file, the leecher names itself first in the
	// X-Alt of its requests for it, so that sources tell other leechers.
	await.Until(t, "the leecher to be reachable", func() bool { return !l.Firewall.Firewalled() })
	want := "X-Features: fwalt/0.1\r\nX-Alt: " + l.Addr().String() + "\r\n"
	if got := string(l.Mesh.AppendRequestHeaders(nil, l.urn, other.Addr(), true)); got != want {
		t.Errorf("request headers %q, want %q", got, want)
	}
	if got := string(l.Mesh.AppendRequestHeaders(nil, protocol.SHA1{9}, other.Addr(), true)); got != "X-Features: fwalt/0.1\r\n" {
		t.Errorf("request headers %q for a file the leecher does not share", got)
	}

	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(conn, "GET /uri-res/N2R?%s HTTP/1.1\r\nRange: bytes=1000-1999\r\nConnection: close\r\n\r\n", l.urn)
	br := bufio.NewReader(conn)
	status, _ := br.ReadString('\n')
	if !strings.HasPrefix(status, "HTTP/1.1 206") {
		t.Fatalf("status %q", status)
	}
	h, err := protocol.ReadHeaders(br, 0)
	if err != nil {
		t.Fatal(err)
	}
	if h.Get("X-Available-Ranges") != "bytes 0-39999" {
		t.Errorf("X-Available-Ranges %q", h.Get("X-Available-Ranges"))
	}
	body, _ := io.ReadAll(br)
	if !bytes.Equal(body, l.content[1000:2000]) {
		t.Errorf("body of %d bytes is not bytes 1000-1999 of the file", len(body))
	}
}

// Partial file sharing end to end: two leechers download a file from a
// slow seed. Each names itself in the X-Alt of its requests; the seed passes
// each on to the other in its answers, so they learn each other through the
// mesh and fetch from each other. When the two hold every byte between them
// the seed leaves, and both still finish with the right SHA-1.
func TestLeechersFinishFromEachOther(t *testing.T) {
	const size = 3 << 20
	shareDir := t.TempDir()
	content := sharedFile(t, shareDir, "okapi swarm.bin", size)
	urn := protocol.SHA1(sha1.Sum(content))
	cs := testNodeConfig(t)
	cs.ShareDirs = []string{shareDir}
	cs.UploadRate = 512 << 10 // slow enough that the seed leaves before either leecher is done
	seed, err := NewNode(cs)
	if err != nil {
		t.Fatal(err)
	}
	seed.Uploads.PerIP = -1 // every servent here comes from 127.0.0.1
	if err := seed.Start(); err != nil {
		t.Fatal(err)
	}
	seedStopped := false
	t.Cleanup(func() {
		if !seedStopped {
			_ = seed.Stop()
		}
	})
	hashNow(t, seed)
	var leechers []*Node
	for range 2 {
		c := testNodeConfig(t)
		c.DownloadDir = t.TempDir()
		n, err := NewNode(c)
		if err != nil {
			t.Fatal(err)
		}
		n.Uploads.PerIP = -1
		n.Downloads.ChunkSize = 128 << 10
		if err := n.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Stop() })
		// The seed dials the leecher: an inbound connection proves the
		// leecher reachable, and only a reachable one names itself.
		if _, err := seed.Connect(ctxT(t), n.Addr()); err != nil {
			t.Fatal(err)
		}
		await.Until(t, "the leecher to be reachable", func() bool { return !n.Firewall.Firewalled() })
		leechers = append(leechers, n)
	}
	var downloads []*transfer.Download
	for _, l := range leechers {
		if err := l.WaitLinks(ctxT(t), 1); err != nil {
			t.Fatal(err)
		}
		s := l.Search(context.Background(), protocol.NewQuery("", protocol.QueryFlagMark|protocol.QueryFlagGGEPH, urn),
			routing.Flood{TTL: 2}, 1, 10*time.Second)
		if len(s.Hits()) != 1 {
			t.Fatalf("%d hits", len(s.Hits()))
		}
		d, err := l.Download(s.Hits()[0], s.Hits())
		if err != nil {
			t.Fatal(err)
		}
		downloads = append(downloads, d)
	}
	// Between them the leechers hold the whole file: the seed goes.
	await.Until(t, "the leechers to hold every byte between them", func() bool {
		var union transfer.Ranges
		for _, l := range leechers {
			if pf, ok := l.PartialFile(urn); ok {
				for _, sp := range pf.Have {
					union = union.Add(sp.Start, sp.End)
				}
			}
		}
		return union.Covered() == size
	})
	for i, d := range downloads {
		if d.Status().State == transfer.StateDone {
			t.Logf("leecher %d finished before the seed left: the test proves less", i)
		}
	}
	_ = seed.Stop()
	seedStopped = true
	for i, d := range downloads {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		err := d.Wait(ctx)
		cancel()
		if err != nil {
			t.Fatalf("leecher %d: %v (%+v); its mesh: %+v", i, err, d.Status(), leechers[i].Mesh.Sources(urn))
		}
		got, err := os.ReadFile(d.Status().Path)
		if err != nil || sha1.Sum(got) != [20]byte(urn) {
			t.Fatalf("leecher %d: the file is wrong (%v)", i, err)
		}
	}
}
