package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// gnutella browse lists a servent's files, standalone (rows only) and
// through a running servent, whose search ID gnutella get takes.
func TestBrowseCLI(t *testing.T) {
	_, seed := seedServent(t, "koala-browse.bin", 20_000)
	out := wantRun(t, 0, "", "browse", "--data-dir", t.TempDir(), "--json", seed.addr)
	var sj searchJSON
	if err := json.Unmarshal([]byte(out), &sj); err != nil {
		t.Fatalf("browse --json printed %q: %v", out, err)
	}
	if sj.ID != "" || len(sj.Rows) != 1 || sj.Rows[0].Name != "koala-browse.bin" || sj.Rows[0].URN == "" ||
		sj.Rows[0].Size != 20_000 || len(sj.Rows[0].Sources) != 1 || sj.Rows[0].Sources[0] != seed.addr {
		t.Fatalf("standalone browse: %s", out)
	}

	dir, dl := t.TempDir(), t.TempDir()
	startServent(t, dir, "--downloads", dl, "--allow-private")
	out = wantRun(t, 0, "", "browse", "--data-dir", dir, "--json", seed.addr)
	if err := json.Unmarshal([]byte(out), &sj); err != nil {
		t.Fatalf("browse --json printed %q: %v", out, err)
	}
	if sj.ID == "" || len(sj.Rows) != 1 || sj.Rows[0].Name != "koala-browse.bin" {
		t.Fatalf("browse through the servent: %s", out)
	}
	wantRun(t, 0, "", "get", "--data-dir", dir, sj.ID, "1")
	if fi, err := os.Stat(filepath.Join(dl, "koala-browse.bin")); err != nil || fi.Size() != 20_000 {
		t.Fatalf("downloaded file: %v, %v", fi, err)
	}
	wantRun(t, 2, "HOST:PORT must be", "browse", "--data-dir", dir, "not-an-address")
}
