package transfer

import (
	"bufio"
	"crypto/sha1"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gnutella/protocol"
	"gnutella/testnet/await"
	"gnutella/testnet/gtkg"
)

// A live gtk-gnutella beside the tests (package testnet/gtkg): the tests
// below run when GTKG_BIN names its binary and skip saying why otherwise.

// gtkPeer is a running gtk-gnutella on 127.0.0.1.
type gtkPeer struct {
	addr netip.AddrPort
	cfg  string // its config folder: gtkg.log is its log
	peer *gtkg.Peer
}

// startGtk starts gtk-gnutella as an ultrapeer sharing dir, with extra
// config_gnet properties ("name = value" lines), and stops it when the test
// ends.
func startGtk(t *testing.T, share, props string) *gtkPeer {
	t.Helper()
	return startGtkAs(t, "ultra", share, props)
}

// startGtkAs is startGtk in mode "ultra" or "leaf".
func startGtkAs(t *testing.T, mode, share, props string) *gtkPeer {
	t.Helper()
	p := gtkg.StartAs(t, mode, share, props)
	return &gtkPeer{addr: p.Addr, cfg: p.Dir, peer: p}
}

// TestGtkQueuesOurDownload: gtk-gnutella with one upload slot, taken by
// another client of ours that does not read, queues our download with PARQ
// (503 and X-Queued); the download shows its place, comes back when
// gtk-gnutella says, and is served with the right SHA-1 once the slot is
// free.
func TestGtkQueuesOurDownload(t *testing.T) {
	share := t.TempDir()
	data := content(31, 16<<20) // more than loopback's socket buffers hold
	if err := os.WriteFile(filepath.Join(share, "parq interop file.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := protocol.SHA1(sha1.Sum(data))
	g := startGtk(t, share, "max_uploads = 1\nmax_uploads_ip = 1")

	// Wait for gtk-gnutella to have hashed the file (503 "Library being
	// rebuilt" before), asking at a pace it accepts: it queues and then
	// drops a client that comes back too often.
	probe := func() int {
		c, err := net.Dial("tcp", g.addr.String())
		if err != nil {
			return 0
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /uri-res/N2R?%s HTTP/1.1\r\nHost: %s\r\nRange: bytes=0-0\r\nConnection: close\r\n\r\n", sum, g.addr)
		line, _ := bufio.NewReader(c).ReadString('\n')
		code, _ := strconv.Atoi(strings.TrimPrefix(strings.Fields(line + " x x")[1], ""))
		return code
	}
	for tries, code := 1, probe(); code != 206; tries, code = tries+1, probe() {
		if tries == 60 {
			t.Fatalf("gtk-gnutella still answers %d to a request for the file after %d tries", code, tries)
		}
		time.Sleep(time.Second) // gtk-gnutella's pace, not a synchronisation
	}
	// The holder takes the only slot and keeps it by not reading.
	holder, err := net.Dial("tcp", g.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(holder, "GET /uri-res/N2R?%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: gnutella/test\r\n\r\n", sum, g.addr)
	defer func() {
		if holder != nil {
			holder.Close()
		}
	}()

	d := newDownloader(t, &Downloader{AddrPolicy: lanPolicy})
	x, err := d.Add(Request{Name: "parq interop file.bin", Size: int64(len(data)), SHA1: sum,
		Sources: []Source{{Addr: g.addr, Name: "parq interop file.bin"}}})
	if err != nil {
		t.Fatal(err)
	}
	var place SourceStatus
	await.Until(t, "gtk-gnutella to queue the download", func() bool {
		for _, s := range x.Status().SourceStates {
			if s.State == SourceQueued {
				place = s
				return true
			}
		}
		return false
	})
	t.Logf("queued by gtk-gnutella: %+v", place)
	if place.Queue == "" || place.RetryAt.IsZero() {
		t.Errorf("a queued source with no place or retry time: %+v", place)
	}
	holder.Close()
	holder = nil
	if err := waitDone(t, x); err != nil {
		t.Fatalf("download after the queue: %v (%+v)", err, x.Status())
	}
	checkFile(t, x.Status().Path, data)
}
