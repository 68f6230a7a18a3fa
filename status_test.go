package main

import (
	"encoding/json"
	"strings"
	"testing"

	"gnutella/servent/control"
	"gnutella/testnet/await"
)

// status and links of a servent linked to a seed: what the control API
// says, as a table and as JSON; the servent said on stderr that its --peer
// linked.
func TestStatusAndLinks(t *testing.T) {
	seedDir, seed := seedServent(t, "koala.bin", 5000)
	dir := t.TempDir()
	s := startServent(t, dir, "--peer", seed.addr, "--allow-private", "--mode", "leaf")
	s.tr.waitFor(t, "gnutella: linked to --peer "+seed.addr+"\n")
	await.Until(t, "the leaf's link counted", func() bool { return apiStatus(t, dir).Links == 1 })

	var st statusJSON
	if err := json.Unmarshal([]byte(wantRun(t, 0, "", "status", "--json", "--data-dir", dir)), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode != "leaf" || st.Links != 1 || st.Addr != s.addr || st.ServentID == "" || st.Downloads != 0 || st.DownloadsActive != 0 {
		t.Errorf("status --json of the leaf = %+v", st)
	}
	out := wantRun(t, 0, "", "status", "--data-dir", seedDir)
	for _, want := range []string{"role       ultrapeer", "listening  " + seed.addr + "\n", "shares     1 files, 4.9 KB\n",
		"downloads  0 active, 0 in the list\n", "links      0 to ultrapeers and normal servents, 1 leaves", "uptime     "} {
		if !strings.Contains(out, want) {
			t.Errorf("status of the seed printed\n%s\nwant it to hold %q", out, want)
		}
	}

	out = wantRun(t, 0, "", "links", "--data-dir", dir)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "ADDRESS") {
		t.Fatalf("links printed\n%s\nwant a header and one link", out)
	}
	f := strings.Fields(lines[1])
	if f[0] != seed.addr || f[1] != "ultrapeer" || f[2] != "out" || !strings.HasPrefix(f[3], "gnutella/") || f[4] != "both" {
		t.Errorf("the leaf's link: %q; want the seed's address, ultrapeer, out, our user agent, deflate both ways", lines[1])
	}
	var links []control.LinkJSON
	if err := json.Unmarshal([]byte(wantRun(t, 0, "", "links", "--json", "--data-dir", seedDir)), &links); err != nil {
		t.Fatal(err)
	}
	if len(links) != 1 || !links[0].Inbound || links[0].Kind != "leaf" || links[0].Listen != s.addr {
		t.Errorf("links --json of the seed = %+v; want the leaf, inbound", links)
	}

	wantRun(t, 2, "no servent running with --data-dir", "status", "--data-dir", t.TempDir())
	wantRun(t, 2, "links takes no arguments", "links", "--data-dir", dir, "extra")
}
