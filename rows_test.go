package main

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gnutella/protocol"
	"gnutella/routing"
	"gnutella/servent/control"
	"gnutella/testnet/await"
)

func TestGroupHitsOneRowPerFile(t *testing.T) {
	u1 := protocol.SHA1{1}
	u2 := protocol.SHA1{2}
	h := func(name string, urn protocol.SHA1, host string, push bool) routing.Hit {
		return routing.Hit{Name: name, Size: 100, URN: urn, Host: netip.MustParseAddrPort(host), Push: push}
	}
	rows := groupHits([]routing.Hit{
		h("koala.mp3", u1, "1.2.3.4:6346", true),
		h("bear.mp3", u2, "1.2.3.5:6346", false),
		h("Koala (copy).mp3", u1, "1.2.3.6:6346", false),
		h("old.txt", protocol.SHA1{}, "1.2.3.7:6346", false),
		h("old.txt", protocol.SHA1{}, "1.2.3.8:6346", true),
	})
	if len(rows) != 3 {
		t.Fatalf("%d rows, want 3: %+v", len(rows), rows)
	}
	if r := rows[0]; r.N != 1 || r.Name != "koala.mp3" || r.URN != u1.String() || len(r.Sources) != 2 || r.Push || r.FirstHit != 0 {
		t.Errorf("row 1 = %+v: want koala.mp3 from 2 sources, one of them direct", r)
	}
	if r := rows[1]; r.N != 2 || r.URN != u2.String() || len(r.Sources) != 1 || r.FirstHit != 1 {
		t.Errorf("row 2 = %+v", r)
	}
	if r := rows[2]; r.N != 3 || r.URN != "" || strings.Join(r.Sources, ",") != "1.2.3.7:6346,1.2.3.8:6346" || r.FirstHit != 3 {
		t.Errorf("row 3 = %+v: want the two URN-less old.txt hits", r)
	}
}

func TestHumanSize(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 22835: "22.3 KB", 1258291: "1.2 MB", 5 << 30: "5.0 GB"} {
		if got := humanSize(n); got != want {
			t.Errorf("humanSize(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestSearchThenGetRow runs two servents on loopback: one sharing a file
// with its uploads capped at 100K (which its hits announce as its speed),
// one linked to it with the default download folder; searches through the
// second, then downloads row 1 of that search.
func TestSearchThenGetRow(t *testing.T) {
	share := t.TempDir()
	content := strings.Repeat("koala bear ", 3000)
	if err := os.WriteFile(filepath.Join(share, "koala.txt"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	upDir, downDir := t.TempDir(), t.TempDir()
	downloads := filepath.Join(downDir, "downloads")
	startServe(t, upDir, "--mode", "ultrapeer", "--share", share, "--allow-private", "--upload-rate", "100K")
	upInfo, err := control.ReadInfo(upDir)
	if err != nil {
		t.Fatal(err)
	}
	var up control.StatusJSON
	if err := (&control.Client{Info: upInfo}).Do(context.Background(), "GET", "/api/v1/status", nil, &up); err != nil {
		t.Fatal(err)
	}
	startServe(t, downDir, "--mode", "leaf", "--peer", up.Addr, "--allow-private")
	info, err := control.ReadInfo(downDir)
	if err != nil {
		t.Fatal(err)
	}
	cc := &control.Client{Info: info}
	await.Until(t, "the leaf links to the ultrapeer", func() bool {
		var st control.StatusJSON
		return cc.Do(context.Background(), "GET", "/api/v1/status", nil, &st) == nil && st.Links > 0
	})
	var res searchJSON
	await.Until(t, "a search finds koala.txt", func() bool {
		out := wantRun(t, 0, "", "search", "--data-dir", downDir, "koala", "--json", "--max-results", "1", "--timeout", "5s")
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("search --json printed %q: %v", out, err)
		}
		return len(res.Rows) == 1
	})
	if r := res.Rows[0]; r.N != 1 || r.Name != "koala.txt" || r.Size != uint64(len(content)) || len(r.Sources) != 1 || r.URN == "" || r.Speed != 100<<10*8/1000 {
		t.Fatalf("row = %+v", r)
	}
	out := wantRun(t, 0, "", "search", "--data-dir", downDir, "koala", "--max-results", "1", "--timeout", "5s")
	for _, want := range []string{"  1  koala.txt ", " 32.2 KB   100.0 KB/s        1  " + res.Rows[0].URN + "\n", "1 file. Search ID ", "  gnutella get "} {
		if !strings.Contains(out, want) {
			t.Errorf("search printed\n%s\nwant it to hold %q", out, want)
		}
	}
	if !strings.Contains(out, "or, as it is the last search, gnutella get N\n") {
		t.Errorf("search printed\n%s\nwant it to offer get N", out)
	}
	wantRun(t, 2, "search "+res.ID+" has 1 rows, no row 2", "get", "--data-dir", downDir, res.ID, "2")
	// get N: row N of the last search made through the servent.
	wantRun(t, 2, "has 1 rows, no row 2", "get", "--data-dir", downDir, "2")
	wantRun(t, 0, "verified and saved", "get", "--data-dir", downDir, "1")
	got, err := os.ReadFile(filepath.Join(downloads, "koala.txt"))
	if err != nil || string(got) != content {
		t.Fatalf("downloaded koala.txt: %v, %d bytes; want %d", err, len(got), len(content))
	}
	// A servent nobody searched through has no last search.
	wantRun(t, 2, "no last search to take row 1 of: run gnutella search WORDS first", "get", "--data-dir", upDir, "1")
}
