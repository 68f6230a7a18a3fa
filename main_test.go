package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
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
