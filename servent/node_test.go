package servent

import (
	"bytes"
	"context"
	"crypto/sha1"
	"fmt"
	"gnutella/testnet/await"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gnutella/firewall"
	"gnutella/protocol"
	"gnutella/routing"
)

func testNodeConfig(t *testing.T) NodeConfig {
	c := DefaultNodeConfig()
	c.Config = testConfig()
	c.AcceptLocalProof = true
	c.PushPolicy = firewall.PushPolicy{AddrPolicy: firewall.AddrPolicy{AllowLoopback: true, AllowPrivate: true}}
	c.Rescan = 0
	return c
}

func startNode(t *testing.T, c NodeConfig) *Node {
	t.Helper()
	n, err := NewNode(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Stop() })
	return n
}

// sharedFile writes a file of n pseudo-random bytes and returns its content.
func sharedFile(t *testing.T, dir, name string, n int) []byte {
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(i*7 + i/251)
	}
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return data
}

func hashNow(t *testing.T, n *Node) {
	t.Helper()
	if err := n.Library.Rescan(); err != nil {
		t.Fatal(err)
	}
	if err := n.Library.HashAll(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

func searchOne(t *testing.T, n *Node, words string) routing.Hit {
	t.Helper()
	s := n.Search(context.Background(), protocol.NewQuery(words, protocol.QueryFlagMark|protocol.QueryFlagGGEPH), routing.Flood{TTL: 3}, 1, 5*time.Second)
	hits := s.Hits()
	if len(hits) == 0 {
		t.Fatalf("no hit for %q", words)
	}
	return hits[0]
}

func TestDirectAndPushDownloadsAreVerified(t *testing.T) {
	for _, tc := range []struct {
		name       string
		firewalled bool
	}{{"direct", false}, {"push", true}} {
		t.Run(tc.name, func(t *testing.T) {
			shareDir, dlDir := t.TempDir(), t.TempDir()
			content := sharedFile(t, shareDir, "zebra quokka interop.bin", 300_000)
			cs := testNodeConfig(t)
			cs.ShareDirs = []string{shareDir}
			// A firewalled holder: no connection from loopback proves it reachable.
			cs.AcceptLocalProof = !tc.firewalled
			cd := testNodeConfig(t)
			cd.DownloadDir = dlDir
			holder, getter := startNode(t, cs), startNode(t, cd)
			hashNow(t, holder)
			// The side that is dialled receives an inbound connection: with
			// local proof accepted that makes it reachable. The firewalled
			// holder dials out instead, so only the getter is reachable.
			if tc.firewalled {
				if _, err := holder.Connect(ctxT(t), getter.Addr()); err != nil {
					t.Fatal(err)
				}
				await.Until(t, "the getter to be reachable", func() bool { return !getter.Firewall.Firewalled() })
				if err := getter.WaitLinks(ctxT(t), 1); err != nil {
					t.Fatal(err)
				}
			} else {
				if _, err := getter.Connect(ctxT(t), holder.Addr()); err != nil {
					t.Fatal(err)
				}
				await.Until(t, "the holder to be reachable", func() bool { return !holder.Firewall.Firewalled() })
			}
			hit := searchOne(t, getter, "zebra quokka")
			want := sha1.Sum(content)
			if hit.URN != protocol.SHA1(want) || hit.Push != tc.firewalled {
				t.Fatalf("hit %+v: want urn %x, push %v", hit, want, tc.firewalled)
			}
			path := downloadHit(ctxT(t), t, getter, hit, content)
			if filepath.Dir(path) != dlDir {
				t.Fatalf("file landed at %s", path)
			}
		})
	}
}

// curl fetches a shared file from a running servent by both URL forms, with
// and without a Range.
func TestCurlDownloadsBothURLForms(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed: apt-get install curl")
	}
	dir := t.TempDir()
	content := sharedFile(t, dir, "song.ogg", 100_000)
	c := testNodeConfig(t)
	c.ShareDirs = []string{dir}
	n := startNode(t, c)
	hashNow(t, n)
	f := n.Library.Files()[0]
	base := "http://" + n.Addr().String()
	for _, tc := range []struct {
		url, rng string
		want     []byte
	}{
		{fmt.Sprintf("%s/get/%d/song.ogg", base, f.Index), "", content},
		{fmt.Sprintf("%s/get/%d/song.ogg", base, f.Index), "1000-1999", content[1000:2000]},
		{base + "/uri-res/N2R?" + f.SHA1.String(), "", content},
		{base + "/uri-res/N2R?" + f.SHA1.String(), "99000-", content[99000:]},
	} {
		args := []string{"-s", "-f", "-D", "-", "-o", "-", tc.url}
		if tc.rng != "" {
			args = append([]string{"-r", tc.rng}, args...)
		}
		out, err := exec.Command(curl, args...).Output()
		if err != nil {
			t.Fatalf("curl %v: %v", args, err)
		}
		head, body, _ := bytes.Cut(out, []byte("\r\n\r\n"))
		if !bytes.Equal(body, tc.want) {
			t.Errorf("curl %s range %q: %d bytes, want %d", tc.url, tc.rng, len(body), len(tc.want))
		}
		if !strings.Contains(string(head), "X-Gnutella-Content-URN: "+f.SHA1.String()) {
			t.Errorf("no X-Gnutella-Content-URN in %s", head)
		}
		if tc.rng != "" && !strings.Contains(string(head), " 206 ") {
			t.Errorf("range %q answered %s", tc.rng, strings.SplitN(string(head), "\r\n", 2)[0])
		}
	}
}

// downloadHit downloads hit with n, waits for it within ctx, checks that
// the file saved holds want, and returns where it was saved.
func downloadHit(ctx context.Context, t *testing.T, n *Node, hit routing.Hit, want []byte) string {
	t.Helper()
	d, err := n.Download(hit, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Wait(ctx); err != nil {
		t.Fatalf("download: %v (%+v)", err, d.Status())
	}
	path := d.Status().Path
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("downloaded file differs (%v)", err)
	}
	return path
}

// awaitPeerTable waits until at holds peer's QRP table on its link to it.
func awaitPeerTable(t *testing.T, at interface{ Links() []*Link }, peer protocol.GUID) {
	t.Helper()
	await.Until(t, "the peer's QRP table", func() bool {
		for _, l := range at.Links() {
			if l.PeerID == peer && l.PeerTable() != nil {
				return true
			}
		}
		return false
	})
}
