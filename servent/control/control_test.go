package control

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gnutella/protocol"
	"gnutella/routing"
	"gnutella/servent"
)

func testNodeConfig() servent.NodeConfig {
	c := servent.DefaultNodeConfig()
	c.ListenAddr = "127.0.0.1:0"
	c.WantLinks = 0
	c.AllowLoopback = true
	c.ByeGrace = 2 * time.Second
	c.HandshakeTimeout = 5 * time.Second
	c.ConnectTimeout = 5 * time.Second
	c.AcceptLocalProof = true
	c.PushPolicy.AllowLoopback, c.PushPolicy.AllowPrivate = true, true
	c.Rescan = 0
	return c
}

func startNode(t *testing.T, c servent.NodeConfig) *servent.Node {
	t.Helper()
	n, err := servent.NewNode(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Stop() })
	return n
}

func startServer(t *testing.T, n *servent.Node) *Server {
	t.Helper()
	ctl, err := Start(n, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ctl.Close() })
	return ctl
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestControlAPISearchStreamsResultsAndNeedsToken(t *testing.T) {
	ca := testNodeConfig()
	ca.DataDir = t.TempDir()
	cb := testNodeConfig()
	cb.Library = servent.StaticLibrary{Results: func(q *protocol.Query, h protocol.Header) []protocol.Result {
		if s, _ := q.SearchString(); s == "zebra quokka" {
			return []protocol.Result{{Index: 3, Size: 10, Name: []byte("zebra quokka.ogg")}}
		}
		return nil
	}}
	a, b := startNode(t, ca), startNode(t, cb)
	if _, err := a.Connect(ctxT(t), b.Addr()); err != nil {
		t.Fatal(err)
	}
	ctl := startServer(t, a)
	info, err := ReadInfo(ca.DataDir)
	if err != nil || info.Token != ctl.Token() || info.Addr != ctl.Addr() {
		t.Fatalf("control.json: %+v, %v", info, err)
	}
	cc := &Client{Info: info}
	ctx := ctxT(t)

	var st StatusJSON
	if err := cc.Do(ctx, "GET", "/api/v1/status", nil, &st); err != nil {
		t.Fatal(err)
	}
	if st.ServentID != a.ID().String() || st.Links != 1 {
		t.Fatalf("status %+v", st)
	}
	var links []LinkJSON
	if err := cc.Do(ctx, "GET", "/api/v1/links", nil, &links); err != nil || len(links) != 1 || links[0].ServentID != b.ID().String() {
		t.Fatalf("links %+v, %v", links, err)
	}
	id, err := cc.StartSearch(ctx, SearchRequest{Query: "zebra quokka", TTL: 2, TimeoutMS: 2000, MaxResults: 1})
	if err != nil {
		t.Fatal(err)
	}
	var got []routing.Hit
	if err := cc.StreamResults(ctx, id, func(h routing.Hit) { got = append(got, h) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "zebra quokka.ogg" || got[0].ServentID != b.ID() || got[0].Host != b.Addr() {
		t.Fatalf("streamed %+v", got)
	}
	var sj SearchJSON
	if err := cc.Do(ctx, "GET", "/api/v1/searches/"+id, nil, &sj); err != nil || len(sj.Hits) != 1 || sj.Running {
		t.Fatalf("search %+v, %v", sj, err)
	}
	// a servent without a download folder cannot download
	err = cc.Do(ctx, "POST", "/api/v1/downloads", DownloadRequest{SearchID: id}, nil)
	var apiErr *Error
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusServiceUnavailable {
		t.Errorf("download without a folder: %v", err)
	}
	// bad requests
	if err := cc.Do(ctx, "POST", "/api/v1/searches", SearchRequest{Query: "x", Strategy: "teleport"}, nil); err == nil {
		t.Error("unknown strategy accepted")
	}
	bad := &Client{Info: Info{Addr: info.Addr, Token: "nope"}}
	if err := bad.Do(ctx, "GET", "/api/v1/status", nil, nil); err == nil {
		t.Error("wrong token accepted")
	}
	resp, err := http.Get("http://" + info.Addr + "/api/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: %s", resp.Status)
	}
	if _, err := Start(a, "0.0.0.0:0"); err == nil {
		t.Error("control API accepted a non-loopback address")
	}
	// Close removes control.json.
	if err := ctl.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadInfo(ca.DataDir); !os.IsNotExist(err) {
		t.Errorf("control.json after Close: %v", err)
	}
}

// The control API's status shows the library's hashing progress.
func TestControlStatusShowsLibraryProgress(t *testing.T) {
	dir := t.TempDir()
	for name, size := range map[string]int{"a.bin": 1000, "b.bin": 2000} {
		if err := os.WriteFile(filepath.Join(dir, name), make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := testNodeConfig()
	c.ShareDirs = []string{dir}
	c.DataDir = t.TempDir()
	n := startNode(t, c)
	if err := n.Library.Rescan(); err != nil {
		t.Fatal(err)
	}
	if err := n.Library.HashAll(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	startServer(t, n)
	info, err := ReadInfo(c.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Library LibraryJSON `json:"library"`
	}
	if err := (&Client{Info: info}).Do(ctxT(t), "GET", "/api/v1/status", nil, &st); err != nil {
		t.Fatal(err)
	}
	if st.Library.Files != 2 || st.Library.HashedFiles != 2 || st.Library.HashedBytes != 3000 {
		t.Fatalf("library progress %+v", st.Library)
	}
}

func TestControlAPIProfilesNeedToken(t *testing.T) {
	ctl := startServer(t, startNode(t, testNodeConfig()))
	url := "http://" + ctl.Addr() + "/debug/pprof/heap?debug=1"
	get := func(token string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctxT(t), "GET", url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(body)
	}
	for _, tok := range []string{"", "nope"} {
		resp, body := get(tok)
		var e apiError
		if resp.StatusCode != http.StatusUnauthorized || json.Unmarshal([]byte(body), &e) != nil || e.Error == "" {
			t.Errorf("token %q: %s %q", tok, resp.Status, body)
		}
	}
	resp, body := get(ctl.Token())
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(body, "heap profile:") {
		t.Fatalf("with the token: %s %.200q", resp.Status, body)
	}
}
