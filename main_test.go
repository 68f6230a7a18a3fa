package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gnutella/protocol"
	"gnutella/servent/control"
	"gnutella/testnet/await"
	"gnutella/transfer"
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
	return runEnv(t, nil, args...)
}

// runEnv is run with env added to the environment.
func runEnv(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
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
	// A mistyped subcommand, flag or forgotten flag name: one line, exit 2.
	wantRun(t, 2, `gnutella testnet has no command "experimnt"; did you mean "experiment"?`, "testnet", "--once", "experimnt")
	wantRun(t, 2, "gnutella serve has no flag --lisen; did you mean --listen? (gnutella serve --help lists the flags)\n",
		"serve", "--lisen", "127.0.0.1:0")
	wantRun(t, 2, "gnutella testnet experiment has no flag --nn; did you mean --n?", "testnet", "experiment", "--nn", "5")
	wantRun(t, 2, "gnutella has no flag --log-levle; did you mean --log-level?", "--log-levle", "info", "status")
	wantRun(t, 2, `gnutella serve takes no arguments, only flags: "127.0.0.1:6346" is not one`, "serve", "127.0.0.1:6346")
	wantRun(t, 2, `invalid value "soon" for flag --timeout`, "search", "--timeout", "soon", "koala")
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
		"  127.0.0.1:1: connection refused: nothing listens there (check the address and port, or start the servent there first)\n",
		"search", "--data-dir", dir, "--peer", "127.0.0.1:1", "koala")
	wantRun(t, 1, "could not link to any --peer, so nothing was searched:\n"+
		"  127.0.0.1:1: connection refused: nothing listens there (check the address and port, or start the servent there first)\n",
		"search", "--data-dir", dir, "--peer", "127.0.0.1:1", "--allow-private", "koala")
}

// startServe runs gnutella serve with args (on loopback, a fresh data
// folder unless args give one) until the test ends, and returns its data
// folder and what it printed on stderr up to "listening on".
func startServe(t *testing.T, dir string, args ...string) (stderr string) {
	t.Helper()
	return startServent(t, dir, args...).out
}

// A serveProc is a gnutella serve process of a test.
type serveProc struct {
	out  string      // its stderr until its control API was up
	addr string      // where it listens
	tr   *transcript // its stderr from then on
	stop func()      // interrupts it and waits for it to end
}

// startServent runs gnutella serve with args on data folder dir, until
// stop or the end of the test, and returns once its control API is up.
func startServent(t *testing.T, dir string, args ...string) *serveProc {
	t.Helper()
	return startProc(t, append([]string{"serve", "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0", "--data-dir", dir}, args...)...)
}

// startProc runs gnutella with args, a serve command, until stop or the
// end of the test, and returns once its control API is up.
func startProc(t *testing.T, args ...string) *serveProc {
	t.Helper()
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
	var once sync.Once
	s := &serveProc{}
	s.stop = func() {
		once.Do(func() {
			_ = cmd.Process.Signal(os.Interrupt)
			_ = cmd.Wait()
			if s.tr != nil {
				s.tr.waitEnd()
			}
			pr.Close()
		})
	}
	t.Cleanup(s.stop)
	var got strings.Builder
	buf := make([]byte, 1)
	for !strings.Contains(got.String(), "control API on") || !strings.HasSuffix(got.String(), "\n") {
		n, err := pr.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			t.Fatalf("gnutella serve ended before its control API was up: %v\n%s", err, got.String())
		}
	}
	s.out = got.String()
	// It keeps draining, so the servent never blocks on stderr; it holds
	// what came before too, so that a message written before the control
	// API's line (a dial fails as the servent starts) is found by waitFor.
	s.tr = newTranscript(io.MultiReader(strings.NewReader(s.out), pr))
	if _, rest, ok := strings.Cut(s.out, " listening on "); ok {
		s.addr, _, _ = strings.Cut(rest, " ")
	}
	return s
}

// --max-leaves 1: the first leaf is taken, the second refused with 503.
func TestServeMaxLeaves(t *testing.T) {
	wantRun(t, 2, "--max-leaves must be 0 or more", "serve", "--data-dir", t.TempDir(), "--max-leaves", "-1")
	out := startServe(t, t.TempDir(), "--mode", "ultrapeer", "--max-leaves", "1")
	if !strings.Contains(out, "takes up to 1 leaf and 32 ultrapeer links") {
		t.Errorf("serve does not say how many leaves it takes: %q", out)
	}
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
	s := startServent(t, dir, "--peer", "127.0.0.1:1")
	want := "gnutella: dialling --peer 127.0.0.1:1 as given, but 127.0.0.1 is a loopback address: " +
		"without --allow-private the hosts it names on such addresses are not; add it to join a local testnet\n"
	if !strings.Contains(s.out, want) {
		t.Fatalf("serve's stderr:\n%s\nwant it to say %q", s.out, want)
	}
	// The dial fails: serve says why and what to do.
	s.tr.waitFor(t, "gnutella: cannot link to --peer 127.0.0.1:1: connection refused: nothing listens there (check the address and port, or start the servent there first); trying again later\n")
	// A search through a servent without links reaches nobody: it says so.
	wantRun(t, 1, "has no links, so a search would reach nobody", "search", "--data-dir", dir, "koala")
	wantRun(t, 1, "has no links, so a search would reach nobody", "get", "--data-dir", dir, "urn:sha1:"+strings.Repeat("A", 32))
}

// A search through a firewalled servent that finds nothing says why it may
// have found nothing: firewalled sharers do not answer firewalled searchers.
func TestSearchExplainsAFirewalledServent(t *testing.T) {
	share := t.TempDir()
	if err := os.WriteFile(filepath.Join(share, "koala.txt"), []byte("koala"), 0o600); err != nil {
		t.Fatal(err)
	}
	upDir, dir := t.TempDir(), t.TempDir()
	up := startServent(t, upDir, "--mode", "ultrapeer", "--share", share)
	until(t, "koala.txt hashed", func() bool { l := apiStatus(t, upDir).Library; return l != nil && l.HashedFiles == 1 })
	startServent(t, dir, "--peer", up.addr)
	until(t, "the link", func() bool { return apiStatus(t, dir).Links == 1 })
	out := wantRun(t, 0, "the servent searched through counts as firewalled", "search", "--data-dir", dir, "--timeout", "1s", "koala")
	if !strings.HasPrefix(out, "No results") {
		t.Fatalf("search printed %q, want no results", out)
	}
}

// --listen with something that is no address says so, and what to give.
func TestServeBadListenAddress(t *testing.T) {
	_, errOut, code := run(t, "serve", "--listen", "garbage", "--control", "", "--data-dir", t.TempDir())
	if code != 1 || !strings.Contains(errOut, "cannot listen on garbage: ") ||
		!strings.Contains(errOut, "(give --listen an ip:port this machine has, such as 127.0.0.1:6346)") || strings.Contains(errOut, "another") {
		t.Fatalf("serve --listen garbage: exit %d, stderr %q", code, errOut)
	}
}

// A servent with nothing to dial says how it would join.
func TestServeSaysItHasNobodyToDial(t *testing.T) {
	out := startServe(t, t.TempDir())
	if !strings.Contains(out, "gnutella: no --peer, no --gwebcache, no --uhc and no saved hosts: this servent links only when others dial it") {
		t.Fatalf("serve's stderr:\n%s", out)
	}
	if out := startServe(t, t.TempDir(), "--peer", "127.0.0.1:1"); strings.Contains(out, "no saved hosts") {
		t.Fatalf("serve with a --peer:\n%s", out)
	}
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
	ctl, err := os.ReadFile(filepath.Join(dir, "control.json"))
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimSpace(string(b))
	wantRun(t, 1, "data folder "+dir+" is in use by another servent (pid "+pid+"): choose another with --data-dir\n",
		"serve", "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0", "--data-dir", dir)
	// The first one's control.json is untouched and it still answers.
	if again, err := os.ReadFile(filepath.Join(dir, "control.json")); err != nil || !bytes.Equal(again, ctl) {
		t.Fatalf("control.json after the second serve: %q, %v; want %q", again, err, ctl)
	}
	apiStatus(t, dir)
}

func TestTestnetSizes(t *testing.T) {
	wantRun(t, 2, "testnet: 2 firewalled leaves of 3: at most 1, as two leaves must be open (the seeker and the direct download's source): change --ultrapeers, --leaves or --firewalled\n",
		"testnet", "--once", "--leaves", "3", "--firewalled", "2")
	wantRun(t, 2, "testnet: -1 firewalled leaves: cannot be negative", "testnet", "--once", "--firewalled", "-1")
	wantRun(t, 2, "testnet: 1 ultrapeers: the demo needs at least 2", "testnet", "--once", "--ultrapeers", "1")
	wantRun(t, 2, "testnet: 0 leaves: the demo needs at least 2", "testnet", "--once", "--leaves", "0")
	wantRun(t, 2, "testnet: 1 firewalled leaves of 2: at most 0", "testnet", "--once", "--leaves", "2", "--firewalled", "1")
	// Two leaves leave room for no firewalled one: the default --firewalled
	// shrinks to 0 (given, 1 is refused above); no push step, and a search
	// word the few leaves share.
	out := wantRun(t, 0, "", "testnet", "--once", "--ultrapeers", "3", "--leaves", "2")
	if !strings.HasSuffix(out, "Every step worked.\n") || strings.Contains(out, "push download") {
		t.Fatalf("testnet --once --ultrapeers 3 --leaves 2 printed:\n%s", out)
	}
}

// The demo's join hint works as printed: its serve command (in a fresh
// folder instead of /tmp/me) joins, its search finds the word it names and
// get downloads row 1 into the --downloads folder. --leaves 3 alone is
// accepted: the default --firewalled shrinks to fit.
func TestTestnetJoinHintWorksAsPrinted(t *testing.T) {
	tr := background(t, false, "testnet", "--ultrapeers", "2", "--leaves", "3")
	tr.waitFor(t, "Ctrl-C stops the network.")
	out := tr.String()
	if !strings.Contains(out, "Every step worked.") || !strings.Contains(out, "push download") {
		t.Fatalf("testnet --ultrapeers 2 --leaves 3 printed:\n%s", out)
	}
	me := t.TempDir()
	hint := strings.ReplaceAll(out[strings.Index(out, "Join it with"):], "/tmp/me", me)
	serveLine, rest, _ := strings.Cut(hint[strings.Index(hint, "mkdir -p "):], "\\\n")
	more, rest, _ := strings.Cut(rest, "\n")
	mkdir, serve, ok := strings.Cut(serveLine, " && go run . ")
	if !ok || mkdir != "mkdir -p "+me+"/share" {
		t.Fatalf("join hint:\n%s", hint)
	}
	if err := os.MkdirAll(me+"/share", 0o700); err != nil {
		t.Fatal(err)
	}
	args := append(strings.Fields(serve), strings.Fields(more)...)
	for _, want := range []string{"--share", "--downloads", "--peer"} {
		if !strings.Contains(serve+more, want) {
			t.Errorf("the join hint's serve has no %s: %s %s", want, serve, more)
		}
	}
	startProc(t, args...)
	searchLine := rest[strings.Index(rest, "go run . search"):]
	searchLine, _, _ = strings.Cut(searchLine, "\n")
	search, get, ok := strings.Cut(strings.TrimPrefix(searchLine, "go run . "), "    and    go run . ")
	if !ok {
		t.Fatalf("join hint's search line: %q", searchLine)
	}
	var id string
	until(t, "the join hint's search finds something", func() bool {
		out, _, code := run(t, strings.Fields(search)...)
		_, after, found := strings.Cut(out, "Search ID ")
		id, _, _ = strings.Cut(after, ":")
		return code == 0 && found
	})
	getArgs := strings.Fields(strings.Replace(strings.Replace(get, "SEARCH-ID", id, 1), " N", " 1", 1))
	wantRun(t, 0, "verified and saved: "+me+"/downloads/", getArgs...)
}

// cache --listen 127.0.0.1:0 prints the port it got, and answers there.
func TestCachePrintsItsAddress(t *testing.T) {
	tr := background(t, true, "cache", "--listen", "127.0.0.1:0")
	tr.waitFor(t, "(Ctrl-C to stop)")
	_, rest, _ := strings.Cut(tr.String(), "GWebCache at ")
	url, _, _ := strings.Cut(rest, " ")
	if strings.HasSuffix(url, ":0/") {
		t.Fatalf("cache printed %q: the port 0 asked for, not the one it got", tr.String())
	}
	resp, err := http.Get(url + "?get=1&net=gnutella&client=TEST&version=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	wantRun(t, 1, "cannot listen on garbage: ", "cache", "--listen", "garbage")
}

// background runs gnutella with args until the end of the test (then
// Ctrl-C) and returns the transcript of its stdout, or of its stderr.
func background(t *testing.T, stderr bool, args ...string) *transcript {
	t.Helper()
	cmd := exec.Command(bin, args...)
	pipe := cmd.StdoutPipe
	if stderr {
		pipe = cmd.StderrPipe
	}
	r, err := pipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tr := newTranscript(r)
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		tr.waitEnd()
		_ = cmd.Wait()
	})
	return tr
}

// transcript collects what a process writes to r, for a test that waits for
// a message.
type transcript struct {
	mu   sync.Mutex
	text strings.Builder
	more chan struct{} // closed at the next write or at the end
	end  bool
}

func newTranscript(r io.Reader) *transcript {
	tr := &transcript{more: make(chan struct{})}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			tr.mu.Lock()
			tr.text.Write(buf[:n])
			if err != nil {
				tr.end = true
			}
			close(tr.more)
			tr.more = make(chan struct{})
			tr.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return tr
}

func (tr *transcript) String() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.text.String()
}

// waitFor waits until the process has written s.
func (tr *transcript) waitFor(t *testing.T, s string) {
	t.Helper()
	for {
		tr.mu.Lock()
		got, end, more := tr.text.String(), tr.end, tr.more
		tr.mu.Unlock()
		switch {
		case strings.Contains(got, s):
			return
		case end:
			t.Fatalf("the output ended without %q:\n%s", s, got)
		}
		<-more
	}
}

// waitEnd waits until the process's output has ended, and returns it all.
func (tr *transcript) waitEnd() string {
	for {
		tr.mu.Lock()
		got, end, more := tr.text.String(), tr.end, tr.more
		tr.mu.Unlock()
		if end {
			return got
		}
		<-more
	}
}

// until polls cond until it holds; what says what is awaited. There is no
// event to wait for in another process, so it looks again every 20 ms.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if d, ok := t.Deadline(); ok && time.Until(d) < 10*time.Second {
			t.Fatalf("still waiting for %s at the test's deadline", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func apiClient(t *testing.T, dir string) *control.Client {
	t.Helper()
	info, err := control.ReadInfo(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &control.Client{Info: info}
}

func apiStatus(t *testing.T, dir string) control.StatusJSON {
	t.Helper()
	var st control.StatusJSON
	if err := apiClient(t, dir).Do(context.Background(), "GET", "/api/v1/status", nil, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// seedServent starts a servent sharing one file, name, of size random
// bytes, with args, and waits until the file is hashed. It returns the data
// folder and the servent.
func seedServent(t *testing.T, name string, size int, args ...string) (string, *serveProc) {
	t.Helper()
	share, dir := t.TempDir(), t.TempDir()
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*7 + len(name))
	}
	if err := os.WriteFile(filepath.Join(share, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
	args = append([]string{"--share", share, "--allow-private", "--mode", "ultrapeer"}, args...)
	s := startServent(t, dir, args...)
	until(t, name+" hashed", func() bool {
		l := apiStatus(t, dir).Library
		return l != nil && l.HashedFiles == 1
	})
	return dir, s
}

// searchRows runs gnutella search --json for words through the servent of
// dir until it finds want rows, and returns the search ID and the rows by
// name.
func searchRows(t *testing.T, dir, words string, want int) (string, map[string]row) {
	t.Helper()
	for {
		out := wantRun(t, 0, "", "search", "--data-dir", dir, "--json", "--timeout", "3s",
			"--max-results", strconv.Itoa(want), words)
		var sj searchJSON
		if err := json.Unmarshal([]byte(out), &sj); err != nil {
			t.Fatalf("search --json printed %q: %v", out, err)
		}
		if len(sj.Rows) == want {
			rows := map[string]row{}
			for _, r := range sj.Rows {
				rows[r.Name] = r
			}
			return sj.ID, rows
		}
		if d, ok := t.Deadline(); ok && time.Until(d) < 10*time.Second {
			t.Fatalf("search %q found %d rows, want %d: %s", words, len(sj.Rows), want, out)
		}
	}
}

// downloadsJSON is gnutella downloads --json of the servent of dir.
func downloadsJSON(t *testing.T, dir string) map[string]transfer.Status {
	t.Helper()
	var all []transfer.Status
	out := wantRun(t, 0, "", "downloads", "--json", "--data-dir", dir)
	if err := json.Unmarshal([]byte(out), &all); err != nil {
		t.Fatalf("downloads --json printed %q: %v", out, err)
	}
	byName := map[string]transfer.Status{}
	for _, st := range all {
		byName[st.Name] = st
	}
	return byName
}

// The downloads CLI and get against real servents: one seed serves
// koala-open.bin (and does not download), another has koala-busy.bin but no upload slot (a download
// of it waits for ever), and a servent with a download folder is linked to
// both.
func TestDownloadsCLI(t *testing.T) {
	openDir, openSeed := seedServent(t, "koala-open.bin", 200_000, "--downloads", "")
	_, busySeed := seedServent(t, "koala-busy.bin", 50_000, "--upload-slots", "-1")
	dir, dl := t.TempDir(), t.TempDir()
	args := []string{"--downloads", dl, "--allow-private", "--mode", "leaf", "--peer", openSeed.addr, "--peer", busySeed.addr}
	b := startServent(t, dir, args...)
	until(t, "the downloader's 2 links", func() bool { return apiStatus(t, dir).Links == 2 })
	search, rows := searchRows(t, dir, "koala", 2)
	openRow, busyRow := strconv.Itoa(rows["koala-open.bin"].N), strconv.Itoa(rows["koala-busy.bin"].N)

	// get follows a download to its end.
	saved := filepath.Join(dl, "koala-open.bin")
	_, errOut, code := run(t, "get", "--data-dir", dir, search, openRow)
	if code != 0 || !strings.HasSuffix(errOut, "verified and saved: "+saved+"\n") {
		t.Fatalf("get %s %s: exit %d, stderr:\n%s", search, openRow, code, errOut)
	}
	if got, err := os.ReadFile(saved); err != nil || len(got) != 200_000 {
		t.Fatalf("the downloaded file: %d bytes, %v", len(got), err)
	}
	// get of a file already downloaded says so at once.
	urn := rows["koala-open.bin"].URN
	wantRun(t, 0, "looking for sources of "+urn+"…\nverified and saved: "+saved+"\n", "get", urn, "--data-dir", dir)

	// --detach prints the ID and returns.
	out := wantRun(t, 0, "", "get", "--data-dir", dir, "--detach", search, busyRow)
	id := strings.TrimSpace(out)
	_, errOut, _ = run(t, "get", "--data-dir", dir, "--detach", search, busyRow)
	if want := "gnutella: download " + id + " queued (koala-busy.bin, 48.8 KB); \"gnutella downloads\" shows its progress\n"; errOut != want || len(id) == 0 {
		t.Fatalf("get --detach: stdout %q, stderr %q; want the ID and %q", out, errOut, want)
	}

	// The list: a table and JSON.
	out = wantRun(t, 0, "", "downloads", "--data-dir", dir)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || strings.Join(strings.Fields(lines[0]), " ") != "ID STATE DONE SIZE SOURCES SPEED PRI NAME" {
		t.Fatalf("downloads printed:\n%s", out)
	}
	if f := strings.Fields(lines[2]); len(f) != 9 || f[0] != id || f[2] != "0%" || f[3]+" "+f[4] != "48.8 KB" ||
		f[5] != "0/1" || f[6] != "-" || f[7] != "0" || f[8] != "koala-busy.bin" {
		t.Fatalf("the busy download's row: %q", lines[2])
	}
	if f := strings.Fields(lines[1]); f[1] != "done" || f[2] != "100%" || f[len(f)-1] != "koala-open.bin" {
		t.Fatalf("the finished download's row: %q", lines[1])
	}
	all := downloadsJSON(t, dir)
	if all["koala-busy.bin"].ID != id || all["koala-open.bin"].State != transfer.StateDone {
		t.Fatalf("downloads --json: %+v", all)
	}
	doneID := all["koala-open.bin"].ID

	// Mistakes say what to do.
	wantRun(t, 1, `no download "ab12cd34"; "gnutella downloads" lists them`+"\n", "downloads", "pause", "ab12cd34", "--data-dir", dir)
	wantRun(t, 1, `no download "ab12cd34"; "gnutella downloads" lists them`+"\n", "downloads", "--data-dir", dir, "remove", "ab12cd34")
	wantRun(t, 2, `downloads pause needs one download ID; "gnutella downloads" lists them`+"\n", "downloads", "pause", "--data-dir", dir)
	wantRun(t, 2, `downloads priority needs a download ID and a number (gnutella downloads priority ID N); "gnutella downloads" lists the IDs`+"\n",
		"downloads", "priority", id, "--data-dir", dir)
	wantRun(t, 2, `priority "high" is not a whole number: higher runs first, 0 is the default`+"\n",
		"downloads", "priority", id, "high", "--data-dir", dir)
	wantRun(t, 2, `unknown downloads command "frob": use list, pause, resume, cancel, remove or priority (gnutella downloads --help)`+"\n",
		"downloads", "frob", "--data-dir", dir)
	empty := t.TempDir()
	wantRun(t, 2, "no servent running with --data-dir "+empty+": start `gnutella serve` first\n", "downloads", "--data-dir", empty)
	wantRun(t, 1, "the servent running with --data-dir "+openDir+" has no download folder (it was started with --downloads \"\"): restart it without that, or with --downloads DIR\n",
		"downloads", "cancel", id, "--data-dir", openDir)
	if out := wantRun(t, 0, "", "downloads", "--data-dir", openDir); !strings.HasPrefix(out, "No downloads.") {
		t.Fatalf("downloads of a servent without downloads: %q", out)
	}
	wantRun(t, 1, `download "`+doneID+`" is done, so it cannot be paused`+"\n", "downloads", "pause", doneID, "--data-dir", dir)

	// Pause, priority; a paused download cannot be removed.
	if out := wantRun(t, 0, "", "downloads", "pause", id, "--data-dir", dir); out != "paused "+id+" (koala-busy.bin, 0% of 48.8 KB); \"gnutella downloads resume "+id+"\" goes on with it\n" {
		t.Fatalf("downloads pause printed %q", out)
	}
	wantRun(t, 1, `download "`+id+`" is paused: cancel it before removing it ("gnutella downloads cancel `+id+`" does that)`+"\n",
		"downloads", "remove", id, "--data-dir", dir)
	if out := wantRun(t, 0, "", "downloads", "priority", id, "3", "--data-dir", dir); out != id+" (koala-busy.bin) now has priority 3; higher runs first\n" {
		t.Fatalf("downloads priority printed %q", out)
	}

	// Across a restart: still paused, resumable over the API and the CLI.
	b.stop()
	b = startServent(t, dir, args...)
	if st := downloadsJSON(t, dir)["koala-busy.bin"]; st.ID != id || st.State != transfer.StatePaused || st.Priority != 3 {
		t.Fatalf("after a restart: %+v", st)
	}
	cc := apiClient(t, dir)
	ctx := context.Background()
	if st, err := cc.ResumeDownload(ctx, id); err != nil || st.State == transfer.StatePaused {
		t.Fatalf("resume over the API: %+v, %v", st, err)
	}
	if st, err := cc.PauseDownload(ctx, id); err != nil || st.State != transfer.StatePaused {
		t.Fatalf("pause over the API: %+v, %v", st, err)
	}
	b.stop()
	startServent(t, dir, args...)
	if st, err := apiClient(t, dir).Download(ctx, id); err != nil || st.State != transfer.StatePaused {
		t.Fatalf("after a second restart, over the API: %+v, %v", st, err)
	}
	if out := wantRun(t, 0, "", "downloads", "resume", id, "--data-dir", dir); out != "resumed "+id+" (koala-busy.bin); \"gnutella downloads\" shows its progress\n" {
		t.Fatalf("downloads resume printed %q", out)
	}
	if st := downloadsJSON(t, dir)["koala-busy.bin"]; st.State == transfer.StatePaused {
		t.Fatalf("after resume: %+v", st)
	}

	// Cancel, then remove; removing a finished download keeps its file.
	if out := wantRun(t, 0, "", "downloads", "cancel", id, "--data-dir", dir); out != "cancelled "+id+" (koala-busy.bin) and deleted its partial file; \"gnutella downloads remove "+id+"\" takes it off the list\n" {
		t.Fatalf("downloads cancel printed %q", out)
	}
	if partials, _ := filepath.Glob(filepath.Join(dl, ".gnutella-partial-*")); len(partials) != 0 {
		t.Errorf("partial files after cancel: %v", partials)
	}
	if out := wantRun(t, 0, "", "downloads", "remove", id, "--data-dir", dir); out != "removed "+id+" (koala-busy.bin) from the list\n" {
		t.Fatalf("downloads remove printed %q", out)
	}
	if out := wantRun(t, 0, "", "downloads", "remove", doneID, "--data-dir", dir); out != "removed "+doneID+" (koala-open.bin) from the list; the file stays: "+saved+"\n" {
		t.Fatalf("downloads remove of a finished one printed %q", out)
	}
	if out := wantRun(t, 0, "", "downloads", "--data-dir", dir); out != "No downloads. gnutella get urn:sha1:<base32> (or gnutella get SEARCH-ID N) starts one.\n" {
		t.Fatalf("downloads after removing both printed %q", out)
	}

	// Ctrl-C on get: on a terminal it asks; "no" and no terminal leave the
	// download running, "y" cancels it.
	until(t, "the downloader's 2 links after the restart", func() bool { return apiStatus(t, dir).Links == 2 })
	search, rows = searchRows(t, dir, "koala", 2)
	busyRow = strconv.Itoa(rows["koala-busy.bin"].N)
	getArgs := []string{"get", "--data-dir", dir, search, busyRow}
	text := interruptGet(t, getArgs, "\n", 0)
	id = downloadsJSON(t, dir)["koala-busy.bin"].ID
	wantLeft := "stopped watching; download " + id + " goes on in the servent: \"gnutella downloads\" shows it, \"gnutella downloads cancel " + id + "\" stops it\n"
	if !strings.Contains(text, strings.TrimSuffix(wantLeft, "\n")) {
		t.Fatalf("Ctrl-C, no: the terminal shows:\n%s", text)
	}

	cmd := exec.Command(bin, getArgs...)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	tr := newTranscript(pr)
	tr.waitFor(t, "looking for sources…\n")
	_ = cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil || !strings.HasSuffix(tr.waitEnd(), wantLeft) {
		t.Fatalf("Ctrl-C on get without a terminal: %v, stderr:\n%s", err, tr.String())
	}
	pr.Close()
	if st := downloadsJSON(t, dir)["koala-busy.bin"]; st.ID != id || st.State == transfer.StateCancelled {
		t.Fatalf("after Ctrl-C without a terminal: %+v", st)
	}

	text = interruptGet(t, getArgs, "y\n", 1)
	if !strings.Contains(text, "cancelled download "+id+" and deleted its partial file") {
		t.Fatalf("Ctrl-C, y: the terminal shows:\n%s", text)
	}
	if st := downloadsJSON(t, dir)["koala-busy.bin"]; st.ID != id || st.State != transfer.StateCancelled {
		t.Fatalf("after Ctrl-C, y: %+v", st)
	}
	// get of a cancelled download starts it again.
	if out := wantRun(t, 0, "download "+id+" was cancelled; it goes on\n", "get", "--detach", "--data-dir", dir, search, busyRow); out != id+"\n" {
		t.Fatalf("get --detach of a cancelled download printed %q", out)
	}
	if st := downloadsJSON(t, dir)["koala-busy.bin"]; st.ID != id || st.State == transfer.StateCancelled {
		t.Fatalf("after get of a cancelled download: %+v", st)
	}
}

// interruptGet runs gnutella get args on a terminal, interrupts it once it
// is looking for sources, answers the question with answer, checks the
// exit code and returns what the terminal showed.
func interruptGet(t *testing.T, args []string, answer string, wantCode int) string {
	t.Helper()
	pty, tty, err := openPTY()
	if err != nil {
		t.Skipf("no terminal to test Ctrl-C on: %v", err)
	}
	defer pty.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdin, cmd.Stderr = tty, tty
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	tr := newTranscript(pty)
	tr.waitFor(t, "looking for sources…")
	_ = cmd.Process.Signal(os.Interrupt)
	tr.waitFor(t, "cancel the download? [y/N] ")
	if _, err := pty.WriteString(answer); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	text := tr.waitEnd()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	}
	if code != wantCode {
		t.Fatalf("get on a terminal, Ctrl-C, %q: exit %d, want %d; the terminal shows:\n%s", answer, code, wantCode, text)
	}
	return text
}

func TestPhase(t *testing.T) {
	for _, c := range []struct {
		st      transfer.Status
		numbers bool
		want    string
	}{
		{transfer.Status{State: transfer.StateDownloading, Size: 1000, Have: 450, ActiveSources: 3, Speed: 1258291}, true,
			"downloading from 3 sources, 1.2 MB/s"},
		{transfer.Status{State: transfer.StateDownloading, Size: 1000, Have: 0, ActiveSources: 2}, true,
			"downloading from 2 sources"},
		{transfer.Status{State: transfer.StateDownloading, Size: 1000, Have: 450, ActiveSources: 1, Speed: 1258291}, false,
			"downloading from 1 source"},
		{transfer.Status{State: transfer.StateConnecting}, true, "looking for sources…"},
		{transfer.Status{State: transfer.StateWaiting, Sources: 2, RetryAt: time.Now().Add(time.Hour)}, false, "looking for sources…"},
		{transfer.Status{State: transfer.StateVerifying, Size: 10, Have: 10}, true, "verifying"},
		{transfer.Status{State: transfer.StateQueued}, true, "queued"},
		{transfer.Status{ID: "ab12cd34", State: transfer.StatePaused}, true, `paused; "gnutella downloads resume ab12cd34" goes on`},
	} {
		if got := phase(c.st, c.numbers); got != c.want {
			t.Errorf("phase(%+v, %v) = %q, want %q", c.st, c.numbers, got, c.want)
		}
	}
	st := transfer.Status{State: transfer.StateWaiting, Sources: 2, RetryAt: time.Now().Add(90 * time.Second)}
	if got := phase(st, true); !strings.HasPrefix(got, "looking for sources… (2 known, busy; next try in 1m") {
		t.Errorf("phase of a waiting download: %q", got)
	}
}

func TestPrintDownloads(t *testing.T) {
	var b strings.Builder
	printDownloads(&b, []transfer.Status{
		{ID: "ab12cd34", State: transfer.StateDownloading, Have: 450, Size: 1000, ActiveSources: 2, Sources: 3, Speed: 1258291, Priority: 1, Name: "koala.ogg"},
		{ID: "0f0f0f0f", State: transfer.StateFailed, Have: 0, Size: 3 << 20, Sources: 0, Name: "wombat.ogg", Error: "transfer: no usable source left"},
		{ID: "77aa77aa", State: transfer.StateConnecting, Size: 300000, ActiveSources: 1, Sources: 1, Name: "emu.bin",
			Error: "push: " + transfer.ErrNoCallback.Error() + " (servent 01): context deadline exceeded"},
	})
	want := "ID        STATE        DONE       SIZE  SOURCES       SPEED  PRI  NAME\n" +
		"ab12cd34  downloading   45%     1000 B      2/3    1.2 MB/s    1  koala.ogg\n" +
		"0f0f0f0f  failed         0%     3.0 MB      0/0           -    0  wombat.ogg\n" +
		"77aa77aa  connecting     0%   293.0 KB      1/1           -    0  emu.bin\n" +
		"0f0f0f0f failed: transfer: no usable source left (\"gnutella downloads resume 0f0f0f0f\" tries again)\n" +
		"77aa77aa is still trying; its last attempt: push: transfer: no GIV after the Push (servent 01): context deadline exceeded. " +
		"The holder never connected back: it may not reach us, or it refuses to call back a loopback or private address " +
		"(on a local testnet, start every servent with --allow-private) (\"gnutella downloads cancel 77aa77aa\" stops it)\n"
	if b.String() != want {
		t.Errorf("printDownloads printed\n%s\nwant\n%s", b.String(), want)
	}
}
