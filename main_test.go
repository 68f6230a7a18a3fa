package main

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gnutella/protocol"
	"gnutella/testnet/await"
)

// bin is the gnutella binary TestMain builds once for the CLI tests.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gnutella-cli-test")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "gnutella")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		panic("go build: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// run runs the binary with args and returns its stdout, stderr and exit code.
func run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("running gnutella %v: %v", args, err)
	}
	return o.String(), e.String(), code
}

func wantRun(t *testing.T, wantCode int, wantStderr string, args ...string) string {
	t.Helper()
	out, errOut, code := run(t, args...)
	if code != wantCode || !strings.Contains(errOut, wantStderr) {
		t.Fatalf("gnutella %s: exit %d, stderr %q; want exit %d and stderr containing %q",
			strings.Join(args, " "), code, errOut, wantCode, wantStderr)
	}
	return out
}

func TestUnknownCommandSuggests(t *testing.T) {
	wantRun(t, 2, `unknown command "serch"; did you mean "search"?`, "serch", "koala")
	wantRun(t, 2, `unknown command "frobnicate": gnutella --help lists the commands`, "frobnicate")
}

func TestFlagsAfterTheSearchWords(t *testing.T) {
	// --urn after the words is read as a flag: its bad value is refused.
	wantRun(t, 2, "want urn:sha1:<32 base32 characters>",
		"search", "--data-dir", t.TempDir(), "koala", "--urn", "urn:sha1:bad")
	// A flag joined with = and a boolean flag after the words too.
	wantRun(t, 2, "no servent is running with --data-dir",
		"search", "koala", "--data-dir="+t.TempDir(), "--allow-private")
}

func TestGlobalFlagsAfterTheCommand(t *testing.T) {
	wantRun(t, 2, `unknown --log-level "loud"`, "serve", "--data-dir", t.TempDir(), "--log-level", "loud")
	wantRun(t, 2, `unknown --log-format "xml"`, "search", "koala", "--log-format=xml", "--peer", "127.0.0.1:1")
}

func TestReorderArgs(t *testing.T) {
	app := newApp()
	for _, c := range []struct{ in, want string }{
		{"g search koala --timeout 3s", "g search --timeout 3s koala"},
		{"g search koala bear --ttl 2 --allow-private", "g search --ttl 2 --allow-private koala bear"},
		{"g serve --log-level debug --peer 127.0.0.1:1", "g --log-level debug serve --peer 127.0.0.1:1"},
		{"g search koala -- --timeout", "g search koala -- --timeout"},
		{"g testnet experiment --n 5 --log-level info", "g --log-level info testnet experiment --n 5"},
		{"g get abc 1 --data-dir d", "g get --data-dir d abc 1"},
		{"g serch koala --ttl 2", "g serch koala --ttl 2"},
	} {
		got := reorderArgs(app, strings.Fields(c.in))
		if !reflect.DeepEqual(got, strings.Fields(c.want)) {
			t.Errorf("reorderArgs(%q) = %q, want %q", c.in, strings.Join(got, " "), c.want)
		}
	}
}

func TestSearchSaysWhyItCannotLink(t *testing.T) {
	dir := t.TempDir()
	// A loopback --peer is dialled without --allow-private too.
	wantRun(t, 1, "could not link to any --peer, so nothing was searched:\n"+
		"  127.0.0.1:1: connection refused — is a servent listening there?\n",
		"search", "--data-dir", dir, "--peer", "127.0.0.1:1", "koala")
	wantRun(t, 1, "could not link to any --peer, so nothing was searched:\n"+
		"  127.0.0.1:1: connection refused — is a servent listening there?\n",
		"search", "--data-dir", dir, "--peer", "127.0.0.1:1", "--allow-private", "koala")
}

// startServe runs gnutella serve with args (on loopback, a fresh data
// folder unless args give one) until the test ends, and returns its data
// folder and what it printed on stderr up to "listening on".
func startServe(t *testing.T, dir string, args ...string) (stderr string) {
	t.Helper()
	args = append([]string{"serve", "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0", "--data-dir", dir}, args...)
	cmd := exec.Command(bin, args...)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		pr.Close()
	})
	var got strings.Builder
	buf := make([]byte, 4096)
	for !strings.Contains(got.String(), "control API on") {
		n, err := pr.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			t.Fatalf("gnutella serve ended before its control API was up: %v\n%s", err, got.String())
		}
	}
	go func() { // keep draining so the servent never blocks on stderr
		for {
			if _, err := pr.Read(buf); err != nil {
				return
			}
		}
	}()
	return got.String()
}

// --max-leaves 1: the first leaf is taken, the second refused with 503.
func TestServeMaxLeaves(t *testing.T) {
	wantRun(t, 2, "--max-leaves must be 0 or more", "serve", "--data-dir", t.TempDir(), "--max-leaves", "-1")
	out := startServe(t, t.TempDir(), "--mode", "ultrapeer", "--max-leaves", "1")
	_, addr, ok := strings.Cut(out, " listening on ")
	addr, _, _ = strings.Cut(addr, " ")
	if !ok {
		t.Fatalf("no listening address in %q", out)
	}
	leaf := func() int {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		var req protocol.HandshakeRequest
		req.Version = "0.6"
		req.Headers.Add("X-Ultrapeer", "False")
		req.Headers.Add("GUID", protocol.NewGUID().String())
		if _, err := conn.Write(req.AppendTo(nil)); err != nil {
			t.Fatal(err)
		}
		resp, err := protocol.ReadHandshakeResponse(bufio.NewReader(conn))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Code == 200 {
			ok := protocol.HandshakeResponse{Version: "0.6", Code: 200, Reason: "OK"}
			if _, err := conn.Write(ok.AppendTo(nil)); err != nil {
				t.Fatal(err)
			}
		}
		return resp.Code
	}
	if code := leaf(); code != 200 {
		t.Fatalf("first leaf: %d, want 200", code)
	}
	// the first leaf's link may not be counted yet when the second asks
	await.Until(t, "the second leaf refused", func() bool { return leaf() == 503 })
}

func TestServeSaysWhichPeerItWillNotDial(t *testing.T) {
	dir := t.TempDir()
	out := startServe(t, dir, "--peer", "127.0.0.1:1")
	want := "gnutella: dialling --peer 127.0.0.1:1 as given, but 127.0.0.1 is a loopback address: " +
		"without --allow-private the hosts it names on such addresses are not; add it to join a local testnet\n"
	if !strings.Contains(out, want) {
		t.Fatalf("serve's stderr:\n%s\nwant it to say %q", out, want)
	}
	// A search through a servent without links reaches nobody: it says so.
	wantRun(t, 1, "has no links, so a search would reach nobody", "search", "--data-dir", dir, "koala")
}

func TestNoColourWhenStderrIsNotATerminal(t *testing.T) {
	out := startServe(t, t.TempDir(), "--log-level", "info")
	if !strings.Contains(out, "servent started") || strings.Contains(out, "\x1b[") {
		t.Fatalf("serve's stderr into a pipe:\n%q\nwant its log, without colour codes", out)
	}
}

func TestTwoServentsCannotShareADataFolder(t *testing.T) {
	dir := t.TempDir()
	startServe(t, dir)
	b, err := os.ReadFile(filepath.Join(dir, "lock"))
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimSpace(string(b))
	wantRun(t, 1, "data folder "+dir+" is in use by another servent (pid "+pid+"): choose another with --data-dir\n",
		"serve", "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0", "--data-dir", dir)
}

func TestTestnetSizes(t *testing.T) {
	wantRun(t, 2, "testnet: 2 firewalled leaves of 3: at most 1, as two leaves must be open (the seeker and the direct download's source): change --ultrapeers, --leaves or --firewalled\n",
		"testnet", "--once", "--leaves", "3", "--firewalled", "2")
	wantRun(t, 2, "testnet: -1 firewalled leaves: cannot be negative", "testnet", "--once", "--firewalled", "-1")
	wantRun(t, 2, "testnet: 1 ultrapeers: the demo needs at least 2", "testnet", "--once", "--ultrapeers", "1")
	// No firewalled leaf: no push step, and a search word the few leaves share.
	out := wantRun(t, 0, "", "testnet", "--once", "--ultrapeers", "3", "--leaves", "2", "--firewalled", "0")
	if !strings.HasSuffix(out, "Every step worked.\n") || strings.Contains(out, "push download") {
		t.Fatalf("testnet --once --ultrapeers 3 --leaves 2 --firewalled 0 printed:\n%s", out)
	}
}
