package transfer

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gnutella/firewall"
	"gnutella/protocol"
)

// TestGtkBrowsedByUs: we browse a gtk-gnutella that shares a folder (its
// browse_host_enabled is off by default) and get every file with its URN.
// gtk-gnutella lets one address browse it once an hour, so the test
// browses once, after gtk-gnutella has hashed the files.
func TestGtkBrowsedByUs(t *testing.T) {
	share := t.TempDir()
	want := map[string]protocol.SHA1{}
	for i, name := range []string{"browse interop one.bin", "browse interop two.bin", "browse interop three.bin"} {
		data := content(uint64(40+i), 10_000+i)
		if err := os.WriteFile(filepath.Join(share, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		want[name] = sha1.Sum(data)
	}
	g := startGtk(t, share, "browse_host_enabled = TRUE")

	// gtk-gnutella lists files without their URN, or none, until it has
	// hashed them: wait until each is served by URN.
	probe := func(urn protocol.SHA1) int {
		c, err := net.Dial("tcp", g.addr.String())
		if err != nil {
			return 0
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /uri-res/N2R?%s HTTP/1.1\r\nHost: %s\r\nRange: bytes=0-0\r\nConnection: close\r\n\r\n", urn, g.addr)
		line, _ := bufio.NewReader(c).ReadString('\n')
		code, _ := strconv.Atoi(strings.Fields(line + " x x")[1])
		return code
	}
	for name, urn := range want {
		for tries := 1; probe(urn) != 206; tries++ {
			if tries == 60 {
				t.Fatalf("gtk-gnutella does not serve %q by URN after %d tries", name, tries)
			}
			time.Sleep(time.Second) // gtk-gnutella's pace, not a synchronisation
		}
	}

	// The answer's head, for the log.
	var mu sync.Mutex
	var answer bytes.Buffer
	dial := firewall.DialFunc(func(ctx context.Context, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		return &teeConn{Conn: c, mu: &mu, buf: &answer}, nil
	})
	got := map[string]protocol.SHA1{}
	n, err := (&Browser{Dial: dial}).Browse(context.Background(), g.addr, func(h *protocol.QueryHit) {
		for i := range h.Results {
			var urn protocol.SHA1
			if u := h.Results[i].URNs(); len(u) > 0 {
				urn = u[0]
			}
			got[string(h.Results[i].Name)] = urn
		}
	})
	mu.Lock()
	head, _, _ := bytes.Cut(answer.Bytes(), []byte("\r\n\r\n"))
	t.Logf("gtk-gnutella's answer (%d bytes in all):\n%s", answer.Len(), head)
	mu.Unlock()
	if err != nil {
		t.Fatalf("browse: %d records, %v", n, err)
	}
	if n != len(want) || len(got) != len(want) {
		t.Fatalf("browsed %d records %v, want %v", n, got, want)
	}
	for name, urn := range want {
		if got[name] != urn {
			t.Fatalf("%q: urn %v, want %v", name, got[name], urn)
		}
	}
}

// shell runs one command in gtk-gnutella's shell and returns its answer.
func (g *gtkPeer) shell(t *testing.T, cmd string) string {
	t.Helper()
	dir := os.Getenv("GTKG_INTEROP")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared", "interop")
	}
	out, err := exec.Command(filepath.Join(dir, "shell.sh"), g.cfg, cmd).CombinedOutput()
	if err != nil {
		t.Fatalf("shell.sh %q: %v\n%s", cmd, err, out)
	}
	return string(out)
}
