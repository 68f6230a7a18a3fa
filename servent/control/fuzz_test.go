package control

import (
	"encoding/json"
	"slices"
	"testing"

	"gnutella/protocol"
	"gnutella/routing"
)

// FuzzSearchRequest feeds any body to what POST /api/v1/searches does
// before it starts a search: decode the JSON, check the TTL, pick the
// strategy and build the query. Whatever it accepts must be a query the
// servent can send: it encodes, within the 1 KiB query limit every peer
// enforces, and decodes back to the same words and URN.
func FuzzSearchRequest(f *testing.F) {
	f.Add([]byte(`{"query":"zebra quokka"}`))
	f.Add([]byte(`{"query":"koala","strategy":"walk","walkers":4,"ttl":3,"timeout_ms":1000,"max_results":10}`))
	f.Add([]byte(`{"query":"","urn":"urn:sha1:PLSTHIPQGSSZTS5FJUPAKUZWUGYQYPFB","strategy":"gossip","p":0.7}`))
	f.Add([]byte(`{"query":"a","strategy":"ring","ttl":15}`))
	f.Add([]byte(`{"query":"x","ttl":-1}`))
	f.Add([]byte(`{"query":"\u0000"}`))
	f.Add([]byte(`{"query":"x","strategy":"teleport"}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var req SearchRequest
		if json.Unmarshal(body, &req) != nil {
			return
		}
		if req.TTL < 0 || req.TTL > 15 {
			return // StartSearch refuses it
		}
		st, err := routing.ParseStrategy(req.Strategy, routing.StrategyOptions{TTL: uint8(req.TTL), Walkers: req.Walkers, P: req.P})
		if err != nil {
			return
		}
		if st.Name() == "" {
			t.Fatalf("strategy %q has no name", req.Strategy)
		}
		q, err := BuildQuery(req.Query, req.URN)
		if err != nil {
			return
		}
		payload, err := q.AppendTo(nil)
		if err != nil {
			t.Fatalf("BuildQuery(%q, %q) accepted a query it cannot encode: %v", req.Query, req.URN, err)
		}
		if limit := protocol.DefaultLimits().Query; len(payload) > int(limit) {
			t.Fatalf("BuildQuery(%q, %q): %d-byte query, over the %d-byte limit peers enforce", req.Query, req.URN, len(payload), limit)
		}
		back, err := protocol.DecodeQuery(payload)
		if err != nil {
			t.Fatalf("query %x does not decode: %v", payload, err)
		}
		if string(back.Search) != string(q.Search) || !slices.Equal(back.URNs(), q.URNs()) {
			t.Fatalf("query round trip: %q %v became %q %v", q.Search, q.URNs(), back.Search, back.URNs())
		}
	})
}

// FuzzDownloadRequest decodes any body of POST /api/v1/downloads and the
// URN in it as StartDownload does: no panic, and an accepted URN prints
// back as itself.
func FuzzDownloadRequest(f *testing.F) {
	f.Add([]byte(`{"search_id":"0123456789abcdef0123456789abcdef","hit":0}`))
	f.Add([]byte(`{"search_id":"x","urn":"urn:sha1:PLSTHIPQGSSZTS5FJUPAKUZWUGYQYPFB"}`))
	f.Add([]byte(`{"hit":-5}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var req DownloadRequest
		if json.Unmarshal(body, &req) != nil || req.URN == "" {
			return
		}
		h, err := protocol.ParseURN(req.URN)
		if err != nil {
			return
		}
		again, err := protocol.ParseURN(h.String())
		if err != nil || again != h {
			t.Fatalf("URN %q parsed to %v, which prints as %q and parses to %v, %v", req.URN, h, h.String(), again, err)
		}
	})
}

// FuzzPriorityRequest feeds any body to parsePriority: no panic, and an
// accepted priority is what the client sends for it.
func FuzzPriorityRequest(f *testing.F) {
	f.Add([]byte(`{"priority": 5}`))
	f.Add([]byte(`{"priority": -3}`))
	f.Add([]byte(`{"priority": "high"}`))
	f.Add([]byte(`{"priority": 1e400}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := parsePriority(body)
		if err != nil {
			return
		}
		again, err := json.Marshal(PriorityRequest{Priority: &p})
		if err != nil {
			t.Fatal(err)
		}
		if back, err := parsePriority(again); err != nil || back != p {
			t.Fatalf("priority %d of %q sent as %s reads back as %d, %v", p, body, again, back, err)
		}
	})
}

// A NUL in the words cannot travel in a Query (it ends the search text):
// BuildQuery refused nothing, and StartSearch then ran a search that sent no
// query at all and simply found nothing (found by FuzzSearchRequest).
func TestBuildQueryRefusesNUL(t *testing.T) {
	for _, words := range []string{"\x00", "zebra\x00quokka", "koala\x00"} {
		if q, err := BuildQuery(words, ""); err == nil {
			t.Errorf("BuildQuery(%q) = %v, want an error", words, q)
		}
	}
	if _, err := BuildQuery("zebra quokka", ""); err != nil {
		t.Errorf("BuildQuery(%q): %v", "zebra quokka", err)
	}
}
