// Package gtkg runs a real gtk-gnutella beside a test (../shared/interop/README.md): Start runs one on 127.0.0.1
// (StartWith: or inside a network namespace, on that host's address) when GTKG_BIN names its binary and the
// interop scripts are found (GTKG_INTEROP, default ../../shared/interop from the test's package folder), and skips
// the test saying why otherwise.
//
// It is test equipment: the gnutella command does not import it.
package gtkg

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"gnutella/testnet/await"
)

// Peer is a running gtk-gnutella.
type Peer struct {
	Addr netip.AddrPort // its TCP and UDP port
	Dir  string         // its config folder: gtkg.log is its log
}

// Options says how StartWith runs gtk-gnutella.
type Options struct {
	// Mode is "ultra" (the default when empty), "leaf" or "auto".
	Mode string
	// Share is the folder it shares.
	Share string
	// Props are extra config_gnet properties, "name = value" lines; they override run-peer.sh's.
	Props string
	// Netns, when set, is a network namespace (`ip netns` name) it runs in, listening on Addr:Port there
	// instead of 127.0.0.1 (a free port). Its local shell is a Unix socket in its config folder, which the test
	// reaches from outside the namespace.
	Netns string
	Addr  netip.Addr
	Port  uint16
}

// Start starts gtk-gnutella as an ultrapeer sharing dir, with extra config_gnet properties ("name = value"
// lines), and stops it when the test ends (logging its log if the test failed).
func Start(t testing.TB, share, props string) *Peer {
	t.Helper()
	return StartAs(t, "ultra", share, props)
}

// StartAs is Start in mode "ultra" or "leaf".
func StartAs(t testing.TB, mode, share, props string) *Peer {
	t.Helper()
	return StartWith(t, Options{Mode: mode, Share: share, Props: props})
}

// StartWith starts gtk-gnutella as o says, and stops it when the test ends (logging its log if the test failed).
func StartWith(t testing.TB, o Options) *Peer {
	t.Helper()
	mode, share, props := o.Mode, o.Share, o.Props
	if mode == "" {
		mode = "ultra"
	}
	if os.Getenv("GTKG_BIN") == "" {
		t.Skip("GTKG_BIN is not set: build gtk-gnutella as ../shared/interop/README.md says to run this test")
	}
	dir := os.Getenv("GTKG_INTEROP")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared", "interop")
	}
	script, err := filepath.Abs(filepath.Join(dir, "run-peer.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(script); err != nil {
		t.Skipf("the interop scripts are not there (%v): set GTKG_INTEROP to ../shared/interop", err)
	}
	addr := netip.MustParseAddr("127.0.0.1")
	var port int
	if o.Netns != "" {
		if !o.Addr.Is4() || o.Port == 0 {
			t.Fatalf("gtkg: namespace %s without an IPv4 address and port (%v, %d)", o.Netns, o.Addr, o.Port)
		}
		addr, port = o.Addr, int(o.Port)
		// run-peer.sh binds to 127.0.0.1: these lines come after its own, and the later line wins.
		props = fmt.Sprintf("forced_local_ip = \"%s\"\n%s", addr, props)
	} else {
		port = freePort(t)
	}
	// gtk-gnutella runs as nobody (it refuses root): it must reach its
	// config folder and the shared one.
	base := t.TempDir()
	for _, d := range []string{base, filepath.Dir(base), share, filepath.Dir(share)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(base, "gtkg")
	cmd := exec.Command(script, strconv.Itoa(port), cfg, mode, share)
	if o.Netns != "" {
		// ip netns exec runs the script, and so gtk-gnutella that it starts, in the namespace.
		cmd = exec.Command("ip", "netns", "exec", o.Netns, script, strconv.Itoa(port), cfg, mode, share)
	}
	cmd.Env = append(os.Environ(), "GTKG_EXTRA_PROPS="+props)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("run-peer.sh: %v\n%s%s", err, out, stderr.String())
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("run-peer.sh printed %q, not a PID", out)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		await.Until(t, "gtk-gnutella to exit", func() bool { return syscall.Kill(pid, 0) != nil })
		if t.Failed() {
			if log, err := os.ReadFile(filepath.Join(cfg, "gtkg.log")); err == nil {
				t.Logf("gtk-gnutella's log:\n%s", log)
			}
		}
	})
	return &Peer{Addr: netip.AddrPortFrom(addr, uint16(port)), Dir: cfg}
}

// Shell runs a command of gtk-gnutella's local shell (status, nodes, stats drop, ...) and returns its output.
func (p *Peer) Shell(t testing.TB, command string) string {
	t.Helper()
	dir := os.Getenv("GTKG_INTEROP")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared", "interop")
	}
	out, err := exec.Command(filepath.Join(dir, "shell.sh"), p.Dir, command).CombinedOutput()
	if err != nil {
		t.Fatalf("shell.sh %q: %v\n%s", command, err, out)
	}
	return string(out)
}

// Log is gtk-gnutella's log so far.
func (p *Peer) Log() string {
	b, _ := os.ReadFile(filepath.Join(p.Dir, "gtkg.log"))
	return string(b)
}

// freePort is a TCP (and, likely, UDP) port free on 127.0.0.1 now.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
