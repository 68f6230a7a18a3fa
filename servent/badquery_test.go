package servent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gnutella/protocol"
)

// Queries gtk-gnutella drops are dropped (never answered): flags 0, invalid
// UTF-8, fewer than 2 useful characters, longer than 256 bytes. "../" in a
// query is punctuation: it finds shared names, never a path.
func TestBadQueriesAreDroppedOrAnsweredSafely(t *testing.T) {
	root := t.TempDir()
	shared := filepath.Join(root, "shared")
	if err := os.Mkdir(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	sharedFile(t, shared, "etc passwd notes.txt", 100)
	sharedFile(t, root, "secret passwd.txt", 100) // beside the share, never listed
	c := testNodeConfig(t)
	c.ShareDirs = []string{shared}
	n := startNode(t, c)
	hashNow(t, n)
	p := dialRaw(t, n.Servent)
	p.handshake(peerHeaders(protocol.NewGUID()))

	type tc struct {
		name    string
		flags   protocol.QueryFlags
		search  string
		answers bool
	}
	cases := []tc{
		{"a good query", protocol.QueryFlagMark, "passwd", true},
		{"flags 0", 0, "passwd", false},
		{"invalid UTF-8", protocol.QueryFlagMark, "passwd \xff\xfe", false},
		{"one useful character", protocol.QueryFlagMark, " p ", false},
		{"1,000 characters", protocol.QueryFlagMark, strings.Repeat("passwd ", 143), false},
		{"dot-dot path", protocol.QueryFlagMark, "../../etc/passwd", true},
	}
	for _, c := range cases {
		id := protocol.NewGUID()
		payload, err := protocol.NewQuery(c.search, c.flags).AppendTo(nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.flags == 0 {
			payload[0], payload[1] = 0, 0 // NewQuery marks; undo it
		}
		p.send(protocol.Header{ID: id, Type: protocol.TypeQuery, TTL: 2}, payload)
		// the servent handles in order: its answer (if any) comes before the sync pong
		ping := protocol.NewGUID()
		p.send(protocol.Header{ID: ping, Type: protocol.TypePing, TTL: 1}, nil)
		var hits []*protocol.QueryHit
		for {
			h, b := p.next()
			if h.Type == protocol.TypeQueryHit && h.ID == id {
				hit, err := protocol.DecodeQueryHit(b)
				if err != nil {
					t.Fatal(err)
				}
				hits = append(hits, hit)
			}
			if h.Type == protocol.TypePong && h.ID == ping {
				break
			}
		}
		if (len(hits) > 0) != c.answers {
			t.Errorf("%s: %d hits, want answered=%v", c.name, len(hits), c.answers)
		}
		for _, hit := range hits {
			for _, r := range hit.Results {
				if string(r.Name) != "etc passwd notes.txt" {
					t.Errorf("%s: answered with %q", c.name, r.Name)
				}
			}
		}
	}
}
